//! The running bot: start-up (delete webhook, getMe, setMyCommands, resume pending messages),
//! the long-polling loop, dispatch of each update (dedupe, access, store as pending, wake the
//! chat's worker), and a graceful stop that lets in-flight replies finish within the grace time.
//! Dispatch also serves the webhook, where deliveries arrive concurrently and out of order.

use super::access::{Access, Me};
use super::api::{Api, ApiError, BadUrl, Token};
use super::chats::Chats;
use super::config::TelegramConfig;
use super::handoff::Handoffs;
use super::metrics::Metrics;
use super::outbox::{Author, Outbox, SendError, Target};
use super::state::{SEEN_WINDOW, all_pending, chat_of_pending_key, now_ms, offset_key, seen_key};
use super::worker::ChatWorker;
use crate::bot::{Bot, BotError, FrontState};
use futures::FutureExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::Requester;
use teloxide::types::{AllowedUpdate, Update};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The updates the bot asks for (polling and webhook alike).
pub const ALLOWED_UPDATES: [AllowedUpdate; 6] = [
    AllowedUpdate::Message,
    AllowedUpdate::EditedMessage,
    AllowedUpdate::CallbackQuery,
    AllowedUpdate::MyChatMember,
    AllowedUpdate::ChannelPost,
    AllowedUpdate::EditedChannelPost,
];

/// Errors that stop the Telegram front end.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// The token was refused.
    #[error(
        "telegram refused the bot token (check the environment variable named by `telegram.token_env`): {0}"
    )]
    Unauthorized(ApiError),
    /// A Bot API call failed at start-up.
    #[error("telegram start-up failed: {0}")]
    Api(#[from] ApiError),
    /// The bot's store failed.
    #[error(transparent)]
    Bot(#[from] BotError),
    /// The webhook secret is missing or not one Telegram accepts.
    #[error("{0}")]
    Secret(String),
    /// `webhook.url` is not a URL.
    #[error("webhook.url \"{0}\" is not a URL")]
    WebhookUrl(String),
    /// `telegram.api_url` (or `TELOXIDE_API_URL`) is not a URL.
    #[error(transparent)]
    Url(#[from] BadUrl),
    /// The metrics or webhook listener could not start.
    #[error("could not listen on \"{addr}\": {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// State shared by the poller, the chat workers and the handoff machinery.
pub struct Shared {
    /// The core bot.
    pub bot: Bot,
    /// The `telegram:` section.
    pub cfg: TelegramConfig,
    /// Paced sender.
    pub out: Outbox,
    /// The Telegram front end's own saved state (chats, pending messages, handoffs).
    pub state: FrontState,
    /// Chats and their sessions.
    pub chats: Chats,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Access rules.
    pub access: Access,
    /// The bot's identity (after getMe).
    pub me: RwLock<Me>,
    /// 0 = untested, 1 = the server has sendMessageDraft, 2 = it does not.
    pub drafts: AtomicU8,
    /// Fires when the bot stops taking updates.
    pub shutdown: CancellationToken,
    /// Fires when in-flight replies must be cut (grace time over).
    pub hard_stop: CancellationToken,
    /// Human handoff.
    pub handoffs: Handoffs,
    workers: Mutex<HashMap<i64, Arc<ChatWorker>>>,
    tracker: TaskTracker,
}

/// A Telegram bot serving one [`Bot`].
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

impl Service {
    /// A service for `bot` with `cfg`, talking to the Bot API at `api_url` with `token`.
    pub fn new(
        bot: Bot,
        cfg: TelegramConfig,
        api_url: &str,
        token: Token,
    ) -> Result<Self, TelegramError> {
        let state = bot.front_state(super::state::SPACE);
        let chats = Chats::new(bot.clone(), state.clone());
        let metrics = Arc::new(Metrics::default());
        let out = Outbox::new(
            Api::new(api_url, token)?,
            cfg.pacing.clone(),
            state.clone(),
            metrics.clone(),
        );
        let handoffs = Handoffs::new(
            bot.clone(),
            chats.clone(),
            state.clone(),
            out.clone(),
            metrics.clone(),
            &cfg,
        );
        Ok(Self {
            shared: Arc::new(Shared {
                bot,
                access: Access::new(&cfg),
                cfg,
                out,
                chats,
                handoffs,
                state,
                metrics,
                me: RwLock::new(Me::default()),
                drafts: AtomicU8::new(0),
                shutdown: CancellationToken::new(),
                hard_stop: CancellationToken::new(),
                workers: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
            }),
        })
    }

    /// The shared state (handoff, tests, benchmarks).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Counters of this service.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Connect: getMe, and register commands. Returns the bot's identity.
    pub async fn connect(&self) -> Result<Me, TelegramError> {
        let s = &self.shared;
        let api = s.out.api();
        let me = api.bot().get_me().await.map_err(|e| match api.map_err(e) {
            e @ ApiError::Refused {
                status: 401 | 404, ..
            } => TelegramError::Unauthorized(e),
            e => TelegramError::Api(e),
        })?;
        let me = Me {
            id: i64::try_from(me.user.id.0).unwrap_or(0),
            username: me.user.username.clone().unwrap_or_default(),
        };
        *s.me.write().unwrap_or_else(|e| e.into_inner()) = me.clone();
        let commands = super::commands::registered();
        s.out
            .call(
                None,
                false,
                "setMyCommands",
                super::outbox::Delivery::Must,
                || async {
                    let req = api.bot().set_my_commands(commands.clone());
                    req.await.map(|_| ()).map_err(|e| api.map_err(e))
                },
            )
            .await?;
        tracing::info!(bot = %me.username, id = me.id, "connected to telegram");
        Ok(me)
    }

    /// Run until `stop` fires: connect (retrying an unreachable Bot API, see
    /// [`super::startup`]), long polling (or the webhook when configured), then a graceful
    /// stop. Returns after everything is flushed.
    pub async fn run(&self, stop: CancellationToken) -> Result<(), TelegramError> {
        let s = self.shared.clone();
        // Metrics first: while Telegram is unreachable, `/healthz` says "not ready".
        if let Some(addr) = s.cfg.metrics_addr.clone() {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|source| TelegramError::Listen {
                    addr: addr.clone(),
                    source,
                })?;
            tokio::spawn(super::metrics::serve(
                listener,
                s.metrics.clone(),
                s.shutdown.clone(),
            ));
        }
        if super::startup::connect(self, &stop).await?.is_none() {
            // Stopped before Telegram was ever reached.
            self.finish().await;
            return Ok(());
        }
        self.resume_pending()?;
        let handoffs = tokio::spawn(s.handoffs.clone().expiry_loop(s.shutdown.clone()));
        // Final replies kept through an outage (also from before this start) are sent by their
        // chats' workers; this wakes them now and then.
        let redelivery = tokio::spawn(super::undelivered::redelivery_loop(
            self.clone(),
            super::undelivered::every(&s.cfg.pacing),
            s.shutdown.clone(),
        ));
        let result = match s.cfg.webhook.clone() {
            Some(w) => super::webhook::serve(self.clone(), &w, stop.clone()).await,
            None => self.poll(stop.clone()).await,
        };
        handoffs.abort();
        redelivery.abort();
        self.finish().await;
        result
    }

    /// Stop taking updates, give in-flight replies the grace time, cut the rest, flush.
    async fn finish(&self) {
        let s = &self.shared;
        s.shutdown.cancel();
        s.tracker.close();
        let grace = Duration::from_millis(s.cfg.shutdown_grace_ms);
        if tokio::time::timeout(grace, s.tracker.wait()).await.is_err() {
            tracing::info!("grace time over: cutting in-flight replies");
            s.hard_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_millis(800), s.tracker.wait()).await;
        }
        if let Err(e) = s.state.flush() {
            tracing::error!(error = %e, "flush on shutdown failed");
        }
        tracing::info!("telegram bot stopped");
    }

    async fn poll(&self, stop: CancellationToken) -> Result<(), TelegramError> {
        let s = &self.shared;
        let api = s.out.api();
        s.out
            .call(
                None,
                false,
                "deleteWebhook",
                super::outbox::Delivery::Must,
                || async {
                    let req = api.bot().delete_webhook();
                    req.await.map(|_| ()).map_err(|e| api.map_err(e))
                },
            )
            .await?;
        let mut offset: i64 = s.state.get(&offset_key())?.unwrap_or(0);
        let timeout = s.cfg.poll_timeout_secs;
        let mut backoff = Duration::from_millis(s.cfg.pacing.retry_base_ms.max(50));
        loop {
            // teloxide's getUpdates has no request timeout of its own: bound the long poll.
            let req = api
                .bot()
                .get_updates()
                .offset(i32::try_from(offset + 1).unwrap_or(i32::MAX))
                .timeout(u32::try_from(timeout).unwrap_or(u32::MAX))
                .allowed_updates(ALLOWED_UPDATES);
            let call = tokio::time::timeout(Duration::from_secs(timeout + 15), req.into_future());
            let got = tokio::select! {
                _ = stop.cancelled() => break,
                r = call => match r {
                    Ok(r) => r.map_err(|e| api.map_err(e)),
                    Err(_) => Err(ApiError::Network("getUpdates timed out".into())),
                },
            };
            let updates: Vec<Update> = match got {
                Ok(updates) => {
                    backoff = Duration::from_millis(s.cfg.pacing.retry_base_ms.max(50));
                    updates
                }
                Err(e) => {
                    let wait = match &e {
                        ApiError::RetryAfter(d) => *d,
                        ApiError::Refused { status: 409, .. } => {
                            tracing::error!(
                                "another process is polling this bot token (409 conflict); stop it"
                            );
                            // Ten retry steps (5 s by default): the other poller is a person's
                            // mistake, not a blip; keep trying, but slowly.
                            Duration::from_millis(s.cfg.pacing.retry_base_ms.saturating_mul(10))
                        }
                        ApiError::Refused { status: 401, .. } => {
                            return Err(TelegramError::Unauthorized(e));
                        }
                        _ => backoff,
                    };
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "getUpdates failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            };
            offset = offset.max(self.handle_batch(updates).await?);
        }
        Ok(())
    }

    /// Handle a batch of updates: store each as pending (or handle it at once), flush, then wake
    /// the chats. Returns the highest update id seen. Flushing before the next getUpdates
    /// (which acknowledges the batch) is what makes a crash lose nothing.
    ///
    /// Safe to call concurrently (webhook deliveries): an update is handled by the one call
    /// that claims its id ([`seen_key`]), whatever the order the updates arrive in.
    pub async fn handle_batch(&self, updates: Vec<Update>) -> Result<i64, TelegramError> {
        let s = &self.shared;
        let mut last: i64 = s.state.get(&offset_key())?.unwrap_or(0);
        let mut wake = Vec::new();
        for u in updates {
            let id = i64::from(u.id.0);
            if !self.claim(id)? {
                tracing::debug!(update = id, "duplicate update ignored");
                continue;
            }
            // The polling offset; only polling reads it, and it polls one batch at a time.
            last = last.max(id);
            s.state.put(&offset_key(), &last)?;
            let handled = AssertUnwindSafe(super::dispatch::handle_update(self, u))
                .catch_unwind()
                .await;
            match handled {
                Ok(Ok(Some(chat))) => wake.push(chat),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "could not handle an update"),
                Err(panic) => {
                    s.metrics.panics.fetch_add(1, Relaxed);
                    tracing::error!(panic = %panic_text(&panic), "panic while handling an update; the bot keeps serving");
                }
            }
        }
        s.state.flush()?;
        for chat in wake {
            self.wake(chat);
        }
        Ok(last)
    }

    /// Claim an update id: true for the first call with this id, false for every later one,
    /// racing or not (one compare-and-swap). Claims older than [`SEEN_WINDOW`] ids are dropped.
    fn claim(&self, update_id: i64) -> Result<bool, TelegramError> {
        let state = &self.shared.state;
        if !state.insert_new(&seen_key(update_id), &now_ms())? {
            return Ok(false);
        }
        if update_id > SEEN_WINDOW {
            state.remove_range(&seen_key(0), &seen_key(update_id - SEEN_WINDOW))?;
        }
        Ok(true)
    }

    /// Answer what is pending from before a restart.
    fn resume_pending(&self) -> Result<(), TelegramError> {
        let pending = self.shared.state.scan(&all_pending())?;
        let mut chats: Vec<i64> = pending
            .iter()
            .filter_map(|(k, _)| chat_of_pending_key(k))
            .collect();
        chats.dedup();
        if !chats.is_empty() {
            tracing::info!(
                chats = chats.len(),
                messages = pending.len(),
                "answering messages pending from before the restart"
            );
        }
        self.shared
            .metrics
            .queue_depth
            .fetch_add(pending.len() as i64, Relaxed);
        for chat in chats {
            self.wake(chat);
        }
        Ok(())
    }

    /// The worker of `chat`, started if there is none.
    pub(super) fn worker(&self, chat: i64) -> Arc<ChatWorker> {
        let s = &self.shared;
        let mut map = s.workers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(chat)
            .or_insert_with(|| {
                let w = Arc::new(ChatWorker::new(chat));
                s.metrics.active_chats.fetch_add(1, Relaxed);
                s.tracker
                    .spawn(super::worker::run(self.shared.clone(), w.clone()));
                w
            })
            .clone()
    }

    /// Wake (or start) the worker of `chat`.
    pub fn wake(&self, chat: i64) {
        if self.shared.shutdown.is_cancelled() {
            return;
        }
        self.worker(chat).notify();
    }
}

impl Shared {
    /// Hand `chat` to a human (`/human`, a persona rule) and stop a reply being written there.
    pub async fn hand_to_human(&self, chat: i64, reason: &str) {
        if self.handoffs.start(chat, reason).await
            && let Some(w) = self.running_worker(chat)
        {
            w.cancel_turn();
        }
    }

    /// Send the bot's `text` to `target` (notices, command answers). Nothing is sent to a chat
    /// in human handoff; another failure is logged.
    pub async fn say(&self, target: Target, text: &str) {
        match self.out.send(target, Author::Bot, None, text, None).await {
            Ok(_) | Err(SendError::Handoff(_)) => {}
            Err(e) => tracing::warn!(chat = target.chat, error = %e, "could not send a notice"),
        }
    }

    /// Remove a chat's worker if nothing is pending for it (called by the worker when idle,
    /// under the same lock the dispatcher takes, so no wake-up is lost).
    pub fn retire_worker(&self, chat: i64) -> bool {
        let mut map = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let pending = self
            .state
            .scan(&super::state::pending_prefix(chat))
            .map(|v| v.len())
            .unwrap_or(0);
        if pending > 0 {
            return false;
        }
        map.remove(&chat);
        self.metrics.active_chats.fetch_sub(1, Relaxed);
        true
    }

    /// The running worker of a chat, if any.
    pub fn running_worker(&self, chat: i64) -> Option<Arc<ChatWorker>> {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&chat)
            .cloned()
    }
}

/// The text of a caught panic.
pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
