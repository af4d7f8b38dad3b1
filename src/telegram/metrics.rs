//! Counters, gauges and histograms of the Telegram front end, served as Prometheus text on
//! `/metrics` (with `/healthz`, "not ready" until Telegram was reached) when
//! `telegram.metrics_addr` is set.
//!
//! The exposition is written here rather than with a metrics crate: two dozen fixed series and
//! two histograms are a few dozen lines, and the format is tested below and end to end.

mod histogram;

pub use histogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
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
    /// Messages without text (photos without caption, voice, stickers, ...), answered with
    /// what the bot can read.
    pub media_in: AtomicU64,
    /// Edits of messages still waiting, answered as edited.
    pub edits_in: AtomicU64,
    /// Edits of messages already answered (ignored).
    pub edits_ignored: AtomicU64,
    /// Times the bot was removed from a chat or blocked.
    pub removed: AtomicU64,
    /// Button presses answered (expired ones included).
    pub button_presses: AtomicU64,
    /// Presses of expired, foreign or unreadable buttons.
    pub buttons_expired: AtomicU64,
    /// "Did this help?" answered with 👍.
    pub ratings_up: AtomicU64,
    /// "Did this help?" answered with 👎.
    pub ratings_down: AtomicU64,
    /// Final replies Telegram did not take after every attempt, kept to send later.
    pub undelivered: AtomicU64,
    /// Kept chunks of final replies sent later.
    pub redelivered: AtomicU64,
    /// Time from the start of a turn to its first token, seconds.
    pub first_token: Histogram,
    /// Time from the start of a turn to the end of its reply, seconds.
    pub reply_time: Histogram,
    /// Start-up attempts that could not reach Telegram.
    pub startup_failures: AtomicU64,
    /// Telegram was reached and the bot serves (`/healthz` answers "ok").
    pub ready: AtomicBool,
    /// Conversations erased by `storage.retention`.
    pub retention_erased: AtomicU64,
    /// Last reply's generation speed, tokens/s x 1000.
    pub tokens_per_second_milli: AtomicU64,
    /// Messages waiting to be answered.
    pub queue_depth: AtomicI64,
    /// Chats with a worker running.
    pub active_chats: AtomicI64,
}

impl Metrics {
    /// `/healthz`: "ok" once Telegram was reached, else why not (HTTP 503).
    pub fn health(&self) -> (u16, String) {
        if self.ready.load(Relaxed) {
            return (200, "ok\n".into());
        }
        match self.startup_failures.load(Relaxed) {
            0 => (503, "not ready: connecting to telegram\n".into()),
            n => (
                503,
                format!("not ready: telegram not reachable ({n} failed attempts; retrying)\n"),
            ),
        }
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
            "undelivered_total",
            "Final replies Telegram did not take after every attempt (kept, sent later).",
            self.undelivered.load(Relaxed),
        );
        s += &c(
            "redelivered_total",
            "Kept chunks of final replies sent later.",
            self.redelivered.load(Relaxed),
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
            "media_in_total",
            "Messages without text, answered with what the bot reads.",
            self.media_in.load(Relaxed),
        );
        s += &c(
            "edits_in_total",
            "Edits of waiting messages, answered as edited.",
            self.edits_in.load(Relaxed),
        );
        s += &c(
            "edits_ignored_total",
            "Edits of messages already answered.",
            self.edits_ignored.load(Relaxed),
        );
        s += &c(
            "removed_total",
            "Times the bot was removed from a chat or blocked.",
            self.removed.load(Relaxed),
        );
        s += &c(
            "button_presses_total",
            "Button presses answered.",
            self.button_presses.load(Relaxed),
        );
        s += &c(
            "buttons_expired_total",
            "Presses of expired, foreign or unreadable buttons.",
            self.buttons_expired.load(Relaxed),
        );
        s += &c(
            "ratings_up_total",
            "Answers rated helpful.",
            self.ratings_up.load(Relaxed),
        );
        s += &c(
            "ratings_down_total",
            "Answers rated not helpful.",
            self.ratings_down.load(Relaxed),
        );
        s += &c(
            "startup_failures_total",
            "Start-up attempts that could not reach Telegram.",
            self.startup_failures.load(Relaxed),
        );
        s += &c(
            "retention_erased_total",
            "Conversations erased by storage.retention.",
            self.retention_erased.load(Relaxed),
        );
        s += &self.first_token.render(
            "parlor_telegram_first_token_seconds",
            "Time from the start of a turn to its first token.",
        );
        s += &self.reply_time.render(
            "parlor_telegram_reply_seconds",
            "Time from the start of a turn to the end of its reply.",
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
        .route(
            "/healthz",
            get({
                let m = metrics.clone();
                move || {
                    let m = m.clone();
                    async move {
                        let (status, text) = m.health();
                        (
                            axum::http::StatusCode::from_u16(status)
                                .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                            text,
                        )
                    }
                }
            }),
        )
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
