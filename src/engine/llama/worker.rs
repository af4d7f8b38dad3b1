//! The inference thread. It owns the llama context with one sequence slot per concurrent
//! conversation and runs a loop: take requests, bind them to slots (reusing the longest cached
//! token prefix of the same conversation, or its saved state), then decode ONE batch per step
//! holding the next token of every generating slot plus a chunk of pending prompt tokens, so no
//! chat waits for another to finish. Cancellation is noticed between steps (the requester
//! dropped its stream); a slow reader pauses only its own slot (its outbox is full).

mod head;
mod park;
mod shared;
mod slots;

use super::active::{due, emit, finish};
use super::prefix;
use super::state::StateDir;
use super::{Control, EngineSettings, Job};
use crate::chat::{ChatMessage, FinishReason, Role};
use crate::engine::stop::Filtered;
use crate::engine::{EngineError, EngineEvent};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use slots::{FollowUp, Slot};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

mod forget;

/// Tokens per decode call (llama.cpp's n_batch).
const BATCH: usize = 512;
/// Tokens per physical compute pass (llama.cpp's n_ubatch). Measured at n_ctx 4096: peak
/// memory is model (114 MB) + KV cache (94 MB) + store; the compute buffer llama.cpp reserves
/// for this many rows of logits is never touched (we request one output row per sequence).
pub(crate) const UBATCH: u32 = 512;
/// Prompt tokens per step while other chats are streaming: bounds how long one new prompt
/// stalls the others (about 0.1 s on 2 cores for this model size).
const SHARED_PROMPT_CHUNK: usize = 64;
/// Pre-fill a conversation's next turn boundary once the engine has been idle this long after
/// its reply (see [`Run::prefill`]); a message sent within it brings its own head start.
const PREFILL_DELAY: Duration = Duration::from_millis(30);
/// Requests allowed to wait for a slot; more are refused at once with a clear message rather
/// than piling up without bound.
const MAX_QUEUE: usize = 256;
/// Wait for new requests this long when every slot is paused on a full outbox.
const BLOCKED_WAIT: Duration = Duration::from_millis(2);

/// Everything the thread needs, built on the caller's thread.
pub struct Worker {
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    window: u32,
    slots: u32,
    threads: u32,
    state_dir: Option<(std::path::PathBuf, u64)>,
    model_id: String,
    prefill: bool,
    idle_save: Duration,
    ahead: Arc<super::Ahead>,
    fail_decodes: Arc<AtomicU64>,
    prompts: Arc<super::prompts::PromptTokens>,
}

struct Run<'a> {
    model: &'a LlamaModel,
    template: &'a LlamaChatTemplate,
    ctx: LlamaContext<'a>,
    batch: LlamaBatch<'static>,
    window: u32,
    slots: Vec<Slot>,
    queue: VecDeque<Job>,
    states: Option<StateDir>,
    round_robin: usize,
    prefill: bool,
    /// Save changed states after the engine has been idle this long
    /// ([`crate::engine::EngineSettings::idle_save`]).
    idle_save: Duration,
    ahead: Arc<super::Ahead>,
    fail_decodes: Arc<AtomicU64>,
    /// Cache-key prefixes of erased conversations: never cached or saved again.
    forgotten: std::collections::HashSet<String>,
    /// Prompts tokenized by the engine's handle (counted while fitting) or an earlier turn.
    prompts: Arc<super::prompts::PromptTokens>,
    /// A prompt evaluated ahead of its request (see [`head`]).
    head_start: Option<head::HeadStart>,
    /// Decodes so far (each overwrites the logits of the one before).
    decodes: u64,
    /// States of conversations whose slots were given to others, not on disk yet ([`park`]).
    parked: Vec<park::Parked>,
    /// Whether tokenizing a prompt's tail alone gives this model's tokens (see [`head`]);
    /// `None` until checked.
    tail_tokenizing: Option<bool>,
}

impl Worker {
    /// Prepare a worker for `settings`.
    pub fn new(
        model: Arc<LlamaModel>,
        template: LlamaChatTemplate,
        settings: &EngineSettings,
        threads: u32,
        model_id: String,
        ahead: Arc<super::Ahead>,
        prompts: Arc<super::prompts::PromptTokens>,
    ) -> Self {
        Self {
            model,
            template,
            window: settings.context.max(64),
            slots: settings.slots.max(1),
            threads,
            state_dir: settings
                .state_dir
                .clone()
                .map(|d| (d, settings.state_cap_bytes)),
            model_id,
            prefill: settings.prefill,
            idle_save: settings.idle_save,
            ahead,
            fail_decodes: settings.fail_decodes.clone(),
            prompts,
        }
    }

    /// The thread body: create the context, report readiness, serve until shutdown.
    pub fn run(
        self,
        backend: &'static LlamaBackend,
        control: Receiver<Control>,
        ready: Sender<Result<(), String>>,
    ) {
        let n_ctx = self.window * self.slots;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(BATCH as u32)
            .with_n_ubatch(UBATCH)
            .with_n_seq_max(self.slots)
            .with_n_threads(self.threads as i32)
            .with_n_threads_batch(self.threads as i32)
            // One KV stream per slot (not a unified pool): each conversation gets exactly its
            // window, and its attention is computed exactly as if it ran alone, so a chat's
            // greedy reply is bit-identical with or without other chats in the batch (a unified
            // pool changed near-tie tokens: measured by the `slots` integration tests).
            .with_kv_unified(false)
            // llama.cpp's CPU flash-attention kernel makes each evaluated token cost grow with
            // the context: off, turn 30 of a session reaches its first token in about half the
            // time, generation is ~12% faster, at the same peak memory (`parlor bench`).
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
        let model = self.model.clone();
        let ctx = match model.new_context(backend, params) {
            Ok(c) => c,
            Err(e) => {
                let _ = ready.send(Err(format!(
                    "could not create a context of {n_ctx} tokens: {e}"
                )));
                return;
            }
        };
        let states = self.state_dir.and_then(|(dir, cap)| {
            StateDir::new(dir.clone(), cap, self.model_id.clone())
                .map_err(|e| tracing::warn!(dir = %dir.display(), "warm resume disabled: {e}"))
                .ok()
        });
        let now = Instant::now();
        let mut run = Run {
            model: &model,
            template: &self.template,
            ctx,
            batch: LlamaBatch::new(BATCH, self.slots as i32),
            window: self.window,
            slots: (0..self.slots)
                .map(|seq| Slot {
                    seq: seq as i32,
                    key: None,
                    cached: Vec::new(),
                    last_used: now,
                    dirty: false,
                    active: None,
                    follow_up: None,
                })
                .collect(),
            queue: VecDeque::new(),
            states,
            round_robin: 0,
            prefill: self.prefill,
            idle_save: self.idle_save,
            ahead: self.ahead.clone(),
            fail_decodes: self.fail_decodes.clone(),
            forgotten: std::collections::HashSet::default(),
            prompts: self.prompts.clone(),
            head_start: None,
            decodes: 0,
            parked: Vec::new(),
            tail_tokenizing: None,
        };
        let _ = ready.send(Ok(()));
        run.serve(&control);
        run.save_all();
    }
}

impl Run<'_> {
    /// The main loop; returns on shutdown.
    fn serve(&mut self, control: &Receiver<Control>) {
        loop {
            let busy = self.slots.iter().any(|s| s.active.is_some()) || !self.queue.is_empty();
            // Not while a head start waits for its request: a decode would overwrite its logits.
            let waiting = self.head_start.is_some();
            let prefill_at = self
                .slots
                .iter()
                .filter(|s| s.wants_prefill())
                .map(|s| s.last_used + PREFILL_DELAY)
                .min();
            if !busy
                && !waiting
                && let Some(at) = prefill_at
            {
                // Idle with a conversation that will probably continue: evaluate what its next
                // prompt is sure to start with, unless a request comes first.
                let wait = at.saturating_duration_since(Instant::now());
                match control.recv_timeout(wait) {
                    Ok(c) => {
                        if !self.accept(c) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => self.prefill(),
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                continue;
            }
            if !busy {
                // Idle: wait for work; save changed states once idle for a moment. Saving only
                // when idle keeps disk writes out of every chat's time to first token; the
                // short delay lets a conversation's next message arrive first.
                match control.recv_timeout(self.idle_save) {
                    Ok(c) => {
                        if !self.accept(c) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) if waiting => {
                        // The expected request did not come (the bot answered without the
                        // model): undo the head start, pre-fill and save as usual.
                        self.drop_head_start();
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        self.save_all();
                        match control.recv() {
                            Ok(c) => {
                                if !self.accept(c) {
                                    return;
                                }
                            }
                            Err(_) => return,
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            loop {
                match control.try_recv() {
                    Ok(c) => {
                        if !self.accept(c) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            // Order matters: free the slots of dropped requests before assigning new jobs (so a
            // cancelled chat never holds a slot a queued one could use), and send what is
            // already produced before decoding more (a slot whose outbox is full is skipped by
            // `step`, which is how a slow reader pauses only its own chat).
            self.reap_cancelled();
            self.assign();
            self.announce_queue();
            self.flush_outboxes();
            if !self.step() {
                self.flush_outboxes();
                let waiting = self
                    .slots
                    .iter()
                    .any(|s| s.active.as_ref().is_some_and(|a| a.blocked));
                if waiting {
                    match control.recv_timeout(BLOCKED_WAIT) {
                        Ok(c) => {
                            if !self.accept(c) {
                                return;
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        }
    }

    /// Take one control message; false on shutdown.
    fn accept(&mut self, c: Control) -> bool {
        match c {
            Control::Generate(job) if self.is_forgotten(&job.req.cache_key) => {
                let _ = job.tx.try_send(forget::erased());
                true
            }
            Control::HeadStart { key, text } => {
                self.head_start(&key, text.as_deref());
                true
            }
            Control::Forget { prefix, done } => {
                let _ = done.send(self.forget(&prefix));
                true
            }
            Control::SaveNow { done } => {
                self.save_all();
                let _ = done.send(());
                true
            }
            Control::Generate(job) => {
                if self.queue.len() >= MAX_QUEUE {
                    // Requesters that gave up still count until reaped: not against this one.
                    self.queue.retain(|j| !j.tx.is_closed());
                }
                if self.queue.len() >= MAX_QUEUE {
                    let _ = job.tx.try_send(EngineEvent::Failed(EngineError::Busy {
                        waiting: self.queue.len(),
                    }));
                } else {
                    self.queue.push_back(job);
                }
                true
            }
            Control::Shutdown => false,
        }
    }

    /// Requesters that dropped their stream: free their slots (the evaluated tokens stay
    /// cached) and drop their queued jobs.
    fn reap_cancelled(&mut self) {
        self.queue.retain(|j| !j.tx.is_closed());
        for slot in &mut self.slots {
            if slot.active.as_ref().is_some_and(|a| a.job.tx.is_closed()) {
                slot.active = None;
                slot.last_used = Instant::now();
            }
        }
    }

    /// Tell queued requesters their place in line when it changes.
    fn announce_queue(&mut self) {
        for (pos, job) in self.queue.iter_mut().enumerate() {
            if job.announced != pos + 1
                && job
                    .tx
                    .try_send(EngineEvent::Queued { position: pos + 1 })
                    .is_ok()
            {
                job.announced = pos + 1;
            }
        }
    }

    /// Send what slots have produced; free slots whose reply is complete and delivered.
    fn flush_outboxes(&mut self) {
        let now = Instant::now();
        for slot in &mut self.slots {
            let Some(a) = &mut slot.active else { continue };
            // Hand over streamed text at most every STREAM_INTERVAL (see `due`); a slot whose
            // requester's channel was full retries at every turn of the loop.
            let send = !a.outbox.is_empty() && (a.blocked || due(a, now));
            if send {
                a.sent_at = Some(now);
            } else {
                a.blocked = false;
            }
            while send && !a.outbox.is_empty() {
                match a.job.tx.try_reserve() {
                    Ok(permit) => {
                        permit.send(a.outbox.pop_front().expect("not empty"));
                        a.blocked = false;
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Full(())) => {
                        a.blocked = true;
                        break;
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => {
                        a.outbox.clear();
                        a.finish.get_or_insert(FinishReason::Cancelled);
                    }
                }
            }
            if a.finish.is_some() && a.outbox.is_empty() {
                let finished = slot.active.take().expect("active");
                slot.last_used = Instant::now();
                if self.prefill
                    && matches!(
                        finished.finish,
                        Some(
                            FinishReason::EndOfText
                                | FinishReason::StopString
                                | FinishReason::MaxTokens
                        )
                    )
                {
                    let mut messages = finished.job.req.messages;
                    messages.push(ChatMessage::new(Role::Assistant, finished.text));
                    slot.follow_up = Some(FollowUp {
                        messages,
                        prefilled: false,
                    });
                }
            }
        }
    }

    /// Decode one batch: the next token of every generating slot plus prompt chunks. Returns
    /// false when there was nothing to decode.
    fn step(&mut self) -> bool {
        self.batch.clear();
        let mut generating = 0;
        for slot in &mut self.slots {
            let Some(a) = &mut slot.active else { continue };
            if a.finish.is_some() || a.blocked {
                continue;
            }
            if let Some(tok) = a.pending {
                a.logits_at = Some(self.batch.n_tokens());
                if self
                    .batch
                    .add(tok, slot.cached.len() as i32, &[slot.seq], true)
                    .is_err()
                {
                    a.logits_at = None;
                    continue;
                }
                generating += 1;
            }
        }
        let mut budget = if generating == 0 {
            BATCH
        } else {
            SHARED_PROMPT_CHUNK.min(BATCH - generating)
        };
        let n = self.slots.len();
        let mut chunks = vec![0usize; n];
        for k in 0..n {
            let i = (self.round_robin + k) % n;
            let slot = &mut self.slots[i];
            let Some(a) = &mut slot.active else { continue };
            if a.finish.is_some() || a.next_prompt >= a.prompt.len() || budget == 0 {
                continue;
            }
            let mut end = a.prompt.len().min(a.next_prompt + budget);
            if a.next_prompt < a.prefix_end {
                end = end.min(a.prefix_end);
            }
            for p in a.next_prompt..end {
                let last = p + 1 == a.prompt.len();
                if last {
                    a.logits_at = Some(self.batch.n_tokens());
                }
                let _ = self.batch.add(a.prompt[p], p as i32, &[slot.seq], last);
            }
            chunks[i] = end - a.next_prompt;
            budget -= chunks[i];
        }
        self.round_robin = self.round_robin.wrapping_add(1);
        if self.batch.n_tokens() == 0 {
            return false;
        }
        let injected = self
            .fail_decodes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        let decoded = if injected {
            Err("injected failure".to_string())
        } else {
            self.decode_batch()
        };
        if let Err(e) = decoded {
            self.fail_batch(&chunks, &e);
            return true;
        }
        let mut prefixes_done = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(a) = &mut slot.active else { continue };
            if chunks[i] > 0 {
                slot.cached
                    .extend_from_slice(&a.prompt[a.next_prompt..a.next_prompt + chunks[i]]);
                a.next_prompt += chunks[i];
                slot.dirty = true;
                if a.next_prompt == a.prefix_end
                    && let Some(key) = a.save_prefix.take()
                {
                    prefixes_done.push((i, key));
                }
            } else if a.logits_at.is_some()
                && let Some(tok) = a.pending.take()
            {
                slot.cached.push(tok);
                slot.dirty = true;
            }
        }
        for (i, key) in prefixes_done {
            self.save_prefix(i, &key);
        }
        for i in 0..n {
            let Some(idx) = self.slots[i]
                .active
                .as_mut()
                .and_then(|a| a.logits_at.take())
            else {
                continue;
            };
            let a = self.slots[i].active.as_mut().expect("active");
            let tok = a.sampler.sample(&self.ctx, idx);
            self.accept_token(i, tok);
        }
        true
    }

    /// A decode failed: fail every reply that had tokens in the batch and forget their cache.
    fn fail_batch(&mut self, chunks: &[usize], reason: &str) {
        tracing::error!("llama.cpp decode failed: {reason}");
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(a) = &mut slot.active else { continue };
            if chunks[i] == 0 && a.logits_at.is_none() {
                continue;
            }
            a.outbox
                .push_back(EngineEvent::Failed(EngineError::Generation(format!(
                    "llama.cpp failed to evaluate the conversation: {reason}"
                ))));
            a.finish = Some(FinishReason::Cancelled);
            a.logits_at = None;
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
            slot.cached.clear();
        }
    }

    /// Handle a sampled token of slot `i`: end of text, stop strings, limits, streaming.
    fn accept_token(&mut self, i: usize, tok: LlamaToken) {
        let vocab = self.model.vocab();
        let window = self.window as usize;
        let slot = &mut self.slots[i];
        let a = slot.active.as_mut().expect("active");
        let now = Instant::now();
        a.prompt_done.get_or_insert(now);
        if vocab.is_eog(tok) {
            finish(a, FinishReason::EndOfText);
            return;
        }
        a.generated += 1;
        let bytes = vocab.token_to_piece(tok, false, None);
        let mut text = String::with_capacity(
            a.decoder
                .max_utf8_buffer_length(bytes.len())
                .unwrap_or(bytes.len() * 3 + 4),
        );
        let _ = a.decoder.decode_to_string(&bytes, &mut text, false);
        match a.stop.push(&text) {
            Filtered::Continue(t) => emit(a, t),
            Filtered::Stop(t) => {
                emit(a, t);
                finish(a, FinishReason::StopString);
                return;
            }
        }
        a.pending = Some(tok);
        if a.generated >= a.job.req.max_tokens {
            finish(a, FinishReason::MaxTokens);
        } else if slot.cached.len() + 2 >= window {
            finish(a, FinishReason::ContextFull);
        }
    }
}
