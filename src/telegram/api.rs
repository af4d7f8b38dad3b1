//! A small Bot API client: one JSON call per method, errors classified so the sender can
//! decide (wait on 429, retry 5xx and network errors, fall back on "can't parse entities").
//! It is raw HTTP rather than teloxide's `Bot` because teloxide sleeps 10 s before reading a
//! 5xx reply, has no `sendMessageDraft`, and prints the token in its Debug output. The token
//! lives only inside [`Token`], whose Debug and Display redact it.

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The bot token. Never printed: Debug and Display show `[redacted]`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wrap a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into().trim().to_string())
    }
    /// The numeric bot id part (before the colon), safe to log.
    pub fn bot_id(&self) -> &str {
        self.0.split(':').next().unwrap_or("")
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Errors of one Bot API call. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 429: flood control; wait this long before any further call.
    #[error("telegram asked to wait {0:?} (flood control)")]
    RetryAfter(Duration),
    /// 5xx: Telegram's side failed; retry later.
    #[error("telegram server error {status}: {description}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Telegram's description.
        description: String,
    },
    /// The request did not reach Telegram or the reply was lost.
    #[error("network error talking to telegram: {0}")]
    Network(String),
    /// 4xx other than 429: the request itself is wrong (retrying will not help).
    #[error("telegram refused the request ({status}): {description}")]
    Refused {
        /// HTTP status / error_code.
        status: u16,
        /// Telegram's description, e.g. "Bad Request: can't parse entities".
        description: String,
    },
}

impl ApiError {
    /// Worth retrying the same request after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Server { .. } | ApiError::Network(_))
    }
    /// Telegram could not parse the HTML/Markdown of the text.
    pub fn is_parse_error(&self) -> bool {
        matches!(self, ApiError::Refused { description, .. }
            if description.contains("can't parse entities") || description.contains("can't find end"))
    }
    /// An edit that would not change the message.
    pub fn is_not_modified(&self) -> bool {
        matches!(self, ApiError::Refused { description, .. } if description.contains("message is not modified"))
    }
    /// The method does not exist on this server (e.g. `sendMessageDraft` on an old Bot API).
    pub fn is_unknown_method(&self) -> bool {
        matches!(self, ApiError::Refused { status: 404, .. })
            || matches!(self, ApiError::Refused { description, .. } if description.to_lowercase().contains("method not found"))
    }
}

/// Client for one bot token on one Bot API server. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Token,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish()
    }
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

impl Api {
    /// A client for `token` on `base` (e.g. `https://api.telegram.org`).
    pub fn new(base: &str, token: Token) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// The server base URL (no token).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Call `method` with JSON `params`; `timeout` bounds the whole request.
    pub async fn call(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/bot{}/{}", self.base, self.token.0, method);
        let sent = self
            .http
            .post(&url)
            .json(params)
            .timeout(timeout)
            .send()
            .await;
        self.finish(method, sent).await
    }

    /// Upload a document (`sendDocument`) with a caption.
    pub async fn send_document(
        &self,
        chat_id: i64,
        file_name: &str,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/bot{}/sendDocument", self.base, self.token.0);
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str("text/markdown")
            .map_err(|e| ApiError::Network(redact(&e.to_string(), &self.token)))?;
        let form = reqwest::multipart::Form::new()
            .text("chat_id", chat_id.to_string())
            .text("caption", caption.to_string())
            .part("document", part);
        let sent = self
            .http
            .post(&url)
            .multipart(form)
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        self.finish("sendDocument", sent).await
    }

    async fn finish(
        &self,
        method: &str,
        sent: reqwest::Result<reqwest::Response>,
    ) -> Result<Value, ApiError> {
        // reqwest errors include the URL, which holds the token: strip it.
        let resp =
            sent.map_err(|e| ApiError::Network(redact(&e.without_url().to_string(), &self.token)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| ApiError::Network(redact(&e.without_url().to_string(), &self.token)))?;
        let env: Envelope = match serde_json::from_slice(&body) {
            Ok(env) => env,
            Err(_) if status >= 500 => {
                return Err(ApiError::Server {
                    status,
                    description: "no valid reply".into(),
                });
            }
            Err(e) => {
                return Err(ApiError::Refused {
                    status,
                    description: format!("unreadable reply to {method}: {e}"),
                });
            }
        };
        if env.ok {
            return Ok(env.result);
        }
        let code = env.error_code.unwrap_or(status);
        let description = redact(&env.description, &self.token);
        if code == 429 || status == 429 {
            let secs = env.parameters.and_then(|p| p.retry_after).unwrap_or(1);
            return Err(ApiError::RetryAfter(Duration::from_secs(secs)));
        }
        if code >= 500 || status >= 500 {
            return Err(ApiError::Server {
                status: code,
                description,
            });
        }
        Err(ApiError::Refused {
            status: code,
            description,
        })
    }
}

fn redact(text: &str, token: &Token) -> String {
    if token.0.is_empty() {
        text.to_string()
    } else {
        text.replace(&token.0, "[redacted]")
    }
}

/// An incoming update (only the parts the bot uses).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Update {
    /// Increasing id; the offset of the next getUpdates acknowledges it.
    pub update_id: i64,
    /// A new message.
    #[serde(default)]
    pub message: Option<Message>,
}

/// A message (only the parts the bot uses).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Message {
    /// Id within its chat.
    pub message_id: i64,
    /// Sender (absent in channels).
    #[serde(default)]
    pub from: Option<User>,
    /// Where it was sent.
    pub chat: Chat,
    /// Unix seconds.
    #[serde(default)]
    pub date: i64,
    /// Text of a text message.
    #[serde(default)]
    pub text: Option<String>,
    /// Caption of a media message.
    #[serde(default)]
    pub caption: Option<String>,
    /// The message this one replies to.
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
}

/// A user or bot.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct User {
    /// User id.
    pub id: i64,
    /// Whether it is a bot.
    #[serde(default)]
    pub is_bot: bool,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// @username without the @.
    #[serde(default)]
    pub username: Option<String>,
}

/// A chat.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Chat {
    /// Chat id (negative for groups).
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Group title.
    #[serde(default)]
    pub title: Option<String>,
}

impl Chat {
    /// A group or supergroup (slower pacing, mention rules).
    pub fn is_group(&self) -> bool {
        self.kind != "private"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_prints() {
        let t = Token::new("123:SECRET");
        let api = Api::new("http://x", t.clone());
        assert!(!format!("{t:?} {t} {api:?}").contains("SECRET"));
        assert_eq!(t.bot_id(), "123");
    }
}
