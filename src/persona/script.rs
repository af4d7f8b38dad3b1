//! The scripted part of a persona: validating its `faq`, `knowledge` and `rules` sections, the
//! check that runs before the model ([`Persona::intercept`]: rules in order, then the FAQ), and
//! the facts injected into the prompt (knowledge that fits the budget, a weaker FAQ match).

use super::faq::{Faq, FaqDecision};
use super::knowledge::Knowledge;
use super::problem::Problem;
use super::raw::RawPersona;
use super::rules::{Action, RuleInput, Rules};
use super::{MacroContext, Persona, check_macros};
use crate::chat::{ChatMessage, ReplySource};
use crate::matching::Ranking;
use crate::matching::retrieval::{self, Decision, Scored, Signal};
use crate::matching::{EntryScore, MatchInfo};
use crate::persona::grounding::Grounding;
use crate::yaml::Checker;

/// The validated scripting sections of a persona.
#[derive(Debug, Clone, Default)]
pub struct Scripting {
    /// `faq:`.
    pub faq: Faq,
    /// `knowledge:`.
    pub knowledge: Knowledge,
    /// `rules:`.
    pub rules: Rules,
    /// `grounding:`.
    pub grounding: Grounding,
    /// `ratings:`.
    pub ratings: crate::persona::ratings::Ratings,
}

/// Validate the scripting sections of `raw`, recording problems in `check`.
pub(super) fn validate(check: &mut Checker<'_>, raw: &RawPersona) -> Scripting {
    let mut report = |problems: Vec<Problem>| {
        for p in problems {
            check.error(&p.field, p.message);
        }
    };
    let faq = match &raw.faq {
        Some(f) => Faq::from_raw(f, "faq").unwrap_or_else(|p| {
            report(p);
            Faq::default()
        }),
        None => Faq::default(),
    };
    let knowledge = match &raw.knowledge {
        Some(k) => Knowledge::from_raw(k, "knowledge").unwrap_or_else(|p| {
            report(p);
            Knowledge::default()
        }),
        None => Knowledge::default(),
    };
    let rules = Rules::from_raw(&raw.rules, "rules").unwrap_or_else(|p| {
        report(p);
        Rules::default()
    });
    let grounding = match &raw.grounding {
        Some(g) => Grounding::from_raw(g, "grounding").unwrap_or_else(|p| {
            report(p);
            Grounding::default()
        }),
        None => Grounding::default(),
    };
    if let Some(g) = &raw.grounding {
        check_macros(check, "grounding.not_sure", &g.not_sure);
    }
    if let Some(f) = &raw.faq {
        for (i, e) in f.entries.iter().enumerate() {
            check_macros(check, &format!("faq.entries[{i}].answer"), &e.answer);
        }
    }
    if let Some(k) = &raw.knowledge {
        for (i, e) in k.entries.iter().enumerate() {
            check_macros(
                check,
                &format!("knowledge.entries[{i}].content"),
                &e.content,
            );
        }
    }
    for (i, r) in raw.rules.iter().enumerate() {
        for (j, a) in r.then.iter().enumerate() {
            if let Action::Reply(t) = a {
                check_macros(check, &format!("rules[{i}].then[{j}].reply"), t);
            }
        }
    }
    Scripting {
        faq,
        knowledge,
        rules,
        grounding,
        ratings: raw.ratings.unwrap_or_default(),
    }
}

/// What the persona decided about a message before the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intercept {
    /// The answer (macros expanded) and what produced it, when the model is skipped.
    pub reply: Option<(String, ReplySource)>,
    /// Actions of the matching rules, in order (also when the model answers).
    pub actions: Vec<Action>,
    /// Ids of the matching rules.
    pub matched_rules: Vec<String>,
    /// What FAQ retrieval saw.
    pub retrieval: MatchInfo,
    /// When the model answers: the FAQ entry (index) to give it as a fact.
    pub inject: Option<usize>,
    /// When the model answers in grounded mode: check its reply against the facts.
    pub grounded: bool,
    /// The reply is the "not sure" text and offers a human.
    pub offer_handoff: bool,
}

/// A fact for the model: where it comes from (`faq:ID`, `knowledge:ID`) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// `faq:ID` or `knowledge:ID`.
    pub id: String,
    /// The text given to the model.
    pub text: String,
}

impl Persona {
    /// The FAQ.
    pub fn faq(&self) -> &Faq {
        &self.scripting.faq
    }

    /// The knowledge entries.
    pub fn knowledge(&self) -> &Knowledge {
        &self.scripting.knowledge
    }

    /// Whether a message changes more of its prompt than the message itself: FAQ entries or
    /// knowledge entries it pulls into the system message. (Engines guess the next prompt
    /// from the conversation so far only for personas without them.)
    pub fn prompt_depends_on_message(&self) -> bool {
        !self.scripting.faq.entries().is_empty() || !self.scripting.knowledge.entries().is_empty()
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.scripting.rules
    }

    /// Whether a reply from `source` handed the conversation to a human (a rule with a
    /// `handoff` action): what the Telegram front end acts on.
    pub fn hands_off(&self, source: &ReplySource) -> bool {
        let ReplySource::Rule(id) = source else {
            return false;
        };
        self.scripting
            .rules
            .rules()
            .iter()
            .any(|r| r.id == *id && r.actions.contains(&Action::Handoff))
    }

    /// Check `text` before the model with lexical FAQ scores only (see
    /// [`Persona::intercept_ranked`]).
    pub fn intercept(&self, text: &str, first_message: bool, ctx: &MacroContext) -> Intercept {
        let ranking = self.lexical_ranking(text);
        self.intercept_ranked(text, first_message, ctx, &ranking)
    }

    /// The FAQ ranking of `text` from the lexical signal alone.
    pub fn lexical_ranking(&self, text: &str) -> Ranking {
        let faq = &self.scripting.faq;
        let lexical: Vec<(usize, f32)> = faq
            .rank(text, faq.entries().len().max(1))
            .into_iter()
            .map(|m| (m.entry, m.score))
            .collect();
        Ranking {
            scored: retrieval::blend(faq.entries().len(), &lexical, None),
            signal: Signal::Lexical,
            asks_for_person: crate::matching::intent::asks_for_person(text),
            person: None,
        }
    }

    /// This persona with grounded mode off (the baseline `parlor eval --baseline` measures).
    pub fn without_grounding(&self) -> Persona {
        let mut p = self.clone();
        p.scripting.grounding = Grounding::default();
        p
    }

    /// The `grounding:` settings.
    pub fn grounding(&self) -> &Grounding {
        &self.scripting.grounding
    }

    /// When front ends ask for a rating (`ratings:`).
    pub fn ratings(&self) -> crate::persona::ratings::Ratings {
        self.scripting.ratings
    }

    /// The retrieval thresholds of this persona.
    pub fn retrieval_policy(&self) -> retrieval::Policy {
        let g = &self.scripting.grounding;
        retrieval::Policy {
            answer: self.scripting.faq.threshold(),
            relevant: self.scripting.faq.inject_threshold(),
            margin: g.raw.margin,
            max_choices: g.raw.choices,
            offer_choices: g.enabled() && g.raw.choices > 0,
        }
    }

    /// Check `text` before the model, given its FAQ `ranking`: rules in order (a rule with a
    /// reply answers; a handoff rule matched only by words yields to a confident FAQ answer
    /// unless the message asks for a person), then the FAQ decision (answer, choices, or a
    /// fact for the model), then grounded mode (nothing relevant and no small talk: the "not
    /// sure" reply). `first_message`: no earlier user message in the session. Variables set
    /// by matching rules are visible to the reply.
    pub fn intercept_ranked(
        &self,
        text: &str,
        first_message: bool,
        ctx: &MacroContext,
        ranking: &Ranking,
    ) -> Intercept {
        let mut decision = retrieval::decide(&ranking.scored, &self.retrieval_policy());
        // Small talk ("hi", "thanks") is not a vague question: no choices, no FAQ fact.
        let grounding = &self.scripting.grounding;
        if grounding.enabled()
            && matches!(decision, Decision::Choices(_) | Decision::Inject(_))
            && grounding.is_small_talk(text)
        {
            decision = Decision::Miss(ranking.scored.first().copied());
        }
        let outcome = self.scripting.rules.check(&RuleInput {
            text,
            first_message,
            asks_for_person: ranking.asks_for_person,
            faq_answers: matches!(decision, Decision::Answer(_)),
        });
        let mut ctx = ctx.clone();
        for a in &outcome.actions {
            if let Action::SetVar(vars) = a {
                ctx.vars
                    .extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let mut retrieval = self.match_info(ranking);
        let mut out = Intercept {
            reply: None,
            actions: outcome.actions,
            matched_rules: outcome.matched,
            retrieval: MatchInfo::default(),
            inject: None,
            grounded: false,
            offer_handoff: false,
        };
        if let (Some(id), Some(reply)) = (outcome.answered_by, outcome.reply) {
            out.reply = Some((self.expand(&reply, &ctx), ReplySource::Rule(id)));
            out.retrieval = retrieval;
            return out;
        }
        let entries = self.scripting.faq.entries();
        match decision {
            Decision::Answer(s) => {
                let e = &entries[s.entry];
                out.reply = Some((self.expand(&e.answer, &ctx), ReplySource::Faq(e.id.clone())));
            }
            Decision::Choices(c) => {
                retrieval.choices = c.iter().map(|s| entries[s.entry].id.clone()).collect();
                out.reply = Some((self.choices_text(&c), ReplySource::Choices));
            }
            Decision::Inject(s) => {
                out.inject = Some(s.entry);
                out.grounded = grounding.enabled();
            }
            // Nothing in the FAQ, but a knowledge entry keyed by the message is a fact the
            // model may answer from (checked after generation like any grounded reply).
            Decision::Miss(_)
                if grounding.enabled()
                    && !grounding.is_small_talk(text)
                    && !self.scripting.knowledge.keyed_by(text) =>
            {
                out.reply = Some((
                    self.expand(&grounding.raw.not_sure, &ctx),
                    ReplySource::Unsure,
                ));
                out.offer_handoff = grounding.raw.offer_handoff;
            }
            Decision::Miss(_) => out.grounded = grounding.enabled(),
        }
        out.retrieval = retrieval;
        out
    }

    /// The "did you mean" reply: the entries' first questions, numbered.
    pub fn choices_text(&self, choices: &[Scored]) -> String {
        let entries = self.scripting.faq.entries();
        let mut s = String::from("Did you mean:\n");
        for (i, c) in choices.iter().enumerate() {
            s.push_str(&format!("{}. {}\n", i + 1, entries[c.entry].questions[0]));
        }
        s.push_str("Reply with the number, or ask in other words.");
        s
    }

    /// The grounded "not sure" reply (macros expanded).
    pub fn not_sure_text(&self, ctx: &MacroContext) -> String {
        self.expand(&self.scripting.grounding.raw.not_sure, ctx)
    }

    /// The answer to FAQ entry `id` (macros expanded), for a picked choice.
    pub fn faq_answer(&self, id: &str, ctx: &MacroContext) -> Option<String> {
        let e = self.scripting.faq.entry(id)?;
        Some(self.expand(&e.answer, ctx))
    }

    /// Scores of the best two entries, for visibility.
    fn match_info(&self, ranking: &Ranking) -> MatchInfo {
        let entries = self.scripting.faq.entries();
        let score = |s: &Scored| EntryScore {
            id: entries[s.entry].id.clone(),
            score: s.score,
            lexical: s.lexical,
            semantic: s.semantic,
        };
        MatchInfo {
            signal: ranking.signal,
            best: ranking.scored.first().map(score),
            runner_up: ranking.scored.get(1).map(score),
            asks_for_person: ranking.asks_for_person,
            person: ranking.person,
            ..Default::default()
        }
    }

    /// Every fact text a grounded reply may use: the system text (its fact lines), the FAQ
    /// answers, the knowledge entries (macros expanded).
    pub fn fact_text(&self, ctx: &MacroContext) -> String {
        let mut s = self.system_text(ctx);
        for e in self.scripting.faq.entries() {
            s.push('\n');
            s.push_str(&self.expand(&e.answer, ctx));
        }
        for e in self.scripting.knowledge.entries() {
            s.push('\n');
            s.push_str(&self.expand(&e.raw.content, ctx));
        }
        s
    }

    /// Facts for the model about `user_text`: knowledge entries selected from the recent
    /// messages (within the knowledge budget, in insertion order), then the best FAQ entry if
    /// it matches at or above `faq.inject_threshold` (below it answers directly instead).
    /// `tokens` counts the tokens of a text (the model's tokenizer) for the knowledge budget.
    pub fn facts(
        &self,
        history: &[ChatMessage],
        user_text: &str,
        ctx: &MacroContext,
        tokens: &dyn Fn(&str) -> u32,
    ) -> Vec<Fact> {
        let faq = match self.scripting.faq.decide(user_text) {
            FaqDecision::Inject(e, _) | FaqDecision::Answer(e, _) => self
                .scripting
                .faq
                .entries()
                .iter()
                .position(|x| x.id == e.id),
            FaqDecision::Miss => None,
        };
        self.facts_with(history, ctx, tokens, user_text, faq)
    }

    /// [`Persona::facts`] with the FAQ entry to inject (index) chosen by the caller.
    pub fn facts_with(
        &self,
        history: &[ChatMessage],
        ctx: &MacroContext,
        tokens: &dyn Fn(&str) -> u32,
        user_text: &str,
        faq: Option<usize>,
    ) -> Vec<Fact> {
        let mut recent: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
        recent.push(user_text);
        let sel = self
            .scripting
            .knowledge
            .select_by(&recent, &|e| tokens(&self.expand(&e.raw.content, ctx)));
        if !sel.dropped.is_empty() {
            tracing::info!(dropped = ?sel.dropped, "knowledge entries left out: over the knowledge budget");
        }
        let mut facts: Vec<Fact> = sel
            .entries
            .iter()
            .map(|e| Fact {
                id: format!("knowledge:{}", e.id),
                text: self.expand(&e.raw.content, ctx),
            })
            .collect();
        if let Some(e) = faq.and_then(|i| self.scripting.faq.entries().get(i)) {
            facts.push(Fact {
                id: format!("faq:{}", e.id),
                text: format!("Q: {}\nA: {}", e.questions[0], self.expand(&e.answer, ctx)),
            });
        }
        facts
    }
}

/// The system text with the facts appended.
pub(super) fn system_with_facts(system: String, facts: &[Fact]) -> String {
    if facts.is_empty() {
        return system;
    }
    let mut out = system;
    out.push_str("\n\nUse these facts when they help to answer:\n");
    for f in facts {
        out.push_str("- ");
        out.push_str(&f.text.replace('\n', "\n  "));
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
