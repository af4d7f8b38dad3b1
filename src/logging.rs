//! Where tracing output goes: files in `storage/logs/` under the home, rotated daily (or
//! hourly, or never) with the oldest deleted beyond `--log-keep`, through tracing-appender;
//! and stderr as well with `--log-stderr`, which `parlor telegram` turns on by itself when
//! stderr is not a terminal (under systemd it is the journal). Never stderr for the TUI.
//!
//! The filter is `--log` / `PARLOR_LOG`, else `RUST_LOG`, else `info`.

use crate::home::Home;
use std::io::IsTerminal;
use std::path::PathBuf;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log file names: `parlor.2026-12-01.log` (daily), `parlor.2026-12-01-13.log` (hourly),
/// `parlor.log` (never rotated).
const PREFIX: &str = "parlor";
const SUFFIX: &str = "log";

/// When a new log file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Rotate {
    /// A file per day (UTC).
    #[default]
    Daily,
    /// A file per hour (UTC).
    Hourly,
    /// One file, `parlor.log`, that grows (rotate it with logrotate's copytruncate).
    Never,
}

/// Errors of setting up logging. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log directory or file could not be opened.
    #[error("could not open a log file in \"{}\": {reason}; pass another --home DIR", dir.display())]
    Open {
        /// The log directory.
        dir: PathBuf,
        /// The cause.
        reason: String,
    },
    /// `--log` / `PARLOR_LOG` / `RUST_LOG` is not a valid filter.
    #[error(
        "invalid log filter \"{filter}\" (from {from}): {reason}; use e.g. `info` or `parlor=debug`"
    )]
    Filter {
        /// The filter given.
        filter: String,
        /// Where it came from.
        from: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

/// The filter text and where it came from: `--log`/`PARLOR_LOG` (`flag`), else `RUST_LOG`
/// (`rust_log`), else `info`.
pub fn filter_text(flag: Option<&str>, rust_log: Option<String>) -> (String, &'static str) {
    if let Some(f) = flag.filter(|f| !f.trim().is_empty()) {
        return (f.to_string(), "--log or PARLOR_LOG");
    }
    match rust_log {
        Some(f) if !f.trim().is_empty() => (f, "RUST_LOG"),
        _ => ("info".to_string(), "the default"),
    }
}

/// The file being written now in `dir` for `rotate` (names follow tracing-appender's, in UTC).
pub fn current_file(home: &Home, rotate: Rotate) -> PathBuf {
    let now = chrono::Utc::now();
    let name = match rotate {
        Rotate::Daily => format!("{PREFIX}.{}.{SUFFIX}", now.format("%Y-%m-%d")),
        Rotate::Hourly => format!("{PREFIX}.{}.{SUFFIX}", now.format("%Y-%m-%d-%H")),
        Rotate::Never => format!("{PREFIX}.{SUFFIX}"),
    };
    home.logs_dir().join(name)
}

/// How to log: the filter (`--log`/`PARLOR_LOG`), stderr too, rotation and how many files to keep.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// The filter given on the command line, if any (else `RUST_LOG`, else `info`).
    pub filter: Option<String>,
    /// Also write to stderr.
    pub stderr: bool,
    /// When a new file starts.
    pub rotate: Rotate,
    /// Files kept when rotating.
    pub keep: usize,
}

/// Send tracing output to `storage/logs/` under `home` (and stderr when `global.stderr`).
/// Calling it again in the same process keeps the first set-up. Returns the current log file.
pub fn init(home: &Home, global: &LogOptions) -> Result<PathBuf, LogError> {
    let (text, from) = filter_text(global.filter.as_deref(), std::env::var("RUST_LOG").ok());
    let filter = tracing_subscriber::EnvFilter::try_new(&text).map_err(|e| LogError::Filter {
        filter: text.clone(),
        from,
        reason: e.to_string(),
    })?;
    let dir = home.logs_dir();
    let open_err = |reason: String| LogError::Open {
        dir: dir.clone(),
        reason,
    };
    std::fs::create_dir_all(&dir).map_err(|e| open_err(e.to_string()))?;
    let mut builder = RollingFileAppender::builder()
        .rotation(match global.rotate {
            Rotate::Daily => Rotation::DAILY,
            Rotate::Hourly => Rotation::HOURLY,
            Rotate::Never => Rotation::NEVER,
        })
        .filename_prefix(PREFIX)
        .filename_suffix(SUFFIX);
    if global.rotate != Rotate::Never {
        builder = builder.max_log_files(global.keep.max(1));
    }
    let appender = builder.build(&dir).map_err(|e| open_err(e.to_string()))?;
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(appender)
        .with_ansi(false);
    let stderr_layer = global.stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal() && crate::sanitize::colour_allowed())
    });
    // Fails only when a subscriber is already set (a second call, or a test harness).
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    Ok(current_file(home, global.rotate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parlor_log_wins_over_rust_log_over_info() {
        assert_eq!(filter_text(Some("debug"), Some("warn".into())).0, "debug");
        assert_eq!(
            filter_text(None, Some("warn".into())),
            ("warn".into(), "RUST_LOG")
        );
        assert_eq!(filter_text(Some(" "), Some(String::new())).0, "info");
    }

    #[test]
    fn logs_go_to_a_rotated_file_in_the_home_and_bad_filters_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let global = LogOptions {
            keep: 7,
            ..LogOptions::default()
        };
        let path = init(&home, &global).unwrap();
        assert_eq!(path.parent(), Some(home.logs_dir().as_path()));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("parlor.2") && name.ends_with(".log"),
            "{name}"
        );
        assert!(path.is_file());
        let bad = LogOptions {
            filter: Some("parlor=notalevel".into()),
            ..global
        };
        let e = init(&home, &bad).unwrap_err();
        assert!(e.to_string().starts_with("invalid log filter"), "{e}");
    }
}
