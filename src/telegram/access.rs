//! Who the bot answers: allowed users and chats (empty = everyone), admins, group addressing
//! (mention, reply, or always) and a per-user message rate limit.

use super::config::{GroupReply, TelegramConfig};
use super::incoming::{chat_id, sender_id, text_of};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use teloxide::types::Message;
use tokio::time::Instant;

/// What to do with an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it.
    Answer,
    /// Not for the bot (a group message that does not address it): ignore silently.
    NotAddressed,
    /// The user or chat is not allowed: say `refusal` (if not empty) and drop it.
    Refused,
    /// Over the rate limit: say the notice (only when `notify`) and drop it.
    RateLimited {
        /// First refusal in this window: tell the user.
        notify: bool,
    },
}

/// The bot's own identity, for mentions and replies.
#[derive(Debug, Clone, Default)]
pub struct Me {
    /// Bot user id.
    pub id: i64,
    /// @username without the @.
    pub username: String,
}

/// Access rules plus the rate limiter's state.
#[derive(Debug)]
pub struct Access {
    cfg: TelegramConfig,
    windows: Mutex<HashMap<i64, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
    notified: bool,
}

impl Access {
    /// Rules from the `telegram:` section.
    pub fn new(cfg: &TelegramConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `user` is an admin.
    pub fn is_admin(&self, user: i64) -> bool {
        self.cfg.admins.contains(&user)
    }

    /// Decide about `msg`.
    pub fn check(&self, msg: &Message, me: &Me) -> Verdict {
        let user = sender_id(msg);
        let admin = self.is_admin(user);
        if !msg.chat.is_private() && !addressed(msg, me, self.cfg.group_reply) {
            return Verdict::NotAddressed;
        }
        if !admin {
            let chat_ok =
                self.cfg.allowed_chats.is_empty() || self.cfg.allowed_chats.contains(&chat_id(msg));
            let user_ok =
                self.cfg.allowed_users.is_empty() || self.cfg.allowed_users.contains(&user);
            if !chat_ok || !user_ok {
                return Verdict::Refused;
            }
        }
        if admin || self.cfg.rate_limit.messages == 0 {
            return Verdict::Answer;
        }
        let window = Duration::from_secs(self.cfg.rate_limit.per_seconds);
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, w| now.duration_since(w.start) < window);
        }
        let w = map.entry(user).or_insert(Window {
            start: now,
            count: 0,
            notified: false,
        });
        if now.duration_since(w.start) >= window {
            *w = Window {
                start: now,
                count: 0,
                notified: false,
            };
        }
        w.count += 1;
        if w.count <= self.cfg.rate_limit.messages {
            return Verdict::Answer;
        }
        let notify = !w.notified;
        w.notified = true;
        Verdict::RateLimited { notify }
    }
}

/// Whether a group message addresses the bot.
pub fn addressed(msg: &Message, me: &Me, rule: GroupReply) -> bool {
    if rule == GroupReply::Always {
        return true;
    }
    let text = text_of(msg);
    let mention = format!("@{}", me.username).to_lowercase();
    if !me.username.is_empty() && text.to_lowercase().contains(&mention) {
        return true;
    }
    if text.starts_with('/') {
        // `/cmd` alone or `/cmd@thisbot` (not `/cmd@otherbot`).
        let cmd = text.split_whitespace().next().unwrap_or("");
        return match cmd.split_once('@') {
            Some((_, bot)) => bot.eq_ignore_ascii_case(&me.username),
            None => true,
        };
    }
    msg.reply_to_message()
        .is_some_and(|r| r.from.is_some() && sender_id(r) == me.id)
}

/// The message text with the bot's @mention removed.
pub fn strip_mention(text: &str, me: &Me) -> String {
    if me.username.is_empty() {
        return text.trim().to_string();
    }
    let re = regex::RegexBuilder::new(&format!(r"@{}\b", regex::escape(&me.username)))
        .case_insensitive(true)
        .build();
    match re {
        Ok(re) => re.replace_all(text, "").trim().to_string(),
        Err(_) => text.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn raw(chat: i64, kind: &str, user: i64, text: &str) -> Value {
        json!({
            "message_id": 1, "date": 0, "text": text,
            "from": {"id": user, "is_bot": false, "first_name": "U"},
            "chat": {"id": chat, "type": kind, "title": "T", "first_name": "U"},
        })
    }

    fn msg(chat: i64, kind: &str, user: i64, text: &str) -> Message {
        serde_json::from_value(raw(chat, kind, user, text)).expect("a message")
    }

    fn me() -> Me {
        Me {
            id: 99,
            username: "acme_bot".into(),
        }
    }

    #[test]
    fn allow_lists_refuse_others_but_not_admins() {
        let cfg = TelegramConfig {
            allowed_users: vec![1],
            admins: vec![7],
            ..Default::default()
        };
        let a = Access::new(&cfg);
        assert_eq!(a.check(&msg(1, "private", 1, "hi"), &me()), Verdict::Answer);
        assert_eq!(
            a.check(&msg(2, "private", 2, "hi"), &me()),
            Verdict::Refused
        );
        assert_eq!(a.check(&msg(7, "private", 7, "hi"), &me()), Verdict::Answer);
    }

    #[test]
    fn groups_answer_mentions_commands_and_replies() {
        let a = Access::new(&TelegramConfig::default());
        assert_eq!(
            a.check(&msg(-1, "group", 1, "hello all"), &me()),
            Verdict::NotAddressed
        );
        assert_eq!(
            a.check(&msg(-1, "group", 1, "hi @Acme_Bot"), &me()),
            Verdict::Answer
        );
        assert_eq!(
            a.check(&msg(-1, "group", 1, "/help@acme_bot"), &me()),
            Verdict::Answer
        );
        assert_eq!(
            a.check(&msg(-1, "group", 1, "/help@other_bot"), &me()),
            Verdict::NotAddressed
        );
        let mut r = raw(-1, "group", 1, "thanks");
        r["reply_to_message"] = raw(-1, "group", 99, "answer");
        let r: Message = serde_json::from_value(r).expect("a reply");
        assert_eq!(a.check(&r, &me()), Verdict::Answer);
        assert_eq!(
            strip_mention("@acme_bot  where is my order?", &me()),
            "where is my order?"
        );
    }

    #[test]
    fn rate_limit_notifies_once_per_window() {
        let cfg = TelegramConfig {
            rate_limit: super::super::config::RateLimit {
                messages: 2,
                per_seconds: 60,
                notice: "slow".into(),
            },
            ..Default::default()
        };
        let a = Access::new(&cfg);
        let m = msg(1, "private", 1, "x");
        assert_eq!(a.check(&m, &me()), Verdict::Answer);
        assert_eq!(a.check(&m, &me()), Verdict::Answer);
        assert_eq!(a.check(&m, &me()), Verdict::RateLimited { notify: true });
        assert_eq!(a.check(&m, &me()), Verdict::RateLimited { notify: false });
    }
}
