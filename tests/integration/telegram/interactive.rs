//! Buttons, ratings and every kind of update, against the fake Bot API: a "did you mean"
//! button answers with its entry and is acknowledged, also when pressed before the bot has read
//! the send's answer; expired, foreign and tampered buttons do
//! nothing but say so; a rating asked by a "Did this help?" follow-up is stored, counted,
//! thanked for and exported; photos with and without a
//! caption; an edited message; the bot removed from a group, channel posts and service
//! messages.

use super::{
    Harness, Relay, TOKEN, WAIT, acme_without_scripting, bot_with_store, eventually, finals,
    test_config, to_chat,
};
use crate::common::embedding_model_path;
use parlor::bot::Bot;
use parlor::chat::{Rating, ReplySource};
use parlor::engine::ScriptedEngine;
use parlor::persona::Persona;
use parlor::store::Store;
use parlor::support::index::Retriever;
use parlor::telegram::buttons::{EXPIRED, RATING_QUESTION, RATING_THANKS};
use parlor::testkit::fake_telegram::{Call, FakeBotApi};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The shipped Acme persona with its FAQ and rules.
fn acme_with_faq() -> Persona {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    Persona::load(&path).expect("acme loads")
}

/// The Acme persona without scripting (every message reaches the echoing engine), asking for a
/// rating after every answer.
fn acme_rated() -> Persona {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    let text = acme_without_scripting() + "\nratings: all\n";
    Persona::parse(&path, &text).expect("acme with ratings")
}

/// Answers to button presses.
fn answers(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.method == "answercallbackquery")
        .collect()
}

/// Send `text` in `chat` and wait for the reply and the follow-up asking "Did this help?" with
/// the rating buttons; the follow-up's message id and buttons. The answer itself carries none.
async fn rated_reply(h: &Harness, chat: i64, text: &str) -> (i64, Vec<(String, String)>) {
    h.fake.push_text(chat, text);
    h.until("the rated reply", |_| {
        h.fake
            .sent_message_ids(chat)
            .iter()
            .any(|id| !h.fake.buttons(chat, *id).is_empty())
    })
    .await;
    let (id, buttons) = with_buttons(h, chat);
    let ids = h.fake.sent_message_ids(chat);
    let texts = h.fake.chat_texts(chat);
    let at = ids.iter().position(|i| *i == id).expect("sent");
    assert_eq!(texts[at], RATING_QUESTION, "the buttons ask a question");
    assert!(at > 0, "the answer comes first: {texts:?}");
    assert_eq!(texts[at - 1], format!("echo: {text}"));
    assert!(
        h.fake.buttons(chat, ids[at - 1]).is_empty(),
        "no buttons under the answer itself"
    );
    (id, buttons)
}

fn with_buttons(h: &Harness, chat: i64) -> (i64, Vec<(String, String)>) {
    h.fake
        .sent_message_ids(chat)
        .into_iter()
        .rev()
        .map(|id| (id, h.fake.buttons(chat, id)))
        .find(|(_, b)| !b.is_empty())
        .expect("a message with buttons")
}

/// The shipped Acme persona on the scripted engine with the embedding retriever, as a running
/// bot has it, served against a fresh fake server: its temp dir, store and harness.
async fn acme_with_retrieval() -> (tempfile::TempDir, Store, Harness) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("db")).expect("store");
    let bot = Bot::new(
        acme_with_faq(),
        Arc::new(ScriptedEngine::new([])),
        store.clone(),
    );
    bot.set_retriever(Retriever::load(
        &embedding_model_path(),
        Some(dir.path().join("cache")),
    ));
    let h = Harness::start(bot, test_config()).await;
    (dir, store, h)
}

/// Send "firmware" (two FAQ entries match it about equally) in `chat` and wait for the "did
/// you mean" choices: the message's id and its buttons.
async fn choices_for_firmware(h: &Harness, chat: i64) -> (i64, Vec<(String, String)>) {
    h.fake.push_text(chat, "firmware");
    // Generous: the first turn embeds every FAQ entry (seconds in a debug build on a busy
    // machine); a deadline, not a speed assertion.
    h.fake
        .wait_for(Duration::from_secs(300), |_| {
            h.fake
                .sent_message_ids(chat)
                .iter()
                .any(|id| h.fake.buttons(chat, *id).len() >= 2)
        })
        .await
        .expect("the choices with their buttons");
    with_buttons(h, chat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_did_you_mean_button_answers_with_its_entry_and_is_acknowledged() {
    let (_dir, store, h) = acme_with_retrieval().await;
    let (offer, buttons) = choices_for_firmware(&h, 301).await;
    assert!(buttons[0].0.starts_with("1. "), "{buttons:?}");
    let sid = store.find_session("tg-301").unwrap().unwrap().id;
    let offered = store.messages(sid).unwrap().last().cloned().unwrap();
    assert_eq!(offered.source, ReplySource::Choices);
    let update = h.fake.push_callback(301, 301, offer, &buttons[1].1);
    let calls = h
        .fake
        .wait_for(Duration::from_secs(300), |c| {
            finals(c, 301).len() >= 2
                && !answers(c).is_empty()
                && c.iter().any(|c| c.method == "editmessagereplymarkup")
        })
        .await
        .expect("the chosen entry's answer");
    let ack = answers(&calls)[0];
    assert_eq!(ack.params["callback_query_id"], format!("cb{update}"));
    assert!(
        ack.params.get("text").is_none(),
        "a valid press needs no notice"
    );
    // The question of the entry chosen is stored as the user's, the answer is the entry's.
    let msgs = store.messages(sid).unwrap();
    let answer = msgs.last().unwrap();
    assert!(
        matches!(&answer.source, ReplySource::Faq(_)),
        "{:?}",
        answer.source
    );
    assert_eq!(h.fake.chat_texts(301).last().unwrap(), &answer.text);
    // The used buttons are gone; pressing the same button again is expired.
    assert!(h.fake.buttons(301, offer).is_empty());
    h.fake.push_callback(301, 301, offer, &buttons[0].1);
    h.until("the expired notice", |c| answers(c).len() == 2)
        .await;
    assert_eq!(answers(&h.fake.calls())[1].params["text"], EXPIRED);
    assert_eq!(
        store.messages(sid).unwrap().len(),
        msgs.len(),
        "nothing else answered"
    );
    h.stop().await;
}

/// A press that comes before the bot has read Telegram's answer to the send that carried the
/// buttons (so before it knows the message's id) is acted on, not refused as expired: the
/// fake holds its answers to sendMessage while the button is pressed (a full run once pressed
/// within 3 ms of the send and got "This button has expired."), and only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_before_the_bot_has_read_the_sends_answer_is_acted_on() {
    let (_dir, _store, h) = acme_with_retrieval().await;
    h.fake.hold("sendMessage");
    let (offer, buttons) = choices_for_firmware(&h, 302).await;
    h.fake.push_callback(302, 302, offer, &buttons[1].1);
    let calls = h
        .until("the press answered", |c| !answers(c).is_empty())
        .await;
    assert!(
        answers(&calls)[0].params.get("text").is_none(),
        "acted on, not expired: {:?}",
        answers(&calls)[0].params
    );
    h.fake.release("sendMessage");
    h.until("the chosen entry's answer", |c| finals(c, 302).len() >= 2)
        .await;
    // The keyboard was used up before the bot learnt its message's id: learning it later does
    // not bring it back (a full run under load once had the used button acted on a second
    // time; the race inside the record's update: `store::sessions::kv_update_…`).
    h.fake.push_callback(302, 302, offer, &buttons[0].1);
    h.until("the second press answered", |c| answers(c).len() == 2)
        .await;
    assert_eq!(answers(&h.fake.calls())[1].params["text"], EXPIRED);
    h.stop().await;
}

#[tokio::test]
async fn expired_foreign_and_tampered_buttons_act_on_nothing() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    bot.set_persona(acme_rated());
    let h = Harness::start(bot, test_config()).await;
    let (msg, buttons) = rated_reply(&h, 311, "hello there").await;
    let up = buttons
        .iter()
        .find(|b| b.0.starts_with('👍'))
        .unwrap()
        .1
        .clone();
    // Another chat presses a copy of chat 311's button; then tampered and foreign data.
    let (other, _) = rated_reply(&h, 312, "hi").await;
    h.fake.push_callback(312, 312, other, &up);
    h.fake.push_callback(311, 311, msg, "k:0000000000000000:0");
    h.fake.push_callback(311, 311, msg, "something else");
    let tail = up.rsplit_once(':').unwrap().0.to_string() + ":9";
    h.fake.push_callback(311, 311, msg, &tail);
    let calls = h.until("four answers", |c| answers(c).len() == 4).await;
    for a in answers(&calls) {
        assert_eq!(a.params["text"], EXPIRED, "{:?}", a.params);
    }
    let sid = store.find_session("tg-311").unwrap().unwrap().id;
    assert!(
        store
            .messages(sid)
            .unwrap()
            .iter()
            .all(|m| m.rating.is_none())
    );
    assert_eq!(
        h.fake.buttons(311, msg).len(),
        2,
        "the real buttons still stand"
    );
    // After /reset the old message's buttons belong to a finished conversation.
    h.fake.push_text(311, "/reset");
    h.until_text(311, "the reset", |t| {
        t.starts_with("Started a new conversation")
    })
    .await;
    h.fake.push_callback(311, 311, msg, &up);
    h.until("the fifth answer", |c| answers(c).len() == 5).await;
    assert_eq!(answers(&h.fake.calls())[4].params["text"], EXPIRED);
    assert!(
        store
            .messages(sid)
            .unwrap()
            .iter()
            .all(|m| m.rating.is_none())
    );
    let m = h.svc.metrics();
    assert_eq!(
        (
            m.button_presses.load(Relaxed),
            m.buttons_expired.load(Relaxed)
        ),
        (5, 5)
    );
    let sends = to_chat(&h.fake.calls(), "sendmessage", 312).len();
    assert_eq!(
        sends, 2,
        "the foreign press sent nothing (an answer, its question)"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_rating_is_stored_counted_and_exported() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    bot.set_persona(acme_rated());
    let h = Harness::start(bot, test_config()).await;
    let (msg, buttons) = rated_reply(&h, 321, "my router blinks red").await;
    let labels: Vec<&str> = buttons.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(labels, ["👍 Helped", "👎 Didn't help"]);
    h.fake.push_callback(321, 321, msg, &buttons[1].1);
    let calls = h
        .until("the thanks, and the question edited to say it", |c| {
            !answers(c).is_empty()
                && h.fake.chat_texts(321).last().map(String::as_str) == Some(RATING_THANKS)
        })
        .await;
    assert_eq!(answers(&calls)[0].params["text"], RATING_THANKS);
    assert_eq!(
        h.fake.chat_texts(321),
        ["echo: my router blinks red", RATING_THANKS],
        "the answer stays as it was"
    );
    let sid = store.find_session("tg-321").unwrap().unwrap().id;
    let msgs = store.messages(sid).unwrap();
    assert_eq!(msgs[1].rating, Some(Rating::Down), "{msgs:?}");
    assert_eq!(msgs[0].rating, None);
    assert_eq!(h.svc.metrics().ratings_down.load(Relaxed), 1);
    assert!(
        h.svc
            .metrics()
            .render()
            .contains("parlor_telegram_ratings_down_total 1")
    );
    assert!(
        h.fake.buttons(321, msg).is_empty(),
        "rated once: the buttons go"
    );
    let export = h.export(321).await;
    assert!(export.contains("you rated it 👎"), "{export}");
    h.stop().await;
}

#[tokio::test]
async fn photos_are_answered_from_their_caption_or_told_what_the_bot_reads() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    let captioned = h.fake.photo(331, Some("is this light normal?"));
    h.fake.push_message(captioned);
    h.until_final(331, "echo: is this light normal?").await;
    h.fake.push_message(h.fake.photo(331, None));
    h.until_text(331, "the photo notice", |t| {
        t.starts_with("I got a photo, but I can only read text")
    })
    .await;
    let voice = {
        let mut m = h.fake.message(331, 331, "");
        m.as_object_mut().unwrap().remove("text");
        m["voice"] = json!({"file_id": "v", "file_unique_id": "v1", "duration": 3, "mime_type": "audio/ogg"});
        m
    };
    h.fake.push_message(voice);
    h.until_text(331, "the voice notice", |t| {
        t.starts_with("I got a voice message")
    })
    .await;
    let sid = store.find_session("tg-331").unwrap().unwrap().id;
    let texts: Vec<String> = store
        .messages(sid)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(
        texts,
        ["is this light normal?", "echo: is this light normal?"]
    );
    assert_eq!(h.svc.metrics().media_in.load(Relaxed), 2);
    h.stop().await;
}

#[tokio::test]
async fn an_edit_of_a_waiting_message_is_answered_and_a_later_edit_ignored() {
    let relay = Relay::new();
    let (_dir, bot, store) = bot_with_store(relay.clone());
    let h = Harness::start(bot, test_config()).await;
    let first = h.fake.message(341, 341, "first");
    h.fake.push_message(first.clone());
    let turn = relay.next_turn().await;
    // While the first is answered, a second message waits; its author corrects it.
    let mut second = h.fake.message(341, 341, "secnd question");
    h.fake.push_message(second.clone());
    second["text"] = json!("second question");
    second["edit_date"] = json!(second["date"].as_i64().unwrap() + 5);
    h.fake.push_update("edited_message", second);
    let m = h.svc.metrics();
    eventually("the edit applied", || m.edits_in.load(Relaxed) == 1).await;
    turn.token("one").await;
    turn.done().await;
    let turn = relay.next_turn().await;
    turn.token("two").await;
    turn.done().await;
    h.until_final(341, "two").await;
    // Editing an answered message changes nothing.
    let mut first = first;
    first["text"] = json!("first, edited");
    first["edit_date"] = json!(first["date"].as_i64().unwrap() + 60);
    h.fake.push_update("edited_message", first);
    eventually("the edit ignored", || m.edits_ignored.load(Relaxed) == 1).await;
    let sid = store.find_session("tg-341").unwrap().unwrap().id;
    let texts: Vec<String> = store
        .messages(sid)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["first", "one", "second question", "two"]);
    h.stop().await;
}

#[tokio::test]
async fn removal_from_a_group_channel_posts_and_service_messages_send_nothing() {
    let (_dir, bot, _store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    let group = -351;
    let chat = json!({"id": group, "type": "supergroup", "title": "Shop"});
    let member = |status: &str| json!({"user": {"id": 4242, "is_bot": true, "first_name": "Acme Support"}, "status": status});
    let mut joined = h.fake.message(group, 7, "");
    joined.as_object_mut().unwrap().remove("text");
    joined["new_chat_members"] =
        json!([{"id": 4242, "is_bot": true, "first_name": "Acme Support"}]);
    h.fake.push_message(joined);
    h.fake.push_update(
        "channel_post",
        json!({"message_id": 5, "date": 0, "chat": {"id": -1009, "type": "channel", "title": "News"}, "text": "hello"}),
    );
    h.fake.push_update(
        "my_chat_member",
        json!({"chat": chat, "from": {"id": 7, "is_bot": false, "first_name": "Admin"}, "date": 0,
            "old_chat_member": member("member"), "new_chat_member": member("left")}),
    );
    let m = h.svc.metrics();
    eventually("the removal seen", || m.removed.load(Relaxed) == 1).await;
    // Still serving: a private message is answered.
    h.fake.push_text(352, "still there?");
    let calls = h.until_final(352, "echo: still there?").await;
    for c in [group, -1009] {
        assert!(
            calls.iter().all(|x| x.chat() != Some(c)),
            "nothing sent to {c}"
        );
    }
    assert_eq!(h.fake.unacknowledged(), 0);
    assert_eq!(m.panics.load(Relaxed), 0);
    h.stop().await;
}

/// Not a test of parlor: how long teloxide's own `Requester` takes over one 5xx (it sleeps
/// 10 s before reading the reply). Run with `--ignored --nocapture`; the number is in
/// `docs/telegram.md`.
#[tokio::test]
#[ignore = "measurement: takes 10 s"]
async fn teloxide_requester_over_one_5xx() {
    use teloxide::requests::Requester;
    let fake = FakeBotApi::start(TOKEN).await.unwrap();
    fake.fail_next(
        "sendMessage",
        parlor::testkit::fake_telegram::Failure::Status(502),
    );
    let bot = teloxide::Bot::new(TOKEN).set_api_url(fake.url().parse().unwrap());
    let started = std::time::Instant::now();
    let r = bot.send_message(teloxide::types::ChatId(1), "hi").await;
    println!(
        "teloxide sendMessage over one 502: {:?} after {:?}",
        r.map(|_| ()),
        started.elapsed()
    );
    assert!(started.elapsed() < WAIT);
}
