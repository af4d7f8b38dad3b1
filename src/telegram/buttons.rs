//! Inline buttons and their presses (`callback_query`). A keyboard the bot sends is stored
//! first ([`Keyboard`], under the chat and a random nonce); a button's callback data names only
//! that nonce and the button's place (`k:<nonce>:<i>`), so what a press does is decided by the
//! stored record, never by the data. A press is acted on only when its record exists in the
//! chat it was pressed in, belongs to that very message, is not older than [`MAX_AGE_MS`], and
//! (for customers' buttons) the chat still talks in the session it was made for. Anything else
//! (an old message, another chat, tampered data) gets "this button has expired". Every press is
//! answered with `answerCallbackQuery`, or Telegram keeps a spinner on the button.
//!
//! The buttons: "did you mean" choices (answered through [`crate::bot::Bot::choose`] by the
//! chat's worker, like a message), "Talk to a human" under "not sure", 👍 👎 under a short
//! "Did this help?" follow-up (per the persona's `ratings:`; thanked for once answered), and
//! take / hand back / close under handoff posts in the operators' chat.

use super::incoming::{chat_id, message_id};
use super::outbox::{Author, Delivery, Target};
use super::service::{Service, Shared, TelegramError};
use super::state::{Pending, keyboard_key, keyboards_of, now_ms, pending_key};
use crate::bot::{BotError, FrontState, TurnOutcome};
use crate::chat::{Rating, SessionId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering::Relaxed;
use teloxide::types::{CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup};

/// What a press of a button the bot no longer knows gets.
pub const EXPIRED: &str = "This button has expired.";

/// The short follow-up under an answer that carries the rating buttons.
pub const RATING_QUESTION: &str = "Did this help?";

/// What the follow-up reads once it was answered (its buttons go with the edit).
pub const RATING_THANKS: &str = "Thanks for your feedback!";

/// Buttons older than this are expired (a week).
pub const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Longest button label (Telegram cuts long labels anyway).
const LABEL_MAX: usize = 60;

/// What a button does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action {
    /// "Did you mean": answer with this FAQ entry.
    Choose {
        /// The FAQ entry id.
        entry: String,
    },
    /// Hand the chat to a human.
    Human,
    /// Rate the bot's reply `seq`.
    Rate {
        /// The reply's sequence number in the session.
        seq: u64,
        /// 👍 or 👎.
        rating: Rating,
    },
    /// Operators: take the customer chat.
    Take {
        /// The customer chat.
        chat: i64,
    },
    /// Operators: give the customer chat back to the bot.
    HandBack {
        /// The customer chat.
        chat: i64,
    },
    /// Operators: end the customer's conversation (the next message starts a new one).
    Close {
        /// The customer chat.
        chat: i64,
    },
}

/// A keyboard the bot sent, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyboard {
    /// The message carrying it (set once it is sent).
    pub message: Option<i64>,
    /// Customers' buttons: the session they act on.
    pub session: Option<SessionId>,
    /// Unix milliseconds when it was made.
    pub made_ms: i64,
    /// What each button does, in callback-data order.
    pub actions: Vec<Action>,
    /// The text the message takes once a button was used (the rating follow-up); none: only
    /// the buttons go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_text: Option<String>,
}

/// The buttons of a finished reply.
#[derive(Debug, Clone, Default)]
pub struct ReplyButtons {
    /// Under the reply's last chunk: "did you mean" choices, "Talk to a human".
    pub under: Option<Made>,
    /// 👍 / 👎, under a short follow-up asking [`RATING_QUESTION`]: a question of its own
    /// rather than buttons under the answer, so it is clear what they rate, the answer's text
    /// stays as stored, and the question can be thanked for once answered.
    pub rating: Option<Made>,
}

/// One button to make: its label and action.
pub type Button = (String, Action);

/// A keyboard made and stored, not yet attached to a message (kept with an undelivered reply
/// until it is sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Made {
    /// The markup to send.
    pub markup: InlineKeyboardMarkup,
    chat: i64,
    nonce: String,
}

impl Made {
    /// Record which message carries the keyboard (a press from any other is expired).
    pub fn sent_as(&self, state: &FrontState, message: i64) {
        let key = keyboard_key(self.chat, &self.nonce);
        let stored = state.get(&key).and_then(|k| match k {
            Some(mut k) => {
                k.message = Some(message);
                state.put(&key, &k)
            }
            None => Ok(()),
        });
        if let Err(e) = stored {
            tracing::warn!(chat = self.chat, error = %e, "could not record a keyboard's message");
        }
    }
}

/// Store `rows` of buttons for `chat` (about `session`, for customers) and make their markup;
/// once one is used, the message reads `used_text` (none: only the buttons go). Keyboards of
/// this chat older than [`MAX_AGE_MS`] are dropped meanwhile.
pub fn make(
    state: &FrontState,
    chat: i64,
    session: Option<SessionId>,
    rows: Vec<Vec<Button>>,
    used_text: Option<&str>,
) -> Result<Made, BotError> {
    let nonce = format!("{:016x}", rand::random::<u64>());
    let now = now_ms();
    for (key, k) in state.scan(&keyboards_of(chat))? {
        if now - k.made_ms > MAX_AGE_MS {
            state.remove(&key)?;
        }
    }
    let mut actions = Vec::new();
    let mut markup = Vec::new();
    for row in rows {
        let mut buttons = Vec::new();
        for (label, action) in row {
            let data = format!("k:{nonce}:{}", actions.len());
            buttons.push(InlineKeyboardButton::callback(label, data));
            actions.push(action);
        }
        markup.push(buttons);
    }
    let record = Keyboard {
        message: None,
        session,
        made_ms: now,
        actions,
        used_text: used_text.map(str::to_string),
    };
    state.put(&keyboard_key(chat, &nonce), &record)?;
    Ok(Made {
        markup: InlineKeyboardMarkup::new(markup),
        chat,
        nonce,
    })
}

/// The buttons of a finished reply in `chat`: its "did you mean" choices and "Talk to a human"
/// under "not sure" under it, and "Did this help?" after it when the persona's `ratings:` asks
/// for it.
pub fn for_reply(s: &Shared, chat: i64, session: SessionId, o: &TurnOutcome) -> ReplyButtons {
    let mut rows: Vec<Vec<Button>> = o
        .choices
        .iter()
        .map(|c| {
            let label = label(&format!("{}. {}", c.number, c.question));
            vec![(
                label,
                Action::Choose {
                    entry: c.id.clone(),
                },
            )]
        })
        .collect();
    if o.offer_handoff {
        rows.push(vec![("Talk to a human".into(), Action::Human)]);
    }
    let stored = |rows: Vec<Vec<Button>>, used_text| {
        if rows.is_empty() {
            return None;
        }
        make(&s.state, chat, Some(session), rows, used_text)
            .inspect_err(|e| tracing::error!(chat, error = %e, "could not store a reply's buttons; sending it without"))
            .ok()
    };
    let mut rating = Vec::new();
    if s.bot
        .session_persona(session)
        .ratings()
        .asks_after(&o.source)
    {
        let rate = |rating| Action::Rate { seq: o.seq, rating };
        rating.push(vec![
            ("👍 Helped".into(), rate(Rating::Up)),
            ("👎 Didn't help".into(), rate(Rating::Down)),
        ]);
    }
    ReplyButtons {
        under: stored(rows, None),
        rating: stored(rating, Some(RATING_THANKS)),
    }
}

/// The operators' buttons under a handoff post about `chat`.
pub fn for_handoff(state: &FrontState, operators: i64, chat: i64) -> Option<Made> {
    let row = vec![
        ("Take".into(), Action::Take { chat }),
        ("Hand back to bot".into(), Action::HandBack { chat }),
        ("Close".into(), Action::Close { chat }),
    ];
    make(state, operators, None, vec![row], None)
        .inspect_err(
            |e| tracing::error!(chat, error = %e, "could not store the operators' buttons"),
        )
        .ok()
}

fn label(text: &str) -> String {
    if text.chars().count() <= LABEL_MAX {
        return text.to_string();
    }
    text.chars().take(LABEL_MAX - 1).collect::<String>() + "…"
}

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
fn valid(s: &Shared, q: &CallbackQuery) -> Option<(Target, i64, String, Keyboard, Action)> {
    let msg = q.message.as_ref()?.regular_message()?;
    let (nonce, index) = parse(q.data.as_deref()?)?;
    let chat = chat_id(msg);
    let kb = s.state.get(&keyboard_key(chat, nonce)).ok().flatten()?;
    if kb.message != Some(message_id(msg)) || now_ms() - kb.made_ms > MAX_AGE_MS {
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
    svc: &Service,
    update_id: i64,
    q: CallbackQuery,
) -> Result<Option<i64>, TelegramError> {
    let s = svc.shared();
    s.metrics.button_presses.fetch_add(1, Relaxed);
    let Some((target, msg_id, nonce, kb, action)) = valid(s, &q) else {
        s.metrics.buttons_expired.fetch_add(1, Relaxed);
        tracing::info!(
            user = q.from.id.0,
            "an expired or unknown button was pressed"
        );
        answer(s, &q, Some(EXPIRED)).await;
        return Ok(None);
    };
    let chat = target.chat;
    let used = |s: &Shared| {
        // Single use: the record goes, and so do the buttons.
        let _ = s.state.remove(&keyboard_key(chat, &nonce));
    };
    match action {
        Action::Choose { entry } => {
            used(s);
            let Some(msg) = q.message.as_ref().and_then(|m| m.regular_message()) else {
                return Ok(None);
            };
            s.state.put(
                &pending_key(chat, update_id),
                &Pending {
                    update_id,
                    message: msg.clone(),
                    choice: Some(entry),
                },
            )?;
            s.metrics.messages_in.fetch_add(1, Relaxed);
            s.metrics.queue_depth.fetch_add(1, Relaxed);
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
                        Rating::Up => &s.metrics.ratings_up,
                        Rating::Down => &s.metrics.ratings_down,
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
async fn answer(s: &Shared, q: &CallbackQuery, text: Option<&str>) {
    if let Err(e) = s.out.answer_callback(&q.id.0, text).await {
        tracing::warn!(error = %e, "could not answer a button press");
    }
}

/// Remove the buttons of a message whose button was used; with `used_text`, by editing the
/// message to read it (the rating follow-up: "Thanks for your feedback!").
async fn clear(s: &Shared, target: Target, message: i64, used_text: Option<&str>) {
    if let Some(text) = used_text {
        let edited = s
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
    if let Err(e) = s.out.set_buttons(target, message, None).await {
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

    #[test]
    fn labels_are_cut_with_an_ellipsis() {
        assert_eq!(label("short"), "short");
        let long = "x".repeat(100);
        assert_eq!(label(&long).chars().count(), LABEL_MAX);
        assert!(label(&long).ends_with('…'));
    }
}
