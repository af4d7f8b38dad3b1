//! `parlor chat` (also what `parlor` with no arguments runs): the full-screen terminal chat.

use crate::cli::{BotArgs, GlobalArgs};
use crate::tui::ChatOptions;

/// Options of `parlor chat`.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Which bot, persona and model.
    #[command(flatten)]
    pub bot: BotArgs,
    /// Open (or create) the session with this name instead of resuming the last one.
    #[arg(long, short = 's')]
    pub session: Option<String>,
}

/// Run `parlor chat`.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let launched = crate::launch::open_bot(global, &args.bot).await?;
    let opts = ChatOptions {
        session: args.session,
        personas_dir: Some(launched.home.personas_dir()),
    };
    crate::tui::run(launched.bot, opts).await?;
    Ok(0)
}
