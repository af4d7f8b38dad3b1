//! Human handoff: `/human` stops the bot in that chat (enforced when sending), the transcript
//! goes to the operators, operator replies are relayed, `/bot` or the operators' buttons (Take,
//! Hand back, Close) hand back, and the state survives a restart.

use super::{Harness, Hooked, bot, bot_with_store, finals, test_config, to_chat};
use parlor::chat::{ChatMessage, Role};
use parlor::engine::{Engine, ScriptedEngine};
use parlor::telegram::buttons::EXPIRED;
use parlor::testkit::fake_telegram::Call;
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OPS: i64 = -500;
const OPERATOR: i64 = 777;
const CUSTOMER: i64 = 101;

fn reply_in_ops(h: &Harness, to_message: i64, text: &str) {
    let mut m = h.fake.message(OPS, OPERATOR, text);
    m["reply_to_message"] = json!({"message_id": to_message, "chat": {"id": OPS, "type": "supergroup"}, "date": 0,
        "from": {"id": parlor::testkit::fake_telegram::BOT_ID, "is_bot": true, "first_name": "Acme Support"}});
    h.fake.push_message(m);
}

/// The customer is told the bot is back, and the bot answers `text` again.
async fn back_with_the_bot(h: &Harness, text: &str) {
    h.until_text(CUSTOMER, "the hand-back notice", |t| {
        t.contains("talking to the bot again")
    })
    .await;
    h.fake.push_text(CUSTOMER, text);
    h.until_final(CUSTOMER, &format!("echo: {text}")).await;
}

#[tokio::test]
async fn handoff_round_trip_survives_a_restart() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    cfg.operators_chat = Some(OPS);
    let h = Harness::start(bot.clone(), cfg.clone()).await;

    h.fake.push_text(CUSTOMER, "my router is on fire");
    h.until("the bot's reply", |c| !finals(c, CUSTOMER).is_empty())
        .await;
    h.fake.push_text(CUSTOMER, "/human");
    let calls = h
        .until("the operators' post", |c| {
            to_chat(c, "sendmessage", OPS).iter().any(|c| c.ok)
        })
        .await;
    let post = to_chat(&calls, "sendmessage", OPS)[0];
    assert!(
        post.text()
            .contains(&format!("Chat {CUSTOMER} asked for a human"))
    );
    assert!(
        post.text().contains("Customer: my router is on fire"),
        "transcript included: {}",
        post.text()
    );
    assert!(post.text().contains("Bot: echo: my router is on fire"));
    assert!(
        h.fake
            .chat_texts(CUSTOMER)
            .iter()
            .any(|t| t.contains("human colleague"))
    );

    // The bot is silent in that chat now; the customer's message goes to the operators.
    h.fake.push_text(CUSTOMER, "hello? anyone?");
    h.until_text(OPS, "the forwarded message", |t| {
        t.ends_with("hello? anyone?")
    })
    .await;
    let ops_ids = h.fake.sent_message_ids(OPS);

    // Restart: the handoff state is kept.
    let fake = h.fake.clone();
    h.stop().await;
    let h = Harness::start_on(fake, bot, cfg).await;
    h.fake.push_text(CUSTOMER, "still there?");
    h.until_text(OPS, "the second forward", |t| t.ends_with("still there?"))
        .await;

    // An operator answers by replying to the post.
    reply_in_ops(
        &h,
        ops_ids[0],
        "Hi, this is Anna from Acme. Please unplug it.",
    );
    h.until_text(CUSTOMER, "the relayed answer", |t| {
        t.starts_with("Hi, this is Anna")
    })
    .await;
    let before = h.fake.calls();
    assert!(
        finals(&before, CUSTOMER).len() == 1,
        "no bot reply during the handoff: {:?}",
        h.fake.chat_texts(CUSTOMER)
    );

    // The operator hands back; the bot answers again.
    reply_in_ops(&h, ops_ids[0], "/bot");
    back_with_the_bot(&h, "thanks").await;
    h.stop().await;
}

#[tokio::test]
async fn a_persona_rule_can_hand_the_chat_to_a_human() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    bot.set_persona(super::persona_with_rules(
        "  - id: wants-human\n    when: { contains_any: [lawyer] }\n    then:\n      - reply: \"Let me get a colleague.\"\n      - handoff\n",
    ));
    let mut cfg = test_config();
    cfg.operators_chat = Some(OPS);
    let h = Harness::start(bot, cfg).await;
    h.fake.push_text(CUSTOMER, "I will call my lawyer");
    h.until("the operators' post", |c| {
        to_chat(c, "sendmessage", OPS)
            .iter()
            .any(|c| c.text().contains("asked for a human (persona rule)"))
    })
    .await;
    let texts = h.fake.chat_texts(CUSTOMER);
    assert_eq!(texts[0], "Let me get a colleague.");
    assert!(texts[1].contains("human colleague"));
    h.fake.push_text(CUSTOMER, "hello?");
    h.until_text(OPS, "the forward", |t| t.ends_with("hello?"))
        .await;
    assert_eq!(
        finals(&h.fake.calls(), CUSTOMER).len(),
        1,
        "the bot stays silent"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_handoff_times_out_the_customer_is_told_and_the_bot_answers_again() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    cfg.operators_chat = Some(OPS);
    cfg.handoff_timeout_minutes = 0.01; // 600 ms
    let h = Harness::start(bot, cfg).await;
    let asked = Instant::now();
    h.fake.push_text(CUSTOMER, "/human");
    h.until_text(CUSTOMER, "the handoff notice", |t| {
        t.contains("human colleague")
    })
    .await;
    let calls = h
        .until_text(CUSTOMER, "the hand-back notice", |t| {
            t.contains("talking to the bot again")
        })
        .await;
    let back = to_chat(&calls, "sendmessage", CUSTOMER)
        .into_iter()
        .find(|c| c.text().contains("talking to the bot again"))
        .expect("the notice was sent");
    assert!(
        back.at.duration_since(asked) >= Duration::from_millis(600),
        "handed back after {:?}, before the timeout",
        back.at.duration_since(asked)
    );
    let told_ops = format!("Chat {CUSTOMER} is back with the bot (timeout).");
    h.until_text(OPS, "the operators told", |t| t == told_ops)
        .await;
    back_with_the_bot(&h, "are you back?").await;
    h.stop().await;
}

#[tokio::test]
async fn handoff_messages_are_stored_exported_and_in_the_bots_history_after_a_restart() {
    let prompts: Arc<Mutex<Vec<Vec<ChatMessage>>>> = Arc::default();
    let engine = Hooked::new(ScriptedEngine::new([])).on_generate({
        let prompts = prompts.clone();
        move |e, req| {
            prompts.lock().unwrap().push(req.messages.clone());
            e.generate(req)
        }
    });
    let (_dir, bot, store) = bot_with_store(Arc::new(engine));
    let mut cfg = test_config();
    cfg.operators_chat = Some(OPS);
    let h = Harness::start(bot.clone(), cfg.clone()).await;
    h.fake.push_text(CUSTOMER, "my router is on fire");
    h.until_final(CUSTOMER, "echo: my router is on fire").await;
    h.fake.push_text(CUSTOMER, "/human");
    h.until_text(OPS, "the operators' post", |t| {
        t.contains("asked for a human")
    })
    .await;
    h.fake.push_text(CUSTOMER, "hello? anyone?");
    h.until_text(OPS, "the forward", |t| t.ends_with("hello? anyone?"))
        .await;
    let post = h.fake.sent_message_ids(OPS)[0];
    reply_in_ops(&h, post, "Please unplug it.");
    h.until_text(CUSTOMER, "the relayed answer", |t| t == "Please unplug it.")
        .await;

    let fake = h.fake.clone();
    h.stop().await;
    let h = Harness::start_on(fake, bot, cfg).await;
    reply_in_ops(&h, post, "/bot");
    back_with_the_bot(&h, "thanks").await;

    let sid = store.find_session("tg-101").unwrap().unwrap().id;
    let history: Vec<(Role, String, Option<String>)> = store
        .messages(sid)
        .unwrap()
        .into_iter()
        .map(|m| (m.role, m.text, m.operator))
        .collect();
    let said = |role, text: &str, operator: Option<&str>| {
        (role, text.to_string(), operator.map(String::from))
    };
    assert_eq!(
        history,
        [
            said(Role::User, "my router is on fire", None),
            said(Role::Assistant, "echo: my router is on fire", None),
            said(Role::User, "hello? anyone?", None),
            said(Role::Assistant, "Please unplug it.", Some("User777")),
            said(Role::User, "thanks", None),
            said(Role::Assistant, "echo: thanks", None),
        ]
    );
    // The bot's next turn saw the handoff in its history.
    let prompt = prompts.lock().unwrap().last().cloned().unwrap();
    let seen = |role, text: &str| prompt.iter().any(|m| m.role == role && m.content == text);
    assert!(seen(Role::User, "hello? anyone?"), "{prompt:?}");
    assert!(seen(Role::Assistant, "Please unplug it."), "{prompt:?}");

    let raw = h.export(CUSTOMER).await;
    let order = [
        "**You**",
        "hello? anyone?",
        "**User777 (staff)**",
        "Please unplug it.",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|t| {
            raw.find(t)
                .unwrap_or_else(|| panic!("{t:?} not in the export: {raw}"))
        })
        .collect();
    assert!(at.is_sorted(), "in this order: {order:?}\n{raw}");
    h.stop().await;
}

/// Answers to button presses so far.
fn answers(h: &Harness) -> Vec<Call> {
    h.fake.calls_to("answercallbackquery")
}

/// Ask for a human in `CUSTOMER` and wait for the operators' post with its buttons: its message
/// id and the callback data of Take, Hand back and Close.
async fn handoff_post(h: &Harness) -> (i64, [String; 3]) {
    let with_buttons = || {
        h.fake
            .sent_message_ids(OPS)
            .into_iter()
            .filter(|id| !h.fake.buttons(OPS, *id).is_empty())
            .count()
    };
    let before = with_buttons();
    h.fake.push_text(CUSTOMER, "/human");
    h.until("the operators' post with buttons", |_| {
        with_buttons() > before
    })
    .await;
    let post = *h
        .fake
        .sent_message_ids(OPS)
        .iter()
        .rev()
        .find(|id| !h.fake.buttons(OPS, **id).is_empty())
        .expect("a post with buttons");
    let buttons = h.fake.buttons(OPS, post);
    let labels: Vec<&str> = buttons.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(labels, ["Take", "Hand back to bot", "Close"]);
    let data = |i: usize| buttons[i].1.clone();
    (post, [data(0), data(1), data(2)])
}

/// Press `data` under the operators' post `post` as the operator; wait for the press to be
/// answered and return the answer's notice (None: none).
async fn press(h: &Harness, post: i64, data: &str) -> Option<String> {
    let before = answers(h).len();
    let update = h.fake.push_callback(OPS, OPERATOR, post, data);
    let calls = h
        .until("the press answered", |c| {
            c.iter()
                .filter(|c| c.method == "answercallbackquery")
                .count()
                > before
        })
        .await;
    let answer = calls
        .iter()
        .filter(|c| c.method == "answercallbackquery")
        .nth(before)
        .expect("the answer");
    assert_eq!(answer.params["callback_query_id"], format!("cb{update}"));
    answer.params["text"].as_str().map(String::from)
}

#[tokio::test]
async fn operators_take_hand_back_and_close_with_the_buttons_under_the_handoff_post() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    cfg.operators_chat = Some(OPS);
    let h = Harness::start(bot, cfg).await;
    let handoffs = &h.svc.context().handoffs;
    h.fake.push_text(CUSTOMER, "my router is on fire");
    h.until_final(CUSTOMER, "echo: my router is on fire").await;
    let (post, [take, hand_back, close]) = handoff_post(&h).await;
    assert!(handoffs.active(CUSTOMER));

    // Take: the operators hear who has the chat; it stays with the humans, buttons and all.
    let notice = press(&h, post, &take).await;
    assert_eq!(
        notice.as_deref(),
        Some("You have chat 101. Reply to its messages to answer.")
    );
    h.until_text(OPS, "who took the chat", |t| {
        t == "User777 is taking chat 101."
    })
    .await;
    assert!(handoffs.active(CUSTOMER));
    assert_eq!(h.fake.buttons(OPS, post).len(), 3, "the buttons stay");

    // Hand back: the press is answered, the buttons go, and the bot answers the customer.
    assert_eq!(press(&h, post, &hand_back).await, None);
    back_with_the_bot(&h, "thanks").await;
    assert!(!handoffs.active(CUSTOMER));
    h.until_text(OPS, "the operators told", |t| {
        t == "Chat 101 is back with the bot (operator)."
    })
    .await;
    h.until("the used buttons removed", |_| {
        h.fake.buttons(OPS, post).is_empty()
    })
    .await;

    // The used post's buttons are expired now: pressing one changes nothing.
    let ops_before = h.fake.chat_texts(OPS).len();
    assert_eq!(
        press(&h, post, &take).await.as_deref(),
        Some(EXPIRED),
        "Take on a used post"
    );
    assert!(!handoffs.active(CUSTOMER));
    assert_eq!(h.fake.chat_texts(OPS).len(), ops_before, "nothing said");

    // Close, on a second handoff: the chat is back with the bot in a new conversation.
    let (post2, [_, hand_back2, close2]) = handoff_post(&h).await;
    assert_ne!(post2, post);
    assert_eq!(press(&h, post2, &close2).await, None);
    h.until_text(CUSTOMER, "the closing notice", |t| {
        t == "This conversation is closed. Write again any time to start a new one."
    })
    .await;
    assert!(!handoffs.active(CUSTOMER));
    h.fake.push_text(CUSTOMER, "new question");
    h.until_final(CUSTOMER, "echo: new question").await;
    let first = store.find_session("tg-101").unwrap().unwrap().id;
    let second = store
        .find_session("tg-101-2")
        .unwrap()
        .expect("a new one")
        .id;
    let texts = |sid| -> Vec<String> {
        store
            .messages(sid)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    assert_eq!(texts(second), ["new question", "echo: new question"]);
    assert!(!texts(first).contains(&"new question".to_string()));

    // Expired too: Hand back and Close of the closed post, and Close of the first one.
    let sessions = store.sessions().unwrap().len();
    for (p, data) in [(post2, &hand_back2), (post2, &close2), (post, &close)] {
        assert_eq!(press(&h, p, data).await.as_deref(), Some(EXPIRED));
    }
    assert_eq!(store.sessions().unwrap().len(), sessions, "no new session");
    assert!(!handoffs.active(CUSTOMER));
    let m = h.svc.metrics();
    assert_eq!(m.buttons_expired.load(Relaxed), 4);
    assert_eq!(m.button_presses.load(Relaxed), 7);
    h.stop().await;
}
