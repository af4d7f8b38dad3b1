//! `Store`: the only code that touches sled. Sessions, messages (key = session id ++ sequence,
//! big-endian, so a prefix scan is one session in order), a small key-value tree for front ends
//! (`kv`), flush points, and JSONL / Markdown export and import.

use crate::chat::{ReplySource, Role, SessionId, TurnStats};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// Errors of the store. Messages are for users.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database lock.
    #[error(
        "the database in \"{dir}\" is in use by another parlor process; stop it or use another --home / storage directory"
    )]
    Locked {
        /// The storage directory.
        dir: PathBuf,
    },
    /// sled failed.
    #[error("database error in \"{dir}\": {source}")]
    Sled {
        /// The storage directory.
        dir: PathBuf,
        /// The cause.
        source: sled::Error,
    },
    /// A stored value could not be decoded.
    #[error("corrupt record {key} in the database: {reason}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        reason: String,
    },
    /// No session with this name or id.
    #[error("no session \"{0}\"; `parlor history list` shows the sessions")]
    NoSession(String),
    /// A session with this name exists already.
    #[error("a session named \"{0}\" exists already")]
    NameTaken(String),
    /// Reading or writing an export file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An import file line is not a valid record.
    #[error("{path}:{line}: {reason}")]
    BadImport {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A conversation's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Stable id (key prefix of its messages).
    pub id: SessionId,
    /// Unique, human-chosen or generated name.
    pub name: String,
    /// Persona id (file stem).
    pub persona: String,
    /// Model name.
    pub model: String,
    /// Unix milliseconds.
    pub created: i64,
    /// Unix milliseconds of the last message.
    pub updated: i64,
    /// Messages stored.
    pub message_count: u64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Position in its session (assigned by the store, increasing).
    pub seq: u64,
    /// Who said it.
    pub role: Role,
    /// The text.
    pub text: String,
    /// Unix milliseconds.
    pub time: i64,
    /// Token count, when known.
    pub tokens: Option<u32>,
    /// The reply was cut short (Esc, /stop, crash, engine failure).
    pub interrupted: bool,
    /// What produced an assistant message.
    pub source: ReplySource,
    /// Turn numbers of an assistant message.
    pub stats: Option<TurnStats>,
}

impl StoredMessage {
    /// A new message at the current time (seq is set by [`Store::append_message`]).
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            seq: 0,
            role,
            text: text.into(),
            time: chrono::Utc::now().timestamp_millis(),
            tokens: None,
            interrupted: false,
            source: ReplySource::Model,
            stats: None,
        }
    }
}

/// Handle to one sled database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    dir: PathBuf,
}

impl Store {
    /// Open (or create) the database in `dir` with a small cache. A second process gets
    /// [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let _ = dir;
        todo!()
    }
    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Make everything written so far durable against a process crash.
    pub fn flush(&self) -> Result<(), StoreError> {
        let _ = &self.db;
        todo!()
    }
    /// Create a session; `name` must be unique.
    pub fn create_session(
        &self,
        name: &str,
        persona: &str,
        model: &str,
    ) -> Result<SessionInfo, StoreError> {
        let _ = (name, persona, model);
        todo!()
    }
    /// A session by id.
    pub fn session(&self, id: SessionId) -> Result<Option<SessionInfo>, StoreError> {
        let _ = id;
        todo!()
    }
    /// A session by name, or by numeric id given as text.
    pub fn find_session(&self, name_or_id: &str) -> Result<Option<SessionInfo>, StoreError> {
        let _ = name_or_id;
        todo!()
    }
    /// All sessions, most recently updated first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>, StoreError> {
        todo!()
    }
    /// Rename a session (the new name must be free).
    pub fn rename_session(&self, id: SessionId, name: &str) -> Result<(), StoreError> {
        let _ = (id, name);
        todo!()
    }
    /// Change a session's persona or model.
    pub fn update_session(&self, info: &SessionInfo) -> Result<(), StoreError> {
        let _ = info;
        todo!()
    }
    /// Delete a session and all its messages.
    pub fn delete_session(&self, id: SessionId) -> Result<(), StoreError> {
        let _ = id;
        todo!()
    }
    /// Append a message; returns it with its `seq`. Not flushed: call [`Store::flush`] before
    /// telling anyone it is saved.
    pub fn append_message(
        &self,
        session: SessionId,
        msg: StoredMessage,
    ) -> Result<StoredMessage, StoreError> {
        let _ = (session, msg);
        todo!()
    }
    /// Replace a stored message (same session and seq).
    pub fn update_message(
        &self,
        session: SessionId,
        msg: &StoredMessage,
    ) -> Result<(), StoreError> {
        let _ = (session, msg);
        todo!()
    }
    /// Delete the messages of a session from `seq` on (for regenerate).
    pub fn truncate_messages(&self, session: SessionId, from_seq: u64) -> Result<(), StoreError> {
        let _ = (session, from_seq);
        todo!()
    }
    /// All messages of a session, in order.
    pub fn messages(&self, session: SessionId) -> Result<Vec<StoredMessage>, StoreError> {
        let _ = session;
        todo!()
    }
    /// The last `limit` messages of a session, in order.
    pub fn recent_messages(
        &self,
        session: SessionId,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let _ = (session, limit);
        todo!()
    }
    /// A value of the `kv` tree (front-end state: Telegram chats, pending updates, handoffs).
    pub fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let _ = key;
        todo!()
    }
    /// Store a value in the `kv` tree (not flushed).
    pub fn kv_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let _ = (key, serde_json::to_vec(value));
        todo!()
    }
    /// Remove a `kv` value.
    pub fn kv_remove(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        todo!()
    }
    /// All `kv` values whose key starts with `prefix`, in key order.
    pub fn kv_scan<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let _ = prefix;
        todo!()
    }
}
