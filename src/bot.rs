//! `Bot` = persona + engine + store. [`Bot::turn`] is the boundary both front ends use: it
//! persists the user message (flushed) before generation, streams [`ReplyEvent`]s, and stores
//! the reply when it ends (marked interrupted when the [`Reply`] is dropped first). Front ends
//! never write history themselves.

use crate::chat::{ChatMessage, FinishReason, ReplySource, Role, SessionId, TurnStats};
use crate::engine::{Engine, EngineEvent, GenerateRequest, Sampling};
use crate::persona::library::Library;
use crate::persona::session::SessionState;
use crate::persona::{MacroContext, Persona};
use crate::store::{SessionInfo, Store, StoreError, StoredMessage};
use futures::Stream;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::mpsc;

/// How many stored messages a turn loads before fitting them to the context budget. Far more
/// than any context window holds, so trimming is decided by tokens, not by this number.
const HISTORY_LOAD_LIMIT: usize = 512;

/// Capacity of a reply channel: a slow front end slows generation instead of growing memory.
const REPLY_BUFFER: usize = 64;

/// Errors of bot operations outside a turn.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a turn streams to a front end.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    /// The engine is busy with other chats: this turn waits at `position` (1 = next).
    Queued {
        /// 1-based place in line.
        position: usize,
    },
    /// A piece of reply text.
    Token(String),
    /// The reply ended and is stored.
    Done(TurnOutcome),
    /// The turn failed; the text is for users. Whatever was generated is stored as interrupted.
    Failed(String),
}

/// A finished turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TurnOutcome {
    /// The whole reply text.
    pub text: String,
    /// Numbers about the turn.
    pub stats: TurnStats,
    /// What produced the reply.
    pub source: ReplySource,
    /// Sequence number of the stored reply.
    pub seq: u64,
    /// Display name of the persona speaking in the session now (a `switch_persona` rule may
    /// have changed it in this turn).
    pub persona: String,
    /// An `end_session` rule ended the session: front ends start a new one for the next
    /// message.
    pub ended: bool,
    /// A `handoff` rule asked for a human.
    pub handoff: bool,
}

/// Per-turn overrides (CLI flags, tests).
#[derive(Debug, Clone, Default)]
pub struct TurnOptions {
    /// Replace the persona's sampling settings.
    pub sampling: Option<Sampling>,
    /// Replace the persona's reply length cap.
    pub max_tokens: Option<u32>,
    /// Name for `{{user}}`.
    pub user_name: Option<String>,
}

/// The stream of one turn. Dropping it cancels the turn; the partial reply is stored as
/// interrupted.
pub struct Reply {
    rx: mpsc::Receiver<ReplyEvent>,
}

impl Reply {
    /// The next event, or `None` after `Done`/`Failed`.
    pub async fn next(&mut self) -> Option<ReplyEvent> {
        self.rx.recv().await
    }

    /// Wait for the end of the turn, ignoring streamed pieces.
    pub async fn finish(mut self) -> Result<TurnOutcome, String> {
        while let Some(ev) = self.rx.recv().await {
            match ev {
                ReplyEvent::Done(outcome) => return Ok(outcome),
                ReplyEvent::Failed(msg) => return Err(msg),
                ReplyEvent::Token(_) | ReplyEvent::Queued { .. } => {}
            }
        }
        Err("the turn ended without a reply".to_string())
    }
}

impl Stream for Reply {
    type Item = ReplyEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReplyEvent>> {
        self.rx.poll_recv(cx)
    }
}

struct Inner {
    persona: RwLock<Arc<Persona>>,
    engine: RwLock<Arc<dyn Engine>>,
    store: Store,
    /// Where personas named by `switch_persona` rules are found.
    library: OnceLock<Library>,
}

/// Persona + engine + store. Cheap to clone; share one per front end.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<Inner>,
}

impl Bot {
    /// A bot speaking as `persona` through `engine`, keeping history in `store`.
    pub fn new(persona: Persona, engine: Arc<dyn Engine>, store: Store) -> Self {
        Self {
            inner: Arc::new(Inner {
                persona: RwLock::new(Arc::new(persona)),
                engine: RwLock::new(engine),
                store,
                library: OnceLock::new(),
            }),
        }
    }

    /// The current persona (a snapshot: hot reload swaps it for later turns).
    pub fn persona(&self) -> Arc<Persona> {
        self.inner
            .persona
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the persona for turns started from now on (hot reload, persona switch).
    pub fn set_persona(&self, persona: Persona) {
        *self
            .inner
            .persona
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(persona);
    }

    /// The engine.
    pub fn engine(&self) -> Arc<dyn Engine> {
        self.inner
            .engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the engine for turns started from now on (the TUI loads the model after it
    /// opens, and loads it again when the user retries).
    pub fn set_engine(&self, engine: Arc<dyn Engine>) {
        *self.inner.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }

    /// Shut down before the process exits: the engine saves what must outlive the process (the
    /// conversations' cached states, for a warm start next time) and the store is flushed.
    pub async fn close(&self) {
        let engine = self.engine();
        if let Err(e) = tokio::task::spawn_blocking(move || engine.close()).await {
            tracing::warn!("closing the engine failed: {e}");
        }
        if let Err(e) = self.inner.store.flush() {
            tracing::warn!("flushing the store failed: {e}");
        }
    }

    /// Let `switch_persona` rules (and sessions switched by them) find personas in `library`.
    /// Only the first call takes effect.
    pub fn set_library(&self, library: Library) {
        let _ = self.inner.library.set(library);
    }

    /// The persona speaking in `session`: the one a `switch_persona` rule chose there, else the
    /// bot's.
    pub fn session_persona(&self, session: SessionId) -> Arc<Persona> {
        match SessionState::load(&self.inner.store, session) {
            Ok(state) => self.persona_of(&state),
            Err(_) => self.persona(),
        }
    }

    /// The persona for a session's state (the bot's when the switch target cannot be loaded;
    /// the log says why).
    fn persona_of(&self, state: &SessionState) -> Arc<Persona> {
        let current = self.persona();
        let Some(id) = state.persona.as_deref().filter(|id| *id != current.id()) else {
            return current;
        };
        let Some(library) = self.inner.library.get() else {
            tracing::warn!(
                persona = id,
                "switch_persona: no persona library; keeping the current persona"
            );
            return current;
        };
        library.get(id).unwrap_or_else(|e| {
            tracing::warn!(
                persona = id,
                "switch_persona failed, keeping the current persona: {e}"
            );
            current
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The session named `name`, created if missing.
    pub fn open_session(&self, name: &str) -> Result<SessionInfo, BotError> {
        if let Some(s) = self.inner.store.find_session(name)? {
            return Ok(s);
        }
        self.new_session(Some(name))
    }

    /// A new session, named `name` or a generated name (`chat-YYYYMMDD-HHMMSS[-n]`).
    pub fn new_session(&self, name: Option<&str>) -> Result<SessionInfo, BotError> {
        let store = &self.inner.store;
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let base = chrono::Local::now()
                    .format("chat-%Y%m%d-%H%M%S")
                    .to_string();
                let mut candidate = base.clone();
                let mut n = 2;
                while store.find_session(&candidate)?.is_some() {
                    candidate = format!("{base}-{n}");
                    n += 1;
                }
                candidate
            }
        };
        let info = store.create_session(&name, self.persona().id(), &self.engine().model_name())?;
        store.flush()?;
        Ok(info)
    }

    /// Answer `text` in `session` with the persona's settings.
    pub fn turn(&self, session: SessionId, text: &str) -> Reply {
        self.turn_with(session, text, TurnOptions::default())
    }

    /// Answer `text` in `session`. Must be called inside a tokio runtime.
    pub fn turn_with(&self, session: SessionId, text: &str, opts: TurnOptions) -> Reply {
        let (tx, rx) = mpsc::channel(REPLY_BUFFER);
        let bot = self.clone();
        let text = text.to_string();
        tokio::spawn(async move {
            let started = Instant::now();
            let user = StoredMessage::new(Role::User, text.clone());
            let stored = bot
                .inner
                .store
                .append_message(session, user)
                .and_then(|_| bot.inner.store.flush());
            if let Err(e) = stored {
                let _ = tx
                    .send(ReplyEvent::Failed(format!(
                        "could not save your message: {e}"
                    )))
                    .await;
                return;
            }
            bot.generate(session, text, opts, started, tx).await;
        });
        Reply { rx }
    }

    /// Generate the reply to the last user message again: the stored replies after it are
    /// replaced.
    pub fn regenerate(&self, session: SessionId, opts: TurnOptions) -> Reply {
        let (tx, rx) = mpsc::channel(REPLY_BUFFER);
        let bot = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let store = &bot.inner.store;
            let last_user = match store.recent_messages(session, HISTORY_LOAD_LIMIT) {
                Ok(msgs) => msgs.into_iter().rev().find(|m| m.role == Role::User),
                Err(e) => {
                    let _ = tx.send(ReplyEvent::Failed(e.to_string())).await;
                    return;
                }
            };
            let Some(last_user) = last_user else {
                let _ = tx
                    .send(ReplyEvent::Failed(
                        "there is no message to answer again".into(),
                    ))
                    .await;
                return;
            };
            if let Err(e) = store
                .truncate_messages(session, last_user.seq + 1)
                .and_then(|_| store.flush())
            {
                let _ = tx.send(ReplyEvent::Failed(e.to_string())).await;
                return;
            }
            bot.generate(session, last_user.text, opts, started, tx)
                .await;
        });
        Reply { rx }
    }

    /// The part of a turn after the user message is stored: prompt, engine, store the reply.
    async fn generate(
        &self,
        session: SessionId,
        text: String,
        opts: TurnOptions,
        started: Instant,
        tx: mpsc::Sender<ReplyEvent>,
    ) {
        let engine = self.engine();
        let store = &self.inner.store;

        let history = match store.recent_messages(session, HISTORY_LOAD_LIMIT) {
            Ok(mut msgs) => {
                // The last stored message is the one being answered.
                if msgs
                    .last()
                    .is_some_and(|m| m.role == Role::User && m.text == text)
                {
                    msgs.pop();
                }
                msgs.into_iter()
                    .filter(|m| !m.text.is_empty())
                    .map(|m| ChatMessage::new(m.role, m.text))
                    .collect::<Vec<_>>()
            }
            Err(e) => {
                let _ = tx.send(ReplyEvent::Failed(e.to_string())).await;
                return;
            }
        };
        // Persona scripting: rules and the FAQ may answer before the model; rule actions update
        // the session's state (variables, handoff).
        let mut state = match SessionState::load(store, session) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(ReplyEvent::Failed(e.to_string())).await;
                return;
            }
        };
        // A message in an ended session (a front end that did not start a new one) opens it
        // again.
        let reopened = std::mem::take(&mut state.ended);
        let mut persona = self.persona_of(&state);
        let mut ctx = MacroContext {
            user: opts.user_name.clone().unwrap_or_else(|| "user".to_string()),
            vars: state.vars.clone(),
            seed: session.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ history.len() as u64,
        };
        let first_message = !history.iter().any(|m| m.role == Role::User);
        let intercept = persona.intercept(&text, first_message, &ctx);
        if state.apply(&intercept.actions) || reopened {
            if let Err(e) = state.save(store, session) {
                let _ = tx.send(ReplyEvent::Failed(e.to_string())).await;
                return;
            }
            ctx.vars = state.vars.clone();
            // After a switch the new persona answers (unless the rule replied itself).
            persona = self.persona_of(&state);
        }
        let window = persona
            .context_window()
            .unwrap_or_else(|| engine.context_window())
            .min(engine.context_window());
        let after = After {
            persona: persona.name().to_string(),
            ended: state.ended,
            handoff: state.handoff,
        };
        if let Some((reply, source)) = intercept.reply {
            self.answer_scripted(session, reply, source, started, window, after, tx)
                .await;
            return;
        }
        let counter = |m: &[ChatMessage]| engine.count_tokens(m);
        let prompt = match persona.render_prompt(&history, &text, &ctx, window, &counter) {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(ReplyEvent::Failed(e.to_string())).await;
                return;
            }
        };
        if prompt.trimmed > 0 {
            tracing::info!(
                session = session.0,
                trimmed = prompt.trimmed,
                tokens = prompt.tokens,
                window,
                "older messages left out of the prompt to fit the context window"
            );
        }
        let req = GenerateRequest {
            cache_key: format!("s{}-{}", session.0, persona.version()),
            // Shared between conversations whose preamble renders to the same tokens (facts
            // injected into the system message for one message make a prefix of their own).
            prefix_messages: prompt.preamble,
            messages: prompt.messages,
            sampling: opts.sampling.unwrap_or_else(|| persona.sampling().clone()),
            max_tokens: opts.max_tokens.unwrap_or_else(|| persona.max_tokens()),
            stop: persona.stop().to_vec(),
        };

        let mut events = engine.generate(req);
        let mut reply = String::new();
        let mut ttft_ms = None;
        let mut completion_tokens = 0u32;
        let outcome: Result<crate::engine::GenerationStats, String> = loop {
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
            Ok(g) => {
                let stats = TurnStats {
                    prompt_tokens: g.prompt_tokens.max(prompt.tokens),
                    reused_tokens: g.reused_tokens,
                    completion_tokens: g.completion_tokens,
                    ttft_ms: ttft_ms.unwrap_or(0.0),
                    tokens_per_second: g.tokens_per_second(),
                    trimmed_messages: prompt.trimmed,
                    context_window: window,
                    finish: g.finish,
                    injected: prompt.injected.clone(),
                };
                (stats, None)
            }
            Err(msg) => (
                TurnStats {
                    prompt_tokens: prompt.tokens,
                    completion_tokens,
                    trimmed_messages: prompt.trimmed,
                    context_window: window,
                    finish: FinishReason::Cancelled,
                    ..Default::default()
                },
                Some(msg),
            ),
        };
        let interrupted = stats.finish == FinishReason::Cancelled;
        if failure.is_some() && reply.is_empty() {
            // Nothing to keep: the user message stays, unanswered, for a retry.
            let _ = tx
                .send(ReplyEvent::Failed(failure.unwrap_or_default()))
                .await;
            return;
        }
        let mut msg = StoredMessage::new(Role::Assistant, reply.clone());
        msg.tokens = Some(stats.completion_tokens);
        msg.interrupted = interrupted;
        msg.stats = Some(stats.clone());
        let saved = store
            .append_message(session, msg)
            .and_then(|m| store.flush().map(|_| m));
        let event = match (saved, failure) {
            (Err(e), _) => ReplyEvent::Failed(format!("could not save the reply: {e}")),
            (Ok(_), Some(msg)) => ReplyEvent::Failed(msg),
            (Ok(m), None) => ReplyEvent::Done(TurnOutcome {
                text: reply,
                stats,
                source: ReplySource::Model,
                seq: m.seq,
                persona: after.persona,
                ended: after.ended,
                handoff: after.handoff,
            }),
        };
        let _ = tx.send(event).await;
    }

    /// Answer with a persona-scripted reply (rule or FAQ): one token, stored, done.
    #[allow(clippy::too_many_arguments)]
    async fn answer_scripted(
        &self,
        session: SessionId,
        text: String,
        source: ReplySource,
        started: Instant,
        window: u32,
        after: After,
        tx: mpsc::Sender<ReplyEvent>,
    ) {
        let store = &self.inner.store;
        let stats = TurnStats {
            ttft_ms: started.elapsed().as_secs_f64() * 1000.0,
            context_window: window,
            ..Default::default()
        };
        let mut msg = StoredMessage::new(Role::Assistant, text.clone());
        msg.source = source.clone();
        msg.stats = Some(stats.clone());
        let saved = store
            .append_message(session, msg)
            .and_then(|m| store.flush().map(|_| m));
        let event = match saved {
            Ok(m) => {
                let _ = tx.send(ReplyEvent::Token(text.clone())).await;
                ReplyEvent::Done(TurnOutcome {
                    text,
                    stats,
                    source,
                    seq: m.seq,
                    persona: after.persona,
                    ended: after.ended,
                    handoff: after.handoff,
                })
            }
            Err(e) => ReplyEvent::Failed(format!("could not save the reply: {e}")),
        };
        let _ = tx.send(event).await;
    }
}

/// The session's state after a turn's rules ran (for [`TurnOutcome`]).
struct After {
    persona: String,
    ended: bool,
    handoff: bool,
}

fn cancelled_stats(completion_tokens: u32) -> crate::engine::GenerationStats {
    crate::engine::GenerationStats {
        completion_tokens,
        finish: FinishReason::Cancelled,
        ..Default::default()
    }
}
