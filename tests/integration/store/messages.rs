//! Messages: order, newest-first reads, every field kept, truncate and update, concurrent appends.

use super::{say, temp_store, texts};
use parlor::chat::{ReplySource, Role, TurnStats};
use parlor::store::{StoreError, StoredMessage};

#[test]
fn messages_come_back_in_order_per_session() {
    let (_dir, store) = temp_store();
    let a = store.create_session("a", "assistant", "m").unwrap().id;
    let b = store.create_session("b", "assistant", "m").unwrap().id;
    // Interleave two sessions and cross the 255/256 byte boundary of the sequence.
    for i in 0..300 {
        say(&store, a, Role::User, &format!("a{i}"));
        if i % 3 == 0 {
            say(&store, b, Role::User, &format!("b{i}"));
        }
    }
    let msgs = store.messages(a).unwrap();
    assert_eq!(msgs.len(), 300);
    let expected: Vec<String> = (0..300).map(|i| format!("a{i}")).collect();
    assert_eq!(texts(&msgs), expected);
    assert!(msgs.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.messages(b).unwrap().len(), 100);
    assert_eq!(store.session(a).unwrap().unwrap().message_count, 300);
}

#[test]
fn recent_messages_are_the_newest_in_order() {
    let (_dir, store) = temp_store();
    let a = store.create_session("a", "p", "m").unwrap().id;
    let b = store.create_session("b", "p", "m").unwrap().id;
    for i in 0..10 {
        say(&store, a, Role::User, &format!("a{i}"));
    }
    say(&store, b, Role::User, "b0");
    assert_eq!(
        texts(&store.recent_messages(a, 3).unwrap()),
        ["a7", "a8", "a9"]
    );
    assert_eq!(store.recent_messages(a, 0).unwrap(), vec![]);
    assert_eq!(store.recent_messages(a, 50).unwrap().len(), 10);
    assert_eq!(texts(&store.recent_messages(b, 5).unwrap()), ["b0"]);
    let empty = store.create_session("empty", "p", "m").unwrap().id;
    assert_eq!(store.recent_messages(empty, 5).unwrap(), vec![]);
}

#[test]
fn appended_messages_keep_every_field() {
    let (_dir, store) = temp_store();
    let s = store.create_session("s", "p", "m").unwrap().id;
    let mut m = StoredMessage::new(Role::Assistant, "partial rep");
    m.tokens = Some(3);
    m.interrupted = true;
    m.source = ReplySource::Rule("greet".into());
    m.stats = Some(TurnStats {
        prompt_tokens: 40,
        reused_tokens: 12,
        ttft_ms: 85.25,
        ..TurnStats::default()
    });
    let stored = store.append_message(s, m.clone()).unwrap();
    assert_eq!(
        stored,
        StoredMessage {
            seq: stored.seq,
            ..m
        }
    );
    assert_eq!(store.messages(s).unwrap(), vec![stored.clone()]);
    let info = store.session(s).unwrap().unwrap();
    assert_eq!(info.updated, stored.time.max(info.created));
}

#[test]
fn truncate_and_update_messages() {
    let (_dir, store) = temp_store();
    let s = store.create_session("s", "p", "m").unwrap().id;
    let seqs: Vec<u64> = (0..5)
        .map(|i| say(&store, s, Role::User, &format!("m{i}")).seq)
        .collect();
    store.truncate_messages(s, seqs[3]).unwrap();
    assert_eq!(texts(&store.messages(s).unwrap()), ["m0", "m1", "m2"]);
    assert_eq!(store.session(s).unwrap().unwrap().message_count, 3);
    let next = say(&store, s, Role::Assistant, "again");
    assert!(next.seq > seqs[4], "seqs are never reused");

    let mut edited = next.clone();
    edited.text = "again, edited".into();
    edited.interrupted = true;
    store.update_message(s, &edited).unwrap();
    assert_eq!(store.recent_messages(s, 1).unwrap(), vec![edited.clone()]);
    edited.seq = 999;
    let err = store.update_message(s, &edited).unwrap_err();
    assert!(
        matches!(err, StoreError::NoMessage { seq: 999, .. }),
        "{err:?}"
    );
}

#[test]
fn concurrent_appends_get_distinct_increasing_seqs() {
    let (_dir, store) = temp_store();
    let s = store.create_session("s", "p", "m").unwrap().id;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..50 {
                    say(&store, s, Role::User, &format!("t{t}-{i}"));
                }
            });
        }
    });
    let msgs = store.messages(s).unwrap();
    assert_eq!(msgs.len(), 200);
    assert_eq!(store.session(s).unwrap().unwrap().message_count, 200);
    let seqs: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    // Each thread's own messages keep their order.
    for t in 0..4 {
        let own: Vec<String> = msgs
            .iter()
            .filter(|m| m.text.starts_with(&format!("t{t}-")))
            .map(|m| m.text.clone())
            .collect();
        assert_eq!(
            own,
            (0..50).map(|i| format!("t{t}-{i}")).collect::<Vec<_>>()
        );
    }
}
