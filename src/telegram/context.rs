//! What the Telegram tasks are given, narrowed per task: a reply's stream, a kept reply's
//! redelivery and every notice need only a [`Sender`] (the paced outbox and what delivery
//! records); the chat workers, commands, button presses and the dispatcher get a [`Context`]
//! (the bot, the chats, handoff, access, the bot's identity, a [`Sender`], and the registry of
//! chat workers). Both are built once by the service. This module imports only leaves (the
//! outbox, the saved state, the chats, handoff, access, metrics), so no task module has to
//! import the service and the service's file imports the tasks, never the other way round.

use super::access::{Access, Me};
use super::chats::Chats;
use super::config::TelegramConfig;
use super::handoff::Handoffs;
use super::metrics::Metrics;
use super::outbox::{Author, Outbox, SendError, Target};
use crate::bot::{Bot, FrontState};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What sending to Telegram needs: the paced outbox, the front end's state (kept replies,
/// keyboards), the counters, the `telegram:` section, whether the server has drafts, and the
/// two stop signals. Cheap to clone (every part is shared).
#[derive(Clone)]
pub struct Sender {
    /// Paced, retrying sender.
    pub out: Outbox,
    /// The Telegram front end's own saved state.
    pub state: FrontState,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The `telegram:` section.
    pub cfg: Arc<TelegramConfig>,
    /// 0 = untested, 1 = the server has sendMessageDraft, 2 = it does not (learnt by the first
    /// streamed reply, shared by all).
    pub drafts: Arc<AtomicU8>,
    /// Fires when the bot stops taking updates.
    pub shutdown: CancellationToken,
    /// Fires when in-flight replies must be cut (grace time over).
    pub hard_stop: CancellationToken,
}

impl Sender {
    /// Send the bot's `text` to `target` (notices, command answers). Nothing is sent to a chat
    /// in human handoff; another failure is logged.
    pub async fn say(&self, target: Target, text: &str) {
        match self.out.send(target, Author::Bot, None, text, None).await {
            Ok(_) | Err(SendError::Handoff(_)) => {}
            Err(e) => tracing::warn!(chat = target.chat, error = %e, "could not send a notice"),
        }
    }
}

/// Handle to a chat's worker task: wakes it and cancels its turn.
pub struct ChatWorker {
    /// The chat.
    pub chat: i64,
    wake: Notify,
    turn: Mutex<Option<CancellationToken>>,
}

impl ChatWorker {
    /// A worker handle for `chat` (its task is started by the service).
    pub fn new(chat: i64) -> Self {
        Self {
            chat,
            wake: Notify::new(),
            turn: Mutex::new(None),
        }
    }

    /// New pending messages: look again.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Until [`Self::notify`] (a notification sent while nobody waited is kept for the next
    /// wait, so none is lost between two waits).
    pub async fn notified(&self) {
        self.wake.notified().await;
    }

    /// Cancel the reply being generated (`/stop`, handoff).
    pub fn cancel_turn(&self) {
        if let Some(t) = self.turn.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            t.cancel();
        }
    }

    /// A turn starts: its cancel token.
    pub fn begin_turn(&self) -> CancellationToken {
        let t = CancellationToken::new();
        *self.turn.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
        t
    }

    /// The turn is over.
    pub fn end_turn(&self) {
        *self.turn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// What the chat workers, commands, button presses and the dispatcher share.
pub struct Context {
    /// The core bot.
    pub bot: Bot,
    /// Chats and their sessions.
    pub chats: Chats,
    /// Human handoff.
    pub handoffs: Handoffs,
    /// Access rules.
    pub access: Access,
    /// The bot's identity (after getMe).
    pub me: RwLock<Me>,
    /// Sending.
    pub send: Sender,
    workers: Mutex<HashMap<i64, Arc<ChatWorker>>>,
    tracker: TaskTracker,
}

impl Context {
    /// A context; the chat worker registry starts empty.
    pub fn new(bot: Bot, chats: Chats, handoffs: Handoffs, access: Access, send: Sender) -> Self {
        Self {
            bot,
            chats,
            handoffs,
            access,
            me: RwLock::new(Me::default()),
            send,
            workers: Mutex::new(HashMap::new()),
            tracker: TaskTracker::new(),
        }
    }

    /// The `telegram:` section.
    pub fn cfg(&self) -> &TelegramConfig {
        &self.send.cfg
    }

    /// The front end's saved state.
    pub fn state(&self) -> &FrontState {
        &self.send.state
    }

    /// Counters.
    pub fn metrics(&self) -> &Metrics {
        &self.send.metrics
    }

    /// The bot's identity.
    pub fn me(&self) -> Me {
        self.me.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// See [`Sender::say`].
    pub async fn say(&self, target: Target, text: &str) {
        self.send.say(target, text).await;
    }

    /// Hand `chat` to a human (`/human`, a persona rule, the button) and stop a reply being
    /// written there.
    pub async fn hand_to_human(&self, chat: i64, reason: &str) {
        if self.handoffs.start(chat, reason).await
            && let Some(w) = self.running_worker(chat)
        {
            w.cancel_turn();
        }
    }

    /// The worker of `chat`; when there is none, one is made and `run(worker)` spawned as its
    /// task (tracked, so a stop waits for it). The map's lock is held while spawning, so a
    /// worker retiring at the same time ([`Self::retire_worker`]) cannot lose the wake-up.
    pub fn worker<F>(&self, chat: i64, run: impl FnOnce(Arc<ChatWorker>) -> F) -> Arc<ChatWorker>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut map = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(chat)
            .or_insert_with(|| {
                let w = Arc::new(ChatWorker::new(chat));
                self.send.metrics.active_chats.fetch_add(1, Relaxed);
                self.tracker.spawn(run(w.clone()));
                w
            })
            .clone()
    }

    /// Remove a chat's worker if nothing is pending for it (called by the worker when idle,
    /// under the same lock [`Self::worker`] takes, so no wake-up is lost).
    pub fn retire_worker(&self, chat: i64) -> bool {
        let mut map = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let pending = self
            .send
            .state
            .scan(&super::state::pending_prefix(chat))
            .map(|v| v.len())
            .unwrap_or(0);
        if pending > 0 {
            return false;
        }
        map.remove(&chat);
        self.send.metrics.active_chats.fetch_sub(1, Relaxed);
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

    /// The chat workers' tasks (a stop closes it and waits for them).
    pub fn tasks(&self) -> &TaskTracker {
        &self.tracker
    }
}
