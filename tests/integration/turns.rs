//! `Bot::turn` and `parlor ask` on the real default model with a real sled store: history
//! continues across invocations with reused tokens, cancelled replies are stored as
//! interrupted, and trimming to the context window is reported.

use crate::common::{model_path, parlor_bin};
use parlor::bot::{Bot, ReplyEvent, TurnOptions};
use parlor::chat::{FinishReason, Role};
use parlor::engine::{EngineSettings, LlamaEngine, Sampling};
use parlor::persona::Persona;
use parlor::store::Store;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const PERSONA: &str = "name: Tester\nsystem: You are a helpful assistant. Answer briefly.\nsampling:\n  temperature: 0\n  max_tokens: 48\n";

fn bot(dir: &Path, context: u32) -> Bot {
    let persona_path = dir.join("tester.yaml");
    std::fs::write(&persona_path, PERSONA).unwrap();
    let persona = Persona::load(&persona_path).expect("test persona is valid");
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = context;
    s.threads = Some(2);
    let engine = LlamaEngine::load(s).expect("model loads");
    let store = Store::open(&dir.join("db")).expect("store opens");
    Bot::new(persona, Arc::new(engine), store)
}

fn ask(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(parlor_bin())
        .arg("--home")
        .arg(home)
        .arg("ask")
        .arg("--model")
        .arg(model_path())
        .args(args)
        .output()
        .expect("parlor runs")
}

#[test]
fn ask_twice_in_one_session_continues_the_conversation_and_reuses_the_cache() {
    let home = tempfile::tempdir().unwrap();
    let first = ask(
        home.path(),
        &["--session", "s1", "--json", "My name is Ada. Say hello."],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(!first["reply"].as_str().unwrap().trim().is_empty());
    assert_eq!(first["session"], "s1");

    // With the engine's debug lines: the saved state's checksum ran while the model loaded.
    let second = Command::new(parlor_bin())
        .arg("--home")
        .arg(home.path())
        .args(["--log", "parlor=debug", "--log-stderr", "ask", "--model"])
        .arg(model_path())
        .args(["--session", "s1", "--json", "What is my name?"])
        .output()
        .expect("parlor runs");
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{log}");
    assert!(
        log.contains("checked the session's saved state while the model loads passed=true"),
        "{log}"
    );
    assert!(log.contains("restored saved session state"), "{log}");
    let second: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    let reused = second["reused_tokens"].as_u64().unwrap();
    assert!(
        reused >= first["prompt_tokens"].as_u64().unwrap(),
        "the second invocation restored the first one's cache: {second}"
    );
    assert!(second["prompt_tokens"].as_u64().unwrap() > first["prompt_tokens"].as_u64().unwrap());
    for key in [
        "completion_tokens",
        "ttft_ms",
        "tokens_per_second",
        "trimmed_messages",
    ] {
        assert!(second.get(key).is_some(), "--json has {key}: {second}");
    }

    // Plain mode streams the text itself.
    let plain = ask(home.path(), &["--session", "s1", "Thanks!"]);
    assert!(plain.status.success());
    assert!(!String::from_utf8_lossy(&plain.stdout).trim().is_empty());
}

#[test]
fn ask_with_a_missing_model_says_which_file_and_how_to_fetch_it() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(parlor_bin())
        .arg("--home")
        .arg(home.path())
        .args(["ask", "hello"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("parlor model pull smollm2-135m"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_dropped_mid_stream_is_stored_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let bot = bot(dir.path(), 2048);
    let session = bot.new_session(Some("cancel")).unwrap();
    let opts = TurnOptions {
        max_tokens: Some(300),
        ..Default::default()
    };
    let mut reply = bot.turn_with(session.id, "Tell me a long story about a dragon.", opts);
    let mut seen = String::new();
    while seen.split_whitespace().count() < 3 {
        let ev = tokio::time::timeout(crate::engine::DEADLINE, reply.next())
            .await
            .expect("a token from the real engine within the deadline");
        match ev {
            Some(ReplyEvent::Token(t)) => seen.push_str(&t),
            Some(ReplyEvent::Queued { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // Cancelling is dropping the stream; the returned future says when the turn task has
    // stored the partial reply.
    tokio::time::timeout(std::time::Duration::from_secs(30), reply.cancel())
        .await
        .expect("the partial reply is stored within 30 s");
    let stored = bot.transcript(session.id).unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].role, Role::User);
    assert_eq!(stored[1].role, Role::Assistant);
    assert!(stored[1].interrupted, "marked interrupted");
    assert!(
        stored[1].text.starts_with(seen.trim_end()),
        "{:?} vs {seen:?}",
        stored[1].text
    );
    assert_eq!(
        stored[1].stats.as_ref().map(|s| s.finish),
        Some(FinishReason::Cancelled)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_beyond_the_window_is_trimmed_and_the_trim_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bot = bot(dir.path(), 256);
    let session = bot.new_session(Some("long")).unwrap();
    let opts = || TurnOptions {
        sampling: Some(Sampling::greedy()),
        max_tokens: Some(16),
        ..Default::default()
    };
    let mut trimmed = 0;
    for i in 0..8 {
        let text = format!("Message number {i}: please remember the word apple{i} for me.");
        let outcome = bot
            .turn_with(session.id, &text, opts())
            .finish()
            .await
            .unwrap();
        assert!(outcome.stats.prompt_tokens < 256);
        trimmed = outcome.stats.trimmed_messages;
    }
    assert!(
        trimmed > 0,
        "older turns were left out, and the stats say so"
    );
    assert_eq!(
        bot.transcript(session.id).unwrap().len(),
        16,
        "nothing is deleted"
    );

    let huge = "word ".repeat(400);
    let err = bot
        .turn_with(session.id, &huge, opts())
        .finish()
        .await
        .unwrap_err();
    assert!(
        err.contains("context"),
        "a message too long for the window is refused: {err}"
    );
    assert_eq!(
        bot.transcript(session.id).unwrap().len(),
        16,
        "the refused message is not kept: it never reached the model"
    );
}

/// `reply.finish()` with the real-engine deadline.
async fn finished(reply: parlor::bot::Reply) -> parlor::bot::TurnOutcome {
    tokio::time::timeout(crate::engine::DEADLINE, reply.finish())
        .await
        .expect("the real engine answered within the deadline")
        .expect("the turn succeeded")
}

/// Golden (see `engine`): `Bot::regenerate`, as the Telegram front end uses it after a cut
/// reply and the TUI's /retry, rolls the slot's KV cache back to the question: the reply is
/// the one a fresh session gets, and the history holds the question once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_regenerate_on_the_real_engine_matches_a_fresh_greedy_run() {
    let dir = tempfile::tempdir().unwrap();
    let bot = bot(dir.path(), 1024);
    let q = "Tell me a story about a dragon.";
    let opts = || TurnOptions {
        sampling: Some(Sampling::greedy()),
        max_tokens: Some(20),
        ..Default::default()
    };
    let s = bot.new_session(Some("cut")).unwrap().id;
    // A reply cut after a few tokens, as a restart leaves it: they are in the slot's cache.
    let mut reply = bot.turn_with(s, q, opts());
    let mut tokens = 0;
    while tokens < 3 {
        let ev = tokio::time::timeout(crate::engine::DEADLINE, reply.next())
            .await
            .expect("a token from the real engine within the deadline");
        match ev {
            Some(ReplyEvent::Token(_)) => tokens += 1,
            Some(ReplyEvent::Queued { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The cut reply is stored once the cancelled turn settles.
    tokio::time::timeout(crate::engine::DEADLINE, reply.cancel())
        .await
        .expect("the cut reply stored within the deadline");
    let after_cut = finished(bot.regenerate(s, opts())).await;
    assert!(
        after_cut.stats.reused_tokens > 0,
        "the slot's cache was rolled back and reused, not thrown away"
    );
    // Regenerating a complete reply (its tokens and the pre-filled turn boundary cached).
    let again = finished(bot.regenerate(s, opts())).await;
    // A fresh greedy run in an engine of its own (a new session of the same bot would take
    // the same prompt from the slot's cache).
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh_bot = self::bot(fresh_dir.path(), 1024);
    let fresh_session = fresh_bot.new_session(Some("fresh")).unwrap().id;
    let fresh = finished(fresh_bot.turn_with(fresh_session, q, opts())).await;
    assert_eq!(fresh.stats.reused_tokens, 0);
    assert_eq!(after_cut.text, fresh.text, "after a cut reply");
    assert_eq!(again.text, fresh.text, "after a complete reply");
    let history: Vec<(Role, String, bool)> = bot
        .transcript(s)
        .unwrap()
        .into_iter()
        .map(|m| (m.role, m.text, m.interrupted))
        .collect();
    assert_eq!(
        history,
        [
            (Role::User, q.to_string(), false),
            (Role::Assistant, fresh.text.clone(), false)
        ]
    );
}
