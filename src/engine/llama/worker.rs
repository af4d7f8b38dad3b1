//! The inference thread. It owns the llama context with one sequence slot per concurrent
//! conversation and runs a loop: take requests, bind them to slots (reusing the longest cached
//! token prefix of the same conversation, or its saved state), then decode ONE batch per step
//! holding the next token of every generating slot plus a chunk of pending prompt tokens, so no
//! chat waits for another to finish. Cancellation is noticed between steps (the requester
//! dropped its stream); a slow reader pauses only its own slot (its outbox is full).

mod shared;

use super::active::{Active, common_prefix, due, emit, finish, sampler_for};
use super::prefix::{self, prefix_tokens};
use super::state::StateDir;
use super::{Control, EngineSettings, Job, tokenize_prompt};
use crate::chat::{ChatMessage, FinishReason, Role};
use crate::engine::stop::{Filtered, StopFilter};
use crate::engine::{EngineError, EngineEvent};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// Tokens per decode call (llama.cpp's n_batch).
const BATCH: usize = 512;
/// Tokens per physical compute pass (llama.cpp's n_ubatch). Measured at n_ctx 4096: peak
/// memory is model (114 MB) + KV cache (94 MB) + store; the compute buffer llama.cpp reserves
/// for this many rows of logits is never touched (we request one output row per sequence).
pub(crate) const UBATCH: u32 = 512;
/// Prompt tokens per step while other chats are streaming: bounds how long one new prompt
/// stalls the others (about 0.1 s on 2 cores for this model size).
const SHARED_PROMPT_CHUNK: usize = 64;
/// Save changed session states after the engine has been idle this long (not right after a
/// turn: the next turn would wait for the write).
const IDLE_SAVE_DELAY: Duration = Duration::from_millis(400);
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
    prefilled: Arc<AtomicU64>,
}

/// One llama.cpp sequence and the tokens its KV cache holds.
struct Slot {
    seq: i32,
    key: Option<String>,
    cached: Vec<LlamaToken>,
    last_used: Instant,
    dirty: bool,
    active: Option<Active>,
    /// The conversation as the next turn's prompt will start (the last prompt plus the reply
    /// just given), until the idle engine has pre-filled it: see [`Run::prefill`].
    follow_up: Option<Vec<ChatMessage>>,
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
    prefilled: Arc<AtomicU64>,
}

impl Worker {
    /// Prepare a worker for `settings`.
    pub fn new(
        model: Arc<LlamaModel>,
        template: LlamaChatTemplate,
        settings: &EngineSettings,
        threads: u32,
        model_id: String,
        prefilled: Arc<AtomicU64>,
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
            prefilled,
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
            prefilled: self.prefilled.clone(),
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
            if !busy && self.slots.iter().any(|s| s.follow_up.is_some()) {
                // Idle with a conversation that will probably continue: evaluate what its next
                // prompt is sure to start with, unless a request is already waiting.
                match control.try_recv() {
                    Ok(c) => {
                        if !self.accept(c) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => self.prefill(),
                    Err(TryRecvError::Disconnected) => return,
                }
                continue;
            }
            if !busy {
                // Idle: wait for work; save changed states once idle for a moment.
                match control.recv_timeout(IDLE_SAVE_DELAY) {
                    Ok(c) => {
                        if !self.accept(c) {
                            return;
                        }
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
            Control::Generate(job) => {
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

    /// Bind queued jobs to slots: the slot already holding the conversation, else the least
    /// recently used free slot.
    fn assign(&mut self) {
        let mut i = 0;
        while i < self.queue.len() {
            let key = &self.queue[i].req.cache_key;
            let own = self.slots.iter().position(|s| s.key.as_ref() == Some(key));
            let pick = match own {
                Some(idx) if self.slots[idx].active.is_none() => Some(idx),
                Some(_) => None, // the same conversation is still being answered
                None => self
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.active.is_none())
                    .min_by_key(|(_, s)| (s.key.is_some(), s.last_used))
                    .map(|(idx, _)| idx),
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

    /// Start answering `job` in slot `idx`.
    fn start(&mut self, idx: usize, job: Job) {
        if self.slots[idx].key.as_ref() == Some(&job.req.cache_key) {
            self.prefill_slot(idx);
        } else {
            self.slots[idx].follow_up = None;
        }
        let tokens = match tokenize_prompt(self.model, self.template, &job.req.messages) {
            Ok(t) => t,
            Err(e) => {
                let _ = job.tx.try_send(EngineEvent::Failed(e));
                return;
            }
        };
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
            self.model,
            self.template,
            &job.req.messages,
            job.req.prefix_messages,
            &tokens,
        );
        if self.slots[idx].key.as_ref() != Some(&key) {
            self.save_slot(idx);
            // The slot's last conversation may have had the same persona prefix: keep it.
            let keep = prefix
                .as_ref()
                .filter(|p| self.slots[idx].cached.starts_with(p))
                .map_or(0, Vec::len);
            let seq = self.slots[idx].seq;
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None);
            self.slots[idx].cached.truncate(keep);
            self.slots[idx].key = Some(key.clone());
            self.slots[idx].dirty = false;
            if !self.restore(idx, &key)
                && let Some(p) = &prefix
                && !self.slots[idx].cached.starts_with(p)
            {
                self.share_prefix(idx, p);
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
        if common == tokens.len() {
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
            reused: common as u32,
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
            started: Instant::now(),
            prompt_done: None,
            first_text: None,
            finish: None,
            text: String::new(),
            job,
        });
    }

    /// Load the saved state of `key` into slot `idx`, if a valid one exists (replacing what the
    /// slot's sequence held). Returns whether it did.
    fn restore(&mut self, idx: usize, key: &str) -> bool {
        let Some(states) = &self.states else {
            return false;
        };
        let Some(path) = states.verified(key) else {
            return false;
        };
        let slot = &mut self.slots[idx];
        match self
            .ctx
            .state_seq_load_file(&path, slot.seq, self.window as usize)
        {
            Ok((tokens, _))
                if !tokens.is_empty()
                    && self.ctx.kv_cache_seq_pos_max(slot.seq) == tokens.len() as i32 - 1 =>
            {
                tracing::debug!(key, tokens = tokens.len(), "restored saved session state");
                slot.cached = tokens;
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

    /// Save the state of an idle slot whose cache changed.
    fn save_slot(&mut self, idx: usize) {
        if self.states.is_none() {
            return;
        }
        self.prefill_slot(idx);
        let Some(states) = &self.states else { return };
        let slot = &mut self.slots[idx];
        if !slot.dirty || slot.active.is_some() || slot.cached.is_empty() {
            return;
        }
        let Some(key) = slot.key.clone() else { return };
        let ctx = &self.ctx;
        let (seq, cached) = (slot.seq, &slot.cached);
        match states.save(&key, |p| {
            ctx.state_seq_save_file(p, seq, cached)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }) {
            Ok(bytes) => tracing::debug!(key, bytes, tokens = cached.len(), "saved session state"),
            Err(e) => tracing::warn!(key, "could not save session state: {e}"),
        }
        slot.dirty = false;
    }

    fn save_all(&mut self) {
        for idx in 0..self.slots.len() {
            self.save_slot(idx);
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
                    slot.follow_up = Some(messages);
                }
            }
        }
    }

    /// Pre-fill one slot's next turn while the engine is idle. A reply's last token and the
    /// chat template's turn boundary (`<|im_end|>\n<|im_start|>user\n` in ChatML) are part of
    /// every next prompt of that conversation but are otherwise evaluated only when the user's
    /// next message arrives, inside its time to first token. The tokens the next prompt is
    /// sure to start with are those shared by the prompts for two different user messages;
    /// they are evaluated now, and the usual prefix match at the next turn keeps what still
    /// matches (a persona edit or trimmed history simply evaluates again, as before).
    fn prefill(&mut self) {
        if let Some(idx) = self.slots.iter().position(|s| s.follow_up.is_some()) {
            self.prefill_slot(idx);
        }
    }

    /// Pre-fill slot `idx` if it has a follow-up pending. Also called before the
    /// conversation's next turn starts and before its state is saved, so the turn boundary is
    /// always evaluated on its own, in the same batch shape whether or not the engine was idle
    /// long enough: a greedy reply never depends on timing.
    fn prefill_slot(&mut self, idx: usize) {
        let Some(messages) = self.slots[idx].follow_up.take() else {
            return;
        };
        if self.slots[idx].active.is_some() {
            return;
        }
        let render = |user: &str| {
            let mut m = messages.clone();
            m.push(ChatMessage::new(Role::User, user));
            tokenize_prompt(self.model, self.template, &m)
        };
        let (Ok(a), Ok(b)) = (render("A"), render("B")) else {
            return;
        };
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
        match self.ctx.decode(&mut self.batch) {
            Ok(()) => {
                slot.cached.extend_from_slice(&next[keep..]);
                slot.dirty = true;
                self.prefilled.fetch_add(todo as u64, Ordering::Relaxed);
                tracing::debug!(seq = slot.seq, tokens = todo, "pre-filled the next turn");
            }
            Err(e) => {
                tracing::warn!("pre-filling the next turn failed: {e}");
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), Some(keep as u32), None);
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
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            self.fail_batch(&chunks, &e.to_string());
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
                    "llama.cpp could not evaluate the prompt: {reason}"
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
