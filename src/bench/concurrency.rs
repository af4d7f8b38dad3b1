//! Bench section `concurrency`: aggregate generation and worst time to first token with
//! several chats at once, beside llama.cpp's own batched loop for the same prompts; and four
//! customers of a support bot at once, sharing its persona prefix.

use super::Report;
use super::floor::raw_batched_chats;
use super::llama::{BenchError, LlamaBench, SYSTEM, engine, persona};
use super::play::{chats_at_once, support_chats_at_once, support_persona};
use super::targets;
use crate::bot::Bot;
use crate::store::Store;

/// Aggregate generation speed and worst time to first token with 1, 2, 4 and 8 chats at once.
pub(super) async fn section(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 1024, 8)?;
    let raw_engine = e.clone();
    let store = Store::open(&dir.path().join("db"))?;
    let bot = Bot::new(persona(dir.path(), SYSTEM)?, e, store);
    let sec = "concurrency";
    for n in [1usize, 2, 4, 8] {
        let chats = chats_at_once(&bot, n).await?;
        // The ratio targets are for 4 chats.
        let keys = (n == 4).then_some((targets::CHATS4_AGG_PARLOR, targets::CHATS4_WORST_PARLOR));
        chats.add_rows(report, sec, &format!("{n} chats"), keys);
        if n == 4 {
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
    // Four customers of a support bot at once: the ~600-token acme-support persona prefix
    // that one earlier chat evaluated is shared, not evaluated again in each chat.
    let store = Store::open(&dir.path().join("support-db"))?;
    let bot = Bot::new(support_persona(dir.path())?, raw_engine, store);
    let chats = support_chats_at_once(&bot).await?;
    let keys = Some((targets::SUPPORT4_AGG_PARLOR, targets::SUPPORT4_WORST_PARLOR));
    chats.add_rows(report, sec, "4 support chats", keys);
    let prompt = chats.prompt_lens.iter().min().copied().unwrap_or(0);
    report.add(
        sec,
        &format!("4 support chats: prompt tokens taken from the cache (fewest, of {prompt})"),
        f64::from(chats.fewest_reused),
        "tok",
    );
    Ok(())
}
