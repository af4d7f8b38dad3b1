//! Erasing a conversation from the inference thread: its slot's cached tokens (the KV cache
//! holds them), its queued and running requests, and its saved states. Its cache-key prefix is
//! remembered so a request already on its way is refused and nothing of it is saved again.

use super::Run;
use crate::engine::{EngineError, EngineEvent};

/// What a request of an erased conversation gets.
pub(super) fn erased() -> EngineEvent {
    EngineEvent::Failed(EngineError::Generation(
        "this conversation was erased".to_string(),
    ))
}

impl Run<'_> {
    /// Drop everything of the cache keys starting with `prefix`; returns the saved states
    /// deleted (files, and states parked in memory).
    pub(super) fn forget(&mut self, prefix: &str) -> usize {
        self.forgotten.insert(prefix.to_string());
        self.queue.retain(|job| {
            let doomed = job.req.cache_key.starts_with(prefix);
            if doomed {
                let _ = job.tx.try_send(erased());
            }
            !doomed
        });
        self.drop_head_start();
        // A parked state counts as a saved state, once: not when its key also has a file.
        let parked = self
            .forget_parked(prefix)
            .iter()
            .filter(|k| !self.states.as_ref().is_some_and(|s| s.path_for(k).exists()))
            .count();
        let mut dropped = 0;
        for slot in &mut self.slots {
            if !slot.key.as_deref().is_some_and(|k| k.starts_with(prefix)) {
                continue;
            }
            if let Some(active) = slot.active.take() {
                let _ = active.job.tx.try_send(erased());
            }
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
            slot.cached.clear();
            slot.key = None;
            slot.dirty = false;
            slot.follow_up = None;
            dropped += 1;
        }
        let files = self.states.as_ref().map_or(0, |s| s.remove_prefix(prefix));
        tracing::info!(
            slots = dropped,
            saved_states = files,
            parked,
            "erased a conversation from the engine"
        );
        files + parked
    }

    /// Whether `key` belongs to an erased conversation.
    pub(super) fn is_forgotten(&self, key: &str) -> bool {
        self.forgotten.iter().any(|p| key.starts_with(p.as_str()))
    }
}
