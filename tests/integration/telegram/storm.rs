//! A 5xx storm during a streamed reply: the Bot API answers 502 to every edit for a while,
//! then recovers. Nothing is lost (the whole reply arrives and is stored), nothing is sent
//! twice (one message, edited), and the delay the storm added is printed (`--nocapture`): the
//! final edit is retried with parlor's own doubling back-off, not teloxide's 10 s per 5xx.

use super::{Harness, Relay, bot_with_store, finals, test_config, to_chat};
use parlor::telegram::config::Streaming;
use parlor::testkit::fake_telegram::Failure;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Failed edits in a row.
const STORM: usize = 4;

#[tokio::test]
async fn a_5xx_storm_during_a_streamed_reply_loses_nothing_and_sends_nothing_twice() {
    let relay = Relay::new();
    let (_dir, bot, store) = bot_with_store(relay.clone());
    let mut cfg = test_config();
    cfg.streaming = Streaming::Edit;
    let base_ms = cfg.pacing.retry_base_ms;
    let h = Harness::start(bot, cfg).await;
    h.fake.push_text(361, "tell me everything");
    let turn = relay.next_turn().await;
    turn.token("part one").await;
    h.until("the streamed message", |c| {
        to_chat(c, "sendmessage", 361).iter().any(|c| c.ok)
    })
    .await;
    for _ in 0..STORM {
        h.fake.fail_next("editMessageText", Failure::Status(502));
    }
    turn.token(", part two").await;
    h.until("a refused edit", |c| {
        to_chat(c, "editmessagetext", 361).iter().any(|c| !c.ok)
    })
    .await;
    turn.token(", part three").await;
    let ended = Instant::now();
    turn.done().await;
    let whole = "part one, part two, part three";
    let calls = h.until_final(361, whole).await;
    let delivered = finals(&calls, 361)
        .iter()
        .find(|c| c.text() == whole)
        .expect("the final edit")
        .at;
    // Nothing sent twice: one message, edited to the whole reply.
    assert_eq!(h.fake.chat_texts(361), [whole]);
    let sends = to_chat(&calls, "sendmessage", 361);
    assert_eq!(sends.iter().filter(|c| c.ok).count(), 1);
    let edits = to_chat(&calls, "editmessagetext", 361);
    let failed = edits.iter().filter(|c| !c.ok).count();
    assert_eq!(failed, STORM, "every scripted 502 was met");
    // Nothing lost: question and whole reply stored.
    let sid = store.find_session("tg-361").unwrap().unwrap().id;
    let msgs = store.messages(sid).unwrap();
    let texts: Vec<&str> = msgs.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["tell me everything", whole]);
    assert!(!msgs[1].interrupted);
    let retries = h.svc.metrics().retries.load(Relaxed);
    println!(
        "5xx storm: {failed} edits refused with 502 ({retries} retries of the final edit, back-off base {base_ms} ms); the whole reply was delivered {:?} after generation ended (teloxide's Requester would wait 10 s per 5xx: {} s)",
        delivered.duration_since(ended),
        10 * retries
    );
    h.stop().await;
}
