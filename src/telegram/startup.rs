//! Start-up against a Bot API that may not be reachable yet (network not up, an outage): keep
//! trying with capped exponential back-off, log each failure and keep `/healthz` at "not
//! ready" meanwhile, instead of exiting and leaving the restart to systemd. A refused token
//! (401/404) or any other refusal stops at once: retrying would not change the answer.

use super::api::ApiError;
use super::error::TelegramError;
use super::metrics::Metrics;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest pause between two start-up attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Worth another start-up attempt: the API was not reached, failed (5xx) or asked to wait.
fn retryable(e: &TelegramError) -> Option<Option<Duration>> {
    match e {
        TelegramError::Api(ApiError::RetryAfter(d)) => Some(Some(*d)),
        TelegramError::Api(e) if e.is_transient() => Some(None),
        _ => None,
    }
}

/// The pause after `failures` failed attempts: `base` doubled each time, at most
/// [`BACKOFF_CAP`].
pub fn backoff(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_CAP)
}

/// Run `attempt` (the service's connect: getMe, setMyCommands), retrying an unreachable API
/// (first pause `base`) until it answers or `stop` fires (then `Ok(None)`). Marks the service
/// ready in `metrics` on success.
pub async fn connect<T, F, Fut>(
    metrics: &Metrics,
    base: Duration,
    stop: &CancellationToken,
    mut attempt: F,
) -> Result<Option<T>, TelegramError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TelegramError>>,
{
    let mut failures = 0u32;
    loop {
        let attempt = tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            r = attempt() => r,
        };
        let e = match attempt {
            Ok(me) => {
                metrics.ready.store(true, Relaxed);
                if failures > 0 {
                    tracing::info!(failures, "telegram reachable again; starting");
                }
                return Ok(Some(me));
            }
            Err(e) => e,
        };
        let Some(asked) = retryable(&e) else {
            return Err(e);
        };
        failures += 1;
        metrics.startup_failures.fetch_add(1, Relaxed);
        let wait = asked.unwrap_or_else(|| backoff(base, failures));
        tracing::warn!(
            error = %e,
            attempt = failures,
            retry_in_ms = wait.as_millis() as u64,
            "telegram not reachable at start-up; retrying (/healthz says not ready)"
        );
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), Duration::from_millis(500));
        assert_eq!(backoff(base, 2), Duration::from_secs(1));
        assert_eq!(backoff(base, 4), Duration::from_secs(4));
        assert_eq!(backoff(base, 7), BACKOFF_CAP);
        assert_eq!(backoff(base, 1000), BACKOFF_CAP);
    }

    #[test]
    fn only_unreachable_or_failing_apis_are_retried() {
        let net = TelegramError::Api(ApiError::Network("refused".into()));
        assert_eq!(retryable(&net), Some(None));
        let wait = TelegramError::Api(ApiError::RetryAfter(Duration::from_secs(3)));
        assert_eq!(retryable(&wait), Some(Some(Duration::from_secs(3))));
        let token = TelegramError::Unauthorized(ApiError::Refused {
            status: 401,
            description: "Unauthorized".into(),
        });
        assert_eq!(retryable(&token), None);
        let bad = TelegramError::Api(ApiError::Refused {
            status: 400,
            description: "Bad Request".into(),
        });
        assert_eq!(retryable(&bad), None);
    }
}
