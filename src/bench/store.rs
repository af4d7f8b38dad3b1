//! The `store` section: what sealing every message with its conversation's key costs. Each
//! measure runs twice in the same process on the same disk, sample by sample in alternation:
//! through [`Store`] (sealed, as parlor stores now), and through the record path parlor used
//! before encryption (plain JSON in the same sled transaction shape), kept here only as the
//! baseline. Target: sealed within 10% of plain.

use super::{Report, median};
use crate::chat::Role;
use crate::store::{Store, StoredMessage};
use std::time::Instant;

/// Messages in the large conversation (the "100,000-message database").
const HISTORY: u64 = 100_000;
/// Messages a turn loads (`recent_messages`).
const RECENT: usize = 50;

/// Run the section into `report`.
pub fn run_store_section(report: &mut Report, quick: bool) -> Result<(), String> {
    if quick {
        measure(report, 100, 20_000, 200)
    } else {
        measure(report, 500, HISTORY, 2_000)
    }
}

/// `appends` timed appends (each flushed), a conversation of `history` messages, `reads` timed
/// reads of its last [`RECENT`].
fn measure(report: &mut Report, appends: u64, history: u64, reads: u64) -> Result<(), String> {
    let text = |i: u64| {
        format!(
            "{i} my router drops the connection every evening; {}",
            "x".repeat(160)
        )
    };
    let err = |e: &dyn std::fmt::Display| e.to_string();

    // Both stores side by side: the real one (sealed) and the record path before encryption
    // (plain), each with a short and a long conversation. Every sample of one is taken next to
    // a sample of the other (alternating which goes first), so a slow patch of a shared VM
    // slows both and leaves the ratio alone; measured one after the other, three runs on one
    // VM gave 0.76-1.49x for the same build.
    let dir = tempfile::tempdir().map_err(|e| err(&e))?;
    let store = Store::open(&dir.path().join("sealed")).map_err(|e| err(&e))?;
    let plain = plain::Db::open(&dir.path().join("plain")).map_err(|e| err(&e))?;
    let short = store
        .create_session("short", "bench", "none")
        .map_err(|e| err(&e))?
        .id;
    let long = store
        .create_session("long", "bench", "none")
        .map_err(|e| err(&e))?
        .id;
    for i in 0..history {
        store
            .append_message(long, StoredMessage::new(Role::User, text(i)))
            .map_err(|e| err(&e))?;
        plain.append(2, &text(i)).map_err(|e| err(&e))?;
    }
    store.flush().map_err(|e| err(&e))?;
    plain.db.flush().map_err(|e| err(&e))?;
    let (mut sealed_append, mut plain_append) = (Vec::new(), Vec::new());
    for i in 0..appends {
        let sealed = || -> Result<f64, String> {
            let t = Instant::now();
            store
                .append_message(short, StoredMessage::new(Role::User, text(i)))
                .and_then(|_| store.flush())
                .map_err(|e| err(&e))?;
            Ok(t.elapsed().as_secs_f64() * 1e6)
        };
        let old = || -> Result<f64, String> {
            let t = Instant::now();
            plain.append(1, &text(i))?;
            plain.db.flush().map_err(|e| err(&e))?;
            Ok(t.elapsed().as_secs_f64() * 1e6)
        };
        let (s, p) = alternating(i, sealed, old)?;
        sealed_append.push(s);
        plain_append.push(p);
    }
    let (mut sealed_recent, mut plain_recent) = (Vec::new(), Vec::new());
    for i in 0..reads {
        let sealed = || -> Result<f64, String> {
            let t = Instant::now();
            let got = store.recent_messages(long, RECENT).map_err(|e| err(&e))?;
            let us = t.elapsed().as_secs_f64() * 1e6;
            assert_eq!(got.len(), RECENT);
            Ok(us)
        };
        let old = || -> Result<f64, String> {
            let t = Instant::now();
            let got = plain.recent(2, RECENT)?;
            let us = t.elapsed().as_secs_f64() * 1e6;
            assert_eq!(got, RECENT);
            Ok(us)
        };
        let (s, p) = alternating(i, sealed, old)?;
        sealed_recent.push(s);
        plain_recent.push(p);
    }
    drop(store);

    let sec = "store";
    let (sa, pa) = (median(sealed_append), median(plain_append));
    let (sr, pr) = (median(sealed_recent), median(plain_recent));
    report.add(
        sec,
        "append + flush, plain records (before, median)",
        pa,
        "us",
    );
    report.add(sec, "append + flush, sealed records (median)", sa, "us");
    report.check(
        sec,
        "append + flush, sealed / plain",
        sa / pa,
        "x",
        1.10,
        false,
    );
    let n = crate::bench::fmt_num(history as f64);
    report.add(
        sec,
        &format!("last {RECENT} of {n} messages, plain (before, median)"),
        pr,
        "us",
    );
    report.add(
        sec,
        &format!("last {RECENT} of {n} messages, sealed (median)"),
        sr,
        "us",
    );
    report.check(
        sec,
        &format!("last {RECENT} of {n} messages, sealed / plain"),
        sr / pr,
        "x",
        1.10,
        false,
    );
    Ok(())
}

/// Run `a` and `b` once each, `a` first in even rounds and `b` first in odd ones; their results
/// in (a, b) order.
fn alternating<T, E>(
    round: u64,
    a: impl FnOnce() -> Result<T, E>,
    b: impl FnOnce() -> Result<T, E>,
) -> Result<(T, T), E> {
    if round.is_multiple_of(2) {
        let x = a()?;
        Ok((x, b()?))
    } else {
        let y = b()?;
        Ok((a()?, y))
    }
}

/// The message path before encryption: plain JSON records, the session's counters and the
/// message written in one sled transaction, the last messages read by a reverse prefix scan.
mod plain {
    use serde_json::{Value, json};
    use sled::transaction::{ConflictableTransactionError, Transactional};
    use std::path::Path;

    pub struct Db {
        pub db: sled::Db,
        sessions: sled::Tree,
        messages: sled::Tree,
    }

    /// A message record as the store kept it before encryption.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // decoded for the measurement, not read
    struct OldMessage {
        v: u32,
        role: crate::chat::Role,
        text: String,
        time: i64,
        tokens: Option<u32>,
        interrupted: bool,
        source: crate::chat::ReplySource,
        stats: Option<crate::chat::TurnStats>,
    }

    impl Db {
        pub fn open(dir: &Path) -> sled::Result<Self> {
            let db = sled::Config::new()
                .path(dir.join("sled"))
                .cache_capacity(64 * 1024 * 1024)
                .open()?;
            let (sessions, messages) = (db.open_tree("sessions")?, db.open_tree("messages")?);
            for id in [1u64, 2] {
                let rec = json!({"v":1,"name":format!("s{id}"),"persona":"bench","model":"none","created":0,"updated":0,"message_count":0,"next_seq":1});
                sessions.insert(
                    id.to_be_bytes(),
                    serde_json::to_vec(&rec).unwrap_or_default(),
                )?;
            }
            Ok(Self {
                db,
                sessions,
                messages,
            })
        }

        pub fn append(&self, id: u64, text: &str) -> Result<(), String> {
            let now = chrono::Utc::now().timestamp_millis();
            let msg = serde_json::to_vec(&json!({"v":1,"role":"user","text":text,"time":now,"tokens":null,"interrupted":false,"source":{"kind":"model"},"stats":null}))
                .map_err(|e| e.to_string())?;
            (&self.sessions, &self.messages)
                .transaction(|(sessions, messages)| {
                    let raw = sessions.get(id.to_be_bytes())?.unwrap_or_default();
                    let mut rec: Value = serde_json::from_slice(&raw)
                        .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                    let seq = rec["next_seq"].as_u64().unwrap_or(1);
                    rec["next_seq"] = json!(seq + 1);
                    rec["message_count"] = json!(rec["message_count"].as_u64().unwrap_or(0) + 1);
                    rec["updated"] = json!(now);
                    let mut key = id.to_be_bytes().to_vec();
                    key.extend_from_slice(&seq.to_be_bytes());
                    messages.insert(key, msg.as_slice())?;
                    let rec = serde_json::to_vec(&rec).unwrap_or_default();
                    sessions.insert(&id.to_be_bytes(), rec)?;
                    Ok(())
                })
                .map_err(|e| format!("{e:?}"))
        }

        pub fn recent(&self, id: u64, n: usize) -> Result<usize, String> {
            let mut out = Vec::with_capacity(n);
            for item in self.messages.scan_prefix(id.to_be_bytes()).rev().take(n) {
                let (_, v) = item.map_err(|e| e.to_string())?;
                // Typed, as the store decoded its records (a `Value` tree would be slower and
                // flatter the sealed path).
                let m: OldMessage = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                out.push(m);
            }
            out.reverse();
            Ok(out.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Report, measure};

    /// Both record paths run side by side and every row comes out, the two ratios with their
    /// targets (the numbers themselves are the bench's business).
    #[test]
    fn the_section_measures_both_record_paths_and_checks_both_ratios() {
        let mut report = Report::default();
        measure(&mut report, 4, 120, 6).unwrap();
        let metrics: Vec<&str> = report.rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(report.rows.len(), 6, "{metrics:?}");
        assert!(report.rows.iter().all(|r| r.value > 0.0), "{metrics:?}");
        let checked: Vec<&str> = report
            .rows
            .iter()
            .filter(|r| r.pass.is_some())
            .map(|r| r.metric.as_str())
            .collect();
        assert_eq!(
            checked,
            [
                "append + flush, sealed / plain",
                "last 50 of 120 messages, sealed / plain"
            ]
        );
    }
}
