//! `update`: the pure transition function. It takes the app and one [`Msg`], changes the app and
//! returns the [`Command`]s the shell should carry out. No IO, no clock: tested directly.

use super::app::{App, Command, INPUT_HISTORY_MAX, ListMode, ModelState, Msg, Overlay, Status};
use super::keys::{Action, action};
use super::overlay;
use super::slash::{self, Slash};
use super::transcript::{Entry, EntryKind, Scroll};
use crate::bot::ReplyEvent;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

/// Rows one mouse wheel step scrolls.
const WHEEL_ROWS: usize = 3;

/// Apply `msg` to `app`; returns what the shell must do.
pub fn update(app: &mut App, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Key(key) => {
            if key.kind == KeyEventKind::Release {
                return Vec::new();
            }
            if app.overlay != Overlay::None {
                // Ctrl+C quits from anywhere, an open overlay included.
                if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
                    app.overlay = Overlay::None;
                    return quit(app);
                }
                return overlay::key(app, key);
            }
            chat_key(app, key)
        }
        Msg::Mouse(kind) => {
            let (w, h) = app.transcript_size();
            match kind {
                MouseEventKind::ScrollUp => app.transcript.scroll_up(WHEEL_ROWS, w, h),
                MouseEventKind::ScrollDown => app.transcript.scroll_down(WHEEL_ROWS, w, h),
                _ => {}
            }
            Vec::new()
        }
        Msg::Paste(text) => {
            if app.overlay == Overlay::None {
                app.input
                    .insert_str(text.replace("\r\n", "\n").replace('\r', "\n"));
            }
            Vec::new()
        }
        Msg::Resize(w, h) => {
            app.size = (w, h);
            Vec::new()
        }
        Msg::Reply(ev) => {
            reply(app, ev);
            Vec::new()
        }
        Msg::SessionOpened {
            session,
            messages,
            greeting,
            persona_name,
        } => {
            if persona_name != app.persona {
                app.persona = persona_name;
            }
            app.load_session(&session, messages, greeting);
            app.overlay = Overlay::None;
            app.notice = Some(format!("session \"{}\"", session.name));
            // A message typed after an ended session goes to this new one.
            match app.pending_send.take() {
                Some(text) => start_turn(app, text),
                None => Vec::new(),
            }
        }
        Msg::SessionsListed(items) => {
            let selected = items
                .iter()
                .position(|s| s.id == app.session.id)
                .unwrap_or(0);
            app.overlay = Overlay::Sessions {
                items,
                selected,
                mode: ListMode::Browse,
            };
            Vec::new()
        }
        Msg::PersonasListed(items) => {
            app.overlay = Overlay::Personas { items, selected: 0 };
            Vec::new()
        }
        Msg::EditorClosed(text) => {
            app.set_input(text.trim_end_matches('\n'));
            Vec::new()
        }
        Msg::Notice(text) => {
            app.notice = Some(text);
            Vec::new()
        }
        Msg::ModelLoaded(Ok(info)) => {
            app.model = info.model;
            app.context_window = info.context_window;
            app.model_state = ModelState::Ready;
            app.notice = Some("model loaded".into());
            Vec::new()
        }
        Msg::ModelLoaded(Err(message)) => {
            app.transcript.entries.push(Entry::new(
                EntryKind::Error,
                format!("{message}\nType /retry to load the model again."),
            ));
            app.transcript.scroll = Scroll::Follow;
            app.model_state = ModelState::Failed(message);
            Vec::new()
        }
        Msg::PersonaReloaded(Ok(name)) => {
            app.transcript.bot_name = name.clone();
            app.persona = name;
            app.persona_error = None;
            app.notice = Some("persona reloaded from its file".into());
            Vec::new()
        }
        Msg::PersonaReloaded(Err(problems)) => {
            let first = problems.lines().next().unwrap_or_default().to_string();
            app.transcript.entries.push(Entry::new(
                EntryKind::Error,
                format!("persona edit rejected, the last good version stays in use:\n{problems}"),
            ));
            app.transcript.scroll = Scroll::Follow;
            app.persona_error = Some(first);
            Vec::new()
        }
        Msg::LiveRate(rate) => {
            if app.status == Status::Streaming {
                app.live_rate = Some(rate);
            }
            Vec::new()
        }
        Msg::CommandFailed(text) => {
            app.transcript
                .entries
                .push(Entry::new(EntryKind::Error, text.clone()));
            app.transcript.scroll = Scroll::Follow;
            if !app.status.busy() {
                app.status = Status::Failed(text);
            }
            Vec::new()
        }
    }
}

/// A reply event of the running turn.
fn reply(app: &mut App, ev: ReplyEvent) {
    match ev {
        ReplyEvent::Queued { position } => app.status = Status::Queued(position),
        ReplyEvent::Token(piece) => {
            if !app.streaming_entry {
                let mut e = Entry::new(EntryKind::Bot { interrupted: false }, String::new());
                e.set_speaker(&app.persona);
                app.transcript.entries.push(e);
                app.streaming_entry = true;
            }
            if let Some(e) = app.transcript.entries.last_mut() {
                e.push_str(&piece);
            }
            app.status = Status::Streaming;
        }
        ReplyEvent::Done(outcome) => {
            let interrupted = outcome.stats.finish == crate::chat::FinishReason::Cancelled;
            let kind = EntryKind::Bot { interrupted };
            if !app.streaming_entry {
                app.transcript.entries.push(Entry::new(kind.clone(), ""));
            }
            if let Some(e) = app.transcript.entries.last_mut() {
                // The stored text is the truth (stop strings, FAQ answers).
                if e.text != outcome.text {
                    e.text.clear();
                    e.push_str(&outcome.text);
                }
                e.set_kind(kind);
                if !outcome.persona.is_empty() {
                    e.set_speaker(&outcome.persona);
                }
            }
            app.streaming_entry = false;
            // Source badge: what answered, with the FAQ match score and runner-up.
            let badge = source_badge(&outcome);
            if badge.is_some() {
                app.notice = badge;
            }
            app.last_stats = Some(outcome.stats);
            app.live_rate = None;
            app.status = Status::Idle;
            // Rule actions: a persona switch, a handoff, the end of the session.
            if !outcome.persona.is_empty() && outcome.persona != app.persona {
                app.notice = Some(format!("{} speaks now", outcome.persona));
                app.persona = outcome.persona;
            }
            if outcome.handoff {
                app.notice = Some("a human was asked to take over this conversation".into());
            }
            if outcome.ended {
                app.session_ended = true;
                app.notice =
                    Some("the conversation ended; your next message starts a new session".into());
            }
        }
        ReplyEvent::Failed(message) => {
            mark_interrupted(app);
            app.live_rate = None;
            app.transcript.entries.push(Entry::new(
                EntryKind::Error,
                format!("{message} (/retry to try again)"),
            ));
            app.status = Status::Failed(message);
        }
    }
}

/// "FAQ returns · 0.82 (runner-up warranty 0.41)" for replies the FAQ machinery produced.
fn source_badge(outcome: &crate::bot::TurnOutcome) -> Option<String> {
    use crate::chat::ReplySource;
    let info = outcome.retrieval.as_ref()?;
    let what = match &outcome.source {
        ReplySource::Faq(id) => format!("FAQ {id}"),
        ReplySource::Choices => "did you mean: type a number".to_string(),
        ReplySource::Unsure if !info.invented.is_empty() => {
            format!(
                "not sure (reply replaced: {} not in the facts)",
                info.invented.join(", ")
            )
        }
        ReplySource::Unsure => "not sure: nothing relevant in the facts".to_string(),
        ReplySource::Model if info.best.is_some() => "model".to_string(),
        _ => return None,
    };
    Some(format!("{what} · match {}", info.summary()))
}

/// The streaming reply (if any) ends here, cut short.
fn mark_interrupted(app: &mut App) {
    if app.streaming_entry
        && let Some(e) = app.transcript.entries.last_mut()
    {
        e.set_kind(EntryKind::Bot { interrupted: true });
    }
    app.streaming_entry = false;
    app.live_rate = None;
}

fn chat_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    let empty = app.input.is_empty();
    let recalling = app.history_pos.is_some();
    let act = match key.code {
        KeyCode::Up if recalling => Action::HistoryPrev,
        KeyCode::Down if recalling => Action::HistoryNext,
        _ => action(key, empty),
    };
    if act != Action::Ignore {
        app.notice = None;
    }
    let (w, h) = app.transcript_size();
    match act {
        Action::Ignore => Vec::new(),
        Action::Quit => quit(app),
        Action::Send => send(app),
        Action::Newline => {
            app.input.insert_newline();
            Vec::new()
        }
        Action::Stop => stop(app),
        Action::Help => {
            app.overlay = Overlay::Help;
            Vec::new()
        }
        Action::PageUp => {
            app.transcript
                .scroll_up(usize::from(h.saturating_sub(2).max(1)), w, h);
            Vec::new()
        }
        Action::PageDown => {
            app.transcript
                .scroll_down(usize::from(h.saturating_sub(2).max(1)), w, h);
            Vec::new()
        }
        Action::Top => {
            app.transcript.scroll_top(w, h);
            Vec::new()
        }
        Action::Bottom => {
            app.transcript.scroll = Scroll::Follow;
            Vec::new()
        }
        Action::HistoryPrev => {
            recall(app, -1);
            Vec::new()
        }
        Action::HistoryNext => {
            recall(app, 1);
            Vec::new()
        }
        Action::Editor => vec![Command::OpenEditor(app.input_text())],
        Action::NewSession => new_session(app, None),
        Action::Sessions => vec![Command::ListSessions],
        Action::Personas => vec![Command::ListPersonas],
        Action::CopyLast => match app.last_reply().map(str::to_string) {
            Some(text) => {
                app.notice = Some("last reply copied to the clipboard".into());
                vec![Command::Copy(text)]
            }
            None => {
                app.notice = Some("no reply to copy yet".into());
                Vec::new()
            }
        },
        Action::CopyMode => {
            app.copy_mode = !app.copy_mode;
            vec![Command::SetMouseCapture(!app.copy_mode)]
        }
        Action::Edit => {
            app.history_pos = None;
            app.input.input(key);
            Vec::new()
        }
    }
}

/// Ctrl+C: stop any turn (the bot stores the partial reply) and leave.
fn quit(app: &mut App) -> Vec<Command> {
    app.quitting = true;
    let mut cmds = Vec::new();
    if app.status.busy() {
        mark_interrupted(app);
        app.status = Status::Idle;
        cmds.push(Command::CancelTurn);
    }
    cmds.push(Command::Quit);
    cmds
}

fn stop(app: &mut App) -> Vec<Command> {
    if !app.status.busy() {
        return Vec::new();
    }
    if !app.streaming_entry {
        // Stopped before any text: the bot stores an empty interrupted reply.
        app.transcript.entries.push(Entry::new(
            EntryKind::Bot { interrupted: true },
            String::new(),
        ));
    }
    mark_interrupted(app);
    app.status = Status::Idle;
    app.notice = Some("reply stopped".into());
    vec![Command::CancelTurn]
}

fn recall(app: &mut App, step: isize) {
    if app.history.is_empty() {
        return;
    }
    let last = app.history.len() - 1;
    let pos = match (app.history_pos, step < 0) {
        (None, true) => Some(last),
        (None, false) => None,
        (Some(0), true) => Some(0),
        (Some(p), true) => Some(p - 1),
        (Some(p), false) if p >= last => None,
        (Some(p), false) => Some(p + 1),
    };
    let text = pos.map(|p| app.history[p].clone()).unwrap_or_default();
    app.set_input(&text);
    app.history_pos = pos;
}

fn new_session(app: &mut App, name: Option<String>) -> Vec<Command> {
    if app.status.busy() {
        app.notice = Some("a reply is running; press Esc to stop it first".into());
        return Vec::new();
    }
    vec![Command::NewSession { name }]
}

fn remember(app: &mut App, text: &str) -> Command {
    if app.history.last().map(String::as_str) != Some(text) {
        app.history.push(text.to_string());
    }
    let excess = app.history.len().saturating_sub(INPUT_HISTORY_MAX);
    app.history.drain(..excess);
    app.history_pos = None;
    Command::SaveInputHistory(app.history.clone())
}

/// Enter: run a slash command or start a turn. Input typed while a reply streams stays put.
fn send(app: &mut App) -> Vec<Command> {
    let text = app.input_text();
    if text.trim().is_empty() {
        return Vec::new();
    }
    if app.status.busy() {
        app.notice = Some("a reply is running: your text is kept; Esc stops the reply".into());
        return Vec::new();
    }
    if let Some(parsed) = slash::parse(&text) {
        app.set_input("");
        let save = remember(app, text.trim());
        return match parsed {
            Err(message) => {
                app.transcript
                    .entries
                    .push(Entry::new(EntryKind::Error, message));
                app.transcript.scroll = Scroll::Follow;
                vec![save]
            }
            Ok(cmd) => {
                let mut cmds = vec![save];
                cmds.extend(slash_command(app, cmd));
                cmds
            }
        };
    }
    match &app.model_state {
        ModelState::Ready => {}
        ModelState::Loading => {
            app.notice = Some("the model is still loading; your text is kept".into());
            return Vec::new();
        }
        ModelState::Failed(_) => {
            app.notice =
                Some("the model is not loaded; /retry loads it again (your text is kept)".into());
            return Vec::new();
        }
    }
    app.set_input("");
    let save = remember(app, &text);
    if app.session_ended {
        // The rules ended this session: the message opens a new one and is sent there.
        app.pending_send = Some(text);
        return vec![save, Command::NewSession { name: None }];
    }
    let mut cmds = vec![save];
    cmds.extend(start_turn(app, text));
    cmds
}

/// Show the user's message and start the turn answering it.
fn start_turn(app: &mut App, text: String) -> Vec<Command> {
    app.transcript
        .entries
        .push(Entry::new(EntryKind::User, text.clone()));
    app.transcript.scroll = Scroll::Follow;
    app.status = Status::Thinking;
    vec![Command::StartTurn {
        session: app.session.id,
        text,
    }]
}

fn slash_command(app: &mut App, cmd: Slash) -> Vec<Command> {
    match cmd {
        Slash::New(name) => new_session(app, name),
        Slash::Reset => vec![Command::ResetSession(app.session.id)],
        Slash::Persona(Some(name)) => vec![Command::SwitchPersona(name)],
        Slash::Persona(None) => vec![Command::ListPersonas],
        Slash::Retry if matches!(app.model_state, ModelState::Failed(_)) => {
            app.model_state = ModelState::Loading;
            app.notice = Some("loading the model…".into());
            vec![Command::LoadModel]
        }
        Slash::Retry if app.model_state == ModelState::Loading => {
            app.notice = Some("the model is still loading".into());
            Vec::new()
        }
        Slash::Retry => {
            let has_user_message = app
                .transcript
                .entries
                .iter()
                .any(|e| matches!(e.kind, EntryKind::User));
            if !has_user_message {
                app.notice = Some("nothing to answer again yet".into());
                return Vec::new();
            }
            // The old reply is replaced by the new one.
            while let Some(e) = app.transcript.entries.last() {
                if matches!(e.kind, EntryKind::User) {
                    break;
                }
                app.transcript.entries.pop();
            }
            app.transcript.scroll = Scroll::Follow;
            app.status = Status::Thinking;
            vec![Command::Regenerate {
                session: app.session.id,
            }]
        }
        Slash::Export(format, path) => vec![Command::Export {
            session: app.session.id,
            format,
            path,
        }],
        Slash::Rename(name) => vec![Command::RenameSession {
            id: app.session.id,
            name,
        }],
        Slash::Sessions => vec![Command::ListSessions],
        Slash::Help => {
            app.overlay = Overlay::Help;
            Vec::new()
        }
        Slash::Quit => quit(app),
    }
}

#[cfg(test)]
mod tests;
