//! Inline buttons the bot sends. A keyboard is stored first ([`Keyboard`], under the chat and
//! a random nonce); a button's callback data names only that nonce and the button's place
//! (`k:<nonce>:<i>`), so what a press does is decided by the stored record, never by the data
//! (the presses are [`super::presses`]'). This module only makes keyboards, so handoff and the
//! reply stream can use it without importing what acts on presses.
//!
//! The buttons: "did you mean" choices (answered through [`crate::bot::Bot::choose`] by the
//! chat's worker, like a message), "Talk to a human" under "not sure", 👍 👎 under a short
//! "Did this help?" follow-up (per the persona's `ratings:`; thanked for once answered), and
//! take / hand back / close under handoff posts in the operators' chat.

pub use super::state::{Action, Keyboard, Made};
use super::state::{keyboard_key, keyboards_of, now_ms};
use crate::bot::{Bot, BotError, FrontState, TurnOutcome};
use crate::chat::{Rating, SessionId};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

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
pub fn for_reply(
    bot: &Bot,
    state: &FrontState,
    chat: i64,
    session: SessionId,
    o: &TurnOutcome,
) -> ReplyButtons {
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
        make(state, chat, Some(session), rows, used_text)
            .inspect_err(|e| tracing::error!(chat, error = %e, "could not store a reply's buttons; sending it without"))
            .ok()
    };
    let mut rating = Vec::new();
    if bot.session_persona(session).ratings().asks_after(&o.source) {
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

pub(super) fn label(text: &str) -> String {
    if text.chars().count() <= LABEL_MAX {
        return text.to_string();
    }
    text.chars().take(LABEL_MAX - 1).collect::<String>() + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_cut_with_an_ellipsis() {
        assert_eq!(label("short"), "short");
        let long = "x".repeat(100);
        assert_eq!(label(&long).chars().count(), LABEL_MAX);
        assert!(label(&long).ends_with('…'));
    }
}
