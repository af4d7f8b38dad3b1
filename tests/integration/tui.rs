//! Terminal UI: whole screens rendered with ratatui's `TestBackend` and compared with insta
//! snapshots, control characters from the model shown inert, and (in `tui::tmux`) the real
//! binary in a real terminal.

mod tmux;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use parlor::bot::{ReplyEvent, TurnOutcome};
use parlor::chat::{ReplySource, Role, SessionId, TurnStats};
use parlor::store::{SessionInfo, StoredMessage};
use parlor::tui::{App, AppInit, ModelState, Msg, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const W: u16 = 72;
const H: u16 = 20;

fn session(id: u64, name: &str, persona: &str, count: u64) -> SessionInfo {
    SessionInfo {
        id: SessionId(id),
        name: name.into(),
        persona: persona.into(),
        model: "SmolLM2-135M-Instruct.Q4_1".into(),
        created: 1_764_000_000_000,
        updated: 1_764_000_000_000 + id as i64 * 3_600_000,
        message_count: count,
    }
}

fn app(messages: Vec<StoredMessage>) -> App {
    let mut app = App::new(AppInit {
        persona: "Ada".into(),
        model: "SmolLM2-135M-Instruct.Q4_1".into(),
        context_window: 2048,
        size: (W, H),
        history: Vec::new(),
        model_state: ModelState::Ready,
    });
    update(
        &mut app,
        Msg::SessionOpened {
            session: session(1, "chat-20261128-101500", "ada", messages.len() as u64),
            messages,
            greeting: Some("Hello, I'm **Ada**. What shall we build today?".into()),
            persona_name: "Ada".into(),
        },
    );
    app.notice = None;
    app
}

fn screen(app: &App) -> String {
    screen_sized(app, W, H)
}

fn screen_sized(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal
        .draw(|f| f.render_widget(app, f.area()))
        .expect("draw");
    terminal.backend().to_string()
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        update(
            app,
            Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        );
    }
}

fn send(app: &mut App, text: &str) {
    typed(app, text);
    update(
        app,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
}

fn stream(app: &mut App, text: &str) {
    for piece in text.split_inclusive(' ') {
        update(app, Msg::Reply(ReplyEvent::Token(piece.into())));
    }
}

fn done(app: &mut App, text: &str) {
    update(
        app,
        Msg::Reply(ReplyEvent::Done(TurnOutcome {
            text: text.into(),
            stats: TurnStats {
                trimmed_messages: 6,
                prompt_tokens: 412,
                completion_tokens: 96,
                tokens_per_second: 171.4,
                context_window: 2048,
                ..Default::default()
            },
            source: ReplySource::Model,
            seq: 2,
            ..Default::default()
        })),
    );
}

#[test]
fn screen_empty_session_with_greeting() {
    insta::assert_snapshot!(screen(&app(Vec::new())));
}

#[test]
fn screen_mid_stream() {
    let mut app = app(Vec::new());
    send(&mut app, "Tell me about sled.");
    stream(
        &mut app,
        "sled is an embedded database written in Rust. It keeps",
    );
    typed(&mut app, "and its");
    insta::assert_snapshot!(screen(&app));
}

const LONG_REPLY: &str = "## Reading a file\n\nUse a **`BufReader`** so that reading stays fast even for \
very large files, and iterate over its *lines*:\n\n```rust\nuse std::io::{BufRead, BufReader};\n\
let reader = BufReader::new(File::open(\"log.txt\")?);\nfor line in reader.lines() {\n    \
println!(\"{}\", line?); // each line is a Result because reading can fail halfway through\n}\n```\n\n\
- errors come *per line*\n- the buffer is 8 KiB by default, which is plenty for text files that are \
read sequentially\n\n> Tip: `read_to_string` is simpler when the file is small.";

#[test]
fn screen_long_wrapped_markdown_reply_with_code() {
    let mut app = app(Vec::new());
    update(&mut app, Msg::Resize(100, 36));
    send(&mut app, "How do I read a file line by line?");
    stream(&mut app, LONG_REPLY);
    done(&mut app, LONG_REPLY);
    // Narrower than at first: the reply reflows.
    update(&mut app, Msg::Resize(W, 36));
    insta::assert_snapshot!(screen_sized(&app, W, 36));
}

#[test]
fn screen_error_state() {
    let mut app = app(vec![StoredMessage::new(Role::User, "hello?")]);
    update(
        &mut app,
        Msg::Reply(ReplyEvent::Failed(
            "model file \"storage/models/missing.gguf\" not found; fetch it with `parlor model pull smollm2-135m` or give a path to a .gguf file".into(),
        )),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn screen_help_overlay() {
    let mut app = app(Vec::new());
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::F(1), KeyModifiers::NONE)),
    );
    insta::assert_snapshot!(screen_sized(&app, 100, 26));
}

#[test]
fn screen_session_list() {
    let mut app = app(Vec::new());
    update(
        &mut app,
        Msg::SessionsListed(vec![
            session(3, "support-ticket-812", "helpdesk", 14),
            session(1, "chat-20261128-101500", "ada", 0),
            session(2, "pirate stories", "pirate", 230),
        ]),
    );
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)),
    );
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('d'), KeyModifiers::NONE)),
    );
    insta::assert_snapshot!(screen(&app));
}

/// What a model might emit to attack or break a terminal: clear screen, cursor moves, OSC
/// title and clipboard sequences, a C1 CSI, BEL, backspaces and a bidi override.
const HOSTILE: &str =
    "ok\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07 \u{9b}31mred \x08\x08gone \u{202E}txt";

#[test]
fn control_characters_from_the_model_reach_the_screen_inert() {
    let mut app = app(Vec::new());
    send(&mut app, "say something odd");
    stream(&mut app, HOSTILE);
    let text = screen(&app);
    for bad in ['\x1b', '\x07', '\x08', '\u{9b}', '\u{202E}'] {
        assert!(!text.contains(bad), "{bad:?} reached the screen:\n{text}");
    }
    assert!(
        text.contains("ok^[[2J^[[H^[]0;pwned^G^[]52;c;ZXZpbA==^G"),
        "{text}"
    );
    assert!(
        text.contains("\u{FFFD}31mred ^H^Hgone \u{FFFD}txt"),
        "{text}"
    );

    // The same text from stored history.
    let stored = screen(&app_with_reply(HOSTILE));
    assert!(!stored.contains('\x1b'), "{stored}");
    assert!(stored.contains("ok^[[2J^[[H"), "{stored}");
}

fn app_with_reply(text: &str) -> App {
    app(vec![
        StoredMessage::new(Role::User, "hi"),
        StoredMessage::new(Role::Assistant, text),
    ])
}

/// The real pipeline minus the terminal: a scripted engine emits hostile text, the bot stores
/// it in a real sled store, the app renders it; then the session is opened again from disk.
#[tokio::test]
async fn hostile_model_output_is_stored_exactly_and_shown_inert_live_and_from_history() {
    use parlor::bot::Bot;
    use parlor::engine::ScriptedEngine;
    use parlor::engine::scripted::Scripted;
    use parlor::persona::Persona;
    use parlor::store::Store;
    use parlor::tui::Command;
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("db")).expect("store");
    let persona = Persona::parse(
        std::path::Path::new("personas/ada.yaml"),
        "name: Ada\nsystem: You are Ada.\ngreeting: Hi there.\n",
    )
    .expect("persona");
    let engine = ScriptedEngine::new([Scripted::Text(HOSTILE.into())]);
    let bot = Bot::new(persona, Arc::new(engine), store.clone());
    let info = bot.new_session(Some("hostile")).expect("session");

    let mut app = app(Vec::new());
    update(
        &mut app,
        Msg::SessionOpened {
            session: info.clone(),
            messages: Vec::new(),
            greeting: Some("Hi there.".into()),
            persona_name: "Ada".into(),
        },
    );
    typed(&mut app, "say something odd");
    let cmds = update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    let Some(Command::StartTurn { session, text }) = cmds.last().cloned() else {
        panic!("expected a turn: {cmds:?}");
    };
    let mut reply = bot.turn(session, &text);
    while let Some(ev) = reply.next().await {
        update(&mut app, Msg::Reply(ev));
    }
    let live = screen(&app);
    assert!(!live.contains('\x1b') && !live.contains('\u{9b}'), "{live}");
    assert!(live.contains("ok^[[2J^[[H^[]0;pwned^G"), "{live}");

    let stored = store.messages(info.id).expect("messages");
    assert_eq!(stored.last().map(|m| m.text.as_str()), Some(HOSTILE));
    let again = screen(&self::app(stored));
    assert!(!again.contains('\x1b'), "{again}");
    assert!(again.contains("ok^[[2J^[[H^[]0;pwned^G"), "{again}");
}
