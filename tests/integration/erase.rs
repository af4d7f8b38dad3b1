//! Erasure leaves nothing readable: after `/forget` (Telegram, fake Bot API, real model),
//! `parlor history delete`, retention (controlled clock) and `history prune`, no file under the
//! storage directory holds the conversation's text or its token ids (as a saved KV state holds
//! them: little-endian i32). Also: a database written in the format before encryption is
//! migrated and its erasures are as complete, and a SIGKILL during an erase leaves each
//! conversation whole or gone.

use crate::common::{model_path, parlor_bin};
use crate::engine::wait_until;
use crate::telegram::{Harness, finals, persona_with_max_tokens, test_config};
use parlor::bot::Bot;
use parlor::chat::{Role, SessionId};
use parlor::engine::{EngineSettings, LlamaEngine};
use parlor::store::{Store, StoredMessage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod kill;
mod legacy;

/// A real engine whose saved states go to `dir/kv-state`, one slot (a second chat evicts the
/// first, whose state is parked in memory and saved once the engine is idle).
fn engine(dir: &Path) -> Arc<LlamaEngine> {
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 1024;
    s.slots = 1;
    s.threads = Some(2);
    s.state_dir = Some(dir.join("kv-state"));
    Arc::new(LlamaEngine::load(s).expect("the default model loads"))
}

/// The token ids of `text` (after a space, as in a sentence) as a saved state stores them.
pub fn token_bytes(engine: &LlamaEngine, text: &str) -> Vec<u8> {
    let tokens = engine
        .model()
        .vocab()
        .tokenize(format!(" {text}").as_bytes(), false, false);
    assert!(tokens.len() >= 3, "a marker of several tokens");
    tokens.iter().flat_map(|t| t.0.to_le_bytes()).collect()
}

/// Every file under `dir` (recursively) that contains `needle`.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                todo.push(path);
            } else if std::fs::read(&path).is_ok_and(|data| contains(&data, needle)) {
                found.push(path);
            }
        }
    }
    found
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == needle[0]) {
        let at = from + i;
        if hay.len() - at < needle.len() {
            return false;
        }
        if &hay[at..at + needle.len()] == needle {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Nothing under `dir` holds any of `needles` (named in the failure).
pub fn assert_nowhere(dir: &Path, needles: &[(&str, &[u8])]) {
    for (what, needle) in needles {
        let found = files_holding(dir, needle);
        assert!(found.is_empty(), "{what} still in {found:?}");
    }
}

/// Wait for the model's reply in `chat`: a real model on a shared machine can take far longer
/// than the scripted engines the Telegram tests' 30 s deadline is for.
async fn model_reply(h: &Harness, chat: i64) {
    if let Err(calls) = h
        .fake
        .wait_for(Duration::from_secs(300), |c| !finals(c, chat).is_empty())
        .await
    {
        panic!(
            "no reply in chat {chat} within 300 s: {:#?}",
            crate::telegram::summary(&calls)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_forget_leaves_neither_the_text_nor_its_token_ids_in_any_file() {
    const MARKER: &str = "Quaxmirel Vontobbly";
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tokens = token_bytes(&engine, MARKER);
    let store = Store::open(dir.path()).unwrap();
    let bot = Bot::new(persona_with_max_tokens(12), engine.clone(), store.clone());
    let h = Harness::start(bot.clone(), test_config()).await;
    h.fake.push_text(
        71,
        &format!("Hello, my name is {MARKER} and my router reboots."),
    );
    model_reply(&h, 71).await;
    // Another customer: its turn takes the only slot, so chat 71's state is saved to disk
    // (once the engine is idle).
    h.fake.push_text(72, "Hello, my router is slow.");
    model_reply(&h, 72).await;
    let kv_state = dir.path().join("kv-state");
    wait_until(
        "the saved state holds the marker's token ids (else this scan proves nothing)",
        || !files_holding(&kv_state, &tokens).is_empty(),
    )
    .await;
    assert_nowhere(
        dir.path(),
        &[(
            "the marker, in plain text before /forget",
            MARKER.as_bytes(),
        )],
    );

    h.fake.push_text(71, "/forget");
    h.until_text(71, "the confirmation question", |t| {
        t.contains("/forget yes")
    })
    .await;
    h.fake.push_text(71, "/forget yes");
    h.until_text(71, "the confirmation", |t| {
        t.starts_with("Done: I erased 1 conversation with 2 messages")
    })
    .await;
    h.stop().await;
    bot.close().await;
    drop((bot, store, engine));

    assert_nowhere(
        dir.path(),
        &[
            ("the marker", MARKER.as_bytes()),
            ("the marker's token ids", &tokens),
        ],
    );
    let store = Store::open(dir.path()).unwrap();
    assert!(store.find_session("tg-71").unwrap().is_none());
    let kept = store.find_session("tg-72").unwrap().expect("chat 72 kept");
    assert_eq!(store.messages(kept.id).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_delete_and_retention_leave_nothing_of_their_conversations() {
    const DELETED: &str = "Brindlewick Oszmantha";
    const EXPIRED: &str = "Thorvaldine Quexbury";
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let (deleted_tokens, expired_tokens) =
        (token_bytes(&engine, DELETED), token_bytes(&engine, EXPIRED));
    // A short persona: these turns are about the files they leave, not about support answers.
    let persona = parlor::persona::Persona::parse(
        Path::new("personas/brief.yaml"),
        "name: Brief\nsystem: You are {{bot}}. Answer in one short sentence.\nsampling:\n  max_tokens: 8\n",
    )
    .unwrap();
    let bot = Bot::new(persona, engine.clone(), Store::open(dir.path()).unwrap());
    let say = |name: &str, text: String| {
        let bot = bot.clone();
        let name = name.to_string();
        async move {
            let s = bot.new_session(Some(&name)).unwrap();
            bot.turn(s.id, &text).finish().await.expect("a reply");
            bot.session(s.id).unwrap().unwrap()
        }
    };
    // In this order: each turn evicts the one before from the only slot (its state saved, at
    // once or once the engine is idle).
    let expired = say("expired", format!("My name is {EXPIRED}.")).await;
    say("deleted", format!("My name is {DELETED}.")).await;
    let kept = say("kept", "Hello there.".to_string()).await;
    for tokens in [&expired_tokens, &deleted_tokens] {
        wait_until("both evicted conversations' states are saved", || {
            !files_holding(&dir.path().join("kv-state"), tokens).is_empty()
        })
        .await;
    }

    // Retention, with the clock set to 30 days and 1 ms after "expired" was last updated.
    let now = expired.updated + 30 * 86_400_000 + 1;
    let b = bot.clone();
    let erased =
        tokio::task::spawn_blocking(move || b.erase_idle(Duration::from_secs(30 * 86_400), now))
            .await
            .unwrap()
            .unwrap();
    let names: Vec<&str> = erased.iter().map(|(i, _)| i.name.as_str()).collect();
    assert_eq!(names, ["expired"]);
    assert_eq!((erased[0].1.messages, erased[0].1.saved_states), (2, 1));
    bot.close().await;
    drop((bot, engine));

    // `history delete`, as a user runs it.
    let out = std::process::Command::new(parlor_bin())
        .args(["history", "delete", "deleted", "-y", "--storage"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "erased session \"deleted\" (2 messages, 1 saved engine states)\n"
    );
    assert_nowhere(
        dir.path(),
        &[
            ("the deleted marker", DELETED.as_bytes()),
            ("the deleted marker's tokens", &deleted_tokens),
            ("the expired marker", EXPIRED.as_bytes()),
            ("the expired marker's tokens", &expired_tokens),
        ],
    );
    let store = Store::open(dir.path()).unwrap();
    let names: Vec<String> = store
        .sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(store.messages(kept.id).unwrap().len(), 2);
}

#[test]
fn history_prune_erases_idle_sessions_and_says_which() {
    const MARKER: &str = "Yzerbelle Pontifrax";
    let dir = tempfile::tempdir().unwrap();
    let old = chrono::Utc::now().timestamp_millis() - 40 * 86_400_000;
    {
        let store = Store::open(dir.path()).unwrap();
        let jsonl = format!(
            "{{\"v\":1,\"type\":\"session\",\"name\":\"old\",\"persona\":\"p\",\"model\":\"m\",\"created\":{old},\"updated\":{old},\"message_count\":1}}\n{{\"v\":1,\"type\":\"message\",\"seq\":1,\"role\":\"user\",\"text\":\"I am {MARKER}\",\"time\":{old},\"tokens\":null,\"interrupted\":false,\"source\":{{\"kind\":\"model\"}},\"stats\":null}}\n"
        );
        store
            .import_jsonl_from(jsonl.as_bytes(), "old.jsonl")
            .unwrap();
        let fresh = store.create_session("fresh", "p", "m").unwrap();
        store
            .append_message(fresh.id, StoredMessage::new(Role::User, "hi"))
            .unwrap();
        store.flush().unwrap();
    }
    let run = |age: &str| {
        std::process::Command::new(parlor_bin())
            .args(["history", "prune", "--older-than", age, "--storage"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let bad = run("30x");
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("\"30x\": give a number of days, hours or minutes"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let out = run("30d");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(
            "erased session \"old\" (1 messages, 0 saved engine states; last message "
        ),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("erased 1 session(s), 1 message(s) idle for more than 30 days in "),
        "{stdout}"
    );
    assert_nowhere(dir.path(), &[("the marker", MARKER.as_bytes())]);
    let store = Store::open(dir.path()).unwrap();
    let names: Vec<String> = store
        .sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["fresh"]);
    assert_eq!(store.session(SessionId(1)).unwrap(), None);
}
