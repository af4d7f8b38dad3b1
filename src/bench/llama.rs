//! Engine sections of `parlor bench`: whole `Bot::turn` path vs a raw llama-cpp-2 loop, time to
//! first token across the turns of one session, concurrent chats, warm resume after a process
//! restart, and peak memory.

use super::{Report, median};
use crate::bot::{Bot, ReplyEvent, TurnOptions};
use crate::chat::{ChatMessage, Role, SessionId};
use crate::engine::llama::{raw_batched_chats, raw_cached_turn_ms, raw_decode_loop};
use crate::engine::{EngineError, EngineSettings, LlamaEngine, Sampling};
use crate::persona::{Persona, PersonaError};
use crate::store::{Store, StoreError, StoredMessage};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

const SYSTEM: &str = "You are a helpful assistant.";

fn persona(dir: &Path, system: &str) -> Result<Persona, BenchError> {
    let path = dir.join("bench.yaml");
    let text = format!(
        "name: Bench\nsystem: {}\nsampling:\n  temperature: 0\n  max_tokens: 48\n",
        serde_json::to_string(system).unwrap_or_default()
    );
    std::fs::write(&path, text)?;
    Ok(Persona::load(&path)?)
}

fn engine(cfg: &LlamaBench, context: u32, slots: u32) -> Result<Arc<LlamaEngine>, BenchError> {
    let mut s = EngineSettings::new(&cfg.model_path, "bench");
    s.threads = Some(cfg.threads);
    s.context = context;
    s.slots = slots;
    Ok(Arc::new(LlamaEngine::load(s)?))
}

/// Timings of one turn seen from the front end.
struct Timed {
    ttft: Duration,
    first: Instant,
    done: Instant,
    completion: u32,
    prompt_tokens: u32,
    /// Prompt tokens taken from the KV cache instead of evaluated.
    reused: u32,
}

async fn timed_turn(
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
        throughput(cfg, report).await?;
    }
    if want("turns") {
        turns(cfg, report).await?;
    }
    if want("concurrency") {
        concurrency(cfg, report).await?;
    }
    if want("resume") {
        resume(cfg, report)?;
    }
    if want("telegram") {
        telegram(cfg, report).await?;
    }
    Ok(())
}

/// Whole path vs the raw decode loop on the same ~400-token prompt, 128 generated tokens.
async fn throughput(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let background = "The harbour town of Port Ellery has a lighthouse, a fish market, a bakery \
        that opens at five, and a ferry that crosses to the island twice a day. "
        .repeat(12);
    let system = format!("{SYSTEM} Background: {background}");
    let e = engine(cfg, 4096, 1)?;
    let question = "Write a long story about the lighthouse keeper of Port Ellery.";
    let msgs = vec![
        crate::chat::ChatMessage::new(Role::System, system.clone()),
        crate::chat::ChatMessage::new(Role::User, question),
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
    let (mut whole_p, mut whole_g) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let s = bot.new_session(None)?;
        let t = timed_turn(&bot, s.id, question, 128).await?;
        whole_p.push(t.prompt_tokens as f64 / t.ttft.as_secs_f64());
        let gen_secs = (t.done - t.first).as_secs_f64();
        if t.completion > 1 && gen_secs > 0.0 {
            whole_g.push((t.completion - 1) as f64 / gen_secs);
        }
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
    report.check(
        sec,
        "generation, whole path / raw",
        median(whole_g) / median(raw_g).max(1e-9),
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
    for pause in [Duration::ZERO, Duration::from_millis(300)] {
        let how = if pause.is_zero() {
            "back to back".to_string()
        } else {
            format!("{} s pause", pause.as_secs_f64())
        };
        let mut samples = vec![Vec::new(); n];
        let mut evaluated = Vec::new();
        for play in 0..plays {
            let s = bot.new_session(None)?;
            for i in 1..=n {
                if i > 1 {
                    tokio::time::sleep(pause).await;
                }
                let text = format!("Tell me one fact about the number {i}.");
                let t = timed_turn(&bot, s.id, &text, 48).await?;
                samples[i - 1].push(t.ttft.as_secs_f64() * 1000.0);
                if play == 0 {
                    evaluated.push((t.prompt_tokens.saturating_sub(t.reused), t.prompt_tokens));
                }
            }
        }
        let ttft: Vec<f64> = samples.into_iter().map(median).collect();
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
            if turn < n {
                report.add(
                    sec,
                    &format!("time to first token, turn {turn}, {how}"),
                    ttft[turn - 1],
                    "ms",
                );
            }
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
        let last = ttft[n - 1];
        report.check(
            sec,
            &format!("time to first token, turn {n}, {how}"),
            last,
            "ms",
            100.0,
            false,
        );
        report.check(
            sec,
            &format!("turn {n} / turn 2, {how}"),
            last / ttft[1],
            "x",
            1.3,
            false,
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
    let topics = [
        "a dragon",
        "a lighthouse",
        "a robot",
        "a baker",
        "a pirate",
        "a comet",
        "a fox",
        "a violin",
    ];
    let sec = "concurrency";
    for n in [1usize, 2, 4, 8] {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for topic in topics.iter().take(n) {
            let bot = bot.clone();
            let s = bot.new_session(None)?;
            let text = format!("Write a long story about {topic}.");
            tasks.push(tokio::spawn(async move {
                timed_turn(&bot, s.id, &text, 64).await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.map_err(|e| BenchError::Turn(e.to_string()))??);
        }
        let worst_ttft = results
            .iter()
            .map(|r| (r.first - start).as_secs_f64())
            .fold(0.0, f64::max)
            * 1000.0;
        let first = results.iter().map(|r| r.first).min().unwrap_or(start);
        let last = results.iter().map(|r| r.done).max().unwrap_or(start);
        let tokens: u32 = results.iter().map(|r| r.completion.saturating_sub(1)).sum();
        let agg = tokens as f64 / (last - first).as_secs_f64().max(1e-9);
        if n == 4 {
            report.check(
                sec,
                "4 chats: aggregate generation",
                agg,
                "tok/s",
                196.0,
                true,
            );
            report.check(
                sec,
                "4 chats: worst time to first token",
                worst_ttft,
                "ms",
                500.0,
                false,
            );
            // The same four prompts and replies in llama.cpp alone, all prompts in one batch:
            // the floor under any server on this machine.
            let lens: Vec<usize> = results.iter().map(|r| r.prompt_tokens as usize).collect();
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
        } else {
            report.add(
                sec,
                &format!("{n} chats: aggregate generation"),
                agg,
                "tok/s",
            );
            report.add(
                sec,
                &format!("{n} chats: worst time to first token"),
                worst_ttft,
                "ms",
            );
        }
    }
    Ok(())
}

/// Spawn `parlor ask` and return (ms to the first byte on stdout, peak RSS in MiB).
fn timed_ask(cfg: &LlamaBench, home: &Path, text: &str) -> Result<(f64, f64), BenchError> {
    let start = Instant::now();
    let mut child = Command::new(&cfg.parlor_bin)
        .arg("--home")
        .arg(home)
        .args([
            "ask",
            "--bot",
            "bench",
            "--session",
            "resume",
            "--max-tokens",
            "8",
            text,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut out = child.stdout.take().expect("piped");
    let mut byte = [0u8; 1];
    out.read_exact(&mut byte)?;
    let first_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut peak_kb = 0.0f64;
    // VmHWM only grows: the last reading before exit is the peak.
    loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut rest = Vec::new();
    out.read_to_end(&mut rest)?;
    Ok((first_ms, peak_kb / 1024.0))
}

/// Process start to first token for a session with ~1,500 tokens of history: warm (saved
/// state restored) vs cold (prompt evaluated again); peak memory at n_ctx 4096.
fn resume(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let home = tempfile::tempdir()?;
    let h = home.path();
    std::fs::create_dir_all(h.join("personas"))?;
    std::fs::create_dir_all(h.join("bots"))?;
    persona(&h.join("personas"), SYSTEM)?;
    std::fs::write(
        h.join("bots/bench.yaml"),
        format!(
            "persona: bench\nmodel: {}\nengine:\n  threads: {}\n  context: 4096\n  slots: 1\n",
            serde_json::to_string(&cfg.model_path.display().to_string()).unwrap_or_default(),
            cfg.threads
        ),
    )?;
    {
        let store = Store::open(&h.join("storage/bench"))?;
        let s = store.create_session("resume", "bench", "bench")?;
        let filler = "I keep bees on the roof of my flat in the old town, and every spring I \
            count the hives, clean the frames, and write down how much honey each one gave. ";
        for i in 0..14 {
            store.append_message(
                s.id,
                StoredMessage::new(Role::User, format!("Note {i}: {filler}")),
            )?;
            store.append_message(
                s.id,
                StoredMessage::new(Role::Assistant, format!("Noted, entry {i}. {filler}")),
            )?;
        }
        store.flush()?;
    }
    let (cold, _) = timed_ask(cfg, h, "How many notes have I given you?")?;
    let state_bytes: u64 = std::fs::read_dir(h.join("storage/bench/kv-state"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    // Three warm starts (each saves the state again at exit for the next); the median counts.
    let mut warm = Vec::new();
    let mut peak = 0.0f64;
    for q in [
        "Thanks. What do I keep on the roof?",
        "When do I count the hives?",
        "Where is my flat?",
    ] {
        let (ms, p) = timed_ask(cfg, h, q)?;
        warm.push(ms);
        peak = peak.max(p);
    }
    let warm = median(warm);
    // The floor under a warm start, in this process with llama.cpp alone: loading the model
    // and creating a context of the same size, then evaluating a new message's tokens after
    // the conversation's (all cached, as a restored state is).
    let loading = Instant::now();
    let e = engine(cfg, 4096, 1)?;
    let load_ms = loading.elapsed().as_secs_f64() * 1000.0;
    // The conversation as the warm starts left it (their questions and replies included).
    let mut history = vec![ChatMessage::new(Role::System, SYSTEM)];
    {
        let store = Store::open(&h.join("storage/bench"))?;
        if let Some(s) = store.find_session("resume")? {
            history.extend(
                store
                    .messages(s.id)?
                    .into_iter()
                    .map(|m| ChatMessage::new(m.role, m.text)),
            );
        }
    }
    // A restored state holds what the next prompt is sure to start with (the turn-boundary
    // pre-fill): the common prefix of this prompt and one with another message.
    let prompt_with = |text: &str| {
        let mut m = history.clone();
        m.push(ChatMessage::new(Role::User, text));
        e.tokenize_prompt(&m)
    };
    let full = prompt_with("And where are the hives?")?;
    let other = prompt_with("x")?;
    let cached = full.iter().zip(&other).take_while(|(a, b)| a == b).count();
    let new = full.len() - cached;
    let turn_ms = raw_cached_turn_ms(&e, cached, new, 3)?;
    drop(e);
    let _ = std::fs::remove_dir_all(h.join("storage/bench/kv-state"));
    let (cold2, _) = timed_ask(cfg, h, "And what do I write down?")?;
    let sec = "restart";
    report.add(
        sec,
        "process start to first token, ~1,500-token session, re-evaluated",
        median(vec![cold, cold2]),
        "ms",
    );
    report.check(
        sec,
        "process start to first token, warm (saved state)",
        warm,
        "ms",
        300.0,
        false,
    );
    report.add(
        sec,
        &format!(
            "llama.cpp floor: model load {load_ms:.0} ms + {new} new tokens after {cached} cached {turn_ms:.0} ms"
        ),
        load_ms + turn_ms,
        "ms",
    );
    report.add(sec, "saved state size", state_bytes as f64 / 1e6, "MB");
    report.check(sec, "peak memory (n_ctx 4096)", peak, "MiB", 227.0, false);
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
