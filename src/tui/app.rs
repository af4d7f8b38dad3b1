//! The TUI's state (`App`) and its vocabulary: `Msg` (facts coming in: keys, reply events,
//! results of commands) and `Command` (what the IO shell should do: start a turn, cancel it,
//! open a session, quit). [`super::update`] is the only code that changes an `App`.

use super::transcript::{Entry, EntryKind, Transcript};
use crate::bot::ReplyEvent;
use crate::bot::{SessionInfo, StoredMessage};
use crate::chat::{Role, SessionId, TurnStats};
use crossterm::event::{KeyEvent, MouseEventKind};
use ratatui_textarea::TextArea;
use std::path::PathBuf;

/// Most inputs remembered for Up-recall.
pub const INPUT_HISTORY_MAX: usize = 200;

/// What the bot is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the user.
    Idle,
    /// A turn started; no text yet.
    Thinking,
    /// The engine is busy with other chats; this turn waits at this place.
    Queued(usize),
    /// Reply text is arriving.
    Streaming,
    /// The last turn or command failed with this message.
    Failed(String),
}

impl Status {
    /// A turn is running (Esc stops it).
    pub fn busy(&self) -> bool {
        matches!(
            self,
            Status::Thinking | Status::Queued(_) | Status::Streaming
        )
    }
}

/// Whether the model can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelState {
    /// Being loaded (the app opens before the model is ready).
    Loading,
    /// Loaded.
    Ready,
    /// Loading failed with this message (missing file, corrupt file, ...); `/retry` loads again.
    Failed(String),
}

/// What the shell knows once a model loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Model name for the status bar.
    pub model: String,
    /// Context window of the session's persona on this model.
    pub context_window: u32,
}

/// The session shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Store id.
    pub id: SessionId,
    /// Name.
    pub name: String,
}

/// What the session list is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListMode {
    /// Moving the selection.
    Browse,
    /// Typing a new name for the selected session.
    Rename(String),
    /// Asking whether to delete the selected session.
    ConfirmDelete,
}

/// A window over the transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// Nothing: the chat.
    None,
    /// Every key, with what it does.
    Help,
    /// Sessions, most recent first.
    Sessions {
        /// The sessions.
        items: Vec<SessionInfo>,
        /// Selected row.
        selected: usize,
        /// What keys do now.
        mode: ListMode,
    },
    /// Personas to start a new session with.
    Personas {
        /// Persona ids.
        items: Vec<String>,
        /// Selected row.
        selected: usize,
    },
}

pub use crate::bot::ExportFormat;

/// Facts that reach the app.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A key was pressed.
    Key(KeyEvent),
    /// The mouse wheel or buttons.
    Mouse(MouseEventKind),
    /// Text was pasted (bracketed paste).
    Paste(String),
    /// The terminal has a new size.
    Resize(u16, u16),
    /// An event of the running turn.
    Reply(ReplyEvent),
    /// A session was opened (start, switch, new, persona change).
    SessionOpened {
        /// Its metadata.
        session: SessionInfo,
        /// Its stored messages, in order.
        messages: Vec<StoredMessage>,
        /// The persona's greeting, shown when there are no messages.
        greeting: Option<String>,
        /// Display name of the persona now speaking.
        persona_name: String,
    },
    /// The session list, for the overlay.
    SessionsListed(Vec<SessionInfo>),
    /// Persona ids, for the picker.
    PersonasListed(Vec<String>),
    /// `$EDITOR` closed with this text.
    EditorClosed(String),
    /// A command finished; tell the user.
    Notice(String),
    /// A command failed; the text is for users.
    CommandFailed(String),
    /// The model finished loading, or failed to.
    ModelLoaded(Result<ModelInfo, String>),
    /// The persona file was edited: reloaded (its display name) or rejected (the problems).
    PersonaReloaded(Result<String, String>),
    /// Tokens per second of the reply streaming now.
    LiveRate(f64),
}

/// What the IO shell should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start a turn answering `text`.
    StartTurn {
        /// Session to answer in.
        session: SessionId,
        /// The user's message.
        text: String,
    },
    /// Answer the last user message again (`/retry`).
    Regenerate {
        /// Session.
        session: SessionId,
    },
    /// Stop the running turn (drop its reply stream).
    CancelTurn,
    /// Create a session and open it.
    NewSession {
        /// Its name; generated when `None`.
        name: Option<String>,
    },
    /// Open a stored session.
    OpenSession(SessionId),
    /// Delete every message of a session and show it again.
    ResetSession(SessionId),
    /// List sessions for the overlay.
    ListSessions,
    /// Rename a session.
    RenameSession {
        /// Which.
        id: SessionId,
        /// New name.
        name: String,
    },
    /// Delete a session (the user confirmed).
    DeleteSession(SessionId),
    /// List personas for the picker.
    ListPersonas,
    /// Load persona `id` and start a new session with it.
    SwitchPersona(String),
    /// Write the session to a file.
    Export {
        /// Which session.
        session: SessionId,
        /// Format.
        format: ExportFormat,
        /// Target file; a default name in the current directory when `None`.
        path: Option<PathBuf>,
    },
    /// Let the user edit this text in `$EDITOR`.
    OpenEditor(String),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Turn mouse capture on (scrolling) or off (selecting text).
    SetMouseCapture(bool),
    /// Remember the input history.
    SaveInputHistory(Vec<String>),
    /// Load the model (again).
    LoadModel,
    /// Leave: stop any turn, flush the store, restore the terminal.
    Quit,
}

/// Everything on screen.
pub struct App {
    /// The conversation.
    pub transcript: Transcript,
    /// The message being typed.
    pub input: TextArea<'static>,
    /// What the bot is doing.
    pub status: Status,
    /// The session shown.
    pub session: SessionView,
    /// Persona display name.
    pub persona: String,
    /// Model name.
    pub model: String,
    /// Context window in tokens.
    pub context_window: u32,
    /// Numbers of the last finished turn.
    pub last_stats: Option<TurnStats>,
    /// Tokens per second of the reply streaming now.
    pub live_rate: Option<f64>,
    /// Whether the model can answer.
    pub model_state: ModelState,
    /// The last edit of the persona file was rejected: its first problem.
    pub persona_error: Option<String>,
    /// An `end_session` rule ended the session: the next message starts a new one.
    pub session_ended: bool,
    /// A message waiting for the new session it will be sent in.
    pub pending_send: Option<String>,
    /// Overlay window.
    pub overlay: Overlay,
    /// Earlier inputs, oldest first.
    pub history: Vec<String>,
    /// Index into `history` while recalling with Up/Down.
    pub history_pos: Option<usize>,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// Mouse capture off so the terminal can select text.
    pub copy_mode: bool,
    /// A one-line message in the status bar until the next key.
    pub notice: Option<String>,
    /// The last entry is the reply being streamed.
    pub streaming_entry: bool,
    /// The app is leaving.
    pub quitting: bool,
    /// No colours (`NO_COLOR` is set): emphasis by reverse video and bold only.
    pub monochrome: bool,
}

/// What an app starts with.
pub struct AppInit {
    /// Persona display name.
    pub persona: String,
    /// Model name.
    pub model: String,
    /// Context window.
    pub context_window: u32,
    /// Terminal size.
    pub size: (u16, u16),
    /// Remembered inputs.
    pub history: Vec<String>,
    /// Whether the model is loaded already.
    pub model_state: ModelState,
}

impl App {
    /// An app with no session loaded yet (the shell sends [`Msg::SessionOpened`]).
    pub fn new(init: AppInit) -> Self {
        Self {
            transcript: Transcript::new(init.persona.clone()),
            input: new_input(),
            status: Status::Idle,
            session: SessionView {
                id: SessionId(0),
                name: String::new(),
            },
            persona: init.persona,
            model: init.model,
            context_window: init.context_window,
            last_stats: None,
            live_rate: None,
            model_state: init.model_state,
            persona_error: None,
            session_ended: false,
            pending_send: None,
            overlay: Overlay::None,
            history: init.history,
            history_pos: None,
            size: init.size,
            copy_mode: false,
            notice: None,
            streaming_entry: false,
            quitting: false,
            monochrome: !crate::sanitize::colour_allowed(),
        }
    }

    /// Show `session` with its `messages` (the greeting when there are none).
    pub fn load_session(
        &mut self,
        session: &SessionInfo,
        messages: Vec<StoredMessage>,
        greeting: Option<String>,
    ) {
        self.session = SessionView {
            id: session.id,
            name: session.name.clone(),
        };
        self.transcript = Transcript::new(self.persona.clone());
        self.last_stats = messages.iter().rev().find_map(|m| m.stats.clone());
        if messages.is_empty()
            && let Some(g) = greeting
        {
            self.transcript
                .entries
                .push(Entry::new(EntryKind::Greeting, g));
        }
        self.transcript
            .entries
            .extend(messages.into_iter().map(|m| entry_of(&m)));
        self.streaming_entry = false;
        self.live_rate = None;
        self.session_ended = false;
        self.status = Status::Idle;
    }

    /// The text in the input box.
    pub fn input_text(&self) -> String {
        self.input.lines().join("\n")
    }

    /// Replace the input box's text (cursor at the end).
    pub fn set_input(&mut self, text: &str) {
        self.input = new_input();
        self.input.insert_str(text);
    }

    /// Rows the input box takes, borders included (grows with its text, up to 8).
    pub fn input_height(&self) -> u16 {
        let lines = self.input.lines().len().clamp(1, 6) as u16;
        lines + 2
    }

    /// The transcript area's size.
    pub fn transcript_size(&self) -> (u16, u16) {
        let (w, h) = self.size;
        (w, h.saturating_sub(self.input_height() + 1).max(1))
    }

    /// The text of the last bot reply.
    pub fn last_reply(&self) -> Option<&str> {
        self.transcript
            .entries
            .iter()
            .rev()
            .find(|e| matches!(e.kind, EntryKind::Bot { .. } | EntryKind::Greeting))
            .map(|e| e.text.as_str())
    }
}

fn new_input() -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_placeholder_text("Type a message. Enter sends, Alt+Enter adds a line, F1 for help");
    t.set_cursor_line_style(ratatui::style::Style::default());
    t.set_wrap_mode(ratatui_textarea::WrapMode::WordOrGlyph);
    t
}

/// The transcript entry of a stored message.
pub fn entry_of(m: &StoredMessage) -> Entry {
    let kind = match m.role {
        Role::User => EntryKind::User,
        Role::Assistant => EntryKind::Bot {
            interrupted: m.interrupted,
        },
        Role::System => EntryKind::Notice,
    };
    Entry::new(kind, m.text.clone())
}
