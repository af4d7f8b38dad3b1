//! Failure paths: `/forget` in a group by a non-admin and with an expired confirmation, a user
//! who blocked the bot (403), giving up after `max_attempts` (the reply is sent later), a 409 conflict on getUpdates,
//! and streaming by edits when the server has no `sendMessageDraft`.

use super::{Harness, Relay, TOKEN, bot, bot_with_store, eventually, test_config, to_chat};
use parlor::engine::ScriptedEngine;
use parlor::telegram::state::{forget_key, now_ms};
use parlor::testkit::fake_telegram::{BOT_USERNAME, Failure, FakeBotApi};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[tokio::test]
async fn forget_in_a_group_deletes_nothing_unless_an_admin_asks() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    cfg.admins = vec![9];
    let h = Harness::start(bot, cfg).await;
    let group = -600;
    h.fake
        .push_message(h.fake.message(group, 5, &format!("@{BOT_USERNAME} hello")));
    h.until_final(group, "echo: hello").await;
    for text in ["/forget", "/forget yes"] {
        h.fake.push_message(h.fake.message(group, 5, text));
    }
    h.until("two refusals", |_| {
        h.fake
            .chat_texts(group)
            .iter()
            .filter(|t| *t == "Only an admin can delete this group's data.")
            .count()
            == 2
    })
    .await;
    assert!(
        store.find_session("tg--600").unwrap().is_some(),
        "a non-admin deleted nothing"
    );
    assert!(
        store
            .kv_get::<i64>(forget_key(group).name())
            .unwrap()
            .is_none()
    );
    h.fake.push_message(h.fake.message(group, 9, "/forget"));
    h.until_text(group, "the admin's confirmation question", |t| {
        t.contains("/forget yes")
    })
    .await;
    h.fake.push_message(h.fake.message(group, 9, "/forget yes"));
    h.until_text(group, "forgotten", |t| {
        t.starts_with("Done: I erased 1 conversation")
    })
    .await;
    assert!(store.find_session("tg--600").unwrap().is_none());
    h.stop().await;
}

#[tokio::test]
async fn an_expired_forget_confirmation_deletes_nothing_and_asks_again() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(83, "remember me");
    h.until_final(83, "echo: remember me").await;
    h.fake.push_text(83, "/forget");
    h.until_text(83, "the confirmation question", |t| {
        t.contains("/forget yes")
    })
    .await;
    // Five minutes pass: the confirmation's deadline is now in the past.
    store
        .kv_put(forget_key(83).name(), &(now_ms() - 1))
        .expect("deadline rewritten");
    h.fake.push_text(83, "/forget yes");
    h.until("a second confirmation question", |_| {
        h.fake
            .chat_texts(83)
            .iter()
            .filter(|t| t.contains("/forget yes"))
            .count()
            == 2
    })
    .await;
    assert!(
        store.find_session("tg-83").unwrap().is_some(),
        "nothing deleted on an expired confirmation"
    );
    assert!(
        store.kv_get::<i64>(forget_key(83).name()).unwrap().unwrap() > now_ms(),
        "a new deadline in the future"
    );
    h.fake.push_text(83, "/forget yes");
    h.until_text(83, "forgotten", |t| {
        t.starts_with("Done: I erased 1 conversation")
    })
    .await;
    assert!(store.find_session("tg-83").unwrap().is_none());
    h.stop().await;
}

#[tokio::test]
async fn a_user_who_blocked_the_bot_costs_one_try_and_the_others_are_served() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    h.fake.block_chat(201);
    h.fake.push_text(201, "are you there?");
    h.until("the refused final message", |c| {
        !to_chat(c, "sendmessage", 201).is_empty()
    })
    .await;
    h.fake.push_text(202, "hello");
    h.until_final(202, "echo: hello").await;
    let m = h.svc.metrics();
    eventually("the blocked chat's message no longer pending", || {
        m.queue_depth.load(Relaxed) == 0
    })
    .await;
    let calls = h.fake.calls();
    let sends = to_chat(&calls, "sendmessage", 201);
    assert_eq!(sends.len(), 1, "a 403 is not retried");
    assert!(!sends[0].ok);
    assert_eq!(m.retries.load(Relaxed), 0);
    // The reply is kept in the history all the same.
    let sid = store.find_session("tg-201").unwrap().unwrap().id;
    let texts: Vec<String> = store
        .messages(sid)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["are you there?", "echo: are you there?"]);
    h.stop().await;
}

#[tokio::test]
async fn a_send_that_keeps_failing_is_given_up_after_max_attempts_and_sent_again_later() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    cfg.pacing.max_attempts = 3;
    cfg.streaming = parlor::telegram::config::Streaming::Off;
    let h = Harness::start(bot, cfg).await;
    for _ in 0..3 {
        h.fake.fail_next("sendMessage", Failure::Status(502));
    }
    h.fake.push_text(203, "first");
    h.until("three failed attempts", |c| {
        to_chat(c, "sendmessage", 203).len() == 3
    })
    .await;
    // The next message is answered: the chat's worker gave up and moved on, after sending the
    // kept reply once Telegram took calls again.
    h.fake.push_text(203, "second");
    let calls = h.until_final(203, "echo: second").await;
    let sends = to_chat(&calls, "sendmessage", 203);
    assert_eq!(
        sends.iter().map(|c| (c.text(), c.ok)).collect::<Vec<_>>(),
        [
            ("echo: first", false),
            ("echo: first", false),
            ("echo: first", false),
            ("echo: first", true),
            ("echo: second", true)
        ],
        "three attempts, then the kept reply once, in order"
    );
    // Backoff doubles: 20 ms, then 40 ms.
    assert!(sends[1].at.duration_since(sends[0].at) >= Duration::from_millis(20));
    assert!(sends[2].at.duration_since(sends[1].at) >= Duration::from_millis(40));
    assert_eq!(h.svc.metrics().retries.load(Relaxed), 2);
    h.stop().await;
}

#[tokio::test]
async fn a_409_conflict_on_get_updates_is_waited_out_and_polling_resumes() {
    let fake = Arc::new(FakeBotApi::start(TOKEN).await.expect("fake server"));
    fake.fail_next("getUpdates", Failure::Conflict);
    fake.fail_next("getUpdates", Failure::Conflict);
    fake.push_text(204, "hello after the conflict");
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let cfg = test_config();
    let wait = Duration::from_millis(cfg.pacing.retry_base_ms * 10);
    let h = Harness::start_on(fake, bot, cfg).await;
    let calls = h.until_final(204, "echo: hello after the conflict").await;
    let polls: Vec<_> = calls.iter().filter(|c| c.method == "getupdates").collect();
    assert!(polls.len() >= 3, "{}", polls.len());
    assert_eq!(
        polls[..3].iter().map(|c| c.ok).collect::<Vec<_>>(),
        [false, false, true]
    );
    for pair in polls[..3].windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= wait,
            "polled again after {:?}",
            pair[1].at.duration_since(pair[0].at)
        );
    }
    assert_eq!(h.fake.unacknowledged(), 0);
    h.stop().await;
}

#[tokio::test]
async fn without_send_message_draft_replies_stream_by_edits() {
    let relay = Relay::new();
    let (_dir, bot) = bot(relay.clone());
    let fake = Arc::new(FakeBotApi::start(TOKEN).await.expect("fake server"));
    fake.disable_drafts();
    let h = Harness::start_on(fake, bot, test_config()).await;
    h.fake.push_text(205, "hello");
    let turn = relay.next_turn().await;
    turn.token("first").await;
    // The draft is refused as an unknown method; the same text goes out as a message at once.
    h.until("the streamed message", |c| {
        to_chat(c, "sendmessage", 205)
            .iter()
            .any(|c| c.ok && c.text() == "first")
    })
    .await;
    turn.token(" second").await;
    h.until("the streamed edit", |c| {
        to_chat(c, "editmessagetext", 205)
            .iter()
            .any(|c| c.ok && c.text() == "first second")
    })
    .await;
    turn.done().await;
    // The next reply streams by edits from the start: drafts are not tried again.
    h.fake.push_text(205, "again");
    let turn = relay.next_turn().await;
    turn.token("more").await;
    h.until("the second streamed message", |c| {
        to_chat(c, "sendmessage", 205)
            .iter()
            .any(|c| c.ok && c.text() == "more")
    })
    .await;
    turn.done().await;
    let calls = h.fake.calls();
    assert_eq!(to_chat(&calls, "sendmessagedraft", 205).len(), 1);
    assert_eq!(h.fake.chat_texts(205), ["first second", "more"]);
    h.stop().await;
}
