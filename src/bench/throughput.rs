//! Bench section `throughput`: the whole `Bot::turn` path against a raw llama-cpp-2 decode
//! loop on the same prompt.

use super::floor::raw_decode_loop;
use super::llama::{BenchError, LlamaBench, SYSTEM, engine, persona, timed_turn};
use super::{Report, median};
use crate::bot::Bot;
use crate::chat::Role;
use crate::engine::Sampling;
use crate::store::Store;

/// Whole path vs the raw decode loop on the same ~400-token prompt, 128 generated tokens.
pub(super) async fn section(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
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
