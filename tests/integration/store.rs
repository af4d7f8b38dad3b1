//! The sled store on real on-disk databases: sessions, message order, limits, export and
//! import, the directory lock, corrupt values, the `history` CLI, and a SIGKILL test.

mod cli;
mod kill;

use parlor::chat::{ReplySource, Role, SessionId, TurnStats};
use parlor::store::{SessionInfo, Store, StoreError, StoredMessage};
use tempfile::TempDir;

pub(crate) fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

fn say(store: &Store, session: SessionId, role: Role, text: &str) -> StoredMessage {
    store
        .append_message(session, StoredMessage::new(role, text))
        .expect("append")
}

fn texts(msgs: &[StoredMessage]) -> Vec<&str> {
    msgs.iter().map(|m| m.text.as_str()).collect()
}

#[test]
fn messages_come_back_in_order_per_session() {
    let (_dir, store) = temp_store();
    let a = store.create_session("a", "assistant", "m").unwrap().id;
    let b = store.create_session("b", "assistant", "m").unwrap().id;
    // Interleave two sessions and cross the 255/256 byte boundary of the sequence.
    for i in 0..300 {
        say(&store, a, Role::User, &format!("a{i}"));
        if i % 3 == 0 {
            say(&store, b, Role::User, &format!("b{i}"));
        }
    }
    let msgs = store.messages(a).unwrap();
    assert_eq!(msgs.len(), 300);
    let expected: Vec<String> = (0..300).map(|i| format!("a{i}")).collect();
    assert_eq!(texts(&msgs), expected);
    assert!(msgs.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.messages(b).unwrap().len(), 100);
    assert_eq!(store.session(a).unwrap().unwrap().message_count, 300);
}

#[test]
fn recent_messages_are_the_newest_in_order() {
    let (_dir, store) = temp_store();
    let a = store.create_session("a", "p", "m").unwrap().id;
    let b = store.create_session("b", "p", "m").unwrap().id;
    for i in 0..10 {
        say(&store, a, Role::User, &format!("a{i}"));
    }
    say(&store, b, Role::User, "b0");
    assert_eq!(
        texts(&store.recent_messages(a, 3).unwrap()),
        ["a7", "a8", "a9"]
    );
    assert_eq!(store.recent_messages(a, 0).unwrap(), vec![]);
    assert_eq!(store.recent_messages(a, 50).unwrap().len(), 10);
    assert_eq!(texts(&store.recent_messages(b, 5).unwrap()), ["b0"]);
    let empty = store.create_session("empty", "p", "m").unwrap().id;
    assert_eq!(store.recent_messages(empty, 5).unwrap(), vec![]);
}

#[test]
fn appended_messages_keep_every_field() {
    let (_dir, store) = temp_store();
    let s = store.create_session("s", "p", "m").unwrap().id;
    let mut m = StoredMessage::new(Role::Assistant, "partial rep");
    m.tokens = Some(3);
    m.interrupted = true;
    m.source = ReplySource::Rule("greet".into());
    m.stats = Some(TurnStats {
        prompt_tokens: 40,
        reused_tokens: 12,
        ttft_ms: 85.25,
        ..TurnStats::default()
    });
    let stored = store.append_message(s, m.clone()).unwrap();
    assert_eq!(
        stored,
        StoredMessage {
            seq: stored.seq,
            ..m
        }
    );
    assert_eq!(store.messages(s).unwrap(), vec![stored.clone()]);
    let info = store.session(s).unwrap().unwrap();
    assert_eq!(info.updated, stored.time.max(info.created));
}

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
fn truncate_and_update_messages() {
    let (_dir, store) = temp_store();
    let s = store.create_session("s", "p", "m").unwrap().id;
    let seqs: Vec<u64> = (0..5)
        .map(|i| say(&store, s, Role::User, &format!("m{i}")).seq)
        .collect();
    store.truncate_messages(s, seqs[3]).unwrap();
    assert_eq!(texts(&store.messages(s).unwrap()), ["m0", "m1", "m2"]);
    assert_eq!(store.session(s).unwrap().unwrap().message_count, 3);
    let next = say(&store, s, Role::Assistant, "again");
    assert!(next.seq > seqs[4], "seqs are never reused");

    let mut edited = next.clone();
    edited.text = "again, edited".into();
    edited.interrupted = true;
    store.update_message(s, &edited).unwrap();
    assert_eq!(store.recent_messages(s, 1).unwrap(), vec![edited.clone()]);
    edited.seq = 999;
    let err = store.update_message(s, &edited).unwrap_err();
    assert!(
        matches!(err, StoreError::NoMessage { seq: 999, .. }),
        "{err:?}"
    );
}

#[test]
fn concurrent_appends_get_distinct_increasing_seqs() {
    let (_dir, store) = temp_store();
    let s = store.create_session("s", "p", "m").unwrap().id;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..50 {
                    say(&store, s, Role::User, &format!("t{t}-{i}"));
                }
            });
        }
    });
    let msgs = store.messages(s).unwrap();
    assert_eq!(msgs.len(), 200);
    assert_eq!(store.session(s).unwrap().unwrap().message_count, 200);
    let seqs: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    // Each thread's own messages keep their order.
    for t in 0..4 {
        let own: Vec<String> = msgs
            .iter()
            .filter(|m| m.text.starts_with(&format!("t{t}-")))
            .map(|m| m.text.clone())
            .collect();
        assert_eq!(
            own,
            (0..50).map(|i| format!("t{t}-{i}")).collect::<Vec<_>>()
        );
    }
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
        let db = sled::open(dir.path().join("sled")).unwrap();
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

#[test]
fn jsonl_export_import_round_trips_exactly() {
    let (_dir, store) = temp_store();
    let s = fill_sample(&store);
    let mut first = Vec::new();
    store.export_jsonl(s.id, &mut first).unwrap();
    let text = String::from_utf8(first.clone()).unwrap();
    assert_eq!(text.lines().count(), 1 + 4);
    assert!(
        text.starts_with("{\"v\":1,\"type\":\"session\",\"name\":\"sample\""),
        "{text}"
    );

    // Into a fresh database: same name, the export is byte-identical.
    let (_dir2, other) = temp_store();
    let imported = other.import_jsonl_from(&first[..], "first.jsonl").unwrap();
    assert_eq!(
        SessionInfo {
            id: s.id,
            ..imported.clone()
        },
        s
    );
    let mut second = Vec::new();
    other.export_jsonl(imported.id, &mut second).unwrap();
    assert_eq!(String::from_utf8(second).unwrap(), text);
    assert_eq!(
        other.messages(imported.id).unwrap(),
        store.messages(s.id).unwrap()
    );
    // It keeps working as a normal session: the next seq follows the imported ones.
    let next = say(&other, imported.id, Role::User, "more");
    assert_eq!(
        next.seq,
        store.messages(s.id).unwrap().last().unwrap().seq + 1
    );

    // Into the same database through a file: the name is taken, so it gets a new one.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &first).unwrap();
    let copy = store.import_jsonl(file.path()).unwrap();
    assert_eq!(copy.name, "sample-2");
    assert_eq!(
        store.messages(copy.id).unwrap(),
        store.messages(s.id).unwrap()
    );
    let again = store.import_jsonl(file.path()).unwrap();
    assert_eq!(again.name, "sample-3");
}

#[test]
fn a_bad_import_stores_nothing() {
    let (_dir, store) = temp_store();
    let s = fill_sample(&store);
    let mut out = Vec::new();
    store.export_jsonl(s.id, &mut out).unwrap();
    let mut text = String::from_utf8(out).unwrap();
    text.push_str("{\"v\":1,\"type\":\"message\",\"seq\":1}\n");
    let err = store
        .import_jsonl_from(text.as_bytes(), "x.jsonl")
        .unwrap_err();
    assert!(
        err.to_string().starts_with("x.jsonl:6: bad message line"),
        "{err}"
    );
    assert_eq!(store.sessions().unwrap().len(), 1);
    let missing = store
        .import_jsonl(std::path::Path::new("/nonexistent/x.jsonl"))
        .unwrap_err();
    assert!(matches!(missing, StoreError::Io { .. }), "{missing:?}");
}

#[test]
fn markdown_export_is_a_readable_transcript() {
    let (_dir, store) = temp_store();
    let s = fill_sample(&store);
    let mut out = Vec::new();
    store.export_markdown(s.id, &mut out).unwrap();
    let md = String::from_utf8(out).unwrap();
    assert!(
        md.starts_with("# sample\n\n- Persona: `assistant`\n- Model: `smollm2-135m`\n"),
        "{md}"
    );
    assert!(md.contains("- Messages: 4\n"), "{md}");
    assert!(
        md.contains("**User** · 2023-11-14 22:13:20 UTC\n\nHello there?"),
        "{md}"
    );
    assert!(
        md.contains("**Bot** · 2023-11-14 22:13:21 UTC\n\nHi! How can I help?"),
        "{md}"
    );
    assert!(
        md.contains("**Bot** · 2023-11-14 22:13:23 UTC · *interrupted*\n\nWell,"),
        "{md}"
    );
    let user = md.find("Hello there?").unwrap();
    let bot = md.find("Hi! How can").unwrap();
    assert!(user < bot);
    assert!(matches!(
        store.export_markdown(SessionId(999), &mut Vec::new()),
        Err(StoreError::NoSession(_))
    ));
}

/// A session with two turns, the last reply interrupted, fixed times.
fn fill_sample(store: &Store) -> SessionInfo {
    let s = store
        .create_session("sample", "assistant", "smollm2-135m")
        .unwrap();
    let base = 1_700_000_000_000;
    let turns = [
        (Role::User, "Hello there?", false),
        (
            Role::Assistant,
            "Hi! How can I help?\n\n- a list\n- \"quoted\" ✓",
            false,
        ),
        (Role::User, "Tell me a story", false),
        (Role::Assistant, "Well, ", true),
    ];
    for (i, (role, text, interrupted)) in turns.into_iter().enumerate() {
        let mut m = StoredMessage::new(role, text);
        m.time = base + 1000 * i as i64;
        m.interrupted = interrupted;
        if role == Role::Assistant {
            m.tokens = Some(7);
            m.stats = Some(TurnStats {
                prompt_tokens: 41,
                completion_tokens: 7,
                ttft_ms: 85.123456789,
                tokens_per_second: 181.7,
                ..TurnStats::default()
            });
        }
        store.append_message(s.id, m).unwrap();
    }
    store.flush().unwrap();
    store.session(s.id).unwrap().unwrap()
}
