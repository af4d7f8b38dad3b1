//! The bot YAML's `telegram:` section: the raw struct as parsed (`deny_unknown_fields`, every
//! field with a default) and [`TelegramConfig::validate`], which reports every problem at once.

use serde::{Deserialize, Serialize};

/// `telegram:` in a bot file. Every field has a default, so `telegram: {}` is a working bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// Environment variable holding the bot token (default `TELEGRAM_BOT_TOKEN`).
    pub token_env: String,
    /// Bot API base URL (default `https://api.telegram.org`; `TELOXIDE_API_URL` overrides it).
    pub api_url: Option<String>,
    /// Webhook mode instead of long polling.
    pub webhook: Option<WebhookConfig>,
    /// User ids allowed to talk to the bot (empty = everyone).
    pub allowed_users: Vec<i64>,
    /// Chat ids the bot serves (empty = every chat).
    pub allowed_chats: Vec<i64>,
    /// User ids that are always allowed, never rate limited, and may `/forget` in groups.
    pub admins: Vec<i64>,
    /// What refused users are told; empty = silence.
    pub refusal: String,
    /// When to answer in groups.
    pub group_reply: GroupReply,
    /// Per-user message rate limit.
    pub rate_limit: RateLimit,
    /// Chat where handoff transcripts go; operators reply there. Without it `/human` only
    /// stops the bot in that chat.
    pub operators_chat: Option<i64>,
    /// Minutes after which a chat in human handoff goes back to the bot (0 = never;
    /// fractions allowed, e.g. `0.5`).
    pub handoff_timeout_minutes: f64,
    /// Messages of recent transcript posted to operators on handoff.
    pub handoff_transcript: usize,
    /// How replies are streamed.
    pub streaming: Streaming,
    /// Pacing and retry settings (the defaults follow Telegram's published limits).
    pub pacing: Pacing,
    /// Quiet window, milliseconds: a burst of short messages is answered once.
    pub burst_window_ms: u64,
    /// `/help` text (default: the list of commands).
    pub help: Option<String>,
    /// `/start` text when the persona has no greeting.
    pub start: Option<String>,
    /// Address of `/healthz` and Prometheus `/metrics` (e.g. `127.0.0.1:9464`).
    pub metrics_addr: Option<String>,
    /// Seconds in-flight replies get to finish on SIGTERM / Ctrl+C before they are cut.
    pub shutdown_grace_ms: u64,
    /// Long-poll timeout of getUpdates, seconds.
    pub poll_timeout_secs: u64,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            token_env: "TELEGRAM_BOT_TOKEN".into(),
            api_url: None,
            webhook: None,
            allowed_users: Vec::new(),
            allowed_chats: Vec::new(),
            admins: Vec::new(),
            refusal: "Sorry, this bot is private.".into(),
            group_reply: GroupReply::Mention,
            rate_limit: RateLimit::default(),
            operators_chat: None,
            handoff_timeout_minutes: 120.0,
            handoff_transcript: 20,
            streaming: Streaming::Auto,
            pacing: Pacing::default(),
            burst_window_ms: 1200,
            help: None,
            start: None,
            metrics_addr: None,
            shutdown_grace_ms: 3000,
            poll_timeout_secs: 30,
        }
    }
}

/// `telegram.webhook`: receive updates over HTTPS instead of polling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Local address to listen on, e.g. `0.0.0.0:8443` (behind a TLS proxy).
    pub listen: String,
    /// Public HTTPS URL Telegram posts to, e.g. `https://bot.example.com/tg`.
    pub url: String,
    /// Environment variable holding the secret token Telegram echoes in
    /// `X-Telegram-Bot-Api-Secret-Token`; without it a random secret is made at each start.
    /// Requests without the secret are refused either way.
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// When the bot answers in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupReply {
    /// When @mentioned, addressed by a command, or replied to.
    Mention,
    /// Every message.
    Always,
}

/// How partial replies are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Streaming {
    /// `sendMessageDraft` in private chats when the server has it, else edits.
    Auto,
    /// Edit one message as text arrives.
    Edit,
    /// Only the final message (typing indicator meanwhile).
    Off,
}

/// `telegram.rate_limit`: per-user incoming message limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// Messages allowed per window (0 = unlimited).
    pub messages: u32,
    /// Window length, seconds.
    pub per_seconds: u64,
    /// Said once per window to a user over the limit.
    pub notice: String,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            messages: 20,
            per_seconds: 60,
            notice: "You are sending messages faster than I can answer. Please wait a minute."
                .into(),
        }
    }
}

/// `telegram.pacing`: outgoing call pacing and retries. Defaults follow Telegram's limits
/// (about 30 messages/s overall, 1/s per chat, 20/min per group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pacing {
    /// Outgoing calls per second, all chats together.
    pub global_per_second: f64,
    /// Minimum milliseconds between messages or edits in one private chat.
    pub private_interval_ms: u64,
    /// Minimum milliseconds between messages or edits in one group.
    pub group_interval_ms: u64,
    /// Typing indicator refresh, milliseconds (it lasts about 5 s).
    pub typing_interval_ms: u64,
    /// First retry delay after a 5xx or network error; doubles each attempt.
    pub retry_base_ms: u64,
    /// Attempts per call before giving up (5xx, network errors).
    pub max_attempts: u32,
    /// Upper bound on any single wait, milliseconds (also caps `retry_after`).
    pub max_wait_ms: u64,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            global_per_second: 30.0,
            private_interval_ms: 1000,
            group_interval_ms: 3000,
            typing_interval_ms: 4000,
            retry_base_ms: 500,
            max_attempts: 6,
            max_wait_ms: 120_000,
        }
    }
}

impl TelegramConfig {
    /// Every problem of the section, each as `telegram.field: problem`. Empty = valid.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let mut bad =
            |field: &str, problem: String| errs.push(format!("telegram.{field}: {problem}"));
        if self.token_env.trim().is_empty() {
            bad("token_env", "must name an environment variable".into());
        }
        if let Some(url) = &self.api_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bad(
                "api_url",
                format!("\"{url}\" must start with http:// or https://"),
            );
        }
        if let Some(w) = &self.webhook {
            if w.listen.parse::<std::net::SocketAddr>().is_err() {
                bad(
                    "webhook.listen",
                    format!("\"{}\" is not an address like 0.0.0.0:8443", w.listen),
                );
            }
            if !w.url.starts_with("https://") {
                bad(
                    "webhook.url",
                    format!("\"{}\" must be a public https:// URL", w.url),
                );
            }
        }
        if let Some(addr) = &self.metrics_addr
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            bad(
                "metrics_addr",
                format!("\"{addr}\" is not an address like 127.0.0.1:9464"),
            );
        }
        if self.rate_limit.messages > 0 && self.rate_limit.per_seconds == 0 {
            bad("rate_limit.per_seconds", "must be at least 1".into());
        }
        let p = &self.pacing;
        if !(p.global_per_second > 0.0 && p.global_per_second <= 1000.0) {
            bad(
                "pacing.global_per_second",
                format!(
                    "{} is out of range (above 0, at most 1000)",
                    p.global_per_second
                ),
            );
        }
        if p.max_attempts == 0 {
            bad("pacing.max_attempts", "must be at least 1".into());
        }
        if p.typing_interval_ms == 0 || p.typing_interval_ms > 5000 {
            bad(
                "pacing.typing_interval_ms",
                format!("{} is out of range (1 to 5000)", p.typing_interval_ms),
            );
        }
        if !(self.handoff_timeout_minutes >= 0.0 && self.handoff_timeout_minutes.is_finite()) {
            bad(
                "handoff_timeout_minutes",
                format!(
                    "{} is out of range (0 = only /bot hands back, else a number of minutes)",
                    self.handoff_timeout_minutes
                ),
            );
        }
        if self.handoff_transcript > 200 {
            bad(
                "handoff_transcript",
                format!("{} is out of range (0 to 200)", self.handoff_transcript),
            );
        }
        if self.shutdown_grace_ms > 4000 {
            bad(
                "shutdown_grace_ms",
                format!(
                    "{} is out of range (0 to 4000: the bot must exit within 5 seconds)",
                    self.shutdown_grace_ms
                ),
            );
        }
        if self.poll_timeout_secs > 50 {
            bad(
                "poll_timeout_secs",
                format!("{} is out of range (0 to 50)", self.poll_timeout_secs),
            );
        }
        errs
    }

    /// Pacing interval of one chat (groups are slower).
    pub fn chat_interval(&self, group: bool) -> std::time::Duration {
        std::time::Duration::from_millis(if group {
            self.pacing.group_interval_ms
        } else {
            self.pacing.private_interval_ms
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_valid_with_defaults() {
        let c: TelegramConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(c, TelegramConfig::default());
        assert!(c.validate().is_empty());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_yaml::from_str::<TelegramConfig>("tokn_env: X").unwrap_err();
        assert!(e.to_string().contains("unknown field `tokn_env`"), "{e}");
    }

    #[test]
    fn validation_reports_every_problem() {
        let c: TelegramConfig = serde_yaml::from_str(
            "webhook: {listen: nowhere, url: 'http://x'}\npacing: {max_attempts: 0}\nmetrics_addr: x",
        )
        .unwrap();
        let errs = c.validate();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("telegram.webhook.listen: \"nowhere\""));
    }

    #[test]
    fn handoff_timeout_takes_whole_or_fractional_minutes() {
        let c: TelegramConfig = serde_yaml::from_str("handoff_timeout_minutes: 90").unwrap();
        assert_eq!(c.handoff_timeout_minutes, 90.0);
        let c: TelegramConfig = serde_yaml::from_str("handoff_timeout_minutes: 0.5").unwrap();
        assert!(c.validate().is_empty());
        let c: TelegramConfig = serde_yaml::from_str("handoff_timeout_minutes: -1").unwrap();
        assert_eq!(
            c.validate(),
            [
                "telegram.handoff_timeout_minutes: -1 is out of range (0 = only /bot hands back, else a number of minutes)"
            ]
        );
    }
}
