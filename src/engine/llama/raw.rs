//! The library's own limit, for `parlor bench`: a plain llama-cpp-2 decode loop (one prompt
//! batch, then one token per decode, the same sampler chain) on the same model and settings as
//! the engine, in the same process. Whatever the whole `Bot::turn` path loses against this is
//! our overhead.

use super::{LlamaEngine, backend};
use crate::engine::{EngineError, Sampling};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::time::Instant;

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
    let threads = engine.threads() as i32;
    let model = engine.model();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(engine.settings().context))
        .with_n_batch(512)
        .with_n_ubatch(super::worker::UBATCH)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
    let mut ctx = model
        .new_context(backend()?, params)
        .map_err(|e| failed(e.to_string()))?;
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
    let mut sampler = super::active::sampler_for(model, sampling);
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
