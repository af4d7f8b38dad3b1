//! The errors that stop the Telegram front end (start-up, the store, listeners).

use super::api::{ApiError, BadUrl};
use crate::bot::BotError;

/// Errors that stop the Telegram front end.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// The token was refused.
    #[error(
        "telegram refused the bot token (check the environment variable named by `telegram.token_env`): {0}"
    )]
    Unauthorized(ApiError),
    /// A Bot API call failed at start-up.
    #[error("telegram start-up failed: {0}")]
    Api(#[from] ApiError),
    /// The bot's store failed.
    #[error(transparent)]
    Bot(#[from] BotError),
    /// The webhook secret is missing or not one Telegram accepts.
    #[error("{0}")]
    Secret(String),
    /// `webhook.url` is not a URL.
    #[error("webhook.url \"{0}\" is not a URL")]
    WebhookUrl(String),
    /// `telegram.api_url` (or `TELOXIDE_API_URL`) is not a URL.
    #[error(transparent)]
    Url(#[from] BadUrl),
    /// The metrics or webhook listener could not start.
    #[error("could not listen on \"{addr}\": {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The text of a caught panic.
pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
