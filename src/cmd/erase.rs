//! `history prune` from the command line, where no model is loaded: through the bot's
//! [`Archive`], which erases each idle session's key and records and its saved engine states.
//! The database lock keeps a running bot out meanwhile.

use crate::bot::{Archive, Erased};
use std::path::Path;

/// `history prune`: erase the sessions in `dir` idle for `older_than` at `now_ms`, printing
/// one line per session and a total.
pub fn prune(
    dir: &Path,
    older_than: std::time::Duration,
    now_ms: i64,
) -> anyhow::Result<super::ExitCode> {
    let Some(archive) = Archive::open(dir)? else {
        println!(
            "erased nothing: there is no history in \"{}\"",
            dir.display()
        );
        return Ok(0);
    };
    let cutoff = now_ms.saturating_sub(older_than.as_millis() as i64);
    let mut total = Erased::default();
    for (info, erased) in archive.erase_idle(cutoff)? {
        println!(
            "erased session \"{}\" ({} messages, {} saved engine states; last message {})",
            info.name,
            erased.messages,
            erased.saved_states,
            crate::bot::format_time(info.updated)
        );
        total.add(&erased);
    }
    println!(
        "erased {} session(s), {} message(s) idle for more than {} in \"{}\"",
        total.sessions,
        total.messages,
        humanize(older_than),
        dir.display()
    );
    Ok(0)
}

/// `30 days`, `12 hours`, `90 minutes`.
fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{} minutes", s / 60),
    }
}
