//! Webhook mode: register the public URL with `setWebhook`, then take updates as HTTP POSTs on
//! the listen address (behind a TLS-terminating proxy). Each update is stored and flushed before
//! the 200 reply, which is Telegram's acknowledgement.

use super::api::Update;
use super::config::WebhookConfig;
use super::outbox::Delivery;
use super::service::{Service, TelegramError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Register the webhook and serve it until `stop`.
pub async fn serve(
    svc: Service,
    w: &WebhookConfig,
    stop: CancellationToken,
) -> Result<(), TelegramError> {
    let secret = w
        .secret_env
        .as_ref()
        .and_then(|name| std::env::var(name).ok())
        .filter(|s| !s.is_empty());
    let listener = tokio::net::TcpListener::bind(&w.listen)
        .await
        .map_err(|source| TelegramError::Listen {
            addr: w.listen.clone(),
            source,
        })?;
    let mut params = json!({"url": w.url, "allowed_updates": ["message"]});
    if let Some(sec) = &secret {
        params["secret_token"] = json!(sec);
    }
    svc.shared()
        .out
        .call(None, false, "setWebhook", &params, Delivery::Must)
        .await?;
    let path = url_path(&w.url);
    tracing::info!(listen = %w.listen, path = %path, "webhook registered");
    let app = axum::Router::new()
        .route(&path, post(receive))
        .with_state((svc.clone(), secret));
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .map_err(|source| TelegramError::Listen {
            addr: w.listen.clone(),
            source,
        })
}

async fn receive(
    State((svc, secret)): State<(Service, Option<String>)>,
    headers: HeaderMap,
    axum::Json(update): axum::Json<Update>,
) -> StatusCode {
    if let Some(sec) = &secret {
        let given = headers
            .get("x-telegram-bot-api-secret-token")
            .and_then(|v| v.to_str().ok());
        if given != Some(sec.as_str()) {
            return StatusCode::UNAUTHORIZED;
        }
    }
    match svc.handle_batch(vec![update]).await {
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
    #[test]
    fn path_of_url() {
        assert_eq!(
            super::url_path("https://bot.example.com/tg/hook?x=1"),
            "/tg/hook"
        );
        assert_eq!(super::url_path("https://bot.example.com"), "/");
    }
}
