//! One reply being generated in a slot: its sampler chain, streaming state (UTF-8 decoder,
//! stop strings, outbox) and how it ends.

use super::Job;
use crate::chat::FinishReason;
use crate::engine::stop::{Filtered, StopFilter};
use crate::engine::{EngineEvent, GenerationStats, Sampling};
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;
use std::time::Instant;

/// A conversation being answered in a slot.
pub(super) struct Active {
    pub(super) job: Job,
    pub(super) prompt: Vec<LlamaToken>,
    pub(super) next_prompt: usize,
    pub(super) reused: u32,
    pub(super) sampler: LlamaSampler,
    pub(super) decoder: encoding_rs::Decoder,
    pub(super) stop: StopFilter,
    pub(super) generated: u32,
    pub(super) pending: Option<LlamaToken>,
    pub(super) logits_at: Option<i32>,
    pub(super) outbox: VecDeque<EngineEvent>,
    /// End of the persona prefix in `prompt` while it still has to be evaluated (prompt
    /// chunks stop there), else 0.
    pub(super) prefix_end: usize,
    /// Saved-state key to store the prefix under once evaluated.
    pub(super) save_prefix: Option<String>,
    /// When streamed text was last handed to the requester (`None`: not yet).
    pub(super) sent_at: Option<Instant>,
    /// The requester's channel was full at the last attempt: the slot waits for it.
    pub(super) blocked: bool,
    pub(super) started: Instant,
    pub(super) prompt_done: Option<Instant>,
    pub(super) first_text: Option<Instant>,
    pub(super) finish: Option<FinishReason>,
    /// Everything streamed so far: the reply as the front end stores it.
    pub(super) text: String,
}

/// Length of the common prefix of two token lists.
pub(super) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The persona's sampler chain.
pub(crate) fn sampler_for(model: &LlamaModel, s: &Sampling) -> LlamaSampler {
    let mut chain = Vec::new();
    if s.repeat_penalty != 1.0 && s.repeat_last_n != 0 {
        chain.push(LlamaSampler::penalties(
            model.n_vocab(),
            s.repeat_last_n,
            s.repeat_penalty,
            0.0,
            0.0,
        ));
    }
    if s.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if s.top_k > 0 {
            chain.push(LlamaSampler::top_k(s.top_k));
        }
        if s.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(s.top_p, 1));
        }
        if s.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(s.min_p, 1));
        }
        chain.push(LlamaSampler::temp(s.temperature));
        chain.push(LlamaSampler::dist(s.seed));
    }
    LlamaSampler::chain_simple(chain)
}

/// Queue streamed text (nothing for an empty piece). Text not yet handed over joins the
/// queued piece: see [`due`].
pub(super) fn emit(a: &mut Active, text: String) {
    if text.is_empty() {
        return;
    }
    a.first_text.get_or_insert_with(Instant::now);
    a.text.push_str(&text);
    match a.outbox.back_mut() {
        Some(EngineEvent::Token(queued)) => queued.push_str(&text),
        _ => a.outbox.push_back(EngineEvent::Token(text)),
    }
}

/// Streamed text is handed to the requester at most this often (the first piece and the end at
/// once). Each hand-over wakes the requester's async tasks; once per token (every 5 ms on a
/// fast CPU) those wake-ups took cores from llama.cpp's own threads in the middle of a decode.
/// Front ends draw at most every 16 ms (TUI) or edit once a second (Telegram).
pub(super) const STREAM_INTERVAL: std::time::Duration = std::time::Duration::from_millis(40);

/// Whether the outbox should be handed over now: the first text, the end, a non-text event,
/// or the interval since the last hand-over has passed.
pub(super) fn due(a: &Active, now: Instant) -> bool {
    a.finish.is_some()
        || a.outbox.iter().any(|e| !matches!(e, EngineEvent::Token(_)))
        || a.sent_at
            .is_none_or(|t| now.duration_since(t) >= STREAM_INTERVAL)
}

/// End a reply: release held-back text (unless a stop string ended it) and queue `Done`.
pub(super) fn finish(a: &mut Active, reason: FinishReason) {
    let mut tail = String::with_capacity(8);
    let _ = a.decoder.decode_to_string(&[], &mut tail, true);
    if reason != FinishReason::StopString {
        let (Filtered::Continue(t) | Filtered::Stop(t)) = a.stop.push(&tail);
        emit(a, t);
        let rest = a.stop.finish();
        emit(a, rest);
    }
    let end = Instant::now();
    let first = a.first_text.unwrap_or(end);
    let stats = GenerationStats {
        prompt_tokens: a.prompt.len() as u32,
        reused_tokens: a.reused,
        completion_tokens: a.generated,
        ttft_ms: first.duration_since(a.job.submitted).as_secs_f64() * 1000.0,
        prompt_ms: a
            .prompt_done
            .unwrap_or(end)
            .duration_since(a.started)
            .as_secs_f64()
            * 1000.0,
        generation_ms: end.duration_since(first).as_secs_f64() * 1000.0,
        finish: reason,
    };
    a.pending = None;
    a.outbox.push_back(EngineEvent::Done(stats));
    a.finish = Some(reason);
}
