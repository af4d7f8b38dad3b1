//! Text generation behind one trait: `LlamaEngine` (llama.cpp in-process, one inference thread),
//! `ScriptedEngine` (deterministic replies for front-end tests) and `OpenAiEngine` (a remote
//! OpenAI-compatible server). Engines are stateless about history: they receive the whole prompt
//! as messages and stream events back; dropping the stream cancels the generation.

pub mod llama;
pub mod openai;
pub mod scripted;
pub mod stop;
pub mod unloaded;

use crate::chat::{ChatMessage, FinishReason};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use llama::{EngineSettings, LlamaEngine};
pub use openai::{OpenAiEngine, OpenAiSettings};
pub use scripted::ScriptedEngine;
pub use unloaded::NotLoaded;

/// Sampling settings of one generation (the persona's `sampling:` section, after overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0.0 means greedy.
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: i32,
    /// 1.0 disables top-p.
    pub top_p: f32,
    /// 0.0 disables min-p.
    pub min_p: f32,
    /// 1.0 disables the repetition penalty.
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repeat_last_n: i32,
    /// Seed of the random sampler (ignored when greedy).
    pub seed: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: 42,
        }
    }
}

impl Sampling {
    /// Greedy decoding: always the most likely token (repeatable output for tests).
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }
}

/// The cache key of a session's conversation under a persona version: `s<id>-<version>`.
/// Every key of one session starts with [`session_cache_prefix`], which is how the engine finds
/// what to erase ([`Engine::forget`]) and names its saved-state files.
pub fn session_cache_key(session: crate::chat::SessionId, persona_version: &str) -> String {
    format!("{}{persona_version}", session_cache_prefix(session))
}

/// The start of every cache key of `session` (`s<id>-`).
pub fn session_cache_prefix(session: crate::chat::SessionId) -> String {
    format!("s{}-", session.0)
}

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// Identifies the conversation whose KV cache may be reused (session + persona version +
    /// model). Requests with the same key share a sequence slot and saved state.
    pub cache_key: String,
    /// The whole prompt: system, examples, history, new user message.
    pub messages: Vec<ChatMessage>,
    /// How many leading messages are the persona's constant prefix (system prompt, example
    /// turns, greeting), the same for every conversation of the persona; 0 = none. The
    /// llama.cpp engine evaluates that prefix once and shares it between conversations.
    pub prefix_messages: usize,
    /// Sampler settings.
    pub sampling: Sampling,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Strings that end the reply; never part of the streamed text.
    pub stop: Vec<String>,
}

/// Numbers about one finished generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    /// Tokens in the templated prompt.
    pub prompt_tokens: u32,
    /// Prompt tokens found in the KV cache (or restored saved state) and not evaluated again.
    pub reused_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// From request to first streamed text, milliseconds (includes queueing).
    pub ttft_ms: f64,
    /// Time spent evaluating the prompt, milliseconds.
    pub prompt_ms: f64,
    /// Time spent generating after the first token, milliseconds.
    pub generation_ms: f64,
    /// Why it ended.
    pub finish: FinishReason,
}

impl GenerationStats {
    /// Completion tokens per second of generation time.
    pub fn tokens_per_second(&self) -> f64 {
        if self.generation_ms <= 0.0 || self.completion_tokens < 2 {
            return 0.0;
        }
        (self.completion_tokens - 1) as f64 * 1000.0 / self.generation_ms
    }
}

/// What an engine streams back for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// All slots are busy: this request waits at `position` (1 = next).
    Queued {
        /// Place in the queue, 1-based.
        position: usize,
    },
    /// A piece of reply text (valid UTF-8, stop strings already held back).
    Token(String),
    /// Generation ended normally.
    Done(GenerationStats),
    /// Generation failed; the message is for users.
    Failed(EngineError),
}

/// The receiving end of one generation. Dropping it cancels the generation.
pub type EventStream = mpsc::Receiver<EngineEvent>;

/// Capacity of every engine event channel: a slow reader slows the engine instead of growing
/// memory.
pub const EVENT_BUFFER: usize = 64;

/// Errors of engines. Messages are for users.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The model file does not exist.
    #[error(
        "model file \"{path}\" not found; fetch it with `parlor model pull {hint}` or give a path to a .gguf file"
    )]
    ModelMissing {
        /// The path that was tried.
        path: String,
        /// A model name for the hint.
        hint: String,
    },
    /// The model file exists but llama.cpp could not load it.
    #[error("could not load model \"{path}\": {reason}")]
    ModelLoad {
        /// The file.
        path: String,
        /// What llama.cpp said, or what we found wrong.
        reason: String,
    },
    /// The prompt does not fit the context window even after trimming.
    #[error(
        "the prompt needs {needed} tokens but the context holds {available}; shorten the message or raise `context.window`"
    )]
    PromptTooLong {
        /// Tokens needed.
        needed: u32,
        /// Tokens available.
        available: u32,
    },
    /// Too many conversations are already waiting for the engine.
    #[error("the model is busy: {waiting} conversations are waiting; try again in a minute")]
    Busy {
        /// Requests already queued.
        waiting: usize,
    },
    /// The inference thread stopped (a bug or an earlier fatal error).
    #[error("the inference engine stopped; restart parlor")]
    Stopped,
    /// A remote engine failed (connection, HTTP status, timeout, malformed stream).
    #[error("remote engine: {0}")]
    Remote(String),
    /// llama.cpp failed while evaluating (decode error, template error, ...).
    #[error("generation failed: {0}")]
    Generation(String),
}

/// Text generation. Implementations: [`LlamaEngine`], [`ScriptedEngine`], [`OpenAiEngine`].
pub trait Engine: Send + Sync {
    /// Start generating a reply to `req`. Events arrive on the returned stream; dropping it
    /// cancels the generation at the engine's next step.
    fn generate(&self, req: GenerateRequest) -> EventStream;

    /// Number of tokens `messages` take once the chat template is applied (with the assistant
    /// prefix). Used to fit prompts into the context window; may overestimate, never under.
    fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError>;

    /// Context window per conversation, in tokens.
    fn context_window(&self) -> u32;

    /// Short model name for status bars and stored sessions.
    fn model_name(&self) -> String;

    /// Erase everything the engine keeps of `session`'s conversation: its cached tokens in a
    /// slot, its queued and running requests (they fail) and its saved states on disk. Blocks
    /// until done. States of a session are never saved again after this (ids are not reused).
    /// Returns how many saved states it deleted.
    fn forget(&self, session: crate::chat::SessionId) -> usize {
        let _ = session;
        0
    }

    /// A request with `cache_key` is about to come (the front end just sent a message, and
    /// the caller stores it and builds the request). An engine may get ready meanwhile: make
    /// room for the conversation or load its saved state, and with `text` (the user message,
    /// when the prompt is the conversation so far plus it) evaluate the prompt it expects. A
    /// request that turns out different is evaluated as if no hint had come. Never required
    /// for correctness.
    fn expect_turn(&self, cache_key: &str, text: Option<&str>) {
        let _ = (cache_key, text);
    }

    /// Stop: finish what must outlive the process (saved conversation states) and release the
    /// model. Blocks until done; later requests fail with [`EngineError::Stopped`]. A command
    /// calls it before exiting, because the process may exit before a dropped engine is done.
    fn close(&self) {}
}
