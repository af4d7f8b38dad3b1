//! Telegram front end: dispatcher, streaming, splitting, limits, access, handoff.

pub mod config;

pub use config::TelegramConfig;
