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

/// Run `parlor chat`. The app opens before the model loads: a missing or broken model is shown
/// inside it, with `/retry` to load again.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let (launched, plan) = crate::launch::open_bot_unloaded(global, &args.bot)?;
    // Hot reload: an edited persona file applies to the next turns; an invalid edit keeps the
    // last good persona and shows in the status bar.
    let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let _watch = launched.persona_path().map(|path| {
        launched.bot.watch_persona(path, move |r| {
            let _ = reload_tx.send(r);
        })
    });
    let opts = ChatOptions {
        session: args.session,
        home: Some(launched.home.clone()),
        loader: Some(crate::launch::engine_loader(plan)),
        reloads: Some(reloads),
    };
    let ran = crate::tui::run(launched.bot.clone(), opts).await;
    launched.bot.close().await;
    ran?;
    Ok(0)
}
