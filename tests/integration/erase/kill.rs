//! SIGKILL during erasure: a child creates sessions and erases every other one in a loop; it is
//! killed at random points (often right after it announced an erase). After each kill every
//! session is whole (all its acknowledged messages) or gone (no record, no message), only a
//! session whose erase began may be gone, and one whose erase returned is gone.

use crate::common::parlor_bin;
use parlor::chat::SessionId;
use parlor::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const ROUNDS: u64 = 8;

#[derive(Default)]
struct Seen {
    acked: BTreeMap<u64, Vec<(u64, String)>>,
    erasing: BTreeSet<u64>,
    erased: BTreeSet<u64>,
}

#[test]
fn sigkill_during_erase_leaves_each_conversation_whole_or_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0xe7a5e);
    let mut seen = Seen::default();
    let mut killed_mid_erase = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(parlor_bin())
            .args(["debug", "store-eraser", "--storage"])
            .arg(dir.path())
            .args(["--seed", &round.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stop_after = rng.random_range(1..=6u32); // erases announced before the kill
        let mut announced = 0;
        loop {
            let line = lines.next().expect("the eraser ended early").unwrap();
            let parts: Vec<&str> = line.split(' ').collect();
            let id: u64 = parts[1].parse().unwrap();
            match parts[0] {
                "ack" => seen
                    .acked
                    .entry(id)
                    .or_default()
                    .push((parts[2].parse().unwrap(), parts[3].to_string())),
                "erasing" => {
                    seen.erasing.insert(id);
                    announced += 1;
                    if announced == stop_after {
                        killed_mid_erase += 1;
                        break;
                    }
                }
                "erased" => {
                    seen.erased.insert(id);
                }
                other => panic!("unexpected eraser output {other:?}"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        verify(&Store::open(dir.path()).unwrap(), &seen);
    }
    assert_eq!(killed_mid_erase, ROUNDS);
    assert!(
        seen.erased.len() >= ROUNDS as usize,
        "erases completed: {}",
        seen.erased.len()
    );
}

fn verify(store: &Store, seen: &Seen) {
    for (&id, acks) in &seen.acked {
        let sid = SessionId(id);
        let info = store.session(sid).unwrap();
        let msgs = store.messages(sid).unwrap();
        match info {
            None => {
                assert!(
                    seen.erasing.contains(&id),
                    "session {id} lost without an erase"
                );
                assert!(
                    msgs.is_empty(),
                    "session {id} half erased: {} messages left",
                    msgs.len()
                );
            }
            Some(info) => {
                assert!(
                    !seen.erased.contains(&id),
                    "session {id} back after its erase returned"
                );
                assert_eq!(info.message_count, msgs.len() as u64);
                assert_eq!(msgs.len(), acks.len(), "session {id} is whole");
                for (m, (seq, sha)) in msgs.iter().zip(acks) {
                    assert_eq!(m.seq, *seq);
                    assert_eq!(&hex::encode(Sha256::digest(m.text.as_bytes())), sha);
                }
            }
        }
    }
}
