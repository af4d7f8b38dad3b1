//! Operations: Prometheus metrics and health, webhook mode, and group addressing.

use super::{Harness, TOKEN, WAIT, bot, finals, test_config};
use parlor::engine::ScriptedEngine;
use parlor::telegram::config::WebhookConfig;
use parlor::telegram::fake::{BOT_USERNAME, FakeBotApi};
use parlor::telegram::{Service, Token};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A free local port (bound and released; the service binds it right after).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

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

#[tokio::test]
async fn webhook_mode_registers_the_url_and_answers_posted_updates() {
    let fake = FakeBotApi::start(TOKEN).await.unwrap();
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    let listen = free_addr();
    cfg.webhook = Some(WebhookConfig {
        listen: listen.clone(),
        url: "https://bot.example.test/tg/hook".into(),
        secret_env: None,
    });
    let svc = Service::new(bot, cfg, &fake.url(), Token::new(TOKEN));
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let (svc, stop) = (svc.clone(), stop.clone());
        async move { svc.run(stop).await }
    });
    let calls = fake
        .wait_for(WAIT, |c| c.iter().any(|c| c.method == "setwebhook"))
        .await
        .unwrap();
    let set = calls.iter().find(|c| c.method == "setwebhook").unwrap();
    assert_eq!(set.params["url"], "https://bot.example.test/tg/hook");
    assert!(
        !calls.iter().any(|c| c.method == "getupdates"),
        "no polling in webhook mode"
    );
    let update =
        serde_json::json!({"update_id": 77, "message": fake.message(302, 302, "via webhook")});
    let client = reqwest::Client::new();
    // The listener is bound before setWebhook is called, so it accepts now.
    let status = client
        .post(format!("http://{listen}/tg/hook"))
        .json(&update)
        .send()
        .await
        .expect("webhook reachable")
        .status();
    assert_eq!(status, 200);
    fake.wait_for(WAIT, |c| {
        finals(c, 302)
            .iter()
            .any(|c| c.text() == "echo: via webhook")
    })
    .await
    .unwrap();
    stop.cancel();
    run.await.unwrap().unwrap();
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
