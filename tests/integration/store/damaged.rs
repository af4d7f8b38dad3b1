//! A damaged database: files of the sled directory overwritten on disk. Opening it must fail
//! with a message naming the directory and what to do, or, where sled can still read it,
//! return every message that was flushed; never panic, never hand back garbage.

use parlor::chat::Role;
use parlor::store::{Store, StoredMessage};
use std::path::Path;

/// A database with one session ("kept") of `n` flushed messages.
fn filled(dir: &Path, n: usize) {
    let store = Store::open(dir).expect("open");
    let s = store
        .create_session("kept", "assistant", "m")
        .expect("session");
    for i in 0..n {
        store
            .append_message(s.id, StoredMessage::new(Role::User, format!("message {i}")))
            .expect("append");
    }
    store.flush().expect("flush");
}

/// Overwrite `len` bytes of `file` at its middle with a pattern.
fn scribble(file: &Path) {
    let mut bytes = std::fs::read(file).expect("read");
    let mid = bytes.len() / 2;
    let end = (mid + 256).min(bytes.len());
    for b in &mut bytes[mid..end] {
        *b ^= 0xa5;
    }
    std::fs::write(file, bytes).expect("write");
}

#[test]
fn a_damaged_config_file_is_refused_with_the_directory_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 10);
    scribble(&dir.path().join("sled/conf"));
    let err = Store::open(dir.path()).expect_err("a damaged database is refused");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "the database in \"{}\" is damaged or unreadable (",
            dir.path().display()
        )),
        "{msg}"
    );
    assert!(msg.contains("parlor history import"), "{msg}");
    // The damaged files are left as they were, for a rescue attempt.
    assert!(dir.path().join("sled/db").is_file());
}

/// sled reads its log up to the first damaged record and treats the rest as a torn write: the
/// messages after the damage are lost without an error (not something parlor can detect from
/// sled's API; keep JSONL backups, README "How it works"). What it returns is still sound: a prefix
/// of what was written, in order, every message whole.
#[test]
fn a_damaged_log_gives_back_a_sound_prefix_and_never_garbage() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 50);
    scribble(&dir.path().join("sled/db"));
    let store = Store::open(dir.path()).expect("sled recovers what precedes the damage");
    let Some(s) = store.find_session("kept").expect("sessions readable") else {
        return; // the damage took the session record itself: nothing to check
    };
    let msgs = store.messages(s.id).expect("messages readable");
    assert!(msgs.len() <= 50);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(
            m.text,
            format!("message {i}"),
            "message {i} whole and in order"
        );
    }
    // And the store keeps working: new messages are stored after the recovered ones.
    store
        .append_message(s.id, StoredMessage::new(Role::User, "after the damage"))
        .expect("append after recovery");
    store.flush().expect("flush");
    let again = store.messages(s.id).unwrap();
    assert_eq!(again.last().unwrap().text, "after the damage");
}
