//! The shared persona prefix inside the inference thread (see [`super::super::prefix`]): give a
//! new conversation's slot the prefix from another slot or a saved state, and save a prefix a
//! slot has just evaluated.

use super::Run;
use super::prefix;
use llama_cpp_2::token::LlamaToken;

impl Run<'_> {
    /// Give slot `idx` the persona prefix `p` without evaluating it: copied from another slot
    /// that holds it, else loaded from its saved state. Leaves the slot empty when neither has
    /// it (the prefix is then evaluated).
    pub(super) fn share_prefix(&mut self, idx: usize, p: &[LlamaToken]) {
        let dst = self.slots[idx].seq;
        let _ = self.ctx.clear_kv_cache_seq(Some(dst as u32), None, None);
        self.slots[idx].cached.clear();
        let donor = self
            .slots
            .iter()
            .find(|s| s.seq != dst && s.cached.starts_with(p))
            .map(|s| s.seq);
        if let Some(src) = donor {
            // Across KV streams llama.cpp copies the whole stream (at the next decode); the
            // donor's tokens after the prefix are then dropped from the copy.
            if self.ctx.copy_kv_cache_seq(src, dst, None, None).is_ok()
                && self
                    .ctx
                    .clear_kv_cache_seq(Some(dst as u32), Some(p.len() as u32), None)
                    .unwrap_or(false)
            {
                tracing::debug!(src, dst, tokens = p.len(), "shared the persona prefix");
                self.slots[idx].cached = p.to_vec();
                return;
            }
            let _ = self.ctx.clear_kv_cache_seq(Some(dst as u32), None, None);
        }
        let Some(states) = &self.states else { return };
        let key = prefix::state_key(p, self.window);
        let Some(path) = states.verified(&key) else {
            return;
        };
        match self.ctx.state_seq_load_file(&path, dst, p.len()) {
            Ok((tokens, _))
                if tokens == p && self.ctx.kv_cache_seq_pos_max(dst) == p.len() as i32 - 1 =>
            {
                tracing::debug!(
                    tokens = p.len(),
                    "loaded the persona prefix from its saved state"
                );
                self.slots[idx].cached = tokens;
            }
            _ => {
                tracing::warn!(file = %path.display(), "ignoring a saved persona prefix that does not match; evaluating it again");
                let _ = self.ctx.clear_kv_cache_seq(Some(dst as u32), None, None);
                states.remove(&key);
            }
        }
    }

    /// Save the persona prefix slot `idx` has just evaluated (its cache holds exactly it).
    pub(super) fn save_prefix(&self, idx: usize, key: &str) {
        let Some(states) = &self.states else { return };
        let slot = &self.slots[idx];
        if states.verified(key).is_some() {
            return;
        }
        let (ctx, seq, cached) = (&self.ctx, slot.seq, &slot.cached);
        match states.save(key, |p| {
            ctx.state_seq_save_file(p, seq, cached)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }) {
            Ok(bytes) => tracing::debug!(bytes, tokens = cached.len(), "saved the persona prefix"),
            Err(e) => tracing::warn!("could not save the persona prefix: {e}"),
        }
    }
}
