//! `parlor bench`: the project's performance report. Each section measures one claim against
//! the bar set by the peer a user would otherwise run (llama.cpp's llama-server on the same
//! machine, numbers in field-notes.md) and prints a Markdown table (or JSON).

mod concurrency;
pub mod floor;
mod format;
mod llama;
mod newchat;
pub mod peer;
mod play;
mod resume;
mod retrieval;
mod store;
pub mod targets;
pub mod telegram;
mod throughput;
pub mod tui;
mod turns;

pub use llama::{BenchError, LlamaBench, run_llama_sections};
pub use play::SUPPORT_CHATS;
pub use retrieval::run_retrieval_section;
pub use store::run_store_section;

use serde::Serialize;

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which part of the system.
    pub section: String,
    /// What was measured.
    pub metric: String,
    /// The number.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The bar it must meet, in words (`>= 196`), if any.
    pub target: Option<String>,
    /// Whether it met the bar.
    pub pass: Option<bool>,
    /// Decimals shown in the table, when the bar needs more than [`fmt_num`] gives (a value of
    /// 1.0006 against `<= 1.005` would otherwise read "1.00 x, <= 1.00").
    #[serde(skip)]
    pub decimals: Option<usize>,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// CPU model, cores, memory: where it ran.
    pub machine: String,
    /// Build profile (`release` or `debug`).
    pub profile: String,
    /// The measurements.
    pub rows: Vec<Row>,
    /// Numbers sections record for the ratio targets ([`targets`]).
    #[serde(skip)]
    pub values: std::collections::BTreeMap<String, f64>,
}

impl Report {
    /// A report for this machine.
    pub fn new() -> Self {
        Self {
            machine: machine_description(),
            profile: if cfg!(debug_assertions) {
                "debug".into()
            } else {
                "release".into()
            },
            rows: Vec::new(),
            values: std::collections::BTreeMap::default(),
        }
    }

    /// Record a number for the ratio targets under `key`.
    pub fn note(&mut self, key: &str, value: f64) {
        self.values.insert(key.to_string(), value);
    }

    /// A recorded number.
    pub fn value(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }

    /// Add a number without a target.
    pub fn add(&mut self, section: &str, metric: &str, value: f64, unit: &str) {
        self.rows.push(Row {
            section: section.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            target: None,
            pass: None,
            decimals: None,
        });
    }

    /// Add a number with a bar: `at_least` true means value >= bar, else value <= bar.
    pub fn check(
        &mut self,
        section: &str,
        metric: &str,
        value: f64,
        unit: &str,
        bar: f64,
        at_least: bool,
    ) {
        let pass = if at_least { value >= bar } else { value <= bar };
        let decimals = bar_decimals(bar);
        let shown = |v: f64| match decimals {
            Some(d) => format!("{v:.d$}"),
            None => fmt_num(v),
        };
        self.rows.push(Row {
            section: section.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            target: Some(format!(
                "{} {}",
                if at_least { ">=" } else { "<=" },
                shown(bar)
            )),
            pass: Some(pass),
            decimals,
        });
    }

    /// The report as a Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Machine: {} ({} build)\n\n| section | metric | value | target | |\n|---|---|---:|---|---|\n",
            self.machine, self.profile
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} {} | {} | {} |\n",
                r.section,
                r.metric,
                match r.decimals {
                    Some(d) => format!("{:.d$}", r.value),
                    None => fmt_num(r.value),
                },
                r.unit,
                r.target.clone().unwrap_or_default(),
                match r.pass {
                    Some(true) => "ok",
                    Some(false) => "MISSED",
                    None => "",
                }
            ));
        }
        out
    }

    /// True when every checked number met its bar.
    pub fn all_passed(&self) -> bool {
        self.rows.iter().all(|r| r.pass != Some(false))
    }
}

/// Decimals a bar needs beyond what [`fmt_num`] shows (`1.005`: 3), if any.
fn bar_decimals(bar: f64) -> Option<usize> {
    let shown = if bar.abs() >= 100.0 {
        0
    } else if bar.abs() >= 10.0 {
        1
    } else {
        2
    };
    let needed = (0..=4)
        .find(|&d| {
            let scaled = bar * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-9
        })
        .unwrap_or(4);
    (needed > shown).then_some(needed)
}

/// A number with sensible precision.
pub fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// CPU model, core count and memory, from /proc.
pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cpu}, {cores} cores, {mem_gib:.0} GiB")
}

/// Median of a list (0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_finer_than_the_usual_precision_shows_its_decimals() {
        let mut r = Report::default();
        r.check("format", "perplexity ratio", 1.000636, "x", 1.005, false);
        r.check("format", "coarse", 1.0412, "x", 1.1, false);
        r.check("tui", "frame", 123.4, "ms", 200.0, false);
        let md = r.markdown();
        assert!(md.contains("| 1.001 x | <= 1.005 | ok |"), "{md}");
        assert!(md.contains("| 1.04 x | <= 1.10 | ok |"), "{md}");
        assert!(md.contains("| 123 ms | <= 200 | ok |"), "{md}");
    }
}
