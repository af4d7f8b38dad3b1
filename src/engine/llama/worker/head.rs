//! The head start: a front end hands a message to the bot, which reads the conversation,
//! stores the message (flushed to disk) and builds the request; only then does the request
//! reach this thread. The bot tells the engine first ([`Engine::expect_turn`]), and an idle
//! engine gets ready meanwhile. When a slot holds the conversation and the bot says its prompt
//! is the conversation so far plus the message, the engine evaluates that prompt: the slot's
//! last prompt and reply (see [`Run::prefill`]), the turn boundary unless it was pre-filled,
//! and the new message, in one batch. When the request comes and its prompt is exactly those
//! tokens, the logits of the last one are still in the context (no other decode ran since):
//! the first token is sampled at once, and the time to first token no longer includes the
//! bot's own work before the request.
//!
//! A request that differs (a persona edit, a trimmed history, a rule that answered without the
//! model) takes the slot back to the tokens the head start kept, and is evaluated as if no
//! hint had come; so does a head start whose logits another decode has overwritten, and one
//! still unclaimed when its slot is saved (a message never stored is never saved with a
//! conversation). Without a guess the boundary is pre-filled at once; for a conversation no
//! slot holds, the slot it will take saves its state now instead of in the request's time.
//!
//! [`Engine::expect_turn`]: crate::engine::Engine::expect_turn

use super::slots::SaveTo;
use super::{BATCH, Run};
use crate::chat::{ChatMessage, Role};
use crate::engine::llama::active::common_prefix;
use crate::engine::llama::{render_prompt, tokenize_prompt};
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use std::time::Instant;

/// A prompt evaluated ahead of its request.
pub(super) struct HeadStart {
    /// The slot.
    slot: usize,
    /// The slot's cached tokens before it.
    base: usize,
    /// Batch index of the last prompt token's logits.
    logits: i32,
    /// [`Run::decodes`] right after it: the logits are valid while no other decode ran.
    decodes: u64,
    /// When it started.
    at: Instant,
}

/// A head start a request has claimed: sample its first token from `logits`.
pub(super) struct Claimed {
    /// Prompt tokens the slot held before the head start (reused, not evaluated for the turn).
    pub(super) base: usize,
    /// Batch index of the last prompt token's logits.
    pub(super) logits: i32,
    /// When the prompt's evaluation started.
    pub(super) at: Instant,
}

impl Run<'_> {
    /// Get ready for a request with cache key `key`, if the engine is idle. A slot holds the
    /// conversation: with `text`, evaluate the prompt it expects (the turn boundary and the
    /// message in one batch, or the message alone after a pre-fill); without, pre-fill the
    /// boundary now. No slot holds it: save the state of the conversation the request will
    /// take a slot from, and load the conversation's own saved state, so the request waits
    /// for neither.
    pub(super) fn head_start(&mut self, key: &str, text: Option<&str>) {
        self.drop_head_start();
        let busy = !self.queue.is_empty() || self.slots.iter().any(|s| s.active.is_some());
        if busy || self.is_forgotten(key) {
            return;
        }
        let held = self
            .slots
            .iter()
            .position(|s| s.key.as_deref() == Some(key));
        let Some(idx) = held else {
            if let Some(idx) = self.free_slot() {
                self.save_slot(idx, SaveTo::Memory { next: key });
                if self.restore(idx, key) {
                    self.ahead
                        .restored_early
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let slot = &mut self.slots[idx];
                    slot.key = Some(key.to_string());
                    slot.follow_up = None;
                    slot.last_used = Instant::now();
                }
            }
            return;
        };
        let Some(text) = text else {
            self.prefill_slot(idx);
            return;
        };
        let at = Instant::now();
        let Some(follow_up) = &self.slots[idx].follow_up else {
            return;
        };
        let mut messages = follow_up.messages.clone();
        messages.push(ChatMessage::new(Role::User, text));
        let Some(tokens) = self.tokens_in_slot(idx, &messages, true) else {
            return;
        };
        let slot = &mut self.slots[idx];
        let keep = common_prefix(&slot.cached, &tokens);
        if keep == 0
            || tokens.len() <= keep
            || tokens.len() - keep > BATCH
            || tokens.len() + 2 >= self.window as usize
        {
            return;
        }
        let seq = slot.seq;
        if keep < slot.cached.len() {
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None);
            slot.cached.truncate(keep);
        }
        if let Some(f) = &mut slot.follow_up {
            f.prefilled = true; // the boundary is part of this batch
        }
        self.batch.clear();
        for (p, tok) in tokens.iter().enumerate().skip(keep) {
            let _ = self
                .batch
                .add(*tok, p as i32, &[seq], p + 1 == tokens.len());
        }
        let logits = self.batch.n_tokens() - 1;
        let decoding = Instant::now();
        match self.decode_batch() {
            Ok(()) => {
                let slot = &mut self.slots[idx];
                slot.cached.extend_from_slice(&tokens[keep..]);
                slot.dirty = true;
                self.head_start = Some(HeadStart {
                    slot: idx,
                    base: keep,
                    logits,
                    decodes: self.decodes,
                    at,
                });
                tracing::debug!(
                    seq,
                    tokens = tokens.len() - keep,
                    before_ms = (decoding - at).as_secs_f64() * 1000.0,
                    decode_ms = decoding.elapsed().as_secs_f64() * 1000.0,
                    "head start"
                );
            }
            Err(e) => {
                tracing::warn!("evaluating an expected prompt failed: {e}");
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None);
            }
        }
    }

    /// The prompt tokens of `messages`, expected in slot `idx`: tokenizing a 2,000-token
    /// prompt takes llama.cpp ~10 ms (on the bot's thread too, while fitting the prompt, which
    /// slows the decode beside it), so only the text after the slot's last control token is
    /// tokenized (see [`tokens_after`]), once checked against the whole with this model; with
    /// `remember`, the result is kept for the bot and the request.
    pub(super) fn tokens_in_slot(
        &mut self,
        idx: usize,
        messages: &[ChatMessage],
        remember: bool,
    ) -> Option<Vec<LlamaToken>> {
        let whole = |run: &Self| {
            if remember {
                let t = run.prompts.tokenize(run.model, run.template, messages);
                t.ok().map(|t| t.to_vec())
            } else {
                tokenize_prompt(run.model, run.template, messages).ok()
            }
        };
        if self.tail_tokenizing == Some(false) {
            return whole(self);
        }
        let after = tokens_after(self.model, self.template, &self.slots[idx].cached, messages);
        match (self.tail_tokenizing, after) {
            (Some(true), Some(t)) => {
                if remember {
                    self.prompts.insert(messages, t.clone());
                }
                Some(t)
            }
            (None, Some(t)) => {
                let all = whole(self)?;
                self.tail_tokenizing = Some(all == t);
                if all != t {
                    tracing::debug!("this model's prompt tails tokenize differently alone");
                }
                Some(all)
            }
            _ => whole(self),
        }
    }

    /// The head start of slot `idx`, if the request with `key` and prompt `tokens` is the one
    /// it expected and its logits are still there; any other head start is undone.
    pub(super) fn claim_head_start(
        &mut self,
        idx: usize,
        key: &str,
        tokens: &[LlamaToken],
    ) -> Option<Claimed> {
        let h = self.head_start.take()?;
        let slot = &self.slots[h.slot];
        if h.slot == idx
            && h.decodes == self.decodes
            && slot.key.as_deref() == Some(key)
            && slot.cached == tokens
        {
            self.ahead
                .head_starts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Some(Claimed {
                base: h.base,
                logits: h.logits,
                at: h.at,
            });
        }
        self.head_start = Some(h);
        self.drop_head_start();
        None
    }

    /// Whether slot `idx` holds an unclaimed head start.
    pub(super) fn head_start_in(&self, idx: usize) -> bool {
        self.head_start.as_ref().is_some_and(|h| h.slot == idx)
    }

    /// Undo an unclaimed head start: its slot goes back to the tokens it held before.
    pub(super) fn drop_head_start(&mut self) {
        let Some(h) = self.head_start.take() else {
            return;
        };
        let slot = &mut self.slots[h.slot];
        if slot.cached.len() > h.base {
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), Some(h.base as u32), None);
            slot.cached.truncate(h.base);
        }
    }

    /// Decode `self.batch`, counting decodes (each overwrites the logits of the last).
    pub(super) fn decode_batch(&mut self) -> Result<(), String> {
        self.decodes += 1;
        self.ctx.decode(&mut self.batch).map_err(|e| e.to_string())
    }
}

/// The tokens of `messages`' prompt when its text begins with the text of `known` up to
/// `known`'s last control token (`<|im_start|>` in ChatML): those tokens, then the rest of the
/// text tokenized alone. llama.cpp splits a text at special tokens and tokenizes the pieces
/// between them one by one, so this is the whole prompt's tokenization (unless that token
/// strips the whitespace after it: then `None`, as for a prompt that does not begin so).
fn tokens_after(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    known: &[LlamaToken],
    messages: &[ChatMessage],
) -> Option<Vec<LlamaToken>> {
    let vocab = model.vocab();
    let cut = known.iter().rposition(|t| vocab.is_control(*t))? + 1;
    let text = render_prompt(model, template, messages).ok()?;
    let head = vocab.detokenize(&known[..cut], true, true);
    let tail = text.as_bytes().strip_prefix(head.as_slice())?;
    // A special token that strips the whitespace after it would take it from the tail.
    let strips = vocab
        .attr(known[cut - 1])
        .contains(llama_cpp_2::token_type::LlamaTokenAttr::RStrip);
    if strips || tail.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let mut tokens = known[..cut].to_vec();
    vocab.tokenize_into(tail, &mut tokens, false, true);
    Some(tokens)
}
