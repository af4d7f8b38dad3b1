//! The thin IO shell around the pure app: one `tokio::select!` loop over terminal events, the
//! running turn's reply stream and a frame timer. It turns events into [`Msg`]s, feeds them to
//! [`update`], carries out the returned [`Command`]s against the [`Bot`], and draws at most
//! about 30 frames per second, only when something changed. The UI never waits on the engine.

use super::TuiError;
use super::app::{App, AppInit, Command, ModelInfo, ModelState, Msg};
use super::effects::{edit, enter, export, leave, osc52, to_msg};
use super::update::update;
use crate::bot::{Bot, FrontState, Reply, ReplyEvent, SessionInfo, Settled, StateKey, TurnOptions};
use crate::chat::SessionId;
use crate::engine::Engine;
use crate::home::Home;
use crate::persona::MacroContext;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Shortest time between two frames (about 30 per second).
const FRAME: Duration = Duration::from_millis(33);
/// The space of the TUI's keys in the bot's front-end state.
pub const STATE_SPACE: &str = "tui.";

/// Key of the session shown last (`tui.last_session`).
pub fn last_session_key(state: &FrontState) -> StateKey<u64> {
    state.key("last_session")
}

/// Key of the input history (`tui.input_history`).
pub fn input_history_key(state: &FrontState) -> StateKey<Vec<String>> {
    state.key("input_history")
}
/// How long quitting waits for a cancelled turn to store its partial reply.
const SETTLE: Duration = Duration::from_secs(3);
/// How often the live tokens-per-second figure is refreshed while a reply streams.
const RATE_EVERY: Duration = Duration::from_millis(500);

/// Loads the model; called when the app opens and again on `/retry`. The error is for users.
pub type EngineLoader = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Engine>, String>> + Send>> + Send + Sync,
>;

/// What `parlor chat` was asked for.
#[derive(Default)]
pub struct ChatOptions {
    /// Open (or create) this session instead of the last one.
    pub session: Option<String>,
    /// The home whose personas (files in `personas/`, else the built-ins) the picker lists and
    /// sessions switch to.
    pub home: Option<Home>,
    /// Load the model after the app opens (the bot's engine is a stand-in until then); `None`
    /// when the bot's engine is ready.
    pub loader: Option<EngineLoader>,
    /// Hot reload outcomes of the persona file: the new display name, or the problems.
    pub reloads: Option<mpsc::UnboundedReceiver<Result<String, String>>>,
}

/// Run the full-screen chat until the user quits. The terminal is restored on return and on
/// panic; the store is flushed before returning.
pub async fn run(bot: Bot, mut opts: ChatOptions) -> Result<(), TuiError> {
    let session = start_session(&bot, &opts)?;
    let reloads = opts.reloads.take();
    let state = bot.front_state(STATE_SPACE);
    let history: Vec<String> = state
        .get(&input_history_key(&state))
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut terminal = enter()?;
    let size = terminal.size().map_err(TuiError::Terminal)?;
    let persona = bot.session_persona(session.id);
    let info = model_info(&bot);
    let mut app = App::new(AppInit {
        persona: persona.name().to_string(),
        model: info.model,
        context_window: info.context_window,
        size: (size.width, size.height),
        history,
        model_state: if opts.loader.is_some() {
            ModelState::Loading
        } else {
            ModelState::Ready
        },
    });
    let mut shell = Shell {
        bot,
        opts,
        reply: None,
        cancelled: None,
        state,
        loading: None,
        reloads,
        rate: None,
        erased_inputs: std::collections::HashSet::default(),
    };
    shell.load_model();
    let opened = shell.open(session.id);
    let result = match opened {
        Ok(msg) => {
            update(&mut app, msg);
            // Semantic FAQ search off (no embedding model): say so where the user looks.
            if let Some(n) = shell.bot.retrieval_notice() {
                app.notice = Some(n);
            }
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
    let state = bot.front_state(STATE_SPACE);
    // Resume the last session, unless it belongs to another persona than the one asked for
    // (`parlor chat --persona pirate` should not continue the assistant's conversation).
    if let Some(id) = state.get(&last_session_key(&state))?
        && let Some(s) = bot.session(SessionId(id))?
        && s.persona == bot.persona().id()
    {
        return Ok(s);
    }
    Ok(bot.new_session(None)?)
}

/// The model's name and the context window of the persona speaking, on the bot's engine.
fn model_info(bot: &Bot) -> ModelInfo {
    let engine = bot.engine();
    ModelInfo {
        model: engine.model_name(),
        context_window: bot
            .persona()
            .context_window()
            .unwrap_or_else(|| engine.context_window())
            .min(engine.context_window()),
    }
}

struct Shell {
    bot: Bot,
    opts: ChatOptions,
    /// The running turn; dropping it cancels the turn.
    reply: Option<Reply>,
    /// A cancelled turn; resolves once its partial reply is stored.
    cancelled: Option<Settled>,
    /// The TUI's own saved state (last session, input history).
    state: FrontState,
    /// The model being loaded.
    loading: Option<JoinHandle<Result<Arc<dyn Engine>, String>>>,
    /// Hot reload outcomes of the persona file.
    reloads: Option<mpsc::UnboundedReceiver<Result<String, String>>>,
    /// Live rate of the streaming reply: first token, tokens since, last figure shown.
    rate: Option<(Instant, u32, Instant)>,
    /// Lines typed in sessions deleted in this run: never saved to the input history again.
    erased_inputs: std::collections::HashSet<String>,
}

/// The next event of the running turn, or never when there is none.
async fn next_reply(reply: &mut Option<Reply>) -> Option<ReplyEvent> {
    match reply {
        Some(r) => r.next().await,
        None => std::future::pending().await,
    }
}

/// The loaded model (or why it failed), or never when nothing is loading.
async fn next_model(
    loading: &mut Option<JoinHandle<Result<Arc<dyn Engine>, String>>>,
) -> Result<Arc<dyn Engine>, String> {
    match loading {
        Some(task) => match task.await {
            Ok(r) => r,
            Err(e) => Err(format!("loading the model failed: {e}")),
        },
        None => std::future::pending().await,
    }
}

/// The next hot reload outcome, or never.
async fn next_reload(
    reloads: &mut Option<mpsc::UnboundedReceiver<Result<String, String>>>,
) -> Result<String, String> {
    match reloads {
        Some(rx) => match rx.recv().await {
            Some(r) => r,
            None => {
                *reloads = None;
                std::future::pending().await
            }
        },
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
                            self.rate = None;
                        }
                        if let Some(rate) = self.live_rate(&ev) {
                            update(app, Msg::LiveRate(rate));
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
                loaded = next_model(&mut self.loading) => {
                    self.loading = None;
                    Msg::ModelLoaded(loaded.map(|engine| {
                        self.bot.set_engine(engine);
                        tracing::info!("model loaded");
                        model_info(&self.bot)
                    }))
                }
                reload = next_reload(&mut self.reloads) => Msg::PersonaReloaded(reload),
                _ = tokio::time::sleep_until(next_frame), if dirty => continue,
            };
            dirty = true;
            let mut queue = update(app, msg);
            while !queue.is_empty() {
                let cmd = queue.remove(0);
                if cmd == Command::Quit {
                    return Ok(());
                }
                if matches!(cmd, Command::OpenEditor(_)) {
                    // The old stream's reader thread would steal the editor's keystrokes.
                    events = EventStream::new();
                }
                let deleting = matches!(cmd, Command::DeleteSession(_));
                if let Some(msg) = self.run(cmd, terminal, app).await? {
                    queue.extend(update(app, msg));
                }
                if deleting {
                    // Lines typed in an erased session leave Up's recall too, not only the
                    // saved input history.
                    app.history.retain(|l| !self.erased_inputs.contains(l));
                    app.history_pos = None;
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
        let bot = self.bot.clone();
        let result: Result<Option<Msg>, String> = match cmd {
            Command::StartTurn { session, text } => {
                self.reply = Some(self.bot.turn(session, &text));
                self.rate = None;
                Ok(None)
            }
            Command::LoadModel => {
                self.load_model();
                Ok(None)
            }
            Command::Regenerate { session } => {
                self.reply = Some(self.bot.regenerate(session, TurnOptions::default()));
                self.rate = None;
                Ok(None)
            }
            Command::CancelTurn => {
                if let Some(reply) = self.reply.take() {
                    self.cancelled = Some(reply.cancel());
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
            Command::ResetSession(id) => bot
                .clear_session(id)
                .map_err(|e| e.to_string())
                .and_then(|_| self.open(id).map_err(|e| e.to_string()))
                .map(Some),
            Command::ListSessions => bot
                .sessions()
                .map(|s| Some(Msg::SessionsListed(s)))
                .map_err(|e| e.to_string()),
            Command::RenameSession { id, name } => match bot.rename_session(id, &name) {
                Ok(()) if id == app.session.id => {
                    self.open(id).map(Some).map_err(|e| e.to_string())
                }
                Ok(()) => bot
                    .sessions()
                    .map(|s| Some(Msg::SessionsListed(s)))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
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
            Command::SaveInputHistory(mut h) => {
                h.retain(|line| !self.erased_inputs.contains(line));
                self.state
                    .put(&input_history_key(&self.state), &h)
                    .map(|_| None)
                    .map_err(|e| e.to_string())
            }
            Command::Quit => Ok(None),
        };
        Ok(Some(match result {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => Msg::CommandFailed(e),
        }))
    }

    /// Start loading the model when there is a loader.
    fn load_model(&mut self) {
        if let Some(loader) = &self.opts.loader {
            self.loading = Some(tokio::spawn(loader()));
        }
    }

    /// The live tokens per second after reply event `ev`, when it is time to show it again.
    fn live_rate(&mut self, ev: &ReplyEvent) -> Option<f64> {
        if !matches!(ev, ReplyEvent::Token(_)) {
            return None;
        }
        let now = Instant::now();
        let (first, tokens, shown) = self.rate.get_or_insert((now, 0, now));
        *tokens += 1;
        let elapsed = now.duration_since(*first);
        if now.duration_since(*shown) < RATE_EVERY || elapsed.is_zero() {
            return None;
        }
        *shown = now;
        // Tokens after the first, over the time since the first: the generation rate.
        Some(f64::from(*tokens - 1) / elapsed.as_secs_f64())
    }

    /// Load session `id` for display and remember it as the last one.
    fn open(&self, id: SessionId) -> Result<Msg, TuiError> {
        let session = self
            .bot
            .session(id)?
            .ok_or_else(|| TuiError::NoSession(id.to_string()))?;
        let messages = self.bot.transcript(id)?;
        self.state.put(&last_session_key(&self.state), &id.0)?;
        self.adopt_persona(&session.persona);
        let persona = self.bot.session_persona(id);
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

    /// A session speaks with the persona it was started with: switch to it when its file is
    /// found (otherwise the current persona carries on, and the log says why).
    fn adopt_persona(&self, id: &str) {
        if self.bot.persona().id() == id {
            return;
        }
        let Some(home) = &self.opts.home else {
            return;
        };
        let found = home.persona_source(id);
        match found.map(|source| crate::persona::library::load(&source)) {
            Some(Ok(p)) => self.bot.set_persona(p),
            Some(Err(e)) => tracing::warn!(persona = id, error = %e, "keeping the current persona"),
            None => tracing::warn!(
                persona = id,
                "persona not found in the home or the built-ins; keeping the current one"
            ),
        }
    }

    /// Erase session `id` everywhere ([`Bot::forget_sessions`]), and the lines typed in it
    /// from the saved input history (under a new key, so its older copies cannot be read).
    fn delete(&mut self, id: SessionId, current: SessionId) -> Result<Option<Msg>, String> {
        let bot = self.bot.clone();
        let bot = &bot;
        let typed: Vec<String> = bot
            .transcript(id)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|m| m.role == crate::chat::Role::User)
            .map(|m| m.text)
            .collect();
        let key = input_history_key(&self.state);
        let kept: Vec<String> = self
            .state
            .get(&key)
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter(|line| !typed.contains(line))
            .collect();
        bot.forget_sessions(&[id], &["tui".to_string()])
            .map_err(|e| e.to_string())?;
        self.state
            .put(&key, &kept)
            .and_then(|_| self.state.flush())
            .map_err(|e| e.to_string())?;
        self.erased_inputs.extend(typed);
        if id == current {
            // The shown session is gone: show the most recent other one, or a new one.
            let next = match bot.sessions().map_err(|e| e.to_string())?.first() {
                Some(s) => s.id,
                None => self.bot.new_session(None).map_err(|e| e.to_string())?.id,
            };
            return self.open(next).map(Some).map_err(|e| e.to_string());
        }
        bot.sessions()
            .map(|s| Some(Msg::SessionsListed(s)))
            .map_err(|e| e.to_string())
    }

    fn persona_ids(&self) -> Vec<String> {
        self.opts
            .home
            .as_ref()
            .map(Home::persona_names)
            .unwrap_or_default()
    }

    fn switch_persona(&self, name: &str) -> Result<Option<Msg>, String> {
        let Some(home) = &self.opts.home else {
            return Err("no home directory is known; start with --home".into());
        };
        let source = home.persona_source(name).ok_or_else(|| {
            let (message, hint) = home.persona_not_found(name);
            format!("{message}; {hint} (Ctrl+P lists the personas)")
        })?;
        let persona = crate::persona::library::load(&source).map_err(|e| e.to_string())?;
        self.bot.set_persona(persona);
        let session = self.bot.new_session(None).map_err(|e| e.to_string())?;
        self.open(session.id).map(Some).map_err(|e| e.to_string())
    }

    /// After the loop: let a cancelled (or still running) turn store its partial reply, then
    /// flush. The turn task stores the interrupted reply once it notices the cancellation;
    /// [`Settled`] resolves when it has.
    async fn settle(&mut self) -> Result<(), TuiError> {
        let running = self.reply.take().map(Reply::cancel);
        for settled in [self.cancelled.take(), running].into_iter().flatten() {
            if tokio::time::timeout(SETTLE, settled).await.is_err() {
                tracing::warn!("a cancelled turn did not store its partial reply in time");
            }
        }
        self.bot.flush()?;
        Ok(())
    }
}
