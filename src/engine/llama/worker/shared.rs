//! Shared prompt starts inside the inference thread (see [`super::super::prefix`]): give a new
//! conversation's slot the longest start of its prompt that another slot holds (a persona
//! prefix, or any tokens two prompts begin with, as llama-server's prompt cache does) or the
//! persona prefix from a saved state, and save a prefix a slot has just evaluated.

use super::Run;
use super::prefix;
use crate::engine::llama::active::common_prefix;
use llama_cpp_2::token::LlamaToken;

/// Fewest prompt tokens worth copying from another slot with a window of `window` tokens.
/// With one KV stream per slot llama.cpp copies the donor's whole stream (K and V of every
/// layer for `window` cells: ~23 MB per 1,024 cells for the default model). A copy of that
/// size took 2-4 ms on the AMD EPYC VM, 14-16 ms for 4,096 cells, about the time of
/// evaluating 1-2 and 6-8 prompt tokens there; the minimum, one token per 256 cells and at
/// least 8, is about twice that.
pub(super) fn min_copy(window: u32) -> usize {
    (window as usize / 256).max(8)
}

impl Run<'_> {
    /// Give slot `idx` more of `tokens` (a new conversation's prompt) without evaluating them:
    /// the longest start another slot holds, copied when it is [`min_copy`] tokens longer than
    /// what the slot kept of its own last conversation; else the persona prefix `p` from its
    /// saved state. Leaves the slot as it was when neither has more (the rest is evaluated).
    pub(super) fn share_prefix(
        &mut self,
        idx: usize,
        tokens: &[LlamaToken],
        p: Option<&[LlamaToken]>,
    ) {
        let dst = self.slots[idx].seq;
        let own = self.slots[idx].cached.len();
        let donor = self
            .slots
            .iter()
            .filter(|s| s.seq != dst)
            .map(|s| (s.seq, common_prefix(&s.cached, tokens)))
            .max_by_key(|&(_, n)| n)
            .filter(|&(_, n)| n >= own + min_copy(self.window));
        if let Some((src, n)) = donor {
            // Across KV streams llama.cpp copies the whole stream (at the next decode); the
            // donor's tokens after the shared start are then dropped from the copy.
            let _ = self.ctx.clear_kv_cache_seq(Some(dst as u32), None, None);
            if self.ctx.copy_kv_cache_seq(src, dst, None, None).is_ok()
                && self
                    .ctx
                    .clear_kv_cache_seq(Some(dst as u32), Some(n as u32), None)
                    .unwrap_or(false)
            {
                tracing::debug!(
                    src,
                    dst,
                    tokens = n,
                    "shared a prompt start from another slot"
                );
                self.slots[idx].cached = tokens[..n].to_vec();
                return;
            }
            let _ = self.ctx.clear_kv_cache_seq(Some(dst as u32), None, None);
            self.slots[idx].cached.clear();
        }
        let Some(p) = p.filter(|p| !self.slots[idx].cached.starts_with(p)) else {
            return;
        };
        let Some(states) = &self.states else { return };
        let key = prefix::state_key(p, self.window);
        let Some(path) = states.verified(&key) else {
            return;
        };
        let _ = self.ctx.clear_kv_cache_seq(Some(dst as u32), None, None);
        self.slots[idx].cached.clear();
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
        if states.verified(key).is_none() {
            let slot = &self.slots[idx];
            self.write_state(key, slot.seq, &slot.cached);
        }
    }
}
