//! Every outgoing call goes through [`Outbox`]: paced ([`Pacer`]), retried on 5xx and network
//! errors with backoff, paused on 429 for every sender, with a plain-text fallback when Telegram
//! cannot parse the HTML. It also enforces human handoff: bot-authored text to a chat in
//! `human` state is not sent, whatever the caller wanted.

use super::api::{Api, ApiError};
use super::config::Pacing;
use super::limits::Pacer;
use super::metrics::Metrics;
use super::state::{handoff_key, now_ms};
use crate::bot::FrontState;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Who wrote what is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// The bot (model replies, greetings, notices): suppressed in chats handed to a human.
    Bot,
    /// Operators or the handoff machinery (relayed replies, handoff notices, operator posts).
    Service,
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Retry until sent (final messages).
    Must,
    /// One try after pacing; a newer call will supersede it (streaming edits, drafts, typing).
    BestEffort,
}

/// Errors of sending.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The chat is in human handoff: the bot may not speak there.
    #[error("chat {0} is handled by a human; the bot does not send there")]
    Handoff(i64),
    /// Telegram or the network failed even after retries.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Paced, retrying sender shared by all chats.
#[derive(Clone)]
pub struct Outbox {
    api: Api,
    pacer: Arc<Pacer>,
    pacing: Pacing,
    state: FrontState,
    metrics: Arc<Metrics>,
}

/// Where a call goes: chat id and whether it is a group (slower pacing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Chat id.
    pub chat: i64,
    /// Group or supergroup.
    pub group: bool,
}

impl Outbox {
    /// An outbox over `api`, pacing with `pacing`, reading handoff state from `state`.
    pub fn new(api: Api, pacing: Pacing, state: FrontState, metrics: Arc<Metrics>) -> Self {
        let pacer = Arc::new(Pacer::new(pacing.global_per_second));
        Self {
            api,
            pacer,
            pacing,
            state,
            metrics,
        }
    }

    /// The underlying client.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The shared pacer.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// Whether the chat is in human handoff.
    pub fn in_handoff(&self, chat: i64) -> bool {
        matches!(self.state.get(&handoff_key(chat)),
            Ok(Some(h)) if h.until_ms.is_none_or(|u| u > now_ms()))
    }

    fn interval(&self, t: Target) -> Duration {
        Duration::from_millis(if t.group {
            self.pacing.group_interval_ms
        } else {
            self.pacing.private_interval_ms
        })
    }

    /// Call `method` for `target` (paced per chat when `per_chat`), with retries per `delivery`.
    pub async fn call(
        &self,
        target: Option<Target>,
        per_chat: bool,
        method: &str,
        params: &Value,
        delivery: Delivery,
    ) -> Result<Value, ApiError> {
        let max_wait = Duration::from_millis(self.pacing.max_wait_ms);
        let mut attempt = 0u32;
        let mut floods = 0u32;
        loop {
            let chat = target
                .filter(|_| per_chat)
                .map(|t| (t.chat, self.interval(t)));
            // Every call, retries included, waits for its slot in the one shared pacer: the
            // Bot API's limits are per bot (about 30 messages/s) and per chat (1/s private, 20
            // per minute in groups), so pacing per task would let many chats together exceed
            // them and draw 429s for everyone.
            self.pacer.wait_turn(chat).await;
            tracing::debug!(method, chat = target.map(|t| t.chat), "telegram call");
            match self.api.call(method, params, Duration::from_secs(30)).await {
                Ok(v) => return Ok(v),
                Err(ApiError::RetryAfter(d)) => {
                    self.metrics.flood_waits.fetch_add(1, Relaxed);
                    let d = d.min(max_wait);
                    tracing::warn!(
                        method,
                        wait_ms = d.as_millis() as u64,
                        "telegram flood control: every sender pauses"
                    );
                    // A 429 is for the whole bot: every sender pauses, not only this one, or
                    // the others' calls would extend the flood wait.
                    self.pacer.pause_all(d);
                    if let Some(t) = target {
                        self.pacer.slow_chat(t.chat);
                    }
                    floods += 1;
                    if delivery == Delivery::BestEffort || floods > 20 {
                        return Err(ApiError::RetryAfter(d));
                    }
                }
                Err(e) if e.is_transient() => {
                    attempt += 1;
                    if delivery == Delivery::BestEffort || attempt >= self.pacing.max_attempts {
                        return Err(e);
                    }
                    self.metrics.retries.fetch_add(1, Relaxed);
                    let backoff = Duration::from_millis(
                        self.pacing
                            .retry_base_ms
                            .saturating_mul(1 << (attempt - 1).min(10)),
                    )
                    .min(max_wait);
                    tracing::warn!(method, attempt, backoff_ms = backoff.as_millis() as u64, error = %e, "retrying telegram call");
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Checked at every send, not once per turn: a handoff can start while a reply is
    /// streaming, and from then on nothing the bot wrote may reach the customer.
    fn guard(&self, target: Target, author: Author) -> Result<(), SendError> {
        if author == Author::Bot && self.in_handoff(target.chat) {
            return Err(SendError::Handoff(target.chat));
        }
        Ok(())
    }

    /// Send a message: `html` when given (falling back to `plain` if Telegram cannot parse it).
    /// Returns the new message id.
    pub async fn send(
        &self,
        target: Target,
        author: Author,
        html: Option<&str>,
        plain: &str,
        reply_to: Option<i64>,
    ) -> Result<i64, SendError> {
        self.guard(target, author)?;
        let mut params = json!({"chat_id": target.chat, "text": plain});
        if let Some(r) = reply_to {
            params["reply_parameters"] =
                json!({"message_id": r, "allow_sending_without_reply": true});
        }
        if let Some(h) = html {
            let mut p = params.clone();
            p["text"] = json!(h);
            p["parse_mode"] = json!("HTML");
            match self
                .call(Some(target), true, "sendMessage", &p, Delivery::Must)
                .await
            {
                Ok(v) => {
                    self.metrics.messages_out.fetch_add(1, Relaxed);
                    return Ok(message_id(&v));
                }
                Err(e) if e.is_parse_error() => {
                    tracing::warn!(chat = target.chat, error = %e, "telegram rejected the HTML; sending plain text");
                    self.metrics.plain_fallbacks.fetch_add(1, Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let v = self
            .call(Some(target), true, "sendMessage", &params, Delivery::Must)
            .await?;
        self.metrics.messages_out.fetch_add(1, Relaxed);
        Ok(message_id(&v))
    }

    /// Replace a message's text (HTML with plain fallback, like [`Outbox::send`]). "message is
    /// not modified" counts as success.
    pub async fn edit(
        &self,
        target: Target,
        author: Author,
        message_id: i64,
        html: Option<&str>,
        plain: &str,
        delivery: Delivery,
    ) -> Result<(), SendError> {
        self.guard(target, author)?;
        let params = json!({"chat_id": target.chat, "message_id": message_id, "text": plain});
        let attempt = |p: Value| async move {
            match self
                .call(Some(target), true, "editMessageText", &p, delivery)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_modified() => Ok(()),
                Err(e) => Err(e),
            }
        };
        if let Some(h) = html {
            let mut p = params.clone();
            p["text"] = json!(h);
            p["parse_mode"] = json!("HTML");
            match attempt(p).await {
                Ok(()) => {
                    self.metrics.edits_out.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(e) if e.is_parse_error() => {
                    tracing::warn!(chat = target.chat, error = %e, "telegram rejected the HTML edit; sending plain text");
                    self.metrics.plain_fallbacks.fetch_add(1, Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        attempt(params).await?;
        self.metrics.edits_out.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Stream a draft (`sendMessageDraft`, Bot API 9.3+, private chats).
    pub async fn draft(&self, target: Target, draft_id: i64, text: &str) -> Result<(), SendError> {
        self.guard(target, Author::Bot)?;
        let p = json!({"chat_id": target.chat, "draft_id": draft_id, "text": text});
        self.call(
            Some(target),
            true,
            "sendMessageDraft",
            &p,
            Delivery::BestEffort,
        )
        .await?;
        self.metrics.edits_out.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Show "typing…" (lasts about 5 s). Not paced per chat: it does not count as a message.
    pub async fn typing(&self, target: Target) -> Result<(), SendError> {
        self.guard(target, Author::Bot)?;
        let p = json!({"chat_id": target.chat, "action": "typing"});
        self.call(
            Some(target),
            false,
            "sendChatAction",
            &p,
            Delivery::BestEffort,
        )
        .await?;
        Ok(())
    }

    /// Upload a Markdown document.
    pub async fn document(
        &self,
        target: Target,
        file_name: &str,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<(), SendError> {
        self.guard(target, Author::Bot)?;
        let mut attempt = 0;
        loop {
            self.pacer
                .wait_turn(Some((target.chat, self.interval(target))))
                .await;
            match self
                .api
                .send_document(target.chat, file_name, bytes.clone(), caption)
                .await
            {
                Ok(_) => {
                    self.metrics.messages_out.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(ApiError::RetryAfter(d)) if attempt < 5 => self.pacer.pause_all(d),
                Err(e) if e.is_transient() && attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(self.pacing.retry_base_ms << attempt))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
            attempt += 1;
        }
    }
}

fn message_id(v: &Value) -> i64 {
    v.get("message_id").and_then(Value::as_i64).unwrap_or(0)
}
