//! Benchmark against the fake Bot API server: time from an update to the first visible text
//! and to the final message, and replies per minute with several chats active at once. Uses
//! the production pacing defaults unless the caller passes another config, so the numbers show
//! what a user sees, pacing included.

use super::Report;
use super::llama::{BenchError, LlamaBench, SYSTEM, engine, persona};
use crate::bot::Bot;
use crate::store::Store;
use crate::telegram::api::Token;
use crate::telegram::config::{RateLimit, TelegramConfig};
use crate::telegram::state::forget_updates;
use crate::telegram::{Service, TelegramError};
use crate::testkit::fake_telegram::{Call, FakeBotApi};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Results of one chat count.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// Chats active at once.
    pub chats: usize,
    /// Replies measured.
    pub replies: usize,
    /// Update -> first visible text (draft or first message), median, ms.
    pub first_text_ms_p50: f64,
    /// Same, worst, ms.
    pub first_text_ms_max: f64,
    /// Update -> final rendered message, median, ms.
    pub final_ms_p50: f64,
    /// Same, worst, ms.
    pub final_ms_max: f64,
    /// Replies finished per minute over the whole run.
    pub replies_per_minute: f64,
}

/// The benchmark report.
#[derive(Debug, Clone, Serialize)]
pub struct TelegramBenchReport {
    /// One row per chat count.
    pub rows: Vec<BenchRow>,
}

impl TelegramBenchReport {
    /// A Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from(
            "| chats | replies | first text p50 ms | first text max ms | final p50 ms | final max ms | replies/min |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |\n",
                r.chats,
                r.replies,
                r.first_text_ms_p50,
                r.first_text_ms_max,
                r.final_ms_p50,
                r.final_ms_max,
                r.replies_per_minute
            ));
        }
        s
    }
}

/// The config the benchmark uses by default: production pacing, no per-user rate limit.
pub fn bench_config() -> TelegramConfig {
    TelegramConfig {
        rate_limit: RateLimit {
            messages: 0,
            ..Default::default()
        },
        poll_timeout_secs: 5,
        ..Default::default()
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Run `replies_per_chat` questions in each of `chats` chats at once, for each chat count,
/// against a fresh fake server. `bot` should use a throw-away store (the benchmark writes chat
/// state into it).
pub async fn bench_fake_server(
    bot: Bot,
    cfg: TelegramConfig,
    chat_counts: &[usize],
    replies_per_chat: usize,
) -> Result<TelegramBenchReport, TelegramError> {
    let mut rows = Vec::new();
    for (run, &n) in chat_counts.iter().enumerate() {
        forget_updates(&bot.front_state(crate::telegram::state::SPACE))?;
        let fake = FakeBotApi::start("1:bench")
            .await
            .map_err(|source| TelegramError::Listen {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        let svc = Service::new(bot.clone(), cfg.clone(), &fake.url(), Token::new("1:bench"))?;
        let stop = CancellationToken::new();
        let runner = tokio::spawn({
            let svc = svc.clone();
            let stop = stop.clone();
            async move { svc.run(stop).await }
        });
        let fake = std::sync::Arc::new(fake);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..n {
            let user = 1_000_000 * (run as i64 + 1) + c as i64 + 1;
            let fake = fake.clone();
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                for i in 0..replies_per_chat {
                    let t0 = Instant::now();
                    fake.push_text(user, &format!("Question {i}: what are your opening hours?"));
                    let is_final =
                        |c: &Call| c.chat() == Some(user) && c.at >= t0 && c.ok && c.is_html();
                    let Ok(calls) = fake
                        .wait_for(Duration::from_secs(300), |cs| cs.iter().any(is_final))
                        .await
                    else {
                        break;
                    };
                    let first = calls
                        .iter()
                        .find(|c| {
                            c.chat() == Some(user)
                                && c.at >= t0
                                && c.ok
                                && matches!(
                                    c.method.as_str(),
                                    "sendmessagedraft" | "sendmessage" | "editmessagetext"
                                )
                        })
                        .map(|c| c.at);
                    let fin = calls.iter().find(|c| is_final(c)).map(|c| c.at);
                    if let (Some(f), Some(z)) = (first, fin) {
                        samples.push((
                            f.duration_since(t0).as_secs_f64() * 1000.0,
                            z.duration_since(t0).as_secs_f64() * 1000.0,
                        ));
                    }
                }
                samples
            }));
        }
        let mut first = Vec::new();
        let mut fin = Vec::new();
        for t in tasks {
            for (f, z) in t.await.unwrap_or_default() {
                first.push(f);
                fin.push(z);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        stop.cancel();
        let _ = runner.await;
        let replies = fin.len();
        rows.push(BenchRow {
            chats: n,
            replies,
            first_text_ms_p50: percentile(&mut first, 0.5),
            first_text_ms_max: percentile(&mut first, 1.0),
            final_ms_p50: percentile(&mut fin, 0.5),
            final_ms_max: percentile(&mut fin, 1.0),
            replies_per_minute: if elapsed > 0.0 {
                replies as f64 * 60.0 / elapsed
            } else {
                0.0
            },
        });
    }
    Ok(TelegramBenchReport { rows })
}

/// Telegram against the fake Bot API server (production pacing): update to first visible text
/// and to the final message, replies per minute with 1, 4 and 16 chats, real model (4 slots).
pub async fn section(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let e = engine(cfg, 2048, 4)?;
    let store = Store::open(&dir.path().join("db"))?;
    let bot = Bot::new(persona(dir.path(), SYSTEM)?, e, store);
    let (counts, per_chat): (&[usize], usize) = if cfg.quick {
        (&[1, 4], 1)
    } else {
        (&[1, 4, 16], 2)
    };
    let result = bench_fake_server(bot, bench_config(), counts, per_chat)
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
