//! The turn task: the IO around [`plan_turn`]. It reads the session's history and rule state,
//! stores the user message (flushed) before anything can fail later, lets the plan decide,
//! stores the new rule state, streams the engine's reply to the front end, and stores the
//! reply (marked interrupted when cancelled). One task per turn; its [`ReplySender`] is
//! dropped only after the last write, which is what [`Reply::cancel`] waits for.

use super::Bot;
use super::plan::{Decision, Generation, TurnInput, TurnPlan, plan_turn};
use super::reply::{Reply, ReplyEvent, ReplySender, TurnOptions, TurnOutcome};
use crate::chat::{ChatMessage, FinishReason, ReplySource, Role, SessionId, TurnStats};
use crate::engine::{EngineEvent, GenerationStats};
use crate::persona::session::SessionState;
use crate::store::{StoreError, StoredMessage};
use std::time::Instant;

/// How many stored messages a turn loads before fitting them to the context budget. Far more
/// than any context window holds, so trimming is decided by tokens, not by this number.
const HISTORY_LOAD_LIMIT: usize = 512;

/// Why a turn stopped before the engine: the message for users.
type Refusal = String;

impl Bot {
    /// Answer `text` in `session` with the persona's settings.
    pub fn turn(&self, session: SessionId, text: &str) -> Reply {
        self.turn_with(session, text, TurnOptions::default())
    }

    /// Answer `text` in `session`. Must be called inside a tokio runtime.
    pub fn turn_with(&self, session: SessionId, text: &str, opts: TurnOptions) -> Reply {
        let (reply, out) = Reply::channel();
        let bot = self.clone();
        let text = text.to_string();
        tokio::spawn(async move {
            let started = Instant::now();
            // The history is read before the message is stored, so it is never read back.
            let history = match bot.history(session) {
                Ok(h) => h,
                Err(e) => return fail(&out, e.to_string()).await,
            };
            let store = &bot.inner.store;
            let stored = store
                .append_message(session, StoredMessage::new(Role::User, text.clone()))
                .and_then(|_| store.flush());
            if let Err(e) = stored {
                return fail(&out, format!("could not save your message: {e}")).await;
            }
            bot.answer(session, &text, &history, opts, started, &out)
                .await;
        });
        reply
    }

    /// Generate the reply to the last user message again: the stored replies after it are
    /// replaced.
    pub fn regenerate(&self, session: SessionId, opts: TurnOptions) -> Reply {
        let (reply, out) = Reply::channel();
        let bot = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let store = &bot.inner.store;
            let mut messages = match store.recent_messages(session, HISTORY_LOAD_LIMIT) {
                Ok(m) => m,
                Err(e) => return fail(&out, e.to_string()).await,
            };
            let Some(at) = messages.iter().rposition(|m| m.role == Role::User) else {
                return fail(&out, "there is no message to answer again".into()).await;
            };
            let last_user = messages[at].clone();
            messages.truncate(at);
            if let Err(e) = store
                .truncate_messages(session, last_user.seq + 1)
                .and_then(|_| store.flush())
            {
                return fail(&out, e.to_string()).await;
            }
            let history = prompt_history(messages);
            bot.answer(session, &last_user.text, &history, opts, started, &out)
                .await;
        });
        reply
    }

    /// The session's stored messages as prompt history (empty texts left out).
    fn history(&self, session: SessionId) -> Result<Vec<ChatMessage>, StoreError> {
        let msgs = self
            .inner
            .store
            .recent_messages(session, HISTORY_LOAD_LIMIT)?;
        Ok(prompt_history(msgs))
    }

    /// The part of a turn after the user message is stored: decide, store the rule state,
    /// answer (scripted or generated), store the reply.
    async fn answer(
        &self,
        session: SessionId,
        text: &str,
        history: &[ChatMessage],
        opts: TurnOptions,
        started: Instant,
        out: &ReplySender,
    ) {
        let store = &self.inner.store;
        let state = match SessionState::load(store, session) {
            Ok(s) => s,
            Err(e) => return fail(out, e.to_string()).await,
        };
        let engine = self.engine();
        let decision = plan_turn(
            TurnInput {
                session,
                text,
                history,
                state,
                opts: &opts,
                engine_window: engine.context_window(),
            },
            &|state| self.persona_of(state),
            &|m| engine.count_tokens(m),
        );
        if let Some(state) = &decision.new_state
            && let Err(e) = state.save(store, session)
        {
            return fail(out, e.to_string()).await;
        }
        let outcome = |text: String, stats: TurnStats, source: ReplySource, seq: u64| TurnOutcome {
            text,
            stats,
            source,
            seq,
            persona: decision.persona.clone(),
            ended: decision.ended,
            handoff: decision.handoff,
        };
        let event = match &decision.plan {
            TurnPlan::RuleReply { rule, text } => {
                let source = ReplySource::Rule(rule.clone());
                self.scripted(session, text, source, started, &decision, out, outcome)
                    .await
            }
            TurnPlan::FaqAnswer { entry, text } => {
                let source = ReplySource::Faq(entry.clone());
                self.scripted(session, text, source, started, &decision, out, outcome)
                    .await
            }
            TurnPlan::CannotAnswer(message) => Err(message.clone()),
            TurnPlan::TooLong(message) => {
                self.drop_refused(session, text);
                Err(message.clone())
            }
            TurnPlan::Generate(g) => self
                .generate(session, g, decision.window, started, out)
                .await
                .map(|(text, stats, seq)| outcome(text, stats, ReplySource::Model, seq)),
        };
        let _ = out
            .tx
            .send(match event {
                Ok(o) => ReplyEvent::Done(o),
                Err(message) => ReplyEvent::Failed(message),
            })
            .await;
    }

    /// Remove the message just refused as too long for the context window (the last one of the
    /// session, unanswered): it never reaches the model and could never be answered, and kept
    /// it would sit in the history with no reply. The person still has their text.
    fn drop_refused(&self, session: SessionId, text: &str) {
        let store = &self.inner.store;
        let dropped = store
            .recent_messages(session, 1)
            .and_then(|last| match last.last() {
                Some(m) if m.role == Role::User && m.text == text => store
                    .truncate_messages(session, m.seq)
                    .and_then(|_| store.flush()),
                _ => Ok(()),
            });
        if let Err(e) = dropped {
            tracing::warn!(session = session.0, error = %e, "could not remove a refused message");
        }
    }

    /// Answer with a persona-scripted reply (rule or FAQ): one token, stored.
    #[allow(clippy::too_many_arguments)]
    async fn scripted(
        &self,
        session: SessionId,
        text: &str,
        source: ReplySource,
        started: Instant,
        decision: &Decision,
        out: &ReplySender,
        outcome: impl Fn(String, TurnStats, ReplySource, u64) -> TurnOutcome,
    ) -> Result<TurnOutcome, Refusal> {
        let store = &self.inner.store;
        let stats = TurnStats {
            ttft_ms: started.elapsed().as_secs_f64() * 1000.0,
            context_window: decision.window,
            ..Default::default()
        };
        let mut msg = StoredMessage::new(Role::Assistant, text);
        msg.source = source.clone();
        msg.stats = Some(stats.clone());
        let m = store
            .append_message(session, msg)
            .and_then(|m| store.flush().map(|_| m))
            .map_err(|e| format!("could not save the reply: {e}"))?;
        let _ = out.tx.send(ReplyEvent::Token(text.to_string())).await;
        Ok(outcome(text.to_string(), stats, source, m.seq))
    }

    /// Stream the model's reply to `g` and store it. Returns the text, its numbers and the
    /// stored sequence number, or the message of a failure (a partial reply is stored as
    /// interrupted first).
    async fn generate(
        &self,
        session: SessionId,
        g: &Generation,
        window: u32,
        started: Instant,
        out: &ReplySender,
    ) -> Result<(String, TurnStats, u64), Refusal> {
        if g.trimmed > 0 {
            tracing::info!(
                session = session.0,
                trimmed = g.trimmed,
                tokens = g.prompt_tokens,
                window,
                "older messages left out of the prompt to fit the context window"
            );
        }
        let tx = &out.tx;
        let mut events = self.engine().generate(g.request.clone());
        let mut reply = String::new();
        let mut ttft_ms = None;
        let mut completion_tokens = 0u32;
        let outcome: Result<GenerationStats, String> = loop {
            // Also watch the front end: a reply dropped while the engine is silent (queued, or
            // evaluating a long prompt) is cancelled now, not at the next token.
            let ev = tokio::select! {
                ev = events.recv() => ev,
                _ = tx.closed() => break Ok(cancelled_stats(completion_tokens)),
            };
            let Some(ev) = ev else {
                break Err("the engine stopped without finishing the reply".to_string());
            };
            match ev {
                EngineEvent::Queued { position } => {
                    if tx.send(ReplyEvent::Queued { position }).await.is_err() {
                        break Ok(cancelled_stats(completion_tokens));
                    }
                }
                EngineEvent::Token(piece) => {
                    ttft_ms.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
                    completion_tokens += 1;
                    reply.push_str(&piece);
                    if tx.send(ReplyEvent::Token(piece)).await.is_err() {
                        // The front end dropped the reply: stop the engine (drop its stream).
                        break Ok(cancelled_stats(completion_tokens));
                    }
                }
                EngineEvent::Done(stats) => break Ok(stats),
                EngineEvent::Failed(e) => break Err(e.to_string()),
            }
        };
        drop(events);

        let (stats, failure) = match outcome {
            Ok(s) => {
                let stats = TurnStats {
                    prompt_tokens: s.prompt_tokens.max(g.prompt_tokens),
                    reused_tokens: s.reused_tokens,
                    completion_tokens: s.completion_tokens,
                    ttft_ms: ttft_ms.unwrap_or(0.0),
                    tokens_per_second: s.tokens_per_second(),
                    trimmed_messages: g.trimmed,
                    context_window: window,
                    finish: s.finish,
                    injected: g.injected.clone(),
                };
                (stats, None)
            }
            Err(msg) => (
                TurnStats {
                    prompt_tokens: g.prompt_tokens,
                    completion_tokens,
                    trimmed_messages: g.trimmed,
                    context_window: window,
                    finish: FinishReason::Cancelled,
                    ..Default::default()
                },
                Some(msg),
            ),
        };
        if let Some(msg) = &failure
            && reply.is_empty()
        {
            // Nothing to keep: the user message stays, unanswered, for a retry.
            return Err(msg.clone());
        }
        let store = &self.inner.store;
        let mut msg = StoredMessage::new(Role::Assistant, reply.clone());
        msg.tokens = Some(stats.completion_tokens);
        msg.interrupted = stats.finish == FinishReason::Cancelled;
        msg.stats = Some(stats.clone());
        let saved = store
            .append_message(session, msg)
            .and_then(|m| store.flush().map(|_| m));
        match (saved, failure) {
            (Err(e), _) => Err(format!("could not save the reply: {e}")),
            (Ok(_), Some(msg)) => Err(msg),
            (Ok(m), None) => Ok((reply, stats, m.seq)),
        }
    }
}

/// Send the failure of a turn.
async fn fail(out: &ReplySender, message: String) {
    let _ = out.tx.send(ReplyEvent::Failed(message)).await;
}

/// Stored messages as prompt history: empty texts (a reply cut before its first token) left
/// out.
fn prompt_history(msgs: Vec<StoredMessage>) -> Vec<ChatMessage> {
    msgs.into_iter()
        .filter(|m| !m.text.is_empty())
        .map(|m| ChatMessage::new(m.role, m.text))
        .collect()
}

fn cancelled_stats(completion_tokens: u32) -> GenerationStats {
    GenerationStats {
        completion_tokens,
        finish: FinishReason::Cancelled,
        ..Default::default()
    }
}
