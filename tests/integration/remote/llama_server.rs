//! Against a real llama.cpp `llama-server` when one is on PATH (skipped otherwise, saying so):
//! the extended sampling fields are read, so a repetition penalty changes a greedy reply.

use super::{collect, engine};
use parlor::chat::{ChatMessage, Role};
use parlor::engine::{Engine, EngineEvent, GenerateRequest, Sampling};
use std::time::{Duration, Instant};

/// How long the server may take to load the model.
const START: Duration = Duration::from_secs(120);

/// The streamed text of one greedy reply with this repetition penalty.
async fn reply(url: &str, repeat_penalty: f32) -> String {
    let req = GenerateRequest {
        cache_key: format!("penalty-{repeat_penalty}"),
        prefix_messages: 0,
        messages: vec![ChatMessage::new(
            Role::User,
            "List the days of the week, then list them again, and again.",
        )],
        sampling: Sampling {
            repeat_penalty,
            repeat_last_n: 64,
            ..Sampling::greedy()
        },
        max_tokens: 48,
        stop: Vec::new(),
    };
    let events = collect(engine(url, 60).generate(req)).await;
    assert!(
        matches!(events.last(), Some(EngineEvent::Done(_))),
        "{events:?}"
    );
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Token(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_llama_server_reads_the_repetition_penalty() {
    let Ok(found) = which("llama-server") else {
        eprintln!(
            "skipped: llama-server is not on PATH (install llama.cpp's server to run this test)"
        );
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let model = crate::common::model_path();
    let _server = tokio::process::Command::new(found)
        .args(["-m", model.to_str().unwrap(), "--host", "127.0.0.1"])
        .args([
            "--port",
            &port.to_string(),
            "-c",
            "2048",
            "-t",
            "2",
            "-np",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start llama-server");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + START;
    // Poll its health endpoint until the model is loaded (a deadline, not a sleep to sync).
    loop {
        let ok = reqwest::get(format!("{base}/health"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "llama-server did not start within {START:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let url = format!("{base}/v1");
    let plain = reply(&url, 1.0).await;
    let penalised = reply(&url, 1.8).await;
    assert!(!plain.is_empty());
    assert_ne!(plain, penalised, "the repetition penalty changed nothing");
}

/// The full path of `program` on PATH.
fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}
