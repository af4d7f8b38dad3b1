//! A Prometheus histogram over fixed buckets, lock-free: one atomic count per bucket, the sum in
//! microseconds and the count. Rendered cumulative, as the text format wants.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the buckets, seconds: from a fast first token to a long queued reply.
pub const BOUNDS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0,
];

/// Observations of a duration, in seconds.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Add one observation of `seconds` (negative and NaN count as 0).
    pub fn observe(&self, seconds: f64) {
        let v = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let i = BOUNDS.iter().position(|&b| v <= b).unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The text exposition of `name`: HELP, TYPE, cumulative `_bucket{le=...}` lines ending
    /// with `+Inf`, `_sum` and `_count`.
    pub fn render(&self, name: &str, help: &str) -> String {
        let mut out = format!("# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = BOUNDS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Relaxed));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let h = Histogram::default();
        for s in [0.01, 0.3, 0.3, 5.0, 500.0] {
            h.observe(s);
        }
        let text = h.render("t_seconds", "T.");
        assert!(text.starts_with("# HELP t_seconds T.\n# TYPE t_seconds histogram\n"));
        assert!(text.contains("t_seconds_bucket{le=\"0.05\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.25\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.5\"} 3\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"8\"} 4\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"120\"} 4\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 5\n"), "{text}");
        assert!(text.contains("t_seconds_sum 505.61\n"), "{text}");
        assert!(text.ends_with("t_seconds_count 5\n"), "{text}");
    }

    #[test]
    fn a_value_on_a_bound_falls_in_that_bucket() {
        let h = Histogram::default();
        h.observe(1.0);
        h.observe(f64::NAN);
        let text = h.render("x", "X.");
        assert!(text.contains("x_bucket{le=\"0.05\"} 1\n"), "{text}");
        assert!(text.contains("x_bucket{le=\"1\"} 2\n"), "{text}");
        assert_eq!(h.count(), 2);
    }
}
