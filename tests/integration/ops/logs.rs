//! Log files: rotated with the oldest deleted beyond `--log-keep`, `RUST_LOG` read when
//! `PARLOR_LOG` is not set, and `--log-stderr` copying the log to stderr (journald's input).

use super::escapes::remote_home;
use super::texts;
use crate::remote::{Behaviour, fake_server};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `parlor ask` with the remote bot of `home`, with extra arguments and environment.
fn ask(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(crate::common::parlor_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .args(["ask", "--bot", "remote", "hi"])
        .env_remove("PARLOR_LOG")
        .env_remove("RUST_LOG")
        .env_remove("PARLOR_HOME")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run parlor")
}

/// Names of the files in `home`'s log directory, sorted.
fn log_files(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home.join("storage/logs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Everything logged in `home` so far.
fn logged(home: &Path) -> String {
    log_files(home)
        .iter()
        .map(|f| std::fs::read_to_string(home.join("storage/logs").join(f)).unwrap())
        .collect()
}

/// Run a blocking closure off the async test's threads (the fake server runs there).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_rotate_keeping_the_newest_n() {
    let (url, _fake) = fake_server(Behaviour::Stream(vec!["ok"])).await;
    let home = remote_home(&url);
    let logs = home.path().join("storage/logs");
    std::fs::create_dir_all(&logs).unwrap();
    for day in 1..=6 {
        std::fs::write(logs.join(format!("parlor.2020-01-0{day}.log")), "old\n").unwrap();
    }
    let h = home.path().to_path_buf();
    let out = blocking(move || ask(&h, &["--log-keep", "3"], &[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out).1);
    let files = log_files(home.path());
    let today = format!("parlor.{}.log", chrono::Utc::now().format("%Y-%m-%d"));
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&today), "{files:?}");
    let current = std::fs::read_to_string(logs.join(&today)).unwrap();
    assert!(current.contains("bot ready"), "{current}");

    // Never rotated: one parlor.log.
    let h = home.path().to_path_buf();
    blocking(move || ask(&h, &["--log-rotate", "never"], &[])).await;
    assert!(logs.join("parlor.log").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_is_read_and_parlor_log_wins() {
    let (url, _fake) = fake_server(Behaviour::Stream(vec!["ok"])).await;
    let quiet = remote_home(&url);
    let h = quiet.path().to_path_buf();
    let out = blocking(move || ask(&h, &[], &[("RUST_LOG", "warn")])).await;
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out).1);
    assert!(
        !logged(quiet.path()).contains("bot ready"),
        "RUST_LOG=warn hides info"
    );

    let loud = remote_home(&url);
    let h = loud.path().to_path_buf();
    blocking(move || ask(&h, &[], &[("RUST_LOG", "warn"), ("PARLOR_LOG", "info")])).await;
    assert!(logged(loud.path()).contains("bot ready"), "PARLOR_LOG wins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_stderr_copies_the_log_to_stderr() {
    let (url, _fake) = fake_server(Behaviour::Stream(vec!["ok"])).await;
    let home = remote_home(&url);
    let h = home.path().to_path_buf();
    let out = blocking(move || ask(&h, &["--log-stderr"], &[])).await;
    let (stdout, stderr) = texts(&out);
    assert_eq!(stdout, "ok\n");
    assert!(stderr.contains("bot ready"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "no colours when stderr is not a terminal: {stderr:?}"
    );
    let h = home.path().to_path_buf();
    let quiet = blocking(move || ask(&h, &[], &[])).await;
    assert!(
        !texts(&quiet).1.contains("bot ready"),
        "stderr stays clean by default"
    );
}
