//! The sessions API of [`Bot`]: list, open, rename, delete and export sessions, read their
//! transcripts, write the messages of a human handoff, take a rule's handoff request, and each
//! front end's own key-value state ([`FrontState`], typed [`StateKey`]s). Front ends reach the
//! store only through these methods.

use super::{Bot, BotError};
use crate::chat::{Rating, Role, SessionId};
use crate::persona::session::SessionState;
use crate::store::{SessionInfo, Store, StoredMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::io::Write;
use std::marker::PhantomData;

/// Export formats of a session transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Markdown transcript.
    Markdown,
    /// One JSON message per line (the format `parlor history import` reads).
    Jsonl,
}

impl Bot {
    /// Every session, most recently updated first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>, BotError> {
        Ok(self.inner.store.sessions()?)
    }

    /// The session `id`, if it exists.
    pub fn session(&self, id: SessionId) -> Result<Option<SessionInfo>, BotError> {
        Ok(self.inner.store.session(id)?)
    }

    /// The session named `name` (or with that id), if it exists.
    pub fn find_session(&self, name: &str) -> Result<Option<SessionInfo>, BotError> {
        Ok(self.inner.store.find_session(name)?)
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

    /// Rename session `id` (flushed).
    pub fn rename_session(&self, id: SessionId, name: &str) -> Result<(), BotError> {
        self.inner.store.rename_session(id, name)?;
        Ok(self.inner.store.flush()?)
    }

    /// Delete session `id` everywhere: it is erased with [`Bot::forget_sessions`] (store
    /// records and key, the engine's cached tokens and saved states). Blocks on disk syncs and
    /// the inference thread.
    pub fn delete_session(&self, id: SessionId) -> Result<(), BotError> {
        self.forget_sessions(&[id], &[]).map(|_| ())
    }

    /// Remove every message of session `id`, keeping the session (flushed).
    pub fn clear_session(&self, id: SessionId) -> Result<(), BotError> {
        self.inner.store.truncate_messages(id, 0)?;
        Ok(self.inner.store.flush()?)
    }

    /// Write session `id` to `out` as `format`.
    pub fn export_session(
        &self,
        id: SessionId,
        format: ExportFormat,
        out: &mut impl Write,
    ) -> Result<(), BotError> {
        let store = &self.inner.store;
        match format {
            ExportFormat::Markdown => store.export_markdown(id, out)?,
            ExportFormat::Jsonl => store.export_jsonl(id, out)?,
        }
        Ok(())
    }

    /// Every message of session `id`, oldest first.
    pub fn transcript(&self, id: SessionId) -> Result<Vec<StoredMessage>, BotError> {
        Ok(self.inner.store.messages(id)?)
    }

    /// The last `n` messages of session `id`, oldest first.
    pub fn recent_messages(&self, id: SessionId, n: usize) -> Result<Vec<StoredMessage>, BotError> {
        Ok(self.inner.store.recent_messages(id, n)?)
    }

    /// Store a message of a human handoff in session `id` (flushed): the customer's text
    /// (`operator` `None`), or an operator's answer under the operator's name. The bot sees
    /// them as history once the conversation is back with it.
    pub fn record_handoff_message(
        &self,
        id: SessionId,
        role: Role,
        text: &str,
        operator: Option<String>,
    ) -> Result<(), BotError> {
        let mut msg = StoredMessage::new(role, text);
        msg.operator = operator;
        self.inner.store.append_message(id, msg)?;
        Ok(self.inner.store.flush()?)
    }

    /// Store `rating` with the bot's reply `seq` in session `id` (flushed); a later rating
    /// replaces an earlier one. Operators' answers and user messages cannot be rated.
    pub fn rate(&self, id: SessionId, seq: u64, rating: Rating) -> Result<(), BotError> {
        let store = &self.inner.store;
        let reply = store
            .messages(id)?
            .into_iter()
            .find(|m| m.seq == seq && m.role == Role::Assistant && m.operator.is_none());
        let Some(mut reply) = reply else {
            return Err(BotError::NotAReply {
                session: id.to_string(),
                seq,
            });
        };
        reply.rating = Some(rating);
        store.update_message(id, &reply)?;
        Ok(store.flush()?)
    }

    /// Take the handoff a persona rule asked for in session `id`: true when there was one (it
    /// is cleared, so handing the conversation back to the bot really ends it).
    pub fn take_handoff(&self, id: SessionId) -> Result<bool, BotError> {
        let store = &self.inner.store;
        let mut state = SessionState::load(store, id)?;
        if !state.handoff {
            return Ok(false);
        }
        state.handoff = false;
        state.save(store, id)?;
        store.flush()?;
        Ok(true)
    }

    /// The key-value state of one front end: keys under `space` (`"tg/"`, `"tui."`), kept in
    /// the bot's store beside the sessions.
    pub fn front_state(&self, space: &'static str) -> FrontState {
        FrontState {
            store: self.inner.store.clone(),
            space,
        }
    }

    /// Make every write so far durable (sled has one log: one flush covers them all).
    pub fn flush(&self) -> Result<(), BotError> {
        Ok(self.inner.store.flush()?)
    }
}

/// A key of a front end's state whose value is a `T`.
pub struct StateKey<T> {
    name: String,
    value: PhantomData<fn() -> T>,
}

impl<T> StateKey<T> {
    /// The key `name` (its front end's space included, e.g. `tg/chat/42`).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: PhantomData,
        }
    }

    /// The whole key as stored (space included).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T> Clone for StateKey<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            value: PhantomData,
        }
    }
}

impl<T> PartialEq for StateKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl<T> fmt::Debug for StateKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// One front end's key-value state ([`Bot::front_state`]). Cheap to clone. Values are JSON;
/// writes are durable at the next flush.
#[derive(Clone)]
pub struct FrontState {
    store: Store,
    space: &'static str,
}

impl FrontState {
    /// The key `rest` in this front end's space, holding a `T`.
    pub fn key<T>(&self, rest: impl fmt::Display) -> StateKey<T> {
        StateKey {
            name: format!("{}{rest}", self.space),
            value: PhantomData,
        }
    }

    /// The value at `key`.
    pub fn get<T: DeserializeOwned>(&self, key: &StateKey<T>) -> Result<Option<T>, BotError> {
        Ok(self.store.kv_get(&key.name)?)
    }

    /// Set `key` to `value`.
    pub fn put<T: Serialize>(&self, key: &StateKey<T>, value: &T) -> Result<(), BotError> {
        Ok(self.store.kv_put(&key.name, value)?)
    }

    /// Set `key` to `value` unless it has a value; true when it was set (an atomic claim).
    pub fn insert_new<T: Serialize>(&self, key: &StateKey<T>, value: &T) -> Result<bool, BotError> {
        Ok(self.store.kv_insert_new(&key.name, value)?)
    }

    /// Replace the value at `key` with `change(value)` if it has one, atomically (a value
    /// removed meanwhile stays removed); true when it changed.
    pub fn update<T: Serialize + DeserializeOwned>(
        &self,
        key: &StateKey<T>,
        change: impl Fn(T) -> T,
    ) -> Result<bool, BotError> {
        Ok(self.store.kv_update(&key.name, change)?)
    }

    /// Remove `key`.
    pub fn remove<T>(&self, key: &StateKey<T>) -> Result<(), BotError> {
        Ok(self.store.kv_remove(&key.name)?)
    }

    /// Remove the keys from `from` (inclusive) to `to` (exclusive); returns how many there were.
    pub fn remove_range<T>(&self, from: &StateKey<T>, to: &StateKey<T>) -> Result<usize, BotError> {
        Ok(self.store.kv_remove_range(&from.name, &to.name)?)
    }

    /// Every key starting with `prefix`'s name, with its value, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        prefix: &StateKey<T>,
    ) -> Result<Vec<(StateKey<T>, T)>, BotError> {
        Ok(self
            .store
            .kv_scan(&prefix.name)?
            .into_iter()
            .map(|(name, v)| {
                (
                    StateKey {
                        name,
                        value: PhantomData,
                    },
                    v,
                )
            })
            .collect())
    }

    /// Make every write so far durable.
    pub fn flush(&self) -> Result<(), BotError> {
        Ok(self.store.flush()?)
    }
}
