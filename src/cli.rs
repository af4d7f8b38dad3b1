//! The command line: global options and one subcommand per module in [`crate::cmd`].

use clap::{Parser, Subcommand};

/// The options a launch is made from live with [`crate::launch`], which needs them without
/// knowing the command line.
pub use crate::launch::{BotArgs, GlobalArgs};

/// Colours allowed on terminals: `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn colour_allowed() -> bool {
    crate::sanitize::colour_allowed()
}

/// parlor: chat with a local language model in the terminal, or run it as a Telegram bot.
#[derive(Debug, Parser)]
#[command(name = "parlor", version, about)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do (default: `chat`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Full-screen terminal chat (the default).
    Chat(crate::cmd::chat::Args),
    /// Ask one question; the reply streams to stdout.
    Ask(crate::cmd::ask::Args),
    /// Validate persona and bot files.
    Check(crate::cmd::check::Args),
    /// Manage models: pull, list, path, verify.
    #[command(subcommand)]
    Model(crate::cmd::model::Command),
    /// List, show, export, import and delete conversations.
    #[command(subcommand)]
    History(crate::cmd::history::Command),
    /// Run a bot on Telegram.
    Telegram(crate::cmd::telegram::Args),
    /// Run conversation tests (*.test.yaml).
    Test(crate::cmd::test::Args),
    /// Score FAQ answers, handoffs and honesty on eval files (real engine, greedy).
    Eval(crate::cmd::eval::Args),
    /// What support customers asked that the FAQ did not answer, handoffs, FAQ hits.
    Report(crate::cmd::report::Args),
    /// Import and export personas (Character Card V2/V3, Ollama Modelfile).
    #[command(subcommand)]
    Persona(crate::cmd::persona::Command),
    /// Measure speed and memory; prints a Markdown table (or --json).
    #[cfg(feature = "bench")]
    Bench(crate::cmd::bench::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal helpers for tests (hidden).
    #[command(hide = true, subcommand)]
    #[cfg(feature = "testkit")]
    Debug(crate::cmd::debug::Command),
}
