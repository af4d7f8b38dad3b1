//! Terminal front end in The Elm Architecture: [`App`] state, [`Msg`] in, [`Command`] out, a
//! pure [`update`], the view as `impl Widget for &App`, and a thin IO shell ([`run`]) with one
//! `tokio::select!` over terminal events, the reply stream and a frame timer.

pub mod app;
mod effects;
pub mod keys;
pub mod markdown;
mod overlay;
pub mod shell;
pub mod slash;
pub mod transcript;
pub mod update;
pub mod view;
pub mod wrap;

pub use app::{App, AppInit, Command, ModelInfo, ModelState, Msg, Status};
pub use shell::{ChatOptions, EngineLoader, run};
pub use update::update;

/// Errors that end the terminal UI (errors inside a chat are shown inline instead).
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The terminal could not be set up, drawn to or read.
    #[error("terminal error: {0}; is this an interactive terminal?")]
    Terminal(std::io::Error),
    /// The session to show does not exist (any more).
    #[error("no session {0}")]
    NoSession(String),
    /// The bot could not open or create the session.
    #[error(transparent)]
    Bot(#[from] crate::bot::BotError),
}
