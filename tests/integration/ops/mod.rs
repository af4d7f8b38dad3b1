//! Operator-facing command-line behaviour: escape sequences in stored or model text shown
//! inert on terminals (exact in JSONL and files), machine-readable `--json` outputs, `model
//! rm`, shell completions, `NO_COLOR`, and log files (rotation, stderr, `RUST_LOG`).

mod cli;
mod escapes;
mod logs;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Run the parlor binary with `args` (no `PARLOR_HOME` from outside, no stdin).
pub fn parlor(args: &[&str]) -> Output {
    Command::new(crate::common::parlor_bin())
        .args(args)
        .env_remove("PARLOR_HOME")
        .env_remove("PARLOR_LOG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run parlor")
}

/// Stdout and stderr as text.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run a shell command line on a pseudo-terminal (util-linux `script`), as an operator's
/// terminal would show it: its output, or `None` when `script` is not installed.
pub fn on_a_terminal(command_line: &str, envs: &[(&str, &str)]) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed (no pseudo-terminal to test on)");
        return None;
    }
    let out = Command::new("script")
        .args(["-qec", command_line, "/dev/null"])
        .env_remove("PARLOR_HOME")
        .env_remove("NO_COLOR")
        .envs(envs.iter().copied())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{command_line}: {text}");
    Some(text)
}

/// `path` quoted for a POSIX shell.
pub fn sh(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
