//! `parlor check`: validate persona and bot files. Each problem is one line
//! `file:line:col: field.path: problem` (with a hint where one helps); exit 1 if any, else 0
//! with a one-line summary.

use crate::cli::GlobalArgs;
use crate::config::BotSpec;
use crate::home::{self, Home};
use crate::persona::Persona;
use crate::persona::rules::Action;
use crate::yaml::{self, Problem};
use std::path::{Path, PathBuf};

/// Options of `parlor check`.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Files or directories to check (default: all personas and bots under the home). A
    /// directory holding `personas/` or `bots/` is checked like a home.
    pub paths: Vec<PathBuf>,
    /// Print a JSON array, one object per problem (file, line, col, field, problem, hint),
    /// instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// What a file defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A persona (`personas/*.yaml`).
    Persona,
    /// A bot (`bots/*.yaml`).
    Bot,
}

/// The result of checking some files.
#[derive(Debug, Default)]
pub struct Report {
    /// Personas checked.
    pub personas: usize,
    /// Bots checked.
    pub bots: usize,
    /// Files with at least one problem.
    pub bad_files: usize,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
    /// Things that work but are likely wrong (printed, not failing the check).
    pub warnings: Vec<Problem>,
}

impl Report {
    /// `checked 3 personas and 2 bots: no problems` (or `: 2 problems in 1 file`).
    pub fn summary(&self) -> String {
        let counted = format!(
            "checked {} and {}",
            plural(self.personas, "persona"),
            plural(self.bots, "bot")
        );
        if self.problems.is_empty() {
            format!("{counted}: no problems")
        } else {
            format!(
                "{counted}: {} in {}",
                plural(self.problems.len(), "problem"),
                plural(self.bad_files, "file")
            )
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Run `parlor check`.
pub fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let home = Home::resolve(global.home.as_deref())?;
    let report = check_paths(&home, &args.paths);
    if args.json {
        let problems: Vec<serde_json::Value> = report.problems.iter().map(problem_json).collect();
        println!("{}", serde_json::Value::Array(problems));
    } else {
        for p in &report.problems {
            println!("{p}");
        }
        for w in &report.warnings {
            println!("warning: {w}");
        }
        println!("{}", report.summary());
    }
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}

/// One problem as JSON: `file`, `line` and `col` (null when unknown), `field` (empty for the
/// whole file), `problem`, `hint` (null when there is none).
pub fn problem_json(p: &Problem) -> serde_json::Value {
    serde_json::json!({
        "file": p.file,
        "line": p.location.map(|l| l.line),
        "col": p.location.map(|l| l.column),
        "field": p.field,
        "problem": p.message,
        "hint": p.hint,
    })
}

/// Check `paths` (files or directories), or the whole home when `paths` is empty.
pub fn check_paths(home: &Home, paths: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let mut targets = Vec::new();
    if paths.is_empty() {
        collect_home(home.root(), &mut targets);
    }
    for path in paths {
        if path.is_dir() {
            if path.join("personas").is_dir() || path.join("bots").is_dir() {
                collect_home(path, &mut targets);
            } else {
                for file in home::yaml_files(path) {
                    let kind = classify(&file, None);
                    targets.push((kind, file));
                }
            }
        } else {
            targets.push((classify(path, None), path.clone()));
        }
    }
    for (kind, path) in targets {
        let problems = check_file(home, kind, &path);
        if kind == Kind::Persona && problems.is_empty() {
            report.warnings.extend(persona_warnings(&path));
        }
        match kind {
            Kind::Persona => report.personas += 1,
            Kind::Bot => report.bots += 1,
        }
        if !problems.is_empty() {
            report.bad_files += 1;
            report.problems.extend(problems);
        }
    }
    report
}

fn collect_home(root: &Path, targets: &mut Vec<(Kind, PathBuf)>) {
    let at = Home::at(root);
    targets.extend(at.persona_files().into_iter().map(|f| (Kind::Persona, f)));
    targets.extend(at.bot_files().into_iter().map(|f| (Kind::Bot, f)));
}

/// Persona or bot: by the directory it is in (`personas/`, `bots/`), else by its top-level
/// keys (a bot has `persona:` or `engine:`).
fn classify(path: &Path, text: Option<&str>) -> Kind {
    match path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        Some("bots") => return Kind::Bot,
        Some("personas") => return Kind::Persona,
        _ => {}
    }
    let owned;
    let text = match text {
        Some(t) => t,
        None => {
            owned = yaml::read(path).unwrap_or_default();
            &owned
        }
    };
    let keys = yaml::top_level_keys(text);
    if keys.iter().any(|k| k == "persona" || k == "engine") && !keys.iter().any(|k| k == "system") {
        Kind::Bot
    } else {
        Kind::Persona
    }
}

/// The problems of one file. A bot's persona and the personas a persona's rules switch to must
/// exist and load, in the home the file belongs to (the parent of its `bots/` or `personas/`
/// directory, else `home`).
pub fn check_file(home: &Home, kind: Kind, path: &Path) -> Vec<Problem> {
    let text = match yaml::read(path) {
        Ok(t) => t,
        Err(p) => return vec![p],
    };
    let dir = match kind {
        Kind::Persona => "personas",
        Kind::Bot => "bots",
    };
    let own_home = path
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == dir))
        .and_then(Path::parent)
        .map(Home::at)
        .unwrap_or_else(|| home.clone());
    match kind {
        Kind::Persona => match Persona::parse(path, &text) {
            Ok(persona) => switch_targets(&own_home, path, &text, &persona),
            Err(e) => e.problems().to_vec(),
        },
        Kind::Bot => match BotSpec::parse(path, &text) {
            Ok(spec) => match spec.find_persona(&own_home) {
                Ok(_) => Vec::new(),
                Err(p) => vec![p],
            },
            Err(e) => e.problems().to_vec(),
        },
    }
}

/// Words too common to hand a conversation to a human on their own: they appear in questions
/// the FAQ answers ("someone changed my password"). Use phrases or `intent: human`.
const GENERIC_HANDOFF_WORDS: [&str; 24] = [
    "someone",
    "somebody",
    "anyone",
    "anybody",
    "person",
    "people",
    "human",
    "agent",
    "help",
    "support",
    "problem",
    "issue",
    "question",
    "call",
    "contact",
    "talk",
    "speak",
    "chat",
    "staff",
    "team",
    "service",
    "operator",
    "representative",
    "please",
];

/// Warnings for a persona that loads: a handoff rule triggered by a single generic word.
pub fn persona_warnings(path: &Path) -> Vec<Problem> {
    let Ok(text) = yaml::read(path) else {
        return Vec::new();
    };
    let Ok(persona) = Persona::parse(path, &text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, rule) in persona.rules().rules().iter().enumerate() {
        if !rule.actions.contains(&Action::Handoff) {
            continue;
        }
        for (j, phrase) in rule.raw().when.contains_any.iter().enumerate() {
            let word = phrase.trim().to_lowercase();
            if !GENERIC_HANDOFF_WORDS.contains(&word.as_str()) {
                continue;
            }
            let field = format!("rules[{i}].when.contains_any[{j}]");
            out.push(Problem {
                file: yaml::display_path(path),
                location: yaml::locate(&text, &field),
                field,
                message: format!(
                    "\"{word}\" alone hands off questions that only mention it (\"{word} changed my password, ...\")"
                ),
                hint: Some(
                    "use a phrase (\"talk to a human\") or a rule with `when: { intent: human }`"
                        .into(),
                ),
            });
        }
    }
    out
}

/// Each `switch_persona` target of `persona`'s rules must be a persona of `home` (or a built-in)
/// that loads: otherwise the switch would fail in a live chat, where all the bot can do is log
/// it and keep the current persona.
fn switch_targets(home: &Home, path: &Path, text: &str, persona: &Persona) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, rule) in persona.rules().rules().iter().enumerate() {
        for (j, action) in rule.actions.iter().enumerate() {
            let Action::SwitchPersona(target) = action else {
                continue;
            };
            let field = format!("rules[{i}].then[{j}].switch_persona");
            let (message, hint) = match home.persona_source(target) {
                None => {
                    let (message, hint) = home.persona_not_found(target);
                    (message, Some(hint))
                }
                Some(source) => match crate::persona::library::load(&source) {
                    Ok(_) => continue,
                    Err(e) => (format!("persona \"{target}\" does not load: {e}"), None),
                },
            };
            problems.push(Problem {
                file: yaml::display_path(path),
                location: yaml::locate(text, &field),
                field,
                message,
                hint,
            });
        }
    }
    problems
}
