//! The real llama.cpp engine on the real default model: determinism, prefix reuse, stop
//! strings, limits, cancellation, bad model files, the full queue, concurrent slots and warm
//! resume. Every wait on the engine has a deadline ([`next_event`]): a hang fails the test
//! with a message instead of stalling CI.
//!
//! Tests named `golden_*` (here and in `slots`) compare greedy text produced in different
//! batch shapes (alone or beside other chats, pre-filled or not, resumed or re-evaluated).
//! They hold because this llama.cpp build computes each sequence bit-identically; a llama.cpp
//! update or a GPU build may change that: see "Golden tests" in the README.

use crate::common::model_path;
use parlor::chat::{ChatMessage, FinishReason, Role};
use parlor::engine::{
    Engine, EngineError, EngineEvent, EngineSettings, GenerateRequest, GenerationStats,
    LlamaEngine, Sampling,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

/// The longest wait for one event from a real engine (generous: CI machines are loaded).
pub const DEADLINE: Duration = Duration::from_secs(300);

/// The next event of `rx` (None: the stream ended); fails the test after [`DEADLINE`].
pub async fn next_event(rx: &mut Receiver<EngineEvent>, what: &str) -> Option<EngineEvent> {
    match tokio::time::timeout(DEADLINE, rx.recv()).await {
        Ok(ev) => ev,
        Err(_) => panic!("no event from the engine within {DEADLINE:?} ({what})"),
    }
}

/// An engine on the default model with `slots` sequence slots.
pub fn engine(slots: u32, state_dir: Option<&Path>) -> Arc<LlamaEngine> {
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 2048;
    s.slots = slots;
    s.threads = Some(2);
    s.state_dir = state_dir.map(Path::to_path_buf);
    Arc::new(LlamaEngine::load(s).expect("the default model loads"))
}

fn request(key: &str, turns: &[&str], max_tokens: u32) -> GenerateRequest {
    let mut messages = vec![ChatMessage::new(
        Role::System,
        "You are a helpful assistant. Answer briefly.",
    )];
    for (i, t) in turns.iter().enumerate() {
        let role = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        messages.push(ChatMessage::new(role, *t));
    }
    GenerateRequest {
        cache_key: key.to_string(),
        prefix_messages: 0,
        messages,
        sampling: Sampling::greedy(),
        max_tokens,
        stop: vec![],
    }
}

/// Run a request to the end: the streamed text and the final stats.
pub async fn run(engine: &dyn Engine, req: GenerateRequest) -> (String, GenerationStats) {
    let mut rx = engine.generate(req);
    let mut text = String::new();
    while let Some(ev) = next_event(&mut rx, "a reply").await {
        match ev {
            EngineEvent::Token(t) => text.push_str(&t),
            EngineEvent::Done(stats) => return (text, stats),
            EngineEvent::Failed(e) => panic!("generation failed: {e}"),
            EngineEvent::Queued { .. } => {}
        }
    }
    panic!("stream ended without Done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_generation_is_repeatable_and_streams_real_text() {
    let e = engine(1, None);
    let (a, sa) = run(&*e, request("a", &["What is the capital of France?"], 32)).await;
    let (b, _) = run(&*e, request("b", &["What is the capital of France?"], 32)).await;
    assert!(!a.trim().is_empty(), "the model said something");
    assert_eq!(a, b, "same input, same greedy output");
    assert!(sa.completion_tokens > 0 && sa.prompt_tokens > 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_turn_reuses_the_cached_prefix() {
    let e = engine(1, None);
    let (first, s1) = run(&*e, request("chat", &["Name a fruit."], 24)).await;
    assert_eq!(s1.reused_tokens, 0);
    let (_, s2) = run(
        &*e,
        request("chat", &["Name a fruit.", &first, "Name another one."], 24),
    )
    .await;
    assert!(
        s2.reused_tokens >= s1.prompt_tokens,
        "turn 2 reused {} tokens, turn 1 prompt had {}",
        s2.reused_tokens,
        s1.prompt_tokens
    );
    assert!(s2.prompt_tokens > s2.reused_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_caps_the_reply() {
    let e = engine(1, None);
    let (_, s) = run(
        &*e,
        request("m", &["Tell me a long story about a dragon."], 5),
    )
    .await;
    assert_eq!(s.completion_tokens, 5);
    assert_eq!(s.finish, FinishReason::MaxTokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_string_ends_the_reply_before_it() {
    let e = engine(1, None);
    let q = ["Tell me a long story about a dragon."];
    let (full, _) = run(&*e, request("s1", &q, 40)).await;
    let words: Vec<&str> = full.split_whitespace().collect();
    assert!(
        words.len() > 6,
        "need a longer reply to pick a stop word: {full:?}"
    );
    let stop = words[5].to_string();
    let mut req = request("s2", &q, 40);
    req.stop = vec![stop.clone()];
    let (cut, s) = run(&*e, req).await;
    assert_eq!(s.finish, FinishReason::StopString);
    assert!(
        !cut.contains(&stop),
        "{cut:?} must not contain the stop string {stop:?}"
    );
    let at = full.find(&stop).expect("stop word is in the full reply");
    assert_eq!(
        cut,
        full[..at],
        "the reply is the text before the stop string"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_cancels_and_the_engine_keeps_serving() {
    let e = engine(1, None);
    let mut rx = e.generate(request("c", &["Tell me a long story about a dragon."], 400));
    loop {
        match next_event(&mut rx, "the first token")
            .await
            .expect("stream open")
        {
            EngineEvent::Token(_) => break,
            EngineEvent::Queued { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(rx);
    let (text, s) = run(&*e, request("c2", &["Say hello."], 8)).await;
    assert!(!text.is_empty());
    assert!(s.completion_tokens <= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_larger_than_the_window_is_refused_clearly() {
    let e = engine(1, None);
    let long = "word ".repeat(3000);
    let mut rx = e.generate(request("long", &[&long], 8));
    match next_event(&mut rx, "the refusal").await {
        Some(EngineEvent::Failed(EngineError::PromptTooLong { needed, available })) => {
            assert!(needed > available);
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
}

#[test]
fn token_counts_match_the_tokenized_prompt_also_when_remembered() {
    let e = engine(1, None);
    let msgs = [
        ChatMessage::new(Role::User, "Do you ship to Austria?"),
        ChatMessage::new(Role::Assistant, "Do you ship to Austria?"),
        ChatMessage::new(Role::System, "You are Acme's support bot.\nBe brief."),
        ChatMessage::new(Role::User, ""),
    ];
    for _ in 0..2 {
        for m in &msgs {
            let one = std::slice::from_ref(m);
            let exact = e.tokenize_prompt(one).expect("tokenize").len() as u32;
            assert_eq!(e.count_tokens(one).expect("count"), exact, "{m:?}");
        }
    }
    let whole = e.tokenize_prompt(&msgs).expect("tokenize").len() as u32;
    assert_eq!(e.count_tokens(&msgs).expect("count"), whole);
}

fn load_error(path: &Path) -> String {
    let mut s = EngineSettings::new(path, "smollm2-135m");
    s.context = 256;
    match LlamaEngine::load(s) {
        Ok(_) => panic!("{} must not load", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_model_files_give_errors_naming_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    let msg = load_error(&missing);
    assert!(
        msg.contains("missing.gguf") && msg.contains("parlor model pull"),
        "{msg}"
    );

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let msg = load_error(&empty);
    assert!(msg.contains("empty.gguf") && msg.contains("empty"), "{msg}");

    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, b"hello, this is not a model").unwrap();
    let msg = load_error(&text);
    assert!(
        msg.contains("notes.gguf") && msg.contains("not a GGUF"),
        "{msg}"
    );

    let random = dir.path().join("random.gguf");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let msg = load_error(&random);
    assert!(
        msg.contains("random.gguf") && msg.contains("not a GGUF"),
        "{msg}"
    );

    // A real header with the rest cut off: only llama.cpp can tell, and we show its reason.
    let truncated = dir.path().join("truncated.gguf");
    let real = std::fs::read(model_path()).unwrap();
    std::fs::write(&truncated, &real[..real.len() / 3]).unwrap();
    let msg = load_error(&truncated);
    eprintln!("truncated: {msg}");
    assert!(
        msg.contains("truncated.gguf") && msg.contains("could not load"),
        "{msg}"
    );
    assert!(
        msg.len() > "could not load model \"\": ".len() + truncated.display().to_string().len() + 5,
        "a reason is given: {msg}"
    );
}

/// Poll `done` until it holds; panics after a generous deadline (no fixed sleeps).
pub async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_an_idle_engine_prefills_the_next_turn_without_changing_the_reply() {
    let on = engine(1, None);
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 2048;
    s.threads = Some(2);
    s.prefill = false;
    let off = Arc::new(LlamaEngine::load(s).expect("the default model loads"));

    // Turn 1 is cut by max_tokens, so even its last sampled token is not in the cache yet.
    let q1 = "Name three fruits.";
    let (a_on, s1) = run(&*on, request("c", &[q1], 12)).await;
    let (a_off, _) = run(&*off, request("c", &[q1], 12)).await;
    assert_eq!(a_on, a_off);
    assert_eq!(s1.finish, FinishReason::MaxTokens);
    wait_until("the boundary of turn 2 is pre-filled", || {
        on.prefilled_tokens() > 0
    })
    .await;
    // The reply's last token plus ChatML's `<|im_end|>\n<|im_start|>user\n`.
    let prefilled = on.prefilled_tokens();
    assert!(prefilled >= 5, "pre-filled {prefilled} tokens");

    let turns = [q1, &a_on, "Which one is yellow?"];
    let (b_on, s2_on) = run(&*on, request("c", &turns, 24)).await;
    let (b_off, s2_off) = run(&*off, request("c", &turns, 24)).await;
    assert_eq!(b_on, b_off, "pre-filling must not change the reply");
    assert_eq!(off.prefilled_tokens(), 0);
    let evaluated = |g: &GenerationStats| g.prompt_tokens - g.reused_tokens;
    assert_eq!(
        evaluated(&s2_on) + prefilled as u32,
        evaluated(&s2_off),
        "what was pre-filled is not evaluated again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_a_head_start_evaluates_the_expected_prompt_before_its_request_without_changing_the_reply()
 {
    use parlor::chat::SessionId;
    use parlor::engine::session_cache_key;
    let hinted = engine(1, None);
    let plain = engine(1, None);
    let session = SessionId(7);
    let key = session_cache_key(session, "v1");
    let q1 = "Name three fruits.";
    let (a1, _) = run(&*hinted, request(&key, &[q1], 12)).await;
    let (a2, _) = run(&*plain, request(&key, &[q1], 12)).await;
    assert_eq!(a1, a2);

    // The hint comes before the request (as from `Bot::turn`): the prompt is evaluated in
    // between, and the request samples its first token from it.
    let q2 = "Which one is yellow?";
    let turns = [q1, &a1, q2];
    hinted.expect_turn(&key, Some(q2));
    let (b_hinted, s_hinted) = run(&*hinted, request(&key, &turns, 24)).await;
    let (b_plain, s_plain) = run(&*plain, request(&key, &turns, 24)).await;
    assert_eq!(hinted.head_starts(), 1, "the head start was claimed");
    assert_eq!(plain.head_starts(), 0);
    assert_eq!(b_hinted, b_plain, "a head start must not change the reply");
    let evaluated = |g: &GenerationStats| g.prompt_tokens - g.reused_tokens;
    assert_eq!(
        evaluated(&s_hinted),
        evaluated(&s_plain),
        "the tokens the head start evaluated count as the turn's"
    );
    assert!(evaluated(&s_hinted) > 4, "{s_hinted:?}");

    // A hint that does not match the request (the bot changed the prompt) is undone: the
    // request is evaluated as if it had not come.
    let q3 = "And which one is red?";
    let turns = [q1, &a1, q2, &b_hinted, q3];
    hinted.expect_turn(&key, Some("Something else entirely."));
    let (c_hinted, s_hinted) = run(&*hinted, request(&key, &turns, 24)).await;
    let (c_plain, s_plain) = run(&*plain, request(&key, &turns, 24)).await;
    assert_eq!(hinted.head_starts(), 1, "a wrong guess is not claimed");
    assert_eq!(c_hinted, c_plain, "a wrong guess must not change the reply");
    assert_eq!(evaluated(&s_hinted), evaluated(&s_plain));

    // Hints for another conversation, or one the engine does not hold, change nothing.
    hinted.expect_turn(&session_cache_key(SessionId(8), "v1"), Some("Hello?"));
    let q4 = "Thanks!";
    let turns = [q1, &a1, q2, &b_hinted, q3, &c_hinted, q4];
    hinted.expect_turn(&key, Some(q4));
    let (d_hinted, _) = run(&*hinted, request(&key, &turns, 16)).await;
    let (d_plain, _) = run(&*plain, request(&key, &turns, 16)).await;
    assert_eq!(hinted.head_starts(), 2);
    assert_eq!(d_hinted, d_plain);
}

/// A hint for a conversation no slot holds loads its saved state before the request comes
/// (saving the state of the conversation it replaces first); the request then finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_a_hint_loads_a_saved_conversation_before_its_request() {
    use parlor::chat::SessionId;
    use parlor::engine::session_cache_key;
    let dir = tempfile::tempdir().unwrap();
    let hinted = engine(1, Some(dir.path()));
    let plain = engine(1, None);
    let (a, b) = (
        session_cache_key(SessionId(1), "v1"),
        session_cache_key(SessionId(2), "v1"),
    );
    let q1 = "Name three fruits.";
    let (a1, _) = run(&*hinted, request(&a, &[q1], 12)).await;
    // Another conversation takes the only slot: the first is parked in memory (then saved).
    run(&*hinted, request(&b, &["Say hello."], 6)).await;
    let (p1, _) = run(&*plain, request(&a, &[q1], 12)).await;
    assert_eq!(a1, p1);

    let q2 = "Which one is yellow?";
    hinted.expect_turn(&a, None);
    wait_until("the saved conversation is loaded on the hint", || {
        hinted.restored_early() == 1
    })
    .await;
    let turns = [q1, &a1, q2];
    let (a2, s_hinted) = run(&*hinted, request(&a, &turns, 24)).await;
    let (p2, _) = run(&*plain, request(&a, &turns, 24)).await;
    assert_eq!(a2, p2, "a conversation loaded early answers the same");
    assert!(
        s_hinted.reused_tokens > 20,
        "the request found the loaded conversation: {s_hinted:?}"
    );
    assert_eq!(hinted.restored_early(), 1);
}

/// The raw llama-cpp-2 loops `parlor bench` measures the engine against (the library's own
/// limit) run on the real model, and refuse what does not fit the window.
#[test]
fn the_raw_loops_behind_the_bench_floors_run_on_the_real_model() {
    use parlor::bench::floor::{raw_batched_chats, raw_cached_turn_ms, raw_decode_loop};
    let e = engine(1, None);
    let prompt = e
        .tokenize_prompt(&request("raw", &["Say hello."], 8).messages)
        .unwrap();
    let speed = raw_decode_loop(&e, &prompt, 8, &Sampling::greedy()).unwrap();
    assert_eq!((speed.prompt_tokens, speed.generated), (prompt.len(), 8));
    assert!(
        speed.prompt_tps.is_finite() && speed.prompt_tps > 0.0,
        "{speed:?}"
    );
    assert!(
        speed.generation_tps.is_finite() && speed.generation_tps > 0.0,
        "{speed:?}"
    );

    let ms = raw_cached_turn_ms(&e, 200, 16, 2).unwrap();
    assert!(ms.is_finite() && ms > 0.0, "{ms}");
    let err = raw_cached_turn_ms(&e, 2040, 16, 1).unwrap_err().to_string();
    assert!(err.contains("do not fit the 2048-token window"), "{err}");

    let (first_ms, tps) = raw_batched_chats(&e, &[30, 40, 50, 60], 4).unwrap();
    assert!(first_ms.is_finite() && first_ms > 0.0, "{first_ms}");
    assert!(tps.is_finite() && tps > 0.0, "{tps}");
}

/// The restart floor: llama.cpp reads a state the engine saved (in this process, timed), and a
/// fresh `parlor bench` process started with the hidden floor option loads the model, reads
/// the same state, evaluates new tokens after it and prints the first reply token's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restart_floor_reads_a_state_the_engine_saved() {
    use parlor::bench::floor::{RestartFloor, raw_state_read_ms};
    let dir = tempfile::tempdir().unwrap();
    let saving = engine(1, Some(dir.path()));
    let (_, stats) = run(&*saving, request("floor", &["Say hello."], 8)).await;
    Engine::close(&*saving);
    drop(saving);
    let state = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "kv"))
        .expect("the engine saved the conversation's state");

    let e = engine(1, None);
    let (ms, tokens) = raw_state_read_ms(&e, &state, 2).unwrap();
    assert!(ms.is_finite() && ms > 0.0, "{ms}");
    assert!(
        tokens as u32 >= stats.prompt_tokens,
        "the state holds the prompt and the reply: {tokens} tokens, {stats:?}"
    );
    drop(e);

    let floor = RestartFloor {
        model: model_path(),
        state,
        threads: 2,
        window: 2048,
        new: 12,
    };
    let child = |f: &RestartFloor| {
        std::process::Command::new(crate::common::parlor_bin())
            .args(["bench", "--restart-floor-child"])
            .arg(serde_json::to_string(f).unwrap())
            .output()
            .unwrap()
    };
    let out = child(&floor);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty(), "the first token's text is printed");
    // A missing state file fails with the file named.
    let bad = RestartFloor {
        state: dir.path().join("missing.kv"),
        ..floor
    };
    let out = child(&bad);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.kv"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_the_engine_keeps_serving() {
    let e = engine(1, None);
    // Holds the one slot: its stream is not read, so it pauses once its outbox is full.
    let mut busy = e.generate(request(
        "busy",
        &["Tell me a long story about a dragon."],
        1000,
    ));
    loop {
        match next_event(&mut busy, "the busy chat's first token").await {
            Some(EngineEvent::Token(_)) => break,
            Some(EngineEvent::Queued { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The engine takes 256 waiting requests; a few more than that are refused. (Even if the
    // busy chat finished meanwhile, the slot could take only a few of them before the rest
    // are all submitted: each needs its prompt evaluated first.)
    let waiting: Vec<_> = (0..260)
        .map(|i| e.generate(request(&format!("w{i}"), &["Say hi."], 4)))
        .collect();
    let mut refused = Vec::new();
    let mut queued = 0;
    for mut rx in waiting {
        match next_event(&mut rx, "a queued request's first event").await {
            Some(EngineEvent::Queued { .. } | EngineEvent::Token(_)) => queued += 1,
            Some(EngineEvent::Failed(err)) => refused.push(err.to_string()),
            other => panic!("unexpected {other:?}"),
        }
        drop(rx);
    }
    assert!(!refused.is_empty() && queued >= 256 - 4, "{queued} queued");
    assert_eq!(
        refused[0],
        "the model is busy: 256 conversations are waiting; try again in a minute"
    );
    drop(busy);
    let (text, _) = run(&*e, request("after", &["Say hello."], 8)).await;
    assert!(
        !text.is_empty(),
        "the engine serves again once the queue is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_decode_fails_the_reply_forgets_its_cache_and_the_engine_keeps_serving() {
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 2048;
    s.slots = 2;
    s.threads = Some(2);
    let faults = s.fail_decodes.clone();
    let e = LlamaEngine::load(s).expect("the default model loads");
    let q = ["Name a fruit."];
    let (expected, first) = run(&e, request("victim", &q, 6)).await;
    // The next batch decode fails: the one holding turn 2's new prompt tokens.
    faults.store(1, std::sync::atomic::Ordering::Relaxed);
    let mut rx = e.generate(request("victim", &[q[0], &expected, "And a vegetable?"], 8));
    let failure = match next_event(&mut rx, "the failure").await {
        Some(EngineEvent::Failed(err)) => err.to_string(),
        other => panic!("expected the failure, got {other:?}"),
    };
    assert_eq!(
        failure,
        "generation failed: llama.cpp failed to evaluate the conversation: injected failure"
    );
    assert!(
        next_event(&mut rx, "the end of the failed stream")
            .await
            .is_none(),
        "nothing after the failure"
    );
    // The failed conversation's cache is forgotten, not half-trusted: its next turn evaluates
    // the whole prompt again and answers as a fresh engine would.
    let (again, stats) = run(&e, request("victim", &q, 6)).await;
    assert_eq!(stats.reused_tokens, 0);
    assert_eq!(stats.prompt_tokens, first.prompt_tokens);
    assert_eq!(again, expected);
}

/// The spin count and wait policy libgomp settled on in a `parlor` process started with `env`
/// (read from its own report, `OMP_DISPLAY_ENV=verbose`, the last one printed: the one after
/// the restart).
fn openmp_of_parlor(env: &[(&str, &str)]) -> (String, String) {
    let mut c = std::process::Command::new(crate::common::parlor_bin());
    c.arg("--version")
        .env_remove("GOMP_SPINCOUNT")
        .env_remove("OMP_WAIT_POLICY")
        .env("OMP_DISPLAY_ENV", "verbose");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = |name: &str| {
        let line = err
            .lines()
            .rfind(|l| l.trim_start().starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("libgomp reports {name}: {err}"));
        line.split('\'').nth(1).unwrap_or_default().to_string()
    };
    (last("GOMP_SPINCOUNT"), last("OMP_WAIT_POLICY"))
}

/// llama.cpp's threads spin 1000 times at a barrier, not libgomp's 300 000 (which took two
/// `parlor` processes on 2 cores to a seventh of their speed) nor its 100 once a process has
/// engines on several threads (the wait policy `active`); a choice the user made stays.
#[test]
fn parlor_runs_llama_threads_with_a_short_spin_unless_the_user_chose_one() {
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(openmp_of_parlor(&[]), pair("1000", "ACTIVE"));
    assert_eq!(
        openmp_of_parlor(&[("GOMP_SPINCOUNT", "5000")]),
        pair("5000", "PASSIVE")
    );
    assert_eq!(
        openmp_of_parlor(&[("OMP_WAIT_POLICY", "passive")]),
        pair("0", "PASSIVE")
    );
}
