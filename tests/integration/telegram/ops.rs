//! Operations: Prometheus metrics and health, webhook mode, and group addressing.

use super::operator::{SECRET_HEADER, free_addr, registered_secret};
use super::{Harness, bot, bot_with_store, eventually, finals, test_config};
use parlor::engine::ScriptedEngine;
use parlor::telegram::TelegramConfig;
use parlor::telegram::config::WebhookConfig;
use parlor::testkit::fake_telegram::BOT_USERNAME;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn metrics_and_health_are_served() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    let addr = free_addr();
    cfg.metrics_addr = Some(addr.clone());
    let h = Harness::start(bot, cfg).await;
    h.fake.push_text(301, "hello");
    h.until("the reply", |c| !finals(c, 301).is_empty()).await;
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");
    // The reply counter is bumped before the final message is sent, so it is already there.
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("parlor_telegram_messages_in_total 1\n"),
        "{text}"
    );
    assert!(text.contains("parlor_telegram_replies_total 1\n"), "{text}");
    assert!(
        text.contains("# TYPE parlor_telegram_queue_depth gauge"),
        "{text}"
    );
    h.stop().await;
}

/// A config for webhook mode on a free local port; returns it and the webhook's local URL.
fn webhook_config() -> (TelegramConfig, String) {
    let mut cfg = test_config();
    let listen = free_addr();
    cfg.webhook = Some(WebhookConfig {
        listen: listen.clone(),
        url: "https://bot.example.test/tg/hook".into(),
        secret_env: None,
    });
    (cfg, format!("http://{listen}/tg/hook"))
}

#[tokio::test]
async fn webhook_mode_registers_the_url_and_answers_posted_updates() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let (cfg, hook) = webhook_config();
    let h = Harness::start(bot, cfg).await;
    let calls = h.fake.calls();
    let set = calls.iter().find(|c| c.method == "setwebhook").unwrap();
    assert_eq!(set.params["url"], "https://bot.example.test/tg/hook");
    assert!(
        !calls.iter().any(|c| c.method == "getupdates"),
        "no polling in webhook mode"
    );
    let update = json!({"update_id": 77, "message": h.fake.message(302, 302, "via webhook")});
    // The listener is bound before setWebhook is called, so it accepts now.
    let status = reqwest::Client::new()
        .post(&hook)
        .header(SECRET_HEADER, registered_secret(&h))
        .json(&update)
        .send()
        .await
        .expect("webhook reachable")
        .status();
    assert_eq!(status, 200);
    h.until_final(302, "echo: via webhook").await;
    h.stop().await;
}

/// Telegram delivers webhook updates over several connections at once, in any order, and may
/// deliver one again: each update must be handled once, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_webhook_deliveries_are_each_handled_exactly_once() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let (cfg, hook) = webhook_config();
    let h = Harness::start(bot, cfg).await;
    let chats: Vec<i64> = (401..=408).collect();
    let stopper = 409;
    let mut updates: Vec<Value> = chats
        .iter()
        .map(|&c| json!({"update_id": 900 + c, "message": h.fake.message(c, c, &format!("question {c}"))}))
        .collect();
    // Handled inline, not through the pending queue: a second handling would show at once.
    updates.push(
        json!({"update_id": 900 + stopper, "message": h.fake.message(stopper, stopper, "/stop")}),
    );
    let client = reqwest::Client::new();
    let secret = registered_secret(&h);
    // Every update eight times, newest first, all at once.
    let posts = (0..8).flat_map(|_| updates.iter().rev()).map(|u| {
        let req = client
            .post(&hook)
            .header(SECRET_HEADER, &secret)
            .json(u)
            .send();
        async move { req.await.expect("webhook reachable").status() }
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for &c in &chats {
        h.until_final(c, &format!("echo: question {c}")).await;
    }
    // One more message per chat: had a duplicate been queued, it would be answered first.
    let follow_ups = chats.iter().map(|&c| {
        let u = json!({"update_id": 1000 + c, "message": h.fake.message(c, c, "and then?")});
        let req = client
            .post(&hook)
            .header(SECRET_HEADER, &secret)
            .json(&u)
            .send();
        async move { req.await.expect("webhook reachable").status() }
    });
    futures::future::join_all(follow_ups).await;
    for &c in &chats {
        h.until_final(c, "echo: and then?").await;
        assert_eq!(
            h.fake.chat_texts(c),
            [format!("echo: question {c}"), "echo: and then?".to_string()]
        );
        let sid = store.find_session(&format!("tg-{c}")).unwrap().unwrap().id;
        assert_eq!(store.messages(sid).unwrap().len(), 4, "chat {c}");
    }
    assert_eq!(h.fake.chat_texts(stopper), ["Stopped."]);
    let m = h.svc.metrics();
    assert_eq!(m.messages_in.load(Ordering::Relaxed), 16);
    // Pending messages are cleared just after their answer is sent.
    eventually("an empty queue", || {
        m.queue_depth.load(Ordering::Relaxed) == 0
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn in_groups_the_bot_answers_mentions_and_replies_only() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    let group = -303;
    h.fake
        .push_message(h.fake.message(group, 1, "just chatting among ourselves"));
    h.fake.push_message(h.fake.message(
        group,
        1,
        &format!("@{BOT_USERNAME} what is the warranty?"),
    ));
    let calls = h
        .until("the group reply", |c| !finals(c, group).is_empty())
        .await;
    let f = finals(&calls, group);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].text(), "echo: what is the warranty?");
    // In groups the reply quotes the question.
    assert!(f[0].params["reply_parameters"]["message_id"].is_i64());
    h.stop().await;
}
