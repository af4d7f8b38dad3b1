//! One worker task per active chat: one turn at a time, messages that arrive meanwhile wait as
//! pending; after a short quiet window a burst of messages is answered once. Final replies
//! kept through an outage are sent first. Pending messages
//! are removed (and the removal flushed) only after their answer is sent; a turn cut by a stop
//! is answered again after the restart without storing its question twice. After a turn, the
//! persona rules' `handoff` and `end_session` actions take effect here.

use super::context::{ChatWorker, Context};
use super::error::panic_text;
use super::incoming::{first_name, message_id, parse_command, target_of, text_of};
use super::outbox::Target;
use super::state::Pending;
use crate::chat::SessionId;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use teloxide::types::Message;

/// How long a worker with nothing to do stays alive.
const IDLE: Duration = Duration::from_secs(300);

/// The worker loop of one chat.
pub async fn run(s: Arc<Context>, w: Arc<ChatWorker>) {
    let burst = Duration::from_millis(s.cfg().burst_window_ms);
    loop {
        tokio::select! {
            _ = w.notified() => {}
            _ = tokio::time::sleep(IDLE) => {
                if s.retire_worker(w.chat) { return; }
                continue;
            }
            _ = s.send.shutdown.cancelled() => {}
        }
        if s.send.shutdown.is_cancelled() {
            s.retire_worker(w.chat);
            return;
        }
        // Quiet window: wait until the chat has been quiet for `burst`.
        loop {
            tokio::select! {
                _ = w.notified() => {}
                _ = tokio::time::sleep(burst) => break,
                _ = s.send.shutdown.cancelled() => break,
            }
        }
        process(&s, &w).await;
        if s.send.shutdown.is_cancelled() {
            s.retire_worker(w.chat);
            return;
        }
    }
}

/// A group of pending messages answered together: `(pending key, pending record)`.
type Group = Vec<(String, Pending)>;

/// Send the chat's kept replies, then answer everything pending in this chat, in order:
/// commands one by one, consecutive text messages together as one turn.
async fn process(s: &Arc<Context>, w: &ChatWorker) {
    // Replies Telegram did not take during an outage go first; if it still fails, the replies
    // below queue behind them.
    super::undelivered::redeliver(&s.send, w.chat).await;
    let (items, resumed) = match s.chats.pending(w.chat) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(chat = w.chat, error = %e, "could not read pending messages");
            return;
        }
    };
    for group in plan(items, &resumed) {
        if s.send.shutdown.is_cancelled() {
            // No new turns after a stop request; what is left is answered after the restart.
            return;
        }
        let keys: Vec<String> = group.iter().map(|(k, _)| k.clone()).collect();
        let choice = group.last().and_then(|(_, p)| p.choice.clone());
        let msgs: Vec<Message> = group.into_iter().map(|(_, p)| p.message).collect();
        let done = AssertUnwindSafe(handle_group(s, w, &keys, msgs, choice))
            .catch_unwind()
            .await;
        let finished = match done {
            Ok(finished) => finished,
            Err(panic) => {
                s.metrics().panics.fetch_add(1, Relaxed);
                tracing::error!(chat = w.chat, panic = %panic_text(&panic), "panic while answering; the bot keeps serving");
                let t = Target {
                    chat: w.chat,
                    group: w.chat < 0,
                };
                s.say(
                    t,
                    "Sorry, something went wrong with that message. Please try again.",
                )
                .await;
                true
            }
        };
        if !finished {
            // Cut by shutdown: stays pending, answered after the restart.
            return;
        }
        // Answered: the messages and the mark of their turn go together.
        if let Err(e) = s.chats.answered(w.chat, &keys) {
            tracing::error!(error = %e, "could not clear the answered pending messages");
        }
        s.metrics()
            .queue_depth
            .fetch_sub(keys.len() as i64, Relaxed);
    }
}

/// Split a chat's pending messages (in arrival order) into what is answered together: each
/// command and each pressed choice alone, each run of text messages as one turn, except that the messages of a turn
/// cut by a stop (`resumed`) stay a turn of their own, as their question was stored.
fn plan(items: Vec<(String, Pending)>, resumed: &[String]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    // Some(r) while the last group is a run of text that can take more (r: it is resumed).
    let mut open: Option<bool> = None;
    for (key, p) in items {
        let is_cmd = p.choice.is_some() || parse_command(text_of(&p.message)).is_some();
        let is_resumed = resumed.contains(&key);
        match groups.last_mut() {
            Some(g) if !is_cmd && open == Some(is_resumed) => g.push((key, p)),
            _ => groups.push(vec![(key, p)]),
        }
        open = (!is_cmd).then_some(is_resumed);
    }
    groups
}

/// Handle one command, one pressed choice or one burst of text (`keys`: their pending keys).
/// Returns false when cut by shutdown.
async fn handle_group(
    s: &Arc<Context>,
    w: &ChatWorker,
    keys: &[String],
    msgs: Vec<Message>,
    choice: Option<String>,
) -> bool {
    let Some(last) = msgs.last() else { return true };
    let target = target_of(last);
    if choice.is_none()
        && let Some((cmd, args)) = parse_command(text_of(last))
    {
        super::commands::handle(s, w, target, last, &cmd, &args).await;
        return true;
    }
    let me = s.me();
    let text = msgs
        .iter()
        .map(|m| super::access::strip_mention(text_of(m), &me))
        .collect::<Vec<_>>()
        .join("\n");
    if s.handoffs.active(target.chat) && choice.is_none() {
        s.handoffs.forward_to_operators(last, &text).await;
        return true;
    }
    let session = match s.chats.session_of(target.chat) {
        Ok(sid) => sid,
        Err(e) => {
            tracing::error!(chat = target.chat, error = %e, "could not open the chat's session");
            s.say(
                target,
                "Sorry, I cannot reach my memory right now. Please try again later.",
            )
            .await;
            return true;
        }
    };
    let opts = crate::bot::TurnOptions {
        user_name: first_name(last).map(str::to_string),
        ..Default::default()
    };
    let reply = match &choice {
        Some(entry) => s.chats.start_choice(target.chat, session, entry, keys),
        None => s.chats.start_turn(target.chat, session, &text, keys, opts),
    };
    let stop = w.begin_turn();
    // A pressed choice answers under the message that offered it.
    let reply_to = (target.group && choice.is_none()).then(|| message_id(last));
    let (bot, state, chat) = (&s.bot, s.state(), target.chat);
    let buttons = |o: &_| super::buttons::for_reply(bot, state, chat, session, o);
    let result = super::stream::stream_reply(&s.send, target, reply_to, reply, stop, buttons).await;
    w.end_turn();
    match result {
        super::stream::Streamed::Cut => return false,
        super::stream::Streamed::Completed { ended, handoff } => {
            after_turn(s, target.chat, session, ended, handoff).await;
        }
        super::stream::Streamed::Stopped | super::stream::Streamed::Failed => {}
    }
    true
}

/// Act on what the turn's persona rules did ([`TurnOutcome`]): a `handoff` starts a human
/// handoff here (the bot's request is taken, so `/bot` really hands back); `end_session` makes
/// the chat's next message start a new session, as `/reset` does.
///
/// [`TurnOutcome`]: crate::bot::TurnOutcome
async fn after_turn(s: &Context, chat: i64, session: SessionId, ended: bool, handoff: bool) {
    if handoff {
        match s.bot.take_handoff(session) {
            Ok(true) => s.hand_to_human(chat, "persona rule").await,
            Ok(false) => {}
            Err(e) => tracing::error!(chat, error = %e, "could not clear the rule's handoff flag"),
        }
    }
    if ended && s.chats.is_current(chat, session) {
        match s.chats.new_session(chat) {
            Ok(next) => {
                tracing::info!(chat, ended = %session, next = %next, "a rule ended the session");
            }
            Err(e) => {
                tracing::error!(chat, error = %e, "could not start a new session after a rule ended one");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(texts: &[&str]) -> Vec<(String, Pending)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let message = serde_json::from_value(serde_json::json!({
                    "message_id": i, "date": 0, "text": t,
                    "chat": {"id": 5, "type": "private"},
                }))
                .expect("a message");
                let id = i as i64 + 1;
                (
                    crate::telegram::state::pending_key(5, id)
                        .name()
                        .to_string(),
                    Pending {
                        update_id: id,
                        message,
                        choice: None,
                    },
                )
            })
            .collect()
    }

    /// The groups as texts joined with `+`.
    fn planned(texts: &[&str], resumed: &[usize]) -> Vec<String> {
        let items = pending(texts);
        let resumed: Vec<String> = resumed.iter().map(|i| items[*i].0.clone()).collect();
        plan(items, &resumed)
            .iter()
            .map(|g| {
                g.iter()
                    .map(|(_, p)| text_of(&p.message))
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect()
    }

    #[test]
    fn text_runs_are_one_turn_and_commands_stand_alone() {
        assert_eq!(
            planned(&["a", "b", "/help", "c"], &[]),
            ["a+b", "/help", "c"]
        );
        assert_eq!(planned(&["/start", "/help"], &[]), ["/start", "/help"]);
        assert_eq!(planned(&[], &[]), Vec::<String>::new());
    }

    #[test]
    fn a_resumed_turn_keeps_its_messages_and_later_text_waits_for_the_next_turn() {
        assert_eq!(planned(&["a", "b", "c"], &[0, 1]), ["a+b", "c"]);
        assert_eq!(planned(&["a", "/stop", "c"], &[0]), ["a", "/stop", "c"]);
    }
}
