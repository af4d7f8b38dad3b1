//! The decision part of a turn as a pure function: from the persona, the session's history and
//! rule state, the new message and the engine's window, [`plan_turn`] decides how the turn is
//! answered (a [`TurnPlan`]) and what the session's rule state becomes. It touches no store and
//! no engine (token counting and persona lookup are passed in), so it is table-tested without
//! IO; [`Bot`](super::Bot) reads the inputs, carries the plan out and stores the results.

use super::reply::TurnOptions;
use crate::chat::{ChatMessage, ReplySource, Role, SessionId};
use crate::engine::{EngineError, GenerateRequest};
use crate::matching::{MatchInfo, Ranking};
use crate::persona::session::SessionState;
use crate::persona::{MacroContext, Persona};
use crate::store::StoredMessage;
use crate::support::turn::{self as grounded, Choice};
use std::sync::Arc;

/// What a turn is decided from.
#[derive(Debug, Clone)]
pub struct TurnInput<'a> {
    /// The session answered.
    pub session: SessionId,
    /// The new user message.
    pub text: &'a str,
    /// The session's messages before it (oldest first, empty texts left out).
    pub history: &'a [ChatMessage],
    /// The session's rule state before the turn.
    pub state: SessionState,
    /// Per-turn overrides.
    pub opts: &'a TurnOptions,
    /// The engine's context window in tokens.
    pub engine_window: u32,
    /// The message's FAQ ranking from the hybrid retriever (`None`: the persona's lexical
    /// index alone).
    pub ranking: Option<&'a Ranking>,
    /// The bot's previous reply in the session (a "did you mean" it offered is answered by a
    /// number).
    pub last_reply: Option<&'a StoredMessage>,
}

/// How a turn is answered. Each variant is one way a reply can come about; new ways (grounded
/// answers, clarifying choices) are new variants.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnPlan {
    /// A persona rule answers with `text`; the model is skipped.
    RuleReply {
        /// The rule's id.
        rule: String,
        /// The reply, macros expanded.
        text: String,
    },
    /// An FAQ entry answers with `text`; the model is skipped.
    FaqAnswer {
        /// The entry's id.
        entry: String,
        /// The answer, macros expanded.
        text: String,
    },
    /// Retrieval is unsure between entries: "did you mean" with numbered `choices`.
    OfferChoices {
        /// The reply listing the choices.
        text: String,
        /// The entries offered, numbered.
        choices: Vec<Choice>,
    },
    /// Grounded mode found nothing relevant in the facts: the persona's "not sure" reply,
    /// with a human offered when the persona says so.
    NotSure {
        /// The reply, macros expanded.
        text: String,
        /// Front ends may offer the persona's handoff.
        offer_handoff: bool,
    },
    /// The model answers.
    Generate(Generation),
    /// No prompt can be built (it does not fit the window, or counting its tokens failed):
    /// the turn fails with this message for users.
    CannotAnswer(String),
    /// The message alone is too long for the context window: refused with this message, and
    /// removed from the history (it never reaches the model and could never be answered).
    TooLong(String),
}

/// A prompt for the model and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The engine request (prompt, sampling, length cap, stop strings, cache key).
    pub request: GenerateRequest,
    /// Tokens the prompt takes.
    pub prompt_tokens: u32,
    /// History messages left out to fit the window.
    pub trimmed: u32,
    /// Facts injected into the system message (`faq:ID`, `knowledge:ID`).
    pub injected: Vec<String>,
    /// Grounded mode: the reply is checked against these facts before anyone sees it.
    pub check: Option<FactsCheck>,
}

/// Grounded mode's check of a generated reply (carried out by the turn after generation).
#[derive(Debug, Clone, PartialEq)]
pub struct FactsCheck {
    /// Every fact text the reply may take specifics from.
    pub facts: String,
    /// The reply stored instead of one stating a specific not in `facts`.
    pub not_sure: String,
    /// The replacement offers a human.
    pub offer_handoff: bool,
}

impl FactsCheck {
    /// The specifics `reply` states that the facts do not contain (empty: it passes).
    pub fn invented(&self, reply: &str) -> Vec<String> {
        crate::matching::specifics::unsupported(reply, &self.facts)
    }
}

/// The decision for one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// How the turn is answered.
    pub plan: TurnPlan,
    /// The session's new rule state, when the turn changed it (stored before the reply).
    pub new_state: Option<SessionState>,
    /// Display name of the persona speaking after the turn's rules.
    pub persona: String,
    /// The session ended (an `end_session` rule).
    pub ended: bool,
    /// A human was asked for (a `handoff` rule, now or earlier).
    pub handoff: bool,
    /// The context window the turn works within.
    pub window: u32,
    /// What FAQ retrieval saw (scores, runner-up, choices), when the persona has an FAQ.
    pub retrieval: Option<Box<MatchInfo>>,
}

/// Decide how to answer `input`. `persona_for` gives the persona speaking for a rule state (the
/// bot's, or the one a `switch_persona` rule chose); `count` gives the tokens of templated
/// messages.
pub fn plan_turn(
    input: TurnInput<'_>,
    persona_for: &dyn Fn(&SessionState) -> Arc<Persona>,
    count: &dyn Fn(&[ChatMessage]) -> Result<u32, EngineError>,
) -> Decision {
    let TurnInput {
        session,
        text,
        history,
        mut state,
        opts,
        engine_window,
        ranking,
        last_reply,
    } = input;
    // A message in an ended session (a front end that did not start a new one) opens it again.
    let reopened = std::mem::take(&mut state.ended);
    let mut persona = persona_for(&state);
    let mut ctx = MacroContext {
        user: opts.user_name.clone().unwrap_or_else(|| "user".to_string()),
        vars: state.vars.clone(),
        seed: session.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ history.len() as u64,
    };
    // A number (or question) picking one of the choices the last reply offered.
    if let Some(entry) = grounded::picked(&persona, last_reply, text) {
        let text = persona.faq_answer(&entry, &ctx).unwrap_or_default();
        let window = persona
            .context_window()
            .unwrap_or(engine_window)
            .min(engine_window);
        return Decision {
            retrieval: Some(Box::new(grounded::picked_info(&entry))),
            plan: TurnPlan::FaqAnswer { entry, text },
            persona: persona.name().to_string(),
            ended: state.ended,
            handoff: state.handoff,
            window,
            new_state: reopened.then_some(state),
        };
    }
    let first_message = !history.iter().any(|m| m.role == Role::User);
    // Rules and the FAQ may answer before the model; rule actions update the session's state.
    let lexical;
    let ranking = match ranking {
        Some(r) => r,
        None => {
            lexical = persona.lexical_ranking(text);
            &lexical
        }
    };
    let intercept = persona.intercept_ranked(text, first_message, &ctx, ranking);
    let retrieval =
        Some(Box::new(intercept.retrieval.clone())).filter(|_| !persona.faq().entries().is_empty());
    let changed = state.apply(&intercept.actions) || reopened;
    if changed {
        ctx.vars = state.vars.clone();
        // After a switch the new persona answers (unless the rule replied itself).
        persona = persona_for(&state);
    }
    let window = persona
        .context_window()
        .unwrap_or(engine_window)
        .min(engine_window);
    let plan = match intercept.reply {
        Some((text, ReplySource::Rule(rule))) => TurnPlan::RuleReply { rule, text },
        Some((text, ReplySource::Faq(entry))) => TurnPlan::FaqAnswer { entry, text },
        Some((text, ReplySource::Choices)) => TurnPlan::OfferChoices {
            text,
            choices: grounded::offered(&persona, Some(&intercept.retrieval)),
        },
        Some((text, ReplySource::Unsure)) => TurnPlan::NotSure {
            text,
            offer_handoff: intercept.offer_handoff,
        },
        Some((_, ReplySource::Model)) | None => {
            match persona.render_prompt_injecting(
                history,
                text,
                &ctx,
                window,
                count,
                intercept.inject,
            ) {
                Err(e @ EngineError::PromptTooLong { .. }) => TurnPlan::TooLong(e.to_string()),
                Err(e) => TurnPlan::CannotAnswer(e.to_string()),
                Ok(prompt) => TurnPlan::Generate(Generation {
                    request: GenerateRequest {
                        cache_key: crate::engine::session_cache_key(session, persona.version()),
                        // Shared between conversations whose preamble renders to the same
                        // tokens (facts injected into the system message for one message make
                        // a prefix of their own).
                        prefix_messages: prompt.preamble,
                        messages: prompt.messages,
                        sampling: opts
                            .sampling
                            .clone()
                            .unwrap_or_else(|| persona.sampling().clone()),
                        max_tokens: opts.max_tokens.unwrap_or_else(|| persona.max_tokens()),
                        stop: persona.stop().to_vec(),
                    },
                    prompt_tokens: prompt.tokens,
                    trimmed: prompt.trimmed,
                    injected: prompt.injected,
                    check: intercept.grounded.then(|| FactsCheck {
                        facts: persona.fact_text(&ctx),
                        not_sure: persona.not_sure_text(&ctx),
                        offer_handoff: persona.grounding().raw.offer_handoff,
                    }),
                }),
            }
        }
    };
    Decision {
        plan,
        persona: persona.name().to_string(),
        ended: state.ended,
        handoff: state.handoff,
        window,
        new_state: changed.then_some(state),
        retrieval,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
