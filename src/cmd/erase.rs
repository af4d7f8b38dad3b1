//! Erasing from the command line (`history delete`, `history prune`), where no model is
//! loaded: the store erases a session's key and records, and its saved engine states are
//! deleted from the storage directory. The database lock keeps a running bot out meanwhile.

use crate::chat::SessionId;
use crate::store::{Erased, Store};
use std::path::Path;

/// Erase one session of `store` and its saved engine states.
pub fn session(store: &Store, id: SessionId) -> anyhow::Result<Erased> {
    let mut erased = store.erase_session(id)?;
    erased.saved_states += crate::engine::llama::erase_saved_states(store.dir(), id);
    Ok(erased)
}

/// `history prune`: erase the sessions in `dir` idle for `older_than` at `now_ms`, printing
/// one line per session and a total.
pub fn prune(
    dir: &Path,
    older_than: std::time::Duration,
    now_ms: i64,
) -> anyhow::Result<super::ExitCode> {
    if !Store::exists(dir) {
        println!(
            "erased nothing: there is no history in \"{}\"",
            dir.display()
        );
        return Ok(0);
    }
    let store = Store::open(dir)?;
    let cutoff = now_ms.saturating_sub(older_than.as_millis() as i64);
    let mut total = Erased::default();
    for info in store.sessions()? {
        if info.updated >= cutoff {
            continue;
        }
        let erased = session(&store, info.id)?;
        println!(
            "erased session \"{}\" ({} messages, {} saved engine states; last message {})",
            info.name,
            erased.messages,
            erased.saved_states,
            crate::store::format_time(info.updated)
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
