//! Presses of the bot's inline buttons (`callback_query`): a press is acted on only when its
//! stored [`Keyboard`] exists in the chat it was pressed in, belongs to that very message, is
//! not older than [`MAX_AGE_MS`], and (for customers' buttons) the chat still talks in the
//! session it was made for; anything else (an old message, another chat, tampered data) gets
//! [`EXPIRED`]. Every press is answered with `answerCallbackQuery`, or Telegram keeps a spinner
//! on the button. The keyboards themselves are made in [`super::buttons`].

use super::buttons::{EXPIRED, MAX_AGE_MS, RATING_THANKS};
use super::context::Context;
use super::error::TelegramError;
use super::incoming::{chat_id, message_id};
use super::outbox::{Author, Delivery, Target};
use super::state::{Action, Keyboard, Pending, keyboard_key, now_ms, pending_key};
use crate::chat::Rating;
use std::sync::atomic::Ordering::Relaxed;
use teloxide::types::CallbackQuery;

/// `k:<nonce>:<i>` -> (nonce, i). `None` for anything else (tampered or foreign data).
fn parse(data: &str) -> Option<(&str, usize)> {
    let rest = data.strip_prefix("k:")?;
    let (nonce, index) = rest.split_once(':')?;
    if nonce.len() != 16 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((nonce, index.parse().ok()?))
}

/// The action of a press, when it is valid; `None`: expired.
fn valid(s: &Context, q: &CallbackQuery) -> Option<(Target, i64, String, Keyboard, Action)> {
    let msg = q.message.as_ref()?.regular_message()?;
    let (nonce, index) = parse(q.data.as_deref()?)?;
    let chat = chat_id(msg);
    let kb = s.state().get(&keyboard_key(chat, nonce)).ok().flatten()?;
    // The keyboard's message is recorded when Telegram's answer to the send comes back, and a
    // press can beat that: the fake Bot API's test pressed a button within 3 ms of the send,
    // and the press was refused as expired (once in four full runs). Until it is recorded, the
    // press is taken as from the keyboard's own message: the random nonce is in no other
    // message's buttons, and a keyboard kept with an undelivered reply is in none yet.
    if kb.message.is_some_and(|m| m != message_id(msg)) || now_ms() - kb.made_ms > MAX_AGE_MS {
        return None;
    }
    if let Some(session) = kb.session
        && !s.chats.is_current(chat, session)
    {
        return None;
    }
    let action = kb.actions.get(index)?.clone();
    let target = super::incoming::target_of(msg);
    Some((target, message_id(msg), nonce.to_string(), kb, action))
}

/// A button press: answered, and acted on only when the bot made the button for this message.
/// Returns the chat to wake when a choice was queued for its worker.
pub async fn on_press(
    s: &Context,
    update_id: i64,
    q: CallbackQuery,
) -> Result<Option<i64>, TelegramError> {
    s.metrics().button_presses.fetch_add(1, Relaxed);
    let Some((target, msg_id, nonce, kb, action)) = valid(s, &q) else {
        s.metrics().buttons_expired.fetch_add(1, Relaxed);
        tracing::info!(
            user = q.from.id.0,
            "an expired or unknown button was pressed"
        );
        answer(s, &q, Some(EXPIRED)).await;
        return Ok(None);
    };
    let chat = target.chat;
    let used = |s: &Context| {
        // Single use: the record goes, and so do the buttons.
        let _ = s.state().remove(&keyboard_key(chat, &nonce));
    };
    match action {
        Action::Choose { entry } => {
            used(s);
            let Some(msg) = q.message.as_ref().and_then(|m| m.regular_message()) else {
                return Ok(None);
            };
            s.state().put(
                &pending_key(chat, update_id),
                &Pending {
                    update_id,
                    message: msg.clone(),
                    choice: Some(entry),
                },
            )?;
            s.metrics().messages_in.fetch_add(1, Relaxed);
            s.metrics().queue_depth.fetch_add(1, Relaxed);
            answer(s, &q, None).await;
            clear(s, target, msg_id, kb.used_text.as_deref()).await;
            Ok(Some(chat))
        }
        Action::Human => {
            used(s);
            answer(s, &q, None).await;
            clear(s, target, msg_id, kb.used_text.as_deref()).await;
            s.hand_to_human(chat, "button").await;
            Ok(None)
        }
        Action::Rate { seq, rating } => {
            let Some(session) = kb.session else {
                answer(s, &q, Some(EXPIRED)).await;
                return Ok(None);
            };
            match s.bot.rate(session, seq, rating) {
                Ok(()) => {
                    used(s);
                    let counter = match rating {
                        Rating::Up => &s.metrics().ratings_up,
                        Rating::Down => &s.metrics().ratings_down,
                    };
                    counter.fetch_add(1, Relaxed);
                    tracing::info!(chat, seq, rating = rating.emoji(), "an answer was rated");
                    answer(s, &q, Some(RATING_THANKS)).await;
                    clear(s, target, msg_id, kb.used_text.as_deref()).await;
                }
                Err(e) => {
                    tracing::error!(chat, error = %e, "could not store a rating");
                    answer(
                        s,
                        &q,
                        Some("Sorry, I could not save that. Please try again."),
                    )
                    .await;
                }
            }
            Ok(None)
        }
        Action::Take { chat: customer } => {
            let who = q.from.first_name.clone();
            let text = if s.handoffs.active(customer) {
                s.say(target, &format!("{who} is taking chat {customer}."))
                    .await;
                format!("You have chat {customer}. Reply to its messages to answer.")
            } else {
                "That chat is back with the bot.".to_string()
            };
            answer(s, &q, Some(&text)).await;
            Ok(None)
        }
        Action::HandBack { chat: customer } | Action::Close { chat: customer } => {
            let close = matches!(action, Action::Close { .. });
            used(s);
            if s.handoffs.active(customer) {
                answer(s, &q, None).await;
                if close {
                    s.handoffs.close(customer).await;
                } else {
                    s.handoffs.end(customer, "operator").await;
                }
            } else {
                answer(s, &q, Some("That chat is already back with the bot.")).await;
            }
            clear(s, target, msg_id, kb.used_text.as_deref()).await;
            Ok(None)
        }
    }
}

/// Answer the press (a notice when `text` is given).
async fn answer(s: &Context, q: &CallbackQuery, text: Option<&str>) {
    if let Err(e) = s.send.out.answer_callback(&q.id.0, text).await {
        tracing::warn!(error = %e, "could not answer a button press");
    }
}

/// Remove the buttons of a message whose button was used; with `used_text`, by editing the
/// message to read it (the rating follow-up: "Thanks for your feedback!").
async fn clear(s: &Context, target: Target, message: i64, used_text: Option<&str>) {
    if let Some(text) = used_text {
        let edited = s
            .send
            .out
            .edit(
                target,
                Author::Bot,
                message,
                None,
                text,
                Delivery::Must,
                None,
            )
            .await;
        match edited {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(chat = target.chat, error = %e, "could not thank for a rating; removing the buttons only");
            }
        }
    }
    if let Err(e) = s.send.out.set_buttons(target, message, None).await {
        tracing::warn!(chat = target.chat, error = %e, "could not remove used buttons");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_data_parses() {
        assert_eq!(parse("k:0123456789abcdef:2"), Some(("0123456789abcdef", 2)));
        for bad in [
            "",
            "k:",
            "k:0123:1",
            "k:0123456789abcdeg:1",
            "x:0123456789abcdef:1",
            "k:0123456789abcdef:x",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
