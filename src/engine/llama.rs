//! `LlamaEngine`: llama.cpp in-process. A handle to one dedicated OS thread that owns the
//! backend, the model and the context (the context is not thread-safe) with N sequence slots.

use super::{Engine, EngineError, EventStream, GenerateRequest};
use crate::chat::ChatMessage;
use std::path::PathBuf;

/// How to load and run a model (bot YAML `engine:` section plus the resolved model path).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// Short name for status bars (registry name or file stem).
    pub model_name: String,
    /// CPU threads; `None` = number of physical cores.
    pub threads: Option<u32>,
    /// Context window per conversation slot, in tokens.
    pub context: u32,
    /// Concurrent conversations (sequence slots) in one context.
    pub slots: u32,
    /// Layers to offload to a GPU (used only when built with a GPU feature).
    pub gpu_layers: u32,
    /// Where per-session KV state is saved for warm resume (`None` disables it).
    pub state_dir: Option<PathBuf>,
    /// Total size cap of saved states, bytes (least recently used are evicted).
    pub state_cap_bytes: u64,
}

impl EngineSettings {
    /// Defaults for a model file: 4096-token context, one slot, physical cores.
    pub fn new(model_path: impl Into<PathBuf>, model_name: impl Into<String>) -> Self {
        Self {
            model_path: model_path.into(),
            model_name: model_name.into(),
            threads: None,
            context: 4096,
            slots: 1,
            gpu_layers: 0,
            state_dir: None,
            state_cap_bytes: 2 << 30,
        }
    }
}

/// Handle to the inference thread. Cheap to share behind an `Arc`.
pub struct LlamaEngine {
    settings: EngineSettings,
}

impl LlamaEngine {
    /// Load the model on a new inference thread. Fails with a message naming the file and the
    /// reason for a missing, empty, truncated or non-GGUF file.
    pub fn load(settings: EngineSettings) -> Result<Self, EngineError> {
        let _ = &settings;
        todo!("LlamaEngine::load")
    }
}

impl Engine for LlamaEngine {
    fn generate(&self, _req: GenerateRequest) -> EventStream {
        todo!()
    }
    fn count_tokens(&self, _messages: &[ChatMessage]) -> Result<u32, EngineError> {
        todo!()
    }
    fn context_window(&self) -> u32 {
        self.settings.context
    }
    fn model_name(&self) -> String {
        self.settings.model_name.clone()
    }
}
