//! `Bot` = persona + engine + store, and the only door to conversations: front ends (TUI,
//! Telegram, commands) reach history and their own saved state only through it.
//!
//! - [`Bot::turn`] (in [`turn`]) is the boundary both front ends use: it stores the user message
//!   (flushed) before generation, streams [`ReplyEvent`]s, and stores the reply when it ends
//!   (marked interrupted when the [`Reply`] is dropped first). Front ends never write history
//!   themselves.
//! - What a turn does is decided by a pure function, [`plan_turn`] ([`plan`]); the turn task
//!   does the IO around it.
//! - [`sessions`]: list, open, rename, delete and export sessions, read transcripts, write
//!   handoff messages, and each front end's own key-value state under typed keys.
//! - [`Archive`]: the same conversations without a model, for the commands that load none
//!   (`parlor history`, `parlor report`, `history prune`).

mod archive;
mod plan;
mod reply;
mod sessions;
mod turn;

/// A stored time for people (UTC), as transcripts show it.
pub(crate) use crate::store::format_time;
pub use crate::store::{Erased, SessionInfo, StoredMessage};
pub use archive::Archive;
pub use plan::{Decision, Generation, TurnInput, TurnPlan, plan_turn};
pub use reply::{Reply, ReplyEvent, Settled, TurnOptions, TurnOutcome};
pub use sessions::{ExportFormat, FrontState, StateKey};

use crate::chat::SessionId;
use crate::engine::Engine;
use crate::persona::Persona;
use crate::persona::library::Library;
use crate::persona::session::SessionState;
use crate::persona::watch::{self, WatchHandle};
use crate::store::{Store, StoreError};
use crate::support::index::Retriever;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

mod forget;
pub use forget::{RETENTION_EVERY, retention_loop};

/// Errors of bot operations outside a turn.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rating for a message that is not one of the bot's replies.
    #[error(
        "message {seq} of session \"{session}\" is not a reply of the bot; only replies can be rated"
    )]
    NotAReply {
        /// The session.
        session: String,
        /// The message's sequence number.
        seq: u64,
    },
}

struct Inner {
    persona: RwLock<Arc<Persona>>,
    engine: RwLock<Arc<dyn Engine>>,
    store: Store,
    /// FAQ retrieval (embedding model and cached vectors, or lexical only).
    retriever: RwLock<Retriever>,
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
                retriever: RwLock::new(Retriever::default()),
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

    /// Use `retriever` for FAQ matching from now on (launch loads the embedding model).
    pub fn set_retriever(&self, retriever: Retriever) {
        *self
            .inner
            .retriever
            .write()
            .unwrap_or_else(|e| e.into_inner()) = retriever;
    }

    /// The FAQ retriever.
    pub fn retriever(&self) -> Retriever {
        self.inner
            .retriever
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why semantic FAQ search is off, when it is and the persona has an FAQ (for status lines
    /// and `ask --json`).
    pub fn retrieval_notice(&self) -> Option<String> {
        if self.persona().faq().entries().is_empty() {
            return None;
        }
        self.retriever().notice().map(str::to_string)
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

    /// Hot reload: watch the persona file at `path`; a valid edit of the persona the bot speaks
    /// replaces it for the next turns (a persona the user switched to meanwhile is left alone).
    /// `report` hears each outcome: the reloaded persona's display name, or the problems of a
    /// rejected edit (the last good persona stays). Both are logged too. Watches until the
    /// handle is dropped.
    pub fn watch_persona<F>(&self, path: impl Into<PathBuf>, mut report: F) -> WatchHandle
    where
        F: FnMut(Result<String, String>) + Send + 'static,
    {
        let bot = self.clone();
        watch::watch(path, watch::POLL_INTERVAL, move |r| match r {
            Ok(p) if p.id() == bot.persona().id() => {
                let name = p.name().to_string();
                bot.set_persona(p);
                report(Ok(name));
            }
            Ok(_) => {}
            Err(e) => report(Err(e.to_string())),
        })
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
}
