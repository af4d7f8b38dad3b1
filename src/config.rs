//! `BotSpec`: bot YAML -> raw file struct (`deny_unknown_fields`) -> validated spec.
//!
//! A bot joins a persona (by file stem or path), a model, engine settings (`kind: llama`, the
//! default, or `kind: openai` for a remote server), a storage directory and front-end sections
//! (`telegram:`, in [`telegram`], which the Telegram front end reads).

use crate::home::{Home, Source};
use crate::persona::join_lines;
use crate::yaml::{self, Checker, Location, Problem};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use telegram::TelegramConfig;

mod engine;
mod storage;
pub mod telegram;
pub use engine::{EngineSpec, LlamaSpec, OpenAiSpec};

/// Model used when neither the command line, the bot nor the persona names one.
pub const DEFAULT_MODEL: &str = "smollm2-135m";
/// Context window per conversation when the bot does not set `engine.context`.
pub const DEFAULT_CONTEXT: u32 = 4096;
/// Timeout of a remote engine when `engine.timeout_secs` is not set.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// Errors of loading a bot file: each problem one line `file:line:col: field.path: problem`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Problems found in the file (or in reading it), each with its position.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, one per line when printed.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(p) => p,
        }
    }
}

/// A bot file (v1) as parsed: the one place listing its fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBot {
    persona: Option<String>,
    model: Option<String>,
    #[serde(default)]
    engine: engine::RawEngine,
    storage: Option<storage::RawStorage>,
    telegram: Option<TelegramConfig>,
}

/// A validated bot definition.
#[derive(Debug, Clone)]
pub struct BotSpec {
    name: String,
    path: Option<PathBuf>,
    file: String,
    persona: String,
    persona_at: Option<Location>,
    model: Option<String>,
    engine: EngineSpec,
    storage: Option<PathBuf>,
    retention_days: Option<u32>,
    telegram: Option<TelegramConfig>,
}

impl BotSpec {
    /// Load and validate `path` (refused over [`yaml::MAX_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = yaml::read(path).map_err(|p| ConfigError::Invalid(vec![p]))?;
        let mut spec = Self::parse(path, &text)?;
        spec.path = Some(path.to_path_buf());
        Ok(spec)
    }

    /// Load the bot `name_or_path` of `home` (a file in `bots/`, a path, or a built-in bot).
    pub fn load_from(home: &Home, name_or_path: &str) -> Result<Self, ConfigError> {
        match home.bot_source(name_or_path) {
            Some(Source::File(p)) => Self::load(&p),
            Some(Source::Builtin { name, text }) => {
                Self::parse(&Path::new("bots").join(format!("{name}.yaml")), text)
            }
            None if crate::home::looks_like_path(name_or_path) => {
                Err(ConfigError::Invalid(vec![Problem {
                    file: name_or_path.to_string(),
                    location: None,
                    field: String::new(),
                    message: "no such bot file".to_string(),
                    hint: Some("check the path given to --bot".to_string()),
                }]))
            }
            None => {
                let names: Vec<String> = home
                    .bot_files()
                    .iter()
                    .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .chain(crate::home::BUILTIN_BOTS.iter().map(|(n, _)| n.to_string()))
                    .collect();
                let hint = match yaml::did_you_mean(name_or_path, names.iter().map(String::as_str))
                {
                    Some(best) => format!("did you mean \"{best}\"?"),
                    None => format!(
                        "bots are YAML files in {}; or give a path to one",
                        yaml::display_path(&home.bots_dir())
                    ),
                };
                Err(ConfigError::Invalid(vec![Problem {
                    file: "--bot".to_string(),
                    location: None,
                    field: String::new(),
                    message: format!("no bot \"{name_or_path}\""),
                    hint: Some(hint),
                }]))
            }
        }
    }

    /// Validate `text` as the content of `path` (its file stem is the bot's name).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = yaml::display_path(path);
        let raw: RawBot = yaml::parse(&file, text).map_err(|p| ConfigError::Invalid(vec![p]))?;
        let mut check = Checker::new(file, text);
        let mut spec = validate(&mut check, name, raw);
        spec.file = check.file().to_string();
        check.finish(spec).map_err(ConfigError::Invalid)
    }

    /// The bot used with `--persona` alone: `persona`, default model and engine, storage
    /// `storage/<name>/`.
    pub fn with_defaults(name: &str, persona: &str) -> Self {
        Self {
            name: name.to_string(),
            path: None,
            file: String::new(),
            persona: persona.to_string(),
            persona_at: None,
            model: None,
            engine: EngineSpec::Llama(LlamaSpec::default()),
            storage: None,
            retention_days: None,
            telegram: None,
        }
    }

    /// The bot's name (file stem).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The file it was loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    /// The persona: a file stem in `personas/` or a path.
    pub fn persona(&self) -> &str {
        &self.persona
    }
    /// The model the bot names, if any (registry name or .gguf path).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// Engine settings.
    pub fn engine(&self) -> &EngineSpec {
        &self.engine
    }
    /// The `telegram:` section, if any.
    pub fn telegram(&self) -> Option<&TelegramConfig> {
        self.telegram.as_ref()
    }
    /// The storage directory: `storage:` relative to the home, default `storage/<name>/`.
    pub fn storage_dir(&self, home: &Home) -> PathBuf {
        match &self.storage {
            Some(p) => home.join(p),
            None => home.bot_storage_dir(&self.name),
        }
    }

    /// `storage.retention`: conversations idle longer than this are erased (none: kept).
    pub fn retention(&self) -> Option<std::time::Duration> {
        self.retention_days
            .map(|d| std::time::Duration::from_secs(u64::from(d) * 86_400))
    }

    /// Use another persona (the `--persona` override).
    pub fn set_persona(&mut self, persona: impl Into<String>) {
        self.persona = persona.into();
        self.persona_at = None;
    }

    /// Use another model (the `--model` override).
    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = Some(model.into());
    }

    /// Where the bot's persona comes from in `home`; a problem at the `persona:` line (with
    /// a "did you mean" hint) if there is no such persona.
    pub fn find_persona(&self, home: &Home) -> Result<Source, Problem> {
        if let Some(source) = home.persona_source(&self.persona) {
            return Ok(source);
        }
        let (message, hint) = home.persona_not_found(&self.persona);
        Err(Problem {
            // Without a position the persona came from `--persona`, not from the file.
            file: match self.persona_at {
                Some(_) if !self.file.is_empty() => self.file.clone(),
                _ => "--persona".to_string(),
            },
            location: self.persona_at,
            field: if self.persona_at.is_some() {
                "persona".into()
            } else {
                String::new()
            },
            message,
            hint: Some(hint),
        })
    }
}

/// Raw -> validated, recording every problem in `check`.
fn validate(check: &mut Checker<'_>, name: String, raw: RawBot) -> BotSpec {
    let persona = match raw.persona {
        Some(p) if !p.trim().is_empty() => p,
        Some(_) => {
            check.error_hint(
                "persona",
                "is empty",
                "name a persona in personas/, e.g. assistant",
            );
            String::new()
        }
        None => {
            check.error_hint(
                "persona",
                "missing (required)",
                "name a persona in personas/, e.g. `persona: assistant`",
            );
            String::new()
        }
    };
    let persona_at = yaml::locate(check.text(), "persona");
    if raw.model.as_ref().is_some_and(|m| m.trim().is_empty()) {
        check.error_hint(
            "model",
            "is empty",
            "name a model such as \"smollm2-135m\" or remove the line",
        );
    }
    let storage = storage::validate(check, raw.storage);
    let engine = engine::validate(check, raw.engine, raw.model.as_deref());
    BotSpec {
        name,
        path: None,
        file: String::new(),
        persona,
        persona_at,
        model: raw.model,
        engine,
        storage: storage.dir,
        retention_days: storage.retention_days,
        telegram: raw.telegram,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
