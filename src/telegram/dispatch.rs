//! One update, by kind. A message is checked (bots, the operators' chat, access rules, `/stop`,
//! what it holds) and stored as pending for its chat's worker; an edit replaces a message
//! still waiting for its answer; a button press goes to [`super::presses`]; the bot being added
//! to or removed from a chat is logged; channel posts, service messages and update kinds the
//! bot does not use are skipped without a reply.

use super::access::Verdict;
use super::context::Context;
use super::error::TelegramError;
use super::incoming::{
    Media, chat_id, is_service, message_id, parse_command, sender_id, target_of, text_of,
};
use super::state::{Pending, answering_key, pending_key, pending_prefix};
use std::sync::atomic::Ordering::Relaxed;
use teloxide::types::{ChatMemberUpdated, Message, Update, UpdateKind};

/// Handle one update; returns the chat to wake when a message was stored as pending.
pub async fn handle_update(s: &Context, u: Update) -> Result<Option<i64>, TelegramError> {
    let update_id = i64::from(u.id.0);
    match u.kind {
        UpdateKind::Message(m) => on_message(s, update_id, m).await,
        UpdateKind::EditedMessage(m) => on_edit(s, &m),
        UpdateKind::CallbackQuery(q) => super::presses::on_press(s, update_id, q).await,
        UpdateKind::MyChatMember(c) => {
            on_membership(s, &c);
            Ok(None)
        }
        UpdateKind::ChannelPost(m) | UpdateKind::EditedChannelPost(m) => {
            tracing::debug!(chat = chat_id(&m), "channel post ignored");
            Ok(None)
        }
        UpdateKind::Error(raw) => {
            let kind = raw
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
                .unwrap_or_default();
            tracing::warn!(
                update = update_id,
                kind,
                "skipping an update teloxide could not read"
            );
            Ok(None)
        }
        _ => {
            tracing::debug!(update = update_id, "update of a kind the bot does not use");
            Ok(None)
        }
    }
}

/// A new message.
async fn on_message(
    s: &Context,
    update_id: i64,
    msg: Message,
) -> Result<Option<i64>, TelegramError> {
    if super::incoming::from_bot(&msg) {
        return Ok(None);
    }
    if Some(chat_id(&msg)) == s.cfg().operators_chat {
        s.handoffs.from_operator(&msg).await;
        return Ok(None);
    }
    if is_service(&msg) {
        // Joins, leaves, pins, title changes: nobody asked the bot anything.
        tracing::debug!(chat = chat_id(&msg), "service message ignored");
        return Ok(None);
    }
    let me = s.me();
    let target = target_of(&msg);
    match s.access.check(&msg, &me) {
        Verdict::Answer => {}
        Verdict::NotAddressed => return Ok(None),
        Verdict::Refused => {
            s.metrics().refused.fetch_add(1, Relaxed);
            tracing::info!(
                chat = target.chat,
                user = sender_id(&msg),
                "refused a message (not allowed)"
            );
            if !s.cfg().refusal.is_empty() {
                s.say(target, &s.cfg().refusal).await;
            }
            return Ok(None);
        }
        Verdict::RateLimited { notify } => {
            s.metrics().refused.fetch_add(1, Relaxed);
            if notify {
                s.say(target, &s.cfg().rate_limit.notice).await;
            }
            return Ok(None);
        }
    }
    let text = text_of(&msg);
    if let Some((cmd, _)) = parse_command(text)
        && cmd == "stop"
    {
        // Acts at once, even while a reply is being written.
        if let Some(w) = s.running_worker(target.chat) {
            w.cancel_turn();
        }
        s.say(target, "Stopped.").await;
        return Ok(None);
    }
    if text.trim().is_empty() {
        let media = Media::of(&msg);
        tracing::info!(
            chat = target.chat,
            kind = media.name(),
            "a message without text"
        );
        s.metrics().media_in.fetch_add(1, Relaxed);
        s.say(target, &media.reply()).await;
        return Ok(None);
    }
    s.metrics().messages_in.fetch_add(1, Relaxed);
    s.metrics().queue_depth.fetch_add(1, Relaxed);
    let chat = target.chat;
    s.state().put(
        &pending_key(chat, update_id),
        &Pending {
            update_id,
            message: msg,
            choice: None,
        },
    )?;
    Ok(Some(chat))
}

/// An edited message: while the original still waits for its answer (not yet part of a turn),
/// the edit replaces it, so the answer is to what the user meant. Once it is being answered or
/// answered, the edit is ignored: the conversation has moved on, and answering twice would
/// confuse more than it helps.
fn on_edit(s: &Context, msg: &Message) -> Result<Option<i64>, TelegramError> {
    let chat = chat_id(msg);
    let under_way = s
        .state()
        .get(&answering_key(chat))?
        .map(|a| a.keys)
        .unwrap_or_default();
    for (key, mut p) in s.state().scan(&pending_prefix(chat))? {
        if message_id(&p.message) != message_id(msg) || p.choice.is_some() {
            continue;
        }
        if under_way.iter().any(|k| k == key.name()) {
            break;
        }
        tracing::info!(chat, "a waiting message was edited; answering the edit");
        p.message = msg.clone();
        s.state().put(&key, &p)?;
        s.metrics().edits_in.fetch_add(1, Relaxed);
        return Ok(None);
    }
    tracing::debug!(chat, "edit of a message already answered ignored");
    s.metrics().edits_ignored.fetch_add(1, Relaxed);
    Ok(None)
}

/// The bot's own membership changed: added to a group, removed, blocked by a user.
fn on_membership(s: &Context, c: &ChatMemberUpdated) {
    let chat = c.chat.id.0;
    let now = &c.new_chat_member;
    if now.is_present() {
        tracing::info!(chat, "the bot was added to a chat (or unblocked)");
    } else {
        tracing::info!(chat, "the bot was removed from a chat (or blocked)");
        s.metrics().removed.fetch_add(1, Relaxed);
    }
}
