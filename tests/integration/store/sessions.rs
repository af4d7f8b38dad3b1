//! Sessions: create, find, rename, update, delete; names; the kv tree; reopening; the lock; corrupt values.

use super::{say, temp_store};
use parlor::chat::{Role, SessionId};
use parlor::store::{Store, StoreError, StoredMessage};

#[test]
fn session_crud() {
    let (_dir, store) = temp_store();
    let a = store
        .create_session("alpha", "assistant", "smollm2-135m")
        .unwrap();
    assert_eq!(a.message_count, 0);
    assert_eq!(store.session(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.find_session("alpha").unwrap(), Some(a.clone()));
    assert_eq!(
        store.find_session(&a.id.to_string()).unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.find_session("nobody").unwrap(), None);

    let b = store.create_session("beta", "pirate", "m").unwrap();
    assert_ne!(a.id, b.id);
    let mut later = StoredMessage::new(Role::User, "newest activity");
    later.time = b.created + 1000;
    store.append_message(a.id, later).unwrap();
    let names: Vec<_> = store
        .sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"], "most recently updated first");

    store.rename_session(a.id, "gamma").unwrap();
    assert_eq!(store.find_session("alpha").unwrap(), None);
    assert_eq!(store.find_session("gamma").unwrap().unwrap().id, a.id);
    // The old name is free again.
    store.create_session("alpha", "p", "m").unwrap();

    let mut info = store.session(b.id).unwrap().unwrap();
    info.persona = "acme-support".into();
    info.model = "other".into();
    store.update_session(&info).unwrap();
    assert_eq!(store.session(b.id).unwrap(), Some(info));
}

#[test]
fn taken_names_are_refused() {
    let (_dir, store) = temp_store();
    let a = store.create_session("a", "p", "m").unwrap();
    store.create_session("b", "p", "m").unwrap();
    let err = store.create_session("a", "p", "m").unwrap_err();
    assert!(
        matches!(&err, StoreError::NameTaken(n) if n == "a"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "a session named \"a\" exists already; pick another name"
    );
    let err = store.rename_session(a.id, "b").unwrap_err();
    assert!(
        matches!(&err, StoreError::NameTaken(n) if n == "b"),
        "{err:?}"
    );
    assert_eq!(store.session(a.id).unwrap().unwrap().name, "a");
    store.rename_session(a.id, "a").unwrap();
}

#[test]
fn blank_long_or_multi_line_names_are_refused() {
    let (_dir, store) = temp_store();
    let a = store.create_session("a", "p", "m").unwrap();
    let long = "n".repeat(129);
    for (name, reason) in [
        ("", "it is empty"),
        ("  ", "it is empty"),
        (long.as_str(), "it is longer than 128 characters"),
        (
            "two\nlines",
            "it contains control characters (such as a newline)",
        ),
    ] {
        let err = store.create_session(name, "p", "m").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("bad session name {name:?}: {reason}")
        );
        assert!(matches!(
            store.rename_session(a.id, name),
            Err(StoreError::BadName { .. })
        ));
    }
    store.create_session(&"n".repeat(128), "p", "m").unwrap();
    store.create_session("café ✓", "p", "m").unwrap();
    assert_eq!(store.sessions().unwrap().len(), 3);
}

#[test]
fn delete_removes_the_session_and_its_messages_only() {
    let (_dir, store) = temp_store();
    let a = store.create_session("a", "p", "m").unwrap().id;
    let b = store.create_session("b", "p", "m").unwrap().id;
    for i in 0..20 {
        say(&store, a, Role::User, &format!("a{i}"));
        say(&store, b, Role::User, &format!("b{i}"));
    }
    store.delete_session(a).unwrap();
    assert_eq!(store.session(a).unwrap(), None);
    assert_eq!(store.find_session("a").unwrap(), None);
    assert_eq!(store.messages(a).unwrap(), vec![]);
    assert_eq!(store.messages(b).unwrap().len(), 20);
    let err = store
        .append_message(a, StoredMessage::new(Role::User, "late"))
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSession(_)), "{err:?}");
    assert!(matches!(
        store.delete_session(a),
        Err(StoreError::NoSession(_))
    ));
    // A new session never reuses the deleted id, so stray messages could never reappear.
    let c = store.create_session("a", "p", "m").unwrap().id;
    assert!(c > b);
    assert_eq!(store.messages(c).unwrap(), vec![]);
}

#[test]
fn kv_values_round_trip_and_scan_by_prefix() {
    let (_dir, store) = temp_store();
    store.kv_put("tg/chat/2", &("two", 2)).unwrap();
    store.kv_put("tg/chat/1", &("one", 1)).unwrap();
    store.kv_put("other", &true).unwrap();
    assert_eq!(
        store.kv_get::<(String, u32)>("tg/chat/1").unwrap(),
        Some(("one".into(), 1))
    );
    assert_eq!(store.kv_get::<bool>("missing").unwrap(), None);
    let all: Vec<(String, (String, u32))> = store.kv_scan("tg/chat/").unwrap();
    assert_eq!(
        all,
        vec![
            ("tg/chat/1".to_string(), ("one".to_string(), 1)),
            ("tg/chat/2".to_string(), ("two".to_string(), 2)),
        ]
    );
    store.kv_remove("tg/chat/1").unwrap();
    assert_eq!(store.kv_get::<(String, u32)>("tg/chat/1").unwrap(), None);
    // A value of another shape is a clear error, not a panic.
    let err = store.kv_get::<u32>("tg/chat/2").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { ref key, .. } if key == "kv/tg/chat/2"));
}

#[test]
fn kv_insert_new_lets_exactly_one_of_racing_writers_win() {
    let (_dir, store) = temp_store();
    let winners: usize = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                scope.spawn(move || store.kv_insert_new("claim/1", &i).unwrap())
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap() as usize).sum()
    });
    assert_eq!(winners, 1);
    assert!(store.kv_get::<u32>("claim/1").unwrap().is_some());
    assert!(
        !store.kv_insert_new("claim/1", &99).unwrap(),
        "taken stays taken"
    );
}

/// An update never brings back a value removed while it ran, nor overwrites a newer value
/// with a change of an older one (the removal and the write happen inside `change`, between
/// the update's read and its write: where a Telegram keyboard used up by a press was once
/// brought back by the late record of its message id).
#[test]
fn kv_update_changes_only_a_value_still_there() {
    let (_dir, store) = temp_store();
    assert!(!store.kv_update("kb/1", |n: u32| n + 1).unwrap(), "absent");
    store.kv_put("kb/1", &1u32).unwrap();
    let removed = store
        .kv_update("kb/1", |n: u32| {
            store.kv_remove("kb/1").unwrap();
            n + 1
        })
        .unwrap();
    assert!(!removed);
    assert_eq!(store.kv_get::<u32>("kb/1").unwrap(), None, "stays removed");

    store.kv_put("kb/2", &1u32).unwrap();
    let first = std::sync::atomic::AtomicBool::new(true);
    let changed = store
        .kv_update("kb/2", |n: u32| {
            if first.swap(false, std::sync::atomic::Ordering::Relaxed) {
                store.kv_put("kb/2", &10u32).unwrap();
            }
            n + 1
        })
        .unwrap();
    assert!(changed);
    assert_eq!(
        store.kv_get::<u32>("kb/2").unwrap(),
        Some(11),
        "the change applied to the newer value"
    );
}

#[test]
fn kv_remove_range_removes_only_keys_in_the_range() {
    let (_dir, store) = temp_store();
    for k in ["r/1", "r/2", "r/3", "s/1"] {
        store.kv_put(k, &true).unwrap();
    }
    assert_eq!(store.kv_remove_range("r/", "r/3").unwrap(), 2);
    let left: Vec<String> = store
        .kv_scan::<bool>("")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, ["r/3", "s/1"]);
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (id, stored) = {
        let store = Store::open(dir.path()).unwrap();
        let id = store.create_session("s", "p", "m").unwrap().id;
        let stored = say(&store, id, Role::User, "kept");
        store.flush().unwrap();
        (id, stored)
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.messages(id).unwrap(), vec![stored]);
    assert_eq!(store.dir(), dir.path());
}

#[test]
fn a_second_open_of_the_same_directory_is_locked() {
    let (dir, _store) = temp_store();
    let err = Store::open(dir.path()).unwrap_err();
    match &err {
        StoreError::Locked { dir: d } => assert_eq!(d, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("\"{}\"", dir.path().display())) && text.contains("in use"),
        "{text}"
    );
}

#[test]
fn a_corrupt_value_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(dir.path()).unwrap();
        let id = store.create_session("s", "p", "m").unwrap().id;
        say(&store, id, Role::User, "fine");
        store.flush().unwrap();
        id
    };
    // Damage one message and one session record behind the store's back, with sled itself.
    {
        let db = open_sled_after_store(&dir.path().join("sled"));
        let messages = db.open_tree("messages").unwrap();
        let (key, _) = messages.iter().next().unwrap().unwrap();
        messages
            .insert(key, &b"{\"v\":1,\"role\":\"user\",\"te"[..])
            .unwrap();
        let sessions = db.open_tree("sessions").unwrap();
        sessions
            .insert(b"\0\0\0\0\0\0\0\x09", &b"\xff"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let err = store.messages(id).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { key, .. } if *key == format!("messages/{id}/1")),
        "{err:?}"
    );
    assert!(matches!(
        store.recent_messages(id, 1),
        Err(StoreError::Corrupt { .. })
    ));
    let err = store.sessions().unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { key, .. } if key == "sessions/9"),
        "{err:?}"
    );
    assert!(matches!(
        store.session(SessionId(9)),
        Err(StoreError::Corrupt { .. })
    ));
}

/// sled opened directly on the files of a store this test just dropped: sled's flusher thread
/// lets go of the lock at its next wake-up, so a held lock is retried for as long as
/// `Store::open` itself retries one ([`parlor::store::LOCK_WAIT`]).
fn open_sled_after_store(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + parlor::store::LOCK_WAIT;
    loop {
        match sled::open(path) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}
