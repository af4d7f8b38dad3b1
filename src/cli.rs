//! The command line: global options and one subcommand per module in [`crate::cmd`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Directory holding bots/, personas/ and storage/.
    #[arg(long, global = true, env = "PARLOR_HOME")]
    pub home: Option<PathBuf>,
    /// Log filter (tracing `RUST_LOG` syntax); logs go to storage/logs/, never the terminal.
    #[arg(long, global = true, env = "PARLOR_LOG")]
    pub log: Option<String>,
}

/// Which bot, persona and model to use (shared by chat, ask, telegram, test, bench).
#[derive(Debug, Clone, Default, Args)]
pub struct BotArgs {
    /// Bot name (bots/NAME.yaml) or path to a bot YAML file.
    #[arg(long, short = 'b')]
    pub bot: Option<String>,
    /// Persona name (personas/NAME.yaml) or path; overrides the bot's persona.
    #[arg(long, short = 'p')]
    pub persona: Option<String>,
    /// Model name from the registry, or a path to a .gguf file; overrides bot and persona.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
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
    Bench(crate::cmd::bench::Args),
    /// Internal helpers for tests (hidden).
    #[command(hide = true, subcommand)]
    Debug(crate::cmd::debug::Command),
}
