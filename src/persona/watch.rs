//! Hot reload: [`watch`] polls a persona file's modification time and size and reloads it when
//! they change. A valid edit is handed to `on_change` as `Ok(persona)` (front ends call
//! `bot.set_persona`); an invalid one as `Err(problems)` while the last good persona stays in
//! use (front ends show the error: TUI status line, Telegram log).

use super::{Persona, PersonaError};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often [`watch`] looks at the file by default.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

/// Watch `path` every `interval` until the returned handle is dropped (or aborted). Each
/// change calls `on_change` once with the reloaded persona or the problems of the edit (the
/// bot's hot reload is [`Bot::watch_persona`](crate::bot::Bot::watch_persona)). A file
/// that disappears is reported once and watched until it comes back.
pub fn watch<F>(path: impl Into<PathBuf>, interval: Duration, mut on_change: F) -> WatchHandle
where
    F: FnMut(Result<Persona, PersonaError>) + Send + 'static,
{
    let path = path.into();
    // Stamp now, not in the task: an edit made right after `watch` returns must count.
    let mut last = stamp(&path);
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = stamp(&path);
            if now == last {
                continue;
            }
            last = now;
            let result = Persona::load(&path);
            match &result {
                Ok(p) => {
                    tracing::info!(persona = p.id(), file = %path.display(), "persona reloaded");
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "persona edit rejected, keeping the last good version:\n{e}");
                }
            }
            on_change(result);
        }
    });
    WatchHandle { task }
}

/// Stops the watcher when dropped.
#[derive(Debug)]
pub struct WatchHandle {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
