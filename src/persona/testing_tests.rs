//! Unit tests of conversation-test files: parsing, validation, expectations, languages.

use super::*;

fn step(yaml: &str) -> Step {
    serde_yaml::from_str(yaml).expect("step")
}

fn seen<'a>(reply: &'a str, source: &'a ReplySource, handoff: bool) -> Observed<'a> {
    Observed {
        reply,
        source,
        handoff,
    }
}

#[test]
fn a_passing_step_has_no_failures() {
    let s = step(
        "user: hi\ncontains: [\"2 years\", receipt]\nnot_contains: sorry\nregex: '\\d-year|\\d years'\nfaq: warranty\nhandoff: false\nmax_chars: 200\nlanguage: en\n",
    );
    let src = ReplySource::Faq("warranty".into());
    let f = failures(
        &s,
        &seen(
            "Acme routers have a 2 years warranty. Keep the Receipt.",
            &src,
            false,
        ),
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn every_broken_expectation_is_listed_readably() {
    let s = step(
        "user: hi\ncontains: refund\nnot_contains: [Sorry]\nregex: '^\\d+$'\nfaq: returns\nhandoff: true\nmax_chars: 10\nlanguage: de\n",
    );
    let f = failures(
        &s,
        &seen(
            "Sorry, I cannot help with that.",
            &ReplySource::Model,
            false,
        ),
    );
    assert_eq!(
        f,
        vec![
            "expected the reply to contain \"refund\"",
            "expected the reply not to contain \"Sorry\"",
            "expected the reply to match /^\\d+$/",
            "expected FAQ entry \"returns\" to answer, but the model answered",
            "expected a handoff to a human, but none happened",
            "expected at most 10 characters, the reply has 31",
            "expected the reply in language \"de\", it looks like \"en\"",
        ]
    );
}

#[test]
fn rule_and_model_expectations_name_what_answered() {
    let s = step("user: x\nrule: human\n");
    let f = failures(&s, &seen("x", &ReplySource::Faq("contact".into()), false));
    assert_eq!(
        f,
        vec!["expected rule \"human\" to answer, but FAQ entry \"contact\" answered"]
    );
    let s = step("user: x\nmodel: true\n");
    let f = failures(&s, &seen("x", &ReplySource::Rule("r".into()), true));
    assert_eq!(
        f,
        vec!["expected the model to answer, but rule \"r\" answered"]
    );
    let s = step("user: x\nmodel: false\n");
    assert_eq!(
        failures(&s, &seen("x", &ReplySource::Model, false)),
        vec!["expected a FAQ entry or rule to answer, but the model answered"]
    );
}

#[test]
fn languages_are_told_apart() {
    for (text, lang) in [
        ("The router is on the shelf and you can reset it.", "en"),
        (
            "Der Router ist nicht mit dem Internet verbunden und ich weiß nicht warum.",
            "de",
        ),
        (
            "Le routeur est dans la boîte et vous pouvez le retourner pour un remboursement.",
            "fr",
        ),
        (
            "El envío es gratis para los pedidos de la Unión Europea y no tarda mucho.",
            "es",
        ),
    ] {
        assert_eq!(detect_language(text), Some(lang), "{text}");
    }
    assert_eq!(detect_language("12345 !!"), None);
}

#[test]
fn unknown_step_fields_are_rejected() {
    let e = serde_yaml::from_str::<Step>("user: x\ncontain: y\n").expect_err("typo");
    assert!(e.to_string().contains("unknown field `contain`"), "{e}");
}

#[test]
fn test_files_are_validated_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.test.yaml");
    std::fs::write(
        &path,
        "cases:\n  - name: a\n    steps:\n      - user: hi\n        regex: '(x'\n        language: xx\n  - name: b\n    persona: p\n    steps: []\n",
    )
    .expect("write");
    let problems: Vec<String> = load(&path)
        .expect_err("invalid")
        .iter()
        .map(|p| {
            p.to_string()
                .replace(&dir.path().display().to_string(), "DIR")
        })
        .collect();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems[0].starts_with("DIR/bad.test.yaml:2:5: cases[0]: names no persona"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with(
            "DIR/bad.test.yaml:5:16: cases[0].steps[0].regex: invalid regex \"(x\" at column 1"
        ),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with("DIR/bad.test.yaml:6:19: cases[0].steps[0].language: \"xx\""),
        "{problems:#?}"
    );
    assert!(
        problems[3].starts_with("DIR/bad.test.yaml:9:12: cases[1].steps: is empty"),
        "{problems:#?}"
    );
}

#[test]
fn test_files_are_found_recursively() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    for f in ["a.test.yaml", "sub/b.test.yml", "c.yaml", "sub/d.txt"] {
        std::fs::write(dir.path().join(f), "x").expect("write");
    }
    let found: Vec<String> = find_test_files(dir.path())
        .iter()
        .map(|p| {
            p.strip_prefix(dir.path())
                .expect("under")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(found, vec!["a.test.yaml", "sub/b.test.yml"]);
}
