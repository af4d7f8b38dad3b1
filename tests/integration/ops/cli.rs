//! `--json` outputs (`check`, `history list`, `model list`), `model rm`, shell completions
//! and `NO_COLOR`.

use super::{on_a_terminal, parlor, sh, texts};
use parlor::chat::Role;
use parlor::store::{Store, StoredMessage};
use std::path::Path;

/// A home with a persona with two problems and the default bot and persona.
fn home_with_problems() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("personas")).unwrap();
    std::fs::write(
        home.path().join("personas/ada.yaml"),
        "name: Ada\nsystem: You are Ada.\nsampling:\n  temperature: 3.5\n  top_p: 7\n",
    )
    .unwrap();
    home
}

#[test]
fn check_json_gives_one_object_per_problem() {
    let home = home_with_problems();
    let out = parlor(&["--home", home.path().to_str().unwrap(), "check", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let problems: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect("a JSON array");
    assert_eq!(problems.len(), 2, "{stdout}");
    let first = &problems[0];
    assert!(
        first["file"]
            .as_str()
            .unwrap()
            .ends_with("personas/ada.yaml"),
        "{first}"
    );
    assert_eq!(first["line"], 4);
    assert_eq!(first["col"], 16);
    assert_eq!(first["field"], "sampling.temperature");
    assert_eq!(first["problem"], "3.5 is out of range (0.0 to 2.0)");
    assert_eq!(problems[1]["field"], "sampling.top_p");
    // Lines and JSON say the same.
    let lines = parlor(&["--home", home.path().to_str().unwrap(), "check"]);
    assert!(
        texts(&lines)
            .0
            .contains(":4:16: sampling.temperature: 3.5 is out of range")
    );
}

#[test]
fn history_list_json_lists_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let s = store
            .create_session("first", "assistant", "smollm2-135m")
            .unwrap();
        store
            .append_message(s.id, StoredMessage::new(Role::User, "hi"))
            .unwrap();
        store.flush().unwrap();
    }
    let out = parlor(&[
        "history",
        "list",
        "--json",
        "--storage",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sessions: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["name"], "first");
    assert_eq!(sessions[0]["persona"], "assistant");
    assert_eq!(sessions[0]["messages"], 1);
    assert!(sessions[0]["updated"].as_str().unwrap().ends_with('Z'));
    let empty = tempfile::tempdir().unwrap();
    let none = parlor(&[
        "history",
        "list",
        "--json",
        "--storage",
        empty.path().to_str().unwrap(),
    ]);
    assert_eq!(texts(&none).0.trim(), "[]");
}

/// A home whose default bot uses the default model, with a stand-in file for it and another
/// model file nobody uses.
fn home_with_models() -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("storage/models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::create_dir_all(home.path().join("bots")).unwrap();
    std::fs::create_dir_all(home.path().join("personas")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["bots/terminal.yaml", "personas/assistant.yaml"] {
        std::fs::copy(repo.join(f), home.path().join(f)).unwrap();
    }
    let default = parlor::models::find(parlor::models::DEFAULT_MODEL).unwrap();
    let file = models.join(&default.file);
    std::fs::write(&file, b"not really a model").unwrap();
    std::fs::write(models.join("spare.gguf"), b"spare").unwrap();
    (home, file)
}

#[test]
fn model_list_json_and_model_rm_refuses_a_model_in_use() {
    let (home, default_file) = home_with_models();
    let h = home.path().to_str().unwrap();
    let out = parlor(&["--home", h, "model", "list", "--json"]);
    let models: Vec<serde_json::Value> = serde_json::from_str(&texts(&out).0).unwrap();
    let default = models
        .iter()
        .find(|m| m["name"] == parlor::models::DEFAULT_MODEL)
        .unwrap();
    assert_eq!(default["status"], "wrong size");
    assert_eq!(default["size"], 18);
    let spare = models.iter().find(|m| m["file"] == "spare.gguf").unwrap();
    assert_eq!(
        (spare["name"].is_null(), &spare["status"]),
        (true, &"installed".into())
    );

    let refused = parlor(&["--home", h, "model", "rm", parlor::models::DEFAULT_MODEL]);
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("used by bot \"terminal\""), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(default_file.exists(), "nothing deleted");

    let spare = parlor(&["--home", h, "model", "rm", "spare.gguf"]);
    assert_eq!(spare.status.code(), Some(0), "{}", texts(&spare).1);
    assert!(!home.path().join("storage/models/spare.gguf").exists());

    let outside = tempfile::NamedTempFile::with_suffix(".gguf").unwrap();
    let refused = parlor(&["--home", h, "model", "rm", outside.path().to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        outside.path().exists(),
        "files outside storage/models are never deleted"
    );

    let forced = parlor(&[
        "--home",
        h,
        "model",
        "rm",
        parlor::models::DEFAULT_MODEL,
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(0), "{}", texts(&forced).1);
    assert!(!default_file.exists());
}

#[test]
fn completions_are_valid_scripts_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _parlor"),
        ("zsh", "#compdef parlor"),
        ("fish", "complete -c parlor"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = parlor(&["completions", shell]);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        assert!(stdout.contains("history"), "{shell} completes subcommands");
    }
    let bash = parlor(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("parlor.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
}

#[test]
fn no_color_takes_the_colour_out_of_terminal_output() {
    let cmd = format!("{} --help", sh(&crate::common::parlor_bin()));
    let Some(coloured) = on_a_terminal(&cmd, &[]) else {
        return;
    };
    assert!(
        coloured.contains('\x1b'),
        "help is styled on a terminal: {coloured:?}"
    );
    let plain = on_a_terminal(&cmd, &[("NO_COLOR", "1")]).unwrap();
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("Usage:"), "{plain:?}");
}

#[test]
fn model_progress_shows_when_stderr_is_a_terminal_even_with_stdout_piped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.gguf");
    std::fs::write(&file, vec![0u8; 24 << 20]).unwrap();
    // stdout into a pipe, stderr (where the bar is drawn) on the terminal.
    let cmd = format!(
        "{} --home {} model verify {} | cat",
        sh(&crate::common::parlor_bin()),
        sh(dir.path()),
        sh(&file)
    );
    let Some(screen) = on_a_terminal(&cmd, &[]) else {
        return;
    };
    assert!(screen.contains("no known checksum"), "{screen:?}");
    assert!(
        screen.contains('\x1b'),
        "the progress bar was drawn on the terminal: {screen:?}"
    );
}
