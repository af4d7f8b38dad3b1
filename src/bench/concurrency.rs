//! Bench section `concurrency`: aggregate generation and worst time to first token with several
//! chats at once, beside a raw batched loop.

use super::Report;
use super::floor::raw_batched_chats;
use super::llama::{BenchError, LlamaBench, SYSTEM, engine, persona, timed_turn};
use crate::bot::Bot;
use crate::store::Store;
use std::time::Instant;

/// Aggregate generation speed and worst time to first token with 1, 2, 4 and 8 chats at once.
pub(super) async fn section(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
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
