//! The `format` section of `parlor bench`: a registry model as pulled (Q4_1) against its
//! derived encoding (Q8_0): prompt and generation speed in the raw llama-cpp-2 loop, and
//! perplexity on text shipped with parlor (its Apache-2.0 license and its docs), computed
//! in-process from the logits as llama.cpp's `llama-perplexity` does, over 20 chunks of 512
//! tokens like the measurement behind the decision (issue #14). The derived file must stay
//! within 0.5% of the original's perplexity.

use super::Report;
use super::floor::{perplexity, raw_decode_loop};
use super::llama::{BenchError, LlamaBench, engine_of};
use super::throughput::throughput_prompt;
use crate::chat::{ChatMessage, Role};
use crate::engine::Sampling;
use std::path::Path;

/// The text perplexity is measured on (shipped in the binary): about 13,000 tokens. The
/// license alone (765 scored tokens) was too short to tell 0.5% from noise.
const TEXT: &str = concat!(
    include_str!("../../LICENSE-APACHE"),
    "\n",
    include_str!("../../docs/personas.md"),
    "\n",
    include_str!("../../docs/telegram.md"),
    "\n",
    include_str!("../../docs/bench.md"),
);
/// Tokens per perplexity chunk (the second half of each is scored).
const CHUNK: usize = 512;
/// Chunks scored (`--quick`: fewer).
const CHUNKS: usize = 20;
const QUICK_CHUNKS: usize = 4;

/// Speeds and perplexity of one file.
struct Measured {
    prompt_tps: f64,
    generation_tps: f64,
    perplexity: f64,
    scored: usize,
}

fn measure(cfg: &LlamaBench, path: &Path) -> Result<Measured, BenchError> {
    let e = engine_of(cfg, path, 4096, 1)?;
    let (system, question) = throughput_prompt();
    let tokens = e.tokenize_prompt(&[
        ChatMessage::new(Role::System, system),
        ChatMessage::new(Role::User, question),
    ])?;
    let reps = if cfg.quick { 1 } else { 3 };
    let (mut p, mut g) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let raw = raw_decode_loop(&e, &tokens, 64, &Sampling::greedy())?;
        p.push(raw.prompt_tps);
        g.push(raw.generation_tps);
    }
    let chunks = if cfg.quick { QUICK_CHUNKS } else { CHUNKS };
    let (perplexity, scored) = perplexity(&e, TEXT, CHUNK, chunks)?;
    Ok(Measured {
        prompt_tps: super::median(p),
        generation_tps: super::median(g),
        perplexity,
        scored,
    })
}

fn label(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Measure `original` and `derived` into `report`.
pub async fn formats(
    cfg: &LlamaBench,
    original: &Path,
    derived: &Path,
    report: &mut Report,
) -> Result<(), BenchError> {
    let (c, o, d) = (cfg.clone(), original.to_path_buf(), derived.to_path_buf());
    let (a, b) = tokio::task::spawn_blocking(move || {
        Ok::<_, BenchError>((measure(&c, &o)?, measure(&c, &d)?))
    })
    .await
    .map_err(|e| BenchError::Turn(e.to_string()))??;
    let sec = "format";
    let (na, nb) = (label(original), label(derived));
    for (name, m) in [(&na, &a), (&nb, &b)] {
        report.add(
            sec,
            &format!("prompt tokens/s, raw loop, {name}"),
            m.prompt_tps,
            "tok/s",
        );
        report.add(
            sec,
            &format!("generation tokens/s, raw loop, {name}"),
            m.generation_tps,
            "tok/s",
        );
        report.add(
            sec,
            &format!(
                "perplexity, shipped text ({} tokens scored), {name}",
                m.scored
            ),
            m.perplexity,
            "",
        );
    }
    report.add(
        sec,
        "prompt speed, derived / as pulled",
        b.prompt_tps / a.prompt_tps,
        "x",
    );
    report.add(
        sec,
        "generation speed, derived / as pulled",
        b.generation_tps / a.generation_tps,
        "x",
    );
    report.check(
        sec,
        "perplexity, derived / as pulled",
        b.perplexity / a.perplexity,
        "x",
        1.005,
        false,
    );
    Ok(())
}
