//! The restart section of `parlor bench`: a fresh `parlor ask` process continuing a session of
//! ~1,500 tokens, with its saved KV state (warm) and without (re-evaluated), against the
//! llama.cpp floor: a fresh process that loads the model, reads the same saved state and
//! evaluates the new message's tokens; peak memory of those processes.

use super::Report;
use super::floor::{RestartFloor, raw_cached_turn_ms, raw_state_read_ms};
use super::llama::{BenchError, LlamaBench, engine};
use super::median;
use super::play::{SYSTEM, persona};
use super::targets;
use crate::chat::{ChatMessage, Role};
use crate::store::{Store, StoredMessage};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Spawn `parlor ask --bot BOT` (in `session`, else a new one) and return (ms to the first
/// byte on stdout, peak RSS in MiB).
pub(super) fn timed_ask(
    cfg: &LlamaBench,
    home: &Path,
    bot: &str,
    session: Option<&str>,
    text: &str,
) -> Result<(f64, f64), BenchError> {
    let mut cmd = Command::new(&cfg.parlor_bin);
    cmd.arg("--home")
        .arg(home)
        .args(["ask", "--bot", bot, "--max-tokens", "8"]);
    if let Some(s) = session {
        cmd.args(["--session", s]);
    }
    cmd.arg(text);
    timed_first_byte(cmd)
}

/// Spawn `cmd` and return (ms from the spawn to the first byte on stdout, peak RSS in MiB).
fn timed_first_byte(mut cmd: Command) -> Result<(f64, f64), BenchError> {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
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

/// The session's saved state in `home` (the largest `s*.kv` file of the bench bot).
fn session_state(home: &Path) -> Result<PathBuf, BenchError> {
    std::fs::read_dir(home.join("storage/bench/kv-state"))?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with('s') && name.ends_with(".kv")
        })
        .filter_map(|e| Some((e.metadata().ok()?.len(), e.path())))
        .max()
        .map(|(_, p)| p)
        .ok_or_else(|| BenchError::Turn("the cold start saved no session state".into()))
}

/// Process start to first token for a session with ~1,500 tokens of history: warm (saved
/// state restored) vs cold (prompt evaluated again); peak memory at n_ctx 4096.
pub(super) fn section(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
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
    let (cold, _) = timed_ask(
        cfg,
        h,
        "bench",
        Some("resume"),
        "How many notes have I given you?",
    )?;
    let state_bytes: u64 = std::fs::read_dir(h.join("storage/bench/kv-state"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    // The prompt of a warm start: what the saved state holds (the conversation and the
    // pre-filled turn boundary: the common prefix of this prompt and one with another
    // message), then the new message's tokens.
    let e = engine(cfg, 4096, 1)?;
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
    let prompt_with = |text: &str| {
        let mut m = history.clone();
        m.push(ChatMessage::new(Role::User, text));
        e.tokenize_prompt(&m)
    };
    let full = prompt_with("And where are the hives?")?;
    let other = prompt_with("x")?;
    let cached = full.iter().zip(&other).take_while(|(a, b)| a == b).count();
    let new = full.len() - cached;
    drop(e);
    // Warm starts (each saves the state again at exit for the next), each next to one start of
    // the floor's process, alternating which goes first: both sides of the ratio sample the
    // same moments of a shared VM (one floor against three warm starts measured 1.07x and
    // 1.79x in two runs of one build). The floor is llama.cpp alone in a fresh process of the
    // same binary ([`super::floor::restart_floor_child`]): it loads the model, creates the
    // engine's context, reads the state file the next warm start will read (without parlor's
    // checksum), and evaluates as many new tokens.
    let questions = [
        "Thanks. What do I keep on the roof?",
        "When do I count the hives?",
        "Where is my flat?",
        "What do I clean every spring?",
        "What do I write down?",
    ];
    let rounds = if cfg.quick { 1 } else { questions.len() };
    let (mut warm, mut floors) = (Vec::new(), Vec::new());
    let mut peak = 0.0f64;
    for (round, q) in questions.iter().take(rounds).enumerate() {
        let floor = || -> Result<f64, BenchError> {
            let child = RestartFloor {
                model: cfg.model_path.clone(),
                state: session_state(h)?,
                threads: cfg.threads,
                window: 4096,
                new,
            };
            let mut cmd = Command::new(&cfg.parlor_bin);
            cmd.args(["bench", "--restart-floor-child"])
                .arg(serde_json::to_string(&child).map_err(|e| BenchError::Turn(e.to_string()))?);
            Ok(timed_first_byte(cmd)?.0)
        };
        let ask_first = round.is_multiple_of(2);
        if !ask_first {
            floors.push(floor()?);
        }
        let (ms, p) = timed_ask(cfg, h, "bench", Some("resume"), q)?;
        warm.push(ms);
        peak = peak.max(p);
        if ask_first {
            floors.push(floor()?);
        }
    }
    let warm = median(warm);
    let floor_ms = median(floors);
    // Where the floor's time goes, in this process: loading the model and creating the
    // context, llama.cpp reading the saved state, the new tokens after the cached ones.
    let at = Instant::now();
    let e = engine(cfg, 4096, 1)?;
    let load_ms = at.elapsed().as_secs_f64() * 1000.0;
    let (read_ms, read_tokens) = raw_state_read_ms(&e, &session_state(h)?, 3)?;
    let turn_ms = raw_cached_turn_ms(&e, read_tokens, new, 3)?;
    drop(e);
    let _ = std::fs::remove_dir_all(h.join("storage/bench/kv-state"));
    let (cold2, _) = timed_ask(cfg, h, "bench", Some("resume"), "And what do I write down?")?;
    let sec = "restart";
    report.add(
        sec,
        "process start to first token, ~1,500-token session, re-evaluated",
        median(vec![cold, cold2]),
        "ms",
    );
    report.add(
        sec,
        "process start to first token, warm (saved state)",
        warm,
        "ms",
    );
    report.note(targets::WARM_PARLOR, warm);
    report.note(targets::WARM_FLOOR, floor_ms);
    report.add(
        sec,
        &format!(
            "llama.cpp floor: a fresh process reading the saved state, {new} new tokens after {read_tokens} cached (median)"
        ),
        floor_ms,
        "ms",
    );
    report.add(
        sec,
        &format!(
            "the floor's parts in one process: model load {load_ms:.0} ms + reading the state {read_ms:.0} ms + {new} new tokens {turn_ms:.0} ms"
        ),
        load_ms + read_ms + turn_ms,
        "ms",
    );
    report.add(sec, "saved state size", state_bytes as f64 / 1e6, "MB");
    report.add(sec, "peak memory (n_ctx 4096)", peak, "MiB");
    report.note(targets::PEAK_PARLOR, peak);
    Ok(())
}
