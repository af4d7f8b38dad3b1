//! The store's errors, worded for users, and how sled's errors map to them.

use super::keyring::KeyFileError;
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
    /// The database files cannot be read as a sled database (damaged on disk, or not one).
    #[error(
        "the database in \"{dir}\" is damaged or unreadable ({reason}); restore it from a backup (`parlor history import FILE.jsonl` into a fresh storage directory) or move the directory away to start empty"
    )]
    Damaged {
        /// The storage directory.
        dir: PathBuf,
        /// sled's words.
        reason: String,
    },
    /// sled gave back fewer flushes than it acknowledged ([`super::mark`]).
    #[error(
        "the database in \"{dir}\" lost writes it had acknowledged: sled gives back {recovered} of the {acknowledged} flushes it made (damage in the middle of its log, such as a disk error: sled keeps what precedes the damage and drops the rest without an error). Restore it from a backup (`parlor history import FILE.jsonl` into a fresh storage directory), or, to go on with what was recovered, delete \"{}\"",
        mark.display()
    )]
    Lost {
        /// The storage directory.
        dir: PathBuf,
        /// The count sled gave back.
        recovered: u64,
        /// The count the mark file holds.
        acknowledged: u64,
        /// The mark file.
        mark: PathBuf,
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
    /// The session has no message with this sequence number.
    #[error(
        "session \"{session}\" has no message {seq}; `parlor history show {session}` lists them"
    )]
    NoMessage {
        /// The session id.
        session: String,
        /// The missing sequence number.
        seq: u64,
    },
    /// A session name that cannot be used.
    #[error("bad session name {name:?}: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A session with this name exists already.
    #[error("a session named \"{0}\" exists already; pick another name")]
    NameTaken(String),
    /// Reading or writing an export file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A value given to the `kv` tree could not be encoded as JSON.
    #[error("cannot store the value of \"{key}\": {reason}")]
    Encode {
        /// The `kv` key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The keys file (`<storage>/keys`) could not be read or written.
    #[error(transparent)]
    Keys(#[from] KeyFileError),
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

/// Turn a sled error into ours. sled reports a held directory lock only as an IO error text.
pub(super) fn map_sled_error(dir: &Path, e: sled::Error) -> StoreError {
    match &e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                dir: dir.to_path_buf(),
            }
        }
        sled::Error::Unsupported(_) | sled::Error::Corruption { .. } => StoreError::Damaged {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        },
        _ => StoreError::Sled {
            dir: dir.to_path_buf(),
            source: e,
        },
    }
}
