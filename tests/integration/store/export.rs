//! JSONL export and import (exact round trip), Markdown transcripts.

use super::{say, temp_store};
use parlor::chat::{Role, SessionId, TurnStats};
use parlor::store::{SessionInfo, Store, StoreError, StoredMessage};

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
pub(crate) fn fill_sample(store: &Store) -> SessionInfo {
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
