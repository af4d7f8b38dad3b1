//! `OpenAiEngine`: streams from a remote OpenAI-compatible server (llama.cpp's server, vLLM,
//! ollama) through `/v1/chat/completions` with `stream: true`.

use super::{Engine, EngineError, EventStream, GenerateRequest};
use crate::chat::ChatMessage;

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
}

impl OpenAiEngine {
    /// A client for the server in `settings`.
    pub fn new(settings: OpenAiSettings) -> Result<Self, EngineError> {
        Ok(Self { settings })
    }
}

impl Engine for OpenAiEngine {
    fn generate(&self, _req: GenerateRequest) -> EventStream {
        todo!("OpenAiEngine::generate")
    }
    fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
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
