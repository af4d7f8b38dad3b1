//! The running bot: start-up (delete webhook, getMe, setMyCommands, resume pending messages),
//! the long-polling loop, dispatch of each update (dedupe, access, store as pending, wake the
//! chat's worker), and a graceful stop that lets in-flight replies finish within the grace time.
//! Dispatch also serves the webhook, where deliveries arrive concurrently and out of order.

use super::access::{Access, Me};
use super::api::{Api, ApiError, Token};
use super::chats::Chats;
use super::config::TelegramConfig;
use super::context::{Context, Sender};
pub use super::error::TelegramError;
use super::error::panic_text;
use super::handoff::Handoffs;
use super::incoming::ALLOWED_UPDATES;
use super::metrics::Metrics;
use super::outbox::Outbox;
use super::state::{SEEN_WINDOW, all_pending, chat_of_pending_key, now_ms, offset_key, seen_key};
use crate::bot::Bot;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::Duration;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::Requester;
use teloxide::types::Update;
use tokio_util::sync::CancellationToken;

/// A Telegram bot serving one [`Bot`].
#[derive(Clone)]
pub struct Service {
    ctx: Arc<Context>,
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
        let send = Sender {
            out,
            state,
            metrics,
            cfg: Arc::new(cfg),
            drafts: Arc::new(AtomicU8::new(0)),
            shutdown: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
        };
        let access = Access::new(&send.cfg);
        Ok(Self {
            ctx: Arc::new(Context::new(bot, chats, handoffs, access, send)),
        })
    }

    /// What the service's tasks share (handoff, tests, benchmarks).
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Counters of this service.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.send.metrics.clone()
    }

    /// Connect: getMe, and register commands. Returns the bot's identity.
    pub async fn connect(&self) -> Result<Me, TelegramError> {
        let s = &self.ctx.send;
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
        *self.ctx.me.write().unwrap_or_else(|e| e.into_inner()) = me.clone();
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
        let s = self.ctx.send.clone();
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
        let base = Duration::from_millis(s.cfg.pacing.retry_base_ms.max(50));
        let connected = super::startup::connect(&s.metrics, base, &stop, || self.connect()).await?;
        if connected.is_none() {
            // Stopped before Telegram was ever reached.
            self.finish().await;
            return Ok(());
        }
        self.resume_pending()?;
        let handoffs = tokio::spawn(self.ctx.handoffs.clone().expiry_loop(s.shutdown.clone()));
        // Final replies kept through an outage (also from before this start) are sent by their
        // chats' workers; this wakes them now and then.
        let redelivery = tokio::spawn(
            self.clone()
                .redelivery_loop(super::undelivered::every(&s.cfg.pacing), s.shutdown.clone()),
        );
        let result = match s.cfg.webhook.clone() {
            Some(w) => {
                let svc = self.clone();
                let handle: super::webhook::Handler = Arc::new(move |u| {
                    let svc = svc.clone();
                    Box::pin(async move { svc.handle_batch(vec![u]).await.map(|_| ()) })
                });
                super::webhook::serve(&s.out, handle, &w, stop.clone()).await
            }
            None => self.poll(stop.clone()).await,
        };
        handoffs.abort();
        redelivery.abort();
        self.finish().await;
        result
    }

    /// Stop taking updates, give in-flight replies the grace time, cut the rest, flush.
    async fn finish(&self) {
        let s = &self.ctx.send;
        s.shutdown.cancel();
        let tasks = self.ctx.tasks();
        tasks.close();
        let grace = Duration::from_millis(s.cfg.shutdown_grace_ms);
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::info!("grace time over: cutting in-flight replies");
            s.hard_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_millis(800), tasks.wait()).await;
        }
        if let Err(e) = s.state.flush() {
            tracing::error!(error = %e, "flush on shutdown failed");
        }
        tracing::info!("telegram bot stopped");
    }

    async fn poll(&self, stop: CancellationToken) -> Result<(), TelegramError> {
        let s = &self.ctx.send;
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
        let s = &self.ctx.send;
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
            let handled = AssertUnwindSafe(super::dispatch::handle_update(&self.ctx, u))
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
        let state = &self.ctx.send.state;
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
        let pending = self.ctx.send.state.scan(&all_pending())?;
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
        self.ctx
            .send
            .metrics
            .queue_depth
            .fetch_add(pending.len() as i64, Relaxed);
        for chat in chats {
            self.wake(chat);
        }
        Ok(())
    }

    /// The worker of `chat`, started if there is none.
    pub(super) fn worker(&self, chat: i64) -> Arc<super::context::ChatWorker> {
        let ctx = self.ctx.clone();
        self.ctx.worker(chat, move |w| super::worker::run(ctx, w))
    }

    /// Wake the workers of chats with kept replies now and every `every` until `shutdown`
    /// ([`super::undelivered`]).
    async fn redelivery_loop(self, every: Duration, shutdown: CancellationToken) {
        loop {
            match super::undelivered::chats(&self.ctx.send.state) {
                Ok(chats) => {
                    for chat in chats {
                        self.wake(chat);
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not read the undelivered replies"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Wake (or start) the worker of `chat`.
    pub fn wake(&self, chat: i64) {
        if self.ctx.send.shutdown.is_cancelled() {
            return;
        }
        self.worker(chat).notify();
    }
}
