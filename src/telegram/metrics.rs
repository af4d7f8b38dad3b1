//! Counters and gauges of the Telegram front end, served as Prometheus text on `/metrics`
//! (with `/healthz`) when `telegram.metrics_addr` is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use tokio_util::sync::CancellationToken;

/// What the bot counts. All fields are cheap atomics, shared by every task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Incoming messages accepted.
    pub messages_in: AtomicU64,
    /// Messages sent (sendMessage, sendDocument).
    pub messages_out: AtomicU64,
    /// Edits and drafts sent.
    pub edits_out: AtomicU64,
    /// Replies finished.
    pub replies: AtomicU64,
    /// 429 answers received.
    pub flood_waits: AtomicU64,
    /// Calls retried after 5xx or network errors.
    pub retries: AtomicU64,
    /// Chunks resent as plain text after "can't parse entities".
    pub plain_fallbacks: AtomicU64,
    /// Messages refused (access) or rate limited.
    pub refused: AtomicU64,
    /// Handoffs to humans started.
    pub handoffs: AtomicU64,
    /// Panics caught while handling an update.
    pub panics: AtomicU64,
    /// Conversations erased by `storage.retention`.
    pub retention_erased: AtomicU64,
    /// Sum of time to first token, milliseconds, and the number of samples.
    pub ttft_ms_sum: AtomicU64,
    /// Samples in `ttft_ms_sum`.
    pub ttft_count: AtomicU64,
    /// Last reply's generation speed, tokens/s x 1000.
    pub tokens_per_second_milli: AtomicU64,
    /// Messages waiting to be answered.
    pub queue_depth: AtomicI64,
    /// Chats with a worker running.
    pub active_chats: AtomicI64,
}

impl Metrics {
    /// Add one sample of time to first token.
    pub fn observe_ttft(&self, ms: f64) {
        self.ttft_ms_sum.fetch_add(ms.max(0.0) as u64, Relaxed);
        self.ttft_count.fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let c = |name: &str, help: &str, v: u64| {
            format!(
                "# HELP parlor_telegram_{name} {help}\n# TYPE parlor_telegram_{name} counter\nparlor_telegram_{name} {v}\n"
            )
        };
        let g = |name: &str, help: &str, v: f64| {
            format!(
                "# HELP parlor_telegram_{name} {help}\n# TYPE parlor_telegram_{name} gauge\nparlor_telegram_{name} {v}\n"
            )
        };
        let mut s = String::new();
        s += &c(
            "messages_in_total",
            "Incoming messages accepted.",
            self.messages_in.load(Relaxed),
        );
        s += &c(
            "messages_out_total",
            "Messages sent.",
            self.messages_out.load(Relaxed),
        );
        s += &c(
            "edits_out_total",
            "Streaming edits and drafts sent.",
            self.edits_out.load(Relaxed),
        );
        s += &c(
            "replies_total",
            "Replies finished.",
            self.replies.load(Relaxed),
        );
        s += &c(
            "flood_waits_total",
            "429 answers from Telegram.",
            self.flood_waits.load(Relaxed),
        );
        s += &c(
            "retries_total",
            "Calls retried after 5xx or network errors.",
            self.retries.load(Relaxed),
        );
        s += &c(
            "plain_fallbacks_total",
            "Chunks resent as plain text.",
            self.plain_fallbacks.load(Relaxed),
        );
        s += &c(
            "refused_total",
            "Messages refused or rate limited.",
            self.refused.load(Relaxed),
        );
        s += &c(
            "handoffs_total",
            "Handoffs to human operators.",
            self.handoffs.load(Relaxed),
        );
        s += &c(
            "panics_total",
            "Panics caught while handling updates.",
            self.panics.load(Relaxed),
        );
        s += &c(
            "retention_erased_total",
            "Conversations erased by storage.retention.",
            self.retention_erased.load(Relaxed),
        );
        s += &c(
            "ttft_ms_sum",
            "Sum of time to first token, ms.",
            self.ttft_ms_sum.load(Relaxed),
        );
        s += &c(
            "ttft_count",
            "Replies measured for time to first token.",
            self.ttft_count.load(Relaxed),
        );
        s += &g(
            "tokens_per_second",
            "Generation speed of the last reply.",
            self.tokens_per_second_milli.load(Relaxed) as f64 / 1000.0,
        );
        s += &g(
            "queue_depth",
            "Messages waiting to be answered.",
            self.queue_depth.load(Relaxed) as f64,
        );
        s += &g(
            "active_chats",
            "Chats with a reply in progress or queued.",
            self.active_chats.load(Relaxed) as f64,
        );
        s
    }
}

/// Serve `/healthz` and `/metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::{Router, routing::get};
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.render() }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
