//! `Store`: the only code that touches sled. Sessions, messages (key = session id ++ sequence,
//! big-endian, so a prefix scan is one session in order), a small key-value tree for front ends
//! (`kv`), flush points, JSONL / Markdown export and import, and erasure.
//!
//! Conversation content (session records, messages, a conversation's `kv` state) is sealed with
//! a key of its own ([`keyring`]): erasing a conversation destroys its key first, so no copy
//! left in sled's log can be read again ([`Store::erase_session`]).

mod compact;
mod erase;
mod error;
mod export;
mod keyring;
mod keys;
mod kv;
mod mark;
mod messages;
mod migrate;
mod records;
mod sealed;

pub use erase::Erased;
pub use error::StoreError;
use error::map_sled_error;
pub(crate) use export::format_time;
pub use keyring::KeyFileError;

use crate::chat::{ReplySource, Role, SessionId, TurnStats};
use keyring::KeyRing;
use records::{SessionRecord, VERSION};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree, abort};
use std::path::{Path, PathBuf};

/// sled's page cache size. sled's memory can reach about 10x this (field notes), and the
/// default of 1 GiB is far more than chat history needs.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// Subdirectory of the storage directory that holds the sled files.
const SLED_DIR: &str = "sled";

/// The `sessions`, `messages` and `meta` trees inside one transaction.
type Trees = (TransactionalTree, TransactionalTree, TransactionalTree);

/// Result inside a sled transaction closure.
type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

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
    /// The human who wrote an assistant message instead of the bot (a Telegram operator
    /// answering during a handoff); `None` for the bot's own replies.
    pub operator: Option<String>,
    /// The person's rating of an assistant message ("Did this help?"), when they gave one.
    pub rating: Option<crate::chat::Rating>,
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
            operator: None,
            rating: None,
        }
    }
}

/// Handle to one sled database. Cheap to clone: clones share the database.
///
/// Concurrency: every change that touches more than one record (create, rename, append,
/// truncate) is one sled transaction, so it is atomic both against other threads of this
/// process and against a crash (sled recovers a transaction whole or not at all). sled's
/// directory lock keeps other processes out.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    sessions: sled::Tree,
    messages: sled::Tree,
    meta: sled::Tree,
    kv: sled::Tree,
    keys: KeyRing,
    mark: std::sync::Arc<mark::Mark>,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

/// How long [`Store::open`] waits for a lock held by a store that is closing.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

impl Store {
    /// Open (or create) the database in `dir` (its files go to `dir/sled/`) with a small
    /// cache. A second process gets [`StoreError::Locked`], and so does a second `open` of the
    /// same directory in one process: open once and clone the handle. A store dropped just
    /// before in this process may hold its lock a moment longer (sled's flusher thread lets go
    /// at its next wake-up), so a held lock is retried for [`LOCK_WAIT`] before giving up.
    ///
    /// A database written before conversations were encrypted is migrated once, first
    /// ([`migrate`]); conversations whose key is gone (a crash in the middle of an erase) are
    /// swept.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        migrate::recover(&dir)?;
        let store = Self::open_raw(&dir, KeyRing::load(&dir)?)?;
        let store = match store.format()? {
            Some(_) => store,
            None if store.is_empty() => {
                store.keys.save()?;
                store.set_format()?;
                store
            }
            None => {
                drop(store);
                migrate::migrate(&dir)?;
                Self::open_raw(&dir, KeyRing::load(&dir)?)?
            }
        };
        if !store.keys.file_exists() {
            return Err(StoreError::Corrupt {
                key: dir.join("keys").display().to_string(),
                reason: "the keys file is missing, so the conversations cannot be read; restore it from a backup".into(),
            });
        }
        store.sweep()?;
        Ok(store)
    }

    /// Open the sled database in `dir` as it is (no migration, no sweep).
    fn open_raw(dir: &Path, keys: KeyRing) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        let db = open_sled(&dir.join(SLED_DIR), &dir)?;
        let sled_err = |e: sled::Error| map_sled_error(&dir, e);
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let meta = tree("meta")?;
        Ok(Self {
            mark: std::sync::Arc::new(mark::Mark::open(&dir, &meta)?),
            sessions: tree("sessions")?,
            messages: tree("messages")?,
            meta,
            kv: tree("kv")?,
            keys,
            db,
            dir,
        })
    }

    /// Whether `dir` holds a database (without creating one).
    pub fn exists(dir: &Path) -> bool {
        dir.join(SLED_DIR).join("conf").is_file()
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make everything written so far durable against a process crash.
    pub fn flush(&self) -> Result<(), StoreError> {
        // One log serves every tree of the database: flushing it covers them all, the count of
        // flushes too (`mark`).
        let count = self.mark.stamp(&self.meta).map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        self.mark.acknowledged(count);
        Ok(())
    }

    /// Create a session; `name` must be unique. Its key is written to the keys file (fsynced)
    /// before its record.
    pub fn create_session(
        &self,
        name: &str,
        persona: &str,
        model: &str,
    ) -> Result<SessionInfo, StoreError> {
        check_name(name)?;
        let now = chrono::Utc::now().timestamp_millis();
        let record = SessionRecord {
            v: VERSION,
            name: name.to_string(),
            persona: persona.to_string(),
            model: model.to_string(),
            created: now,
            updated: now,
            message_count: 0,
            next_seq: 1,
        };
        self.with_new_session(name, |id, key, (sessions, _, meta)| {
            meta.insert(keys::name_key(name), &keys::session_key(id))?;
            sessions.insert(
                &keys::session_key(id),
                sealed::session_value(key, id, &record),
            )?;
            Ok(())
        })
        .map(|id| record.info(id))
    }

    /// Take a new session id, give it a key (written to the keys file first), then run
    /// `write` in a transaction over `sessions`, `messages` and `meta` unless `name` is taken.
    /// On failure the key is destroyed again.
    fn with_new_session(
        &self,
        name: &str,
        write: impl Fn(SessionId, &keyring::DataKey, &Trees) -> TxResult<()>,
    ) -> Result<SessionId, StoreError> {
        if self
            .meta
            .get(keys::name_key(name))
            .map_err(|e| self.sled_err(e))?
            .is_some()
        {
            return Err(StoreError::NameTaken(name.to_string()));
        }
        let id = self.tx(&self.meta, next_session_id)?;
        let owner = sealed::session_owner(id);
        let key = self.keys.get_or_create(&owner)?;
        let written = self.tx(
            (&self.sessions, &self.messages, &self.meta),
            |trees: &Trees| {
                if trees.2.get(keys::name_key(name))?.is_some() {
                    return abort(StoreError::NameTaken(name.to_string()));
                }
                write(id, &key, trees)
            },
        );
        if written.is_err() {
            let _ = self.keys.remove(&[owner]);
        }
        written.map(|_| id)
    }

    /// A session by id.
    pub fn session(&self, id: SessionId) -> Result<Option<SessionInfo>, StoreError> {
        Ok(self.session_record(id)?.map(|r| r.info(id)))
    }

    /// A session by name, or by numeric id given as text. A name wins over an id.
    pub fn find_session(&self, name_or_id: &str) -> Result<Option<SessionInfo>, StoreError> {
        let by_name = self
            .meta
            .get(keys::name_key(name_or_id))
            .map_err(|e| self.sled_err(e))?;
        if let Some(id_bytes) = by_name {
            let id = keys::split_session_key(&id_bytes).ok_or_else(|| StoreError::Corrupt {
                key: format!("meta/name/{name_or_id}"),
                reason: "the name index does not hold a session id".to_string(),
            })?;
            return self.session(id);
        }
        match name_or_id.parse::<u64>() {
            Ok(id) => self.session(SessionId(id)),
            Err(_) => Ok(None),
        }
    }

    /// All sessions, most recently updated first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>, StoreError> {
        let mut out = Vec::new();
        for item in &self.sessions {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            let id = keys::split_session_key(&key).ok_or_else(|| StoreError::Corrupt {
                key: format!("sessions/{}", hex::encode(&key)),
                reason: "the key is not a session id".to_string(),
            })?;
            if let Some(record) = self.open_session_value(id, &value)? {
                out.push(record.info(id));
            }
        }
        out.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// Rename a session (the new name must be free).
    pub fn rename_session(&self, id: SessionId, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        let key = self.session_data_key(id)?;
        self.tx((&self.sessions, &self.meta), |(sessions, meta)| {
            let mut record = tx_session(&key, sessions, id)?;
            rename_in(meta, id, &mut record, name)?;
            sessions.insert(
                &keys::session_key(id),
                sealed::session_value(&key, id, &record),
            )?;
            Ok(())
        })
    }

    /// Change a session's persona, model or name (the store keeps its own counts and times).
    pub fn update_session(&self, info: &SessionInfo) -> Result<(), StoreError> {
        check_name(&info.name)?;
        let key = self.session_data_key(info.id)?;
        self.tx((&self.sessions, &self.meta), |(sessions, meta)| {
            let mut record = tx_session(&key, sessions, info.id)?;
            rename_in(meta, info.id, &mut record, &info.name)?;
            record.persona.clone_from(&info.persona);
            record.model.clone_from(&info.model);
            sessions.insert(
                &keys::session_key(info.id),
                sealed::session_value(&key, info.id, &record),
            )?;
            Ok(())
        })
    }

    /// Delete a session and everything of it: [`Store::erase_session`].
    pub fn delete_session(&self, id: SessionId) -> Result<(), StoreError> {
        self.erase_session(id).map(|_| ())
    }

    fn session_record(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let value = self
            .sessions
            .get(keys::session_key(id))
            .map_err(|e| self.sled_err(e))?;
        match value {
            Some(v) => self.open_session_value(id, &v),
            None => Ok(None),
        }
    }

    /// Decode a `sessions` value; `None` when its key was destroyed (erased).
    fn open_session_value(
        &self,
        id: SessionId,
        value: &[u8],
    ) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.keys.get(&sealed::session_owner(id));
        sealed::open_session(key.as_ref(), id, value)
    }

    /// The key of a session that exists; [`StoreError::NoSession`] once it is erased.
    fn session_data_key(&self, id: SessionId) -> Result<keyring::DataKey, StoreError> {
        self.keys
            .get(&sealed::session_owner(id))
            .ok_or_else(|| StoreError::NoSession(id.to_string()))
    }

    fn sled_err(&self, e: sled::Error) -> StoreError {
        map_sled_error(&self.dir, e)
    }

    /// Run a sled transaction over `trees`, mapping its errors to [`StoreError`].
    fn tx<T, R>(&self, trees: T, f: impl Fn(&T::View) -> TxResult<R>) -> Result<R, StoreError>
    where
        T: sled::Transactional<StoreError>,
    {
        trees.transaction(f).map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.sled_err(e),
        })
    }
}

/// Open the sled database at `path` with a small cache, waiting up to [`LOCK_WAIT`] for a lock
/// held by a store of this process that is closing.
fn open_sled(path: &Path, dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(|e| map_sled_error(dir, e))
        {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Longest session name, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// A session name must be printable on one line and not blank.
fn check_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.trim().is_empty() {
        "it is empty"
    } else if name.chars().count() > MAX_NAME_CHARS {
        "it is longer than 128 characters"
    } else if name.chars().any(char::is_control) {
        "it contains control characters (such as a newline)"
    } else {
        return Ok(());
    };
    Err(StoreError::BadName {
        name: name.to_string(),
        reason,
    })
}

/// Read a session record (sealed with `key`) inside a transaction; abort with `NoSession`
/// when missing.
fn tx_session(
    key: &keyring::DataKey,
    sessions: &TransactionalTree,
    id: SessionId,
) -> TxResult<SessionRecord> {
    match sessions.get(keys::session_key(id))? {
        Some(v) => match sealed::open_session(Some(key), id, &v) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => abort(StoreError::NoSession(id.to_string())),
            Err(e) => abort(e),
        },
        None => abort(StoreError::NoSession(id.to_string())),
    }
}

/// Take the next session id from the counter in `meta` (ids start at 1, never reused).
fn next_session_id(meta: &TransactionalTree) -> TxResult<SessionId> {
    let next = match meta.get(keys::NEXT_SESSION_ID)? {
        Some(v) => match <[u8; 8]>::try_from(v.as_ref()) {
            Ok(b) => u64::from_be_bytes(b),
            Err(_) => {
                return abort(StoreError::Corrupt {
                    key: "meta/next_session_id".to_string(),
                    reason: format!("expected 8 bytes, found {}", v.len()),
                });
            }
        },
        None => 1,
    };
    meta.insert(keys::NEXT_SESSION_ID, &(next + 1).to_be_bytes())?;
    Ok(SessionId(next))
}

/// Move `record` (session `id`) to `name` in the name index, if `name` is free or its own.
fn rename_in(
    meta: &TransactionalTree,
    id: SessionId,
    record: &mut SessionRecord,
    name: &str,
) -> TxResult<()> {
    if record.name == name {
        return Ok(());
    }
    if meta.get(keys::name_key(name))?.is_some() {
        return abort(StoreError::NameTaken(name.to_string()));
    }
    meta.remove(keys::name_key(&record.name))?;
    meta.insert(keys::name_key(name), &keys::session_key(id))?;
    record.name = name.to_string();
    Ok(())
}
