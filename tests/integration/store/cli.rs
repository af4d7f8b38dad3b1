//! `parlor history` end to end through the binary, on real databases in temp dirs, and the
//! directory lock held by another real process.

use super::fill_sample;
use crate::common::parlor_bin;
use parlor::store::{Store, StoreError};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn parlor(args: &[&str], storage: &Path) -> Output {
    Command::new(parlor_bin())
        .args(args)
        .arg("--storage")
        .arg(storage)
        .env_remove("PARLOR_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("run parlor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A database with the sample session, closed so the binary can open it.
fn sample_db() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill_sample(&store);
    dir
}

#[test]
fn history_list_shows_a_table() {
    let dir = sample_db();
    let out = parlor(&["history", "list"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "PERSONA", "MODEL", "MESSAGES", "UPDATED"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..4],
        ["sample", "assistant", "smollm2-135m", "4"],
        "{text}"
    );
}

#[test]
fn history_list_of_an_empty_directory_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("none");
    let out = parlor(&["history", "list"], &storage);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("no sessions in \""),
        "{}",
        stdout(&out)
    );
    assert!(!storage.exists());
}

#[test]
fn history_show_prints_the_transcript() {
    let dir = sample_db();
    let out = parlor(&["history", "show", "sample"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("# sample\n"), "{text}");
    assert!(
        text.contains("**User** · 2023-11-14 22:13:20 UTC\n\nHello there?"),
        "{text}"
    );
    assert!(text.contains("· *interrupted*"), "{text}");
    // By id too.
    let by_id = parlor(&["history", "show", "1"], dir.path());
    assert_eq!(stdout(&by_id), text);
}

#[test]
fn an_unknown_session_names_the_command_that_lists_them() {
    let dir = sample_db();
    for cmd in [
        &["history", "show", "nope"][..],
        &["history", "export", "nope", "--format", "jsonl"],
        &["history", "delete", "nope", "--yes"],
    ] {
        let out = parlor(cmd, dir.path());
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        let err = stderr(&out);
        assert!(err.contains("no session \"nope\""), "{err}");
        assert!(err.contains("`parlor history list --storage "), "{err}");
    }
}

#[test]
fn history_export_import_and_delete_end_to_end() {
    let dir = sample_db();
    let files = tempfile::tempdir().unwrap();
    let jsonl = files.path().join("sample.jsonl");
    let out = parlor(
        &[
            "history",
            "export",
            "sample",
            "--format",
            "jsonl",
            "-o",
            jsonl.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let exported = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(exported.lines().count(), 5);

    // The same export on stdout, and Markdown.
    let out = parlor(
        &["history", "export", "sample", "--format", "jsonl"],
        dir.path(),
    );
    assert_eq!(stdout(&out), exported);
    let out = parlor(
        &["history", "export", "sample", "--format", "md"],
        dir.path(),
    );
    assert!(stdout(&out).contains("**Bot** · "), "{}", stdout(&out));

    let out = parlor(&["history", "import", jsonl.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 4 messages from") && stdout(&out).contains("\"sample-2\""),
        "{}",
        stdout(&out)
    );
    let copy = files.path().join("copy.jsonl");
    parlor(
        &[
            "history",
            "export",
            "sample-2",
            "-f",
            "jsonl",
            "-o",
            copy.to_str().unwrap(),
        ],
        dir.path(),
    );
    let copied = std::fs::read_to_string(&copy).unwrap();
    assert_eq!(
        copied,
        exported.replacen("\"name\":\"sample\"", "\"name\":\"sample-2\"", 1)
    );

    // Without a terminal, delete needs --yes.
    let out = parlor(&["history", "delete", "sample-2"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("add --yes"), "{}", stderr(&out));
    let out = parlor(&["history", "delete", "sample-2", "--yes"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "erased session \"sample-2\" (4 messages, 0 saved engine states)\n"
    );
    let list = stdout(&parlor(&["history", "list"], dir.path()));
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(!list.contains("sample-2"), "{list}");
}

#[test]
fn a_bad_import_file_names_the_line() {
    let dir = sample_db();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "{\"v\":1,\"type\":\"message\"}\n").unwrap();
    let out = parlor(
        &["history", "import", file.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}:1: a message before the session line",
            file.path().display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn history_uses_the_bots_storage_under_home() {
    let home = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&home.path().join("storage/terminal")).unwrap();
        fill_sample(&store);
        let acme = Store::open(&home.path().join("storage/acme-support")).unwrap();
        acme.create_session("ticket-7", "acme-support", "m")
            .unwrap();
    }
    let in_home = |args: &[&str]| {
        Command::new(parlor_bin())
            .args(args)
            .env("PARLOR_HOME", home.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = in_home(&["history", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("sample"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("ticket-7"), "{}", stdout(&out));

    let out = in_home(&["history", "list", "--bot", "acme-support"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ticket-7"), "{}", stdout(&out));

    let out = in_home(&["history", "show", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).ends_with("; `parlor history list` shows the sessions\n"),
        "{}",
        stderr(&out)
    );
    let out = in_home(&["history", "show", "nope", "--bot", "acme-support"]);
    assert!(
        stderr(&out).ends_with("; `parlor history list --bot acme-support` shows the sessions\n"),
        "{}",
        stderr(&out)
    );

    // --home works like PARLOR_HOME.
    let out = Command::new(parlor_bin())
        .args(["--home"])
        .arg(home.path())
        .args(["history", "show", "sample"])
        .env_remove("PARLOR_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("# sample\n"));
}

#[test]
fn a_database_held_by_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Command::new(parlor_bin())
        .args(["debug", "store-writer", "--storage"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its first acknowledgement proves it holds the database open.
    let mut first = String::new();
    BufReader::new(writer.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("ack "), "{first:?}");

    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { dir: d } if d == dir.path()),
        "{err:?}"
    );
    let out = parlor(&["history", "list"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "parlor: the database in \"{}\" is in use by another parlor process; stop it or use another --home / storage directory\n",
            dir.path().display()
        )
    );
    writer.kill().unwrap();
    writer.wait().unwrap();
    Store::open(dir.path()).expect("free again once the holder is gone");
}

#[test]
fn the_store_bench_prints_its_table() {
    let out = Command::new(parlor_bin())
        .args(["debug", "store-bench", "--history", "200", "--flushed", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.contains("| appends/s, flush after each | "), "{text}");
    assert!(text.contains("| messages(), 200 messages | "), "{text}");
}
