//! Operator safety: the webhook refuses updates without its secret, start-up waits for an
//! unreachable Bot API (and says so on `/healthz`) but stops at once on a refused token, and
//! the reply timings are Prometheus histograms.

use super::{Harness, TOKEN, WAIT, eventually, persona, test_config};
use parlor::bot::Bot;
use parlor::engine::ScriptedEngine;
use parlor::store::Store;
use parlor::telegram::config::WebhookConfig;
use parlor::telegram::{Service, TelegramError, Token};
use parlor::testkit::fake_telegram::FakeBotApi;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// The header Telegram sends with the secret given to `setWebhook`.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// A free local port (bound and released; the service binds it right after).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A bot over the echoing engine, and its store (kept to look at after the service ran).
fn bot_and_store() -> (tempfile::TempDir, Bot, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bot = Bot::new(persona(), Arc::new(ScriptedEngine::new([])), store.clone());
    (dir, bot, store)
}

/// The secret the service gave to `setWebhook`.
pub fn registered_secret(h: &Harness) -> String {
    let calls = h.fake.calls_to("setwebhook");
    let set = calls.last().expect("setWebhook was called");
    set.params["secret_token"]
        .as_str()
        .expect("setWebhook carries a secret_token")
        .to_string()
}

#[tokio::test]
async fn a_forged_webhook_update_is_refused_and_nothing_is_stored_or_sent() {
    let (_dir, bot, store) = bot_and_store();
    let mut cfg = test_config();
    let listen = free_addr();
    // No secret configured: the service must make one up.
    cfg.webhook = Some(WebhookConfig {
        listen: listen.clone(),
        url: "https://bot.example.test/tg/hook".into(),
        secret_env: None,
    });
    let hook = format!("http://{listen}/tg/hook");
    let h = Harness::start(bot, cfg).await;
    let client = reqwest::Client::new();
    let forged = json!({"update_id": 500, "message": h.fake.message(666, 666, "/start as admin")});
    let status = client
        .post(&hook)
        .json(&forged)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "an update without the secret header");
    let status = client
        .post(&hook)
        .header(SECRET_HEADER, "guessed")
        .json(&forged)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "an update with a wrong secret");

    let secret = registered_secret(&h);
    assert!(secret.len() >= 32, "a random secret: {secret:?}");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "Telegram allows A-Z a-z 0-9 _ - only: {secret:?}"
    );
    // The real one goes through; once it is answered, the forged one would have been too.
    let real = json!({"update_id": 501, "message": h.fake.message(667, 667, "real")});
    let status = client
        .post(&hook)
        .header(SECRET_HEADER, &secret)
        .json(&real)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    h.until_final(667, "echo: real").await;
    assert!(
        h.fake.chat_texts(666).is_empty(),
        "nothing sent to the forger"
    );
    assert!(
        store.find_session("tg-666").unwrap().is_none(),
        "nothing stored"
    );
    assert_eq!(h.svc.metrics().messages_in.load(Ordering::Relaxed), 1);
    h.stop().await;
}
/// GET `url`: status and body.
async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("metrics listener");
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn start_up_retries_an_unreachable_bot_api_until_it_answers() {
    let (_dir, bot, _store) = bot_and_store();
    let mut cfg = test_config();
    let metrics = free_addr();
    cfg.metrics_addr = Some(metrics.clone());
    // Nothing listens here yet: every connection is refused.
    let api = free_addr();
    let svc = Service::new(bot, cfg, &format!("http://{api}"), Token::new(TOKEN)).expect("a url");
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let (svc, stop) = (svc.clone(), stop.clone());
        async move { svc.run(stop).await }
    });
    let m = svc.metrics();
    eventually("a failed start-up attempt", || {
        m.startup_failures.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert!(
        !run.is_finished(),
        "the service gave up instead of retrying"
    );
    let (status, body) = get(&format!("http://{metrics}/healthz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: telegram not reachable"),
        "{body}"
    );

    // The Bot API comes up late, on the address the service keeps trying.
    let fake = FakeBotApi::start_at(&api, TOKEN)
        .await
        .expect("fake server");
    fake.wait_for(WAIT, |c| c.iter().any(|c| c.method == "getupdates"))
        .await
        .expect("the service connects and polls once the API answers");
    assert_eq!(
        get(&format!("http://{metrics}/healthz")).await,
        (200, "ok\n".into())
    );
    let text = get(&format!("http://{metrics}/metrics")).await.1;
    assert!(
        text.contains("parlor_telegram_startup_failures_total "),
        "{text}"
    );
    stop.cancel();
    run.await.unwrap().expect("a clean stop");
}

#[tokio::test]
async fn a_refused_token_stops_start_up_at_once() {
    let (_dir, bot, _store) = bot_and_store();
    let fake = FakeBotApi::start(TOKEN).await.unwrap();
    let svc =
        Service::new(bot, test_config(), &fake.url(), Token::new("999:wrong")).expect("a url");
    let err = tokio::time::timeout(WAIT, svc.run(CancellationToken::new()))
        .await
        .expect("start-up ends")
        .unwrap_err();
    assert!(matches!(err, TelegramError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("refused the bot token"), "{err}");
    assert_eq!(
        svc.metrics().startup_failures.load(Ordering::Relaxed),
        0,
        "a refused token is not retried"
    );
}

#[tokio::test]
async fn reply_timings_are_prometheus_histograms() {
    let (_dir, bot, _store) = bot_and_store();
    let mut cfg = test_config();
    let addr = free_addr();
    cfg.metrics_addr = Some(addr.clone());
    let h = Harness::start(bot, cfg).await;
    for (chat, text) in [(311, "one"), (312, "two")] {
        h.fake.push_text(chat, text);
        h.until_final(chat, &format!("echo: {text}")).await;
    }
    let text = get(&format!("http://{addr}/metrics")).await.1;
    for name in ["first_token_seconds", "reply_seconds"] {
        let full = format!("parlor_telegram_{name}");
        assert!(
            text.contains(&format!("# TYPE {full} histogram\n")),
            "{text}"
        );
        assert!(text.contains(&format!("{full}_count 2\n")), "{text}");
        assert!(
            text.contains(&format!("{full}_bucket{{le=\"+Inf\"}} 2\n")),
            "{text}"
        );
        // Buckets are cumulative: counts never fall as `le` grows.
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{full}_bucket{{")))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(counts.len() > 5, "{text}");
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{full}_sum ")))
            .expect("a _sum line")
            .parse()
            .unwrap();
        assert!(sum > 0.0, "{text}");
    }
    h.stop().await;
}
