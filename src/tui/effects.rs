//! Side effects of commands that touch the terminal or files: terminal modes (raw mode,
//! alternate screen, mouse capture, bracketed paste, keyboard flags) and their restoration,
//! terminal events as messages, the clipboard (OSC 52), `$EDITOR`, and export files.

use super::TuiError;
use super::app::{ExportFormat, Msg};
use crate::bot::Bot;
use crate::chat::SessionId;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    KeyEventKind, KeyboardEnhancementFlags, MouseEventKind, PopKeyboardEnhancementFlags,
    PushKeyboardEnhancementFlags,
};
use ratatui::DefaultTerminal;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Raw mode, alternate screen, mouse capture, bracketed paste; restored on panic too.
pub(super) fn enter() -> Result<DefaultTerminal, TuiError> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    let terminal = ratatui::init();
    HOOK.call_once(|| {
        // ratatui's hook restores raw mode and the screen; this one undoes what we added.
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            undo_modes();
            prev(info);
        }));
    });
    crossterm::execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste)
        .map_err(TuiError::Terminal)?;
    // Terminals with the kitty keyboard protocol report Shift+Enter apart from Enter.
    if crossterm::terminal::supports_keyboard_enhancement().unwrap_or(false) {
        crossterm::execute!(
            std::io::stdout(),
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )
        .map_err(TuiError::Terminal)?;
        KEYBOARD_PUSHED.store(true, Ordering::SeqCst);
    }
    Ok(terminal)
}

/// Whether keyboard enhancement flags were pushed (and must be popped).
static KEYBOARD_PUSHED: AtomicBool = AtomicBool::new(false);

fn undo_modes() {
    let mut out = std::io::stdout();
    if KEYBOARD_PUSHED.swap(false, Ordering::SeqCst) {
        let _ = crossterm::execute!(out, PopKeyboardEnhancementFlags);
    }
    let _ = crossterm::execute!(out, DisableMouseCapture, DisableBracketedPaste);
}

pub(super) fn leave() {
    undo_modes();
    ratatui::restore();
}

/// A terminal event as a message; `None` for events the app ignores.
pub(super) fn to_msg(ev: Event) -> Option<Msg> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => Some(Msg::Key(k)),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => Some(Msg::Mouse(m.kind)),
            _ => None,
        },
        Event::Paste(text) => Some(Msg::Paste(text)),
        Event::Resize(w, h) => Some(Msg::Resize(w, h)),
        _ => None,
    }
}

/// Put `text` on the clipboard with OSC 52 (works over SSH and in tmux with set-clipboard).
pub(super) fn osc52(text: &str) -> std::io::Result<()> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{encoded}\x07")?;
    out.flush()
}

/// Suspend the UI, edit `text` in `$VISUAL`/`$EDITOR` (else `vi`), resume.
pub(super) async fn edit(terminal: &mut DefaultTerminal, text: &str) -> Result<String, String> {
    let file = tempfile::Builder::new()
        .suffix(".md")
        .tempfile()
        .map_err(|e| format!("could not create a file to edit: {e}"))?;
    std::fs::write(file.path(), text).map_err(|e| format!("could not write the edit file: {e}"))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    leave();
    let mut parts = editor.split_whitespace();
    let program = parts.next().unwrap_or("vi").to_string();
    let status = tokio::process::Command::new(&program)
        .args(parts)
        .arg(file.path())
        .status()
        .await;
    *terminal = enter().map_err(|e| e.to_string())?;
    let _ = terminal.clear();
    match status {
        Ok(s) if s.success() => std::fs::read_to_string(file.path())
            .map_err(|e| format!("could not read the edited text: {e}")),
        Ok(s) => Err(format!(
            "the editor \"{program}\" exited with {s}; the message is unchanged"
        )),
        Err(e) => Err(format!(
            "could not start the editor \"{program}\": {e}; set $EDITOR"
        )),
    }
}

/// `/export`: write the session to `path` (default `<session name>.md|.jsonl`).
pub(super) fn export(
    bot: &Bot,
    session: SessionId,
    format: ExportFormat,
    path: Option<PathBuf>,
    name: &str,
) -> Result<Msg, String> {
    let ext = match format {
        ExportFormat::Markdown => "md",
        ExportFormat::Jsonl => "jsonl",
    };
    let path = path.unwrap_or_else(|| {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(format!("{safe}.{ext}"))
    });
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("could not write \"{}\": {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    bot.export_session(session, format, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(Msg::Notice(format!("exported to \"{}\"", path.display())))
}
