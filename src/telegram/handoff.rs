//! Human handoff: [`Handoffs::start`] puts a chat in `human` state (stored, so it survives restarts),
//! tells the customer, and posts the recent transcript to `operators_chat`. While a chat is in
//! that state the outbox refuses bot-authored text to it and customer messages are forwarded to
//! the operators. An operator's reply to a relayed post goes to the customer; `/bot` as such a
//! reply (or `/bot <chat id>`), or the timeout ([`Handoffs::expiry_loop`]), hands the chat back. What the
//! customer and the operators say meanwhile is stored in the chat's session like any turn, the
//! operators' replies marked with the operator's name.
//!
//! [`Handoffs::start`] is the one entry point: `/human` calls it, and so can a persona rule whose action
//! is a handoff.

use super::chats::Chats;
use super::incoming::{chat_id, first_name, message_id, text_of};
use super::metrics::Metrics;
use super::outbox::Outbox;
use super::outbox::{Author, SendError, Target};
use super::split::{CHUNK_BUDGET, split_markdown};
use super::state::{Handoff, all_handoffs, handoff_key, now_ms, relay_key};
use crate::bot::{Bot, FrontState};
use crate::chat::Role;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use teloxide::types::Message;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest wait between two looks at the stored deadlines: a safety net, since the loop is
/// also woken when a handoff starts.
const RECHECK: Duration = Duration::from_secs(30);

fn target(chat: i64) -> Target {
    Target {
        chat,
        group: chat < 0,
    }
}

/// The handoff machinery of one Telegram bot: what it needs and nothing more. Cheap to clone.
#[derive(Clone)]
pub struct Handoffs {
    bot: Bot,
    chats: Chats,
    state: FrontState,
    out: Outbox,
    metrics: Arc<Metrics>,
    /// Where transcripts go and operators answer (`telegram.operators_chat`).
    operators_chat: Option<i64>,
    /// `telegram.handoff_timeout_minutes` (0 = never).
    timeout_minutes: f64,
    /// `telegram.handoff_transcript`: messages posted to the operators.
    transcript_len: usize,
    /// Wakes the expiry loop when a handoff starts (its deadline may be the nearest).
    started: Arc<Notify>,
}

impl Handoffs {
    /// Handoffs for the chats of `bot`, told through `out`, with the settings of `cfg`.
    pub fn new(
        bot: Bot,
        chats: Chats,
        state: FrontState,
        out: Outbox,
        metrics: Arc<Metrics>,
        cfg: &super::config::TelegramConfig,
    ) -> Self {
        Self {
            bot,
            chats,
            state,
            out,
            metrics,
            operators_chat: cfg.operators_chat,
            timeout_minutes: cfg.handoff_timeout_minutes,
            transcript_len: cfg.handoff_transcript,
            started: Arc::new(Notify::new()),
        }
    }

    /// Send `text` to `chat` as the handoff machinery (not suppressed by the handoff itself).
    async fn tell(&self, chat: i64, text: &str) -> Result<i64, SendError> {
        self.out
            .send(target(chat), Author::Service, None, text, None)
            .await
    }

    /// Whether `chat` is handled by a human now (an expired handoff ends here).
    pub fn active(&self, chat: i64) -> bool {
        match self.state.get::<Handoff>(&handoff_key(chat)) {
            Ok(Some(h)) => h.until_ms.is_none_or(|u| u > now_ms()),
            _ => false,
        }
    }

    /// Hand `chat` to a human for `reason` (`/human`, a rule id, ...). Idempotent. True when
    /// the handoff started now (the caller stops a reply being written to that chat).
    pub async fn start(&self, chat: i64, reason: &str) -> bool {
        if self.active(chat) {
            let _ = self
                .tell(
                    chat,
                    "A colleague already has this conversation; they will answer here.",
                )
                .await;
            return false;
        }
        let minutes = self.timeout_minutes;
        let h = Handoff {
            since_ms: now_ms(),
            reason: reason.to_string(),
            until_ms: (minutes > 0.0).then(|| now_ms() + (minutes * 60_000.0).round() as i64),
        };
        if let Err(e) = self
            .state
            .put(&handoff_key(chat), &h)
            .and_then(|_| self.state.flush())
        {
            tracing::error!(chat, error = %e, "could not store the handoff");
            return false;
        }
        self.started.notify_one();
        self.metrics.handoffs.fetch_add(1, Relaxed);
        tracing::info!(chat, reason, "chat handed to a human");
        let note = if self.operators_chat.is_some() {
            "I have asked a human colleague to take over. They will answer here soon."
        } else {
            "I have stopped answering so a human colleague can take over."
        };
        let _ = self.tell(chat, note).await;
        let Some(ops) = self.operators_chat else {
            return true;
        };
        let transcript = self.recent_transcript(chat);
        let post = format!(
            "Chat {chat} asked for a human ({reason}). Reply to this message to answer the customer; reply /bot or press \"Hand back to bot\" to hand the chat back to the bot.\n\n{transcript}"
        );
        let buttons = super::buttons::for_handoff(&self.state, ops, chat);
        self.post_to_operators(ops, chat, &post, buttons.as_ref())
            .await;
        true
    }

    /// Close `chat`'s handoff for good (an operator's "Close"): the chat is back with the bot
    /// and its next message starts a new conversation.
    pub async fn close(&self, chat: i64) {
        if let Err(e) = self.chats.new_session(chat) {
            tracing::error!(chat, error = %e, "could not start a new conversation after closing");
        }
        self.finish(
            chat,
            "closed by an operator",
            "This conversation is closed. Write again any time to start a new one.",
        )
        .await;
    }

    /// Give `chat` back to the bot.
    pub async fn end(&self, chat: i64, why: &str) {
        self.finish(
            chat,
            why,
            "You are talking to the bot again. How can I help?",
        )
        .await;
    }

    /// End `chat`'s handoff for `why`, telling the customer `note`.
    async fn finish(&self, chat: i64, why: &str, note: &str) {
        if self.state.get(&handoff_key(chat)).ok().flatten().is_none() {
            return;
        }
        if let Err(e) = self
            .state
            .remove(&handoff_key(chat))
            .and_then(|_| self.state.flush())
        {
            tracing::error!(chat, error = %e, "could not end the handoff");
            return;
        }
        tracing::info!(chat, why, "chat handed back to the bot");
        let _ = self.tell(chat, note).await;
        if let Some(ops) = self.operators_chat {
            let _ = self
                .tell(ops, &format!("Chat {chat} is back with the bot ({why})."))
                .await;
        }
    }

    fn recent_transcript(&self, chat: i64) -> String {
        let Ok(sid) = self.chats.session_of(chat) else {
            return String::new();
        };
        let msgs = self
            .bot
            .recent_messages(sid, self.transcript_len)
            .unwrap_or_default();
        let mut out = String::from("Recent messages:\n");
        for m in msgs {
            let who = match (m.role, &m.operator) {
                (Role::User, _) => "Customer".to_string(),
                (_, Some(name)) => format!("Operator {name}"),
                _ => "Bot".to_string(),
            };
            let text: String = m.text.chars().take(600).collect();
            out.push_str(&format!("{who}: {text}\n"));
        }
        out
    }

    async fn post_to_operators(
        &self,
        ops: i64,
        chat: i64,
        text: &str,
        buttons: Option<&super::state::Made>,
    ) {
        let chunks = split_markdown(text, CHUNK_BUDGET);
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            let made = buttons.filter(|_| i == last);
            let sent = self
                .out
                .send_with(
                    target(ops),
                    Author::Service,
                    None,
                    chunk,
                    None,
                    made.map(|m| &m.markup),
                )
                .await;
            match sent {
                Ok(id) => {
                    let _ = self.state.put(&relay_key(id), &chat);
                    if let Some(m) = made {
                        m.sent_as(&self.state, id);
                    }
                }
                Err(e) => tracing::error!(chat, error = %e, "could not post to the operators chat"),
            }
        }
        let _ = self.state.flush();
    }

    /// Append a message of the handoff (the customer's, or an operator's answer) to the chat's
    /// session, flushed, so it is in `/export` and in the bot's history once the chat is back.
    fn record(&self, chat: i64, role: Role, text: &str, operator: Option<String>) {
        let stored = self
            .chats
            .session_of(chat)
            .and_then(|sid| self.bot.record_handoff_message(sid, role, text, operator));
        if let Err(e) = stored {
            tracing::error!(chat, error = %e, "could not store a message of the handoff");
        }
    }

    /// Customer messages during a handoff (`text`: the burst ending with `last`, joined as for a
    /// turn): stored in the session, then forwarded to the operators.
    pub async fn forward_to_operators(&self, last: &Message, text: &str) {
        let chat = chat_id(last);
        self.record(chat, Role::User, text, None);
        let Some(ops) = self.operators_chat else {
            return;
        };
        let name = first_name(last).unwrap_or("customer");
        self.post_to_operators(ops, chat, &format!("Chat {chat} ({name}): {text}"), None)
            .await;
    }

    /// A message in the operators chat: relay a reply, or hand a chat back with `/bot`.
    pub async fn from_operator(&self, msg: &Message) {
        let text = text_of(msg).trim();
        let relayed: Option<i64> = msg
            .reply_to_message()
            .and_then(|r| self.state.get(&relay_key(message_id(r))).ok().flatten());
        if let Some((cmd, args)) = super::incoming::parse_command(text)
            && cmd == "bot"
        {
            match relayed.or_else(|| args.parse().ok()) {
                Some(chat) => self.end(chat, "operator").await,
                None => {
                    let _ = self
                        .tell(
                            chat_id(msg),
                            "Reply /bot to a customer's message, or send /bot <chat id>.",
                        )
                        .await;
                }
            }
            return;
        }
        let Some(chat) = relayed else { return };
        if text.is_empty() {
            return;
        }
        match self.tell(chat, text).await {
            Ok(_) => {
                tracing::info!(chat, "operator reply relayed");
                let operator = first_name(msg).unwrap_or("Operator").to_string();
                self.record(chat, Role::Assistant, text, Some(operator));
            }
            Err(e) => {
                tracing::error!(chat, error = %e, "could not relay an operator reply");
                let _ = self
                    .tell(
                        chat_id(msg),
                        &format!("Could not deliver that to chat {chat}: {e}"),
                    )
                    .await;
            }
        }
    }

    /// Hand chats back when their handoff times out: sleeps until the nearest stored deadline
    /// (re-read when a handoff starts, and at least every [`RECHECK`]).
    pub async fn expiry_loop(self, shutdown: CancellationToken) {
        loop {
            let wait = match self.end_expired().await {
                Some(until) => Duration::from_millis((until - now_ms()).max(0) as u64).min(RECHECK),
                None => RECHECK,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.started.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// End the handoffs whose time is up; returns the nearest deadline still ahead.
    async fn end_expired(&self) -> Option<i64> {
        let all = match self.state.scan(&all_handoffs()) {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "could not read the handoffs");
                return None;
            }
        };
        let mut next: Option<i64> = None;
        for (key, h) in all {
            let (Some(chat), Some(until)) = (
                key.name()
                    .strip_prefix(all_handoffs().name())
                    .and_then(|c| c.parse::<i64>().ok()),
                h.until_ms,
            ) else {
                continue;
            };
            if until <= now_ms() {
                self.end(chat, "timeout").await;
            } else {
                next = Some(next.map_or(until, |n| n.min(until)));
            }
        }
        next
    }
}
