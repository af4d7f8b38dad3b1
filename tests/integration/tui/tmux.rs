//! The real binary in a real terminal: tmux runs `parlor chat` on the default model in a
//! temporary home. The test types, polls `capture-pane` with a deadline (never a fixed sleep),
//! stops a reply with Esc, quits with Ctrl+C, checks the terminal is restored, starts again and
//! finds the conversation, then switches persona.

use crate::common::{model_path, parlor_bin};
use crate::erase::{assert_nowhere, files_holding, token_bytes};
use parlor::engine::{EngineSettings, LlamaEngine};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Long enough for loading the model and a full reply in a debug build on a busy machine.
const DEADLINE: Duration = Duration::from_secs(180);
/// Pause between two looks at the screen while polling.
const POLL: Duration = Duration::from_millis(25);

const PERSONA: &str = "\
name: Tmuxbot
system: You are a helpful assistant. Answer in detail.
greeting: Ready when you are.
sampling:
  temperature: 0.0
  max_tokens: 900
context:
  window: 2048
  reply_reserve: 900
";

/// A tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16) -> Self {
        // One server per test: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let socket = format!("parlor-test-{}-{n}", std::process::id());
        let tmux = Self { socket };
        let out = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "env -i PATH=/usr/bin:/bin TERM=xterm-256color PS1='$ ' HOME=/tmp bash --norc --noprofile",
        ]);
        assert!(out.status.success(), "tmux did not start: {out:?}");
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed")
    }

    /// Type `text` literally.
    fn type_text(&self, text: &str) {
        assert!(
            self.cmd(&["send-keys", "-t", "t", "-l", text])
                .status
                .success()
        );
    }

    /// Press a key (`Enter`, `Escape`, `C-c`).
    fn key(&self, key: &str) {
        assert!(self.cmd(&["send-keys", "-t", "t", key]).status.success());
    }

    /// Paste `text` as the terminal would (bracketed paste when the app asked for it).
    fn paste(&self, text: &str) {
        assert!(self.cmd(&["set-buffer", "-b", "p", text]).status.success());
        assert!(
            self.cmd(&["paste-buffer", "-p", "-b", "p", "-t", "t"])
                .status
                .success()
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn format(&self, fmt: &str) -> String {
        let out = self.cmd(&["display-message", "-p", "-t", "t", fmt]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Poll the screen until `ready` holds; panics with the last screen at the deadline.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn launch(tmux: &Tmux, home: &Path) {
    // A non-interactive "editor" for Ctrl+E: it rewrites the file it is given.
    let line = format!(
        "EDITOR='sed -i s/draft/edited-in-editor/' {} --home {} chat --persona tmuxbot --model {}",
        parlor_bin().display(),
        home.display(),
        model_path().display()
    );
    tmux.type_text(&line);
    tmux.key("Enter");
}

fn status_bar(screen: &str) -> &str {
    screen.lines().last().unwrap_or("")
}

#[test]
fn chat_in_a_real_terminal_streams_stops_quits_and_resumes() {
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(home.path().join("personas")).unwrap();
    std::fs::write(home.path().join("personas/tmuxbot.yaml"), PERSONA).unwrap();
    let tmux = Tmux::start(100, 30);
    tmux.wait_for("the shell prompt", |s| s.contains('$'));

    launch(&tmux, home.path());
    tmux.wait_for("the greeting", |s| {
        s.contains("Ready when you are.") && status_bar(s).contains("idle")
    });
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "full screen while running"
    );

    // First message, pasted with escape sequences in it: they must show up inert.
    tmux.paste("hello \x1b[31mred\x1b[0m there\x07");
    tmux.key("Enter");
    let screen = tmux.wait_for("the first reply", |s| {
        s.matches("▌ Tmuxbot").count() >= 2 && status_bar(s).contains("idle")
    });
    assert!(
        screen.contains("hello ^[[31mred^[[0m there^G"),
        "escape sequences must be shown inert:\n{screen}"
    );
    assert!(status_bar(&screen).contains("tok/s"), "{screen}");

    // Second message: stop the reply while it streams.
    tmux.type_text("Write a very long story about a dragon who learns to bake bread.");
    tmux.key("Enter");
    tmux.wait_for("the second reply to stream", |s| {
        status_bar(s).contains("streaming")
    });
    tmux.key("Escape");
    let stopped = tmux.wait_for("the stopped reply", |s| {
        s.contains("[interrupted]") && status_bar(s).contains("idle")
    });
    assert!(stopped.contains("reply stopped"), "{stopped}");

    // Quit; the shell gets its normal screen and terminal modes back.
    tmux.key("C-c");
    tmux.wait_for("the shell after quitting", |s| {
        // The command line may wrap anywhere (its length depends on the checkout's path).
        !s.contains("▌ Tmuxbot") && s.contains("--persona tmuxbot")
    });
    assert_eq!(tmux.format("#{alternate_on}"), "0", "alternate screen left");
    assert_eq!(tmux.format("#{mouse_any_flag}"), "0", "mouse capture off");
    tmux.type_text(
        "stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e -icanon -e -echo | tr '\\n' ,; echo",
    );
    tmux.key("Enter");
    // Raw mode would print "-icanon,-echo," and never match.
    tmux.wait_for("cooked terminal modes", |s| {
        s.lines().any(|l| l.trim() == "icanon,echo,")
    });

    // Start again: the conversation is there, the stopped reply marked.
    tmux.type_text("clear");
    tmux.key("Enter");
    tmux.wait_for("a clear screen", |s| !s.contains("icanon"));
    launch(&tmux, home.path());
    let resumed = tmux.wait_for("the resumed conversation", |s| {
        s.contains("[interrupted]") && status_bar(s).contains("idle")
    });
    tmux.key("PPage");
    tmux.key("Home");
    let top = tmux.wait_for("the top of the conversation", |s| {
        s.contains("hello ^[[31mred^[[0m there^G")
    });
    assert!(
        !top.contains("Ready when you are."),
        "a resumed session shows no greeting:\n{top}"
    );
    drop(resumed);

    // Ctrl+E hands the input to $EDITOR and takes the result back.
    tmux.type_text("draft");
    tmux.key("C-e");
    tmux.wait_for("the edited input", |s| {
        s.contains("edited-in-editor") && status_bar(s).contains("idle")
    });
    for _ in "edited-in-editor".chars() {
        tmux.key("BSpace");
    }
    tmux.wait_for("the input cleared", |s| !s.contains("edited-in-editor"));

    // /persona: a name that is not there says so with the closest one; a built-in persona
    // (not a file in this home) starts a new session with it.
    tmux.type_text("/persona pirat");
    tmux.key("Enter");
    tmux.wait_for("the unknown persona error", |s| {
        s.contains("no persona \"pirat\"") && s.contains("did you mean \"pirate\"?")
    });
    tmux.type_text("/persona pirate");
    tmux.key("Enter");
    tmux.wait_for("the pirate persona", |s| {
        status_bar(s).contains("Captain Flint")
    });
    tmux.key("C-c");
    tmux.wait_for("the shell after the second quit", |s| {
        !s.contains("▌ Tmuxbot")
    });
}

#[test]
fn a_missing_model_shows_in_the_app_and_retry_loads_it_and_persona_edits_reload() {
    let home = tempfile::tempdir().expect("temp dir");
    let persona_file = home.path().join("personas/tmuxbot.yaml");
    std::fs::create_dir_all(home.path().join("personas")).unwrap();
    std::fs::write(&persona_file, PERSONA).unwrap();
    let model = home.path().join("later.gguf");
    let tmux = Tmux::start(100, 30);
    tmux.wait_for("the shell prompt", |s| s.contains('$'));
    let line = format!(
        "{} --home {} chat --persona tmuxbot --model {}",
        parlor_bin().display(),
        home.path().display(),
        model.display()
    );
    tmux.type_text(&line);
    tmux.key("Enter");

    // The app opens anyway and says what is wrong and what to do.
    let screen = tmux.wait_for("the missing-model error", |s| {
        s.contains("/retry to load the model again") && status_bar(s).contains("no model")
    });
    assert!(screen.contains("later.gguf\" does not exist"), "{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "1", "the app is open");

    // An invalid persona edit is reported in the status bar; the last good persona stays.
    std::fs::write(&persona_file, "name: Tmuxbot\nsystem: [unclosed\n").unwrap();
    tmux.wait_for("the rejected edit", |s| {
        status_bar(s).contains("persona edit rejected")
    });
    std::fs::write(&persona_file, PERSONA.replace("Tmuxbot", "Tmuxbot Two")).unwrap();
    tmux.wait_for("the reloaded persona", |s| {
        status_bar(s).contains("Tmuxbot Two") && !status_bar(s).contains("rejected")
    });

    // The model arrives; /retry loads it without leaving the app, and the chat works.
    std::os::unix::fs::symlink(model_path(), &model).unwrap();
    tmux.type_text("/retry");
    tmux.key("Enter");
    tmux.wait_for("the loaded model", |s| status_bar(s).contains("idle"));
    tmux.type_text("hello");
    tmux.key("Enter");
    tmux.wait_for("a reply from the reloaded persona", |s| {
        s.contains("▌ Tmuxbot Two") && status_bar(s).contains("tok/s")
    });
    tmux.key("C-c");
    tmux.wait_for("the shell after quitting", |s| !s.contains("▌ Tmuxbot"));
}

/// Deleting a session in the TUI's session list (Ctrl+O, d, y) erases it everywhere: after the
/// app quits, no file under the bot's storage holds the conversation's text or its token ids
/// (a saved KV state would hold them), while the other session is still there.
#[test]
fn deleting_a_session_in_the_tui_leaves_nothing_of_it_in_any_file() {
    const MARKER: &str = "zorblax quintessential marmalade";
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(home.path().join("personas")).unwrap();
    let short = PERSONA.replace("max_tokens: 900", "max_tokens: 12");
    std::fs::write(home.path().join("personas/tmuxbot.yaml"), short).unwrap();
    let tmux = Tmux::start(100, 30);
    tmux.wait_for("the shell prompt", |s| s.contains('$'));
    let start = |session: &str| {
        let line = format!(
            "{} --home {} chat --persona tmuxbot --model {} --session {session}",
            parlor_bin().display(),
            home.path().display(),
            model_path().display()
        );
        tmux.type_text(&line);
        tmux.key("Enter");
        tmux.wait_for("the greeting", |s| {
            s.contains("Ready when you are.") && status_bar(s).contains("idle")
        });
    };
    let say = |text: &str| {
        tmux.type_text(text);
        tmux.key("Enter");
        tmux.wait_for("the reply", |s| {
            s.matches("▌ Tmuxbot").count() >= 2 && status_bar(s).contains("idle")
        });
    };
    let quit = || {
        tmux.key("C-c");
        tmux.wait_for("the shell after quitting", |s| !s.contains("▌ Tmuxbot"));
        tmux.type_text("clear");
        tmux.key("Enter");
        tmux.wait_for("a clear screen", |s| !s.contains("--persona"));
    };

    // Two sessions, each with a reply (and so a saved engine state when the app quits).
    start("keepme");
    say("Hello there, how are you?");
    quit();
    start("secret");
    say(&format!("Please remember {MARKER} for me."));

    let storage = home.path().join("storage/terminal");
    assert!(
        !files_holding(&storage, b"keepme").is_empty() || storage.exists(),
        "the history is in {}",
        storage.display()
    );
    tmux.key("C-o");
    tmux.wait_for("the session list", |s| {
        s.contains("sessions") && s.contains("keepme") && s.contains("secret")
    });
    // The current session ("secret", the most recent) is selected.
    tmux.type_text("d");
    tmux.wait_for("the confirmation", |s| {
        s.contains("delete \"secret\" and all its messages? y / n")
    });
    tmux.type_text("y");
    // The shown session was deleted: the app opens the most recent other one.
    tmux.wait_for("the other session", |s| {
        status_bar(s).contains("idle") && s.contains("Hello there, how are you?")
    });
    // Up recalls earlier inputs: the deleted session's line is gone from them too.
    tmux.key("Up");
    let recalled = tmux.wait_for("the kept line recalled into the input", |s| {
        s.matches("Hello there, how are you?").count() >= 2
    });
    assert!(!recalled.contains("zorblax"), "{recalled}");
    quit();

    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.threads = Some(1);
    let engine = LlamaEngine::load(s).expect("the default model loads");
    let ids = token_bytes(&engine, MARKER);
    assert_nowhere(
        &storage,
        &[
            ("the marker's text", MARKER.as_bytes()),
            ("its token ids", &ids),
        ],
    );
    // The kept conversation is still there, and the deleted one is gone from the list.
    let out = Command::new(parlor_bin())
        .args(["--home", &home.path().display().to_string()])
        .args(["history", "list", "--json"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("keepme") && !list.contains("secret"),
        "{list}"
    );
    // The kept session's saved engine state holds its tokens: the scan above can see them.
    // (Mid-sentence words: after the chat template's newline, "Hello" has no leading space.)
    let kept = token_bytes(&engine, "there, how are you?");
    assert!(
        !files_holding(&storage, &kept).is_empty(),
        "the kept session's saved state is found by the same scan; files: {:?}",
        walk(&storage)
    );
}

/// Every file under `dir`, for failure messages.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
