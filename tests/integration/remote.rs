//! The remote engine against a fake OpenAI-compatible server on 127.0.0.1 that each test
//! starts: streamed text in order with counts, the request it sends, HTTP errors, refused
//! connections, a stalled stream timing out, cancellation closing the connection, a whole
//! `Bot::turn` through it into a real (temporary) store, and `parlor ask` with a bot file whose
//! engine is `kind: openai`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use parlor::bot::{Bot, ReplyEvent};
use parlor::chat::{ChatMessage, FinishReason, Role};
use parlor::engine::{
    Engine, EngineError, EngineEvent, GenerateRequest, OpenAiEngine, OpenAiSettings, Sampling,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// What the fake server does with a request.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// Stream these pieces, then a finish reason, usage and `[DONE]`.
    Stream(Vec<&'static str>),
    /// Answer with this status and body.
    Fail(StatusCode, &'static str),
    /// Send one piece, then nothing ever again.
    Stall,
    /// Send a piece now and then, forever; notify when the response body is dropped.
    Endless,
    /// Send these pieces, then a chunk that is not JSON, then more that must not be used.
    Malformed(Vec<&'static str>),
}

/// A request as the server saw it: its JSON body and Authorization header.
type Seen = (serde_json::Value, Option<String>);

#[derive(Clone)]
pub(crate) struct Fake {
    behaviour: Behaviour,
    /// Bodies and Authorization headers of the requests received.
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    /// Signalled when an endless body is dropped (the client closed the connection).
    closed: Arc<Notify>,
}

fn sse(data: &str) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

fn piece(text: &str) -> Vec<u8> {
    sse(&serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}).to_string())
}

/// Notifies when dropped: the stream holding it is gone.
struct DropSignal(Arc<Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

async fn completions(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.seen.lock().unwrap().push((body, auth));
    type Chunks = futures::stream::BoxStream<'static, Result<Vec<u8>, std::io::Error>>;
    let chunks: Chunks = match fake.behaviour {
        Behaviour::Fail(status, text) => return (status, text).into_response(),
        Behaviour::Stream(pieces) => {
            let mut out: Vec<Vec<u8>> = pieces.iter().map(|p| piece(p)).collect();
            out.push(sse(
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            ));
            out.push(sse(r#"{"choices":[],"usage":{"prompt_tokens":17,"completion_tokens":4,"total_tokens":21}}"#));
            out.push(b"data: [DONE]\n\n".to_vec());
            futures::stream::iter(out.into_iter().map(Ok)).boxed()
        }
        Behaviour::Malformed(pieces) => {
            let mut out: Vec<Vec<u8>> = pieces.iter().map(|p| piece(p)).collect();
            out.push(b"data: {\"choices\": [{\"delta\": {\"content\": \"trunc\n\n".to_vec());
            out.push(piece(" after"));
            out.push(b"data: [DONE]\n\n".to_vec());
            futures::stream::iter(out.into_iter().map(Ok)).boxed()
        }
        Behaviour::Stall => futures::stream::once(async { Ok(piece("Hel")) })
            .chain(futures::stream::pending())
            .boxed(),
        Behaviour::Endless => {
            let guard = DropSignal(fake.closed.clone());
            futures::stream::unfold(guard, |guard| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Some((Ok(piece("tick ")), guard))
            })
            .boxed()
        }
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(chunks))
        .unwrap()
}

/// Start a fake server; its base URL (ending in `/v1`) and shared state.
pub(crate) async fn fake_server(behaviour: Behaviour) -> (String, Fake) {
    let fake = Fake {
        behaviour,
        seen: Arc::default(),
        closed: Arc::new(Notify::new()),
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), fake)
}

fn engine(base_url: &str, timeout_secs: u64) -> OpenAiEngine {
    OpenAiEngine::new(OpenAiSettings {
        base_url: base_url.to_string(),
        model: "remote-model".into(),
        api_key: Some("sk-test".into()),
        context: 4096,
        timeout_secs,
    })
    .unwrap()
}

fn request() -> GenerateRequest {
    GenerateRequest {
        cache_key: "s1".into(),
        prefix_messages: 0,
        messages: vec![
            ChatMessage::new(Role::System, "You are terse."),
            ChatMessage::new(Role::User, "Say hello"),
        ],
        sampling: Sampling::greedy(),
        max_tokens: 4,
        stop: vec!["\n\n".into()],
    }
}

/// Every event until the stream ends.
async fn collect(mut rx: mpsc::Receiver<EngineEvent>) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    while let Some(ev) = rx.recv().await {
        out.push(ev);
    }
    out
}

fn failure(events: &[EngineEvent]) -> String {
    match events.last() {
        Some(EngineEvent::Failed(EngineError::Remote(msg))) => msg.clone(),
        other => panic!("expected a remote failure, got {other:?} in {events:?}"),
    }
}

#[tokio::test]
async fn streamed_text_arrives_in_order_and_done_has_the_counts() {
    let (url, fake) = fake_server(Behaviour::Stream(vec!["Hel", "lo", ", wor", "ld"])).await;
    let events = collect(engine(&url, 10).generate(request())).await;
    let text: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Token(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, ["Hel", "lo", ", wor", "ld"]);
    let Some(EngineEvent::Done(stats)) = events.last() else {
        panic!("expected Done last: {events:?}");
    };
    assert_eq!((stats.prompt_tokens, stats.completion_tokens), (17, 4));
    assert_eq!(stats.finish, FinishReason::MaxTokens);

    let seen = fake.seen.lock().unwrap();
    let (body, auth) = &seen[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(body["model"], "remote-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 4);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["seed"], 42);
    assert_eq!(body["stop"], serde_json::json!(["\n\n"]));
    // The persona's other sampling settings, under llama-server's and vLLM's names.
    assert_eq!(body["top_k"], 40);
    assert_eq!(body["min_p"], 0.05);
    assert_eq!(body["repeat_penalty"], 1.1);
    assert_eq!(body["repeat_last_n"], 64);
    assert_eq!(body["repetition_penalty"], 1.1);
    assert_eq!(
        body["messages"],
        serde_json::json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello"}
        ])
    );
}

#[tokio::test]
async fn an_error_status_gives_the_servers_message_and_a_hint() {
    let (url, _) = fake_server(Behaviour::Fail(
        StatusCode::UNAUTHORIZED,
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
    ))
    .await;
    let msg = failure(&collect(engine(&url, 10).generate(request())).await);
    assert_eq!(
        msg,
        format!(
            "\"{url}/chat/completions\" answered HTTP 401 Unauthorized: Incorrect API key provided; check the API key (the variable engine.api_key_env names)"
        )
    );

    let (url, _) = fake_server(Behaviour::Fail(StatusCode::INTERNAL_SERVER_ERROR, "boom")).await;
    let msg = failure(&collect(engine(&url, 10).generate(request())).await);
    assert!(
        msg.ends_with(
            "answered HTTP 500 Internal Server Error: boom; the server failed, see its logs"
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn a_wrong_path_is_a_404_with_a_base_url_hint() {
    let (url, _) = fake_server(Behaviour::Stream(vec![])).await;
    let wrong = url.trim_end_matches("/v1");
    let msg = failure(&collect(engine(wrong, 10).generate(request())).await);
    assert!(msg.contains("answered HTTP 404 Not Found"), "{msg}");
    assert!(
        msg.contains("check engine.base_url (it usually ends in /v1)"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_refused_connection_says_to_check_the_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let msg = failure(&collect(engine(&url, 10).generate(request())).await);
    assert!(
        msg.starts_with(&format!("could not connect to \"{url}\"")),
        "{msg}"
    );
    assert!(msg.contains("is the server running"), "{msg}");
}

#[tokio::test]
async fn a_malformed_chunk_mid_stream_fails_the_reply_after_the_text_so_far() {
    let (url, _fake) = fake_server(Behaviour::Malformed(vec!["Hel", "lo"])).await;
    let events = collect(engine(&url, 5).generate(request())).await;
    assert_eq!(
        events[..2],
        [
            EngineEvent::Token("Hel".into()),
            EngineEvent::Token("lo".into())
        ]
    );
    assert_eq!(events.len(), 3, "nothing after the bad chunk: {events:?}");
    let msg = failure(&events);
    assert!(
        msg.starts_with(&format!(
            "malformed stream chunk from \"{url}/chat/completions\" ("
        )),
        "{msg}"
    );
    assert!(
        msg.contains("{\"choices\": [{\"delta\": {\"content\": \"trunc"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_stalled_stream_times_out_with_a_clear_message() {
    let (url, _) = fake_server(Behaviour::Stall).await;
    let events = collect(engine(&url, 1).generate(request())).await;
    assert_eq!(events[0], EngineEvent::Token("Hel".into()));
    let msg = failure(&events);
    assert_eq!(
        msg,
        format!(
            "\"{url}/chat/completions\" sent nothing for 1s; gave up on the reply (engine.timeout_secs raises the limit)"
        )
    );
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let (url, fake) = fake_server(Behaviour::Endless).await;
    let closed = fake.closed.notified();
    let mut rx = engine(&url, 10).generate(request());
    assert_eq!(rx.recv().await, Some(EngineEvent::Token("tick ".into())));
    drop(rx);
    // The server notices when its response body is dropped: the connection is gone.
    tokio::time::timeout(Duration::from_secs(20), closed)
        .await
        .expect("the server still streams to a dropped client");
}

#[tokio::test]
async fn a_bot_turn_through_the_remote_engine_stores_the_reply() {
    let (url, fake) = fake_server(Behaviour::Stream(vec!["Ahoy", " there", "!"])).await;
    let dir = tempfile::tempdir().unwrap();
    let store = parlor::store::Store::open(&dir.path().join("db")).unwrap();
    let persona = parlor::persona::Persona::parse(
        std::path::Path::new("personas/remote.yaml"),
        "name: Remote\nsystem: You are {{bot}}.\n",
    )
    .unwrap();
    let bot = Bot::new(persona, Arc::new(engine(&url, 10)), store.clone());
    let session = bot.open_session("remote").unwrap();
    let mut reply = bot.turn(session.id, "hello there");
    let mut streamed = String::new();
    let outcome = loop {
        match reply.next().await.expect("the turn ended early") {
            ReplyEvent::Token(t) => streamed.push_str(&t),
            ReplyEvent::Done(o) => break o,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        (streamed.as_str(), outcome.text.as_str()),
        ("Ahoy there!", "Ahoy there!")
    );
    assert_eq!(outcome.stats.completion_tokens, 4);

    let messages = store.messages(session.id).unwrap();
    let texts: Vec<(Role, &str)> = messages.iter().map(|m| (m.role, m.text.as_str())).collect();
    assert_eq!(
        texts,
        [
            (Role::User, "hello there"),
            (Role::Assistant, "Ahoy there!")
        ]
    );
    let body = &fake.seen.lock().unwrap()[0].0;
    assert_eq!(body["messages"][0]["content"], "You are Remote.");
    assert_eq!(
        body["messages"].as_array().unwrap().last().unwrap()["content"],
        "hello there"
    );
}

#[tokio::test]
async fn parlor_ask_with_a_remote_bot_file_streams_from_the_server() {
    let (url, fake) = fake_server(Behaviour::Stream(vec!["Ahoy", " from", " afar"])).await;
    let home = tempfile::tempdir().unwrap();
    for dir in ["bots", "personas"] {
        std::fs::create_dir(home.path().join(dir)).unwrap();
    }
    std::fs::write(
        home.path().join("personas/remote.yaml"),
        "name: Remote\nsystem: You are {{bot}}.\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join("bots/remote.yaml"),
        format!(
            "persona: remote\nengine:\n  kind: openai\n  base_url: {url}\n  model: served-model\n  api_key_env: PARLOR_TEST_REMOTE_KEY\n  timeout_secs: 10\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(crate::common::parlor_bin())
        .arg("--home")
        .arg(home.path())
        .args(["ask", "--bot", "remote", "hello"])
        .env("PARLOR_TEST_REMOTE_KEY", "sk-from-env")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "Ahoy from afar");
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].0["model"], "served-model");
    assert_eq!(seen[0].1.as_deref(), Some("Bearer sk-from-env"));
}

#[tokio::test]
async fn strict_servers_get_only_openais_own_sampling_fields() {
    let (url, fake) = fake_server(Behaviour::Stream(vec!["ok"])).await;
    let mut req = request();
    req.sampling.top_k = 0;
    collect(engine(&url, 10).generate(req.clone())).await;
    collect(engine(&url, 10).with_extended_sampling(false).generate(req)).await;
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].0["top_k"], -1, "top-k off is -1 (vLLM refuses 0)");
    let strict = seen[1].0.as_object().unwrap();
    for field in [
        "top_k",
        "min_p",
        "repeat_penalty",
        "repeat_last_n",
        "repetition_penalty",
    ] {
        assert!(
            !strict.contains_key(field),
            "{field} sent to a strict server"
        );
    }
    assert_eq!(strict["top_p"], 0.95);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_peer_sections_play_the_same_sessions_through_the_remote_engine() {
    use parlor::bench::peer::{Peer, PeerSection, run_peer_section};
    use parlor::bench::{Report, targets};
    let (url, fake) = fake_server(Behaviour::Stream(vec!["Hel", "lo", " there", "!"])).await;
    let peer = Peer {
        base_url: url,
        model: "peer".into(),
        // This process stands in for the server: its peak memory is read from /proc.
        pid: Some(std::process::id()),
    };
    let mut report = Report::default();
    // parlor's own numbers, as its sections record them: far better than any peer, so each
    // ratio row must pass. (A first token of 1 ms failed once: the local fake peer answered in
    // under 2 ms, a ratio above 0.5.)
    for pause in targets::PAUSES {
        report.note(&targets::turns_key("parlor", pause), 1e-6);
    }
    report.note(targets::CHATS4_AGG_PARLOR, 1e9);
    report.note(targets::CHATS4_WORST_PARLOR, 0.0);
    report.note(targets::SUPPORT4_AGG_PARLOR, 1e9);
    report.note(targets::SUPPORT4_WORST_PARLOR, 0.0);
    report.note(targets::PEAK_PARLOR, 1.0);
    // In the order `parlor bench` runs them, each right after parlor's side.
    for section in PeerSection::ALL {
        run_peer_section(&peer, section, true, &mut report)
            .await
            .unwrap();
    }
    targets::apply(&mut report);

    let row = |metric: &str| {
        report
            .rows
            .iter()
            .find(|r| r.metric == metric)
            .unwrap_or_else(|| panic!("no row {metric}: {:#?}", report.rows))
            .clone()
    };
    assert_eq!(
        row("time to first token, turn 10, back to back").section,
        "peer"
    );
    assert!(row("4 chats: aggregate generation").value > 0.0);
    assert!(row("4 support chats: aggregate generation").value > 0.0);
    assert!(row("peak memory of the peer process").value > 1.0);
    for metric in [
        "last turn first token / peer, back to back",
        "last turn first token / peer, 0.3 s pause",
        "4 chats: aggregate generation / peer",
        "4 chats: worst first token / peer",
        "4 support chats: aggregate generation / peer",
        "4 support chats: worst first token / peer",
        "peak memory / peer",
    ] {
        assert_eq!(row(metric).pass, Some(true), "{metric}");
    }

    // The same sessions as parlor's sections: 10 turns twice (back to back, paused), 4 chats,
    // one support chat and then 4 at once, 3 new chats with the acme-support persona.
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 2 * 10 + 4 + 1 + 4 + 3);
    let messages = |i: usize| seen[i].0["messages"].as_array().unwrap().clone();
    let last_turn = messages(9);
    assert_eq!(
        last_turn.len(),
        1 + 2 * 9 + 1,
        "turn 10 carries the session's history"
    );
    assert_eq!(
        last_turn.last().unwrap()["content"],
        "Tell me one fact about the number 10."
    );
    let mut support: Vec<String> = (2 * 10 + 4 + 1..2 * 10 + 4 + 5)
        .map(|i| {
            let m = messages(i);
            assert!(
                m[0]["content"]
                    .as_str()
                    .unwrap()
                    .contains("customer support agent of Acme Routers")
            );
            m.last().unwrap()["content"].as_str().unwrap().to_string()
        })
        .collect();
    support.sort();
    let mut expected: Vec<String> = parlor::bench::SUPPORT_CHATS
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    assert_eq!(support, expected, "the four support chats reach the peer");
    let new_chat = messages(seen.len() - 1);
    assert!(
        new_chat[0]["content"]
            .as_str()
            .unwrap()
            .contains("customer support agent of Acme Routers"),
        "{new_chat:?}"
    );
}

mod llama_server;
