//! Webhook mode: register the public URL with `setWebhook`, then take updates as HTTP POSTs on
//! the listen address (behind a TLS-terminating proxy). Each update is stored and flushed before
//! the 200 reply, which is Telegram's acknowledgement. Every request must carry the webhook's
//! secret (configured, or random per start and given to `setWebhook`) in
//! `X-Telegram-Bot-Api-Secret-Token`; others get 401 and are never processed.

use super::config::WebhookConfig;
use super::error::TelegramError;
use super::incoming::ALLOWED_UPDATES;
use super::outbox::{Delivery, Outbox};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::future::BoxFuture;
use rand::Rng;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use teloxide::payloads::SetWebhookSetters;
use teloxide::requests::Requester;
use teloxide::types::Update;
use tokio_util::sync::CancellationToken;

/// The header in which Telegram echoes the secret given to `setWebhook`.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Length of a generated secret (Telegram allows 1 to 256 characters).
const GENERATED_LEN: usize = 48;

/// The secret the webhook requires: the one in the variable `webhook.secret_env` names, or a
/// random one made for this run. There is always one: without it anyone who can reach the port
/// could post updates as any user, an operator's included.
/// `env` reads an environment variable.
pub fn secret(
    w: &WebhookConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, TelegramError> {
    let Some(var) = &w.secret_env else {
        return Ok(generate_secret());
    };
    let value = env(var).unwrap_or_default();
    if value.is_empty() {
        return Err(TelegramError::Secret(format!(
            "webhook.secret_env names \"{var}\", which is not set; export it, or remove secret_env to use a random secret per start"
        )));
    }
    if value.len() > 256
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(TelegramError::Secret(format!(
            "the webhook secret in \"{var}\" must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
        )));
    }
    Ok(value)
}

/// A random secret of [`GENERATED_LEN`] characters Telegram accepts.
fn generate_secret() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(GENERATED_LEN)
        .map(char::from)
        .collect()
}

/// True when `given` is `secret`, compared in constant time (no timing hint about how much of
/// a guess was right).
fn secret_matches(given: Option<&[u8]>, secret: &[u8]) -> bool {
    given.is_some_and(|g| bool::from(g.ct_eq(secret)))
}

/// What takes one delivered update: stores it (flushed) before it returns, so the 200 that
/// follows acknowledges only what is kept (the service's `handle_batch`).
pub type Handler =
    Arc<dyn Fn(Update) -> BoxFuture<'static, Result<(), TelegramError>> + Send + Sync>;

/// Register the webhook (through `out`) and serve it until `stop`, each update to `handle`.
pub async fn serve(
    out: &Outbox,
    handle: Handler,
    w: &WebhookConfig,
    stop: CancellationToken,
) -> Result<(), TelegramError> {
    let secret = secret(w, |var| std::env::var(var).ok())?;
    let listener = tokio::net::TcpListener::bind(&w.listen)
        .await
        .map_err(|source| TelegramError::Listen {
            addr: w.listen.clone(),
            source,
        })?;
    let url = reqwest::Url::parse(&w.url).map_err(|_| TelegramError::WebhookUrl(w.url.clone()))?;
    let api = out.api();
    out.call(None, false, "setWebhook", Delivery::Must, || {
        let req = api
            .bot()
            .set_webhook(url.clone())
            .allowed_updates(ALLOWED_UPDATES)
            .secret_token(secret.clone());
        async move { req.await.map(|_| ()).map_err(|e| api.map_err(e)) }
    })
    .await?;
    let path = url_path(&w.url);
    tracing::info!(listen = %w.listen, path = %path, secret = if w.secret_env.is_some() { "configured" } else { "random" }, "webhook registered");
    let app = axum::Router::new()
        .route(&path, post(receive))
        .with_state((handle, Arc::<str>::from(secret)));
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .map_err(|source| TelegramError::Listen {
            addr: w.listen.clone(),
            source,
        })
}

/// One delivery: our own handler, not teloxide's webhook listener, which acknowledges an update
/// before its handler runs. Here the update is stored and flushed before the 200. The secret is
/// checked before the body is even parsed: a request without it gets 401 and is never
/// processed.
async fn receive(
    State((handle, secret)): State<(Handler, Arc<str>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes());
    if !secret_matches(given, secret.as_bytes()) {
        tracing::warn!("refused a webhook request without the right secret token");
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "a webhook update could not be read");
            return StatusCode::BAD_REQUEST;
        }
    };
    match handle(update).await {
        Ok(_) => StatusCode::OK,
        // Not acknowledged: Telegram delivers it again.
        Err(e) => {
            tracing::error!(error = %e, "could not store a webhook update");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The path part of the public URL (`https://host/a/b` -> `/a/b`).
pub fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..]
            .split(['?', '#'])
            .next()
            .unwrap_or("/")
            .to_string(),
        None => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_exactly() {
        assert!(secret_matches(Some(b"abc"), b"abc"));
        assert!(!secret_matches(Some(b"ab"), b"abc"));
        assert!(!secret_matches(Some(b"abd"), b"abc"));
        assert!(!secret_matches(None, b"abc"));
    }

    fn config(secret_env: Option<&str>) -> WebhookConfig {
        WebhookConfig {
            listen: "127.0.0.1:0".into(),
            url: "https://example.test/hook".into(),
            secret_env: secret_env.map(str::to_string),
        }
    }

    #[test]
    fn the_configured_secret_is_used_and_must_be_set_and_valid() {
        let env = |v: &'static str| move |_: &str| Some(v.to_string());
        let w = config(Some("HOOK_SECRET"));
        assert_eq!(secret(&w, env("s3cret_-X")).unwrap(), "s3cret_-X");
        let missing = secret(&w, |_| None).unwrap_err().to_string();
        assert!(
            missing.contains("\"HOOK_SECRET\", which is not set"),
            "{missing}"
        );
        let bad = secret(&w, env("has space")).unwrap_err().to_string();
        assert!(bad.contains("A-Z, a-z, 0-9, _ and -"), "{bad}");
        // Without one configured, every start makes its own.
        let made = secret(&config(None), |_| None).unwrap();
        assert_eq!(made.len(), GENERATED_LEN);
    }

    #[test]
    fn a_generated_secret_is_long_random_and_allowed() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), GENERATED_LEN);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn path_of_url() {
        assert_eq!(
            super::url_path("https://bot.example.com/tg/hook?x=1"),
            "/tg/hook"
        );
        assert_eq!(super::url_path("https://bot.example.com"), "/");
    }
}
