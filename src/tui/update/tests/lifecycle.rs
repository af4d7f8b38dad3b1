//! Transitions around the chat rather than in it: the model loading after the app opens (and
//! failing, and `/retry`), hot reload reports, the live rate, and rule actions that switch the
//! persona or end the session.

use super::*;

fn loading_app() -> App {
    let mut app = App::new(AppInit {
        persona: "Ada".into(),
        model: "smollm2-135m".into(),
        context_window: 2048,
        size: (60, 20),
        history: Vec::new(),
        model_state: ModelState::Loading,
    });
    update(
        &mut app,
        Msg::SessionOpened {
            session: session(7, "s"),
            messages: Vec::new(),
            greeting: None,
            persona_name: "Ada".into(),
        },
    );
    app
}

fn outcome(text: &str) -> TurnOutcome {
    TurnOutcome {
        text: text.into(),
        persona: "Ada".into(),
        ..Default::default()
    }
}

#[test]
fn messages_wait_for_the_model_and_keep_their_text() {
    let mut app = loading_app();
    type_text(&mut app, "hi");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert_eq!(app.input_text(), "hi");
    assert!(app.notice.as_deref().unwrap().contains("still loading"));

    let cmds = update(
        &mut app,
        Msg::ModelLoaded(Ok(ModelInfo {
            model: "SmolLM2".into(),
            context_window: 4096,
        })),
    );
    assert!(cmds.is_empty());
    assert_eq!(app.model_state, ModelState::Ready);
    assert_eq!((app.model.as_str(), app.context_window), ("SmolLM2", 4096));
    let cmds = update(&mut app, key(KeyCode::Enter));
    assert!(matches!(cmds.last(), Some(Command::StartTurn { text, .. }) if text == "hi"));
}

#[test]
fn a_model_that_fails_to_load_is_shown_inline_and_retry_loads_it_again() {
    let mut app = loading_app();
    let why = "model file \"m.gguf\" not found; fetch it with `parlor model pull smollm2-135m`";
    update(&mut app, Msg::ModelLoaded(Err(why.into())));
    assert_eq!(app.model_state, ModelState::Failed(why.into()));
    let last = app.transcript.entries.last().unwrap();
    assert_eq!(last.kind, EntryKind::Error);
    assert!(last.text.contains("not found") && last.text.contains("/retry"));

    // Sending is refused with a hint; the text stays for later.
    type_text(&mut app, "hello");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert_eq!(app.input_text(), "hello");
    assert!(app.notice.as_deref().unwrap().contains("/retry"));

    // Slash commands still work: /retry asks the shell to load the model again.
    app.set_input("/retry");
    let cmds = update(&mut app, key(KeyCode::Enter));
    assert_eq!(cmds.last(), Some(&Command::LoadModel));
    assert_eq!(app.model_state, ModelState::Loading);
    app.set_input("/retry");
    let cmds = update(&mut app, key(KeyCode::Enter));
    assert!(!cmds.contains(&Command::LoadModel), "one load at a time");
}

#[test]
fn hot_reload_reports_show_in_the_status_until_a_good_edit() {
    let mut app = app();
    let problems =
        "personas/ada.yaml:3:7: faq.entries[0].answer: missing\npersonas/ada.yaml:9:1: x";
    update(&mut app, Msg::PersonaReloaded(Err(problems.into())));
    assert_eq!(
        app.persona_error.as_deref(),
        Some("personas/ada.yaml:3:7: faq.entries[0].answer: missing")
    );
    let last = app.transcript.entries.last().unwrap();
    assert_eq!(last.kind, EntryKind::Error);
    assert!(last.text.contains("personas/ada.yaml:9:1"));

    update(&mut app, Msg::PersonaReloaded(Ok("Ada Lovelace".into())));
    assert_eq!(app.persona_error, None);
    assert_eq!(app.persona, "Ada Lovelace");
}

#[test]
fn the_live_rate_shows_while_streaming_and_gives_way_to_the_turns_rate() {
    let mut app = app();
    update(&mut app, Msg::LiveRate(12.0));
    assert_eq!(app.live_rate, None, "no reply is streaming");
    streaming(&mut app);
    update(&mut app, Msg::LiveRate(42.5));
    assert_eq!(app.live_rate, Some(42.5));
    update(&mut app, done("Hello"));
    assert_eq!(app.live_rate, None);
    assert_eq!(app.last_stats.as_ref().unwrap().tokens_per_second, 150.0);
}

#[test]
fn a_rule_that_switches_the_persona_renames_the_speaker() {
    let mut app = app();
    streaming(&mut app);
    let mut o = outcome("Arr.");
    o.persona = "Captain Flint".into();
    update(&mut app, Msg::Reply(ReplyEvent::Done(o)));
    assert_eq!(app.persona, "Captain Flint");
    assert!(app.notice.as_deref().unwrap().contains("Captain Flint"));
}

#[test]
fn after_a_rule_ends_the_session_the_next_message_opens_a_new_one() {
    let mut app = app();
    streaming(&mut app);
    let mut o = outcome("Goodbye.");
    o.ended = true;
    update(&mut app, Msg::Reply(ReplyEvent::Done(o)));
    assert!(app.session_ended);
    assert!(app.notice.as_deref().unwrap().contains("new session"));

    type_text(&mut app, "back again");
    let cmds = update(&mut app, key(KeyCode::Enter));
    assert_eq!(cmds.last(), Some(&Command::NewSession { name: None }));
    assert_eq!(app.transcript.entries.last().unwrap().text, "Goodbye.");

    // The new session opens; the message is sent there.
    let cmds = update(
        &mut app,
        Msg::SessionOpened {
            session: session(8, "new"),
            messages: Vec::new(),
            greeting: Some("Hello!".into()),
            persona_name: "Ada".into(),
        },
    );
    assert_eq!(
        cmds,
        [Command::StartTurn {
            session: SessionId(8),
            text: "back again".into()
        }]
    );
    assert!(!app.session_ended);
    assert_eq!(
        kinds(&app),
        [EntryKind::Greeting, EntryKind::User],
        "the greeting, then the message"
    );
    assert_eq!(app.status, Status::Thinking);
}
