//! llama.cpp logs: routed to tracing (never the terminal: thousands of lines would corrupt a
//! TUI), and captured while loading a model, because a failed load returns no reason: the reason
//! is only in the log.

use std::sync::{Arc, Mutex, Once};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Send llama.cpp's and ggml's logs to tracing (once per process).
pub fn route_to_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    });
}

/// Run `f` (on this thread) while collecting llama.cpp warnings and errors; returns its result
/// and the collected lines, if any. The lines are also logged at debug level afterwards.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Option<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture {
        lines: lines.clone(),
    });
    let out = tracing::subscriber::with_default(subscriber, f);
    let lines = std::mem::take(&mut *lines.lock().unwrap_or_else(|e| e.into_inner()));
    for l in &lines {
        tracing::debug!(target: "llama.cpp", "{l}");
    }
    let reason = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .trim_start_matches("llama_model_load: ")
                .to_string()
        })
        .collect::<Vec<_>>();
    let reason = (!reason.is_empty()).then(|| reason.join("; "));
    (out, reason)
}

struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() > tracing::Level::WARN {
            return;
        }
        let mut msg = Message(String::new());
        event.record(&mut msg);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg.0);
    }
}
