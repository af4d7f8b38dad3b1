//! Conversation scenarios: greeting, a real model reply, several chats at once, flood control
//! and server errors, long replies, refusals and the commands.

use super::{Harness, Relay, bot, bot_with_store, finals, test_config, to_chat};
use crate::common::model_path;
use parlor::engine::scripted::Scripted;
use parlor::engine::{EngineSettings, LlamaEngine, ScriptedEngine};
use parlor::telegram::config::Streaming;
use parlor::telegram::split::utf16_len;
use parlor::testkit::fake_telegram::Failure;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn start_sends_the_persona_greeting_and_registers_commands() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(11, "/start");
    let calls = h
        .until("the greeting", |c| {
            to_chat(c, "sendmessage", 11).iter().any(|c| c.ok)
        })
        .await;
    let greet = &finals(&calls, 11)[0];
    assert_eq!(
        greet.text(),
        "Hello, this is Acme Routers support. How can I help you with your router today?"
    );
    let cmds = &h.fake.calls_to("setMyCommands")[0].params["commands"];
    let names: Vec<&str> = cmds
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "start", "help", "reset", "stop", "export", "forget", "human"
        ]
    );
    // The webhook is deleted before polling starts.
    let order: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    let del = order
        .iter()
        .position(|m| *m == "deletewebhook")
        .expect("deleteWebhook called");
    assert!(del < order.iter().position(|m| *m == "getupdates").unwrap());
    h.stop().await;
}

#[tokio::test]
async fn a_real_reply_from_the_default_model_streams_and_is_stored() {
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 2048;
    s.slots = 1;
    s.threads = Some(2);
    let engine = Arc::new(LlamaEngine::load(s).expect("default model loads"));
    let (_dir, bot, store) = bot_with_store(engine);
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(21, "How long is the warranty?");
    // Generous: the machine may be busy; this is a deadline, not a speed assertion.
    let calls = h
        .fake
        .wait_for(Duration::from_secs(300), |c| !finals(c, 21).is_empty())
        .await
        .expect("the model's final reply");
    assert!(
        !to_chat(&calls, "sendchataction", 21).is_empty(),
        "typing shown while generating"
    );
    let final_text = h.fake.chat_texts(21).pop().expect("a reply");
    let session = store
        .find_session("tg-21")
        .unwrap()
        .expect("session of chat 21");
    let msgs = store.messages(session.id).unwrap();
    assert_eq!(msgs.len(), 2, "question and reply stored");
    assert_eq!(msgs[0].text, "How long is the warranty?");
    assert!(!msgs[1].text.trim().is_empty());
    // What the customer sees is the stored reply (rendered: Markdown marks removed).
    let words: Vec<&str> = msgs[1]
        .text
        .split_whitespace()
        .filter(|w| w.chars().all(char::is_alphanumeric))
        .collect();
    assert!(
        words.iter().all(|w| final_text.contains(w)),
        "{final_text:?} vs {:?}",
        msgs[1].text
    );
    h.stop().await;
}

#[tokio::test]
async fn three_chats_at_once_are_all_answered_once() {
    let engine = ScriptedEngine::new([]).with_step(Duration::from_millis(5));
    let (_dir, bot) = bot(Arc::new(engine));
    let h = Harness::start(bot, test_config()).await;
    for user in [31, 32, 33] {
        h.fake.push_text(user, &format!("question from {user}"));
    }
    let calls = h
        .until("three replies", |c| {
            [31, 32, 33].iter().all(|u| !finals(c, *u).is_empty())
        })
        .await;
    for user in [31, 32, 33] {
        let f = finals(&calls, user);
        assert_eq!(f.len(), 1, "one final message in chat {user}");
        assert_eq!(f[0].text(), format!("echo: question from {user}"));
    }
    h.stop().await;
}

#[tokio::test]
async fn flood_control_on_send_message_is_waited_out_and_the_reply_arrives_once() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    h.fake.fail_next("sendMessage", Failure::RetryAfter(1));
    h.fake.push_text(41, "hello");
    let calls = h.until("the reply", |c| !finals(c, 41).is_empty()).await;
    let sends = to_chat(&calls, "sendmessage", 41);
    assert!(!sends[0].ok, "first attempt got the 429");
    let ok = sends.iter().find(|c| c.ok).unwrap();
    assert!(
        ok.at.duration_since(sends[0].at) >= Duration::from_secs(1),
        "retry_after honoured"
    );
    assert_eq!(finals(&calls, 41).len(), 1);
    assert_eq!(h.fake.chat_texts(41), ["echo: hello"]);
    assert_eq!(
        h.svc
            .metrics()
            .flood_waits
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn flood_control_on_edits_pauses_every_sender_and_the_reply_arrives_once() {
    // The test writes the reply piece by piece, so the 429 lands on the first edit by
    // construction (no race between a scripted pace and the edit interval).
    let relay = Relay::new();
    let (_dir, bot) = bot(relay.clone());
    let mut cfg = test_config();
    cfg.streaming = Streaming::Edit;
    let h = Harness::start(bot, cfg).await;
    h.fake.fail_next("editMessageText", Failure::RetryAfter(1));
    h.fake.push_text(42, "tell me a lot");
    let turn = relay.next_turn().await;
    turn.token("word0 ").await;
    h.until("the streamed message", |c| {
        to_chat(c, "sendmessage", 42).iter().any(|c| c.ok)
    })
    .await;
    turn.token("word1 ").await;
    let calls = h
        .until("the 429'd edit", |c| {
            to_chat(c, "editmessagetext", 42).iter().any(|c| !c.ok)
        })
        .await;
    let limited = calls
        .iter()
        .find(|c| c.method == "editmessagetext" && !c.ok)
        .expect("the 429'd edit")
        .at;
    let words: String = (0..40).map(|i| format!("word{i} ")).collect();
    for i in 2..40 {
        turn.token(&format!("word{i} ")).await;
    }
    turn.done().await;
    let calls = h
        .until_text(42, "the whole reply", |t| t == words.trim())
        .await;
    let after: Vec<_> = calls
        .iter()
        .filter(|c| c.at > limited && c.chat() == Some(42) && c.method != "sendchataction")
        .collect();
    assert!(!after.is_empty());
    for c in &after {
        assert!(
            c.at.duration_since(limited) >= Duration::from_secs(1),
            "{} sent during the pause",
            c.method
        );
    }
    // One message, edited to the whole reply: nothing sent twice.
    assert_eq!(h.fake.chat_texts(42), [words.trim()]);
    h.stop().await;
}

#[tokio::test]
async fn a_server_error_is_retried_and_the_reply_arrives_once() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    h.fake.fail_next("sendMessage", Failure::Status(500));
    h.fake.push_text(51, "are you there?");
    let calls = h.until("the reply", |c| !finals(c, 51).is_empty()).await;
    let sends = to_chat(&calls, "sendmessage", 51);
    assert_eq!(
        sends.iter().map(|c| c.ok).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(h.fake.chat_texts(51), ["echo: are you there?"]);
    assert_eq!(
        h.svc
            .metrics()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn rejected_html_is_resent_as_plain_text() {
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([Scripted::Text(
        "**Bold** answer".into(),
    )])));
    let h = Harness::start(bot, test_config()).await;
    h.fake.fail_next("sendMessage", Failure::ParseEntities);
    h.fake.push_text(52, "hi");
    let calls = h
        .until("the plain reply", |c| {
            to_chat(c, "sendmessage", 52).iter().any(|c| c.ok)
        })
        .await;
    let sends = to_chat(&calls, "sendmessage", 52);
    assert!(sends[0].is_html() && !sends[0].ok);
    assert!(!sends[1].is_html() && sends[1].ok);
    assert_eq!(h.fake.chat_texts(52), ["**Bold** answer"]);
    h.stop().await;
}

#[tokio::test]
async fn a_long_reply_is_split_under_the_limit_with_code_blocks_reopened() {
    let para =
        "This paragraph explains one more step of the router set-up in plain words. ".repeat(20);
    let code: String = (0..200)
        .map(|i| format!("set option{i} = value{i}\n"))
        .collect();
    let long = format!(
        "{para}\n\n{para}\n\n{para}\n\n```ini\n{code}```\n\n{para}\n\n{para}\n\n{para}\n\n{para}\n\n{para}"
    );
    assert!(utf16_len(&long) > 3 * 4096);
    let (_dir, bot) = bot(Arc::new(ScriptedEngine::new([Scripted::Text(
        long.clone(),
    )])));
    bot.set_persona(super::persona_with_max_tokens(30_000));
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(61, "explain everything");
    let calls = h
        .until("the whole reply", |c| {
            let f = finals(c, 61);
            let all: String = f.iter().map(|c| c.text()).collect();
            f.len() >= 4
                && all.contains("set option199 = value199")
                && f.last().is_some_and(|c| c.text().ends_with(para.trim()))
        })
        .await;
    let parts = finals(&calls, 61);
    assert!(parts.len() >= 4, "split into {} messages", parts.len());
    let shown = h.fake.chat_texts(61);
    for t in &shown {
        assert!(utf16_len(t) <= 4096, "a message of {} units", utf16_len(t));
    }
    let code_parts: Vec<_> = parts
        .iter()
        .filter(|c| c.text().contains("<pre>"))
        .collect();
    assert!(code_parts.len() >= 2, "the code block spans messages");
    for c in &code_parts {
        assert_eq!(
            c.text().matches("<pre>").count(),
            c.text().matches("</pre>").count()
        );
    }
    let all = shown.join("\n");
    for i in 0..200 {
        assert!(
            all.contains(&format!("set option{i} = value{i}")),
            "line {i} missing"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_refused_user_gets_the_refusal_and_no_reply() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let mut cfg = test_config();
    cfg.allowed_users = vec![71];
    cfg.refusal = "Sorry, this bot is for Acme staff only.".into();
    let h = Harness::start(bot, cfg).await;
    h.fake.push_text(72, "let me in");
    h.fake.push_text(71, "I am allowed");
    let calls = h
        .until("the allowed user's reply", |c| !finals(c, 71).is_empty())
        .await;
    assert_eq!(
        h.fake.chat_texts(72),
        ["Sorry, this bot is for Acme staff only."]
    );
    assert!(to_chat(&calls, "sendchataction", 72).is_empty());
    assert!(
        store.find_session("tg-72").unwrap().is_none(),
        "nothing stored for a refused user"
    );
    h.stop().await;
}

#[tokio::test]
async fn reset_export_and_forget_work() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(81, "first question");
    h.until("reply 1", |c| !finals(c, 81).is_empty()).await;
    let raw = h.export(81).await;
    assert!(
        raw.contains("conversation-81.md")
            && raw.contains("first question")
            && raw.contains("echo: first question")
    );
    h.fake.push_text(81, "/reset");
    h.until_text(81, "reset", |t| t.starts_with("Started a new conversation"))
        .await;
    assert!(
        store.find_session("tg-81-2").unwrap().is_some(),
        "a new session after /reset"
    );
    h.fake.push_text(81, "/forget");
    h.until_text(81, "the confirmation question", |t| {
        t.contains("/forget yes")
    })
    .await;
    assert!(
        store.find_session("tg-81").unwrap().is_some(),
        "nothing deleted before confirming"
    );
    h.fake.push_text(81, "/forget yes");
    h.until_text(81, "forgotten", |t| {
        t.starts_with("Done: I erased 2 conversations")
    })
    .await;
    assert!(store.find_session("tg-81").unwrap().is_none());
    assert!(store.find_session("tg-81-2").unwrap().is_none());
    h.stop().await;
}

#[tokio::test]
async fn an_end_session_rule_makes_the_next_message_start_a_new_session() {
    let (_dir, bot, store) = bot_with_store(Arc::new(ScriptedEngine::new([])));
    bot.set_persona(super::persona_with_rules(
        "  - id: goodbye\n    when: { contains_any: [bye] }\n    then: [ { reply: \"Goodbye!\" }, end_session ]\n",
    ));
    let h = Harness::start(bot, test_config()).await;
    h.fake.push_text(82, "hello");
    h.until_final(82, "echo: hello").await;
    h.fake.push_text(82, "ok bye");
    h.until_final(82, "Goodbye!").await;
    h.fake.push_text(82, "hello again");
    h.until_final(82, "echo: hello again").await;
    let texts = |name: &str| -> Vec<String> {
        let sid = store.find_session(name).unwrap().expect(name).id;
        store
            .messages(sid)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    assert_eq!(
        texts("tg-82"),
        ["hello", "echo: hello", "ok bye", "Goodbye!"],
        "the ended session keeps its conversation"
    );
    assert_eq!(
        texts("tg-82-2"),
        ["hello again", "echo: hello again"],
        "the next message started a new session"
    );
    h.stop().await;
}
