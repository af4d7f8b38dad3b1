//! The slots of the inference thread: binding queued jobs to llama.cpp sequences (the one
//! already holding the conversation, else the least recently used), reusing the longest cached
//! token prefix, pre-filling the next turn while idle, and saving/restoring a slot's KV state
//! to disk for warm starts.

use super::{BATCH, Run};
use crate::chat::{ChatMessage, Role};
use crate::engine::EngineError;
use crate::engine::EngineEvent;
use crate::engine::llama::Job;
use crate::engine::llama::active::{Active, common_prefix, sampler_for};
use crate::engine::llama::prefix::{self, prefix_tokens};
use crate::engine::stop::StopFilter;
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// One llama.cpp sequence and the tokens its KV cache holds.
pub(super) struct Slot {
    pub(super) seq: i32,
    pub(super) key: Option<String>,
    pub(super) cached: Vec<LlamaToken>,
    pub(super) last_used: Instant,
    pub(super) dirty: bool,
    pub(super) active: Option<Active>,
    /// The conversation as the next turn's prompt will start (the last prompt plus the reply
    /// just given), until the next turn starts: see [`Run::prefill`] and [`super::head`].
    pub(super) follow_up: Option<FollowUp>,
}

/// A finished turn's conversation, for the next turn.
pub(super) struct FollowUp {
    /// The last prompt's messages and the reply.
    pub(super) messages: Vec<ChatMessage>,
    /// The turn boundary after them has been pre-filled (or found not worth it).
    pub(super) prefilled: bool,
}

/// Where [`Run::save_slot`] puts a slot's state.
pub(super) enum SaveTo<'a> {
    /// A file in the state directory (the engine is idle, or shutting down).
    Disk,
    /// Memory, written to disk once the engine is idle ([`super::park`]): the slot is being
    /// given to the conversation `next`, whose first token should not wait for a file.
    Memory { next: &'a str },
}

impl Slot {
    /// Whether the slot's next turn boundary is still to be pre-filled.
    pub(super) fn wants_prefill(&self) -> bool {
        self.follow_up.as_ref().is_some_and(|f| !f.prefilled)
    }
}

impl Run<'_> {
    /// Bind queued jobs to slots: the slot already holding the conversation, else the least
    /// recently used free slot.
    pub(super) fn assign(&mut self) {
        let mut i = 0;
        while i < self.queue.len() {
            let key = &self.queue[i].req.cache_key;
            let own = self.slots.iter().position(|s| s.key.as_ref() == Some(key));
            let pick = match own {
                Some(idx) if self.slots[idx].active.is_none() => Some(idx),
                Some(_) => None, // the same conversation is still being answered
                None => self.free_slot(),
            };
            match pick {
                Some(idx) => {
                    let job = self.queue.remove(i).expect("index in range");
                    self.start(idx, job);
                }
                None => i += 1,
            }
        }
    }

    /// The slot a new conversation takes: an empty one, else the least recently used idle one.
    pub(super) fn free_slot(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active.is_none())
            .min_by_key(|(_, s)| (s.key.is_some(), s.last_used))
            .map(|(idx, _)| idx)
    }

    /// Start answering `job` in slot `idx`.
    fn start(&mut self, idx: usize, job: Job) {
        let tokens = match self
            .prompts
            .tokenize(self.model, self.template, &job.req.messages)
        {
            Ok(t) => t.to_vec(),
            Err(e) => {
                self.drop_head_start();
                let _ = job.tx.try_send(EngineEvent::Failed(e));
                return;
            }
        };
        let claimed = self.claim_head_start(idx, &job.req.cache_key, &tokens);
        // A turn boundary not pre-filled yet is evaluated with the new message, in one batch.
        self.slots[idx].follow_up = None;
        if tokens.is_empty() || tokens.len() as u32 + 1 >= self.window {
            let _ = job
                .tx
                .try_send(EngineEvent::Failed(EngineError::PromptTooLong {
                    needed: tokens.len() as u32 + 1,
                    available: self.window,
                }));
            return;
        }
        let key = job.req.cache_key.clone();
        let prefix = prefix_tokens(
            &self.prompts,
            self.model,
            self.template,
            &job.req.messages,
            job.req.prefix_messages,
            &tokens,
        );
        if self.slots[idx].key.as_ref() != Some(&key) {
            self.save_slot(idx, SaveTo::Memory { next: &key });
            // Keep what the slot's last conversation shares with this prompt (the same persona
            // prefix, or any tokens both prompts begin with).
            let keep = common_prefix(&self.slots[idx].cached, &tokens);
            let seq = self.slots[idx].seq;
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None);
            self.slots[idx].cached.truncate(keep);
            self.slots[idx].key = Some(key.clone());
            self.slots[idx].dirty = false;
            if !self.restore(idx, &key) {
                self.share_prefix(idx, &tokens, prefix.as_deref());
            }
        }
        let slot = &mut self.slots[idx];
        // A prefix not in the cache is evaluated in batches of its own (see `prefix`), and
        // saved for other processes once evaluated.
        let (prefix_end, save_prefix) = match &prefix {
            Some(p) if !slot.cached.starts_with(p) => {
                let key = self
                    .states
                    .as_ref()
                    .map(|_| prefix::state_key(p, self.window))
                    .filter(|_| slot.cached.is_empty());
                (p.len(), key)
            }
            _ => (0, None),
        };
        let mut common = common_prefix(&slot.cached, &tokens);
        if common == tokens.len() && claimed.is_none() {
            common -= 1; // the last prompt token must be evaluated again to get its logits
        }
        if common < slot.cached.len() {
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), Some(common as u32), None);
            slot.cached.truncate(common);
        }
        let sampler = sampler_for(self.model, &job.req.sampling);
        let stop = StopFilter::new(&job.req.stop);
        slot.active = Some(Active {
            prompt: tokens,
            next_prompt: common,
            reused: claimed.as_ref().map_or(common, |c| c.base) as u32,
            sampler,
            decoder: encoding_rs::UTF_8.new_decoder(),
            stop,
            generated: 0,
            pending: None,
            logits_at: None,
            outbox: VecDeque::new(),
            prefix_end,
            save_prefix,
            sent_at: None,
            blocked: false,
            started: claimed.as_ref().map_or_else(Instant::now, |c| c.at),
            prompt_done: None,
            first_text: None,
            finish: None,
            text: String::new(),
            job,
        });
        if let Some(c) = claimed {
            // The prompt was evaluated ahead of the request: its first token is ready.
            let a = slot.active.as_mut().expect("just set");
            let tok = a.sampler.sample(&self.ctx, c.logits);
            self.accept_token(idx, tok);
        }
    }

    /// Load the saved state of `key` into slot `idx`, if a valid one exists (replacing what the
    /// slot's sequence held): the parked one, else its file. Returns whether it did.
    pub(super) fn restore(&mut self, idx: usize, key: &str) -> bool {
        if self.unpark(idx, key) {
            return true;
        }
        let Some(states) = &self.states else {
            return false;
        };
        // llama.cpp reads only a file that passed its checksum (not checked on another thread
        // while it loads): its state reader checks sizes, not values, and has assertions that
        // abort the process, and the next start would load the same file again.
        let at = Instant::now();
        let Some(path) = states.verified(key) else {
            return false;
        };
        let verified_ms = at.elapsed().as_secs_f64() * 1000.0;
        let slot = &mut self.slots[idx];
        match self
            .ctx
            .state_seq_load_file(&path, slot.seq, self.window as usize)
        {
            Ok((tokens, _))
                if !tokens.is_empty()
                    && self.ctx.kv_cache_seq_pos_max(slot.seq) == tokens.len() as i32 - 1 =>
            {
                tracing::debug!(
                    key,
                    tokens = tokens.len(),
                    verified_ms,
                    ms = at.elapsed().as_secs_f64() * 1000.0,
                    "restored saved session state"
                );
                slot.cached = tokens;
                slot.dirty = false;
                true
            }
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "its token count does not match the cache".to_string(),
                };
                tracing::warn!(file = %path.display(), "ignoring saved session state ({why}); evaluating the prompt again");
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                slot.cached.clear();
                states.remove(key);
                false
            }
        }
    }

    /// Save the state of an idle slot whose cache changed, as it is (a slot given to another
    /// conversation is saved without waiting for a pre-fill): to `to`.
    pub(super) fn save_slot(&mut self, idx: usize, to: SaveTo<'_>) {
        if self.states.is_none() {
            return;
        }
        if self.head_start_in(idx) {
            self.drop_head_start();
        }
        let slot = &self.slots[idx];
        if !slot.dirty || slot.active.is_some() || slot.cached.is_empty() {
            return;
        }
        let Some(key) = slot.key.clone() else { return };
        if self.is_forgotten(&key) {
            return;
        }
        let parked = match to {
            SaveTo::Memory { next } => self.park(idx, next),
            SaveTo::Disk => false,
        };
        if !parked {
            self.write_state(&key, self.slots[idx].seq, &self.slots[idx].cached);
        }
        self.slots[idx].dirty = false;
    }

    /// Write the state of sequence `seq`, which holds `cached`, as the saved state of `key`.
    pub(super) fn write_state(&self, key: &str, seq: i32, cached: &[LlamaToken]) {
        let Some(states) = &self.states else { return };
        match states.save(key, |p| {
            self.ctx
                .state_seq_save_file(p, seq, cached)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }) {
            Ok(bytes) => tracing::debug!(key, bytes, tokens = cached.len(), "saved session state"),
            Err(e) => tracing::warn!(key, "could not save session state: {e}"),
        }
    }

    /// Save every changed idle slot (idle for a while, or shutting down), each with its next
    /// turn boundary pre-filled, so a warm start evaluates only the new message.
    pub(super) fn save_all(&mut self) {
        self.drop_head_start();
        self.settle_parked();
        for idx in 0..self.slots.len() {
            if self.states.is_some() {
                self.prefill_slot(idx);
            }
            self.save_slot(idx, SaveTo::Disk);
        }
        self.write_parked();
    }

    /// Pre-fill one slot's next turn while the engine is idle. A reply's last token and the
    /// chat template's turn boundary (`<|im_end|>\n<|im_start|>user\n` in ChatML) are part of
    /// every next prompt of that conversation but are otherwise evaluated only when the user's
    /// next message arrives, inside its time to first token. The tokens the next prompt is
    /// sure to start with are those shared by the prompts for two different user messages;
    /// they are evaluated now, and the usual prefix match at the next turn keeps what still
    /// matches (a persona edit or trimmed history simply evaluates again, as before). The
    /// loop waits [`super::PREFILL_DELAY`] after a reply first: a message sent at once is
    /// evaluated together with the boundary, in one decode instead of two.
    pub(super) fn prefill(&mut self) {
        if let Some(idx) = self.slots.iter().position(Slot::wants_prefill) {
            self.prefill_slot(idx);
        }
    }

    /// Pre-fill slot `idx` if its boundary is still to be evaluated. Whether a boundary is
    /// evaluated on its own or in one batch with the next message depends on timing; this
    /// llama.cpp build computes a sequence's tokens bit-identically in any batch shape (the
    /// `golden_*` tests), so a greedy reply does not.
    pub(super) fn prefill_slot(&mut self, idx: usize) {
        let Some(follow_up) = self.slots[idx].follow_up.as_mut().filter(|f| !f.prefilled) else {
            return;
        };
        follow_up.prefilled = true;
        let messages = follow_up.messages.clone();
        if self.slots[idx].active.is_some() {
            return;
        }
        // Tokenized after the slot's last control token, as the head start's prompt: two whole
        // renders of a 2,000-token conversation took ~20 ms, and a grounded persona's hint
        // (no guess: pre-fill now) runs this while the bot builds the request.
        let at = Instant::now();
        let mut render = |user: &str| {
            let mut m = messages.clone();
            m.push(ChatMessage::new(Role::User, user));
            self.tokens_in_slot(idx, &m, false)
        };
        let (Some(a), Some(b)) = (render("A"), render("B")) else {
            return;
        };
        let tokenized_ms = at.elapsed().as_secs_f64() * 1000.0;
        let next = &a[..common_prefix(&a, &b)];
        let slot = &mut self.slots[idx];
        let keep = common_prefix(&slot.cached, next);
        let todo = next.len() - keep;
        if todo == 0 || todo > BATCH || next.len() + 2 >= self.window as usize {
            return;
        }
        if keep < slot.cached.len() {
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), Some(keep as u32), None);
            slot.cached.truncate(keep);
        }
        self.batch.clear();
        for (p, tok) in next.iter().enumerate().skip(keep) {
            let _ = self
                .batch
                .add(*tok, p as i32, &[slot.seq], p + 1 == next.len());
        }
        let seq = slot.seq;
        match self.decode_batch() {
            Ok(()) => {
                let slot = &mut self.slots[idx];
                slot.cached.extend_from_slice(&next[keep..]);
                slot.dirty = true;
                self.ahead
                    .prefilled
                    .fetch_add(todo as u64, Ordering::Relaxed);
                tracing::debug!(
                    seq = slot.seq,
                    tokens = todo,
                    tokenized_ms,
                    ms = at.elapsed().as_secs_f64() * 1000.0,
                    "pre-filled the next turn"
                );
            }
            Err(e) => {
                tracing::warn!("pre-filling the next turn failed: {e}");
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None);
            }
        }
    }
}
