//! `Persona`: who the bot is, what it knows, how it samples. YAML -> raw struct
//! (`deny_unknown_fields`) -> validated `Persona` that cannot be invalid; renders the prompt
//! for a turn within the context budget.

use crate::chat::ChatMessage;
use crate::engine::{EngineError, Sampling};
use std::collections::BTreeMap;
use std::path::Path;

/// Errors of loading a persona: each one line `file:line:col: field.path: problem`.
#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    /// Problems found in the file, each already formatted with its position.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Values macros expand to.
#[derive(Debug, Clone, Default)]
pub struct MacroContext {
    /// `{{user}}`.
    pub user: String,
    /// `{{var.NAME}}`: session variables.
    pub vars: BTreeMap<String, String>,
}

/// A prompt ready for the engine.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// System, examples, the history that fits, the new user message.
    pub messages: Vec<ChatMessage>,
    /// History messages left out to fit the budget.
    pub trimmed: u32,
    /// Tokens the prompt takes.
    pub tokens: u32,
}

/// A validated persona.
#[derive(Debug, Clone)]
pub struct Persona {
    id: String,
}

impl Persona {
    /// Load and validate `path`.
    pub fn load(path: &Path) -> Result<Self, PersonaError> {
        let _ = path;
        todo!()
    }
    /// File stem: how bots and sessions name it.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Display name (`{{bot}}`).
    pub fn name(&self) -> &str {
        todo!()
    }
    /// Greeting shown at the start of a session, macros expanded.
    pub fn greeting(&self, ctx: &MacroContext) -> Option<String> {
        let _ = ctx;
        todo!()
    }
    /// Model the persona asks for, if any.
    pub fn model(&self) -> Option<&str> {
        todo!()
    }
    /// Sampler settings.
    pub fn sampling(&self) -> &Sampling {
        todo!()
    }
    /// Reply length cap in tokens.
    pub fn max_tokens(&self) -> u32 {
        todo!()
    }
    /// Stop strings.
    pub fn stop(&self) -> &[String] {
        todo!()
    }
    /// `context.window`, if set (else the engine's).
    pub fn context_window(&self) -> Option<u32> {
        todo!()
    }
    /// `context.reply_reserve`: tokens kept free for the reply.
    pub fn reply_reserve(&self) -> u32 {
        todo!()
    }
    /// Content hash: changes whenever the file's meaning changes (KV cache keys).
    pub fn version(&self) -> &str {
        todo!()
    }
    /// The prompt for a new user message: system (macros expanded), examples, as much recent
    /// history as fits `window - reply_reserve` (oldest dropped first, system and the new
    /// message always kept), the new message. `count` gives the token count of messages.
    pub fn render_prompt(
        &self,
        history: &[ChatMessage],
        user_text: &str,
        ctx: &MacroContext,
        window: u32,
        count: &dyn Fn(&[ChatMessage]) -> Result<u32, EngineError>,
    ) -> Result<Prompt, EngineError> {
        let _ = (history, user_text, ctx, window, count);
        todo!()
    }
}

pub mod faq;
pub mod import;
pub mod knowledge;
pub mod problem;
pub mod rules;
pub mod text;
