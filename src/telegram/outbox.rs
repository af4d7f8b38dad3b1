//! Every outgoing call goes through [`Outbox`]: paced ([`Pacer`]), retried on 5xx and network
//! errors with backoff, paused on 429 for every sender, with a plain-text fallback when Telegram
//! cannot parse the HTML. It also enforces human handoff: bot-authored text to a chat in
//! `human` state is not sent, whatever the caller wanted.

use super::api::{Api, ApiError, SendMessageDraft};
use super::config::Pacing;
use super::limits::Pacer;
use super::metrics::Metrics;
use super::state::{handoff_key, now_ms};
use crate::bot::FrontState;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use teloxide::payloads::{
    AnswerCallbackQuery, EditMessageReplyMarkup, EditMessageText, SendChatAction,
    SendDocumentSetters, SendMessage,
};
use teloxide::requests::Requester;
use teloxide::types::{
    CallbackQueryId, ChatAction, ChatId, InlineKeyboardMarkup, InputFile, MessageId, ParseMode,
    ReplyParameters,
};

/// How long one delivery call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// Make one call for `target` (paced per chat when `per_chat`) with parlor's policies:
    /// every attempt waits for its slot in the shared pacer, a 429 pauses every sender, 5xx
    /// and network errors are retried with doubling back-off when `delivery` is
    /// [`Delivery::Must`]. `attempt` makes the request (teloxide's `Requester` or
    /// [`Api::request`]); `method` names it in logs.
    pub async fn call<T, F, Fut>(
        &self,
        target: Option<Target>,
        per_chat: bool,
        method: &'static str,
        delivery: Delivery,
        attempt: F,
    ) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let max_wait = Duration::from_millis(self.pacing.max_wait_ms);
        let mut failures = 0u32;
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
            match attempt().await {
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
                    failures += 1;
                    if delivery == Delivery::BestEffort || failures >= self.pacing.max_attempts {
                        return Err(e);
                    }
                    self.metrics.retries.fetch_add(1, Relaxed);
                    let backoff = Duration::from_millis(
                        self.pacing
                            .retry_base_ms
                            .saturating_mul(1 << (failures - 1).min(10)),
                    )
                    .min(max_wait);
                    tracing::warn!(method, attempt = failures, backoff_ms = backoff.as_millis() as u64, error = %e, "retrying telegram call");
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
        self.send_with(target, author, html, plain, reply_to, None)
            .await
    }

    /// [`Outbox::send`] with inline buttons under the message.
    pub async fn send_with(
        &self,
        target: Target,
        author: Author,
        html: Option<&str>,
        plain: &str,
        reply_to: Option<i64>,
        buttons: Option<&InlineKeyboardMarkup>,
    ) -> Result<i64, SendError> {
        self.guard(target, author)?;
        let mut params = SendMessage::new(ChatId(target.chat), plain);
        params.reply_parameters = reply_to.and_then(message_ref).map(|id| ReplyParameters {
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(id)
        });
        params.reply_markup = buttons.cloned().map(Into::into);
        let attempt = |p: SendMessage| async move {
            let p = &p;
            self.call(Some(target), true, "sendMessage", Delivery::Must, || {
                self.api.request(p, CALL_TIMEOUT)
            })
            .await
        };
        if let Some(h) = html {
            let mut p = params.clone();
            p.text = h.to_string();
            p.parse_mode = Some(ParseMode::Html);
            match attempt(p).await {
                Ok(m) => {
                    self.metrics.messages_out.fetch_add(1, Relaxed);
                    return Ok(i64::from(m.id.0));
                }
                Err(e) if e.is_parse_error() => {
                    tracing::warn!(chat = target.chat, error = %e, "telegram rejected the HTML; sending plain text");
                    self.metrics.plain_fallbacks.fetch_add(1, Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let m = attempt(params).await?;
        self.metrics.messages_out.fetch_add(1, Relaxed);
        Ok(i64::from(m.id.0))
    }

    /// Replace a message's text (HTML with plain fallback, like [`Outbox::send`]), and its
    /// buttons (`buttons`: the new ones; none removes them). "message is not modified" counts
    /// as success.
    #[allow(clippy::too_many_arguments)]
    pub async fn edit(
        &self,
        target: Target,
        author: Author,
        message_id: i64,
        html: Option<&str>,
        plain: &str,
        delivery: Delivery,
        buttons: Option<&InlineKeyboardMarkup>,
    ) -> Result<(), SendError> {
        self.guard(target, author)?;
        let Some(id) = message_ref(message_id) else {
            return Err(SendError::Api(ApiError::Refused {
                status: 400,
                description: format!("no message {message_id} to edit"),
            }));
        };
        let mut params = EditMessageText::new(ChatId(target.chat), id, plain);
        params.reply_markup = buttons.cloned();
        let attempt = |p: EditMessageText| async move {
            let p = &p;
            match self
                .call(Some(target), true, "editMessageText", delivery, || {
                    self.api.request(p, CALL_TIMEOUT)
                })
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_modified() => Ok(()),
                Err(e) => Err(e),
            }
        };
        if let Some(h) = html {
            let mut p = params.clone();
            p.text = h.to_string();
            p.parse_mode = Some(ParseMode::Html);
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

    /// Replace (or with `None` remove) the buttons under a message, keeping its text. Sent by
    /// the service (a pressed button's keyboard goes away whoever wrote the message).
    pub async fn set_buttons(
        &self,
        target: Target,
        message_id: i64,
        buttons: Option<&InlineKeyboardMarkup>,
    ) -> Result<(), ApiError> {
        let Some(id) = message_ref(message_id) else {
            return Ok(());
        };
        let mut p = EditMessageReplyMarkup::new(ChatId(target.chat), id);
        p.reply_markup = buttons.cloned();
        let p = &p;
        match self
            .call(
                Some(target),
                true,
                "editMessageReplyMarkup",
                Delivery::Must,
                || self.api.request(p, CALL_TIMEOUT),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_modified() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Answer a button press (`answerCallbackQuery`), with a short notice when `text` is given.
    /// Telegram shows a spinner on the button until this arrives. Not paced per chat: it is not
    /// a message.
    pub async fn answer_callback(&self, id: &str, text: Option<&str>) -> Result<(), ApiError> {
        let mut p = AnswerCallbackQuery::new(CallbackQueryId(id.to_string()));
        p.text = text.map(str::to_string);
        let p = &p;
        self.call(None, false, "answerCallbackQuery", Delivery::Must, || {
            self.api.request(p, CALL_TIMEOUT)
        })
        .await?;
        Ok(())
    }

    /// Stream a draft (`sendMessageDraft`, Bot API 9.3+, private chats).
    pub async fn draft(&self, target: Target, draft_id: i64, text: &str) -> Result<(), SendError> {
        self.guard(target, Author::Bot)?;
        let p = SendMessageDraft {
            chat_id: ChatId(target.chat).into(),
            draft_id,
            text: text.to_string(),
        };
        let p = &p;
        self.call(
            Some(target),
            true,
            "sendMessageDraft",
            Delivery::BestEffort,
            || self.api.request(p, CALL_TIMEOUT),
        )
        .await?;
        self.metrics.edits_out.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Show "typing…" (lasts about 5 s). Not paced per chat: it does not count as a message.
    pub async fn typing(&self, target: Target) -> Result<(), SendError> {
        self.guard(target, Author::Bot)?;
        let p = SendChatAction::new(ChatId(target.chat), ChatAction::Typing);
        let p = &p;
        self.call(
            Some(target),
            false,
            "sendChatAction",
            Delivery::BestEffort,
            || self.api.request(p, CALL_TIMEOUT),
        )
        .await?;
        Ok(())
    }

    /// Upload a Markdown document (teloxide's `sendDocument`, multipart).
    pub async fn document(
        &self,
        target: Target,
        file_name: &str,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<(), SendError> {
        self.guard(target, Author::Bot)?;
        self.call(Some(target), true, "sendDocument", Delivery::Must, || {
            let file = InputFile::memory(bytes.clone()).file_name(file_name.to_string());
            let req = self
                .api
                .bot()
                .send_document(ChatId(target.chat), file)
                .caption(caption);
            async move { req.await.map(|_| ()).map_err(|e| self.api.map_err(e)) }
        })
        .await?;
        self.metrics.messages_out.fetch_add(1, Relaxed);
        Ok(())
    }
}

/// A message id as teloxide types it (Telegram's ids fit in 32 bits).
pub fn message_ref(id: i64) -> Option<MessageId> {
    i32::try_from(id).ok().map(MessageId)
}
