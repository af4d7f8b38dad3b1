//! From command-line choices to a ready [`Bot`]: resolve the home, load the bot spec (default
//! `bots/terminal.yaml`), the persona, the model path, open the store and load the engine.

use crate::bot::Bot;
use crate::cli::{BotArgs, GlobalArgs};

/// A bot ready to serve, with what it was built from.
pub struct Launched {
    /// The bot.
    pub bot: Bot,
    /// The bot's name (file stem of its YAML, or `terminal`).
    pub bot_name: String,
}

/// Build the bot the user asked for. Errors say which file and what to do.
pub async fn open_bot(global: &GlobalArgs, args: &BotArgs) -> anyhow::Result<Launched> {
    let _ = (global, args);
    anyhow::bail!("launch::open_bot is not built yet")
}
