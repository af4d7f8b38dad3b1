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
use crate::matching::MatchInfo;
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
            // The engine gets ready while the message is stored and the request built, and
            // starts on the prompt it expects where the message alone changes the prompt.
            // The rule state is read once: for the hint, and for the plan after storing.
            let state = SessionState::load(&bot.inner.store, session).ok();
            let persona = state
                .as_ref()
                .map_or_else(|| bot.persona(), |s| bot.persona_of(s));
            let guess = !persona.prompt_depends_on_message();
            bot.engine().expect_turn(
                &crate::engine::session_cache_key(session, persona.version()),
                Some(text.as_str()).filter(|_| guess),
            );
            // The history is read before the message is stored, so it is never read back.
            let (history, last_reply) = match bot.history(session) {
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
            bot.answer(
                session,
                &text,
                &history,
                last_reply.as_ref(),
                state,
                opts,
                started,
                &out,
            )
            .await;
        });
        reply
    }

    /// Answer `session` with FAQ entry `id`, as if the user picked it from offered choices
    /// (the entry's first question is stored as the user's message).
    pub fn choose(&self, session: SessionId, id: &str) -> Reply {
        let (reply, out) = Reply::channel();
        let bot = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let started = Instant::now();
            let persona = bot.session_persona(session);
            let Some(entry) = persona.faq().entry(&id) else {
                return fail(&out, format!("there is no FAQ entry \"{id}\"")).await;
            };
            let question = entry.questions.first().cloned().unwrap_or_default();
            let store = &bot.inner.store;
            let stored = store
                .append_message(session, StoredMessage::new(Role::User, question))
                .and_then(|_| store.flush());
            if let Err(e) = stored {
                return fail(&out, format!("could not save your choice: {e}")).await;
            }
            let text = persona
                .faq_answer(&id, &crate::persona::MacroContext::default())
                .unwrap_or_default();
            let window = bot.engine().context_window();
            let decision = Decision {
                plan: TurnPlan::FaqAnswer {
                    entry: id.clone(),
                    text: text.clone(),
                },
                new_state: None,
                persona: persona.name().to_string(),
                ended: false,
                handoff: false,
                window,
                retrieval: Some(Box::new(crate::support::turn::picked_info(&id))),
            };
            let outcome = |text, stats: TurnStats, source, seq| TurnOutcome {
                retrieval: stats.retrieval.clone(),
                text,
                stats,
                source,
                seq,
                persona: decision.persona.clone(),
                ..Default::default()
            };
            let source = ReplySource::Faq(id.clone());
            let event = bot
                .scripted(session, &text, source, started, &decision, &out, outcome)
                .await;
            let _ = out
                .tx
                .send(match event {
                    Ok(o) => ReplyEvent::Done(o),
                    Err(message) => ReplyEvent::Failed(message),
                })
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
            let last_reply = messages
                .last()
                .filter(|m| m.role == Role::Assistant)
                .cloned();
            if let Err(e) = store
                .truncate_messages(session, last_user.seq + 1)
                .and_then(|_| store.flush())
            {
                return fail(&out, e.to_string()).await;
            }
            let history = prompt_history(messages);
            let last = last_reply.as_ref();
            bot.answer(
                session,
                &last_user.text,
                &history,
                last,
                None,
                opts,
                started,
                &out,
            )
            .await;
        });
        reply
    }

    /// The session's stored messages as prompt history (empty texts left out), and the bot's
    /// last reply (a "did you mean" it offered is answered by a number).
    fn history(
        &self,
        session: SessionId,
    ) -> Result<(Vec<ChatMessage>, Option<StoredMessage>), StoreError> {
        let msgs = self
            .inner
            .store
            .recent_messages(session, HISTORY_LOAD_LIMIT)?;
        let last = msgs.last().filter(|m| m.role == Role::Assistant).cloned();
        Ok((prompt_history(msgs), last))
    }

    /// The part of a turn after the user message is stored: decide, store the rule state,
    /// answer (scripted or generated), store the reply.
    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        session: SessionId,
        text: &str,
        history: &[ChatMessage],
        last_reply: Option<&StoredMessage>,
        state: Option<SessionState>,
        opts: TurnOptions,
        started: Instant,
        out: &ReplySender,
    ) {
        let store = &self.inner.store;
        let state = match state.map_or_else(|| SessionState::load(store, session), Ok) {
            Ok(s) => s,
            Err(e) => return fail(out, e.to_string()).await,
        };
        let engine = self.engine();
        // Embedding the message is CPU work: off the runtime's threads.
        let persona = self.persona_of(&state);
        let ranking = if persona.faq().entries().is_empty() {
            None
        } else {
            let (retriever, t) = (self.retriever(), text.to_string());
            match tokio::task::spawn_blocking(move || retriever.rank(&persona, &t)).await {
                Ok(r) => Some(r),
                Err(e) => return fail(out, format!("FAQ search failed: {e}")).await,
            }
        };
        let decision = plan_turn(
            TurnInput {
                session,
                text,
                history,
                state,
                opts: &opts,
                engine_window: engine.context_window(),
                ranking: ranking.as_ref(),
                last_reply,
            },
            &|state| self.persona_of(state),
            &|m| engine.count_tokens(m),
        );
        if let Some(state) = &decision.new_state
            && let Err(e) = state.save(store, session)
        {
            return fail(out, e.to_string()).await;
        }
        if let Some(info) = &decision.retrieval {
            tracing::debug!(session = session.0, faq = %info.summary(), "FAQ match");
        }
        let outcome = |text: String, stats: TurnStats, source: ReplySource, seq: u64| {
            let retrieval = stats.retrieval.clone();
            TurnOutcome {
                choices: match &decision.plan {
                    TurnPlan::OfferChoices { choices, .. } => choices.clone(),
                    _ => Vec::new(),
                },
                offer_handoff: match (&decision.plan, &source) {
                    (TurnPlan::NotSure { offer_handoff, .. }, _) => *offer_handoff,
                    (TurnPlan::Generate(g), ReplySource::Unsure) => {
                        g.check.as_ref().is_some_and(|c| c.offer_handoff)
                    }
                    _ => false,
                },
                text,
                stats,
                source,
                seq,
                persona: decision.persona.clone(),
                ended: decision.ended,
                handoff: decision.handoff,
                retrieval,
            }
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
            TurnPlan::OfferChoices { text, .. } => {
                let source = ReplySource::Choices;
                self.scripted(session, text, source, started, &decision, out, outcome)
                    .await
            }
            TurnPlan::NotSure { text, .. } => {
                tracing::info!(
                    session = session.0,
                    "not sure: nothing relevant in the facts"
                );
                let source = ReplySource::Unsure;
                self.scripted(session, text, source, started, &decision, out, outcome)
                    .await
            }
            TurnPlan::CannotAnswer(message) => Err(message.clone()),
            TurnPlan::TooLong(message) => {
                self.drop_refused(session, text);
                Err(message.clone())
            }
            TurnPlan::Generate(g) => self
                .generate(session, g, &decision, started, out)
                .await
                .map(|(text, stats, source, seq)| outcome(text, stats, source, seq)),
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
            retrieval: decision.retrieval.clone(),
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

    /// Stream the model's reply to `g` and store it. Grounded replies (`g.check`) are held
    /// back until the facts check passes; one stating a specific not in the facts is replaced
    /// by the "not sure" reply (logged, and stored with what it invented). Returns the text,
    /// its numbers, its source and the stored sequence number, or the message of a failure (a
    /// partial reply is stored as interrupted first).
    async fn generate(
        &self,
        session: SessionId,
        g: &Generation,
        decision: &Decision,
        started: Instant,
        out: &ReplySender,
    ) -> Result<(String, TurnStats, ReplySource, u64), Refusal> {
        let window = decision.window;
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
                    // Grounded replies are checked before anyone sees them.
                    if g.check.is_some() {
                        continue;
                    }
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
                    retrieval: decision.retrieval.clone(),
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
                    retrieval: decision.retrieval.clone(),
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
        let mut stats = stats;
        let mut source = ReplySource::Model;
        if let Some(check) = &g.check
            && failure.is_none()
            && stats.finish != FinishReason::Cancelled
        {
            let invented = check.invented(&reply);
            if !invented.is_empty() {
                tracing::warn!(
                    session = session.0,
                    invented = ?invented,
                    reply = %reply,
                    "grounded reply stated specifics not in the facts; replaced by the not-sure reply"
                );
                reply = check.not_sure.clone();
                source = ReplySource::Unsure;
                let mut info: MatchInfo = stats.retrieval.take().map(|b| *b).unwrap_or_default();
                info.invented = invented;
                stats.retrieval = Some(Box::new(info));
            }
            let _ = tx.send(ReplyEvent::Token(reply.clone())).await;
        }
        let store = &self.inner.store;
        let mut msg = StoredMessage::new(Role::Assistant, reply.clone());
        msg.source = source.clone();
        msg.tokens = Some(stats.completion_tokens);
        msg.interrupted = stats.finish == FinishReason::Cancelled;
        msg.stats = Some(stats.clone());
        let saved = store
            .append_message(session, msg)
            .and_then(|m| store.flush().map(|_| m));
        match (saved, failure) {
            (Err(e), _) => Err(format!("could not save the reply: {e}")),
            (Ok(_), Some(msg)) => Err(msg),
            (Ok(m), None) => Ok((reply, stats, source, m.seq)),
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
