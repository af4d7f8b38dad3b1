use super::locate::{Segment, segments};
use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Doc {
    name: String,
    #[serde(default)]
    sampling: Inner,
    #[serde(default)]
    examples: Vec<Ex>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Inner {
    temperature: Option<f32>,
    top_k: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Ex {
    user: String,
    assistant: String,
}

fn err(text: &str) -> String {
    parse::<Doc>("f.yaml", text).unwrap_err().to_string()
}

#[test]
fn parse_errors_carry_position_field_and_hint() {
    let cases = [
        (
            "name: a\nsampling:\n  temprature: 1\n",
            "f.yaml:3:3: sampling.temprature: unknown field; did you mean \"temperature\"?",
        ),
        (
            "name: a\nsampling:\n  temperature: hot\n",
            "f.yaml:3:16: sampling.temperature: invalid type: string \"hot\", expected a number",
        ),
        (
            "name: a\nnmae: b\n",
            "f.yaml:2:1: nmae: unknown field; did you mean \"name\"?",
        ),
        (
            "name: a\nzzz: b\n",
            "f.yaml:2:1: zzz: unknown field; known fields: name, sampling, examples",
        ),
        ("sampling: {}\n", "f.yaml:1:1: name: missing (required)"),
        (
            "name: a\nexamples:\n  - user: x\n    assistant: y\n  - user: x\n",
            "f.yaml:5:5: examples[1].assistant: missing (required)",
        ),
        (
            "name: a\n  b: c\n",
            "f.yaml:2:4: invalid YAML: mapping values are not allowed in this context; check the indentation and quoting near this position",
        ),
        (
            "- a\n- b\n",
            "f.yaml:1:1: invalid type: sequence, expected a mapping (`key: value` lines)",
        ),
        (
            "name: a\nexamples: {}\n",
            "f.yaml:2:11: examples: invalid type: map, expected a list (`- item` lines)",
        ),
        (
            "name: a\n---\nname: b\n",
            "f.yaml:2:1: the file holds more than one YAML document; remove the `---` separator lines",
        ),
        (
            "",
            "f.yaml:1:1: the file is empty; see the shipped examples in personas/ and bots/",
        ),
        (
            "# only a comment\n\n",
            "f.yaml:1:1: the file is empty; see the shipped examples in personas/ and bots/",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), want, "for {text:?}");
    }
}

#[test]
fn locate_finds_values_in_block_and_flow_style() {
    let block = "name: a\nsampling:\n  temperature: 3.5\n";
    assert_eq!(
        locate(block, "sampling.temperature"),
        Some(Location {
            line: 3,
            column: 16
        })
    );
    let seq = "name: a\nexamples:\n  - user: x\n    assistant: y\n  - user: z\n    assistant: w\n";
    assert_eq!(
        locate(seq, "examples[1].assistant"),
        Some(Location {
            line: 6,
            column: 16
        })
    );
    let flow = "name: a\nsampling: {top_k: 3, temperature: 9}\n";
    assert_eq!(
        locate(flow, "sampling.temperature"),
        Some(Location {
            line: 2,
            column: 35
        })
    );
    // A missing field points at its closest parent.
    assert_eq!(
        locate("name: a\nsampling:\n  top_k: 3\n", "sampling.temperature"),
        Some(Location { line: 3, column: 3 })
    );
    assert_eq!(
        locate("name: [", "name"),
        Some(Location { line: 1, column: 7 })
    );
}

#[test]
fn range_check_quotes_the_value_as_written() {
    let text = "a: 3\nb: {c: 2.50, d: 1}\n";
    let mut check = Checker::new("f.yaml", text);
    check.range("a", Some(3.0f32), 0.0..=2.0);
    check.range("b.c", Some(2.5f32), 0.0..=2.0);
    check.range("b.d", Some(1u32), 0..=2);
    let problems: Vec<String> = check
        .into_problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "f.yaml:1:4: a: 3 is out of range (0.0 to 2.0)",
            "f.yaml:2:8: b.c: 2.50 is out of range (0.0 to 2.0)",
        ]
    );
}

#[test]
fn read_refuses_oversize_and_non_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'a'; MAX_FILE_BYTES + 1]).unwrap();
    let p = read(&big).unwrap_err();
    assert_eq!(p.message, "the file is larger than 1024 KiB");
    let exact = dir.path().join("exact.yaml");
    std::fs::write(&exact, vec![b'#'; MAX_FILE_BYTES]).unwrap();
    assert!(read(&exact).is_ok());
    let bin = dir.path().join("bin.yaml");
    std::fs::write(&bin, b"name: a\nsystem: \xff\xfe\n").unwrap();
    let p = read(&bin).unwrap_err();
    assert_eq!(p.location, Some(Location { line: 2, column: 9 }));
    assert_eq!(p.message, "the file is not valid UTF-8 text");
    let missing = read(&dir.path().join("none.yaml")).unwrap_err();
    assert!(
        missing
            .to_string()
            .ends_with("could not open the file: no such file; check the path")
    );
    assert!(read(dir.path()).is_err(), "a directory is not a file");
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let text = format!("name: x\nsampling: {}", "[".repeat(MAX_FILE_BYTES - 20));
    let p = parse::<Doc>("f.yaml", &text).unwrap_err();
    assert_eq!(
        p.to_string(),
        "f.yaml:2:111: nested deeper than 100 levels; persona and bot files are shallow; is this the right file?"
    );
    // Brackets in quotes and comments, and apostrophes in plain text, do not count.
    let ok = format!(
        "name: don't '{b}' \"{b}\" # {b}\nsystem: [[1]]\n",
        b = "[".repeat(200)
    );
    assert!(too_deep(&ok).is_none());
    assert!(too_deep(&format!("a: {}", "{".repeat(MAX_DEPTH))).is_none());
}

#[test]
fn problems_are_capped_per_file() {
    let mut check = Checker::new("f.yaml", "a: 1\n");
    for _ in 0..MAX_PROBLEMS + 5 {
        check.error("a", "bad");
    }
    let problems = check.into_problems();
    assert_eq!(problems.len(), MAX_PROBLEMS + 1);
    assert_eq!(
        problems[MAX_PROBLEMS].to_string(),
        "f.yaml: 5 more problems not shown; fix the ones above first"
    );
}

#[test]
fn did_you_mean_only_suggests_close_words() {
    let words = ["temperature", "top_k", "top_p", "min_p"];
    assert_eq!(did_you_mean("temprature", words), Some("temperature"));
    assert_eq!(did_you_mean("TOP_K", words), Some("top_k"));
    assert_eq!(did_you_mean("banana", words), None);
}

#[test]
fn segments_parse_paths() {
    assert_eq!(
        segments("examples[2].user"),
        [
            Segment::Key("examples".into()),
            Segment::Index(2),
            Segment::Key("user".into())
        ]
    );
    assert_eq!(
        segments("stop[0]"),
        [Segment::Key("stop".into()), Segment::Index(0)]
    );
    assert_eq!(segments(""), []);
    assert_eq!(
        segments("a[x].b["),
        [Segment::Key("a".into()), Segment::Key("b".into())]
    );
}
