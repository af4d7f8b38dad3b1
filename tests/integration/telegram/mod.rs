//! The Telegram front end against the fake Bot API server (`parlor::testkit::fake_telegram`) on
//! 127.0.0.1: every scenario drives real HTTP long polling and asserts on the recorded calls.

mod bench;
mod cli;
mod failures;
mod handoff;
mod interactive;
mod operator;
mod ops;
mod outage;
mod real;
mod reliability;
mod scenarios;
mod storm;

use parlor::bot::Bot;
use parlor::chat::ChatMessage;
use parlor::engine::{
    EVENT_BUFFER, Engine, EngineError, EngineEvent, EventStream, GenerateRequest, GenerationStats,
    ScriptedEngine,
};
use parlor::persona::Persona;
use parlor::store::Store;
use parlor::telegram::{Service, TelegramConfig, Token};
use parlor::testkit::fake_telegram::{Call, FakeBotApi};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The token tests use; it must never show up in logs.
pub const TOKEN: &str = "123456:TEST-SECRET-tok3n-do-not-log";

/// How long a test waits for an expected call before it fails (not a synchronisation sleep).
pub const WAIT: Duration = Duration::from_secs(30);

/// Short pacing so tests run fast; the waits are still asserted on recorded timestamps.
pub fn test_config() -> TelegramConfig {
    let mut c = TelegramConfig::default();
    c.pacing.global_per_second = 1000.0;
    c.pacing.private_interval_ms = 40;
    c.pacing.group_interval_ms = 80;
    c.pacing.typing_interval_ms = 200;
    c.pacing.retry_base_ms = 20;
    c.burst_window_ms = 30;
    c.poll_timeout_secs = 1;
    c.shutdown_grace_ms = 300;
    c
}

/// The Acme support persona from this repository.
pub fn persona() -> Persona {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    Persona::parse(&path, &acme_without_scripting()).expect("acme persona loads")
}

/// The shipped Acme persona without its `faq:` and `rules:` sections: these tests are about
/// Telegram delivery, so every message must reach the engine (scripting has its own tests).
pub fn acme_without_scripting() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    let text = std::fs::read_to_string(&path).expect("persona file");
    let cut = text.find("\nfaq:").expect("acme-support has a faq section");
    assert!(text[cut..].contains("\nrules:"), "rules come after the faq");
    text[..=cut].to_string()
}

/// The Acme persona with another reply cap (scripted engines count one token per word).
pub fn persona_with_max_tokens(max: u32) -> Persona {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    let text = acme_without_scripting();
    assert!(text.contains("max_tokens: 200"));
    let text = text.replace("max_tokens: 200", &format!("max_tokens: {max}"));
    Persona::parse(&path, &text).expect("persona parses")
}

/// The Acme persona (without its own scripting) with these `rules:` entries (YAML list items,
/// indented by two spaces).
pub fn persona_with_rules(rules: &str) -> Persona {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    let text = acme_without_scripting() + "\nrules:\n" + rules;
    Persona::parse(&path, &text).expect("persona with rules")
}

/// What [`Hooked`] does in `generate`.
type GenerateHook = Box<dyn Fn(&ScriptedEngine, GenerateRequest) -> EventStream + Send + Sync>;

/// The echoing scripted engine with hooks, for tests that inject a failure or an event, or
/// look at the prompts.
pub struct Hooked {
    inner: ScriptedEngine,
    generate: GenerateHook,
    before_model_name: Box<dyn Fn() + Send + Sync>,
}

impl Hooked {
    /// `inner` without hooks.
    pub fn new(inner: ScriptedEngine) -> Self {
        Self {
            inner,
            generate: Box::new(|e, req| e.generate(req)),
            before_model_name: Box::new(|| {}),
        }
    }

    /// Generate through `f` (given the inner engine).
    pub fn on_generate(
        mut self,
        f: impl Fn(&ScriptedEngine, GenerateRequest) -> EventStream + Send + Sync + 'static,
    ) -> Self {
        self.generate = Box::new(f);
        self
    }

    /// Call `f` whenever the model name is asked for (the store asks when opening a session).
    pub fn on_model_name(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.before_model_name = Box::new(f);
        self
    }
}

impl Engine for Hooked {
    fn generate(&self, req: GenerateRequest) -> EventStream {
        (self.generate)(&self.inner, req)
    }
    fn count_tokens(&self, m: &[ChatMessage]) -> Result<u32, EngineError> {
        self.inner.count_tokens(m)
    }
    fn context_window(&self) -> u32 {
        self.inner.context_window()
    }
    fn model_name(&self) -> String {
        (self.before_model_name)();
        self.inner.model_name()
    }
}

/// An engine whose replies the test writes, piece by piece: each request waits until the test
/// takes it ([`Relay::next_turn`]) and streams exactly what the test sends, so a test decides
/// what the front end has seen at each point instead of racing scripted delays.
pub struct Relay {
    turns: mpsc::UnboundedSender<Turn>,
    waiting: tokio::sync::Mutex<mpsc::UnboundedReceiver<Turn>>,
}

/// One request to a [`Relay`]: the stream the test writes.
pub struct Turn {
    tx: mpsc::Sender<EngineEvent>,
}

impl Relay {
    /// A relay with no turns yet.
    pub fn new() -> Arc<Self> {
        let (turns, waiting) = mpsc::unbounded_channel();
        Arc::new(Self {
            turns,
            waiting: tokio::sync::Mutex::new(waiting),
        })
    }

    /// The next request the bot made (waits up to [`WAIT`]).
    pub async fn next_turn(&self) -> Turn {
        let mut rx = self.waiting.lock().await;
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("timed out waiting for the bot to ask the engine")
            .expect("relay open")
    }
}

impl Turn {
    /// Stream `text` as one token.
    pub async fn token(&self, text: &str) {
        self.tx
            .send(EngineEvent::Token(text.into()))
            .await
            .expect("the turn is still being read");
    }

    /// End the reply normally.
    pub async fn done(self) {
        let _ = self
            .tx
            .send(EngineEvent::Done(GenerationStats::default()))
            .await;
    }

    /// Wait (up to [`WAIT`]) until the reader dropped the stream: the turn was cancelled.
    pub async fn cancelled(&self) {
        tokio::time::timeout(WAIT, self.tx.closed())
            .await
            .expect("timed out waiting for the turn to be cancelled");
    }
}

impl Engine for Relay {
    fn generate(&self, req: GenerateRequest) -> EventStream {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        drop(req);
        let _ = self.turns.send(Turn { tx });
        rx
    }
    fn count_tokens(&self, m: &[ChatMessage]) -> Result<u32, EngineError> {
        Ok(m.iter()
            .map(|m| m.content.len() as u32 / 4 + 4)
            .sum::<u32>()
            + 3)
    }
    fn context_window(&self) -> u32 {
        4096
    }
    fn model_name(&self) -> String {
        "relay".into()
    }
}

/// A bot over `engine` with a fresh on-disk store.
pub fn bot(engine: Arc<dyn Engine>) -> (TempDir, Bot) {
    let (dir, bot, _) = bot_with_store(engine);
    (dir, bot)
}

/// [`bot`], and its store for the test to look into.
pub fn bot_with_store(engine: Arc<dyn Engine>) -> (TempDir, Bot, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store opens");
    (dir, Bot::new(persona(), engine, store.clone()), store)
}

/// A running service against a fake server.
pub struct Harness {
    /// The fake Bot API.
    pub fake: Arc<FakeBotApi>,
    /// The service.
    pub svc: Service,
    stop: CancellationToken,
    run: tokio::task::JoinHandle<Result<(), parlor::telegram::TelegramError>>,
}

impl Harness {
    /// Start `bot` with `cfg` against a new fake server.
    pub async fn start(bot: Bot, cfg: TelegramConfig) -> Self {
        let fake = Arc::new(FakeBotApi::start(TOKEN).await.expect("fake server"));
        Self::start_on(fake, bot, cfg).await
    }

    /// Start `bot` against an existing fake server (a restart). Ready once it polls, or in
    /// webhook mode once the webhook is registered (its listener is bound before that).
    pub async fn start_on(fake: Arc<FakeBotApi>, bot: Bot, cfg: TelegramConfig) -> Self {
        if std::env::var_os("PARLOR_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("parlor=debug")
                .with_test_writer()
                .try_init();
        }
        let ready = if cfg.webhook.is_some() {
            "setwebhook"
        } else {
            "getupdates"
        };
        let svc = Service::new(bot, cfg, &fake.url(), Token::new(TOKEN)).expect("a url");
        let stop = CancellationToken::new();
        let run = tokio::spawn({
            let svc = svc.clone();
            let stop = stop.clone();
            async move { svc.run(stop).await }
        });
        fake.wait_for(WAIT, |c| c.iter().any(|c| c.method == ready))
            .await
            .expect("the service is ready");
        Self {
            fake,
            svc,
            stop,
            run,
        }
    }

    /// Stop as SIGTERM would and wait (up to [`WAIT`]) for the end.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.run)
            .await
            .expect("the service stops within the deadline")
            .expect("service task")
            .expect("service ends cleanly");
    }

    /// Wait until `pred` holds for the recorded calls.
    pub async fn until(&self, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        match self.fake.wait_for(WAIT, pred).await {
            Ok(c) => c,
            Err(calls) => panic!(
                "timed out waiting for {what}; calls: {:#?}",
                summary(&calls)
            ),
        }
    }

    /// Wait until a message the bot sent to `chat` reads (now, after edits) as `pred` wants.
    pub async fn until_text(
        &self,
        chat: i64,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<Call> {
        self.until(what, |_| self.fake.chat_texts(chat).iter().any(|t| pred(t)))
            .await
    }

    /// Send `/export` in `chat` and return the document's raw upload (it holds the Markdown).
    pub async fn export(&self, chat: i64) -> String {
        // A multipart call: no `chat_id` parameter to filter on, but the file is named after it.
        let file = format!("conversation-{chat}.md");
        let raw_of = |c: &Call| {
            let raw = c.params["raw"].as_str().unwrap_or("").to_string();
            (c.method == "senddocument" && raw.contains(&file)).then_some(raw)
        };
        self.fake.push_text(chat, "/export");
        let calls = self
            .until("the export", |c| c.iter().any(|c| raw_of(c).is_some()))
            .await;
        calls.iter().find_map(raw_of).expect("the export")
    }

    /// Wait until a final (HTML) message in `chat` is exactly `text`.
    pub async fn until_final(&self, chat: i64, text: &str) -> Vec<Call> {
        self.until(&format!("the final message {text:?} in chat {chat}"), |c| {
            finals(c, chat).iter().any(|c| c.text() == text)
        })
        .await
    }
}

/// Poll `check` until it holds or [`WAIT`] passes (for state the fake server does not see,
/// such as the store; not a synchronisation sleep: it returns as soon as `check` holds).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `method chat text` lines for failure messages.
pub fn summary(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method != "getupdates")
        .map(|c| {
            format!(
                "{} {:?} ok={} {:?}",
                c.method,
                c.chat(),
                c.ok,
                c.text().chars().take(80).collect::<String>()
            )
        })
        .collect()
}

/// Final (HTML) messages and edits that succeeded in `chat`.
pub fn finals(calls: &[Call], chat: i64) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| c.chat() == Some(chat) && c.ok && c.is_html())
        .cloned()
        .collect()
}

/// Successful calls of `method` to `chat`.
pub fn to_chat<'a>(calls: &'a [Call], method: &str, chat: i64) -> Vec<&'a Call> {
    calls
        .iter()
        .filter(|c| c.method == method && c.chat() == Some(chat))
        .collect()
}
