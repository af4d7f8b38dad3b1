//! `parlor persona import FILE` (Character Card V1/V2/V3 JSON or PNG, Ollama Modelfile ->
//! `personas/NAME.yaml`) and `parlor persona export NAME --format card-v2`.

use crate::cli::GlobalArgs;
use crate::home::{Home, Source};
use crate::import::{self, card};
use crate::persona::Persona;
use anyhow::Context as _;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Subcommands of `parlor persona`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Convert a character card (.json, .png) or an Ollama Modelfile into persona YAML.
    Import(ImportArgs),
    /// Write a persona in another format (stdout unless --output).
    Export(ExportArgs),
}

/// Options of `parlor persona import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The card (.json or .png) or Modelfile.
    pub file: PathBuf,
    /// Persona name (file stem under personas/); default: from the card or model name.
    #[arg(long)]
    pub name: Option<String>,
    /// Write the YAML here instead of personas/NAME.yaml (`-` for stdout).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Replace an existing persona file.
    #[arg(long)]
    pub force: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Character Card V2 JSON (`chara_card_v2`).
    CardV2,
}

/// Options of `parlor persona export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Persona name (personas/NAME.yaml) or path.
    pub name: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "card-v2")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// Run `parlor persona`.
pub fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<super::ExitCode> {
    match command {
        Command::Import(a) => import_cmd(global, a),
        Command::Export(a) => export_cmd(global, a),
    }
}

/// A file stem from a display name: lowercase letters, digits and dashes.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "imported".to_string()
    } else {
        out
    }
}

fn import_cmd(global: &GlobalArgs, args: ImportArgs) -> anyhow::Result<super::ExitCode> {
    let doc = import::import_file(&args.file)?;
    let source = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let yaml = doc.to_yaml(&source);
    let stem = args.name.clone().unwrap_or_else(|| slug(&doc.name));
    if args.output.as_deref() == Some(Path::new("-")) {
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), "{yaml}");
        return Ok(check_text(
            &Path::new("personas").join(format!("{stem}.yaml")),
            &yaml,
        ));
    }
    let path = match args.output {
        Some(p) => p,
        None => {
            let home = Home::resolve(global.home.as_deref())?;
            home.personas_dir().join(format!("{stem}.yaml"))
        }
    };
    if path.exists() && !args.force {
        anyhow::bail!(
            "\"{}\" exists already; pass --force to replace it or --name to choose another name",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create \"{}\"", dir.display()))?;
    }
    std::fs::write(&path, &yaml)
        .with_context(|| format!("could not write \"{}\"", path.display()))?;
    let code = check_text(&path, &yaml);
    println!(
        "imported \"{}\" from {source} into {}{}",
        doc.name,
        path.display(),
        if doc.extensions.is_empty() {
            String::new()
        } else {
            " (fields with no persona equivalent are kept under `extensions`)".to_string()
        }
    );
    Ok(code)
}

/// Validate the written persona; print its problems (exit 1) so the user can fix them.
fn check_text(path: &Path, yaml: &str) -> super::ExitCode {
    match Persona::parse(path, yaml) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("the imported persona needs fixing before use:\n{e}");
            1
        }
    }
}

fn export_cmd(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<super::ExitCode> {
    let home = Home::resolve(global.home.as_deref())?;
    let source = home.persona_source(&args.name).ok_or_else(|| {
        anyhow::anyhow!(
            "no persona \"{}\"; known: {}",
            args.name,
            home.persona_names().join(", ")
        )
    })?;
    let (path, text) = match &source {
        Source::File(p) => (
            p.clone(),
            crate::yaml::read(p).map_err(|p| anyhow::anyhow!("{p}"))?,
        ),
        Source::Builtin { name, text } => (
            Path::new("personas").join(format!("{name}.yaml")),
            text.to_string(),
        ),
    };
    Persona::parse(&path, &text)?;
    let value: Value = crate::yaml::parse(&crate::yaml::display_path(&path), &text)
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    let card = match args.format {
        Format::CardV2 => card::to_card_v2(&export_source(&value)),
    };
    let json = serde_json::to_string_pretty(&card)?;
    match &args.output {
        Some(out) => {
            std::fs::write(out, format!("{json}\n"))
                .with_context(|| format!("could not write \"{}\"", out.display()))?;
            eprintln!("exported \"{}\" to {}", args.name, out.display());
        }
        None => {
            // A closed pipe (`| head`) is not an error worth a panic.
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout().lock(), "{json}");
        }
    }
    Ok(0)
}

/// The export view of a persona file (as JSON values, macros unexpanded).
pub fn export_source(v: &Value) -> card::ExportSource {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut parlor = serde_json::Map::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if !matches!(
                k.as_str(),
                "name"
                    | "description"
                    | "system"
                    | "greeting"
                    | "examples"
                    | "knowledge"
                    | "extensions"
            ) {
                parlor.insert(k.clone(), val.clone());
            }
        }
    }
    card::ExportSource {
        name: text("name").unwrap_or_default(),
        description: text("description"),
        system: text("system").unwrap_or_default(),
        greeting: text("greeting"),
        examples: v
            .get("examples")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let f =
                            |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                        (f("user"), f("assistant"))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        knowledge: v
            .get("knowledge")
            .and_then(|k| serde_json::from_value(k.clone()).ok()),
        extensions: v
            .get("extensions")
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        parlor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_stems() {
        assert_eq!(slug("Acme Support"), "acme-support");
        assert_eq!(slug("  Old Tom!! "), "old-tom");
        assert_eq!(slug("???"), "imported");
    }
}
