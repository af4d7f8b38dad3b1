//! Telegram chats and their conversations: which session a chat talks in (`tg-<chat>`, then
//! `tg-<chat>-<n>` after each reset), every session it ever had (for `/forget`), the mark of a
//! turn under way (so a restart answers a stored question without storing it twice), and the
//! transcript `/export` sends. A narrow handle over the [`Bot`] and the front end's state.

use super::state::{Answering, ChatRecord, Pending, answering_key, chat_key, chat_owner};
use crate::bot::Erased;
use crate::bot::{Bot, BotError, FrontState, Reply, StateKey, TurnOptions};
use crate::chat::{Role, SessionId};

/// A pending message and the name of its key.
pub type PendingItem = (String, Pending);

/// The chat <-> session records. Cheap to clone.
#[derive(Clone)]
pub struct Chats {
    bot: Bot,
    state: FrontState,
}

impl Chats {
    /// Chats over `bot`, their records in `state`.
    pub fn new(bot: Bot, state: FrontState) -> Self {
        Self { bot, state }
    }

    /// The chat's current session, created on first use (`tg-<chat>`).
    pub fn session_of(&self, chat: i64) -> Result<SessionId, BotError> {
        let key = chat_key(chat);
        let mut rec: ChatRecord = self.state.get(&key)?.unwrap_or_default();
        if let Some(id) = rec.session {
            // Retention may have erased it: then the chat starts a new one.
            if self.bot.session(id)?.is_some() {
                return Ok(id);
            }
        }
        let info = self.bot.open_session(&session_name(chat, rec.resets))?;
        rec.session = Some(info.id);
        if !rec.sessions.contains(&info.id) {
            rec.sessions.push(info.id);
        }
        self.state.put(&key, &rec)?;
        self.state.flush()?;
        Ok(info.id)
    }

    /// Start a new session for `chat` (`/reset`, a rule's `end_session`): the next turn goes
    /// there.
    pub fn new_session(&self, chat: i64) -> Result<SessionId, BotError> {
        let key = chat_key(chat);
        let mut rec: ChatRecord = self.state.get(&key)?.unwrap_or_default();
        rec.resets += 1;
        let mut name = session_name(chat, rec.resets);
        while self.bot.find_session(&name)?.is_some() {
            rec.resets += 1;
            name = session_name(chat, rec.resets);
        }
        let info = self.bot.new_session(Some(&name))?;
        rec.session = Some(info.id);
        rec.sessions.push(info.id);
        self.state.put(&key, &rec)?;
        self.state.flush()?;
        Ok(info.id)
    }

    /// Whether `session` is still the chat's current one.
    pub fn is_current(&self, chat: i64, session: SessionId) -> bool {
        matches!(self.state.get(&chat_key(chat)), Ok(Some(r)) if r.session == Some(session))
    }

    /// Erase every session `chat` ever had and the chat's own records (session list, pending
    /// messages, handoff, confirmation) in one step through [`Bot::forget_sessions`]; returns
    /// what was erased. Blocks on disk syncs and the inference thread.
    pub fn forget(&self, chat: i64) -> Result<Erased, BotError> {
        let rec: ChatRecord = self.state.get(&chat_key(chat))?.unwrap_or_default();
        self.bot.forget_sessions(&rec.sessions, &[chat_owner(chat)])
    }

    /// Start the turn answering `text` (the pending messages `keys`) in `session`. When these
    /// messages were being answered when the bot stopped and their question is stored, they
    /// are answered again without storing it twice ([`Bot::regenerate`], which also drops the
    /// cut reply); otherwise a new turn starts, marked as under way first.
    pub fn start_turn(
        &self,
        chat: i64,
        session: SessionId,
        text: &str,
        keys: &[String],
        opts: TurnOptions,
    ) -> Reply {
        if self.stored_before(chat, session, keys, Some(text)) {
            tracing::info!(chat, "answering a message stored before the restart");
            return self.bot.regenerate(session, opts);
        }
        self.mark(chat, session, keys);
        self.bot.turn_with(session, text, opts)
    }

    /// Start the turn answering a pressed "did you mean" button (pending key `keys`) with FAQ
    /// entry `entry` ([`Bot::choose`]), resumed like [`Chats::start_turn`] after a restart.
    pub fn start_choice(
        &self,
        chat: i64,
        session: SessionId,
        entry: &str,
        keys: &[String],
    ) -> Reply {
        if self.stored_before(chat, session, keys, None) {
            tracing::info!(chat, "answering a choice stored before the restart");
            return self.bot.regenerate(session, TurnOptions::default());
        }
        self.mark(chat, session, keys);
        self.bot.choose(session, entry)
    }

    /// Whether the turn for `keys` was under way before a restart and stored its question
    /// (`text`; `None`: whatever the user message was).
    fn stored_before(
        &self,
        chat: i64,
        session: SessionId,
        keys: &[String],
        text: Option<&str>,
    ) -> bool {
        self.state
            .get(&answering_key(chat))
            .ok()
            .flatten()
            .filter(|a| a.session == session && a.keys == keys)
            .is_some_and(|a| self.question_stored(&a, text))
    }

    /// Mark the turn for `keys` as under way.
    fn mark(&self, chat: i64, session: SessionId, keys: &[String]) {
        let after_seq = self
            .bot
            .recent_messages(session, 1)
            .ok()
            .and_then(|m| m.last().map(|m| m.seq))
            .unwrap_or(0);
        let mark = Answering {
            session,
            after_seq,
            keys: keys.to_vec(),
        };
        // Not flushed here: the turn flushes the user message right after, and one flush makes
        // everything written before it durable (sled has one log), so the mark never lags it.
        if let Err(e) = self.state.put(&answering_key(chat), &mark) {
            tracing::error!(chat, error = %e, "could not mark the turn as under way");
        }
    }

    /// The chat's pending messages (oldest first) and the keys of a turn cut by a stop, if any.
    pub fn pending(&self, chat: i64) -> Result<(Vec<PendingItem>, Vec<String>), BotError> {
        let items = self
            .state
            .scan(&super::state::pending_prefix(chat))?
            .into_iter()
            .map(|(k, p)| (k.name().to_string(), p))
            .collect();
        let resumed = self.state.get(&answering_key(chat))?;
        Ok((items, resumed.map(|a| a.keys).unwrap_or_default()))
    }

    /// Answered: remove the pending messages `keys` and the mark of their turn together (a mark
    /// left from before a restart is always for the first group, so it is never cleared
    /// early), flushed.
    pub fn answered(&self, chat: i64, keys: &[String]) -> Result<(), BotError> {
        let removed = keys
            .iter()
            .try_for_each(|k| self.state.remove(&StateKey::<Pending>::new(k.as_str())))
            .and_then(|()| self.state.remove(&answering_key(chat)));
        // Flushed even when a removal failed: what was removed must not come back.
        let flushed = self.state.flush();
        removed.and(flushed)
    }

    /// Whether the first message stored after the mark is the question `text` (`None`: any
    /// user message).
    fn question_stored(&self, a: &Answering, text: Option<&str>) -> bool {
        // One turn per chat: after the mark there is the question and at most a cut reply.
        let recent = self.bot.recent_messages(a.session, 4).unwrap_or_default();
        recent
            .iter()
            .find(|m| m.seq > a.after_seq)
            .is_some_and(|m| m.role == Role::User && text.is_none_or(|t| m.text == t))
    }
}

/// Session name of a chat after `resets` resets.
pub fn session_name(chat: i64, resets: u32) -> String {
    if resets == 0 {
        format!("tg-{chat}")
    } else {
        format!("tg-{chat}-{}", resets + 1)
    }
}
