//! `parlor bench`: the performance report (Markdown table, or `--json`). Build with
//! `--release` for numbers worth reporting.

use crate::bench::{LlamaBench, Report, run_llama_sections, run_store_section};
use crate::cli::GlobalArgs;
use crate::home::Home;

/// Options of `parlor bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model name or .gguf path (default: the default model).
    #[arg(long, short = 'm', default_value = crate::config::DEFAULT_MODEL)]
    pub model: String,
    /// CPU threads (default: physical cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Only these sections (comma-separated): throughput, turns, concurrency, resume, telegram, tui, retrieval, store.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Fewer repetitions: a quick smoke run.
    #[arg(long)]
    pub quick: bool,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    pub json: bool,
}

/// Run `parlor bench`.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let home = Home::resolve(global.home.as_deref())?;
    crate::logging::init(&home, &global.log_options())?;
    let model_path = crate::launch::resolve_model(&home.models_dir(), &args.model)?;
    let cfg = LlamaBench {
        model_path,
        threads: args
            .threads
            .unwrap_or_else(crate::engine::llama::physical_cores),
        parlor_bin: std::env::current_exe()?,
        quick: args.quick,
        only: args.only,
    };
    let mut report = Report::new();
    if cfg.only.is_empty() || cfg.only.iter().any(|s| s == "tui") {
        crate::bench::tui::section(&mut report, cfg.quick);
    }
    if cfg.only.is_empty() || cfg.only.iter().any(|s| s == "retrieval") {
        let model = crate::models::embedding_model_path(home.root());
        crate::bench::run_retrieval_section(&mut report, &model, cfg.quick);
    }
    if cfg.only.is_empty() || cfg.only.iter().any(|s| s == "store") {
        run_store_section(&mut report, cfg.quick)
            .map_err(|e| anyhow::anyhow!("store bench: {e}"))?;
    }
    let engine_sections = ["throughput", "turns", "concurrency", "resume", "telegram"];
    if cfg.only.is_empty()
        || cfg
            .only
            .iter()
            .any(|s| engine_sections.contains(&s.as_str()))
    {
        run_llama_sections(&cfg, &mut report).await?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(if report.all_passed() { 0 } else { 1 })
}
