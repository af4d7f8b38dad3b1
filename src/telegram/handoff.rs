//! Human handoff: [`start`] puts a chat in `human` state (stored, so it survives restarts),
//! tells the customer, and posts the recent transcript to `operators_chat`. While a chat is in
//! that state the outbox refuses bot-authored text to it and customer messages are forwarded to
//! the operators. An operator's reply to a relayed post goes to the customer; `/bot` as such a
//! reply (or `/bot <chat id>`), or the timeout ([`expiry_loop`]), hands the chat back. What the
//! customer and the operators say meanwhile is stored in the chat's session like any turn, the
//! operators' replies marked with the operator's name.
//!
//! [`start`] is the one entry point: `/human` calls it, and so can a persona rule whose action
//! is a handoff.

use super::api::Message;
use super::outbox::{Author, SendError, Target};
use super::service::Shared;
use super::split::{CHUNK_BUDGET, split_markdown};
use super::state::{HANDOFF_PREFIX, Handoff, handoff_key, now_ms, relay_key};
use super::worker::{session_of, text_of};
use crate::chat::Role;
use crate::store::StoredMessage;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Longest wait between two looks at the stored deadlines: a safety net, since the loop is
/// also woken when a handoff starts.
const RECHECK: Duration = Duration::from_secs(30);

fn target(chat: i64) -> Target {
    Target {
        chat,
        group: chat < 0,
    }
}

/// Send `text` to `chat` as the handoff machinery (not suppressed by the handoff itself).
async fn tell(s: &Shared, chat: i64, text: &str) -> Result<i64, SendError> {
    s.out
        .send(target(chat), Author::Service, None, text, None)
        .await
}

/// Whether `chat` is handled by a human now (an expired handoff ends here).
pub fn active(s: &Shared, chat: i64) -> bool {
    match s.store.kv_get::<Handoff>(&handoff_key(chat)) {
        Ok(Some(h)) => h.until_ms.is_none_or(|u| u > now_ms()),
        _ => false,
    }
}

/// Hand `chat` to a human for `reason` (`/human`, a rule id, ...). Idempotent.
pub async fn start(s: &Shared, chat: i64, reason: &str) {
    if active(s, chat) {
        let _ = tell(
            s,
            chat,
            "A colleague already has this conversation; they will answer here.",
        )
        .await;
        return;
    }
    let minutes = s.cfg.handoff_timeout_minutes;
    let h = Handoff {
        since_ms: now_ms(),
        reason: reason.to_string(),
        until_ms: (minutes > 0.0).then(|| now_ms() + (minutes * 60_000.0).round() as i64),
    };
    if let Err(e) = s
        .store
        .kv_put(&handoff_key(chat), &h)
        .and_then(|_| s.store.flush())
    {
        tracing::error!(chat, error = %e, "could not store the handoff");
        return;
    }
    s.handoff_started.notify_one();
    if let Some(w) = s.running_worker(chat) {
        w.cancel_turn();
    }
    s.metrics.handoffs.fetch_add(1, Relaxed);
    tracing::info!(chat, reason, "chat handed to a human");
    let note = if s.cfg.operators_chat.is_some() {
        "I have asked a human colleague to take over. They will answer here soon."
    } else {
        "I have stopped answering so a human colleague can take over."
    };
    let _ = tell(s, chat, note).await;
    let Some(ops) = s.cfg.operators_chat else {
        return;
    };
    let transcript = recent_transcript(s, chat);
    let post = format!(
        "Chat {chat} asked for a human ({reason}). Reply to this message to answer the customer; reply /bot to hand the chat back to the bot.\n\n{transcript}"
    );
    post_to_operators(s, ops, chat, &post).await;
}

/// Give `chat` back to the bot.
pub async fn end(s: &Shared, chat: i64, why: &str) {
    if s.store
        .kv_get::<Handoff>(&handoff_key(chat))
        .ok()
        .flatten()
        .is_none()
    {
        return;
    }
    if let Err(e) = s
        .store
        .kv_remove(&handoff_key(chat))
        .and_then(|_| s.store.flush())
    {
        tracing::error!(chat, error = %e, "could not end the handoff");
        return;
    }
    tracing::info!(chat, why, "chat handed back to the bot");
    let _ = tell(s, chat, "You are talking to the bot again. How can I help?").await;
    if let Some(ops) = s.cfg.operators_chat {
        let _ = tell(
            s,
            ops,
            &format!("Chat {chat} is back with the bot ({why})."),
        )
        .await;
    }
}

fn recent_transcript(s: &Shared, chat: i64) -> String {
    let Ok(sid) = session_of(s, chat) else {
        return String::new();
    };
    let msgs = s
        .store
        .recent_messages(sid, s.cfg.handoff_transcript)
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

async fn post_to_operators(s: &Shared, ops: i64, chat: i64, text: &str) {
    for chunk in split_markdown(text, CHUNK_BUDGET) {
        match tell(s, ops, &chunk).await {
            Ok(id) => {
                let _ = s.store.kv_put(&relay_key(id), &chat);
            }
            Err(e) => tracing::error!(chat, error = %e, "could not post to the operators chat"),
        }
    }
    let _ = s.store.flush();
}

/// Append a message of the handoff (the customer's, or an operator's answer) to the chat's
/// session, flushed, so it is in `/export` and in the bot's history once the chat is back.
fn record(s: &Shared, chat: i64, msg: StoredMessage) {
    let stored = session_of(s, chat).and_then(|sid| {
        s.store.append_message(sid, msg)?;
        Ok(s.store.flush()?)
    });
    if let Err(e) = stored {
        tracing::error!(chat, error = %e, "could not store a message of the handoff");
    }
}

/// Customer messages during a handoff (`text`: the burst ending with `last`, joined as for a
/// turn): stored in the session, then forwarded to the operators.
pub async fn forward_to_operators(s: &Shared, last: &Message, text: &str) {
    let chat = last.chat.id;
    record(s, chat, StoredMessage::new(Role::User, text));
    let Some(ops) = s.cfg.operators_chat else {
        return;
    };
    let name = last
        .from
        .as_ref()
        .map(|u| u.first_name.as_str())
        .unwrap_or("customer");
    post_to_operators(s, ops, chat, &format!("Chat {chat} ({name}): {text}")).await;
}

/// A message in the operators chat: relay a reply, or hand a chat back with `/bot`.
pub async fn from_operator(s: &Shared, msg: &Message) {
    let text = text_of(msg).trim();
    let relayed: Option<i64> = msg
        .reply_to_message
        .as_ref()
        .and_then(|r| s.store.kv_get(&relay_key(r.message_id)).ok().flatten());
    if let Some((cmd, args)) = super::commands::parse(text)
        && cmd == "bot"
    {
        match relayed.or_else(|| args.parse().ok()) {
            Some(chat) => end(s, chat, "operator").await,
            None => {
                let _ = tell(
                    s,
                    msg.chat.id,
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
    match tell(s, chat, text).await {
        Ok(_) => {
            tracing::info!(chat, "operator reply relayed");
            let mut answer = StoredMessage::new(Role::Assistant, text);
            answer.operator = Some(
                msg.from
                    .as_ref()
                    .map(|u| u.first_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "Operator".into()),
            );
            record(s, chat, answer);
        }
        Err(e) => {
            tracing::error!(chat, error = %e, "could not relay an operator reply");
            let _ = tell(
                s,
                msg.chat.id,
                &format!("Could not deliver that to chat {chat}: {e}"),
            )
            .await;
        }
    }
}

/// Hand chats back when their handoff times out: sleeps until the nearest stored deadline
/// (re-read when a handoff starts, and at least every [`RECHECK`]).
pub async fn expiry_loop(s: Arc<Shared>) {
    loop {
        let wait = match end_expired(&s).await {
            Some(until) => Duration::from_millis((until - now_ms()).max(0) as u64).min(RECHECK),
            None => RECHECK,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = s.handoff_started.notified() => {}
            _ = s.shutdown.cancelled() => return,
        }
    }
}

/// End the handoffs whose time is up; returns the nearest deadline still ahead.
async fn end_expired(s: &Shared) -> Option<i64> {
    let all = match s.store.kv_scan::<Handoff>(HANDOFF_PREFIX) {
        Ok(all) => all,
        Err(e) => {
            tracing::error!(error = %e, "could not read the handoffs");
            return None;
        }
    };
    let mut next: Option<i64> = None;
    for (key, h) in all {
        let (Some(chat), Some(until)) = (
            key.strip_prefix(HANDOFF_PREFIX)
                .and_then(|c| c.parse::<i64>().ok()),
            h.until_ms,
        ) else {
            continue;
        };
        if until <= now_ms() {
            end(s, chat, "timeout").await;
        } else {
            next = Some(next.map_or(until, |n| n.min(until)));
        }
    }
    next
}
