//! The restart section of `parlor bench`: a fresh `parlor ask` process continuing a session of
//! ~1,500 tokens, with its saved KV state (warm) and without (re-evaluated), against the
//! llama.cpp floor (model load plus the new message after the cached conversation); peak
//! memory of those processes.

use super::Report;
use super::floor::raw_cached_turn_ms;
use super::llama::{BenchError, LlamaBench, engine};
use super::median;
use super::play::{SYSTEM, persona};
use super::targets;
use crate::chat::{ChatMessage, Role};
use crate::store::{Store, StoredMessage};
use std::io::Read;
use std::path::Path;
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
    let start = Instant::now();
    let mut cmd = Command::new(&cfg.parlor_bin);
    cmd.arg("--home")
        .arg(home)
        .args(["ask", "--bot", bot, "--max-tokens", "8"]);
    if let Some(s) = session {
        cmd.args(["--session", s]);
    }
    let mut child = cmd
        .arg(text)
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
    // Warm starts (each saves the state again at exit for the next), each next to one timed
    // load of the floor's model and context in this process, alternating which goes first:
    // both sides of the ratio sample the same moments of a shared VM (one floor load against
    // three warm starts measured 1.07x and 1.79x in two runs of one build).
    let questions = [
        "Thanks. What do I keep on the roof?",
        "When do I count the hives?",
        "Where is my flat?",
        "What do I clean every spring?",
        "What do I write down?",
    ];
    let rounds = if cfg.quick { 1 } else { questions.len() };
    let (mut warm, mut loads) = (Vec::new(), Vec::new());
    let mut peak = 0.0f64;
    for (round, q) in questions.iter().take(rounds).enumerate() {
        let load = || -> Result<f64, BenchError> {
            // Loading the model and creating a context of the same size.
            let at = Instant::now();
            let e = engine(cfg, 4096, 1)?;
            let ms = at.elapsed().as_secs_f64() * 1000.0;
            drop(e);
            Ok(ms)
        };
        let ask_first = round.is_multiple_of(2);
        if !ask_first {
            loads.push(load()?);
        }
        let (ms, p) = timed_ask(cfg, h, "bench", Some("resume"), q)?;
        warm.push(ms);
        peak = peak.max(p);
        if ask_first {
            loads.push(load()?);
        }
    }
    let warm = median(warm);
    let load_ms = median(loads);
    // The floor under a warm start, in this process with llama.cpp alone: loading the model
    // and creating a context of the same size (above), then evaluating a new message's tokens
    // after the conversation's (all cached, as a restored state is).
    let e = engine(cfg, 4096, 1)?;
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
    report.note(targets::WARM_FLOOR, load_ms + turn_ms);
    report.add(
        sec,
        &format!(
            "llama.cpp floor: model load {load_ms:.0} ms + {new} new tokens after {cached} cached {turn_ms:.0} ms"
        ),
        load_ms + turn_ms,
        "ms",
    );
    report.add(sec, "saved state size", state_bytes as f64 / 1e6, "MB");
    report.add(sec, "peak memory (n_ctx 4096)", peak, "MiB");
    report.note(targets::PEAK_PARLOR, peak);
    Ok(())
}
