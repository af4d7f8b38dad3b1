//! What the real-model sections of `parlor bench` share: their settings, errors, a benchmark
//! persona and engine, one timed turn, and the order the sections run in.

use super::Report;
use crate::bot::{Bot, ReplyEvent, TurnOptions};
use crate::chat::SessionId;
use crate::engine::{EngineError, EngineSettings, LlamaEngine, Sampling};
use crate::persona::{Persona, PersonaError};
use crate::store::StoreError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the engine sections need.
#[derive(Debug, Clone)]
pub struct LlamaBench {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// CPU threads.
    pub threads: u32,
    /// The `parlor` binary, for the sections that measure a fresh process.
    pub parlor_bin: PathBuf,
    /// Fewer repetitions (a smoke run).
    pub quick: bool,
    /// Sections to run (`throughput`, `turns`, `concurrency`, `resume`, `telegram`); empty = all.
    pub only: Vec<String>,
}

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bot operation failed.
    #[error(transparent)]
    Bot(#[from] crate::bot::BotError),
    /// The benchmark persona is invalid (a bug).
    #[error(transparent)]
    Persona(#[from] PersonaError),
    /// A turn failed.
    #[error("a benchmark turn failed: {0}")]
    Turn(String),
    /// Files or child processes failed.
    #[error("benchmark i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub(super) const SYSTEM: &str = "You are a helpful assistant.";

pub(super) fn persona(dir: &Path, system: &str) -> Result<Persona, BenchError> {
    let path = dir.join("bench.yaml");
    let text = format!(
        "name: Bench\nsystem: {}\nsampling:\n  temperature: 0\n  max_tokens: 48\n",
        serde_json::to_string(system).unwrap_or_default()
    );
    std::fs::write(&path, text)?;
    Ok(Persona::load(&path)?)
}

pub(super) fn engine(
    cfg: &LlamaBench,
    context: u32,
    slots: u32,
) -> Result<Arc<LlamaEngine>, BenchError> {
    let mut s = EngineSettings::new(&cfg.model_path, "bench");
    s.threads = Some(cfg.threads);
    s.context = context;
    s.slots = slots;
    Ok(Arc::new(LlamaEngine::load(s)?))
}

/// Timings of one turn seen from the front end.
pub(super) struct Timed {
    pub(super) ttft: Duration,
    pub(super) first: Instant,
    pub(super) done: Instant,
    pub(super) completion: u32,
    pub(super) prompt_tokens: u32,
    /// Prompt tokens taken from the KV cache instead of evaluated.
    pub(super) reused: u32,
}

pub(super) async fn timed_turn(
    bot: &Bot,
    session: SessionId,
    text: &str,
    max_tokens: u32,
) -> Result<Timed, BenchError> {
    let start = Instant::now();
    let mut reply = bot.turn_with(
        session,
        text,
        TurnOptions {
            sampling: Some(Sampling::greedy()),
            max_tokens: Some(max_tokens),
            ..Default::default()
        },
    );
    let mut first = None;
    loop {
        match reply.next().await {
            Some(ReplyEvent::Token(_)) => {
                first.get_or_insert_with(Instant::now);
            }
            Some(ReplyEvent::Queued { .. }) => {}
            Some(ReplyEvent::Done(o)) => {
                let done = Instant::now();
                let first = first.unwrap_or(done);
                return Ok(Timed {
                    ttft: first - start,
                    first,
                    done,
                    completion: o.stats.completion_tokens,
                    prompt_tokens: o.stats.prompt_tokens,
                    reused: o.stats.reused_tokens,
                });
            }
            Some(ReplyEvent::Failed(e)) => return Err(BenchError::Turn(e)),
            None => return Err(BenchError::Turn("reply ended early".into())),
        }
    }
}

/// Run the selected engine sections into `report`.
pub async fn run_llama_sections(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let want = |s: &str| cfg.only.is_empty() || cfg.only.iter().any(|o| o == s);
    if want("throughput") {
        super::throughput::section(cfg, report).await?;
    }
    if want("turns") {
        super::turns::section(cfg, report).await?;
    }
    if want("concurrency") {
        super::concurrency::section(cfg, report).await?;
    }
    if want("resume") {
        super::resume::section(cfg, report)?;
    }
    if want("telegram") {
        super::telegram::section(cfg, report).await?;
    }
    Ok(())
}
