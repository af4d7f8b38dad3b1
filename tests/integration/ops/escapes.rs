//! Terminal injection: a stored message (or a model reply) full of escape sequences reaches an
//! operator's terminal inert, as the TUI shows it; JSONL and files keep it exact.

use super::{on_a_terminal, parlor, sh, texts};
use parlor::chat::Role;
use parlor::store::{Store, StoredMessage};

/// Clear screen, set the window title (OSC, ended by BEL), switch to the alternate screen, a
/// C1 CSI, a bidi override and a bare carriage return.
pub const HOSTILE: &str = "hi\x1b[2J\x1b]0;pwned\x07\x1b[?1049h\u{9b}31m\u{202e}end\rX";

/// What [`HOSTILE`] looks like inert.
const SHOWN: &str = "hi^[[2J^[]0;pwned^G^[[?1049h\u{FFFD}31m\u{FFFD}end^MX";

/// The first character in `text` a terminal would act on (other than a newline).
fn live(text: &str) -> Option<char> {
    text.chars()
        .find(|&c| (c.is_control() && c != '\n') || ('\u{202A}'..='\u{202E}').contains(&c))
}

/// A database with one session, "hostile", whose two messages are [`HOSTILE`].
fn hostile_db() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let s = store
        .create_session("hostile", "assistant", "smollm2-135m")
        .unwrap();
    store
        .append_message(s.id, StoredMessage::new(Role::User, HOSTILE))
        .unwrap();
    store
        .append_message(s.id, StoredMessage::new(Role::Assistant, HOSTILE))
        .unwrap();
    store.flush().unwrap();
    dir
}

#[test]
fn history_show_prints_escape_sequences_inert() {
    let db = hostile_db();
    let dir = db.path().to_str().unwrap();
    let out = parlor(&["history", "show", "hostile", "--storage", dir]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(live(&stdout), None, "{stdout:?}");
    assert_eq!(stdout.matches(SHOWN).count(), 2, "{stdout:?}");
}

#[test]
fn jsonl_and_file_exports_stay_exact() {
    let db = hostile_db();
    let dir = db.path().to_str().unwrap();
    let out = parlor(&[
        "history",
        "export",
        "hostile",
        "-f",
        "jsonl",
        "--storage",
        dir,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out).1);
    let texts: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, [HOSTILE, HOSTILE]);

    let file = tempfile::tempdir().unwrap();
    let md = file.path().join("hostile.md");
    let out = parlor(&[
        "history",
        "export",
        "hostile",
        "--storage",
        dir,
        "-o",
        md.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(&md).unwrap();
    assert_eq!(
        written.matches(HOSTILE).count(),
        2,
        "a file keeps the text exact"
    );
}

#[test]
fn markdown_export_to_a_terminal_is_inert() {
    let db = hostile_db();
    let cmd = format!(
        "{} history export hostile --storage {}",
        sh(&crate::common::parlor_bin()),
        sh(db.path())
    );
    let Some(screen) = on_a_terminal(&cmd, &[]) else {
        return;
    };
    // The terminal turns "\n" into "\r\n"; nothing else may act on it.
    let screen = screen.replace("\r\n", "\n");
    assert_eq!(live(&screen), None, "{screen:?}");
    assert_eq!(screen.matches(SHOWN).count(), 2, "{screen:?}");
}

/// A home whose bot `remote` (persona `remote`) streams from the fake server at `url`.
pub fn remote_home(url: &str) -> tempfile::TempDir {
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
            "persona: remote\nengine:\n  kind: openai\n  base_url: {url}\n  model: served\n  timeout_secs: 10\n"
        ),
    )
    .unwrap();
    home
}

/// [`HOSTILE`] in the pieces a server streams.
fn hostile_pieces() -> Vec<&'static str> {
    vec![
        "hi\x1b[2J",
        "\x1b]0;pwned\x07",
        "\x1b[?1049h\u{9b}31m",
        "\u{202e}end\rX",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_streams_a_hostile_reply_inert_on_a_terminal_and_exact_into_a_pipe() {
    use crate::remote::{Behaviour, fake_server};
    let (url, _fake) = fake_server(Behaviour::Stream(hostile_pieces())).await;
    let home = remote_home(&url);
    let home_dir = home.path().to_path_buf();
    let piped = tokio::task::spawn_blocking(move || {
        parlor(&[
            "--home",
            home_dir.to_str().unwrap(),
            "ask",
            "--bot",
            "remote",
            "hi",
        ])
    })
    .await
    .unwrap();
    assert_eq!(piped.status.code(), Some(0), "{}", texts(&piped).1);
    assert_eq!(
        texts(&piped).0,
        format!("{HOSTILE}\n"),
        "a pipe gets the reply exact"
    );

    let cmd = format!(
        "{} --home {} ask --bot remote hi",
        sh(&crate::common::parlor_bin()),
        sh(home.path())
    );
    let Some(screen) = tokio::task::spawn_blocking(move || on_a_terminal(&cmd, &[]))
        .await
        .unwrap()
    else {
        return;
    };
    let screen = screen.replace("\r\n", "\n");
    assert_eq!(live(&screen), None, "{screen:?}");
    assert!(screen.contains(SHOWN), "{screen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parlor_test_reports_a_hostile_reply_inert() {
    use crate::remote::{Behaviour, fake_server};
    let (url, _fake) = fake_server(Behaviour::Stream(hostile_pieces())).await;
    let home = remote_home(&url);
    let cases = home.path().join("personas/remote.test.yaml");
    std::fs::write(
        &cases,
        "persona: remote\ncases:\n  - name: hostile\n    steps:\n      - user: hello\n        contains: never said\n",
    )
    .unwrap();
    let args = [
        "--home".to_string(),
        home.path().display().to_string(),
        "test".into(),
        "--bot".into(),
        "remote".into(),
        cases.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        parlor(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the case fails: {stdout}{stderr}"
    );
    assert_eq!(live(&stdout), None, "{stdout:?}");
    assert!(stdout.contains(SHOWN), "{stdout:?}");
}
