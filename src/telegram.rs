//! Telegram front end on teloxide: its types for updates and messages and its `Bot` under a
//! redacting wrapper ([`api`]), with parlor's own delivery policies around it: paced and
//! retrying sends ([`outbox`], [`limits`]), long polling or a webhook that store every update
//! before acknowledging it ([`service`], [`webhook`]), each update by kind ([`dispatch`],
//! [`incoming`], [`presses`] of [`buttons`]), one worker per chat ([`worker`]) streaming
//! replies ([`stream`]) rendered to HTML ([`render`]) and split under the length limit
//! ([`split`]), final replies kept through an outage and sent later ([`undelivered`]),
//! commands, access rules, human handoff and metrics. The fake Bot API server the tests and
//! `parlor bench` run it against is in `testkit`.
//!
//! Each task gets only what it uses ([`context`]): a [`context::Sender`] to stream, deliver and
//! redeliver, a [`context::Context`] for the chat workers, commands, presses and dispatch. The
//! files import each other without a circle (`service` at the top, the saved records in
//! [`state`] at the bottom); the architecture test checks it.

pub mod access;
pub mod api;
pub mod buttons;
pub mod chats;
pub mod commands;
pub mod context;
pub mod dispatch;
pub mod error;
/// The `telegram:` section of a bot file (parsed with the rest of the bot file in `config`).
pub use crate::config::telegram as config;
pub mod handoff;
pub mod incoming;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod presses;
pub mod render;
pub mod service;
pub mod split;
pub mod startup;
pub mod state;
pub mod stream;
pub mod undelivered;
pub mod webhook;
pub mod worker;

pub use api::Token;
pub use config::TelegramConfig;
pub use error::TelegramError;
pub use service::Service;

/// Default Bot API server.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// The API base URL: `TELOXIDE_API_URL`, else `telegram.api_url`, else Telegram's.
pub fn api_url(cfg: &TelegramConfig) -> String {
    std::env::var("TELOXIDE_API_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| cfg.api_url.clone())
        .unwrap_or_else(|| DEFAULT_API_URL.to_string())
}
