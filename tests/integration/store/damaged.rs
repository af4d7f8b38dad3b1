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
/// messages after the damage are dropped without an error from sled. The store notices (its
/// count of acknowledged flushes, kept beside the database, is ahead of what sled gave back),
/// refuses to open, and leaves the files as they are. Deleting the mark, as the message says,
/// goes on with what sled recovered: a sound prefix of what was written, in order, every
/// message whole, and a store that keeps working.
#[test]
fn a_damaged_log_is_refused_as_lost_writes_and_what_was_recovered_is_sound() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Flushed after every message, as the bot acknowledges them.
        let store = Store::open(dir.path()).expect("open");
        let s = store.create_session("kept", "assistant", "m").unwrap();
        for i in 0..50 {
            store
                .append_message(s.id, StoredMessage::new(Role::User, format!("message {i}")))
                .unwrap();
            store.flush().unwrap();
        }
    }
    scribble(&dir.path().join("sled/db"));
    let err = Store::open(dir.path()).expect_err("the lost writes are noticed");
    let msg = err.to_string();
    let mark = dir.path().join("acknowledged");
    assert!(
        msg.starts_with(&format!(
            "the database in \"{}\" lost writes it had acknowledged: sled gives back ",
            dir.path().display()
        )) && msg.contains("of the 51 flushes it made")
            && msg.contains("parlor history import")
            && msg.contains(&format!("delete \"{}\"", mark.display())),
        "{msg}"
    );
    // Refused again until the user decides (sled's own recovery has cut its log back to the
    // damage by now; the mark still counts what was acknowledged).
    assert!(Store::open(dir.path()).is_err());

    std::fs::remove_file(&mark).unwrap();
    let store = Store::open(dir.path()).expect("sled recovers what precedes the damage");
    let s = match store.find_session("kept").expect("sessions readable") {
        Some(s) => s,
        // The damage took the session record itself: what is left must still work.
        None => store.create_session("kept", "assistant", "m").unwrap(),
    };
    let msgs = store.messages(s.id).expect("messages readable");
    assert!(msgs.len() < 50, "some messages were lost: {}", msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(
            m.text,
            format!("message {i}"),
            "message {i} whole and in order"
        );
    }
    store
        .append_message(s.id, StoredMessage::new(Role::User, "after the damage"))
        .expect("append after recovery");
    store.flush().expect("flush");
    let again = store.messages(s.id).unwrap();
    assert_eq!(again.last().unwrap().text, "after the damage");
    drop(store);
    // The accepted state is the new baseline: it opens again.
    Store::open(dir.path()).expect("opens after the loss was accepted");
}

/// A mark file behind sled (the process died between sled's flush and the mark's update, or
/// the disk lost the unsynced mark) is no alarm: the store opens with everything.
#[test]
fn a_mark_behind_the_database_opens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 10);
    std::fs::write(dir.path().join("acknowledged"), "1\n").unwrap();
    let store = Store::open(dir.path()).expect("opens");
    let s = store.find_session("kept").unwrap().expect("the session");
    assert_eq!(store.messages(s.id).unwrap().len(), 10);
}

/// Flushes from several threads at once keep the mark in step with sled: the store opens
/// again with everything, and the mark counts every flush.
#[test]
fn flushes_from_several_threads_keep_the_mark_in_step() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).expect("open");
        let s = store.create_session("kept", "assistant", "m").unwrap();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let store = store.clone();
                scope.spawn(move || {
                    for i in 0..25 {
                        store
                            .append_message(
                                s.id,
                                StoredMessage::new(Role::User, format!("{t}-{i}")),
                            )
                            .unwrap();
                        store.flush().unwrap();
                    }
                });
            }
        });
    }
    let mark = std::fs::read_to_string(dir.path().join("acknowledged")).unwrap();
    // One flush when the database was made, then one per message.
    assert_eq!(mark.trim().parse::<u64>().unwrap(), 101, "{mark:?}");
    let store = Store::open(dir.path()).expect("opens again");
    let s = store.find_session("kept").unwrap().expect("the session");
    assert_eq!(store.messages(s.id).unwrap().len(), 100);
}
