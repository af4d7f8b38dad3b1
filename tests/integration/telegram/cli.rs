//! The `parlor telegram` binary against the fake server, on the real model: `--check`, SIGTERM
//! during a real reply (cut visibly, exit 0 after the grace, answered once after a restart),
//! `kill -9` mid-reply (answered once by the restarted process), and a log without the token.

use super::{TOKEN, finals, to_chat};
use crate::common::{model_path, parlor_bin};
use parlor::chat::Role;
use parlor::store::Store;
use parlor::testkit::fake_telegram::{Call, FakeBotApi};
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
    bot_command(home, "acme-support", fake, token)
}

fn bot_command(home: &Path, bot: &str, fake: &FakeBotApi, token: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(parlor_bin());
    c.arg("--home")
        .arg(home)
        .args(["telegram", "--bot", bot])
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

/// Replace `from` (which must be there) with `to` in the home's file `rel`.
fn edit(home: &Path, rel: &str, from: &str, to: &str) {
    let path = home.join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{rel} has {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// How long a test waits for a real reply or a process (a deadline, not a speed bound).
const LONG: Duration = Duration::from_secs(300);

/// Wait for `pred` on the fake's calls, or fail naming `what`.
async fn until(fake: &FakeBotApi, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
    fake.wait_for(LONG, pred)
        .await
        .unwrap_or_else(|c| panic!("timed out waiting for {what}: {:#?}", super::summary(&c)))
}

/// A draft with text reached `chat` and the update `id` was acknowledged: the bot stored the
/// message and its model is generating the reply.
fn generating(c: &[Call], chat: i64, id: i64) -> bool {
    to_chat(c, "sendmessagedraft", chat)
        .iter()
        .any(|c| c.ok && !c.text().trim().is_empty())
        && c.iter()
            .any(|c| c.method == "getupdates" && c.params["offset"].as_i64() > Some(id))
}

/// Send `signal` to the child and wait (up to [`LONG`]) for it to exit.
async fn signal(child: &mut tokio::process::Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(LONG, child.wait())
        .await
        .expect("the bot exits after the signal")
        .unwrap()
}

/// The stored conversation of `chat` (role, text, interrupted) in the bot's database.
fn history(home: &Path, bot: &str, chat: i64) -> Vec<(Role, String, bool)> {
    let store = Store::open(&home.join("storage").join(bot)).expect("the bot's store opens");
    let sid = store
        .find_session(&format!("tg-{chat}"))
        .unwrap()
        .expect("the chat's session")
        .id;
    let msgs = store.messages(sid).unwrap();
    assert!(
        store
            .kv_scan::<serde_json::Value>("tg/pending/")
            .unwrap()
            .is_empty(),
        "nothing left pending"
    );
    msgs.into_iter()
        .map(|m| (m.role, m.text, m.interrupted))
        .collect()
}

/// SIGTERM while the real model is generating a long reply (a plain persona): the cut
/// reply is finished visibly and marked, the process exits 0 once the shutdown grace is over,
/// and after a restart the question is answered (once), its history holding it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_real_reply_marks_the_cut_exits_0_and_the_restart_answers_once() {
    let home = home();
    tiny_bot(home.path());
    let grace = Duration::from_millis(300);
    edit(
        home.path(),
        "bots/tiny.yaml",
        "telegram:\n",
        &format!("telegram:\n  shutdown_grace_ms: {}\n", grace.as_millis()),
    );
    let fake = FakeBotApi::start(TOKEN).await.unwrap();
    // stderr is a file, not a terminal (as under systemd): the log goes there too.
    let stderr_path = home.path().join("stderr.txt");
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    let mut child = bot_command(home.path(), "tiny", &fake, TOKEN)
        .stderr(stderr_file)
        .spawn()
        .unwrap();
    until(&fake, "the bot to poll", |c| {
        c.iter().any(|c| c.method == "getupdates")
    })
    .await;
    let question = STORY;
    let id = fake.push_text(5, question);
    until(&fake, "the reply to stream", |c| generating(c, 5, id)).await;

    let t0 = Instant::now();
    let status = signal(&mut child, "-TERM").await;
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0));
    // The specification: in-flight replies get the grace, then are cut and the store flushed.
    // The margin covers the cut, the flush and saving the engine's state on a busy machine.
    assert!(
        took < grace + Duration::from_secs(20),
        "exited {took:?} after SIGTERM (grace {grace:?})"
    );
    let cut = fake.chat_texts(5);
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert!(
        cut[0].contains("interrupted: the bot is restarting"),
        "the cut reply is marked: {cut:?}"
    );

    shorter_replies(home.path());
    let mut child = bot_command(home.path(), "tiny", &fake, TOKEN)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    until(&fake, "the answer after the restart", |_| {
        fake.chat_texts(5).len() == 2
    })
    .await;
    let answer = fake.chat_texts(5).pop().unwrap();
    assert!(!answer.contains("interrupted"), "{answer:?}");
    assert_eq!(signal(&mut child, "-TERM").await.code(), Some(0));
    let stored = history(home.path(), "tiny", 5);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0], (Role::User, question.to_string(), false));
    assert_eq!((stored[1].0, stored[1].2), (Role::Assistant, false));
    assert!(!stored[1].1.trim().is_empty());
    assert_eq!(fake.unacknowledged(), 0);

    let mut log = String::new();
    for f in std::fs::read_dir(home.path().join("storage/logs")).unwrap() {
        log += &std::fs::read_to_string(f.unwrap().path()).unwrap();
    }
    // stderr was a file, not a terminal (as under systemd): the first run logged there too.
    let journal = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        journal.contains("connected to telegram") && !journal.contains(TOKEN),
        "stderr: {journal}"
    );
    assert!(
        log.contains("connected to telegram")
            && log.contains("grace time over: cutting in-flight replies")
            && log.contains("answering a message stored before the restart")
            && log.contains("telegram bot stopped"),
        "{log}"
    );
    assert!(
        !log.contains(TOKEN) && !log.contains("TEST-SECRET"),
        "token in the log"
    );
}

/// A question whose greedy answer (the [`tiny_bot`]'s persona) runs to the 400-token cap:
/// about 5 s on this kind of machine, so a signal sent once its first words show lands while
/// it is still being written, however fast the machine (a 64-token poem finished within the
/// 300 ms grace on one, and the test read a whole reply where it expected a cut one).
const STORY: &str = "Tell me a story about a brave knight.";

/// A small bot for process tests: a plain persona with a long greedy reply cap, quick pacing.
fn tiny_bot(home: &Path) {
    std::fs::write(
        home.join("personas/tiny.yaml"),
        "name: Tiny\nsystem: You are a helpful assistant.\nsampling:\n  temperature: 0.0\n  seed: 7\n  max_tokens: 400\ncontext:\n  window: 1024\n  reply_reserve: 400\n",
    )
    .unwrap();
    std::fs::write(
        home.join("bots/tiny.yaml"),
        "persona: tiny\nmodel: smollm2-135m\nengine:\n  kind: llama\n  context: 1024\n  slots: 1\nstorage: storage/tiny/\ntelegram:\n  burst_window_ms: 30\n  poll_timeout_secs: 1\n  pacing:\n    private_interval_ms: 40\n    typing_interval_ms: 200\n",
    )
    .unwrap();
}

/// Cap the [`tiny_bot`]'s replies at 40 tokens: the restarted process only has to answer the
/// pending question once, not write the whole story again (on a slow machine, beside the
/// other tests' engines, that took minutes).
fn shorter_replies(home: &Path) {
    edit(
        home,
        "personas/tiny.yaml",
        "max_tokens: 400",
        "max_tokens: 40",
    );
}

/// `kill -9` of the bot process while the real model generates: nothing was acknowledged
/// without being stored, so the restarted process answers the question, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_mid_reply_the_restarted_bot_answers_the_pending_question_once() {
    let home = home();
    tiny_bot(home.path());
    let fake = FakeBotApi::start(TOKEN).await.unwrap();
    let tiny = |fake: &FakeBotApi| {
        let mut c = bot_command(home.path(), "tiny", fake, TOKEN);
        c.stderr(std::process::Stdio::null());
        c
    };
    let mut child = tiny(&fake).spawn().unwrap();
    until(&fake, "the bot to poll", |c| {
        c.iter().any(|c| c.method == "getupdates")
    })
    .await;
    let question = STORY;
    let id = fake.push_text(6, question);
    until(&fake, "the reply to stream", |c| generating(c, 6, id)).await;
    let status = signal(&mut child, "-KILL").await;
    assert_eq!(status.code(), None, "killed by the signal");
    assert!(
        fake.chat_texts(6).is_empty(),
        "no final message before the kill"
    );

    shorter_replies(home.path());
    let mut child = tiny(&fake).spawn().unwrap();
    until(&fake, "the answer after the restart", |c| {
        !finals(c, 6).is_empty()
    })
    .await;
    assert_eq!(signal(&mut child, "-TERM").await.code(), Some(0));
    let shown = fake.chat_texts(6);
    assert_eq!(shown.len(), 1, "answered once: {shown:?}");
    let stored = history(home.path(), "tiny", 6);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0], (Role::User, question.to_string(), false));
    assert_eq!((stored[1].0, stored[1].2), (Role::Assistant, false));
    let words: Vec<&str> = stored[1]
        .1
        .split_whitespace()
        .filter(|w| w.chars().all(char::is_alphanumeric))
        .collect();
    assert!(!words.is_empty() && words.iter().all(|w| shown[0].contains(w)));
    // No message text at the default log level: neither the customer's nor the reply.
    let mut log = String::new();
    for f in std::fs::read_dir(home.path().join("storage/logs")).unwrap() {
        log += &std::fs::read_to_string(f.unwrap().path()).unwrap();
    }
    assert!(!log.contains(question), "the message in the log: {log}");
    let reply = stored[1].1.trim();
    assert!(
        reply.chars().count() < 24 || !log.contains(reply),
        "the reply in the log: {log}"
    );
}
