//! The Telegram benchmark against the fake server, as an ignored test that prints its table:
//! `cargo test --test integration telegram::bench -- --ignored --nocapture`. Speed is reported,
//! never asserted; the test only checks that every reply arrived.

use super::bot;
use crate::common::model_path;
use parlor::bench::telegram::{bench_config, bench_fake_server};
use parlor::engine::{EngineSettings, LlamaEngine, ScriptedEngine};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_telegram_against_the_fake_server() {
    let scripted = ScriptedEngine::new([]).with_step(Duration::from_millis(10));
    let (_d1, bot1) = bot(Arc::new(scripted));
    let report = bench_fake_server(bot1, bench_config(), &[1, 4, 16], 3)
        .await
        .unwrap();
    println!(
        "scripted engine (10 ms per word), production pacing:\n{}",
        report.to_markdown()
    );
    assert!(report.rows.iter().all(|r| r.replies == r.chats * 3));

    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 4096;
    s.slots = 4;
    s.threads = Some(2);
    let engine = Arc::new(LlamaEngine::load(s).expect("default model loads"));
    let (_d2, bot2) = bot(engine);
    let report = bench_fake_server(bot2, bench_config(), &[1, 4, 16], 3)
        .await
        .unwrap();
    println!(
        "SmolLM2-135M (4 slots, 2 threads), production pacing:\n{}",
        report.to_markdown()
    );
    // Not asserted: on a loaded machine some replies may miss the benchmark's deadline; the
    // table shows how many arrived.
}
