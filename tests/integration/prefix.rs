//! The shared persona prefix on the real model: a new conversation takes the persona's prefix
//! from another slot, from its own slot's last conversation, or from a state saved by an
//! earlier engine, instead of evaluating it; and its greedy reply is the same as when it
//! evaluated the prefix itself (golden). Any start two prompts share is taken the same way,
//! even one that ends inside a message.

use crate::engine::{engine, run};
use parlor::chat::{ChatMessage, Role};
use parlor::engine::{GenerateRequest, Sampling};

/// A persona preamble of a few hundred tokens: system prompt, one example turn, a greeting.
fn preamble() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(
            Role::System,
            "You are Ada, the support agent of Acme Routers. Answer politely and briefly, using \
             only these facts. Products: Acme R1 (Wi-Fi 6, 2 antennas) and Acme R2 Pro (Wi-Fi 7, \
             mesh, 4 antennas). Shipping: free within the EU, 2 to 4 business days. Returns: \
             within 30 days of delivery, in the original box. Warranty: 2 years from purchase. \
             Reset: hold the RESET button on the back for 10 seconds until the light blinks \
             orange. Support hours: Monday to Friday, 9:00 to 18:00 CET.",
        ),
        ChatMessage::new(Role::User, "How long is the warranty?"),
        ChatMessage::new(
            Role::Assistant,
            "Acme routers have a 2-year warranty from the date of purchase.",
        ),
        ChatMessage::new(
            Role::Assistant,
            "Hello, this is Acme support. How can I help?",
        ),
    ]
}

fn new_chat(key: &str, text: &str) -> GenerateRequest {
    let mut messages = preamble();
    let prefix_messages = messages.len();
    messages.push(ChatMessage::new(Role::User, text));
    GenerateRequest {
        cache_key: key.into(),
        messages,
        prefix_messages,
        sampling: Sampling::greedy(),
        max_tokens: 24,
        stop: vec![],
    }
}

const OTHER: &str = "Do you ship to Norway?";
const ASKED: &str = "How do I reset my router?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_replies_are_identical_with_and_without_the_shared_prefix() {
    // Alone: the new chat evaluates the whole prompt (its prefix in batches of its own).
    let alone = engine(2, None);
    let (golden, stats) = run(&*alone, new_chat("alone", ASKED)).await;
    assert_eq!(stats.reused_tokens, 0);
    assert!(!golden.trim().is_empty());
    drop(alone);

    // Another chat of the persona first, in another slot: the prefix is copied across.
    let shared = engine(2, None);
    let (_, first) = run(&*shared, new_chat("other", OTHER)).await;
    assert_eq!(first.reused_tokens, 0);
    let (text, stats) = run(&*shared, new_chat("asked", ASKED)).await;
    assert!(
        stats.reused_tokens >= 100,
        "the prefix was taken from the other slot, not evaluated: {stats:?}"
    );
    assert_eq!(
        text, golden,
        "greedy reply with a prefix copied from another slot"
    );
    drop(shared);

    // One slot: the slot's last conversation had the same persona, so it keeps the prefix.
    let single = engine(1, None);
    run(&*single, new_chat("other", OTHER)).await;
    let (text, stats) = run(&*single, new_chat("asked", ASKED)).await;
    assert!(stats.reused_tokens >= 100, "{stats:?}");
    assert_eq!(
        text, golden,
        "greedy reply with the prefix kept in its slot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_loads_the_prefix_an_earlier_one_saved() {
    let dir = tempfile::tempdir().unwrap();
    let first = engine(1, Some(dir.path()));
    let (_, stats) = run(&*first, new_chat("other", OTHER)).await;
    assert_eq!(stats.reused_tokens, 0);
    parlor::engine::Engine::close(&*first);
    drop(first);

    let second = engine(1, Some(dir.path()));
    let (text, stats) = run(&*second, new_chat("asked", ASKED)).await;
    assert!(
        stats.reused_tokens >= 100,
        "the prefix came from the saved state: {stats:?}"
    );
    let alone = engine(1, None);
    let (golden, _) = run(&*alone, new_chat("alone", ASKED)).await;
    assert_eq!(
        text, golden,
        "greedy reply with the prefix loaded from disk"
    );

    // A corrupt prefix state is ignored: the prefix is evaluated again, the reply unchanged.
    parlor::engine::Engine::close(&*second);
    drop(second);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "kv") {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let third = engine(1, Some(dir.path()));
    let (text, stats) = run(&*third, new_chat("again", ASKED)).await;
    assert_eq!(stats.reused_tokens, 0, "{stats:?}");
    assert_eq!(text, golden);
}

/// A new chat with no persona prefix (a one-line system prompt) whose message begins like
/// another chat's: the prompts share a start that ends inside the user's message.
fn story(key: &str, about: &str) -> GenerateRequest {
    GenerateRequest {
        cache_key: key.into(),
        messages: vec![
            ChatMessage::new(Role::System, "You are a helpful assistant."),
            ChatMessage::new(
                Role::User,
                format!(
                    "Please write a short story for my daughter, who is seven years old and \
                     loves animals, about {about}."
                ),
            ),
        ],
        prefix_messages: 0,
        sampling: Sampling::greedy(),
        max_tokens: 24,
        stop: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_a_prompt_start_cut_inside_a_message_is_shared_without_changing_the_reply() {
    let alone = engine(1, None);
    let (golden, stats) = run(&*alone, story("alone", "a fox")).await;
    assert_eq!(stats.reused_tokens, 0);
    assert!(!golden.trim().is_empty());
    // Another chat the model already answered, in the same (only) slot: the new chat keeps the
    // tokens both prompts begin with, well into the user's message (the system prompt and the
    // chat template's markers are ~15 tokens).
    let (_, _) = run(&*alone, story("other", "a whale")).await;
    let (text, stats) = run(&*alone, story("again", "a fox")).await;
    assert!(stats.reused_tokens >= 30, "{stats:?}");
    assert_eq!(text, golden, "greedy reply with the start kept in its slot");
    drop(alone);

    // The same across slots: the start is copied from the slot that holds it.
    let shared = engine(2, None);
    let (_, first) = run(&*shared, story("other", "a whale")).await;
    assert_eq!(first.reused_tokens, 0);
    let (text, stats) = run(&*shared, story("asked", "a fox")).await;
    assert!(
        stats.reused_tokens >= 30 && stats.reused_tokens < stats.prompt_tokens,
        "the start came from the other slot, the rest was evaluated: {stats:?}"
    );
    assert_eq!(
        text, golden,
        "greedy reply with a start copied from another slot"
    );
}
