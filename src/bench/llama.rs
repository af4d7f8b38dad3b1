//! Engine sections of `parlor bench`: whole `Bot::turn` path vs a raw llama-cpp-2 loop, time to
//! first token across the turns of one session, concurrent chats, warm resume after a process
//! restart, and peak memory.

use super::play::{SYSTEM, chats_at_once, persona, play_session, timed_turn};
use super::targets::{self, PAUSES, pause_label};
use super::{Report, median};
use crate::bot::Bot;
use crate::chat::{ChatMessage, Role};
use crate::engine::llama::{raw_batched_chats, raw_cached_turn_ms, raw_decode_loop};
use crate::engine::{EngineError, EngineSettings, LlamaEngine, Sampling};
use crate::persona::PersonaError;
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        throughput(cfg, report).await?;
    }
    if want("turns") {
        turns(cfg, report).await?;
    }
    if want("concurrency") {
        concurrency(cfg, report).await?;
    }
    if want("newchat") {
        super::newchat::new_chat(cfg, report).await?;
    }
    if want("resume") {
        super::resume::resume(cfg, report)?;
    }
    if want("telegram") {
        telegram(cfg, report).await?;
    }
    Ok(())
}

/// The ~440-token prompt of the throughput and format sections: (system prompt, question).
pub(super) fn throughput_prompt() -> (String, &'static str) {
    let background = "The harbour town of Port Ellery has a lighthouse, a fish market, a bakery \
        that opens at five, and a ferry that crosses to the island twice a day. "
        .repeat(12);
    (
        format!("{SYSTEM} Background: {background}"),
        "Write a long story about the lighthouse keeper of Port Ellery.",
    )
}

/// Whole path vs the raw decode loop on the same ~400-token prompt, 128 generated tokens.
async fn throughput(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 4096, 1)?;
    let (system, question) = throughput_prompt();
    let msgs = vec![
        ChatMessage::new(Role::System, system.clone()),
        ChatMessage::new(Role::User, question),
    ];
    let tokens = e.tokenize_prompt(&msgs)?;
    let reps = if cfg.quick { 1 } else { 3 };
    let (mut raw_p, mut raw_g) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let e2 = e.clone();
        let t = tokens.clone();
        let raw =
            tokio::task::spawn_blocking(move || raw_decode_loop(&e2, &t, 128, &Sampling::greedy()))
                .await
                .map_err(|err| BenchError::Turn(err.to_string()))??;
        raw_p.push(raw.prompt_tps);
        raw_g.push(raw.generation_tps);
    }
    let store = Store::open(&dir.path().join("db"))?;
    let bot = Bot::new(persona(dir.path(), &system)?, e.clone(), store);
    let (mut whole_p, mut whole_g, mut to_done) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let s = bot.new_session(None)?;
        let t = timed_turn(&bot, s.id, question, 128).await?;
        whole_p.push(t.prompt_tokens as f64 / t.ttft.as_secs_f64());
        // Generation speed as `ask --json` reports it: the tokens after the first over the
        // time from the first to the last piece of text (storing the reply is counted apart).
        let gen_secs = (t.last - t.first).as_secs_f64();
        if t.completion > 1 && gen_secs > 0.0 {
            whole_g.push((t.completion - 1) as f64 / gen_secs);
        }
        to_done.push((t.done - t.last).as_secs_f64() * 1000.0);
    }
    let sec = "throughput";
    report.add(
        sec,
        &format!(
            "prompt tokens/s, raw llama-cpp-2 loop ({} tokens)",
            tokens.len()
        ),
        median(raw_p.clone()),
        "tok/s",
    );
    report.add(
        sec,
        "prompt tokens/s, whole Bot::turn path (to first token)",
        median(whole_p.clone()),
        "tok/s",
    );
    report.add(
        sec,
        "generation tokens/s, raw loop",
        median(raw_g.clone()),
        "tok/s",
    );
    report.add(
        sec,
        "generation tokens/s, whole path",
        median(whole_g.clone()),
        "tok/s",
    );
    let (whole, raw) = (median(whole_g), median(raw_g).max(1e-9));
    report.add(
        sec,
        "overhead per generated token (whole path minus raw loop)",
        (1.0 / whole.max(1e-9) - 1.0 / raw) * 1e6,
        "µs",
    );
    report.add(
        sec,
        "last token to Done (the reply stored and flushed)",
        median(to_done),
        "ms",
    );
    report.check(
        sec,
        "generation, whole path / raw",
        whole / raw,
        "x",
        0.97,
        true,
    );
    Ok(())
}

/// Time to first token on turns 1, 2, 10 and 30 of one session (48-token replies). The whole
/// session is played several times (greedy: the same tokens each time) and each turn reports
/// its median, since one turn's first token takes only a few hundred milliseconds and a
/// single sample moves with whatever else the machine does. Played twice over: back to back
/// (the next message sent the moment a reply ends) and with a 0.3 s pause before each message
/// (a person reading and typing takes longer), which the engine uses to pre-fill the turn
/// boundary.
async fn turns(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 4096, 1)?;
    let store = Store::open(&dir.path().join("db"))?;
    let bot_engine = e.clone();
    let bot = Bot::new(persona(dir.path(), SYSTEM)?, e, store);
    let n = if cfg.quick { 10 } else { 30 };
    let plays = if cfg.quick { 1 } else { 3 };
    let sec = "turns";
    let mut floors = Vec::new();
    for pause in PAUSES {
        let how = pause_label(pause);
        let played = play_session(&bot, n, plays, pause).await?;
        let (ttft, evaluated) = (played.ttft_ms, played.evaluated);
        for turn in [1usize, 2, 10, 30] {
            if turn > n {
                continue;
            }
            let (new, total) = evaluated[turn - 1];
            report.add(
                sec,
                &format!("prompt tokens evaluated (of {total}), turn {turn}, {how}"),
                f64::from(new),
                "tok",
            );
            report.add(
                sec,
                &format!("time to first token, turn {turn}, {how}"),
                ttft[turn - 1],
                "ms",
            );
        }
        if floors.is_empty() {
            // What llama.cpp itself needs for the same turns with their whole prefix cached:
            // the floor under any server's time to first token on this machine.
            for turn in [2, n] {
                let (new, total) = evaluated[turn - 1];
                let (cached, new) = ((total - new) as usize, new as usize);
                let e = bot_engine.clone();
                let ms =
                    tokio::task::spawn_blocking(move || raw_cached_turn_ms(&e, cached, new, 5))
                        .await
                        .map_err(|e| BenchError::Turn(e.to_string()))??;
                floors.push((turn, new, cached, ms));
            }
        }
        report.note(&targets::turns_key("parlor", pause), ttft[n - 1]);
        report.add(
            sec,
            &format!("turn {n} / turn 2, {how}"),
            ttft[n - 1] / ttft[1],
            "x",
        );
    }
    for &(turn, new, cached, ms) in &floors {
        report.add(
            sec,
            &format!(
                "llama.cpp floor: turn {turn} first token ({new} new after {cached} cached tokens, raw loop)"
            ),
            ms,
            "ms",
        );
    }
    if let [(_, _, _, two), (last, _, _, end)] = floors[..] {
        report.add(
            sec,
            &format!("llama.cpp floor: turn {last} / turn 2"),
            end / two,
            "x",
        );
        report.note(targets::TURNS_FLOOR, end);
    }
    Ok(())
}

/// Aggregate generation speed and worst time to first token with 1, 2, 4 and 8 chats at once.
async fn concurrency(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 1024, 8)?;
    let raw_engine = e.clone();
    let store = Store::open(&dir.path().join("db"))?;
    let bot = Bot::new(persona(dir.path(), SYSTEM)?, e, store);
    let sec = "concurrency";
    for n in [1usize, 2, 4, 8] {
        let chats = chats_at_once(&bot, n).await?;
        report.add(
            sec,
            &format!("{n} chats: aggregate generation"),
            chats.aggregate_tps,
            "tok/s",
        );
        report.add(
            sec,
            &format!("{n} chats: worst time to first token"),
            chats.worst_ttft_ms,
            "ms",
        );
        if n == 4 {
            report.note(targets::CHATS4_AGG_PARLOR, chats.aggregate_tps);
            report.note(targets::CHATS4_WORST_PARLOR, chats.worst_ttft_ms);
            // The same four prompts and replies in llama.cpp alone, all prompts in one batch:
            // the floor under any server on this machine.
            let lens = chats.prompt_lens.clone();
            let e = raw_engine.clone();
            let (first_ms, tps) =
                tokio::task::spawn_blocking(move || raw_batched_chats(&e, &lens, 64))
                    .await
                    .map_err(|e| BenchError::Turn(e.to_string()))??;
            report.add(
                sec,
                "llama.cpp floor: 4 chats, aggregate generation (raw loop)",
                tps,
                "tok/s",
            );
            report.add(
                sec,
                "llama.cpp floor: 4 chats, all prompts to first token (raw loop)",
                first_ms,
                "ms",
            );
        }
    }
    Ok(())
}

/// Telegram against the fake Bot API server (production pacing): update to first visible text
/// and to the final message, replies per minute with 1, 4 and 16 chats, real model (4 slots).
pub async fn telegram(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 2048, 4)?;
    let store = Store::open(&dir.path().join("db"))?;
    let bot = Bot::new(persona(dir.path(), SYSTEM)?, e, store);
    let (counts, per_chat): (&[usize], usize) = if cfg.quick {
        (&[1, 4], 1)
    } else {
        (&[1, 4, 16], 2)
    };
    let result = crate::telegram::bench::bench_fake_server(
        bot,
        crate::telegram::bench::bench_config(),
        counts,
        per_chat,
    )
    .await
    .map_err(|e| BenchError::Turn(e.to_string()))?;
    let sec = "telegram";
    for r in &result.rows {
        report.add(
            sec,
            &format!("{} chats: update to first text (p50 / max)", r.chats),
            r.first_text_ms_p50,
            &format!("ms / {:.0} ms", r.first_text_ms_max),
        );
        report.add(
            sec,
            &format!("{} chats: update to final message (p50 / max)", r.chats),
            r.final_ms_p50,
            &format!("ms / {:.0} ms", r.final_ms_max),
        );
        report.add(
            sec,
            &format!("{} chats: replies per minute", r.chats),
            r.replies_per_minute,
            "/min",
        );
    }
    Ok(())
}
