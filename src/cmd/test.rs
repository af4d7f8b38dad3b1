//! `parlor test [FILE...]`: run conversation tests (`*.test.yaml`, default: every one under
//! `personas/`) against the real engine with greedy sampling and a fixed seed, each case in a
//! fresh session of a temporary database. Prints pass/fail per case with the reply and what
//! failed (or `--json`); exit 1 if anything failed.

use crate::bot::{Bot, TurnOptions};
use crate::chat::ReplySource;
use crate::cli::{BotArgs, GlobalArgs};
use crate::engine::Engine;
use crate::home::Home;
use crate::launch;
use crate::persona::testing::{self, Observed, TestCase};
use crate::store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Seed of every test turn (sampling is greedy; the seed only matters to samplers that use it).
pub const TEST_SEED: u32 = 1234;

/// Options of `parlor test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files or directories (default: every *.test.yaml under personas/).
    pub files: Vec<PathBuf>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
    /// Bot and model to test with (`--persona` is the default for cases naming none).
    #[command(flatten)]
    pub bot: BotArgs,
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// What the user said.
    pub user: String,
    /// The reply (empty if the turn failed).
    pub reply: String,
    /// What answered.
    pub source: ReplySource,
    /// Whether the session was handed to a human after the step.
    pub handoff: bool,
    /// Broken expectations.
    pub failures: Vec<String>,
    /// FAQ scores (best, runner-up) for this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Box<crate::matching::MatchInfo>>,
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// The test file.
    pub file: String,
    /// The case name.
    pub name: String,
    /// The persona it ran against.
    pub persona: String,
    /// No step failed (and the case could run).
    pub passed: bool,
    /// Why the case could not run, if it could not.
    pub error: Option<String>,
    /// The steps that ran.
    pub steps: Vec<StepReport>,
}

/// Per persona: how many steps each source answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceCounts {
    /// Steps answered by the FAQ (no model).
    pub faq: usize,
    /// Steps answered by rules (no model).
    pub rule: usize,
    /// Steps answered by the model.
    pub model: usize,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every case.
    pub cases: Vec<CaseReport>,
    /// Problems in test files (each `file:line:col: ...`).
    pub file_problems: Vec<String>,
    /// Cases passed.
    pub passed: usize,
    /// Cases failed.
    pub failed: usize,
    /// Answer sources per persona.
    pub sources: BTreeMap<String, SourceCounts>,
}

/// Run `parlor test`.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let home = Home::resolve(global.home.as_deref())?;
    crate::logging::init(&home, &global.log_options())?;
    let files = if args.files.is_empty() {
        testing::find_test_files(&home.personas_dir())
    } else {
        let mut out = Vec::new();
        for f in &args.files {
            if f.is_dir() {
                out.extend(testing::find_test_files(f));
            } else {
                out.push(f.clone());
            }
        }
        out
    };
    if files.is_empty() {
        anyhow::bail!(
            "no test files found; write personas/NAME.test.yaml or pass files to `parlor test`"
        );
    }
    let report = run_files(&home, &args.bot, &files, !args.json).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    let ok = report.failed == 0 && report.file_problems.is_empty();
    Ok(if ok { 0 } else { 1 })
}

/// Run every case of `files`; with `live`, print each case as it finishes.
pub async fn run_files(
    home: &Home,
    bot_args: &BotArgs,
    files: &[PathBuf],
    live: bool,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut engines: HashMap<String, Arc<dyn Engine>> = HashMap::new();
    let retriever = launch::retriever(home);
    for path in files {
        let file = crate::yaml::display_path(path);
        let tests = match testing::load(path) {
            Ok(t) => t,
            Err(problems) => {
                for p in problems {
                    if live {
                        println!("{p}");
                    }
                    report.file_problems.push(p.to_string());
                }
                continue;
            }
        };
        for case in &tests.cases {
            let persona = case
                .persona
                .clone()
                .or_else(|| tests.persona.clone())
                .or_else(|| bot_args.persona.clone())
                .unwrap_or_default();
            let result = run_case(home, bot_args, &persona, case, &mut engines, &retriever).await;
            let case_report = match result {
                Ok(steps) => CaseReport {
                    file: file.clone(),
                    name: case.name.clone(),
                    persona: persona.clone(),
                    passed: steps.iter().all(|s| s.failures.is_empty()),
                    error: None,
                    steps,
                },
                Err(e) => CaseReport {
                    file: file.clone(),
                    name: case.name.clone(),
                    persona: persona.clone(),
                    passed: false,
                    error: Some(format!("{e:#}")),
                    steps: Vec::new(),
                },
            };
            let counts = report.sources.entry(persona).or_default();
            for s in &case_report.steps {
                match s.source {
                    ReplySource::Faq(_) => counts.faq += 1,
                    ReplySource::Rule(_) => counts.rule += 1,
                    ReplySource::Model | ReplySource::Choices | ReplySource::Unsure => {
                        counts.model += 1;
                    }
                }
            }
            if case_report.passed {
                report.passed += 1;
            } else {
                report.failed += 1;
            }
            if live {
                print_case(&case_report);
            }
            report.cases.push(case_report);
        }
    }
    Ok(report)
}

async fn run_case(
    home: &Home,
    bot_args: &BotArgs,
    persona: &str,
    case: &TestCase,
    engines: &mut HashMap<String, Arc<dyn Engine>>,
    retriever: &crate::support::index::Retriever,
) -> anyhow::Result<Vec<StepReport>> {
    let args = BotArgs {
        persona: Some(persona.to_string()),
        ..bot_args.clone()
    };
    let plan = launch::plan(home.clone(), &args)?;
    let engine = launch::shared_engine(&plan, engines).await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let sampling = crate::engine::Sampling {
        temperature: 0.0,
        seed: TEST_SEED,
        ..plan.persona.sampling().clone()
    };
    let bot = Bot::new(plan.persona, engine, store.clone());
    bot.set_retriever(retriever.clone());
    let session = bot.new_session(Some("test"))?;
    let mut steps = Vec::new();
    // A handoff stays asked for once a rule asked (the session's state keeps it): the outcome
    // of each turn says so; a failed turn keeps what the last one said.
    let mut handoff = false;
    for step in &case.steps {
        let opts = TurnOptions {
            sampling: Some(sampling.clone()),
            ..Default::default()
        };
        let (reply, source, retrieval, mut failures) =
            match bot.turn_with(session.id, &step.user, opts).finish().await {
                Ok(o) => {
                    handoff = o.handoff;
                    (o.text, o.source, o.retrieval, Vec::new())
                }
                Err(msg) => (
                    String::new(),
                    ReplySource::Model,
                    None,
                    vec![format!("the turn failed: {msg}")],
                ),
            };
        failures.extend(testing::failures(
            step,
            &Observed {
                reply: &reply,
                source: &source,
                handoff,
            },
        ));
        steps.push(StepReport {
            user: step.user.clone(),
            reply,
            source,
            handoff,
            failures,
            retrieval,
        });
    }
    Ok(steps)
}

/// The human report of one case. Replies, messages and failures quote model and test text:
/// each line is printed inert ([`crate::sanitize::inert_line`]), so a reply's escape sequences
/// cannot act on the terminal (`--json` keeps them exact).
fn print_case(case: &CaseReport) {
    let line = |text: String| println!("{}", crate::sanitize::inert_line(&text));
    let mark = if case.passed { "PASS" } else { "FAIL" };
    line(format!(
        "{mark} {}: {} [{}]",
        case.file, case.name, case.persona
    ));
    if let Some(e) = &case.error {
        line(format!("    could not run: {e}"));
    }
    for (i, s) in case.steps.iter().enumerate() {
        if case.passed {
            continue;
        }
        line(format!("    step {}: user: {}", i + 1, s.user));
        line(format!(
            "      reply ({}): {}",
            testing::describe_source(&s.source),
            quote(&s.reply)
        ));
        if let Some(r) = &s.retrieval {
            line(format!("      FAQ match: {}", r.summary()));
        }
        for f in &s.failures {
            line(format!("      - {f}"));
        }
    }
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.trim().replace('\n', "\\n"))
}

fn print_summary(report: &Report) {
    for (persona, c) in &report.sources {
        let total = c.faq + c.rule + c.model;
        if total == 0 {
            continue;
        }
        println!(
            "{persona}: {} of {total} replies from the FAQ ({}%), {} from rules, {} from the model",
            c.faq,
            c.faq * 100 / total,
            c.rule,
            c.model
        );
    }
    let problems = if report.file_problems.is_empty() {
        String::new()
    } else {
        format!(", {} problems in test files", report.file_problems.len())
    };
    println!(
        "{} cases: {} passed, {} failed{problems}",
        report.passed + report.failed,
        report.passed,
        report.failed
    );
}
