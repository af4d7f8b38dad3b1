//! SIGKILL test: a child process acknowledges messages only after they are flushed; the test
//! kills it after a random number of acknowledgements, round after round on one database, and
//! checks that every acknowledged message survived, in order, none partial.

use crate::common::parlor_bin;
use parlor::chat::Role;
use parlor::store::{Store, StoredMessage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const ROUNDS: u64 = 12;

/// One acknowledgement line: `ack <session> <seq> <sha256>`.
#[derive(Debug, Clone, PartialEq)]
struct Ack {
    session: u64,
    seq: u64,
    sha: String,
}

fn parse_ack(line: &str) -> Ack {
    let parts: Vec<&str> = line.split(' ').collect();
    assert!(
        parts.len() == 4 && parts[0] == "ack",
        "unexpected writer output {line:?}"
    );
    Ack {
        session: parts[1].parse().expect("session id"),
        seq: parts[2].parse().expect("seq"),
        sha: parts[3].to_string(),
    }
}

fn spawn_writer(dir: &Path, seed: u64) -> Child {
    Command::new(parlor_bin())
        .args(["debug", "store-writer", "--storage"])
        .arg(dir)
        .args(["--seed", &seed.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start parlor debug store-writer")
}

/// Read `n` acknowledgements; panics with the writer's stderr if it ends first.
fn read_acks(child: &mut Child, n: usize) -> Vec<Ack> {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acks = Vec::with_capacity(n);
    // The BufReader may read ahead past the n-th line; those extra acks are simply not
    // counted as acknowledged by this test (a stricter reading, never a looser one).
    while acks.len() < n {
        match lines.next() {
            Some(Ok(line)) => acks.push(parse_ack(&line)),
            other => {
                let mut err = String::new();
                child.kill().ok();
                child.stderr.as_mut().map(|e| e.read_to_string(&mut err));
                panic!(
                    "the writer stopped after {} acks ({other:?}): {err}",
                    acks.len()
                );
            }
        }
    }
    acks
}

/// Every acknowledged message is stored with the acknowledged content, in acknowledgement
/// order, and every stored message (acknowledged or not) is whole.
fn verify(dir: &Path, acked: &[Ack]) -> Store {
    let store = Store::open(dir).expect("reopen after SIGKILL");
    let Some(first) = acked.first() else {
        return store;
    };
    let info = store
        .find_session("kill-test")
        .unwrap()
        .expect("the acknowledged session exists");
    assert_eq!(info.id.0, first.session);
    let msgs = store.messages(info.id).unwrap();
    assert_eq!(
        info.message_count,
        msgs.len() as u64,
        "count matches the messages"
    );
    for m in &msgs {
        let (sha, body) = m.text.split_once(' ').expect("a checked text");
        assert_eq!(
            sha,
            hex::encode(Sha256::digest(body.as_bytes())),
            "message {} is partial or damaged",
            m.seq
        );
    }
    let mut at = 0;
    for ack in acked {
        assert_eq!(ack.session, first.session);
        let pos = msgs[at..]
            .iter()
            .position(|m| m.seq == ack.seq)
            .unwrap_or_else(|| panic!("acknowledged message {} lost or out of order", ack.seq));
        at += pos;
        assert_eq!(
            hex::encode(Sha256::digest(msgs[at].text.as_bytes())),
            ack.sha
        );
        at += 1;
    }
    store
}

#[test]
fn sigkill_never_loses_an_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed_1e55);
    let mut acked: Vec<Ack> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = spawn_writer(dir.path(), round);
        // Sometimes kill before the first acknowledgement (during open or the first write).
        let n = if rng.random_bool(0.15) {
            0
        } else {
            rng.random_range(1..=120)
        };
        let acks = read_acks(&mut child, n);
        child.kill().expect("SIGKILL the writer");
        let status = child.wait().unwrap();
        // Killed, not exited: the writer runs until killed.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        if let (Some(last), Some(next)) = (acked.last(), acks.first()) {
            assert!(
                next.seq > last.seq,
                "a new round continues after the old one"
            );
        }
        acked.extend(acks);
        drop(verify(dir.path(), &acked));
    }
    eprintln!(
        "{} acknowledged messages survived {ROUNDS} SIGKILL rounds",
        acked.len()
    );
    assert!(
        acked.len() >= 100,
        "only {} acks over {ROUNDS} rounds",
        acked.len()
    );

    // The database still takes writes after all that.
    let store = verify(dir.path(), &acked);
    let s = store.find_session("kill-test").unwrap().unwrap();
    let m = store
        .append_message(s.id, StoredMessage::new(Role::User, "after the storm"))
        .unwrap();
    store.flush().unwrap();
    assert!(m.seq > acked.last().unwrap().seq);
    assert_eq!(store.recent_messages(s.id, 1).unwrap(), vec![m]);
}
