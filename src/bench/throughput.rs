//! Bench section `throughput`: the whole `Bot::turn` path against a raw llama-cpp-2 decode
//! loop on the same prompt, and what the whole path costs per generated token.

use super::floor::raw_decode_loop;
use super::llama::{BenchError, LlamaBench, SYSTEM, engine, persona, timed_turn};
use super::{Report, median};
use crate::bot::Bot;
use crate::chat::{ChatMessage, Role};
use crate::engine::Sampling;
use crate::store::Store;

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
pub(super) async fn section(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 4096, 1)?;
    let (system, question) = throughput_prompt();
    let msgs = vec![
        ChatMessage::new(Role::System, system.clone()),
        ChatMessage::new(Role::User, question),
    ];
    let tokens = e.tokenize_prompt(&msgs)?;
    let reps = if cfg.quick { 1 } else { 5 };
    let store = Store::open(&dir.path().join("db"))?;
    let bot = Bot::new(persona(dir.path(), &system)?, e.clone(), store);
    let (mut raw_p, mut raw_g) = (Vec::new(), Vec::new());
    let (mut whole_p, mut whole_g, mut to_done) = (Vec::new(), Vec::new(), Vec::new());
    // One raw run next to one whole-path run, alternating which goes first; the ratio is the
    // median of each pair's, so a slow patch of a shared VM (runs drifted 91 -> 65 tok/s within
    // one section) slows both sides of a pair rather than one side of the medians.
    let (mut ratios, mut overheads) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let (raw_n, whole_n) = (raw_g.len(), whole_g.len());
        for side in [rep % 2, 1 - rep % 2] {
            if side == 0 {
                let e2 = e.clone();
                let t = tokens.clone();
                let raw = tokio::task::spawn_blocking(move || {
                    raw_decode_loop(&e2, &t, 128, &Sampling::greedy())
                })
                .await
                .map_err(|err| BenchError::Turn(err.to_string()))??;
                raw_p.push(raw.prompt_tps);
                raw_g.push(raw.generation_tps);
                continue;
            }
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
        if let (Some(r), Some(w)) = (raw_g.get(raw_n), whole_g.get(whole_n)) {
            ratios.push(w / r.max(1e-9));
            overheads.push((1.0 / w.max(1e-9) - 1.0 / r.max(1e-9)) * 1e6);
        }
    }
    let sec = "throughput";
    report.add(
        sec,
        &format!(
            "prompt tokens/s, raw llama-cpp-2 loop ({} tokens)",
            tokens.len()
        ),
        median(raw_p),
        "tok/s",
    );
    report.add(
        sec,
        "prompt tokens/s, whole Bot::turn path (to first token; persona prefix cached)",
        median(whole_p),
        "tok/s",
    );
    report.add(sec, "generation tokens/s, raw loop", median(raw_g), "tok/s");
    report.add(
        sec,
        "generation tokens/s, whole path",
        median(whole_g),
        "tok/s",
    );
    report.add(
        sec,
        "overhead per generated token (whole path minus raw loop, median of pairs)",
        median(overheads),
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
        "generation, whole path / raw (median of paired runs)",
        median(ratios),
        "x",
        0.97,
        true,
    );
    Ok(())
}
