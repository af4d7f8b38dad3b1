//! Erasure through the one door: [`Bot::forget_sessions`] erases conversations everywhere
//! parlor keeps them (store records and keys, the engine's slots, queued work and saved
//! states), and [`Bot::erase_idle`] does it for every conversation idle longer than a
//! retention period.

use super::{Bot, BotError};
use crate::chat::SessionId;
use crate::store::{Erased, SessionInfo};
use std::time::Duration;

impl Bot {
    /// Erase `sessions` everywhere, with the front-end records of `owners` (`tg:<chat>`: a
    /// Telegram chat's own state) in the same step: their keys and records in the store (every
    /// older copy in the database files becomes unreadable), then their cached tokens, queued
    /// work and saved states in the engine. Sessions already gone are skipped. Durable when
    /// this returns. Blocks on disk syncs and on the inference thread: call it from
    /// `spawn_blocking` in async code.
    pub fn forget_sessions(
        &self,
        sessions: &[SessionId],
        owners: &[String],
    ) -> Result<Erased, BotError> {
        // The store first: from here on a new turn of these sessions cannot store its message,
        // so nothing new reaches the engine for them.
        let mut erased = self.inner.store.erase(sessions, owners)?;
        let engine = self.engine();
        for &session in sessions {
            erased.saved_states += engine.forget(session);
            // Files an earlier engine (another model, a run without a model) left behind.
            erased.saved_states +=
                crate::engine::llama::erase_saved_states(self.inner.store.dir(), session);
        }
        tracing::info!(
            sessions = erased.sessions,
            messages = erased.messages,
            records = erased.records,
            saved_states = erased.saved_states,
            "erased conversations"
        );
        Ok(erased)
    }

    /// Retention: erase every conversation not updated for `keep` at `now_ms` (unix
    /// milliseconds) with [`Bot::forget_sessions`], logging one line; returns what went.
    /// Blocks like it.
    pub fn erase_idle(
        &self,
        keep: Duration,
        now_ms: i64,
    ) -> Result<Vec<(SessionInfo, Erased)>, BotError> {
        let cutoff_ms = now_ms.saturating_sub(keep.as_millis() as i64);
        let mut out = Vec::new();
        for info in self.inner.store.sessions()? {
            if info.updated >= cutoff_ms {
                continue;
            }
            let e = self.forget_sessions(&[info.id], &[])?;
            if e.sessions > 0 {
                out.push((info, e));
            }
        }
        let messages: u64 = out.iter().map(|(_, e)| e.messages).sum();
        tracing::info!(
            sessions = out.len(),
            messages,
            days = keep.as_secs() / 86_400,
            "retention: erased the conversations idle longer than the retention period"
        );
        Ok(out)
    }
}

/// How often a running bot applies its retention.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Apply retention `keep` to `bot` now and then every `every`, for as long as the task runs;
/// `erased` is told how many conversations each pass erased (a metric).
pub async fn retention_loop(bot: Bot, keep: Duration, every: Duration, erased: impl Fn(usize)) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let b = bot.clone();
        let now = chrono::Utc::now().timestamp_millis();
        match tokio::task::spawn_blocking(move || b.erase_idle(keep, now)).await {
            Ok(Ok(done)) => erased(done.len()),
            Ok(Err(e)) => tracing::error!(error = %e, "retention failed; trying again later"),
            Err(e) => tracing::error!(error = %e, "retention failed; trying again later"),
        }
    }
}
