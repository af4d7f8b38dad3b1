//! The `parlor telegram` binary against the fake server: `--check`, a real reply from the
//! shipped acme-support bot, SIGTERM ending it cleanly within 5 seconds, and a log file
//! without the token.

use super::{TOKEN, finals};
use crate::common::{model_path, parlor_bin};
use parlor::telegram::fake::FakeBotApi;
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A home with the shipped acme-support bot and persona and the default model.
fn home() -> TempDir {
    let dir = tempfile::tempdir().expect("temp home");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["bots", "personas", "storage/models"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    for f in ["bots/acme-support.yaml", "personas/acme-support.yaml"] {
        std::fs::copy(repo.join(f), dir.path().join(f)).unwrap();
    }
    let model = model_path();
    std::os::unix::fs::symlink(
        &model,
        dir.path()
            .join("storage/models")
            .join(model.file_name().unwrap()),
    )
    .unwrap();
    dir
}

fn command(home: &Path, fake: &FakeBotApi, token: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(parlor_bin());
    c.arg("--home")
        .arg(home)
        .args(["telegram", "--bot", "acme-support"])
        .env("TELOXIDE_API_URL", fake.url())
        .env("TELEGRAM_BOT_TOKEN", token)
        .env("PARLOR_LOG", "debug")
        .kill_on_drop(true);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_diagnoses_token_webhook_model_and_persona() {
    let home = home();
    let fake = FakeBotApi::start(TOKEN).await.unwrap();
    let out = command(home.path(), &fake, TOKEN)
        .arg("--check")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok      token: works: @acme_support_bot"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok      webhook: none (long polling)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok      persona: \"acme-support\" is valid"),
        "{stdout}"
    );
    assert!(stdout.contains("ok      model:"), "{stdout}");

    let bad = command(home.path(), &fake, "999:wrong")
        .arg("--check")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("PROBLEM token"), "{stdout}");
    assert!(!stdout.contains("999:wrong"), "the token is never printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_bot_cleanly_within_five_seconds_and_the_log_has_no_token() {
    let home = home();
    let fake = FakeBotApi::start(TOKEN).await.unwrap();
    let mut child = command(home.path(), &fake, TOKEN)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    fake.wait_for(Duration::from_secs(300), |c| {
        c.iter().any(|c| c.method == "getupdates")
    })
    .await
    .expect("the bot polls");
    fake.push_text(5, "Hello, how do I reset my router?");
    let calls = fake
        .wait_for(Duration::from_secs(300), |c| !finals(c, 5).is_empty())
        .await
        .expect("a reply from the model");
    assert!(!finals(&calls, 5)[0].text().trim().is_empty());

    let pid = child.id().expect("running").to_string();
    let t0 = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the bot exits after SIGTERM")
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let log = std::fs::read_to_string(home.path().join("storage/logs/parlor.log")).unwrap();
    assert!(
        log.contains("connected to telegram") && log.contains("telegram bot stopped"),
        "{log}"
    );
    assert!(
        !log.contains(TOKEN) && !log.contains("TEST-SECRET"),
        "token in the log"
    );
    // No message text at the default log level: neither the customer's nor the reply.
    let reply = finals(&calls, 5)[0].text().trim().to_string();
    assert!(
        !log.contains("how do I reset my router"),
        "the message in the log: {log}"
    );
    assert!(
        reply.chars().count() < 24 || !log.contains(&reply),
        "the reply in the log: {log}"
    );
    // History is on disk in the bot's own database.
    assert!(home.path().join("storage/acme-support").is_dir());
}
