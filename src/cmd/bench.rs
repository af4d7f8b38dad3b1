//! `parlor bench`: the performance report (Markdown table, or `--json`). Build with
//! `--release` for numbers worth reporting.

use crate::bench::{LlamaBench, Report, run_llama_sections, run_store_section};
use crate::cli::GlobalArgs;
use crate::home::Home;
use crate::models::ModelFormat;

/// Options of `parlor bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model name or .gguf path (default: the default model).
    #[arg(long, short = 'm', default_value = crate::config::DEFAULT_MODEL)]
    pub model: String,
    /// CPU threads (default: physical cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Which encoding of a registry model to measure: auto (the faster one on this CPU, as
    /// bots load it) or as-is. The `format` section measures both.
    #[arg(long, default_value = "auto", value_parser = ["auto", "as-is"])]
    pub format: String,
    /// Only these sections (comma-separated): format, throughput, turns, concurrency, newchat,
    /// resume, telegram, tui, retrieval, store.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Also play the turns, concurrency and new-chat sections against this OpenAI-compatible
    /// server (e.g. llama-server: http://127.0.0.1:8080/v1) and print parlor/peer ratios.
    #[arg(long, value_name = "URL")]
    pub peer: Option<String>,
    /// Model name sent to the peer.
    #[arg(long, default_value = "peer", requires = "peer")]
    pub peer_model: String,
    /// Process id of the peer server, for its peak memory.
    #[arg(long, requires = "peer")]
    pub peer_pid: Option<u32>,
    /// Fewer repetitions: a quick smoke run.
    #[arg(long)]
    pub quick: bool,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    pub json: bool,
    /// Internal: run the restart section's llama.cpp floor in this process (JSON of
    /// `bench::floor::RestartFloor`) and exit.
    #[arg(long, hide = true, value_name = "JSON")]
    pub restart_floor_child: Option<String>,
}

/// Run `parlor bench`.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    if let Some(json) = &args.restart_floor_child {
        let floor: crate::bench::floor::RestartFloor = serde_json::from_str(json)?;
        crate::bench::floor::restart_floor_child(&floor).map_err(anyhow::Error::msg)?;
        return Ok(0);
    }
    let home = Home::resolve(global.home.as_deref())?;
    crate::logging::init(&home, &global.log_options())?;
    let models_dir = home.models_dir();
    let named = crate::launch::resolve_model(&models_dir, &args.model)?;
    let format = if args.format == "as-is" {
        ModelFormat::AsIs
    } else {
        ModelFormat::Auto
    };
    let report_line = |line: &str| eprintln!("{line}");
    let model_path = {
        let (dir, name, named) = (models_dir.clone(), args.model.clone(), named.clone());
        tokio::task::spawn_blocking(move || {
            crate::models::serving_file(&dir, &name, &named, format, &report_line)
        })
        .await??
    };
    // Both encodings of a registry model for the `format` section (made if missing).
    let derived = if model_path == named {
        let (dir, name, named) = (models_dir.clone(), args.model.clone(), named.clone());
        tokio::task::spawn_blocking(move || {
            crate::models::serving_file(&dir, &name, &named, ModelFormat::Auto, &report_line)
        })
        .await??
    } else {
        model_path.clone()
    };
    let cfg = LlamaBench {
        formats: (derived != named).then(|| (named.clone(), derived.clone())),
        model_path,
        threads: args
            .threads
            .unwrap_or_else(crate::engine::llama::physical_cores),
        parlor_bin: std::env::current_exe()?,
        quick: args.quick,
        only: args.only,
        peer: args.peer.clone().map(|url| crate::bench::peer::Peer {
            base_url: url,
            model: args.peer_model.clone(),
            pid: args.peer_pid,
        }),
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
    let engine_sections = [
        "format",
        "throughput",
        "newchat",
        "turns",
        "concurrency",
        "resume",
        "telegram",
    ];
    if cfg.only.is_empty()
        || cfg
            .only
            .iter()
            .any(|s| engine_sections.contains(&s.as_str()))
    {
        run_llama_sections(&cfg, &mut report).await?;
    }
    crate::bench::targets::apply(&mut report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(if report.all_passed() { 0 } else { 1 })
}
