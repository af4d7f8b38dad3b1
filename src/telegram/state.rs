//! What the Telegram front end keeps in its front-end state ([`Bot::front_state`]): chat ->
//! session mapping, pending incoming messages, the turn under way, final replies Telegram would
//! not take yet ([`Kept`]), the keyboards the bot sent ([`Keyboard`]), the update ids seen,
//! handoff state and operator relay posts. Keys live under `tg/` and say the type of their
//! value; every record is JSON. The records are defined here with their keys, so the modules
//! that write them ([`super::buttons`], [`super::undelivered`]) and the ones that only read
//! them import this leaf, not each other.
//!
//! [`Bot::front_state`]: crate::bot::Bot::front_state

use crate::bot::{BotError, FrontState, StateKey};
use crate::chat::{Rating, SessionId};
use serde::{Deserialize, Serialize};
use teloxide::types::{InlineKeyboardMarkup, Message};

/// The space of the Telegram front end's keys.
pub const SPACE: &str = "tg/";

/// Highest update id handled (the getUpdates offset).
pub fn offset_key() -> StateKey<i64> {
    StateKey::new("tg/offset")
}

/// How many update ids back a duplicate is still recognised.
pub const SEEN_WINDOW: i64 = 10_000;

/// Key of a handled update id (value: when, unix ms). Zero-padded, so keys sort by id.
pub fn seen_key(update_id: i64) -> StateKey<i64> {
    StateKey::new(format!("tg/seen/{update_id:020}"))
}

/// Forget the update ids handled (offset and claims), for a Bot API server that numbers its
/// updates from the start again (benchmarks run a fresh fake server each round).
pub fn forget_updates(state: &FrontState) -> Result<(), BotError> {
    state.remove(&offset_key())?;
    // '0' sorts right after '/'.
    state.remove_range(
        &StateKey::<i64>::new("tg/seen/"),
        &StateKey::new("tg/seen0"),
    )?;

    Ok(())
}

/// A chat's record: its current session and every session it ever had (for `/forget`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    /// Session the next turn goes to.
    pub session: Option<SessionId>,
    /// Every session of this chat, oldest first.
    pub sessions: Vec<SessionId>,
    /// Sessions started (names are `tg-<chat>` then `tg-<chat>-<n>`).
    pub resets: u32,
}

/// An incoming message (or button press) stored before it is answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// Update that carried it.
    pub update_id: i64,
    /// The message (teloxide's type, stored as the Bot API sent it). For a pressed "did you
    /// mean" button: the bot's message that carried the button.
    pub message: Message,
    /// A "did you mean" button pressed: the FAQ entry chosen ([`crate::bot::Bot::choose`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<String>,
}

/// A turn under way for some of a chat's pending messages: their text is stored as one user
/// message in `session` after `after_seq`. It stays until they are answered, so a restart that
/// finds them still pending answers the stored message instead of storing it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answering {
    /// The session of the turn.
    pub session: SessionId,
    /// The session's last message before the turn (0 = none).
    pub after_seq: u64,
    /// Pending keys of the messages the turn answers.
    pub keys: Vec<String>,
}

/// A chat in human handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// Unix milliseconds when it started.
    pub since_ms: i64,
    /// Why (`/human`, a persona rule id, ...).
    pub reason: String,
    /// Unix milliseconds when it ends by itself (None = only `/bot`).
    pub until_ms: Option<i64>,
}

/// Key of a chat's record.
pub fn chat_key(chat: i64) -> StateKey<ChatRecord> {
    StateKey::new(format!("tg/chat/{chat}"))
}

/// Prefix of every chat's pending messages.
pub fn all_pending() -> StateKey<Pending> {
    StateKey::new("tg/pending/")
}

/// Prefix of a chat's pending messages.
pub fn pending_prefix(chat: i64) -> StateKey<Pending> {
    StateKey::new(format!("tg/pending/{chat}/"))
}

/// Key of one pending message (update ids are zero-padded so keys sort in arrival order).
pub fn pending_key(chat: i64, update_id: i64) -> StateKey<Pending> {
    StateKey::new(format!("tg/pending/{chat}/{update_id:020}"))
}

/// Key of a chat's turn under way ([`Answering`]).
pub fn answering_key(chat: i64) -> StateKey<Answering> {
    StateKey::new(format!("tg/answering/{chat}"))
}

/// Prefix of the handoff states.
pub fn all_handoffs() -> StateKey<Handoff> {
    StateKey::new("tg/handoff/")
}

/// Key of a chat's handoff state.
pub fn handoff_key(chat: i64) -> StateKey<Handoff> {
    StateKey::new(format!("tg/handoff/{chat}"))
}

/// Key of a keyboard the bot sent to `chat` ([`Keyboard`]).
pub fn keyboard_key(chat: i64, nonce: &str) -> StateKey<Keyboard> {
    StateKey::new(format!("tg/keyboard/{chat}/{nonce}"))
}

/// Prefix of the keyboards the bot sent to `chat`.
pub fn keyboards_of(chat: i64) -> StateKey<Keyboard> {
    StateKey::new(format!("tg/keyboard/{chat}/"))
}

/// Key of an operator-chat post that relays to a customer chat (value: the chat).
pub fn relay_key(operator_message_id: i64) -> StateKey<i64> {
    StateKey::new(format!("tg/relay/{operator_message_id}"))
}

/// The store's owner of a chat's own records (their values are sealed with its key; `/forget`
/// destroys it).
pub fn chat_owner(chat: i64) -> String {
    format!("tg:{chat}")
}

/// Prefix of every chat's undelivered final replies ([`Kept`]).
pub fn all_undelivered() -> StateKey<Kept> {
    StateKey::new("tg/undelivered/")
}

/// Prefix of a chat's undelivered final replies.
pub fn undelivered_of(chat: i64) -> StateKey<Kept> {
    StateKey::new(format!("tg/undelivered/{chat}/"))
}

/// Key of one undelivered chunk of a final reply: kept at `kept_ms`, chunk `index` of its
/// reply (zero-padded, so a chat's keys sort in the order the replies were written).
pub fn undelivered_key(chat: i64, kept_ms: i64, index: usize) -> StateKey<Kept> {
    StateKey::new(format!("tg/undelivered/{chat}/{kept_ms:020}-{index:04}"))
}

/// Chat id from a `tg/undelivered/<chat>/...` key.
pub fn chat_of_undelivered_key<T>(key: &StateKey<T>) -> Option<i64> {
    key.name()
        .strip_prefix("tg/undelivered/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Key of a pending `/forget` confirmation (value: deadline, unix ms).
pub fn forget_key(chat: i64) -> StateKey<i64> {
    StateKey::new(format!("tg/forget/{chat}"))
}

/// Chat id from a `tg/pending/<chat>/<update>` key.
pub fn chat_of_pending_key(key: &StateKey<Pending>) -> Option<i64> {
    key.name()
        .strip_prefix("tg/pending/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

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

/// A keyboard made and stored, not yet attached to a message (kept with an undelivered reply
/// until it is sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Made {
    /// The markup to send.
    pub markup: InlineKeyboardMarkup,
    /// The chat it is stored for.
    pub(super) chat: i64,
    /// Its key among the chat's keyboards (the callback data names it).
    pub(super) nonce: String,
}

impl Made {
    /// Record which message carries the keyboard (a press from any other is expired).
    pub fn sent_as(&self, state: &FrontState, message: i64) {
        // A press can come before this (see `presses::valid`) and use the keyboard up: an
        // atomic update, so a used keyboard is not brought back (a full run under load pressed
        // the used button again and had it acted on instead of told "expired").
        let key = keyboard_key(self.chat, &self.nonce);
        let stored = state.update(&key, |mut k: Keyboard| {
            k.message = Some(message);
            k
        });
        if let Err(e) = stored {
            tracing::warn!(chat = self.chat, error = %e, "could not record a keyboard's message");
        }
    }
}

/// One chunk of a final reply not delivered yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    /// The chunk's Markdown (rendered to HTML when sent).
    pub text: String,
    /// A group chat (paced as one).
    pub group: bool,
    /// The message it answers (groups).
    pub reply_to: Option<i64>,
    /// The buttons under it (the reply's last chunk).
    pub buttons: Option<Made>,
    /// Unix milliseconds when it was kept.
    pub kept_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_keys_sort_by_update_and_parse_back() {
        assert!(pending_key(-5, 9).name() < pending_key(-5, 10).name());
        assert_eq!(chat_of_pending_key(&pending_key(-100123, 7)), Some(-100123));
        assert!(
            !pending_key(123, 1)
                .name()
                .starts_with(pending_prefix(12).name())
        );
    }
}
