//! The Bot API underneath: teloxide's types for every update, message and request, called two
//! ways. Start-up and control calls (getMe, setMyCommands, deleteWebhook, setWebhook,
//! getUpdates, sendDocument) go through teloxide's own `Bot` and `Requester`; the calls a
//! reply's delivery waits on (sendMessage, editMessageText, editMessageReplyMarkup,
//! sendMessageDraft, sendChatAction, answerCallbackQuery) go through [`Api::request`], a thin
//! transport that posts teloxide's typed payloads and reads their typed outputs. It exists
//! because teloxide sleeps 10 s before it reads any 5xx reply and then reports it without its
//! status, so a 5xx storm during a streamed reply would stall the chat for 10 s per error and
//! could not be told apart from a refusal (measured: `docs/telegram.md`). `sendMessageDraft`,
//! which teloxide lacks, is a small custom [`Payload`] ([`SendMessageDraft`]).
//!
//! The token lives only inside [`Token`] and the wrapped `teloxide::Bot`; [`Api`]'s Debug and
//! every error message redact it (teloxide's own `Bot` prints it in its Debug output).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use teloxide::RequestError;
use teloxide::requests::Payload;
use teloxide::types::{Recipient, True};

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

impl ApiError {
    /// The error of a call made through teloxide's `Requester`, in parlor's vocabulary, with
    /// the token removed from anything that could carry it (reqwest errors name the URL).
    pub fn from_teloxide(e: RequestError, token: &Token) -> Self {
        use teloxide::ApiError as T;
        match e {
            RequestError::RetryAfter(s) => ApiError::RetryAfter(s.duration()),
            RequestError::Network(e) => ApiError::Network(redact(&e.to_string(), token)),
            RequestError::Io(e) => ApiError::Network(redact(&e.to_string(), token)),
            RequestError::MigrateToChatId(to) => ApiError::Refused {
                status: 400,
                description: format!("the group moved to the supergroup {to}"),
            },
            RequestError::InvalidJson { raw, source } => ApiError::Server {
                status: 502,
                description: format!(
                    "unreadable reply ({source}): {}",
                    redact(&raw.chars().take(200).collect::<String>(), token)
                ),
            },
            RequestError::Api(api) => {
                let status = match &api {
                    T::InvalidToken => 401,
                    T::TerminatedByOtherGetUpdates => 409,
                    T::BotBlocked
                    | T::BotKicked
                    | T::BotKickedFromSupergroup
                    | T::BotKickedFromChannel
                    | T::UserDeactivated
                    | T::CantInitiateConversation
                    | T::CantTalkWithBots => 403,
                    // teloxide keeps no status: a 5xx reaches us as its description.
                    T::Unknown(d) if is_server_description(d) => {
                        return ApiError::Server {
                            status: 500,
                            description: redact(d, token),
                        };
                    }
                    _ => 400,
                };
                let description = match api {
                    T::Unknown(d) | T::CantParseEntities(d) => d,
                    other => other.to_string(),
                };
                ApiError::Refused {
                    status,
                    description: redact(&description, token),
                }
            }
        }
    }
}

/// Descriptions Telegram's front servers give with a 5xx status.
fn is_server_description(d: &str) -> bool {
    let d = d.to_ascii_lowercase();
    [
        "internal server error",
        "bad gateway",
        "service unavailable",
        "gateway timeout",
    ]
    .iter()
    .any(|s| d.contains(s))
}

/// `sendMessageDraft` (Bot API 9.3+): stream a partial reply into a private chat. teloxide
/// 0.17 does not have it; this payload is all it takes.
#[derive(Debug, Clone, Serialize)]
pub struct SendMessageDraft {
    /// The private chat.
    pub chat_id: Recipient,
    /// Identifies the draft across updates (non-zero).
    pub draft_id: i64,
    /// The text so far.
    pub text: String,
}

impl Payload for SendMessageDraft {
    type Output = True;
    const NAME: &'static str = "sendMessageDraft";
}

/// Client for one bot token on one Bot API server: teloxide's `Bot` for control calls, the thin
/// transport ([`Api::request`]) for delivery. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    bot: teloxide::Bot,
    http: reqwest::Client,
    base: String,
    token: Token,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish_non_exhaustive()
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

/// Errors of [`Api::new`].
#[derive(Debug, thiserror::Error)]
#[error("the Bot API address \"{0}\" is not a URL")]
pub struct BadUrl(String);

impl Api {
    /// A client for `token` on `base` (e.g. `https://api.telegram.org`).
    pub fn new(base: &str, token: Token) -> Result<Self, BadUrl> {
        let base = base.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).map_err(|_| BadUrl(base.clone()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let bot = teloxide::Bot::with_client(token.0.clone(), http.clone()).set_api_url(url);
        Ok(Self {
            bot,
            http,
            base,
            token,
        })
    }

    /// teloxide's `Bot`, for its `Requester` methods. Map its errors with
    /// [`Api::map_err`]; never format the `Bot` itself (its Debug prints the token).
    pub fn bot(&self) -> &teloxide::Bot {
        &self.bot
    }

    /// A teloxide error in parlor's vocabulary, the token redacted.
    pub fn map_err(&self, e: RequestError) -> ApiError {
        ApiError::from_teloxide(e, &self.token)
    }

    /// The server base URL (no token).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send `payload` (a teloxide payload, or [`SendMessageDraft`]) and read its typed output.
    /// `timeout` bounds the whole request. A 5xx is reported at once as
    /// [`ApiError::Server`]: the caller decides about retrying.
    pub async fn request<P>(&self, payload: &P, timeout: Duration) -> Result<P::Output, ApiError>
    where
        P: Payload + Serialize,
        P::Output: serde::de::DeserializeOwned,
    {
        let url = format!("{}/bot{}/{}", self.base, self.token.0, P::NAME);
        let sent = self
            .http
            .post(&url)
            .json(payload)
            .timeout(timeout)
            .send()
            .await;
        let value = self.finish(P::NAME, sent).await?;
        serde_json::from_value(value).map_err(|e| ApiError::Refused {
            status: 200,
            description: format!("unreadable reply to {}: {e}", P::NAME),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_prints() {
        let t = Token::new("123:SECRET");
        let api = Api::new("http://x", t.clone()).expect("a url");
        assert!(!format!("{t:?} {t} {api:?}").contains("SECRET"));
        assert_eq!(t.bot_id(), "123");
        assert!(Api::new("not a url", t).is_err());
    }

    #[test]
    fn teloxide_errors_keep_what_the_policies_need() {
        let t = Token::new("123:SECRET");
        let api = |d: &str| {
            let e: teloxide::ApiError = serde_json::from_value(Value::String(d.into())).unwrap();
            ApiError::from_teloxide(RequestError::Api(e), &t)
        };
        assert!(matches!(
            api("Unauthorized"),
            ApiError::Refused { status: 401, .. }
        ));
        assert!(matches!(
            api(
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
            ),
            ApiError::Refused { status: 409, .. }
        ));
        assert!(api("Internal Server Error").is_transient());
        assert!(api("Bad Request: can't parse entities: x").is_parse_error());
        assert!(!api("Forbidden: bot was blocked by the user").is_transient());
    }
}
