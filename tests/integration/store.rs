//! The sled store on real on-disk databases: sessions, message order, limits, export and
//! import, the directory lock, corrupt values, the `history` CLI, and a SIGKILL test.

mod cli;
mod damaged;
mod export;
mod kill;
mod messages;
mod sessions;

use export::fill_sample;
use parlor::chat::{Role, SessionId};
use parlor::store::{Store, StoredMessage};
use tempfile::TempDir;

/// A store on a fresh temporary directory (kept alive by the returned guard).
fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

/// Append a message now.
fn say(store: &Store, session: SessionId, role: Role, text: &str) -> StoredMessage {
    store
        .append_message(session, StoredMessage::new(role, text))
        .expect("append")
}

/// The texts of `msgs`.
fn texts(msgs: &[StoredMessage]) -> Vec<&str> {
    msgs.iter().map(|m| m.text.as_str()).collect()
}
