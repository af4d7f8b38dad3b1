//! Bench section `turns`: time to first token across the turns of one session, beside the
//! llama.cpp floor for the same new tokens after the same cached prefix.

use super::Report;
use super::floor::{PairedFloor, QUIET};
use super::llama::{BenchError, LlamaBench, SYSTEM, engine, persona};
use super::median;
use super::play::{play_session, plays};
use super::targets::{self, PAUSES, pause_label};
use crate::bot::Bot;
use crate::store::Store;

/// Time to first token on turns 1, 2, 10 and 30 of one session (48-token replies). The whole
/// session is played several times (greedy: the same tokens each time) and each turn reports
/// its median, since one turn's first token takes only a few hundred milliseconds and a
/// single sample moves with whatever else the machine does. Played twice over: back to back
/// (the next message sent the moment a reply ends) and with a 0.3 s pause before each message
/// (a person reading and typing takes longer), which the engine uses to pre-fill the turn
/// boundary. Each way has its own llama.cpp floor, for the tokens that way evaluated after the
/// same pause.
pub(super) async fn section(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 4096, 1)?;
    let store = Store::open(&dir.path().join("db"))?;
    let bot_engine = e.clone();
    let bot = Bot::new(persona(dir.path(), SYSTEM)?, e, store);
    let n = if cfg.quick { 10 } else { 30 };
    let plays = plays(cfg.quick);
    let sec = "turns";
    for pause in PAUSES {
        let how = pause_label(pause);
        // The first play says which tokens each turn evaluates; the floors for turns 2 and n
        // (llama.cpp alone, each in a context of its own holding the same number of cached
        // tokens) are then sampled between the plays, so both sides of a ratio sample the same
        // moments of a shared VM (see [`PairedFloor`]; one floor block against three plays put
        // the same code at 0.92x and 1.37x its floor in two runs).
        let first = play_session(&bot, n, 1, pause).await?;
        let evaluated = first.evaluated;
        let mut samples: Vec<Vec<f64>> = first.ttft_ms.into_iter().map(|t| vec![t]).collect();
        let mut floor_turns = Vec::new();
        for turn in [2, n] {
            let (new, total) = evaluated[turn - 1];
            let (cached, new) = ((total - new) as usize, new as usize);
            let floor = PairedFloor::start(bot_engine.clone(), cached, new).await?;
            floor_turns.push((turn, cached, new, floor, Vec::new()));
        }
        for play in 1..=plays {
            // After the engine's own work on the last reply (pre-fill, idle save).
            tokio::time::sleep(QUIET).await;
            for (_, _, _, floor, times) in &mut floor_turns {
                for _ in 0..2 {
                    times.push(floor.sample(pause).await?);
                }
            }
            if play < plays {
                let more = play_session(&bot, n, 1, pause).await?;
                for (s, t) in samples.iter_mut().zip(more.ttft_ms) {
                    s.push(t);
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
            report.add(
                sec,
                &format!("time to first token, turn {turn}, {how} (median of {plays})"),
                ttft[turn - 1],
                "ms",
            );
        }
        // What llama.cpp itself needs for the same turns' new tokens with everything before
        // them cached, after the same pause: the floor under any server's time to first token
        // on this machine. Per pause: back to back a turn also evaluates the turn boundary,
        // which a pause pre-fills; and the first decode after an idle pause is slower, in
        // llama.cpp alone too (measured 2026-12-03 on an AMD EPYC VM: 92-115 ms back to back,
        // 107-134 ms after 0.3 s idle, 17 tokens after 2,035).
        let mut floors = Vec::new();
        for (turn, cached, new, floor, times) in floor_turns {
            drop(floor);
            let count = times.len();
            let ms = median(times);
            report.add(
                sec,
                &format!(
                    "llama.cpp floor: turn {turn} first token, {how} ({new} new after {cached} cached tokens, raw loop, median of {count} between the plays)"
                ),
                ms,
                "ms",
            );
            floors.push(ms);
        }
        report.note(&targets::turns_key("parlor", pause), ttft[n - 1]);
        report.note(&targets::turns_floor_key(pause), floors[1]);
        report.add(
            sec,
            &format!("turn {n} / turn 2, {how}"),
            ttft[n - 1] / ttft[1],
            "x",
        );
        report.add(
            sec,
            &format!("llama.cpp floor: turn {n} / turn 2, {how}"),
            floors[1] / floors[0],
            "x",
        );
    }
    Ok(())
}
