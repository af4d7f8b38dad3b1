//! Conversation tests (`*.test.yaml`): cases naming a persona, each a list of steps (`user:`
//! text plus expectations on the reply). This module parses and validates test files and checks
//! one reply against its expectations; `parlor test` (`cmd::test`) runs them on the engine.
//!
//! ```yaml
//! persona: acme-support          # default for every case
//! cases:
//!   - name: shipping time comes from the FAQ
//!     steps:
//!       - user: how long does shipping take?
//!         faq: shipping-time
//!         contains: "2 to 4 business days"
//! ```

use super::rules::compile_regex;
use crate::chat::ReplySource;
use crate::yaml::{self, Checker, Problem};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A test file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Persona of cases that name none.
    #[serde(default)]
    pub persona: Option<String>,
    /// The cases.
    pub cases: Vec<TestCase>,
}

/// One conversation: a fresh session, steps in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What it checks (shown in the output).
    pub name: String,
    /// Persona name or path (default: the file's).
    #[serde(default)]
    pub persona: Option<String>,
    /// The turns.
    pub steps: Vec<Step>,
}

/// Text or a list of texts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The texts.
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// One turn: what the user says, what the reply must satisfy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The user's message.
    pub user: String,
    /// The reply contains each of these (case-insensitive).
    #[serde(default)]
    pub contains: Option<OneOrMany>,
    /// The reply contains none of these (case-insensitive).
    #[serde(default)]
    pub not_contains: Option<OneOrMany>,
    /// The reply matches this regex (case-insensitive).
    #[serde(default)]
    pub regex: Option<String>,
    /// The FAQ entry with this id answered (without the model).
    #[serde(default)]
    pub faq: Option<String>,
    /// The rule with this id answered.
    #[serde(default)]
    pub rule: Option<String>,
    /// The model answered (`true`) or not (`false`).
    #[serde(default)]
    pub model: Option<bool>,
    /// A handoff to a human happened (`true`) or not (`false`) by the end of this step.
    #[serde(default)]
    pub handoff: Option<bool>,
    /// The reply is at most this many characters.
    #[serde(default)]
    pub max_chars: Option<usize>,
    /// The reply is in this language (`en`, `de`, `fr`, `es`, `it`, `nl`, `pt`).
    #[serde(default)]
    pub language: Option<String>,
}

/// Languages [`detect_language`] knows, with their most frequent short words.
const LANGUAGES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "and", "is", "you", "to", "of", "a", "it", "in", "your", "for", "are", "with",
            "this", "can", "i",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "und", "ist", "sie", "das", "nicht", "ich", "zu", "mit", "ein", "eine",
            "den", "es", "auf", "für",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "et", "est", "vous", "les", "de", "un", "une", "pour", "que", "je", "pas",
            "des", "il", "avec",
        ],
    ),
    (
        "es",
        &[
            "el", "la", "y", "es", "que", "de", "los", "un", "una", "para", "por", "con", "no",
            "su", "se", "usted",
        ],
    ),
    (
        "it",
        &[
            "il", "la", "e", "è", "che", "di", "un", "una", "per", "non", "sono", "con", "lo",
            "gli", "si", "ti",
        ],
    ),
    (
        "nl",
        &[
            "de", "het", "en", "is", "een", "van", "je", "niet", "dat", "ik", "voor", "met", "op",
            "zijn", "u", "te",
        ],
    ),
    (
        "pt",
        &[
            "o", "a", "e", "é", "que", "de", "um", "uma", "para", "não", "com", "os", "você", "do",
            "da", "se",
        ],
    ),
];

/// The most likely language of `text` by its frequent short words, or `None` if no known
/// word occurs.
pub fn detect_language(text: &str) -> Option<&'static str> {
    let words = super::text::words(text);
    LANGUAGES
        .iter()
        .map(|(code, common)| {
            let hits = words
                .iter()
                .filter(|w| common.contains(&w.as_str()))
                .count();
            (hits, *code)
        })
        .filter(|(hits, _)| *hits > 0)
        .max_by_key(|(hits, code)| (*hits, std::cmp::Reverse(*code)))
        .map(|(_, code)| code)
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed<'a> {
    /// The reply text.
    pub reply: &'a str,
    /// What produced it.
    pub source: &'a ReplySource,
    /// Whether the session is handed off to a human after the step.
    pub handoff: bool,
}

/// Each expectation of `step` that `seen` breaks, as a readable sentence.
pub fn failures(step: &Step, seen: &Observed<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let lower = seen.reply.to_lowercase();
    for want in step.contains.iter().flat_map(OneOrMany::items) {
        if !lower.contains(&want.to_lowercase()) {
            out.push(format!("expected the reply to contain \"{want}\""));
        }
    }
    for unwanted in step.not_contains.iter().flat_map(OneOrMany::items) {
        if lower.contains(&unwanted.to_lowercase()) {
            out.push(format!("expected the reply not to contain \"{unwanted}\""));
        }
    }
    if let Some(pattern) = &step.regex {
        match compile_regex(pattern) {
            Ok(re) if !re.is_match(seen.reply) => {
                out.push(format!("expected the reply to match /{pattern}/"));
            }
            Ok(_) => {}
            Err(e) => out.push(e),
        }
    }
    let got = describe_source(seen.source);
    if let Some(id) = &step.faq
        && *seen.source != ReplySource::Faq(id.clone())
    {
        out.push(format!(
            "expected FAQ entry \"{id}\" to answer, but {got} answered"
        ));
    }
    if let Some(id) = &step.rule
        && *seen.source != ReplySource::Rule(id.clone())
    {
        out.push(format!(
            "expected rule \"{id}\" to answer, but {got} answered"
        ));
    }
    if let Some(model) = step.model
        && model != (*seen.source == ReplySource::Model)
    {
        out.push(if model {
            format!("expected the model to answer, but {got} answered")
        } else {
            "expected a FAQ entry or rule to answer, but the model answered".to_string()
        });
    }
    if let Some(h) = step.handoff
        && h != seen.handoff
    {
        out.push(if h {
            "expected a handoff to a human, but none happened".to_string()
        } else {
            "expected no handoff, but the conversation was handed to a human".to_string()
        });
    }
    if let Some(max) = step.max_chars {
        let n = seen.reply.chars().count();
        if n > max {
            out.push(format!(
                "expected at most {max} characters, the reply has {n}"
            ));
        }
    }
    if let Some(lang) = &step.language {
        let found = detect_language(seen.reply);
        if found != Some(lang.as_str()) {
            out.push(format!(
                "expected the reply in language \"{lang}\", it looks like {}",
                found.map_or("no known language".to_string(), |l| format!("\"{l}\""))
            ));
        }
    }
    out
}

/// `the model`, `FAQ entry "x"`, `rule "y"`.
pub fn describe_source(source: &ReplySource) -> String {
    match source {
        ReplySource::Model => "the model".to_string(),
        ReplySource::Faq(id) => format!("FAQ entry \"{id}\""),
        ReplySource::Rule(id) => format!("rule \"{id}\""),
        ReplySource::Choices => "\"did you mean\" choices".to_string(),
        ReplySource::Unsure => "the grounded \"not sure\" reply".to_string(),
    }
}

/// Load and validate a test file; every problem located `file:line:col`.
pub fn load(path: &Path) -> Result<TestFile, Vec<Problem>> {
    let text = yaml::read(path).map_err(|p| vec![p])?;
    let file = yaml::display_path(path);
    let parsed: TestFile = yaml::parse(&file, &text).map_err(|p| vec![p])?;
    let mut check = Checker::new(file, &text);
    if parsed.cases.is_empty() {
        check.error("cases", "is empty; add at least one case");
    }
    for (i, case) in parsed.cases.iter().enumerate() {
        if case.persona.is_none() && parsed.persona.is_none() {
            check.error_hint(
                &format!("cases[{i}]"),
                "names no persona",
                "add `persona: NAME` to the case or at the top of the file",
            );
        }
        if case.steps.is_empty() {
            check.error(
                &format!("cases[{i}].steps"),
                "is empty; add a `- user: ...` step",
            );
        }
        for (j, step) in case.steps.iter().enumerate() {
            let at = format!("cases[{i}].steps[{j}]");
            if step.user.trim().is_empty() {
                check.error(&format!("{at}.user"), "is empty");
            }
            if let Some(r) = &step.regex
                && let Err(e) = compile_regex(r)
            {
                check.error(&format!("{at}.regex"), e);
            }
            if let Some(l) = &step.language
                && !LANGUAGES.iter().any(|(c, _)| c == l)
            {
                check.error(
                    &format!("{at}.language"),
                    format!(
                        "\"{l}\" is not a language parlor can recognise; use one of {}",
                        LANGUAGES
                            .iter()
                            .map(|(c, _)| *c)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }
    check.finish(parsed)
}

/// The `*.test.yaml` files under `dir` (recursively), sorted.
pub fn find_test_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.yaml") || n.ends_with(".test.yml"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
#[path = "testing_tests.rs"]
mod tests;
