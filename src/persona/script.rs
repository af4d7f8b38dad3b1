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

    /// Check `text` before the model: rules in order (a rule with a reply answers), then the
    /// FAQ (a match at or above `faq.threshold` answers). `first_message`: no earlier user
    /// message in the session. Variables set by matching rules are visible to the reply.
    pub fn intercept(&self, text: &str, first_message: bool, ctx: &MacroContext) -> Intercept {
        let outcome = self.scripting.rules.check(&RuleInput {
            text,
            first_message,
        });
        let mut ctx = ctx.clone();
        for a in &outcome.actions {
            if let Action::SetVar(vars) = a {
                ctx.vars
                    .extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let reply = match (outcome.answered_by, outcome.reply) {
            (Some(id), Some(reply)) => Some((self.expand(&reply, &ctx), ReplySource::Rule(id))),
            _ => match self.scripting.faq.decide(text) {
                FaqDecision::Answer(entry, _) => Some((
                    self.expand(&entry.answer, &ctx),
                    ReplySource::Faq(entry.id.clone()),
                )),
                _ => None,
            },
        };
        Intercept {
            reply,
            actions: outcome.actions,
            matched_rules: outcome.matched,
        }
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
        if let FaqDecision::Inject(e, _) | FaqDecision::Answer(e, _) =
            self.scripting.faq.decide(user_text)
        {
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
