//! Telegram on the real default model (not ignored, kept short: small prompts, few tokens):
//! two chats at once on two slots, each streaming drafts while both are being generated.

use super::{Harness, bot_with_store, finals, test_config, to_chat};
use crate::common::model_path;
use parlor::engine::{EngineSettings, LlamaEngine};
use parlor::persona::Persona;
use parlor::testkit::fake_telegram::Call;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A persona with a short prompt (so two chats' prompts take a moment, not the acme persona's
/// 600 tokens each), greedy, at most `max_tokens` per reply.
pub fn tiny_persona(max_tokens: u32) -> Persona {
    let yaml = format!(
        "name: Tiny\nsystem: You are a helpful assistant.\nsampling:\n  temperature: 0.0\n  seed: 7\n  max_tokens: {max_tokens}\ncontext:\n  window: 1024\n  reply_reserve: 64\n"
    );
    Persona::parse(Path::new("tiny.yaml"), &yaml).expect("the tiny persona parses")
}

/// The default model with `slots` slots of 1024 tokens.
pub fn small_engine(slots: u32) -> Arc<LlamaEngine> {
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 1024;
    s.slots = slots;
    s.threads = Some(2);
    Arc::new(LlamaEngine::load(s).expect("default model loads"))
}

/// When the first successful draft with text reached `chat`.
fn first_draft(calls: &[Call], chat: i64) -> Option<Instant> {
    to_chat(calls, "sendmessagedraft", chat)
        .iter()
        .find(|c| c.ok && !c.text().trim().is_empty())
        .map(|c| c.at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chats_at_once_on_two_slots_stream_drafts_while_both_are_generated() {
    let (_dir, bot, store) = bot_with_store(small_engine(2));
    bot.set_persona(tiny_persona(48));
    let h = Harness::start(bot, test_config()).await;
    let (a, b) = (701, 702);
    h.fake.push_text(a, "Tell me a story about a brave knight.");
    h.fake.push_text(b, "Describe a walk in a quiet forest.");
    let calls = h
        .fake
        .wait_for(Duration::from_secs(300), |c| {
            !finals(c, a).is_empty() && !finals(c, b).is_empty()
        })
        .await
        .unwrap_or_else(|c| panic!("both replies within 300 s: {:#?}", super::summary(&c)));
    let final_at = |chat| finals(&calls, chat)[0].at;
    for (chat, other) in [(a, b), (b, a)] {
        let draft = first_draft(&calls, chat)
            .unwrap_or_else(|| panic!("chat {chat} saw its reply streamed as drafts"));
        assert!(
            draft < final_at(chat),
            "chat {chat}: draft before its final"
        );
        // Both were being generated at once: each showed text before the other finished.
        assert!(
            draft < final_at(other),
            "chat {chat} streamed only after chat {other} was done: not concurrent"
        );
    }
    // What each customer sees is that chat's own stored reply.
    for chat in [a, b] {
        let sid = store
            .find_session(&format!("tg-{chat}"))
            .unwrap()
            .expect("session")
            .id;
        let msgs = store.messages(sid).unwrap();
        assert_eq!(msgs.len(), 2, "chat {chat}: question and reply stored");
        let shown = h.fake.chat_texts(chat);
        assert_eq!(shown.len(), 1, "chat {chat}: {shown:?}");
        let words: Vec<&str> = msgs[1]
            .text
            .split_whitespace()
            .filter(|w| w.chars().all(char::is_alphanumeric))
            .collect();
        assert!(!words.is_empty(), "chat {chat}: a real reply");
        assert!(
            words.iter().all(|w| shown[0].contains(w)),
            "chat {chat}: {shown:?} vs {:?}",
            msgs[1].text
        );
    }
    h.stop().await;
}
