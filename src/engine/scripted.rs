//! A deterministic engine for front-end tests: replies come from a script, streamed word by word.
//! It never stands in for the real model in tests that prove generation.

use super::{
    EVENT_BUFFER, Engine, EngineError, EngineEvent, EventStream, GenerateRequest, GenerationStats,
};
use crate::chat::{ChatMessage, FinishReason};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Stream this text, one word (with its trailing space) per event.
    Text(String),
    /// Stream this text, then wait forever (until cancelled): for cancellation tests.
    Hang(String),
    /// Fail with this error.
    Fail(EngineError),
}

/// Replies from a queue; when the queue is empty, echoes the last user message as
/// `echo: <text>`.
pub struct ScriptedEngine {
    script: Mutex<VecDeque<Scripted>>,
    /// Delay between streamed words (tokio time: tests pause the clock).
    step: Duration,
    window: u32,
    /// The prompt of the last request (tests check what the model was given).
    last_prompt: Mutex<Vec<ChatMessage>>,
}

impl ScriptedEngine {
    /// An engine that answers from `script`, then echoes.
    pub fn new(script: impl IntoIterator<Item = Scripted>) -> Self {
        Self {
            script: Mutex::new(script.into_iter().collect()),
            step: Duration::from_millis(0),
            window: 4096,
            last_prompt: Mutex::new(Vec::new()),
        }
    }

    /// Wait `step` between streamed words.
    pub fn with_step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }

    /// Report this context window.
    pub fn with_window(mut self, window: u32) -> Self {
        self.window = window;
        self
    }

    /// The messages of the last request (empty before the first).
    pub fn last_prompt(&self) -> Vec<ChatMessage> {
        self.last_prompt.lock().expect("prompt lock").clone()
    }

    /// Queue one more scripted reply.
    pub fn push(&self, reply: Scripted) {
        self.script.lock().expect("script lock").push_back(reply);
    }
}

/// Rough token count: one token per 4 bytes, at least one per message, plus template overhead.
fn estimate(messages: &[ChatMessage]) -> u32 {
    messages
        .iter()
        .map(|m| (m.content.len() as u32).div_ceil(4) + 4)
        .sum::<u32>()
        + 3
}

impl Engine for ScriptedEngine {
    fn generate(&self, req: GenerateRequest) -> EventStream {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        self.last_prompt
            .lock()
            .expect("prompt lock")
            .clone_from(&req.messages);
        let next = self.script.lock().expect("script lock").pop_front();
        let next = next.unwrap_or_else(|| {
            let last = req
                .messages
                .iter()
                .rev()
                .find(|m| m.role == crate::chat::Role::User)
                .map(|m| m.content.clone())
                .unwrap_or_default();
            Scripted::Text(format!("echo: {last}"))
        });
        let step = self.step;
        let prompt_tokens = estimate(&req.messages);
        let max_tokens = req.max_tokens;
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let (text, hang) = match next {
                Scripted::Fail(e) => {
                    let _ = tx.send(EngineEvent::Failed(e)).await;
                    return;
                }
                Scripted::Text(t) => (t, false),
                Scripted::Hang(t) => (t, true),
            };
            let mut stats = GenerationStats {
                prompt_tokens,
                ..Default::default()
            };
            for word in text.split_inclusive(' ') {
                if stats.completion_tokens >= max_tokens {
                    stats.finish = FinishReason::MaxTokens;
                    break;
                }
                if !step.is_zero() {
                    tokio::time::sleep(step).await;
                }
                if stats.completion_tokens == 0 {
                    stats.ttft_ms = started.elapsed().as_secs_f64() * 1000.0;
                }
                stats.completion_tokens += 1;
                if tx.send(EngineEvent::Token(word.to_string())).await.is_err() {
                    return; // reader dropped: cancelled
                }
            }
            if hang {
                tx.closed().await;
                return;
            }
            stats.generation_ms = started.elapsed().as_secs_f64() * 1000.0 - stats.ttft_ms;
            let _ = tx.send(EngineEvent::Done(stats)).await;
        });
        rx
    }

    fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
        Ok(estimate(messages))
    }

    fn context_window(&self) -> u32 {
        self.window
    }

    fn model_name(&self) -> String {
        "scripted".to_string()
    }
}
