//! Bot commands: `/start`, `/help`, `/reset`, `/export`, `/forget` (with confirmation) and
//! `/human`. `/stop` acts at once in the dispatcher, not here.

use super::chats::Chats;
use super::context::{ChatWorker, Context};
use super::incoming::{first_name, sender_id};
use super::outbox::Target;
use super::state::{forget_key, now_ms};
use crate::bot::{Bot, Erased};
use crate::chat::Role;
use crate::persona::MacroContext;
use std::sync::Arc;
use teloxide::macros::BotCommands;
use teloxide::types::Message;
use teloxide::utils::command::BotCommands as _;

/// The commands registered with `setMyCommands` at start (teloxide's `BotCommands`), in the
/// order Telegram's menu shows them. `/stop` acts at once in the dispatcher; the others are
/// answered in turn by the chat's worker. Parsing is
/// [`super::incoming::parse_command`]'s: it also knows `/bot` (the
/// operators') and answers unknown commands.
#[derive(BotCommands, Debug, Clone, Copy, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// `/start`
    #[command(description = "Say hello")]
    Start,
    /// `/help`
    #[command(description = "What I can do")]
    Help,
    /// `/reset`
    #[command(description = "Start a new conversation")]
    Reset,
    /// `/stop`
    #[command(description = "Stop the reply being written")]
    Stop,
    /// `/export`
    #[command(description = "Download this conversation")]
    Export,
    /// `/forget`
    #[command(description = "Delete your data")]
    Forget,
    /// `/human`
    #[command(description = "Talk to a person")]
    Human,
}

/// How long a `/forget` confirmation stays valid.
const FORGET_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The default `/help` text.
pub fn default_help() -> String {
    let mut s = String::from("I answer questions here. Commands:\n");
    for c in registered() {
        s.push_str(&format!("/{} - {}\n", c.command, c.description));
    }
    s
}

/// The commands as `setMyCommands` takes them: teloxide's list with its `/` prefix removed
/// (Telegram's rule: 1-32 lowercase letters, digits and underscores).
pub fn registered() -> Vec<teloxide::types::BotCommand> {
    Command::bot_commands()
        .into_iter()
        .map(|mut c| {
            c.command = c.command.trim_start_matches('/').to_string();
            c
        })
        .collect()
}

/// Handle one command (except `/stop`).
pub async fn handle(
    s: &Arc<Context>,
    w: &ChatWorker,
    target: Target,
    msg: &Message,
    cmd: &str,
    args: &str,
) {
    match cmd {
        "start" => {
            let ctx = MacroContext {
                user: first_name(msg).unwrap_or("there").to_string(),
                ..Default::default()
            };
            let greeting = s
                .bot
                .persona()
                .greeting(&ctx)
                .or_else(|| s.cfg().start.clone())
                .unwrap_or_else(|| "Hello! How can I help you?".into());
            super::stream::deliver(
                &s.send,
                target,
                None,
                &greeting,
                None,
                &super::buttons::ReplyButtons::default(),
            )
            .await;
        }
        "help" => {
            let help = s.cfg().help.clone().unwrap_or_else(default_help);
            s.say(target, &help).await;
        }
        "reset" => match s.chats.new_session(target.chat) {
            Ok(_) => {
                s.say(target, "Started a new conversation. What can I do for you?")
                    .await;
            }
            Err(e) => {
                tracing::error!(chat = target.chat, error = %e, "reset failed");
                s.say(
                    target,
                    "Sorry, I could not start a new conversation. Please try again.",
                )
                .await;
            }
        },
        "export" => export(s, target).await,
        "forget" => forget(s, target, msg, args).await,
        "human" => {
            w.cancel_turn();
            s.hand_to_human(target.chat, "/human").await;
        }
        "bot" => {
            s.say(
                target,
                "Only an operator can hand this chat back to the bot.",
            )
            .await;
        }
        _ => {
            s.say(
                target,
                "I do not know that command. /help lists what I can do.",
            )
            .await;
        }
    }
}

/// The chat's current conversation as Markdown.
pub fn transcript_markdown(
    bot: &Bot,
    chats: &Chats,
    chat: i64,
) -> Result<String, crate::bot::BotError> {
    let sid = chats.session_of(chat)?;
    let info = bot.session(sid)?;
    let persona = bot.persona();
    let mut md = format!(
        "# Conversation {}\n\n",
        info.as_ref().map(|i| i.name.as_str()).unwrap_or("")
    );
    for m in bot.transcript(sid)? {
        let who = match (m.role, &m.operator) {
            (Role::User, _) => "You".to_string(),
            (Role::Assistant, Some(name)) => format!("{name} (staff)"),
            (Role::Assistant, None) => persona.name().to_string(),
            (Role::System, _) => "System".to_string(),
        };
        let when = chrono::DateTime::from_timestamp_millis(m.time)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let rated = m
            .rating
            .map(|r| format!(", you rated it {}", r.emoji()))
            .unwrap_or_default();
        md.push_str(&format!("**{who}** ({when}{rated}):\n\n{}\n\n", m.text));
    }
    Ok(md)
}

async fn export(s: &Context, target: Target) {
    match transcript_markdown(&s.bot, &s.chats, target.chat) {
        Ok(md) => {
            let name = format!("conversation-{}.md", target.chat);
            if let Err(e) = s
                .send
                .out
                .document(target, &name, md.into_bytes(), "Your conversation")
                .await
            {
                tracing::warn!(chat = target.chat, error = %e, "export failed");
                s.say(
                    target,
                    "Sorry, I could not send the export. Please try again.",
                )
                .await;
            }
        }
        Err(e) => {
            tracing::error!(chat = target.chat, error = %e, "export failed");
            s.say(target, "Sorry, I could not read this conversation.")
                .await;
        }
    }
}

async fn forget(s: &Context, target: Target, msg: &Message, args: &str) {
    let user = sender_id(msg);
    if target.group && !s.access.is_admin(user) {
        s.say(target, "Only an admin can delete this group's data.")
            .await;
        return;
    }
    let key = forget_key(target.chat);
    let confirm = matches!(args.to_ascii_lowercase().as_str(), "yes" | "confirm");
    let armed: Option<i64> = s.state().get(&key).ok().flatten();
    if !confirm || armed.is_none_or(|deadline| deadline < now_ms()) {
        let _ = s.state().put(&key, &(now_ms() + FORGET_WINDOW_MS));
        let _ = s.state().flush();
        s.say(target, "This deletes every conversation you had with me here. To confirm, send /forget yes within 5 minutes.").await;
        return;
    }
    let (chats, chat) = (s.chats.clone(), target.chat);
    let result = tokio::task::spawn_blocking(move || chats.forget(chat)).await;
    match result {
        Ok(Ok(e)) => {
            tracing::info!(
                chat,
                sessions = e.sessions,
                messages = e.messages,
                "forgot a chat's data on request"
            );
            s.say(target, &confirmation(&e)).await;
        }
        Ok(Err(e)) => {
            tracing::error!(chat, error = %e, "forget failed");
            s.say(target, "Sorry, deleting failed. Please try again.")
                .await;
        }
        Err(e) => {
            tracing::error!(chat, error = %e, "forget failed");
            s.say(target, "Sorry, deleting failed. Please try again.")
                .await;
        }
    }
}

/// What `/forget` says it did.
fn confirmation(e: &Erased) -> String {
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    format!(
        "Done: I erased {} with {} from my storage, and everything else I kept about this chat. It cannot be read back.",
        plural(e.sessions as u64, "conversation", "conversations"),
        plural(e.messages, "message", "messages"),
    )
}

#[cfg(test)]
mod tests {
    use crate::telegram::incoming::parse_command as parse;

    #[test]
    fn the_confirmation_says_what_was_erased() {
        let e = crate::bot::Erased {
            sessions: 2,
            messages: 1,
            ..Default::default()
        };
        assert_eq!(
            super::confirmation(&e),
            "Done: I erased 2 conversations with 1 message from my storage, and everything else I kept about this chat. It cannot be read back."
        );
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse("/start"), Some(("start".into(), String::new())));
        assert_eq!(
            parse("/Forget@acme_bot yes"),
            Some(("forget".into(), "yes".into()))
        );
        assert_eq!(parse("hello /start"), None);
        assert_eq!(parse("/ not"), None);
        assert_eq!(parse("/path/to/file"), None);
    }
}
