//! Parking: when a slot is given to another conversation, the state of the one it held is
//! copied into memory (llama.cpp's per-sequence state) instead of into a new file, and written
//! to disk once the engine is idle. A new chat right after another chat's reply otherwise
//! waits for that file: 12-16 ms of llama.cpp writing a new 14.7 MB file for a 640-token
//! conversation on the AMD EPYC VM, plus 2-3 ms of checksum; the copy takes a few ms. A
//! conversation that comes back before then is loaded from memory.
//!
//! At most [`MAX_PARKED`] states wait, each at most [`MAX_COPY_BYTES`] (for a moment two, when
//! a parked conversation comes back and takes the slot of another); a slot evicted beyond that
//! is saved to disk at once, as before. A kill before the engine
//! was idle loses only the warm state of the parked conversation (its next turn evaluates its
//! prompt again); its messages are in the store.

use super::Run;
use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::token::LlamaToken;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Parked states at most.
const MAX_PARKED: usize = 1;

/// Largest state copied to memory, to park it or to put it back (bytes); a larger one is
/// saved to, or loaded back from, its file. A full 4,096-token window of the default model is
/// 94 MB; a 7B model's is about 2 GB, which a copy would double in memory.
const MAX_COPY_BYTES: usize = 256 << 20;

/// What a slot held before [`Run::write_parked`] borrowed it, to put back.
enum Held {
    /// Nothing (its cache was empty).
    Nothing,
    /// A copy of its cells.
    Copy(SeqState),
    /// Its file, just saved (a state larger than [`MAX_COPY_BYTES`]).
    File,
}

/// A conversation's state, out of its slot, not yet on disk.
pub(super) struct Parked {
    key: String,
    cached: Vec<LlamaToken>,
    state: SeqState,
}

impl Run<'_> {
    /// Copy slot `idx`'s state into memory for [`Self::write_parked`], as the slot is given to
    /// the conversation `next`; false when it cannot (already [`MAX_PARKED`] waiting besides
    /// `next`'s own, which is about to be loaded, or llama.cpp failed), and the caller saves it
    /// to disk. The caller has checked that the slot is idle and changed.
    pub(super) fn park(&mut self, idx: usize, next: &str) -> bool {
        let slot = &self.slots[idx];
        let Some(key) = slot.key.clone() else {
            return false;
        };
        // A stale copy of the same conversation (its slot was not given away after all).
        self.parked.retain(|p| p.key != key);
        if self.parked.iter().filter(|p| p.key != next).count() >= MAX_PARKED
            || self.state_size(slot.seq) > MAX_COPY_BYTES
        {
            return false;
        }
        let at = Instant::now();
        match self
            .ctx
            .state_seq_get(slot.seq, LlamaStateSeqFlags::empty())
        {
            Ok(state) => {
                tracing::debug!(
                    key,
                    bytes = state.byte_len(),
                    tokens = slot.cached.len(),
                    ms = at.elapsed().as_secs_f64() * 1000.0,
                    "parked session state in memory"
                );
                self.ahead.parked.fetch_add(1, Ordering::Relaxed);
                self.parked.push(Parked {
                    key,
                    cached: slot.cached.clone(),
                    state,
                });
                true
            }
            Err(e) => {
                tracing::warn!(key, "could not copy session state to memory: {e}");
                false
            }
        }
    }

    /// Load the parked state of `key` into slot `idx` (replacing what its sequence held), if
    /// there is one. Returns whether it did; the slot is then changed (not on disk yet).
    pub(super) fn unpark(&mut self, idx: usize, key: &str) -> bool {
        let Some(i) = self.parked.iter().position(|p| p.key == key) else {
            return false;
        };
        let p = self.parked.swap_remove(i);
        let seq = self.slots[idx].seq;
        let loaded = self.ctx.state_seq_set(&p.state, seq).is_ok()
            && self.ctx.kv_cache_seq_pos_max(seq) == p.cached.len() as i32 - 1;
        let slot = &mut self.slots[idx];
        if loaded {
            tracing::debug!(
                key,
                tokens = p.cached.len(),
                "restored parked session state"
            );
            self.ahead.unparked.fetch_add(1, Ordering::Relaxed);
            slot.cached = p.cached;
            slot.dirty = true;
        } else {
            tracing::warn!(
                key,
                "could not restore a parked session state; evaluating the prompt again"
            );
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            slot.cached.clear();
        }
        loaded
    }

    /// Hand each parked state whose conversation a slot holds again back to that slot (marked
    /// changed: its cache is the newer one), before the idle save.
    pub(super) fn settle_parked(&mut self) {
        let slots = &mut self.slots;
        self.parked.retain(|p| {
            let held = slots
                .iter_mut()
                .find(|s| s.key.as_deref() == Some(p.key.as_str()) && !s.cached.is_empty());
            match held {
                Some(s) => {
                    s.dirty = true;
                    false
                }
                None => true,
            }
        });
    }

    /// Write the parked states to disk (the engine is idle, its slots saved): each is loaded
    /// into an idle slot, saved from there, and the slot gets back what it held.
    pub(super) fn write_parked(&mut self) {
        for p in std::mem::take(&mut self.parked) {
            if self.is_forgotten(&p.key) {
                continue;
            }
            let Some(idx) = self.free_slot() else {
                tracing::warn!(
                    key = p.key,
                    "no idle slot to save a parked session state from"
                );
                continue;
            };
            let seq = self.slots[idx].seq;
            // What the slot holds, to put back: a copy of its cells, or (too large to copy) its
            // file, which the idle save has just written.
            let held = if self.slots[idx].cached.is_empty() {
                Held::Nothing
            } else if self.state_size(seq) > MAX_COPY_BYTES {
                Held::File
            } else {
                match self.ctx.state_seq_get(seq, LlamaStateSeqFlags::empty()) {
                    Ok(s) => Held::Copy(s),
                    Err(e) => {
                        tracing::warn!(key = p.key, "could not save a parked session state: {e}");
                        continue;
                    }
                }
            };
            let at = Instant::now();
            let loaded = self.ctx.state_seq_set(&p.state, seq).is_ok()
                && self.ctx.kv_cache_seq_pos_max(seq) == p.cached.len() as i32 - 1;
            if loaded {
                self.write_state(&p.key, seq, &p.cached);
                self.ahead.parked_written.fetch_add(1, Ordering::Relaxed);
            } else {
                tracing::warn!(
                    key = p.key,
                    "could not load a parked session state to save it"
                );
            }
            let back = match &held {
                Held::Copy(s) => {
                    self.ctx.state_seq_set(s, seq).is_ok()
                        && self.ctx.kv_cache_seq_pos_max(seq)
                            == self.slots[idx].cached.len() as i32 - 1
                }
                Held::File => {
                    let key = self.slots[idx].key.clone();
                    key.is_some_and(|k| self.restore(idx, &k))
                }
                // An empty slot keeps the parked conversation (now saved).
                Held::Nothing if loaded => {
                    let slot = &mut self.slots[idx];
                    slot.key = Some(p.key.clone());
                    slot.cached = p.cached;
                    slot.dirty = false;
                    slot.follow_up = None;
                    true
                }
                Held::Nothing => false,
            };
            let slot = &mut self.slots[idx];
            if !back {
                tracing::warn!(
                    seq,
                    "could not put a slot's state back; its next turn evaluates its prompt again"
                );
                let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                slot.key = None;
                slot.cached.clear();
                slot.dirty = false;
                slot.follow_up = None;
            }
            tracing::debug!(
                ms = at.elapsed().as_secs_f64() * 1000.0,
                "wrote a parked session state"
            );
        }
    }

    /// The size of sequence `seq`'s state, bytes (llama.cpp counts it without copying).
    fn state_size(&self, seq: i32) -> usize {
        self.ctx
            .state_seq_get_size_ext(seq, LlamaStateSeqFlags::empty())
    }

    /// Drop the parked states of the cache keys starting with `prefix` (an erased
    /// conversation's); returns their keys.
    pub(super) fn forget_parked(&mut self, prefix: &str) -> Vec<String> {
        let (gone, kept) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.key.starts_with(prefix));
        self.parked = kept;
        gone.into_iter().map(|p: Parked| p.key).collect()
    }
}
