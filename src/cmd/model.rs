//! `parlor model`: pull, list, path, verify and rm models in `<home>/storage/models/`.
//! Progress bars are drawn on stderr, so stderr being a terminal decides whether they show.

use crate::cli::GlobalArgs;
use crate::models::{self, ModelSpec, PullOptions, PullOutcome};
use indicatif::HumanBytes;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

mod rm;

/// Subcommands of `parlor model`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Download a model (registry name or hf:owner/repo/file.gguf), verify it, install it.
    Pull {
        /// Model to fetch.
        #[arg(default_value = models::DEFAULT_MODEL)]
        name: String,
    },
    /// Known and installed models, with sizes.
    List {
        /// Print a JSON array (name, status, size, license, file, path) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the file a model name resolves to (exit 2 with a hint when it is missing).
    Path {
        /// Registry name, hf:owner/repo/file.gguf, or a path to a .gguf file.
        name: String,
    },
    /// Re-hash an installed model and compare it with the registry (exit 1 on a mismatch).
    Verify {
        /// Registry name, hf:owner/repo/file.gguf, or a path to a .gguf file.
        #[arg(default_value = models::DEFAULT_MODEL)]
        name: String,
    },
    /// Delete a model file from storage/models/ (refused while a bot of the home uses it).
    Rm {
        /// Registry name, or the file name of a .gguf in storage/models/.
        name: String,
        /// Delete it even though a bot uses it.
        #[arg(long)]
        force: bool,
    },
}

/// Run `parlor model`.
pub async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<super::ExitCode> {
    let home = crate::home::Home::resolve(global.home.as_deref())?;
    let dir = home.models_dir();
    match command {
        Command::Pull { name } => pull(&dir, &name).await,
        Command::List { json: false } => list(&dir),
        Command::List { json: true } => {
            println!("{}", serde_json::Value::Array(list_json(&dir)?));
            Ok(0)
        }
        Command::Rm { name, force } => rm::run(&home, &name, force),
        Command::Path { name } => {
            let path = models::resolve(&dir, &name)?;
            println!("{}", path.display());
            Ok(0)
        }
        Command::Verify { name } => verify(&dir, &name).await,
    }
}

async fn pull(dir: &Path, name: &str) -> anyhow::Result<super::ExitCode> {
    let spec = models::spec_for(name)?;
    let opts = PullOptions {
        progress: progress_shown(),
        ..PullOptions::from_env()
    };
    let report = |line: &str| eprintln!("{line}");
    let outcome = models::pull(dir, &spec, &opts, &report).await?;
    print_pulled(&spec, outcome);
    if let Some(derived) = spec.derived.clone().filter(|_| models::DERIVED_IS_FASTER) {
        let dir = dir.to_path_buf();
        let path =
            tokio::task::spawn_blocking(move || make_derived(&dir, &spec, &derived)).await??;
        println!("{path}");
    }
    Ok(0)
}

/// Make (or re-check) the derived encoding of a pulled model; a corrupt one is made again.
fn make_derived(
    dir: &Path,
    spec: &ModelSpec,
    derived: &models::DerivedSpec,
) -> anyhow::Result<String> {
    let report = |line: &str| eprintln!("{line}");
    let path = dir.join(&derived.file);
    if models::derived::is_ready(dir, spec, derived)
        && let Err(e) = models::derived::verify_file(&path, derived, false)
    {
        report(&format!("{e}; making it again"));
        models::derived::remove(&path);
    }
    let path = models::derived::ensure(dir, spec, derived, &report)?;
    Ok(format!(
        "{} ({}) is ready: {} ({}, sha256 {}); bots load it with `engine.format: auto` (the default)",
        spec.name,
        derived.format,
        path.display(),
        HumanBytes(derived.size),
        derived.sha256
    ))
}

fn print_pulled(spec: &ModelSpec, outcome: PullOutcome) {
    match outcome {
        PullOutcome::AlreadyPresent { path } => {
            println!(
                "{} is already installed and verified: {}",
                spec.name,
                path.display()
            );
        }
        PullOutcome::Fetched {
            path,
            source,
            size,
            sha256,
        } => {
            println!(
                "installed {} from {source}: {} ({}, sha256 {sha256})",
                spec.name,
                path.display(),
                HumanBytes(size)
            );
            if spec.sha256.is_none() {
                println!(
                    "no checksum is known for this file: compare the sha256 above with its source"
                );
            }
        }
    }
}

/// Progress bars are drawn on stderr: show them when stderr is a terminal (whatever stdout is).
fn progress_shown() -> bool {
    std::io::stderr().is_terminal()
}

/// `installed`, `missing` or `wrong size`.
fn status(row: &models::ListedModel) -> &'static str {
    match (row.size_on_disk, row.expected_size) {
        (None, _) => "missing",
        (Some(a), Some(e)) if a != e => "wrong size",
        (Some(_), _) => "installed",
    }
}

/// `parlor model list --json`: one object per model.
fn list_json(dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(models::list(dir)?
        .iter()
        .map(|row| {
            serde_json::json!({
                "name": row.name,
                "status": status(row),
                "size": row.size_on_disk,
                "expected_size": row.expected_size,
                "license": row.license,
                "file": row.path.file_name().map(|f| f.to_string_lossy().into_owned()),
                "path": row.path.display().to_string(),
            })
        })
        .collect())
}

fn list(dir: &Path) -> anyhow::Result<super::ExitCode> {
    let rows = models::list(dir)?;
    println!("models in {}", dir.display());
    println!(
        "{:<16} {:<11} {:>10}  {:<11} file",
        "name", "status", "size", "license"
    );
    for row in rows {
        let status = status(&row);
        let size = row.size_on_disk.or(row.expected_size).unwrap_or(0);
        let file = row
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "{:<16} {:<11} {:>10}  {:<11} {file}",
            row.name.as_deref().unwrap_or("(local file)"),
            status,
            HumanBytes(size).to_string(),
            row.license.as_deref().unwrap_or("-"),
        );
    }
    println!(
        "fetch a model with `parlor model pull NAME`; any .gguf path works wherever a model is named"
    );
    Ok(0)
}

/// The registry entry a name or file stands for, if any (a path to a registry file counts).
fn spec_of(name: &str, path: &Path) -> Option<ModelSpec> {
    models::spec_for(name)
        .ok()
        .or_else(|| models::registry_spec_of(name, path))
}

async fn verify(dir: &Path, name: &str) -> anyhow::Result<super::ExitCode> {
    let path = models::resolve(dir, name)?;
    let progress = progress_shown();
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
    if let Some((spec, derived)) = file.as_deref().and_then(models::derived_of_file) {
        return verify_derived(path, spec, derived, progress).await;
    }
    let spec = spec_of(name, &path);
    let mut code = verify_original(&path, spec.clone(), progress).await?;
    // The derived encoding too, when it has been made.
    if let Some((spec, derived)) = spec.and_then(|s| Some((s.clone(), s.derived?))) {
        // Kept beside the original.
        let derived_path = path.parent().unwrap_or(dir).join(&derived.file);
        if derived_path.is_file() {
            code = code.max(verify_derived(derived_path, spec, derived, progress).await?);
        }
    }
    Ok(code)
}

async fn verify_derived(
    path: PathBuf,
    spec: ModelSpec,
    derived: models::DerivedSpec,
    progress: bool,
) -> anyhow::Result<super::ExitCode> {
    let checked = {
        let (path, derived) = (path.clone(), derived.clone());
        tokio::task::spawn_blocking(move || models::derived::verify_file(&path, &derived, progress))
            .await?
    };
    match checked {
        Ok(d) => {
            println!(
                "ok: {} ({}, sha256 {}) matches the {} re-encoding of {}",
                path.display(),
                HumanBytes(d.size),
                d.sha256,
                derived.format,
                spec.name
            );
            Ok(0)
        }
        Err(e) => {
            println!("{e}");
            println!(
                "make it again with `parlor model pull {}` (or delete it: it is made again at the next load)",
                spec.name
            );
            Ok(1)
        }
    }
}

async fn verify_original(
    path: &Path,
    spec: Option<ModelSpec>,
    progress: bool,
) -> anyhow::Result<super::ExitCode> {
    let digest = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || models::digest(&path, progress)).await??
    };
    let shown = format!(
        "{} ({}, sha256 {})",
        path.display(),
        HumanBytes(digest.size),
        digest.sha256
    );
    match spec.filter(|s| s.sha256.is_some()) {
        None => {
            println!("{shown}: no known checksum to compare with");
            Ok(0)
        }
        Some(spec) => match models::verify_digest(&spec, &digest) {
            Ok(()) => {
                println!("ok: {shown} matches the registry entry {}", spec.name);
                Ok(0)
            }
            Err(e) => {
                println!("{e}");
                println!("fetch it again with `parlor model pull {}`", spec.name);
                Ok(1)
            }
        },
    }
}
