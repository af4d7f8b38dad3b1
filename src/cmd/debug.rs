//! `parlor debug`: hidden helpers that integration tests run as real child processes (the
//! work is in [`crate::testkit::store_probe`]; built with the `testkit` feature).

use crate::cli::GlobalArgs;
use crate::testkit::store_probe::{self, WriterOptions};
use anyhow::Context;
use std::path::PathBuf;

/// Subcommands of `parlor debug`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Append messages in a loop; after each flush print `ack <session> <seq> <sha256>` per
    /// message (the kill test). Each message text is `<sha256 of body> <body>`, so a partial
    /// write is detectable even for messages never acknowledged.
    StoreWriter(StoreWriterArgs),
    /// Measure the store on a temporary database: appends/s with and without a flush each,
    /// and `recent_messages` on a short and a long session (it must not grow with history).
    StoreBench(StoreBenchArgs),
    /// Create sessions of a few messages and erase every other one, in a loop (the kill test
    /// of erasure). Prints `ack <session> <seq> <sha256>` per message after its flush,
    /// `erasing <session>` before an erase and `erased <session>` after it returned.
    StoreEraser(StoreEraserArgs),
}

/// Options of `parlor debug store-eraser`.
#[derive(Debug, clap::Args)]
pub struct StoreEraserArgs {
    /// Storage directory of the database.
    #[arg(long, value_name = "DIR")]
    pub storage: PathBuf,
    /// Seed of the message texts; also names the sessions of this run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Options of `parlor debug store-bench`.
#[derive(Debug, clap::Args)]
pub struct StoreBenchArgs {
    /// Messages in the long session.
    #[arg(long, default_value_t = 50_000)]
    pub history: u64,
    /// Appends measured with a flush after each.
    #[arg(long, default_value_t = 1_000)]
    pub flushed: u64,
}

/// Options of `parlor debug store-writer`.
#[derive(Debug, clap::Args)]
pub struct StoreWriterArgs {
    /// Storage directory of the database.
    #[arg(long, value_name = "DIR")]
    pub storage: PathBuf,
    /// Session to append to (created if missing).
    #[arg(long, default_value = "kill-test")]
    pub session: String,
    /// Seed of message sizes and batch sizes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop after this many messages (default: run until killed).
    #[arg(long)]
    pub count: Option<u64>,
    /// Largest number of messages appended between two flushes (each batch is 1..=N).
    #[arg(long, default_value_t = 3)]
    pub batch: u64,
}

/// Run `parlor debug`.
pub async fn run(_global: &GlobalArgs, command: Command) -> anyhow::Result<super::ExitCode> {
    match command {
        Command::StoreWriter(args) => {
            let options = WriterOptions {
                storage: args.storage,
                session: args.session,
                seed: args.seed,
                count: args.count,
                batch: args.batch,
            };
            tokio::task::spawn_blocking(move || store_probe::store_writer(options))
                .await
                .context("the store writer thread failed")??;
        }
        Command::StoreBench(args) => {
            tokio::task::spawn_blocking(move || {
                store_probe::store_bench(args.history, args.flushed)
            })
            .await
            .context("the store bench thread failed")??;
        }
        Command::StoreEraser(args) => {
            tokio::task::spawn_blocking(move || {
                store_probe::store_eraser(&args.storage, args.seed)
            })
            .await
            .context("the store eraser thread failed")??;
        }
    }
    Ok(0)
}
