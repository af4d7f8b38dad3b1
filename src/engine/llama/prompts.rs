//! Templated, tokenized prompts, remembered for a while. A turn's prompt was tokenized when the
//! bot fitted it into the window ([`Engine::count_tokens`](crate::engine::Engine)) and again
//! when the inference thread started it, and the persona prefix's boundary was found by
//! rendering the persona twice at every turn: 3-5 ms of a 30-turn chat's first token. The last
//! [`KEPT`] prompts are kept with their messages (compared whole, not by a hash), so each is
//! tokenized once. They hold conversation text: [`PromptTokens::clear`] on every erase.

use super::tokenize_prompt;
use crate::chat::ChatMessage;
use crate::engine::EngineError;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Prompts kept (a turn adds its prompt and the persona's two boundary renders).
const KEPT: usize = 16;

type Entry = (Vec<ChatMessage>, Arc<Vec<LlamaToken>>);

/// The last tokenized prompts, shared by an engine's handle and its inference thread.
#[derive(Default)]
pub(crate) struct PromptTokens {
    kept: Mutex<VecDeque<Entry>>,
}

impl PromptTokens {
    /// The tokens of `messages` templated with the assistant prefix, as [`tokenize_prompt`].
    pub fn tokenize(
        &self,
        model: &LlamaModel,
        template: &LlamaChatTemplate,
        messages: &[ChatMessage],
    ) -> Result<Arc<Vec<LlamaToken>>, EngineError> {
        if let Some((_, tokens)) = self.lock().iter().find(|(m, _)| m.as_slice() == messages) {
            return Ok(tokens.clone());
        }
        let tokens = Arc::new(tokenize_prompt(model, template, messages)?);
        self.keep(messages, tokens.clone());
        Ok(tokens)
    }

    /// Keep `tokens` as the tokens of `messages` (tokenized another way, see the worker's head
    /// start).
    pub fn insert(&self, messages: &[ChatMessage], tokens: Vec<LlamaToken>) {
        if !self.lock().iter().any(|(m, _)| m.as_slice() == messages) {
            self.keep(messages, Arc::new(tokens));
        }
    }

    /// Add an entry, dropping the oldest beyond [`KEPT`].
    fn keep(&self, messages: &[ChatMessage], tokens: Arc<Vec<LlamaToken>>) {
        let mut kept = self.lock();
        if kept.len() >= KEPT {
            kept.pop_front();
        }
        kept.push_back((messages.to_vec(), tokens));
    }

    /// Forget every kept prompt (a conversation is being erased).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}
