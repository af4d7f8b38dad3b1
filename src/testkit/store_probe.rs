//! `parlor debug` helpers that integration tests run as real child processes: a store writer
//! that acknowledges only what is durable (the kill test) and a store micro-benchmark.

use crate::chat::Role;
use crate::store::{Store, StoredMessage};
use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;

/// What `store_writer` writes.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Storage directory of the database.
    pub storage: PathBuf,
    /// Session to append to (created if missing).
    pub session: String,
    /// Seed of message sizes and batch sizes.
    pub seed: u64,
    /// Stop after this many messages (`None`: run until killed).
    pub count: Option<u64>,
    /// Largest number of messages appended between two flushes (each batch is 1..=N).
    pub batch: u64,
}

/// Append messages in a loop; after each flush print `ack <session> <seq> <sha256>` per
/// message. Each message text is `<sha256 of body> <body>`, so a partial write is detectable
/// even for messages never acknowledged.
pub fn store_writer(args: WriterOptions) -> anyhow::Result<()> {
    let store = Store::open(&args.storage)?;
    let session = match store.find_session(&args.session)? {
        Some(s) => s,
        None => store.create_session(&args.session, "debug", "none")?,
    };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut out = std::io::stdout().lock();
    let started = std::time::Instant::now();
    let (mut written, mut flushes) = (0u64, 0u64);
    let limit = args.count.unwrap_or(u64::MAX);
    let mut acks = Vec::new();
    while written < limit {
        let batch = rng.random_range(1..=args.batch.max(1)).min(limit - written);
        acks.clear();
        for _ in 0..batch {
            let role = if written % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            let mut msg = StoredMessage::new(role, checked_text(&mut rng));
            msg.interrupted = rng.random_bool(0.1);
            let sha = hex::encode(Sha256::digest(msg.text.as_bytes()));
            let stored = store.append_message(session.id, msg)?;
            acks.push((stored.seq, sha));
            written += 1;
        }
        // The point of the test: nothing is acknowledged before it is durable.
        store.flush()?;
        flushes += 1;
        for (seq, sha) in &acks {
            writeln!(out, "ack {} {seq} {sha}", session.id)?;
        }
        out.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {written} messages with {flushes} flushes in {secs:.3} s: {:.0} messages/s, {:.0} flushes/s",
        written as f64 / secs,
        flushes as f64 / secs
    );
    Ok(())
}

/// Measure the store on a temporary database: appends/s with and without a flush each (the
/// flushed run makes `flushed` appends), and `recent_messages` on a short and a long session of
/// `history` messages (it must not grow with history). Prints a Markdown table.
pub fn store_bench(history: u64, flushed: u64) -> anyhow::Result<()> {
    use std::time::Instant;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let store = Store::open(dir.path())?;
    let text = "x".repeat(200);
    let msg = |i: u64| StoredMessage::new(Role::User, format!("{i} {text}"));
    let short = store.create_session("short", "bench", "none")?.id;
    let long = store.create_session("long", "bench", "none")?.id;
    let t = Instant::now();
    for i in 0..flushed {
        store.append_message(short, msg(i))?;
        store.flush()?;
    }
    let flushed = flushed as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..history {
        store.append_message(long, msg(i))?;
    }
    store.flush()?;
    let unflushed = history as f64 / t.elapsed().as_secs_f64();
    let recent = |id| -> anyhow::Result<f64> {
        const REPS: u32 = 200;
        let t = Instant::now();
        for _ in 0..REPS {
            store.recent_messages(id, 20)?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / f64::from(REPS))
    };
    let (recent_short, recent_long) = (recent(short)?, recent(long)?);
    let t = Instant::now();
    let all = store.messages(long)?.len();
    let scan_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("| measure (200-byte messages) | value |");
    println!("|---|---|");
    println!("| appends/s, flush after each | {flushed:.0} |");
    println!("| appends/s, no flush | {unflushed:.0} |");
    println!("| recent_messages(20), {flushed} messages | {recent_short:.0} us |");
    println!("| recent_messages(20), {history} messages | {recent_long:.0} us |");
    println!("| messages(), {all} messages | {scan_ms:.0} ms |");
    Ok(())
}

/// A message text `<sha256 of body hex> <body>`: mostly short, some several KB, some
/// multi-byte characters.
/// Create sessions of three messages and erase every other one, forever (until killed).
/// Prints `ack <session> <seq> <sha256>` per message after its flush, `erasing <session>`
/// before an erase and `erased <session>` after it returned.
pub fn store_eraser(storage: &std::path::Path, seed: u64) -> anyhow::Result<()> {
    let store = Store::open(storage)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = std::io::stdout().lock();
    for round in 0u64.. {
        let session = store.create_session(&format!("e{seed}-{round}"), "debug", "none")?;
        let mut acks = Vec::new();
        for i in 0..3 {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            let msg = StoredMessage::new(role, checked_text(&mut rng));
            let sha = hex::encode(Sha256::digest(msg.text.as_bytes()));
            acks.push((store.append_message(session.id, msg)?.seq, sha));
        }
        store.flush()?;
        for (seq, sha) in &acks {
            writeln!(out, "ack {} {seq} {sha}", session.id)?;
        }
        out.flush()?;
        if round % 2 == 1 {
            writeln!(out, "erasing {}", session.id)?;
            out.flush()?;
            store.erase_session(session.id)?;
            writeln!(out, "erased {}", session.id)?;
            out.flush()?;
        }
    }
    Ok(())
}

fn checked_text(rng: &mut StdRng) -> String {
    const PIECES: [&str; 8] = ["a", "b", "z", " ", "\n", "é", "✓", "🦀"];
    let len = match rng.random_range(0..100) {
        0..70 => rng.random_range(1..200),
        70..95 => rng.random_range(200..4_000),
        _ => rng.random_range(4_000..20_000),
    };
    let body: String = (0..len)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect();
    format!("{} {body}", hex::encode(Sha256::digest(body.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_texts_carry_their_own_hash() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let text = checked_text(&mut rng);
            let (sha, body) = text.split_once(' ').unwrap();
            assert_eq!(sha, hex::encode(Sha256::digest(body.as_bytes())));
            assert!(!body.is_empty());
        }
    }
}
