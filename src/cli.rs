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
    /// Log filter (tracing `RUST_LOG` syntax; `RUST_LOG` is read too); logs go to
    /// storage/logs/.
    #[arg(long, global = true, env = "PARLOR_LOG")]
    pub log: Option<String>,
    /// Also log to stderr (on by itself for `parlor telegram` when stderr is not a terminal,
    /// as under systemd; never for the full-screen chat).
    #[arg(long, global = true, env = "PARLOR_LOG_STDERR")]
    pub log_stderr: bool,
    /// When a new log file starts in storage/logs/.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "PARLOR_LOG_ROTATE"
    )]
    pub log_rotate: crate::logging::Rotate,
    /// Log files kept when rotating (the oldest are deleted).
    #[arg(
        long,
        global = true,
        default_value_t = 7,
        value_name = "N",
        env = "PARLOR_LOG_KEEP"
    )]
    pub log_keep: usize,
}

impl GlobalArgs {
    /// No home, no log options: what a test or an embedding program starts from.
    pub fn new(home: Option<PathBuf>) -> Self {
        Self {
            home,
            log: None,
            log_stderr: false,
            log_rotate: crate::logging::Rotate::default(),
            log_keep: 7,
        }
    }
}

/// Colours allowed on terminals: `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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
    /// Import and export personas (Character Card V2/V3, Ollama Modelfile).
    #[command(subcommand)]
    Persona(crate::cmd::persona::Command),
    /// Measure speed and memory; prints a Markdown table (or --json).
    Bench(crate::cmd::bench::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal helpers for tests (hidden).
    #[command(hide = true, subcommand)]
    Debug(crate::cmd::debug::Command),
}
