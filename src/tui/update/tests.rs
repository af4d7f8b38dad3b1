//! Transition tests of `update`: each name is the rule it checks.

use super::update;
use crate::bot::{ReplyEvent, TurnOutcome};
use crate::bot::{SessionInfo, StoredMessage};
use crate::chat::{FinishReason, ReplySource, Role, SessionId, TurnStats};
use crate::tui::app::{
    App, AppInit, Command, ExportFormat, ListMode, ModelInfo, ModelState, Msg, Overlay, Status,
};
use crate::tui::transcript::{EntryKind, Scroll};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEventKind};

fn session(id: u64, name: &str) -> SessionInfo {
    SessionInfo {
        id: SessionId(id),
        name: name.into(),
        persona: "ada".into(),
        model: "scripted".into(),
        created: 0,
        updated: 0,
        message_count: 0,
    }
}

fn app_with(messages: Vec<StoredMessage>) -> App {
    let mut app = App::new(AppInit {
        persona: "Ada".into(),
        model: "scripted".into(),
        context_window: 2048,
        size: (60, 20),
        history: vec!["first".into(), "second".into()],
        model_state: ModelState::Ready,
    });
    update(
        &mut app,
        Msg::SessionOpened {
            session: session(7, "s"),
            messages,
            greeting: Some("Hello!".into()),
            persona_name: "Ada".into(),
        },
    );
    app
}

fn app() -> App {
    app_with(Vec::new())
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        update(app, key(KeyCode::Char(c)));
    }
}

fn token(t: &str) -> Msg {
    Msg::Reply(ReplyEvent::Token(t.into()))
}

fn done(text: &str) -> Msg {
    Msg::Reply(ReplyEvent::Done(TurnOutcome {
        text: text.into(),
        stats: TurnStats {
            prompt_tokens: 100,
            completion_tokens: 20,
            tokens_per_second: 150.0,
            trimmed_messages: 2,
            context_window: 2048,
            ..Default::default()
        },
        source: ReplySource::Model,
        seq: 3,
        ..Default::default()
    }))
}

fn kinds(app: &App) -> Vec<EntryKind> {
    app.transcript
        .entries
        .iter()
        .map(|e| e.kind.clone())
        .collect()
}

fn streaming(app: &mut App) {
    type_text(app, "hi");
    update(app, key(KeyCode::Enter));
    update(app, token("Hel"));
    update(app, token("lo"));
}

#[test]
fn a_new_session_shows_the_greeting() {
    let app = app();
    assert_eq!(kinds(&app), [EntryKind::Greeting]);
    assert_eq!(app.transcript.entries[0].text, "Hello!");
}

#[test]
fn a_resumed_session_shows_its_messages_instead_of_the_greeting() {
    let mut bot = StoredMessage::new(Role::Assistant, "part");
    bot.interrupted = true;
    let app = app_with(vec![StoredMessage::new(Role::User, "q"), bot]);
    assert_eq!(
        kinds(&app),
        [EntryKind::User, EntryKind::Bot { interrupted: true }]
    );
}

#[test]
fn submit_starts_a_turn_and_clears_the_input() {
    let mut app = app();
    type_text(&mut app, "hello");
    let cmds = update(&mut app, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        [
            Command::SaveInputHistory(vec!["first".into(), "second".into(), "hello".into()]),
            Command::StartTurn {
                session: SessionId(7),
                text: "hello".into()
            }
        ]
    );
    assert!(app.input.is_empty());
    assert_eq!(app.status, Status::Thinking);
    assert_eq!(app.transcript.entries.last().unwrap().text, "hello");
}

#[test]
fn an_empty_input_sends_nothing() {
    let mut app = app();
    type_text(&mut app, "   ");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
}

#[test]
fn tokens_append_to_one_streaming_reply() {
    let mut app = app();
    streaming(&mut app);
    assert_eq!(app.status, Status::Streaming);
    let last = app.transcript.entries.last().unwrap();
    assert_eq!(last.text, "Hello");
    assert_eq!(last.kind, EntryKind::Bot { interrupted: false });
}

#[test]
fn done_ends_the_turn_with_the_stored_text_and_its_numbers() {
    let mut app = app();
    streaming(&mut app);
    update(&mut app, done("Hello there"));
    assert_eq!(app.status, Status::Idle);
    assert_eq!(app.transcript.entries.last().unwrap().text, "Hello there");
    assert_eq!(app.last_stats.as_ref().unwrap().trimmed_messages, 2);
    assert!(!app.streaming_entry);
}

#[test]
fn esc_cancels_the_turn_and_keeps_the_partial_reply_marked_interrupted() {
    let mut app = app();
    streaming(&mut app);
    assert_eq!(update(&mut app, key(KeyCode::Esc)), [Command::CancelTurn]);
    assert_eq!(app.status, Status::Idle);
    let last = app.transcript.entries.last().unwrap();
    assert_eq!(
        (last.kind.clone(), last.text.as_str()),
        (EntryKind::Bot { interrupted: true }, "Hello")
    );
}

#[test]
fn esc_while_idle_does_nothing() {
    let mut app = app();
    assert!(update(&mut app, key(KeyCode::Esc)).is_empty());
}

#[test]
fn quit_while_streaming_cancels_the_turn_then_quits() {
    let mut app = app();
    streaming(&mut app);
    assert_eq!(
        update(&mut app, ctrl('c')),
        [Command::CancelTurn, Command::Quit]
    );
    assert!(app.quitting);
}

#[test]
fn quit_when_idle_just_quits() {
    let mut app = app();
    assert_eq!(update(&mut app, ctrl('c')), [Command::Quit]);
}

#[test]
fn ctrl_c_quits_from_an_overlay_too() {
    let mut app = app();
    update(&mut app, key(KeyCode::F(1)));
    assert_eq!(app.overlay, Overlay::Help);
    assert_eq!(update(&mut app, ctrl('c')), [Command::Quit]);
}

#[test]
fn text_typed_while_a_reply_streams_is_kept_and_not_sent() {
    let mut app = app();
    streaming(&mut app);
    type_text(&mut app, "next question");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert_eq!(app.input_text(), "next question");
    assert!(app.notice.as_deref().unwrap().contains("kept"));
}

#[test]
fn a_failure_shows_inline_and_the_app_keeps_running() {
    let mut app = app();
    streaming(&mut app);
    update(
        &mut app,
        Msg::Reply(ReplyEvent::Failed("model file missing".into())),
    );
    assert_eq!(app.status, Status::Failed("model file missing".into()));
    assert_eq!(
        kinds(&app)[kinds(&app).len() - 2..],
        [EntryKind::Bot { interrupted: true }, EntryKind::Error]
    );
    type_text(&mut app, "again");
    assert!(matches!(
        update(&mut app, key(KeyCode::Enter))[..],
        [_, Command::StartTurn { .. }]
    ));
}

#[test]
fn retry_replaces_the_last_reply_with_a_regenerated_one() {
    let mut app = app();
    streaming(&mut app);
    update(&mut app, done("Hello"));
    type_text(&mut app, "/retry");
    let cmds = update(&mut app, key(KeyCode::Enter));
    assert_eq!(
        cmds[1..],
        [Command::Regenerate {
            session: SessionId(7)
        }]
    );
    assert_eq!(kinds(&app).last(), Some(&EntryKind::User));
    assert_eq!(app.status, Status::Thinking);
}

#[test]
fn an_unknown_slash_command_says_so_and_sends_nothing() {
    let mut app = app();
    type_text(&mut app, "/frobnicate");
    let cmds = update(&mut app, key(KeyCode::Enter));
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::StartTurn { .. })),
        "{cmds:?}"
    );
    let last = app.transcript.entries.last().unwrap();
    assert_eq!(last.kind, EntryKind::Error);
    assert!(last.text.contains("unknown command \"/frobnicate\""));
}

#[test]
fn slash_commands_become_commands() {
    let cases: &[(&str, Command)] = &[
        (
            "/new work",
            Command::NewSession {
                name: Some("work".into()),
            },
        ),
        ("/reset", Command::ResetSession(SessionId(7))),
        ("/persona pirate", Command::SwitchPersona("pirate".into())),
        ("/persona", Command::ListPersonas),
        (
            "/export jsonl /tmp/x.jsonl",
            Command::Export {
                session: SessionId(7),
                format: ExportFormat::Jsonl,
                path: Some("/tmp/x.jsonl".into()),
            },
        ),
        (
            "/rename later",
            Command::RenameSession {
                id: SessionId(7),
                name: "later".into(),
            },
        ),
    ];
    for (text, want) in cases {
        let mut app = app();
        type_text(&mut app, text);
        let cmds = update(&mut app, key(KeyCode::Enter));
        assert_eq!(cmds.last(), Some(want), "{text}");
    }
}

#[test]
fn help_opens_from_f1_slash_help_and_question_mark_in_an_empty_box() {
    for open in [vec![key(KeyCode::F(1))], vec![key(KeyCode::Char('?'))]] {
        let mut app = app();
        for m in open {
            update(&mut app, m);
        }
        assert_eq!(app.overlay, Overlay::Help);
        update(&mut app, key(KeyCode::Char('x')));
        assert_eq!(app.overlay, Overlay::None, "any key closes help");
    }
    let mut app = app();
    type_text(&mut app, "/help");
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.overlay, Overlay::Help);
}

#[test]
fn alt_enter_and_shift_enter_add_a_line_instead_of_sending() {
    for m in [KeyModifiers::ALT, KeyModifiers::SHIFT] {
        let mut app = app();
        type_text(&mut app, "a");
        assert!(update(&mut app, Msg::Key(KeyEvent::new(KeyCode::Enter, m))).is_empty());
        type_text(&mut app, "b");
        assert_eq!(app.input_text(), "a\nb");
    }
}

#[test]
fn pasted_lines_stay_in_the_input() {
    let mut app = app();
    assert!(update(&mut app, Msg::Paste("one\r\ntwo".into())).is_empty());
    assert_eq!(app.input_text(), "one\ntwo");
}

#[test]
fn up_in_an_empty_box_walks_back_through_earlier_inputs_and_down_returns() {
    let mut app = app();
    update(&mut app, key(KeyCode::Up));
    assert_eq!(app.input_text(), "second");
    update(&mut app, key(KeyCode::Up));
    assert_eq!(app.input_text(), "first");
    update(&mut app, key(KeyCode::Down));
    update(&mut app, key(KeyCode::Down));
    assert_eq!(app.input_text(), "");
}

#[test]
fn ctrl_e_hands_the_input_to_the_editor_and_takes_it_back() {
    let mut app = app();
    type_text(&mut app, "draft");
    assert_eq!(
        update(&mut app, ctrl('e')),
        [Command::OpenEditor("draft".into())]
    );
    update(&mut app, Msg::EditorClosed("long\ntext\n".into()));
    assert_eq!(app.input_text(), "long\ntext");
}

#[test]
fn page_up_stops_following_and_end_follows_again() {
    let many: Vec<StoredMessage> = (0..40)
        .map(|i| StoredMessage::new(Role::User, format!("m{i}")))
        .collect();
    let mut app = app_with(many);
    update(&mut app, key(KeyCode::PageUp));
    assert!(matches!(app.transcript.scroll, Scroll::Anchor { .. }));
    update(&mut app, streaming_token());
    assert!(
        matches!(app.transcript.scroll, Scroll::Anchor { .. }),
        "streaming does not pull a scrolled view down"
    );
    update(&mut app, key(KeyCode::End));
    assert_eq!(app.transcript.scroll, Scroll::Follow);
    update(&mut app, Msg::Mouse(MouseEventKind::ScrollUp));
    assert!(matches!(app.transcript.scroll, Scroll::Anchor { .. }));
}

fn streaming_token() -> Msg {
    token("more")
}

#[test]
fn session_list_renames_and_deletes_only_after_confirmation() {
    let mut app = app();
    assert_eq!(update(&mut app, ctrl('o')), [Command::ListSessions]);
    update(
        &mut app,
        Msg::SessionsListed(vec![session(9, "old"), session(7, "s")]),
    );
    let Overlay::Sessions { selected, .. } = &app.overlay else {
        panic!("session list expected");
    };
    assert_eq!(*selected, 1, "the current session is selected");
    update(&mut app, key(KeyCode::Up));
    update(&mut app, key(KeyCode::Char('r')));
    for _ in 0..3 {
        update(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, "new");
    assert_eq!(
        update(&mut app, key(KeyCode::Enter)),
        [Command::RenameSession {
            id: SessionId(9),
            name: "new".into()
        }]
    );
    update(&mut app, key(KeyCode::Char('d')));
    assert!(matches!(
        app.overlay,
        Overlay::Sessions {
            mode: ListMode::ConfirmDelete,
            ..
        }
    ));
    assert!(update(&mut app, key(KeyCode::Char('n'))).is_empty());
    update(&mut app, key(KeyCode::Char('d')));
    assert_eq!(
        update(&mut app, key(KeyCode::Char('y'))),
        [Command::DeleteSession(SessionId(9))]
    );
    assert_eq!(
        update(&mut app, key(KeyCode::Enter)),
        [Command::OpenSession(SessionId(9))]
    );
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn persona_picker_starts_a_session_with_the_chosen_persona() {
    let mut app = app();
    assert_eq!(update(&mut app, ctrl('p')), [Command::ListPersonas]);
    update(
        &mut app,
        Msg::PersonasListed(vec!["ada".into(), "pirate".into()]),
    );
    update(&mut app, key(KeyCode::Down));
    assert_eq!(
        update(&mut app, key(KeyCode::Enter)),
        [Command::SwitchPersona("pirate".into())]
    );
}

#[test]
fn ctrl_n_makes_a_new_session_but_not_while_a_reply_runs() {
    let mut app = app();
    assert_eq!(
        update(&mut app, ctrl('n')),
        [Command::NewSession { name: None }]
    );
    streaming(&mut app);
    assert!(update(&mut app, ctrl('n')).is_empty());
}

#[test]
fn copy_mode_turns_mouse_capture_off_and_back_on() {
    let mut app = app();
    assert_eq!(
        update(&mut app, key(KeyCode::F(3))),
        [Command::SetMouseCapture(false)]
    );
    assert!(app.copy_mode);
    assert_eq!(
        update(&mut app, key(KeyCode::F(3))),
        [Command::SetMouseCapture(true)]
    );
}

#[test]
fn ctrl_y_copies_the_last_reply() {
    let mut app = app();
    streaming(&mut app);
    update(&mut app, done("Hello"));
    assert_eq!(update(&mut app, ctrl('y')), [Command::Copy("Hello".into())]);
}

#[test]
fn a_cancelled_outcome_is_shown_interrupted() {
    let mut app = app();
    streaming(&mut app);
    let Msg::Reply(ReplyEvent::Done(mut outcome)) = done("Hel") else {
        unreachable!()
    };
    outcome.stats.finish = FinishReason::Cancelled;
    update(&mut app, Msg::Reply(ReplyEvent::Done(outcome)));
    assert_eq!(
        kinds(&app).last(),
        Some(&EntryKind::Bot { interrupted: true })
    );
}

mod lifecycle;
