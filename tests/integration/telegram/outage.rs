//! A Bot API outage longer than every retry: the final reply Telegram would not take is kept,
//! sent once when Telegram works again (or after a restart), before the chat's next reply.

use super::{Harness, bot_with_store, eventually, test_config, to_chat};
use parlor::engine::ScriptedEngine;
use parlor::telegram::TelegramConfig;
use parlor::telegram::config::Streaming;
use parlor::testkit::fake_telegram::{Call, Failure};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Three attempts per call, no streaming: every sendMessage to the chat is a final reply.
fn config() -> TelegramConfig {
    let mut cfg = test_config();
    cfg.pacing.max_attempts = 3;
    cfg.streaming = Streaming::Off;
    cfg
}

/// Texts of the messages Telegram took in `chat`, in order.
fn delivered(calls: &[Call], chat: i64) -> Vec<String> {
    to_chat(calls, "sendmessage", chat)
        .into_iter()
        .filter(|c| c.ok)
        .map(|c| c.text().to_string())
        .collect()
}

#[tokio::test]
async fn a_final_reply_lost_to_an_outage_is_sent_once_when_telegram_recovers() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, config()).await;
    h.fake.fail_all("sendMessage", Failure::Status(502));
    h.fake.push_text(210, "first");
    // More failures than attempts per call: the reply was given up and tried again later.
    h.until("the reply given up and tried again", |c| {
        to_chat(c, "sendmessage", 210)
            .iter()
            .filter(|c| !c.ok)
            .count()
            > 3
    })
    .await;
    let m = h.svc.metrics();
    assert_eq!(m.undelivered.load(Relaxed), 1);
    assert_eq!(
        store.kv_scan::<Value>("tg/undelivered/210/").unwrap().len(),
        1,
        "kept in the store"
    );
    assert!(delivered(&h.fake.calls(), 210).is_empty());

    h.fake.recover("sendMessage");
    h.until_final(210, "echo: first").await;
    // The next reply comes after it, and the kept one is not sent again.
    h.fake.push_text(210, "second");
    let calls = h.until_final(210, "echo: second").await;
    assert_eq!(delivered(&calls, 210), ["echo: first", "echo: second"]);
    assert!(
        store
            .kv_scan::<Value>("tg/undelivered/210/")
            .unwrap()
            .is_empty()
    );
    assert_eq!(m.redelivered.load(Relaxed), 1);
    assert!(m.render().contains("parlor_telegram_undelivered_total 1\n"));
    h.stop().await;
}

#[tokio::test]
async fn a_final_reply_kept_through_an_outage_is_sent_once_after_a_restart() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot.clone(), config()).await;
    h.fake.fail_all("sendMessage", Failure::Status(502));
    h.fake.push_text(211, "before the restart");
    let m = h.svc.metrics();
    eventually("the reply kept", || m.undelivered.load(Relaxed) == 1).await;
    let fake = h.fake.clone();
    h.stop().await;
    assert_eq!(
        store.kv_scan::<Value>("tg/undelivered/211/").unwrap().len(),
        1,
        "kept across the stop"
    );

    fake.recover("sendMessage");
    let h = Harness::start_on(fake, bot, config()).await;
    h.until_final(211, "echo: before the restart").await;
    h.fake.push_text(211, "after");
    let calls = h.until_final(211, "echo: after").await;
    assert_eq!(
        delivered(&calls, 211),
        ["echo: before the restart", "echo: after"]
    );
    // Answered once: the question was not answered again after the restart.
    let sid = store.find_session("tg-211").unwrap().unwrap().id;
    let texts: Vec<String> = store
        .messages(sid)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(
        texts,
        [
            "before the restart",
            "echo: before the restart",
            "after",
            "echo: after"
        ]
    );
    assert_eq!(h.svc.metrics().redelivered.load(Relaxed), 1);
    h.stop().await;
}
