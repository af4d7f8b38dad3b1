//! The library's own limit, for `parlor bench`: a plain llama-cpp-2 decode loop (one prompt
//! batch, then one token per decode, the same sampler chain) on the same model and settings as
//! the engine, in the same process. Whatever the whole `Bot::turn` path loses against this is
//! our overhead.

use crate::engine::llama::{UBATCH, backend, sampler_for};
use crate::engine::{EngineError, LlamaEngine, Sampling};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Speeds of the raw loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawSpeed {
    /// Prompt tokens evaluated.
    pub prompt_tokens: usize,
    /// Prompt evaluation, tokens per second.
    pub prompt_tps: f64,
    /// Tokens generated.
    pub generated: usize,
    /// Generation, tokens per second.
    pub generation_tps: f64,
}

/// Evaluate `prompt` and generate `n_gen` tokens with the sampler chain of `sampling`
/// (end-of-generation ignored) in a fresh context with the engine's window and thread count.
pub fn raw_decode_loop(
    engine: &LlamaEngine,
    prompt: &[LlamaToken],
    n_gen: usize,
    sampling: &Sampling,
) -> Result<RawSpeed, EngineError> {
    let failed = |e: String| EngineError::Generation(format!("raw decode loop: {e}"));
    let model = engine.model();
    let (mut ctx, _) =
        raw_context(engine, engine.settings().context as usize, 512, 1).map_err(failed)?;
    let mut batch = LlamaBatch::new(512, 1);
    let started = Instant::now();
    for chunk_start in (0..prompt.len()).step_by(512) {
        batch.clear();
        let end = prompt.len().min(chunk_start + 512);
        for (i, tok) in prompt.iter().enumerate().take(end).skip(chunk_start) {
            batch
                .add(*tok, i as i32, &[0], i + 1 == prompt.len())
                .map_err(|e| failed(e.to_string()))?;
        }
        ctx.decode(&mut batch).map_err(|e| failed(e.to_string()))?;
    }
    let prompt_secs = started.elapsed().as_secs_f64();
    let mut sampler = sampler_for(model, sampling);
    let mut last = batch.n_tokens() - 1;
    let gen_start = Instant::now();
    for pos in (prompt.len() as i32..).take(n_gen) {
        let tok = sampler.sample(&ctx, last);
        batch.clear();
        batch
            .add(tok, pos, &[0], true)
            .map_err(|e| failed(e.to_string()))?;
        ctx.decode(&mut batch).map_err(|e| failed(e.to_string()))?;
        last = 0;
    }
    let gen_secs = gen_start.elapsed().as_secs_f64();
    Ok(RawSpeed {
        prompt_tokens: prompt.len(),
        prompt_tps: prompt.len() as f64 / prompt_secs,
        generated: n_gen,
        generation_tps: n_gen as f64 / gen_secs,
    })
}

/// A fresh context like the engine's (threads, micro-batch, flash attention off) of `n_ctx`
/// tokens with `seqs` KV streams, and filler tokens for loops whose cost does not depend on
/// the text.
fn raw_context(
    engine: &LlamaEngine,
    n_ctx: usize,
    n_batch: usize,
    seqs: usize,
) -> Result<(llama_cpp_2::context::LlamaContext<'_>, Vec<LlamaToken>), String> {
    let model = engine.model();
    let params = raw_params(engine.threads(), n_ctx, n_batch, seqs);
    let ctx = model
        .new_context(backend().map_err(|e| e.to_string())?, params)
        .map_err(|e| e.to_string())?;
    Ok((ctx, filler(model)))
}

/// The engine's context settings (one KV stream per sequence, flash attention off) for the
/// raw loops.
fn raw_params(threads: u32, n_ctx: usize, n_batch: usize, seqs: usize) -> LlamaContextParams {
    let threads = threads as i32;
    LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx as u32))
        .with_n_batch(n_batch as u32)
        .with_n_ubatch(UBATCH)
        .with_n_seq_max(seqs as u32)
        .with_kv_unified(false)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED)
}

/// Filler tokens standing in for a conversation (a decode's cost depends on how many tokens
/// and where, not which).
fn filler(model: &LlamaModel) -> Vec<LlamaToken> {
    model.vocab().tokenize(
        b"The keeper of the lighthouse wrote down the weather every morning. ",
        false,
        false,
    )
}

/// The fastest a turn can reach its first token when everything before its new tokens is
/// already cached: in a fresh context (the engine's window, threads and settings) evaluate
/// `cached` tokens, then time evaluating `new` more tokens and sampling one, `reps` times
/// (dropping the new tokens from the cache in between). Returns the median in milliseconds.
///
/// The cost of a decode does not depend on which tokens are evaluated, only on how many and at
/// which positions, so filler tokens stand in for a real conversation of that length.
pub fn raw_cached_turn_ms(
    engine: &LlamaEngine,
    cached: usize,
    new: usize,
    reps: usize,
) -> Result<f64, EngineError> {
    let mut turn = CachedTurn::new(engine, cached, new)?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        times.push(turn.time_ms(Duration::ZERO)?);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// A fresh context like the engine's holding `cached` filler tokens, ready to time evaluating
/// `new` more and sampling one (see [`raw_cached_turn_ms`]), as often as asked.
pub struct CachedTurn<'a> {
    ctx: llama_cpp_2::context::LlamaContext<'a>,
    batch: LlamaBatch<'a>,
    filler: Vec<LlamaToken>,
    sampler: llama_cpp_2::sampling::LlamaSampler,
    cached: usize,
    new: usize,
}

impl<'a> CachedTurn<'a> {
    /// Evaluate the `cached` tokens in a fresh context with the engine's window.
    pub fn new(engine: &'a LlamaEngine, cached: usize, new: usize) -> Result<Self, EngineError> {
        let window = engine.settings().context as usize;
        if cached + new >= window || new == 0 {
            return Err(cached_turn_failed(format!(
                "{cached} cached + {new} new tokens do not fit the {window}-token window"
            )));
        }
        let (ctx, filler) = raw_context(engine, window, 512, 1).map_err(cached_turn_failed)?;
        let mut turn = CachedTurn {
            ctx,
            batch: LlamaBatch::new(512, 1),
            filler,
            sampler: llama_cpp_2::sampling::LlamaSampler::greedy(),
            cached,
            new,
        };
        for chunk_start in (0..cached).step_by(512) {
            turn.fill(chunk_start..cached.min(chunk_start + 512), false)?;
            turn.decode()?;
        }
        Ok(turn)
    }

    /// Idle for `pause`, then time evaluating the new tokens and sampling one; the new tokens
    /// are dropped from the cache first, so every call measures the same evaluation.
    pub fn time_ms(&mut self, pause: Duration) -> Result<f64, EngineError> {
        let (cached, end) = (self.cached, self.cached + self.new);
        let _ = self
            .ctx
            .clear_kv_cache_seq(Some(0), Some(cached as u32), None);
        self.fill(cached..end, true)?;
        std::thread::sleep(pause);
        let started = Instant::now();
        self.decode()?;
        let _ = self.sampler.sample(&self.ctx, self.batch.n_tokens() - 1);
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    }

    /// Put filler tokens at `positions` into the batch, logits for the last one if `last`.
    fn fill(&mut self, positions: std::ops::Range<usize>, last: bool) -> Result<(), EngineError> {
        self.batch.clear();
        let end = positions.end;
        for i in positions {
            let token = self.filler[i % self.filler.len()];
            self.batch
                .add(token, i as i32, &[0], last && i + 1 == end)
                .map_err(|e| cached_turn_failed(e.to_string()))?;
        }
        Ok(())
    }

    fn decode(&mut self) -> Result<(), EngineError> {
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| cached_turn_failed(e.to_string()))
    }
}

fn cached_turn_failed(e: String) -> EngineError {
    EngineError::Generation(format!("raw cached turn: {e}"))
}

/// Idle time after which the engine has pre-filled and saved the last reply's conversation
/// (its idle save comes 0.4 s after a reply): a [`PairedFloor`] sample taken earlier would
/// share the CPU with that work.
pub const QUIET: Duration = Duration::from_millis(700);

/// A [`CachedTurn`] on a thread of its own, timed one evaluation at a time between a
/// section's own samples, alternating which goes first: both sides of a ratio then sample the
/// same moments of a shared VM, whose speed drifts 20-50% within minutes (a floor taken in a
/// block of its own, before or after, measured the same build's new-chat ratio at 0.67x and
/// 1.65x in two runs of one hour).
pub struct PairedFloor {
    requests: Option<std::sync::mpsc::Sender<FloorRequest>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type FloorRequest = (
    Duration,
    tokio::sync::oneshot::Sender<Result<f64, EngineError>>,
);

impl PairedFloor {
    /// Start the thread and evaluate the `cached` tokens there.
    pub async fn start(
        engine: std::sync::Arc<LlamaEngine>,
        cached: usize,
        new: usize,
    ) -> Result<Self, EngineError> {
        let (requests, rx) = std::sync::mpsc::channel::<FloorRequest>();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let mut turn = match CachedTurn::new(&engine, cached, new) {
                Ok(t) => {
                    let _ = ready_tx.send(Ok(()));
                    t
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            while let Ok((pause, reply)) = rx.recv() {
                // As a turn comes after the reply before it, not after an idle thread (the
                // first decode after an idle while is 10-20% slower, in llama.cpp alone too).
                let timed = turn
                    .time_ms(Duration::ZERO)
                    .and_then(|_| turn.time_ms(pause));
                let _ = reply.send(timed);
            }
        });
        let floor = PairedFloor {
            requests: Some(requests),
            thread: Some(thread),
        };
        ready
            .await
            .map_err(|_| cached_turn_failed("the floor's thread ended".into()))??;
        Ok(floor)
    }

    /// One evaluation right after an untimed one and `pause`, in milliseconds.
    pub async fn sample(&self, pause: Duration) -> Result<f64, EngineError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || cached_turn_failed("the floor's thread ended".into());
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send((pause, tx))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

impl Drop for PairedFloor {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Time llama.cpp reading the saved state at `path` into the empty sequence of a fresh context
/// with the engine's window and settings, `reps` times: the median in milliseconds and the
/// number of tokens it holds.
pub fn raw_state_read_ms(
    engine: &LlamaEngine,
    path: &Path,
    reps: usize,
) -> Result<(f64, usize), EngineError> {
    let failed = |e: String| EngineError::Generation(format!("raw state read: {e}"));
    let window = engine.settings().context as usize;
    let (mut ctx, _) = raw_context(engine, window, 512, 1).map_err(failed)?;
    let mut times = Vec::with_capacity(reps);
    let mut tokens = 0;
    for _ in 0..reps.max(1) {
        let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
        let started = Instant::now();
        let (read, _) = ctx
            .state_seq_load_file(path, 0, window)
            .map_err(|e| failed(e.to_string()))?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        tokens = read.len();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], tokens))
}

/// What the restart floor's child process does ([`restart_floor_child`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RestartFloor {
    /// The GGUF file.
    pub model: PathBuf,
    /// A saved state (`llama_state_seq_save_file` of a context with the engine's settings).
    pub state: PathBuf,
    /// CPU threads.
    pub threads: u32,
    /// The context window.
    pub window: usize,
    /// New tokens evaluated after the state's.
    pub new: usize,
}

/// The restart section's floor, run in a fresh process (`parlor bench` starts its own binary
/// with a hidden option): llama.cpp alone from process start to first token, as a warm
/// `parlor ask` does it, without parlor's code in between: load the model, create the engine's
/// context, read the saved state, evaluate `new` tokens after it, sample one and print its text.
pub fn restart_floor_child(f: &RestartFloor) -> Result<(), String> {
    let backend = backend().map_err(|e| e.to_string())?;
    let model = LlamaModel::load_from_file(backend, &f.model, &LlamaModelParams::default())
        .map_err(|e| format!("{}: {e}", f.model.display()))?;
    let mut ctx = model
        .new_context(backend, raw_params(f.threads, f.window, 512, 1))
        .map_err(|e| e.to_string())?;
    let (cached, _) = ctx
        .state_seq_load_file(&f.state, 0, f.window)
        .map_err(|e| format!("{}: {e}", f.state.display()))?;
    let filler = filler(&model);
    let mut batch = LlamaBatch::new(512, 1);
    let end = cached.len() + f.new;
    if f.new == 0 || end >= f.window {
        return Err(format!(
            "{end} tokens do not fit the {}-token window",
            f.window
        ));
    }
    for p in cached.len()..end {
        batch
            .add(filler[p % filler.len()], p as i32, &[0], p + 1 == end)
            .map_err(|e| e.to_string())?;
    }
    ctx.decode(&mut batch).map_err(|e| e.to_string())?;
    let token = llama_cpp_2::sampling::LlamaSampler::greedy().sample(&ctx, batch.n_tokens() - 1);
    let piece = model.vocab().token_to_piece(token, false, None);
    let mut out = std::io::stdout().lock();
    // At least one byte: the parent times the first byte on stdout.
    out.write_all(if piece.is_empty() { b"." } else { &piece })
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

/// The floor for several chats answered at once, in llama.cpp alone: one context with a KV
/// stream per chat (as the engine has), all prompts (`prompt_lens` filler tokens each) in one
/// evaluation, then `n_gen` steps decoding one token per chat. Returns (milliseconds until
/// every chat has its first token, aggregate generation tokens per second).
pub fn raw_batched_chats(
    engine: &LlamaEngine,
    prompt_lens: &[usize],
    n_gen: usize,
) -> Result<(f64, f64), EngineError> {
    let failed = |e: String| EngineError::Generation(format!("raw batched chats: {e}"));
    let chats = prompt_lens.len();
    let longest = prompt_lens.iter().copied().max().unwrap_or(0);
    let per_chat = (longest + n_gen + 1).next_multiple_of(256);
    let total: usize = prompt_lens.iter().sum();
    let (mut ctx, filler) =
        raw_context(engine, per_chat * chats, total.max(chats), chats).map_err(failed)?;
    let mut batch = LlamaBatch::new(total.max(chats), chats as i32);
    let started = Instant::now();
    let mut logits_at = Vec::with_capacity(chats);
    for (seq, &len) in prompt_lens.iter().enumerate() {
        for pos in 0..len {
            let last = pos + 1 == len;
            batch
                .add(
                    filler[(pos + seq) % filler.len()],
                    pos as i32,
                    &[seq as i32],
                    last,
                )
                .map_err(|e| failed(e.to_string()))?;
            if last {
                logits_at.push(batch.n_tokens() - 1);
            }
        }
    }
    ctx.decode(&mut batch).map_err(|e| failed(e.to_string()))?;
    let mut sampler = llama_cpp_2::sampling::LlamaSampler::greedy();
    let mut next: Vec<LlamaToken> = logits_at.iter().map(|&i| sampler.sample(&ctx, i)).collect();
    let first_ms = started.elapsed().as_secs_f64() * 1000.0;
    let gen_start = Instant::now();
    for step in 0..n_gen {
        batch.clear();
        for (seq, tok) in next.iter().enumerate() {
            batch
                .add(*tok, (prompt_lens[seq] + step) as i32, &[seq as i32], true)
                .map_err(|e| failed(e.to_string()))?;
        }
        ctx.decode(&mut batch).map_err(|e| failed(e.to_string()))?;
        next = (0..chats).map(|i| sampler.sample(&ctx, i as i32)).collect();
    }
    let tps = (chats * n_gen) as f64 / gen_start.elapsed().as_secs_f64();
    Ok((first_ms, tps))
}

/// Perplexity of the model on `text`, as llama.cpp's `llama-perplexity` computes it: the text
/// tokenized once, cut into consecutive chunks of `n_ctx` tokens (each evaluated in a fresh
/// cache, its first token replaced by BOS when the model adds one), and the second half of
/// each chunk scored (at most `max_chunks` chunks): exp of the mean negative log-likelihood
/// of each next token. Returns (perplexity, tokens scored). Fails when the text is shorter
/// than one chunk.
pub fn perplexity(
    engine: &LlamaEngine,
    text: &str,
    n_ctx: usize,
    max_chunks: usize,
) -> Result<(f64, usize), EngineError> {
    let failed = |e: String| EngineError::Generation(format!("perplexity: {e}"));
    let model = engine.model();
    let vocab = model.vocab();
    let tokens = vocab.tokenize(text.as_bytes(), true, false);
    let chunks = (tokens.len() / n_ctx).min(max_chunks);
    if chunks == 0 || n_ctx < 16 {
        return Err(failed(format!(
            "{} tokens of text do not fill one chunk of {n_ctx}",
            tokens.len()
        )));
    }
    let (mut ctx, _) = raw_context(engine, n_ctx, n_ctx, 1).map_err(failed)?;
    let mut batch = LlamaBatch::new(n_ctx, 1);
    let (mut nll, mut scored) = (0f64, 0usize);
    for chunk in tokens.chunks_exact(n_ctx).take(chunks) {
        let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
        batch.clear();
        for (i, tok) in chunk.iter().enumerate() {
            let tok = if i == 0 && vocab.should_add_bos() {
                vocab.bos()
            } else {
                *tok
            };
            batch
                .add(tok, i as i32, &[0], true)
                .map_err(|e| failed(e.to_string()))?;
        }
        ctx.decode(&mut batch).map_err(|e| failed(e.to_string()))?;
        for i in n_ctx / 2..n_ctx - 1 {
            let logits = ctx.get_logits_ith(i as i32);
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
            let target = logits[chunk[i + 1].0 as usize];
            nll += sum.ln() - f64::from(target - max);
            scored += 1;
        }
    }
    Ok(((nll / scored as f64).exp(), scored))
}
