//! A database written before encryption (plain JSON records, written here with sled directly
//! as that code wrote them) opens, reads the same, and after the one-time migration no file
//! holds its text; erasing from it is as complete as from a new one.

use super::{assert_nowhere, files_holding};
use parlor::chat::Role;
use parlor::store::Store;
use std::path::Path;

const KEPT: &str = "Marvolinda Krestwhistle";
const ERASED: &str = "Odalric Fenwaterby";
const PENDING: &str = "Zephyrine Ulbrecht";
const ORPHAN: &str = "Gwendocar Pillsbeam";

/// Two sessions, a rule state, a Telegram pending message and messages of a session deleted
/// by the old, non-atomic delete (no session record any more), in the old format.
fn write_old_database(dir: &Path) {
    let db = sled::open(dir.join("sled")).unwrap();
    let (sessions, messages, meta, kv) = (
        db.open_tree("sessions").unwrap(),
        db.open_tree("messages").unwrap(),
        db.open_tree("meta").unwrap(),
        db.open_tree("kv").unwrap(),
    );
    for (id, name, text) in [(1u64, "kept", KEPT), (2, "erased", ERASED)] {
        let record = format!(
            r#"{{"v":1,"name":"{name}","persona":"acme","model":"m","created":5,"updated":9,"message_count":2,"next_seq":3}}"#
        );
        sessions
            .insert(id.to_be_bytes(), record.as_bytes())
            .unwrap();
        meta.insert(format!("name/{name}"), &id.to_be_bytes())
            .unwrap();
        for (seq, role, t) in [
            (1u64, "user", format!("I am {text}")),
            (2, "assistant", "Hello!".into()),
        ] {
            let mut key = id.to_be_bytes().to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            let value = format!(
                r#"{{"v":1,"role":"{role}","text":"{t}","time":7,"tokens":null,"interrupted":false,"source":{{"kind":"model"}},"stats":null}}"#
            );
            messages.insert(key, value.as_bytes()).unwrap();
        }
        kv.insert(
            format!("session/{id}/script"),
            format!(r#"{{"v":1,"value":{{"vars":{{"name":"{text}"}}}}}}"#).as_bytes(),
        )
        .unwrap();
    }
    let mut orphan = 3u64.to_be_bytes().to_vec();
    orphan.extend_from_slice(&1u64.to_be_bytes());
    messages
        .insert(
            orphan,
            format!(r#"{{"v":1,"role":"user","text":"{ORPHAN}","time":7}}"#).as_bytes(),
        )
        .unwrap();
    meta.insert("next_session_id", &4u64.to_be_bytes()).unwrap();
    kv.insert(
        "tg/pending/5/00000000000000000001",
        format!(r#"{{"v":1,"value":{{"text":"{PENDING}"}}}}"#).as_bytes(),
    )
    .unwrap();
    kv.insert("tg/offset", &br#"{"v":1,"value":41}"#[..])
        .unwrap();
    db.flush().unwrap();
}

#[test]
fn an_old_database_is_migrated_read_and_erased_completely() {
    let dir = tempfile::tempdir().unwrap();
    write_old_database(dir.path());
    assert!(
        !files_holding(dir.path(), KEPT.as_bytes()).is_empty(),
        "plain before"
    );
    {
        let store = Store::open(dir.path()).unwrap();
        let kept = store
            .find_session("kept")
            .unwrap()
            .expect("read after migration");
        let msgs = store.messages(kept.id).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].role, msgs[0].text.as_str()),
            (Role::User, "I am Marvolinda Krestwhistle")
        );
        let state: serde_json::Value = store.kv_get("session/1/script").unwrap().unwrap();
        assert_eq!(state["vars"]["name"], KEPT);
        let pending: Vec<(String, serde_json::Value)> = store.kv_scan("tg/pending/5/").unwrap();
        assert_eq!(pending[0].1["text"], PENDING);
        assert_eq!(store.kv_get::<i64>("tg/offset").unwrap(), Some(41));
        let erased = store.find_session("erased").unwrap().unwrap();
        let e = store.erase_session(erased.id).unwrap();
        assert_eq!((e.messages, e.records), (2, 1));
        // A new session continues the old id counter.
        assert_eq!(store.create_session("new", "p", "m").unwrap().id.0, 4);
    }
    assert_nowhere(
        dir.path(),
        &[
            (
                "the kept text (sealed after the migration)",
                KEPT.as_bytes(),
            ),
            ("the erased text", ERASED.as_bytes()),
            ("the pending text (sealed)", PENDING.as_bytes()),
            ("the orphaned text (not copied)", ORPHAN.as_bytes()),
            ("a readable name index", b"name/kept"),
        ],
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("sled.")),
        "the old database is deleted after the migration: {names:?}"
    );
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store
            .messages(store.find_session("kept").unwrap().unwrap().id)
            .unwrap()
            .len(),
        2
    );
    assert!(store.find_session("erased").unwrap().is_none());
}
