//! Many chats on one engine (shared batch, no leakage, independent cancellation) and warm
//! resume across restarts (saved per-session KV state; corrupt state falls back cleanly).
//! The `golden_*` tests compare greedy text across batch shapes (see the `engine` module and
//! "Golden tests" in the README).

use crate::engine::{engine, next_event, run};
use parlor::chat::{ChatMessage, Role};
use parlor::engine::{Engine, EngineEvent, GenerateRequest, Sampling};

/// Open questions with long replies, so any leak of another chat's tokens or cache, or any
/// difference in how a slot's attention is computed, shows. None of them meets a near tie:
/// llama.cpp computes the Q8_0 output head with a different kernel for one row (gemv) than
/// for several (tinyBLAS), so a chat alone and in a batch round differently in the last bits,
/// and a near-tie token can flip (the README's "Golden tests"). Two earlier questions ("What
/// color is the sky on a clear day?", "How many legs does a spider have?") flipped that way on
/// an Intel Xeon in 1 of 2 batched runs each (diverging at "wisps"/"wispy" and at the first
/// token); these four matched in every run there.
const QUESTIONS: [&str; 4] = [
    "Why do birds sing?",
    "Write one sentence about cats.",
    "What is water made of?",
    "Give me a tip for learning to cook.",
];

fn ask(key: &str, history: &[String], max_tokens: u32) -> GenerateRequest {
    let mut messages = vec![ChatMessage::new(
        Role::System,
        "You are a helpful assistant.",
    )];
    for (i, t) in history.iter().enumerate() {
        let role = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        messages.push(ChatMessage::new(role, t.clone()));
    }
    GenerateRequest {
        cache_key: key.into(),
        prefix_messages: 0,
        messages,
        sampling: Sampling::greedy(),
        max_tokens,
        stop: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_four_concurrent_chats_get_the_same_replies_as_alone() {
    let alone_engine = engine(1, None);
    let mut alone = Vec::new();
    for (i, q) in QUESTIONS.iter().enumerate() {
        let (text, _) = run(
            &*alone_engine,
            ask(&format!("alone{i}"), &[q.to_string()], 32),
        )
        .await;
        alone.push(text);
    }
    drop(alone_engine);

    let shared = engine(4, None);
    // A new chat may take from another slot only the tokens its prompt shares with another
    // chat's prompt (the system prompt and the template's markers), never more.
    let prompts: Vec<_> = QUESTIONS
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let req = ask(&format!("chat{i}"), &[q.to_string()], 32);
            shared.tokenize_prompt(&req.messages).unwrap()
        })
        .collect();
    let shared_start = |i: usize| {
        (0..prompts.len())
            .filter(|&j| j != i)
            .map(|j| {
                prompts[i]
                    .iter()
                    .zip(&prompts[j])
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .max()
            .unwrap()
    };
    let tasks: Vec<_> = QUESTIONS
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let e = shared.clone();
            let req = ask(&format!("chat{i}"), &[q.to_string()], 32);
            tokio::spawn(async move { run(&*e, req).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let (text, stats) = t.await.unwrap();
        assert_eq!(
            text, alone[i],
            "chat {i} answered differently when sharing the engine: nothing may leak between slots"
        );
        assert!(
            stats.reused_tokens as usize <= shared_start(i),
            "chat {i} took {} tokens from the cache; its prompt shares only {} with the others",
            stats.reused_tokens,
            shared_start(i)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_cancelling_one_of_several_replies_leaves_the_others_intact() {
    let e = engine(3, None);
    let (expected_a, _) = run(&*e, ask("ref-a", &[QUESTIONS[0].into()], 24)).await;
    let (expected_b, _) = run(&*e, ask("ref-b", &[QUESTIONS[2].into()], 24)).await;

    let a = {
        let e = e.clone();
        tokio::spawn(async move { run(&*e, ask("a", &[QUESTIONS[0].into()], 24)).await })
    };
    let mut victim = e.generate(ask("victim", &["Tell me a very long story.".into()], 400));
    let b = {
        let e = e.clone();
        tokio::spawn(async move { run(&*e, ask("b", &[QUESTIONS[2].into()], 24)).await })
    };
    loop {
        if let EngineEvent::Token(_) = next_event(&mut victim, "the victim's first token")
            .await
            .expect("victim streams")
        {
            break;
        }
    }
    drop(victim);
    assert_eq!(a.await.unwrap().0, expected_a);
    assert_eq!(b.await.unwrap().0, expected_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_chats_than_slots_wait_in_line_and_are_told_their_position() {
    let e = engine(1, None);
    let first = e.generate(ask("q1", &[QUESTIONS[0].into()], 16));
    let mut second = e.generate(ask("q2", &[QUESTIONS[1].into()], 16));
    let mut saw_position = false;
    let mut text = String::new();
    while let Some(ev) = next_event(&mut second, "the queued chat").await {
        match ev {
            EngineEvent::Queued { position } => {
                assert_eq!(position, 1);
                saw_position = true;
            }
            EngineEvent::Token(t) => text.push_str(&t),
            EngineEvent::Done(_) => break,
            EngineEvent::Failed(e) => panic!("{e}"),
        }
    }
    drop(first);
    assert!(saw_position, "the waiting chat was told it is next in line");
    assert!(!text.is_empty());
}

const Q1: &str = "My name is Ada. What is a good name for a cat?";
const Q2: &str = "And one for a dog?";

/// The session's turn-2 reply when both turns run in one engine (no restart).
async fn turn_two_without_restart() -> String {
    let e = engine(1, None);
    let (a1, _) = run(&*e, ask("session-7", &[Q1.to_string()], 24)).await;
    run(
        &*e,
        ask("session-7", &[Q1.to_string(), a1, Q2.to_string()], 24),
    )
    .await
    .0
}

/// Turn 1 in an engine saving state to `dir`, then shut that engine down (which saves).
async fn turn_one_then_shutdown(
    dir: &std::path::Path,
) -> (String, parlor::engine::GenerationStats) {
    let before = engine(1, Some(dir));
    run(&*before, ask("session-7", &[Q1.to_string()], 24)).await
}

/// Turn 2 in a fresh engine over `dir` (a restarted process).
async fn turn_two_after_restart(
    dir: &std::path::Path,
    a1: String,
) -> (String, parlor::engine::GenerationStats) {
    let after = engine(1, Some(dir));
    run(
        &*after,
        ask("session-7", &[Q1.to_string(), a1, Q2.to_string()], 24),
    )
    .await
}

/// The saved state files in `dir`.
fn state_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "kv"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_a_session_resumed_from_saved_state_continues_exactly_as_without_a_restart() {
    let expected = turn_two_without_restart().await;
    let dir = tempfile::tempdir().unwrap();
    let (a1, s1) = turn_one_then_shutdown(dir.path()).await;
    assert_eq!(state_files(dir.path()).len(), 1, "one state file saved");
    let (text, s2) = turn_two_after_restart(dir.path(), a1).await;
    assert_eq!(
        text, expected,
        "same text as the session would have produced without a restart"
    );
    assert!(
        s2.reused_tokens >= s1.prompt_tokens,
        "turn 2 after restart reused {} tokens (turn 1 prompt: {})",
        s2.reused_tokens,
        s1.prompt_tokens
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_a_corrupt_saved_state_is_ignored_and_the_prompt_evaluated_again() {
    let expected = turn_two_without_restart().await;
    let dir = tempfile::tempdir().unwrap();
    let (a1, _) = turn_one_then_shutdown(dir.path()).await;
    let files = state_files(dir.path());
    assert_eq!(files.len(), 1, "one state file saved");
    for path in files {
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, bytes).unwrap();
    }
    let (text, s2) = turn_two_after_restart(dir.path(), a1).await;
    assert_eq!(s2.reused_tokens, 0, "the corrupt state was not used");
    assert_eq!(text, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_chats_on_two_slots_evict_save_and_reload_their_state_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(2, Some(dir.path()));
    let questions = &QUESTIONS[..3];
    // Turn 1 of three chats at once: the third waits for a slot, then evicts one (saved).
    let firsts: Vec<_> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let (e, req) = (e.clone(), ask(&format!("evict{i}"), &[q.to_string()], 8));
            tokio::spawn(async move { run(&*e, req).await })
        })
        .collect();
    let mut turn_one = Vec::new();
    for t in firsts {
        turn_one.push(t.await.unwrap());
    }
    assert!(
        !state_files(dir.path()).is_empty(),
        "an evicted chat's state was saved"
    );
    // Turn 2 of all three at once: two slots cannot hold three caches, so at least one chat
    // reloads its saved state; every chat still reuses its whole turn-1 prompt.
    let seconds: Vec<_> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let history = [q.to_string(), turn_one[i].0.clone(), "Why?".to_string()];
            let (e, req) = (e.clone(), ask(&format!("evict{i}"), &history, 8));
            tokio::spawn(async move { run(&*e, req).await })
        })
        .collect();
    for (i, t) in seconds.into_iter().enumerate() {
        let (text, stats) = t.await.unwrap();
        assert!(!text.is_empty(), "chat {i} answered");
        assert!(
            stats.reused_tokens >= turn_one[i].1.prompt_tokens,
            "chat {i} reused {} tokens of its {}-token turn-1 prompt",
            stats.reused_tokens,
            turn_one[i].1.prompt_tokens
        );
    }
}
