//! Key bindings: which key does what in the chat, and the table the help overlay shows (one
//! list, so help and behaviour cannot drift apart).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key means in the chat view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the input (or run a slash command).
    Send,
    /// Add a line break to the input.
    Newline,
    /// Stop the running reply; close notices.
    Stop,
    /// Leave the app.
    Quit,
    /// Show the help overlay.
    Help,
    /// Scroll the transcript up a page.
    PageUp,
    /// Scroll the transcript down a page.
    PageDown,
    /// Jump to the first message.
    Top,
    /// Jump to the end and follow new text.
    Bottom,
    /// Recall the previous input.
    HistoryPrev,
    /// Recall the next input.
    HistoryNext,
    /// Edit the input in `$EDITOR`.
    Editor,
    /// Start a new session.
    NewSession,
    /// Show the session list.
    Sessions,
    /// Show the persona picker.
    Personas,
    /// Copy the last reply to the clipboard.
    CopyLast,
    /// Toggle copy mode (mouse capture off, so the terminal selects text).
    CopyMode,
    /// Give the key to the input editor.
    Edit,
    /// Nothing (key releases).
    Ignore,
}

/// Every binding, for the help overlay.
pub const HELP: &[(&str, &str)] = &[
    ("Enter", "send the message"),
    ("Alt+Enter, Shift+Enter, Ctrl+J", "new line in the message"),
    ("Up / Down (empty box)", "recall earlier messages"),
    ("Ctrl+E", "edit the message in $EDITOR"),
    ("Esc", "stop the reply (the partial text stays)"),
    ("PgUp / PgDn, mouse wheel", "scroll"),
    (
        "Home / End (empty box), Ctrl+Home / Ctrl+End",
        "first message / follow the end",
    ),
    ("Ctrl+N", "new session"),
    ("Ctrl+O or F2", "sessions: open, rename (r), delete (d)"),
    ("Ctrl+P", "pick a persona (starts a new session)"),
    ("Ctrl+Y", "copy the last reply (OSC 52)"),
    ("F3", "copy mode: mouse selects text; F3 again to scroll"),
    ("? (empty box) or F1", "this help"),
    ("Ctrl+C", "quit"),
    (
        "/new [NAME]  /reset  /retry",
        "new session, clear this one, answer again",
    ),
    (
        "/persona NAME  /rename NAME",
        "switch persona, rename the session",
    ),
    (
        "/export md|jsonl [PATH]  /help",
        "export the session, show help",
    ),
];

/// The action of `key` in the chat view; `input_empty` tells whether the input box is empty.
pub fn action(key: KeyEvent, input_empty: bool) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::Ignore;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Enter if alt || shift || ctrl => Action::Newline,
        KeyCode::Char('j') if ctrl => Action::Newline,
        KeyCode::Enter => Action::Send,
        KeyCode::Esc => Action::Stop,
        KeyCode::F(1) => Action::Help,
        KeyCode::Char('?') if input_empty && !ctrl && !alt => Action::Help,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home if ctrl || input_empty => Action::Top,
        KeyCode::End if ctrl || input_empty => Action::Bottom,
        KeyCode::Up if input_empty => Action::HistoryPrev,
        KeyCode::Down if input_empty => Action::HistoryNext,
        KeyCode::Char('e') if ctrl => Action::Editor,
        KeyCode::Char('n') if ctrl => Action::NewSession,
        KeyCode::Char('o') if ctrl => Action::Sessions,
        KeyCode::F(2) => Action::Sessions,
        KeyCode::Char('p') if ctrl => Action::Personas,
        KeyCode::Char('y') if ctrl => Action::CopyLast,
        KeyCode::F(3) => Action::CopyMode,
        _ => Action::Edit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn enter_sends_and_modified_enter_adds_a_line() {
        assert_eq!(
            action(key(KeyCode::Enter, KeyModifiers::NONE), false),
            Action::Send
        );
        for m in [KeyModifiers::ALT, KeyModifiers::SHIFT] {
            assert_eq!(action(key(KeyCode::Enter, m), false), Action::Newline);
        }
        assert_eq!(
            action(key(KeyCode::Char('j'), KeyModifiers::CONTROL), false),
            Action::Newline
        );
    }

    #[test]
    fn question_mark_is_help_only_in_an_empty_box() {
        let q = key(KeyCode::Char('?'), KeyModifiers::NONE);
        assert_eq!(action(q, true), Action::Help);
        assert_eq!(action(q, false), Action::Edit);
    }

    #[test]
    fn up_recalls_history_only_in_an_empty_box() {
        let up = key(KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(action(up, true), Action::HistoryPrev);
        assert_eq!(action(up, false), Action::Edit);
    }
}
