//! The thin IO shell around the pure app: one `tokio::select!` loop over terminal events, the
//! running turn's reply stream and a frame timer. It turns events into [`Msg`]s, feeds them to
//! [`update`], carries out the returned [`Command`]s against the [`Bot`], and draws at most
//! about 30 frames per second, only when something changed. The UI never waits on the engine.

use super::TuiError;
use super::app::{App, AppInit, Command, ExportFormat, Msg};
use super::update::update;
use crate::bot::{Bot, Reply, ReplyEvent, TurnOptions};
use crate::chat::{Role, SessionId};
use crate::persona::{MacroContext, Persona};
use crate::store::SessionInfo;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream, KeyEventKind, MouseEventKind,
};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Shortest time between two frames (about 30 per second).
const FRAME: Duration = Duration::from_millis(33);
/// `kv` key of the session shown last.
pub const LAST_SESSION_KEY: &str = "tui.last_session";
/// `kv` key of the input history.
pub const INPUT_HISTORY_KEY: &str = "tui.input_history";
/// How long quitting waits for a cancelled turn to store its partial reply.
const SETTLE: Duration = Duration::from_secs(3);

/// What `parlor chat` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    /// Open (or create) this session instead of the last one.
    pub session: Option<String>,
    /// Where persona files live, for the persona picker.
    pub personas_dir: Option<PathBuf>,
}

/// Run the full-screen chat until the user quits. The terminal is restored on return and on
/// panic; the store is flushed before returning.
pub async fn run(bot: Bot, opts: ChatOptions) -> Result<(), TuiError> {
    let session = start_session(&bot, &opts)?;
    let history: Vec<String> = bot
        .store()
        .kv_get(INPUT_HISTORY_KEY)
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut terminal = enter()?;
    let size = terminal.size().map_err(TuiError::Terminal)?;
    let persona = bot.persona();
    let mut app = App::new(AppInit {
        persona: persona.name().to_string(),
        model: bot.engine().model_name(),
        context_window: persona
            .context_window()
            .unwrap_or_else(|| bot.engine().context_window())
            .min(bot.engine().context_window()),
        size: (size.width, size.height),
        history,
    });
    let mut shell = Shell {
        bot,
        opts,
        reply: None,
        cancelled: None,
    };
    let opened = shell.open(session.id);
    let result = match opened {
        Ok(msg) => {
            update(&mut app, msg);
            shell.event_loop(&mut terminal, &mut app).await
        }
        Err(e) => Err(e),
    };
    leave();
    let settled = shell.settle().await;
    result.and(settled)
}

fn start_session(bot: &Bot, opts: &ChatOptions) -> Result<SessionInfo, TuiError> {
    if let Some(name) = &opts.session {
        return Ok(bot.open_session(name)?);
    }
    let store = bot.store();
    if let Some(id) = store.kv_get::<u64>(LAST_SESSION_KEY)?
        && let Some(s) = store.session(SessionId(id))?
    {
        return Ok(s);
    }
    Ok(bot.new_session(None)?)
}

/// Raw mode, alternate screen, mouse capture, bracketed paste; restored on panic too.
fn enter() -> Result<DefaultTerminal, TuiError> {
    let terminal = ratatui::init();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        prev(info);
    }));
    crossterm::execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste)
        .map_err(TuiError::Terminal)?;
    Ok(terminal)
}

fn leave() {
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
}

struct Shell {
    bot: Bot,
    opts: ChatOptions,
    /// The running turn; dropping it cancels the turn.
    reply: Option<Reply>,
    /// A turn cancelled in this session whose partial reply may not be stored yet.
    cancelled: Option<SessionId>,
}

/// The next event of the running turn, or never when there is none.
async fn next_reply(reply: &mut Option<Reply>) -> Option<ReplyEvent> {
    match reply {
        Some(r) => r.next().await,
        None => std::future::pending().await,
    }
}

impl Shell {
    async fn event_loop(
        &mut self,
        terminal: &mut DefaultTerminal,
        app: &mut App,
    ) -> Result<(), TuiError> {
        let mut events = EventStream::new();
        let mut dirty = true;
        let mut next_frame = Instant::now();
        loop {
            if dirty && Instant::now() >= next_frame {
                terminal
                    .draw(|f| f.render_widget(&*app, f.area()))
                    .map_err(TuiError::Terminal)?;
                dirty = false;
                next_frame = Instant::now() + FRAME;
            }
            let msg = tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(ev)) => match to_msg(ev) {
                        Some(m) => m,
                        None => continue,
                    },
                    // The terminal went away: leave as if Ctrl+C was pressed.
                    Some(Err(_)) | None => {
                        self.run(Command::CancelTurn, terminal, app).await?;
                        return Ok(());
                    }
                },
                ev = next_reply(&mut self.reply) => match ev {
                    Some(ev) => {
                        if matches!(ev, ReplyEvent::Done(_) | ReplyEvent::Failed(_)) {
                            self.reply = None;
                        }
                        Msg::Reply(ev)
                    }
                    None => {
                        self.reply = None;
                        if app.status.busy() {
                            Msg::Reply(ReplyEvent::Failed("the reply stopped unexpectedly".into()))
                        } else {
                            continue;
                        }
                    }
                },
                _ = tokio::time::sleep_until(next_frame), if dirty => continue,
            };
            dirty = true;
            let mut queue = update(app, msg);
            while !queue.is_empty() {
                let cmd = queue.remove(0);
                if cmd == Command::Quit {
                    return Ok(());
                }
                if let Some(msg) = self.run(cmd, terminal, app).await? {
                    queue.extend(update(app, msg));
                }
            }
        }
    }

    /// Carry out one command; its result comes back as a message.
    async fn run(
        &mut self,
        cmd: Command,
        terminal: &mut DefaultTerminal,
        app: &App,
    ) -> Result<Option<Msg>, TuiError> {
        let store = self.bot.store().clone();
        let result: Result<Option<Msg>, String> = match cmd {
            Command::StartTurn { session, text } => {
                self.reply = Some(self.bot.turn(session, &text));
                Ok(None)
            }
            Command::Regenerate { session } => {
                self.reply = Some(self.bot.regenerate(session, TurnOptions::default()));
                Ok(None)
            }
            Command::CancelTurn => {
                if self.reply.take().is_some() {
                    self.cancelled = Some(app.session.id);
                }
                Ok(None)
            }
            Command::NewSession { name } => self
                .bot
                .new_session(name.as_deref())
                .map_err(|e| e.to_string())
                .and_then(|s| self.open(s.id).map_err(|e| e.to_string()))
                .map(Some),
            Command::OpenSession(id) => self.open(id).map(Some).map_err(|e| e.to_string()),
            Command::ResetSession(id) => store
                .truncate_messages(id, 0)
                .and_then(|_| store.flush())
                .map_err(|e| e.to_string())
                .and_then(|_| self.open(id).map_err(|e| e.to_string()))
                .map(Some),
            Command::ListSessions => store
                .sessions()
                .map(|s| Some(Msg::SessionsListed(s)))
                .map_err(|e| e.to_string()),
            Command::RenameSession { id, name } => {
                match store.rename_session(id, &name).and_then(|_| store.flush()) {
                    Ok(()) if id == app.session.id => {
                        self.open(id).map(Some).map_err(|e| e.to_string())
                    }
                    Ok(()) => store
                        .sessions()
                        .map(|s| Some(Msg::SessionsListed(s)))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Command::DeleteSession(id) => self.delete(id, app.session.id),
            Command::ListPersonas => Ok(Some(Msg::PersonasListed(self.persona_ids()))),
            Command::SwitchPersona(name) => self.switch_persona(&name),
            Command::Export {
                session,
                format,
                path,
            } => export(&self.bot, session, format, path, &app.session.name).map(Some),
            Command::OpenEditor(text) => edit(terminal, &text)
                .await
                .map(|t| Some(Msg::EditorClosed(t))),
            Command::Copy(text) => osc52(&text).map(|_| None).map_err(|e| e.to_string()),
            Command::SetMouseCapture(on) => {
                let r = if on {
                    crossterm::execute!(std::io::stdout(), EnableMouseCapture)
                } else {
                    crossterm::execute!(std::io::stdout(), DisableMouseCapture)
                };
                r.map(|_| None).map_err(|e| e.to_string())
            }
            Command::SaveInputHistory(h) => store
                .kv_put(INPUT_HISTORY_KEY, &h)
                .map(|_| None)
                .map_err(|e| e.to_string()),
            Command::Quit => Ok(None),
        };
        Ok(Some(match result {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => Msg::CommandFailed(e),
        }))
    }

    /// Load session `id` for display and remember it as the last one.
    fn open(&self, id: SessionId) -> Result<Msg, TuiError> {
        let store = self.bot.store();
        let session = store
            .session(id)?
            .ok_or_else(|| crate::store::StoreError::NoSession(id.to_string()))?;
        let messages = store.messages(id)?;
        store.kv_put(LAST_SESSION_KEY, &id.0)?;
        let persona = self.bot.persona();
        let greeting = persona.greeting(&MacroContext {
            user: "user".into(),
            ..Default::default()
        });
        Ok(Msg::SessionOpened {
            session,
            messages,
            greeting,
            persona_name: persona.name().to_string(),
        })
    }

    fn delete(&self, id: SessionId, current: SessionId) -> Result<Option<Msg>, String> {
        let store = self.bot.store();
        store
            .delete_session(id)
            .and_then(|_| store.flush())
            .map_err(|e| e.to_string())?;
        if id == current {
            // The shown session is gone: show the most recent other one, or a new one.
            let next = match store.sessions().map_err(|e| e.to_string())?.first() {
                Some(s) => s.id,
                None => self.bot.new_session(None).map_err(|e| e.to_string())?.id,
            };
            return self.open(next).map(Some).map_err(|e| e.to_string());
        }
        store
            .sessions()
            .map(|s| Some(Msg::SessionsListed(s)))
            .map_err(|e| e.to_string())
    }

    fn persona_ids(&self) -> Vec<String> {
        let Some(dir) = &self.opts.personas_dir else {
            return Vec::new();
        };
        let mut ids: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let ext = p.extension()?.to_str()?;
                matches!(ext, "yaml" | "yml").then(|| p.file_stem()?.to_str().map(String::from))?
            })
            .collect();
        ids.sort();
        ids
    }

    fn switch_persona(&self, name: &str) -> Result<Option<Msg>, String> {
        let Some(dir) = &self.opts.personas_dir else {
            return Err("no personas directory is known; start with --home".into());
        };
        let path = ["yaml", "yml"]
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .find(|p| p.exists())
            .ok_or_else(|| {
                format!(
                    "no persona \"{name}\" in \"{}\"; Ctrl+P lists the personas",
                    dir.display()
                )
            })?;
        let persona = Persona::load(&path).map_err(|e| e.to_string())?;
        self.bot.set_persona(persona);
        let session = self.bot.new_session(None).map_err(|e| e.to_string())?;
        self.open(session.id).map(Some).map_err(|e| e.to_string())
    }

    /// After the loop: let a cancelled turn store its partial reply, then flush.
    async fn settle(&mut self) -> Result<(), TuiError> {
        self.reply = None;
        if let Some(session) = self.cancelled.take() {
            let store = self.bot.store();
            let deadline = Instant::now() + SETTLE;
            // The turn task stores the interrupted reply once it notices the dropped stream.
            while Instant::now() < deadline {
                let last = store.recent_messages(session, 1)?;
                if last.last().is_none_or(|m| m.role != Role::User) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.bot.store().flush()?;
        Ok(())
    }
}

/// A terminal event as a message; `None` for events the app ignores.
fn to_msg(ev: Event) -> Option<Msg> {
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
fn osc52(text: &str) -> std::io::Result<()> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{encoded}\x07")?;
    out.flush()
}

/// Suspend the UI, edit `text` in `$VISUAL`/`$EDITOR` (else `vi`), resume.
async fn edit(terminal: &mut DefaultTerminal, text: &str) -> Result<String, String> {
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
fn export(
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
    let store = bot.store();
    let written = match format {
        ExportFormat::Markdown => store.export_markdown(session, &mut out),
        ExportFormat::Jsonl => store.export_jsonl(session, &mut out),
    };
    written.map_err(|e| e.to_string())?;
    Ok(Msg::Notice(format!("exported to \"{}\"", path.display())))
}
