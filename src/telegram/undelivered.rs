//! Final replies Telegram would not take: when the last attempt at a chunk of a turn's final
//! reply fails with a 5xx, a network error or flood control ([`Delivery::Must`] gave up), the
//! rest of the reply is kept in the front end's state, sealed with the chat's key, and sent
//! later by the chat's worker: before it answers anything else in that chat, when the
//! service's redelivery loop wakes it (every [`every`]) and after a restart. A later
//! reply in a chat with kept chunks queues behind them, so the chat reads in order. A chunk is
//! removed (flushed) right after Telegram took it, so it is sent once; only a crash between the
//! two could send it again.
//!
//! [`Delivery::Must`]: super::outbox::Delivery::Must

use super::context::Sender;
use super::outbox::{Author, SendError, Target};
use super::render::markdown_to_html;
use super::state::{
    Kept, Made, all_undelivered, chat_of_undelivered_key, now_ms, undelivered_key, undelivered_of,
};
use crate::bot::{BotError, FrontState};
use std::sync::atomic::Ordering::Relaxed;

/// Whether `chat` has kept chunks (a new reply then queues behind them).
pub fn waiting(state: &FrontState, chat: i64) -> bool {
    state
        .scan(&undelivered_of(chat))
        .is_ok_and(|v| !v.is_empty())
}

/// The chats with kept chunks.
pub fn chats(state: &FrontState) -> Result<Vec<i64>, BotError> {
    let mut chats: Vec<i64> = state
        .scan(&all_undelivered())?
        .iter()
        .filter_map(|(k, _)| chat_of_undelivered_key(k))
        .collect();
    chats.dedup();
    Ok(chats)
}

/// One message of a final reply: its Markdown and the buttons under it.
pub type Item = (String, Option<Made>);

/// Keep `items` (in order) of a final reply to `target` for later, the first one answering
/// `reply_to`; flushed. Logged and counted.
pub fn keep(s: &Sender, target: Target, items: &[Item], reply_to: Option<i64>) {
    // After whatever the chat already has kept, even within the same millisecond: the keys
    // give the order.
    let newest = s
        .state
        .scan(&undelivered_of(target.chat))
        .ok()
        .and_then(|v| v.last().map(|(_, k)| k.kept_ms));
    let kept_ms = now_ms().max(newest.map_or(0, |ms| ms + 1));
    let stored = items
        .iter()
        .enumerate()
        .try_for_each(|(i, (text, buttons))| {
            let kept = Kept {
                text: text.clone(),
                group: target.group,
                reply_to: reply_to.filter(|_| i == 0),
                buttons: buttons.clone(),
                kept_ms,
            };
            s.state
                .put(&undelivered_key(target.chat, kept_ms, i), &kept)
        });
    match stored.and_then(|()| s.state.flush()) {
        Ok(()) => {
            s.metrics.undelivered.fetch_add(1, Relaxed);
            tracing::warn!(
                chat = target.chat,
                messages = items.len(),
                "telegram did not take a final reply; kept to send again"
            );
        }
        Err(e) => {
            tracing::error!(chat = target.chat, error = %e, "could not keep an undelivered reply; it is lost");
        }
    }
}

/// Send what is kept for `chat`, oldest first, until done or Telegram fails again. Called by
/// the chat's worker only, so no two tasks send one chunk. Returns true when nothing is left.
pub async fn redeliver(s: &Sender, chat: i64) -> bool {
    let kept = match s.state.scan(&undelivered_of(chat)) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(chat, error = %e, "could not read the undelivered replies");
            return false;
        }
    };
    for (key, k) in kept {
        if s.shutdown.is_cancelled() {
            return false;
        }
        let target = Target {
            chat,
            group: k.group,
        };
        let html = markdown_to_html(&k.text);
        let html = (!html.trim().is_empty()).then_some(html);
        let markup = k.buttons.as_ref().map(|m| &m.markup);
        let sent = s
            .out
            .send_with(
                target,
                Author::Bot,
                html.as_deref(),
                &k.text,
                k.reply_to,
                markup,
            )
            .await;
        match sent {
            Ok(id) => {
                if let Some(m) = &k.buttons {
                    m.sent_as(&s.state, id);
                }
                s.metrics.redelivered.fetch_add(1, Relaxed);
                tracing::info!(
                    chat,
                    late_ms = now_ms() - k.kept_ms,
                    "sent a reply kept from an outage"
                );
            }
            Err(SendError::Api(e)) if retry_later(&e) => {
                tracing::warn!(chat, error = %e, "telegram still fails; the reply stays kept");
                return false;
            }
            Err(e) => {
                // A human has the chat now, or Telegram refuses it for good (blocked, chat
                // gone): it cannot be delivered, and trying again would not change that.
                tracing::warn!(chat, error = %e, "dropping a kept reply that cannot be delivered");
            }
        }
        // Removed and flushed right away: a second pass must not send it again.
        if let Err(e) = s.state.remove(&key).and_then(|()| s.state.flush()) {
            tracing::error!(chat, error = %e, "could not remove a delivered reply");
            return false;
        }
    }
    true
}

/// Whether a failed final send is worth trying later (the outage kind), not a refusal.
pub fn retry_later(e: &super::api::ApiError) -> bool {
    e.is_transient() || matches!(e, super::api::ApiError::RetryAfter(_))
}

/// How often kept replies are tried again: the time one call's attempts take to give up
/// (`retry_base_ms` doubled `max_attempts` times), at most 30 s.
pub fn every(p: &super::config::Pacing) -> std::time::Duration {
    let ms = p
        .retry_base_ms
        .saturating_mul(1 << p.max_attempts.min(16))
        .clamp(p.retry_base_ms.max(10), 30_000);
    std::time::Duration::from_millis(ms)
}
