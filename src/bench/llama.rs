//! What the real-model sections of `parlor bench` share: their settings, errors, an engine on
//! the bench's threads, and the order the sections run in (the benchmark persona and the timed
//! turns the sections play are in [`super::play`]).

use super::Report;
use super::peer::PeerSection;
use crate::engine::{EngineError, EngineSettings, LlamaEngine};
use crate::persona::PersonaError;
use crate::store::StoreError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) use super::play::{SYSTEM, persona, timed_turn};

/// What the engine sections need.
#[derive(Debug, Clone)]
pub struct LlamaBench {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// A registry model's file as pulled and its faster derived encoding (for `format`).
    pub formats: Option<(PathBuf, PathBuf)>,
    /// CPU threads.
    pub threads: u32,
    /// The `parlor` binary, for the sections that measure a fresh process.
    pub parlor_bin: PathBuf,
    /// Fewer repetitions (a smoke run).
    pub quick: bool,
    /// Sections to run (`throughput`, `turns`, `concurrency`, `resume`, `telegram`); empty = all.
    pub only: Vec<String>,
    /// A peer server to play the turns, concurrency and new-chat sections against too (and to
    /// read the peak memory of, with the resume section), each right after parlor's side.
    pub peer: Option<super::peer::Peer>,
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

pub(super) fn engine(
    cfg: &LlamaBench,
    context: u32,
    slots: u32,
) -> Result<Arc<LlamaEngine>, BenchError> {
    engine_of(cfg, &cfg.model_path, context, slots)
}

/// An engine on `path` with the bench's threads.
pub(super) fn engine_of(
    cfg: &LlamaBench,
    path: &Path,
    context: u32,
    slots: u32,
) -> Result<Arc<LlamaEngine>, BenchError> {
    let mut s = EngineSettings::new(path, "bench");
    s.threads = Some(cfg.threads);
    s.context = context;
    s.slots = slots;
    Ok(Arc::new(LlamaEngine::load(s)?))
}

/// Run the selected engine sections into `report`.
pub async fn run_llama_sections(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let want = |s: &str| cfg.only.is_empty() || cfg.only.iter().any(|o| o == s);
    if want("format")
        && let Some((original, derived)) = &cfg.formats
    {
        super::format::formats(cfg, original, derived, report).await?;
    }
    if want("throughput") {
        super::throughput::section(cfg, report).await?;
    }
    if want("turns") {
        super::turns::section(cfg, report).await?;
        peer_side(cfg, PeerSection::Turns, report).await?;
    }
    if want("concurrency") {
        super::concurrency::section(cfg, report).await?;
        peer_side(cfg, PeerSection::Concurrency, report).await?;
    }
    if want("newchat") {
        super::newchat::new_chat(cfg, report).await?;
        peer_side(cfg, PeerSection::NewChat, report).await?;
    }
    if want("resume") {
        super::resume::section(cfg, report)?;
        peer_side(cfg, PeerSection::Resume, report).await?;
    }
    if want("telegram") {
        super::telegram::section(cfg, report).await?;
    }
    Ok(())
}

/// The peer's side of `section`, if a peer is set.
async fn peer_side(
    cfg: &LlamaBench,
    section: PeerSection,
    report: &mut Report,
) -> Result<(), BenchError> {
    match &cfg.peer {
        Some(p) => super::peer::run_peer_section(p, section, cfg.quick, report).await,
        None => Ok(()),
    }
}
