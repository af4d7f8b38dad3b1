//! [`NotLoaded`]: the engine of a bot whose model is not loaded (yet, or because loading
//! failed). The TUI opens with it and swaps in the real engine once the model loads, so a
//! missing or broken model is shown inside the app with a way to retry.

use super::{Engine, EngineError, EngineEvent, EventStream, GenerateRequest};
use crate::chat::ChatMessage;
use tokio::sync::mpsc;

/// An engine that answers every request with "the model is not loaded".
#[derive(Debug, Clone)]
pub struct NotLoaded {
    model: String,
    window: u32,
    reason: String,
}

impl NotLoaded {
    /// Stands in for `model` with context `window`; `reason` is what users are told.
    pub fn new(model: impl Into<String>, window: u32, reason: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            window,
            reason: reason.into(),
        }
    }
}

impl Engine for NotLoaded {
    fn generate(&self, _req: GenerateRequest) -> EventStream {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(EngineEvent::Failed(EngineError::Generation(
            self.reason.clone(),
        )));
        rx
    }

    fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
        // No tokenizer without the model: about four characters a token, never used to
        // generate (generate fails first).
        Ok(messages
            .iter()
            .map(|m| (m.content.chars().count() as u32).div_ceil(4) + 4)
            .sum())
    }

    fn context_window(&self) -> u32 {
        self.window
    }

    fn model_name(&self) -> String {
        self.model.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Sampling;

    #[tokio::test]
    async fn every_request_fails_with_the_reason() {
        let e = NotLoaded::new("smollm2-135m", 2048, "the model is still loading");
        let mut rx = e.generate(GenerateRequest {
            cache_key: "k".into(),
            prefix_messages: 0,
            messages: vec![ChatMessage::new(crate::chat::Role::User, "hi")],
            sampling: Sampling::default(),
            max_tokens: 8,
            stop: Vec::new(),
        });
        match rx.recv().await {
            Some(EngineEvent::Failed(err)) => {
                assert!(err.to_string().contains("still loading"), "{err}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(e.model_name(), "smollm2-135m");
        assert_eq!(e.context_window(), 2048);
    }
}
