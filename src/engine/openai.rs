//! `OpenAiEngine`: streams from a remote OpenAI-compatible server (llama.cpp's server, vLLM,
//! ollama) through `{base_url}/chat/completions` with `stream: true`. Errors (HTTP status,
//! refused connections, timeouts, malformed streams) become [`EngineError::Remote`] messages
//! for users; dropping the event stream aborts the request and closes the connection.

mod sse;

use super::{
    EVENT_BUFFER, Engine, EngineError, EngineEvent, EventStream, GenerateRequest, GenerationStats,
};
use crate::chat::{ChatMessage, FinishReason};
use futures::StreamExt;
use serde::Serialize;
use sse::{Chunk, SseParser, Usage};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Bot YAML `engine: {kind: openai, ...}`.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Model name sent to the server.
    pub model: String,
    /// API key (read from the environment variable the YAML names), if any.
    pub api_key: Option<String>,
    /// Context window assumed for prompt budgeting.
    pub context: u32,
    /// Request timeout in seconds (connect and between stream chunks).
    pub timeout_secs: u64,
}

/// A remote engine.
pub struct OpenAiEngine {
    settings: OpenAiSettings,
    client: reqwest::Client,
    extended_sampling: bool,
}

impl OpenAiEngine {
    /// A client for the server in `settings`.
    pub fn new(settings: OpenAiSettings) -> Result<Self, EngineError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout_of(&settings))
            .user_agent(concat!("parlor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::Remote(format!("could not set up the HTTP client: {e}")))?;
        Ok(Self {
            settings,
            client,
            extended_sampling: true,
        })
    }

    /// Whether requests carry the sampling parameters beyond OpenAI's own (`top_k`, `min_p`,
    /// `repeat_penalty`, `repeat_last_n`, and `repetition_penalty`, vLLM's name): on by
    /// default, for llama.cpp's llama-server and vLLM; off for servers that refuse unknown
    /// fields (OpenAI's own API answers 400).
    pub fn with_extended_sampling(mut self, on: bool) -> Self {
        self.extended_sampling = on;
        self
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.settings.base_url.trim_end_matches('/')
        )
    }
}

fn timeout_of(settings: &OpenAiSettings) -> Duration {
    Duration::from_secs(settings.timeout_secs.max(1))
}

/// The request body of `/chat/completions`.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    max_tokens: u32,
    temperature: f32,
    top_p: f32,
    seed: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extended: Option<Extended>,
}

/// The persona's sampling beyond OpenAI's parameters, under the names llama-server
/// (`repeat_penalty`, `repeat_last_n`) and vLLM (`repetition_penalty`) read; each ignores the
/// other's name. Both read `top_k` (at most 0 disables it) and `min_p`.
#[derive(Debug, Serialize, PartialEq)]
struct Extended {
    top_k: i32,
    min_p: f32,
    repeat_penalty: f32,
    repeat_last_n: i32,
    repetition_penalty: f32,
}

impl Extended {
    fn of(s: &super::Sampling) -> Self {
        Self {
            // Our 0 means "off"; vLLM takes -1 for that (older versions refuse 0).
            top_k: if s.top_k > 0 { s.top_k } else { -1 },
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            repeat_last_n: s.repeat_last_n,
            repetition_penalty: s.repeat_penalty,
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl Engine for OpenAiEngine {
    fn generate(&self, req: GenerateRequest) -> EventStream {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let call = Call {
            client: self.client.clone(),
            url: self.url(),
            settings: self.settings.clone(),
            extended_sampling: self.extended_sampling,
        };
        tokio::spawn(async move {
            let event = match call.run(&req, &tx).await {
                Ok(Some(stats)) => EngineEvent::Done(stats),
                Ok(None) => return, // the reader went away: the request is already dropped
                Err(msg) => EngineEvent::Failed(EngineError::Remote(msg)),
            };
            let _ = tx.send(event).await;
        });
        rx
    }

    fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
        // The server's tokenizer is not at hand: about 3 bytes per token plus template overhead
        // overestimates for the usual tokenizers, which is the safe side for budgeting.
        Ok(messages
            .iter()
            .map(|m| m.content.len() as u32 / 3 + 8)
            .sum())
    }

    fn context_window(&self) -> u32 {
        self.settings.context
    }

    fn model_name(&self) -> String {
        self.settings.model.clone()
    }
}

/// One request in flight.
struct Call {
    client: reqwest::Client,
    url: String,
    settings: OpenAiSettings,
    extended_sampling: bool,
}

impl Call {
    /// Stream one reply into `tx`. `Ok(None)` when the reader dropped the stream (cancelled).
    async fn run(
        &self,
        req: &GenerateRequest,
        tx: &mpsc::Sender<EngineEvent>,
    ) -> Result<Option<GenerationStats>, String> {
        let started = Instant::now();
        let timeout = timeout_of(&self.settings);
        let secs = timeout.as_secs();
        let body = Body {
            model: &self.settings.model,
            messages: req
                .messages
                .iter()
                .map(|m| Message {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect(),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            max_tokens: req.max_tokens,
            temperature: req.sampling.temperature,
            top_p: req.sampling.top_p,
            seed: req.sampling.seed,
            stop: &req.stop,
            extended: self.extended_sampling.then(|| Extended::of(&req.sampling)),
        };
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        // Each await races the reader going away: dropping the future aborts the request.
        let response = tokio::select! {
            _ = tx.closed() => return Ok(None),
            r = tokio::time::timeout(timeout, request.send()) => r,
        };
        let response = match response {
            Err(_) => {
                return Err(format!(
                    "no answer from \"{}\" within {secs}s; is the server overloaded? (engine.timeout_secs raises the limit)",
                    self.url
                ));
            }
            Ok(Err(e)) => return Err(self.describe(&e)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if !status.is_success() {
            let text = tokio::time::timeout(timeout, response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(format!(
                "\"{}\" answered HTTP {status}: {}{}",
                self.url,
                sse::error_message(&text),
                status_hint(status.as_u16())
            ));
        }

        let mut body = response.bytes_stream();
        let mut parser = SseParser::default();
        let mut first_token: Option<Instant> = None;
        let mut pieces = 0u32;
        let mut finish: Option<String> = None;
        let mut usage: Option<Usage> = None;
        let mut done = false; // `[DONE]` seen
        let mut eof = false; // the server closed the stream
        while !done && !eof {
            let next = tokio::select! {
                _ = tx.closed() => return Ok(None),
                n = tokio::time::timeout(timeout, body.next()) => n,
            };
            let events = match next {
                Err(_) => {
                    return Err(format!(
                        "\"{}\" sent nothing for {secs}s; gave up on the reply (engine.timeout_secs raises the limit)",
                        self.url
                    ));
                }
                Ok(Some(Err(e))) => return Err(self.describe(&e)),
                Ok(Some(Ok(bytes))) => parser.push(&bytes),
                Ok(None) => {
                    eof = true;
                    parser.finish()
                }
            };
            for data in events {
                let data = data.trim();
                if data == "[DONE]" {
                    done = true;
                    break;
                }
                if data.is_empty() {
                    continue;
                }
                let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
                    let shown: String = data.chars().take(120).collect();
                    format!(
                        "malformed stream chunk from \"{}\" ({e}): {shown}",
                        self.url
                    )
                })?;
                if let Some(err) = &chunk.error {
                    let msg = sse::json_message(err).unwrap_or_else(|| err.to_string());
                    return Err(format!("the server reported an error: {msg}"));
                }
                usage = chunk.usage.or(usage);
                let Some(choice) = chunk.choices.into_iter().next() else {
                    continue;
                };
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    first_token.get_or_insert_with(Instant::now);
                    pieces += 1;
                    if tx.send(EngineEvent::Token(text)).await.is_err() {
                        return Ok(None);
                    }
                }
                finish = choice.finish_reason.or(finish);
            }
        }
        if !done && finish.is_none() {
            return Err(format!(
                "\"{}\" closed the stream before the reply was complete",
                self.url
            ));
        }

        let ended = Instant::now();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let usage = usage.unwrap_or_default();
        Ok(Some(GenerationStats {
            prompt_tokens: usage.prompt_tokens,
            reused_tokens: 0,
            completion_tokens: if usage.completion_tokens > 0 {
                usage.completion_tokens
            } else {
                pieces
            },
            ttft_ms: first_token.map_or(0.0, |t| ms(t - started)),
            prompt_ms: first_token.map_or(0.0, |t| ms(t - started)),
            generation_ms: first_token.map_or(0.0, |t| ms(ended - t)),
            finish: match finish.as_deref() {
                Some("length") => FinishReason::MaxTokens,
                _ => FinishReason::EndOfText,
            },
        }))
    }

    /// A transport error in words, with what to check.
    fn describe(&self, e: &reqwest::Error) -> String {
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = format!("{cause}: {s}");
            source = s.source();
        }
        if e.is_connect() {
            format!(
                "could not connect to \"{}\" ({cause}); is the server running, and is engine.base_url right?",
                self.settings.base_url
            )
        } else if e.is_timeout() {
            format!(
                "timed out talking to \"{}\" after {}s ({cause})",
                self.url,
                timeout_of(&self.settings).as_secs()
            )
        } else {
            format!("request to \"{}\" failed: {cause}", self.url)
        }
    }
}

/// What to check for an HTTP error status.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => "; check the API key (the variable engine.api_key_env names)",
        404 => "; check engine.base_url (it usually ends in /v1) and the model name",
        429 => "; the server is rate limiting, try again later",
        500..=599 => "; the server failed, see its logs",
        _ => "",
    }
}
