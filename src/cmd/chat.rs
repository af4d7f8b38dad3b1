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
    // Hot reload: an edited persona file applies to the next turns (unless the user switched
    // to another persona meanwhile); an invalid edit keeps the last good persona and is logged.
    let _watch =
        launched.persona_path().map(|path| {
            let bot = launched.bot.clone();
            let shown = path.display().to_string();
            crate::persona::watch::watch(path, crate::persona::watch::POLL_INTERVAL, move |r| {
                match r {
                    Ok(p) if p.id() == bot.persona().id() => {
                        tracing::info!(persona = %shown, "persona reloaded");
                        bot.set_persona(p);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        persona = %shown,
                        "persona edit rejected, keeping the last good version: {e}"
                    ),
                }
            })
        });
    crate::tui::run(launched.bot.clone(), opts).await?;
    Ok(0)
}
