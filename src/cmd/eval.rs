//! `parlor eval FILE...`: run eval files (`support::eval`) against the real engine with greedy
//! sampling, each question in a fresh session of a temporary database; a table per file (or
//! `--json`); exit 1 when a file's thresholds are not met. `--baseline` measures what parlor
//! did before grounded support (word matching only, grounded mode off).

use crate::bot::{Bot, TurnOptions};
use crate::chat::ReplySource;
use crate::cli::{BotArgs, GlobalArgs};
use crate::engine::Engine;
use crate::home::Home;
use crate::launch;
use crate::matching::specifics;
use crate::persona::session::SessionState;
use crate::store::Store;
use crate::support::eval::{self, EvalFile, Observed, Question, Summary, Verdict};
use crate::support::index::Retriever;
use anyhow::Context as _;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Options of `parlor eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Eval files (YAML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Measure the baseline: word matching only, grounded mode off.
    #[arg(long)]
    pub baseline: bool,
    /// Model (and bot) to run with.
    #[command(flatten)]
    pub bot: BotArgs,
}

/// One question's result.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionResult {
    /// The question and its expectations.
    pub question: Question,
    /// What the bot did.
    pub observed: Observed,
    /// The verdict.
    pub verdict: Verdict,
}

/// One file's result.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The file.
    pub file: String,
    /// Its part (`tuning`, `held-out`).
    pub part: Option<String>,
    /// The persona.
    pub persona: String,
    /// `hybrid` or `lexical`.
    pub signal: crate::matching::retrieval::Signal,
    /// Counts.
    pub summary: Summary,
    /// Thresholds not met.
    pub breaches: Vec<String>,
    /// Per question.
    pub questions: Vec<QuestionResult>,
}

/// Run `parlor eval`.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let home = Home::resolve(global.home.as_deref())?;
    crate::logging::init(&home, &global.log_options())?;
    let retriever = if args.baseline {
        Retriever::lexical("baseline: word matching only")
    } else {
        launch::retriever(&home)
    };
    if let Some(n) = retriever.notice()
        && !args.baseline
    {
        eprintln!("note: {n}");
    }
    let mut engines: HashMap<String, Arc<dyn Engine>> = HashMap::new();
    let mut results = Vec::new();
    for path in &args.files {
        let r = run_file(&home, &args, path, &retriever, &mut engines)
            .await
            .with_context(|| format!("eval file {}", path.display()))?;
        if !args.json {
            print_file(&r);
        }
        results.push(r);
    }
    let failed = results.iter().any(|r| !r.breaches.is_empty());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if failed { 1 } else { 0 })
}

async fn run_file(
    home: &Home,
    args: &Args,
    path: &std::path::Path,
    retriever: &Retriever,
    engines: &mut HashMap<String, Arc<dyn Engine>>,
) -> anyhow::Result<FileResult> {
    let text = crate::yaml::read(path).map_err(|p| anyhow::anyhow!("{p}"))?;
    let file: EvalFile = crate::yaml::parse(&crate::yaml::display_path(path), &text)
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    let persona_arg = match path.parent().map(|d| d.join(&file.persona)) {
        Some(p) if p.is_file() => p.display().to_string(),
        _ => file.persona.clone(),
    };
    let bot_args = BotArgs {
        persona: Some(persona_arg),
        ..args.bot.clone()
    };
    let plan = launch::plan(home.clone(), &bot_args)?;
    let engine = launch::shared_engine(&plan, engines).await?;
    let persona = if args.baseline {
        plan.persona.without_grounding()
    } else {
        plan.persona.clone()
    };
    let facts = persona.fact_text(&crate::persona::MacroContext::default());
    let sampling = crate::engine::Sampling {
        temperature: 0.0,
        seed: super::test::TEST_SEED,
        ..persona.sampling().clone()
    };
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let bot = Bot::new(persona.clone(), engine, store.clone());
    bot.set_retriever(retriever.clone());
    let mut out = Vec::new();
    for (i, q) in file.questions.iter().enumerate() {
        let session = bot.new_session(Some(&format!("q{i}")))?;
        let opts = TurnOptions {
            sampling: Some(sampling.clone()),
            ..Default::default()
        };
        let outcome = bot
            .turn_with(session.id, &q.q, opts)
            .finish()
            .await
            .map_err(|e| anyhow::anyhow!("question {}: the turn failed: {e}", i + 1))?;
        let handoff = SessionState::load(&store, session.id)?.handoff;
        let invented = if outcome.source == ReplySource::Model {
            specifics::unsupported(&outcome.text, &facts)
        } else {
            Vec::new()
        };
        let info = outcome.retrieval.as_deref().cloned().unwrap_or_default();
        let observed = Observed {
            reply: outcome.text.clone(),
            source: outcome.source.clone(),
            choices: outcome.choices.iter().map(|c| c.id.clone()).collect(),
            handoff,
            invented,
            caught: info.invented.clone(),
            matched: info.summary(),
            retrieval: outcome.retrieval.as_deref().cloned(),
        };
        let verdict = eval::judge(q, &observed);
        out.push(QuestionResult {
            question: q.clone(),
            observed,
            verdict,
        });
    }
    let triples: Vec<(Question, Observed, Verdict)> = out
        .iter()
        .map(|r| (r.question.clone(), r.observed.clone(), r.verdict))
        .collect();
    let summary = eval::summarize(&triples);
    let breaches = eval::breaches(&summary, &file.thresholds);
    Ok(FileResult {
        file: path.display().to_string(),
        part: file.part.clone(),
        persona: persona.id().to_string(),
        signal: retriever.signal(),
        summary,
        breaches,
        questions: out,
    })
}

fn print_file(r: &FileResult) {
    println!(
        "## {} ({}, part: {}, signal: {:?})\n",
        r.file,
        r.persona,
        r.part.as_deref().unwrap_or("-"),
        r.signal
    );
    println!("| verdict | question | answered by | FAQ match |\n|---|---|---|---|");
    for q in &r.questions {
        println!(
            "| {:?} | {} | {} | {} |",
            q.verdict,
            q.question.q.replace('|', "\\|").replace('\n', " "),
            crate::persona::testing::describe_source(&q.observed.source),
            q.observed.matched
        );
    }
    let s = &r.summary;
    println!(
        "\ncovered {}: right {}, via choices {}, wrong {}, not sure {} -> reached {:.1}%",
        s.covered,
        s.right,
        s.choice,
        s.wrong,
        s.unsure,
        s.reached * 100.0
    );
    println!(
        "uncovered {}: answered from the FAQ {}; invented specifics {} (caught and replaced {}); person requests {}: missed {}; false handoffs {}; text mismatches {}",
        s.uncovered,
        s.uncovered_answered,
        s.invented,
        s.caught,
        s.handoff_requests,
        s.handoff_missed,
        s.false_handoff,
        s.text_mismatch
    );
    if r.breaches.is_empty() {
        println!("PASS\n");
    } else {
        for b in &r.breaches {
            println!("FAIL: {b}");
        }
        println!();
    }
}
