//! `parlor check` on the real binary: the shipped files pass; every invalid fixture in
//! `tests/fixtures/invalid/` gives its exact `file:line:col: field: problem` line and exit 1.

use crate::common::parlor_bin;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `parlor check ARGS` with `--home home` from the repository root; (exit code, stdout).
fn check(home: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(parlor_bin())
        .current_dir(repo())
        .arg("--home")
        .arg(home)
        .arg("check")
        .args(args)
        .env_remove("PARLOR_HOME")
        .output()
        .expect("run parlor");
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf-8 output"),
    )
}

/// Check one fixture in a fresh seeded home: exit 1 and exactly `lines` then the summary.
fn assert_fixture(name: &str, lines: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let file = format!("tests/fixtures/invalid/{name}");
    let (code, out) = check(home.path(), &[&file]);
    let kind = if name.starts_with("bot-") {
        "0 personas and 1 bot"
    } else {
        "1 persona and 0 bots"
    };
    let problems = if lines.len() == 1 {
        "1 problem".to_string()
    } else {
        format!("{} problems", lines.len())
    };
    let mut want: Vec<String> = lines.iter().map(|l| format!("{file}:{l}")).collect();
    want.push(format!("checked {kind}: {problems} in 1 file"));
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    assert_eq!(code, 1);
}

#[test]
fn shipped_personas_and_bots_pass() {
    let (code, out) = check(&repo(), &[]);
    assert_eq!(out, "checked 5 personas and 2 bots: no problems\n");
    assert_eq!(code, 0);
}

#[test]
fn a_new_home_is_seeded_with_valid_files() {
    let home = tempfile::tempdir().unwrap();
    let (code, out) = check(home.path(), &[]);
    assert_eq!(out, "checked 3 personas and 2 bots: no problems\n");
    assert_eq!(code, 0);
    assert!(home.path().join("personas/assistant.yaml").is_file());
    assert!(home.path().join("bots/terminal.yaml").is_file());
}

#[test]
fn explicit_files_and_directories() {
    let (code, out) = check(&repo(), &["personas/pirate.yaml", "bots"]);
    assert_eq!(out, "checked 1 persona and 2 bots: no problems\n");
    assert_eq!(code, 0);
}

#[test]
fn bad_temperature() {
    assert_fixture(
        "bad-temperature.yaml",
        &["5:16: sampling.temperature: 3.5 is out of range (0.0 to 2.0)"],
    );
}

#[test]
fn unknown_field_with_hint() {
    assert_fixture(
        "unknown-field.yaml",
        &["5:3: sampling.temprature: unknown field; did you mean \"temperature\"?"],
    );
}

#[test]
fn unknown_top_level_field_lists_known_fields() {
    assert_fixture(
        "unknown-top-field.yaml",
        &[
            "4:1: personality: unknown field; known fields: name, description, system, greeting, examples, model, sampling, stop, context, faq, knowledge, grounding, ratings, rules, extensions",
        ],
    );
}

#[test]
fn wrong_type() {
    assert_fixture(
        "wrong-type.yaml",
        &[
            "5:15: sampling.max_tokens: invalid type: string \"lots\", expected a whole number (0 or more)",
        ],
    );
}

#[test]
fn bad_yaml_syntax() {
    assert_fixture(
        "bad-syntax.yaml",
        &[
            "3:9: invalid YAML: mapping values are not allowed in this context; check the indentation and quoting near this position",
        ],
    );
}

#[test]
fn rule_switching_to_a_missing_persona() {
    let home = tempfile::tempdir().unwrap();
    let file = "tests/fixtures/invalid/rule-switch-unknown.yaml";
    let (code, out) = check(home.path(), &[file]);
    assert_eq!(
        out,
        format!(
            "{file}:8:25: rules[0].then[0].switch_persona: no persona \"pirat\" in {}; did you mean \"pirate\"?\nchecked 1 persona and 0 bots: 1 problem in 1 file\n",
            home.path().join("personas").display()
        )
    );
    assert_eq!(code, 1);
}

#[test]
fn rule_switching_to_a_persona_that_does_not_load() {
    let home = tempfile::tempdir().unwrap();
    let personas = home.path().join("personas");
    std::fs::create_dir_all(&personas).unwrap();
    std::fs::write(
        personas.join("switcher.yaml"),
        "name: Switcher\nsystem: Hi.\nrules:\n  - id: go\n    when: { contains_any: [go] }\n    then: [ { switch_persona: broken }, { reply: Switching. } ]\n",
    )
    .unwrap();
    std::fs::write(personas.join("broken.yaml"), "name: Broken\n").unwrap();
    let file = personas.join("switcher.yaml");
    let (code, out) = check(home.path(), &[file.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!(
            "{}:6:31: rules[0].then[0].switch_persona: persona \"broken\" does not load: ",
            file.display()
        )),
        "{out}"
    );
    assert!(
        lines[0].ends_with(&format!(
            "{}:1:1: system: missing (required); write who the bot is and how it answers",
            personas.join("broken.yaml").display()
        )),
        "{out}"
    );
    assert_eq!(code, 1);
}

#[test]
fn unknown_macro() {
    assert_fixture(
        "unknown-macro.yaml",
        &["3:9: system: unknown macro \"{{char}}\"; did you mean {{bot}}?"],
    );
}

#[test]
fn missing_system() {
    assert_fixture(
        "missing-system.yaml",
        &["2:1: system: missing (required); write who the bot is and how it answers"],
    );
}

#[test]
fn empty_file() {
    assert_fixture(
        "empty.yaml",
        &["1:1: the file is empty; see the shipped examples in personas/ and bots/"],
    );
}

#[test]
fn reply_reserve_larger_than_window() {
    assert_fixture(
        "reserve-too-big.yaml",
        &[
            "6:18: context.reply_reserve: 2048 leaves no room for the prompt in a 1024-token window; make it well below context.window",
        ],
    );
}

#[test]
fn two_documents() {
    assert_fixture(
        "two-documents.yaml",
        &["3:1: the file holds more than one YAML document; remove the `---` separator lines"],
    );
}

#[test]
fn not_utf8() {
    assert_fixture(
        "not-utf8.yaml",
        &["2:12: the file is not valid UTF-8 text; save it as UTF-8"],
    );
}

#[test]
fn deep_nesting() {
    assert_fixture(
        "deep-nesting.yaml",
        &[
            "3:111: nested deeper than 100 levels; persona and bot files are shallow; is this the right file?",
        ],
    );
}

#[test]
fn bot_with_missing_persona() {
    let home = tempfile::tempdir().unwrap();
    let file = "tests/fixtures/invalid/bot-missing-persona.yaml";
    let (code, out) = check(home.path(), &[file]);
    let personas = home.path().join("personas");
    assert_eq!(
        out,
        format!(
            "{file}:2:10: persona: no persona \"pirat\" in {}; did you mean \"pirate\"?\nchecked 0 personas and 1 bot: 1 problem in 1 file\n",
            personas.display()
        )
    );
    assert_eq!(code, 1);
}

#[test]
fn bot_with_unknown_engine_kind() {
    assert_fixture(
        "bot-engine-kind.yaml",
        &["4:9: engine.kind: unknown value \"ollama\"; did you mean \"llama\"?"],
    );
}

#[test]
fn openai_bot_without_url() {
    assert_fixture(
        "bot-openai-no-url.yaml",
        &[
            "4:3: engine.base_url: missing (required with `kind: openai`); e.g. `base_url: http://127.0.0.1:8080/v1`",
            "6:12: engine.threads: only used with `kind: llama`; remove it, or set `kind: llama`",
        ],
    );
}

#[test]
fn oversize_file_is_refused() {
    // Generated here rather than committed: 1 MiB of fixture is not worth keeping in git.
    let home = tempfile::tempdir().unwrap();
    let big = home.path().join("big.yaml");
    let mut text = String::from("name: Big\nsystem: |\n");
    while text.len() <= 1 << 20 {
        text.push_str("  lorem ipsum dolor sit amet\n");
    }
    std::fs::write(&big, text).unwrap();
    let (code, out) = check(home.path(), &[big.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "{}: the file is larger than 1024 KiB; persona and bot files are small; is this the right file?\nchecked 1 persona and 0 bots: 1 problem in 1 file\n",
            big.display()
        )
    );
    assert_eq!(code, 1);
}

#[test]
fn every_fixture_fails_and_nothing_crashes() {
    let home = tempfile::tempdir().unwrap();
    let (code, out) = check(
        home.path(),
        &["tests/fixtures/invalid", "/dev/null", "/no/such.yaml"],
    );
    let fixtures = std::fs::read_dir(repo().join("tests/fixtures/invalid"))
        .unwrap()
        .count();
    let bad_files: std::collections::BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.split_once(':').map(|(f, _)| f))
        .filter(|f| !f.starts_with("checked"))
        .collect();
    assert_eq!(bad_files.len(), fixtures + 2, "{out}");
    assert!(
        out.contains("/no/such.yaml: could not open the file: no such file; check the path"),
        "{out}"
    );
    assert!(out.contains("/dev/null:1:1: the file is empty"), "{out}");
    assert_eq!(code, 1);
}
