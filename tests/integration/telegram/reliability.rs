//! Reliability: restart with a pending message, duplicate updates, a panic in one update,
//! `/stop` (mid-reply by construction: the [`Relay`](super::Relay) engine streams what the test
//! sends), bursts, queue notices, and the token never in the logs.

use super::{
    Harness, Hooked, Relay, TOKEN, bot, bot_with_store, eventually, finals, test_config, to_chat,
};
use parlor::chat::Role;
use parlor::engine::scripted::Scripted;
use parlor::engine::{Engine, EngineEvent, EventStream, GenerateRequest, ScriptedEngine};
use parlor::testkit::fake_telegram::Failure;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Reports "you are number 2 in line" before every reply, like a busy engine.
fn busy(e: &ScriptedEngine, req: GenerateRequest) -> EventStream {
    let mut inner = e.generate(req);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        let _ = tx.send(EngineEvent::Queued { position: 2 }).await;
        while let Some(ev) = inner.recv().await {
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test]
async fn a_reply_cut_by_shutdown_is_answered_after_a_restart_and_its_question_stored_once() {
    let engine = ScriptedEngine::new([Scripted::Hang("partial answer ".into())]);
    let (_dir, bot, store) = bot_with_store(Arc::new(engine));
    let h = Harness::start(bot.clone(), test_config()).await;
    let fake = h.fake.clone();
    let update = fake.push_text(91, "where is my parcel?");
    h.until("the partial reply and the acknowledgement", |c| {
        !to_chat(c, "sendmessagedraft", 91).is_empty()
            && c.iter()
                .any(|c| c.method == "getupdates" && c.params["offset"].as_i64() > Some(update))
    })
    .await;
    assert_eq!(
        store.kv_scan::<Value>("tg/pending/91/").unwrap().len(),
        1,
        "stored as pending"
    );
    h.stop().await;
    assert_eq!(
        store.kv_scan::<Value>("tg/pending/91/").unwrap().len(),
        1,
        "still pending after the cut"
    );
    // The cut reply was finished visibly, not left as a dangling draft.
    assert!(
        fake.chat_texts(91)
            .iter()
            .any(|t| t.starts_with("partial answer") && t.contains("interrupted"))
    );
    // The question was stored before the cut, and the cut reply is stored as interrupted
    // once the turn notices (as a crashed process would have left them).
    let sid = store.find_session("tg-91").unwrap().unwrap().id;
    eventually("the cut reply stored", || {
        store
            .messages(sid)
            .unwrap()
            .last()
            .is_some_and(|m| m.interrupted)
    })
    .await;

    let h = Harness::start_on(fake.clone(), bot, test_config()).await;
    h.until_final(91, "echo: where is my parcel?").await;
    assert_eq!(fake.unacknowledged(), 0);
    h.stop().await;
    assert!(
        store.kv_scan::<Value>("tg/pending/").unwrap().is_empty(),
        "nothing left pending"
    );
    let history: Vec<(Role, String, bool)> = store
        .messages(sid)
        .unwrap()
        .into_iter()
        .map(|m| (m.role, m.text, m.interrupted))
        .collect();
    assert_eq!(
        history,
        [
            (Role::User, "where is my parcel?".into(), false),
            (Role::Assistant, "echo: where is my parcel?".into(), false),
        ],
        "the question once, then the one reply (the cut one is replaced)"
    );
}

#[tokio::test]
async fn duplicate_updates_are_answered_once() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    let m = h.fake.message(95, 95, "only once please");
    h.fake
        .push_raw(json!({"update_id": 500, "message": m.clone()}));
    h.fake.push_raw(json!({"update_id": 500, "message": m}));
    h.until("the reply", |c| !finals(c, 95).is_empty()).await;
    h.fake.push_text(95, "next");
    h.until_final(95, "echo: next").await;
    assert_eq!(
        h.fake.chat_texts(95),
        ["echo: only once please", "echo: next"]
    );
    h.stop().await;
}

#[tokio::test]
async fn a_panic_in_one_update_is_caught_and_the_bot_keeps_serving() {
    // Panics the first time the model name is asked for (creating the first session).
    let panicked = AtomicBool::new(false);
    let engine = Hooked::new(ScriptedEngine::new([])).on_model_name(move || {
        assert!(
            panicked.swap(true, Ordering::SeqCst),
            "injected failure while opening a session"
        );
    });
    let (_dir, bot) = bot(Arc::new(engine));
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(96, "first");
    h.until_text(96, "the apology", |t| t.contains("something went wrong"))
        .await;
    h.fake.push_text(96, "second");
    h.until_final(96, "echo: second").await;
    assert_eq!(h.svc.metrics().panics.load(Ordering::Relaxed), 1);
    h.stop().await;
}

#[tokio::test]
async fn stop_cancels_the_reply_and_keeps_what_was_written() {
    // The reply streams what the test sends and then waits: /stop arrives mid-reply by
    // construction, not by racing a slow script.
    let relay = Relay::new();
    let (_dir, bot, store) = bot_with_store(relay.clone());
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(97, "talk forever");
    let turn = relay.next_turn().await;
    turn.token("the first words ").await;
    turn.token("of a long answer").await;
    h.until("the draft with both pieces", |c| {
        to_chat(c, "sendmessagedraft", 97)
            .iter()
            .any(|c| c.ok && c.text() == "the first words of a long answer")
    })
    .await;
    h.fake.push_text(97, "/stop");
    h.until_text(97, "the stopped reply", |t| t.contains("(stopped)"))
        .await;
    turn.cancelled().await;
    let sid = store.find_session("tg-97").unwrap().unwrap().id;
    // The turn stores the cut reply when it notices the cancellation.
    eventually("the cut reply stored", || {
        store.messages(sid).unwrap().len() == 2
    })
    .await;
    let msgs = store.messages(sid).unwrap();
    assert!(msgs[1].interrupted, "stored as interrupted");
    assert_eq!(msgs[1].text, "the first words of a long answer");
    let mut shown = h.fake.chat_texts(97);
    shown.sort();
    assert_eq!(
        shown,
        ["Stopped.", "the first words of a long answer\n\n(stopped)"]
    );
    h.stop().await;
}

#[tokio::test]
async fn a_burst_of_messages_is_answered_once_and_queue_position_is_told() {
    let (_dir, bot) = bot(Arc::new(
        Hooked::new(ScriptedEngine::new([])).on_generate(busy),
    ));
    let mut cfg = test_config();
    cfg.burst_window_ms = 400;
    let h = Harness::start(bot, cfg).await;
    for t in ["hi", "my router", "is broken"] {
        h.fake.push_text(98, t);
    }
    let calls = h.until("the reply", |c| !finals(c, 98).is_empty()).await;
    assert_eq!(finals(&calls, 98).len(), 1);
    let texts = h.fake.chat_texts(98);
    assert!(texts[0].contains("number 2 in line"), "{texts:?}");
    assert_eq!(texts.last().unwrap(), "echo: hi\nmy router\nis broken");
    h.stop().await;
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_token_never_appears_in_the_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    cfg.allowed_users = vec![1];
    let h = Harness::start(bot, cfg).await;
    h.fake.fail_next("sendMessage", Failure::Status(502));
    h.fake.fail_next("sendMessageDraft", Failure::RetryAfter(1));
    h.fake.push_text(1, "hello");
    h.fake.push_text(2, "refuse me");
    h.until("the reply", |c| !finals(c, 1).is_empty()).await;
    tracing::debug!(api = ?h.svc.context().send.out.api(), "the client, as Debug");
    h.stop().await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        text.contains("retrying telegram call"),
        "the logs were captured"
    );
    assert!(text.contains("[redacted]"));
    assert!(
        !text.contains(TOKEN) && !text.contains("TEST-SECRET"),
        "token leaked into the logs"
    );
}
