//! A PNG character card written by another program: `tests/fixtures/import/quill.png`, made by
//! `make_png_card.py` beside it with Python's standard library (zlib + struct), imports into a
//! valid persona with its text, greeting and lorebook intact.

use crate::common::parlor_bin;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

#[test]
fn the_committed_card_is_what_the_python_script_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quill.png");
    let status = Command::new("python3")
        .arg(fixtures().join("make_png_card.py"))
        .arg(&out)
        .status()
        .expect("python3 runs (scripts/setup.sh installs it)");
    assert!(status.success());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(fixtures().join("quill.png")).unwrap(),
        "tests/fixtures/import/quill.png is stale: run make_png_card.py"
    );
}

fn parlor(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(parlor_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("runs parlor")
}

#[test]
fn a_png_card_made_by_another_program_imports_into_a_valid_persona() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("personas")).unwrap();
    let card = fixtures().join("quill.png");
    let out = parlor(
        home.path(),
        &["persona", "import", card.to_str().expect("utf-8")],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    let path = home.path().join("personas/quill.yaml");
    let yaml = std::fs::read_to_string(&path).expect("personas/quill.yaml written");
    let persona = parlor::persona::Persona::parse(&path, &yaml).expect("the persona is valid");
    assert_eq!(persona.name(), "Quill");
    for expected in [
        "café owner who writes poems on receipts",
        "warm, dry humour",
        "Welcome in, {{user}}! Coffee or a poem?",
        "Roses are red, the espresso is strong.",
        "The café serves only espresso and oat-milk cortados.",
        "menu",
    ] {
        assert!(
            yaml.contains(expected),
            "{expected:?} missing from:\n{yaml}"
        );
    }
    let check = parlor(home.path(), &["check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
