//! From command-line choices to a ready [`Bot`]: resolve the home, load the bot spec (default
//! `bots/terminal.yaml`), the persona, the model path, open the store and load the engine.
//! Also sets up logging ([`crate::logging`]).
//!
//! Precedence: `--persona` over the bot's `persona:`; `--model` over the bot's `model:` over
//! the persona's `model:` over [`DEFAULT_MODEL`]. `--persona` without `--bot` needs no bot
//! file: defaults fill the rest (bot name `terminal`, so history lands in `storage/terminal/`).

use crate::bot::Bot;
use crate::config::{BotSpec, ConfigError, DEFAULT_MODEL, EngineSpec};
use crate::engine::{
    Engine, EngineError, EngineSettings, LlamaEngine, NotLoaded, OpenAiEngine, OpenAiSettings,
};
use crate::home::{self, DEFAULT_BOT, Home, HomeError, Source};
use crate::models::ModelError;
use crate::persona::library::Library;
use crate::persona::{Persona, PersonaError};
use crate::store::{Store, StoreError};
use crate::yaml::Problem;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Directory holding bots/, personas/ and storage/.
    #[arg(long, global = true, env = "PARLOR_HOME")]
    pub home: Option<PathBuf>,
    /// Log filter (tracing `RUST_LOG` syntax; `RUST_LOG` is read too); logs go to
    /// storage/logs/.
    #[arg(long, global = true, env = "PARLOR_LOG")]
    pub log: Option<String>,
    /// Also log to stderr (on by itself for `parlor telegram` when stderr is not a terminal,
    /// as under systemd; never for the full-screen chat).
    #[arg(long, global = true, env = "PARLOR_LOG_STDERR")]
    pub log_stderr: bool,
    /// When a new log file starts in storage/logs/.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "PARLOR_LOG_ROTATE"
    )]
    pub log_rotate: crate::logging::Rotate,
    /// Log files kept when rotating (the oldest are deleted).
    #[arg(
        long,
        global = true,
        default_value_t = 7,
        value_name = "N",
        env = "PARLOR_LOG_KEEP"
    )]
    pub log_keep: usize,
}

impl GlobalArgs {
    /// No home, no log options: what a test or an embedding program starts from.
    pub fn new(home: Option<PathBuf>) -> Self {
        Self {
            home,
            log: None,
            log_stderr: false,
            log_rotate: crate::logging::Rotate::default(),
            log_keep: 7,
        }
    }

    /// The logging choices, as [`crate::logging::init`] takes them.
    pub fn log_options(&self) -> crate::logging::LogOptions {
        crate::logging::LogOptions {
            filter: self.log.clone(),
            stderr: self.log_stderr,
            rotate: self.log_rotate,
            keep: self.log_keep,
        }
    }
}

/// Which bot, persona and model to use (shared by chat, ask, telegram, test, bench).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BotArgs {
    /// Bot name (bots/NAME.yaml) or path to a bot YAML file.
    #[arg(long, short = 'b')]
    pub bot: Option<String>,
    /// Persona name (personas/NAME.yaml) or path; overrides the bot's persona.
    #[arg(long, short = 'p')]
    pub persona: Option<String>,
    /// Model name from the registry, or a path to a .gguf file; overrides bot and persona.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
}

/// Errors of building a bot. Messages name the file and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No usable home directory.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The bot file is missing or invalid.
    #[error(transparent)]
    Bot(#[from] ConfigError),
    /// The persona file is invalid.
    #[error(transparent)]
    Persona(#[from] PersonaError),
    /// The persona the bot or `--persona` names does not exist.
    #[error("{0}")]
    PersonaMissing(Problem),
    /// The model is not in the registry, not downloaded, or not a file.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model could not be loaded.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The conversation database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The environment variable named by `engine.api_key_env` is not set.
    #[error(
        "the environment variable \"{var}\" (engine.api_key_env of bot \"{bot}\") is not set; export it with the server's API key"
    )]
    ApiKeyMissing {
        /// The variable.
        var: String,
        /// The bot.
        bot: String,
    },
    /// Logging could not be set up.
    #[error(transparent)]
    Logging(#[from] crate::logging::LogError),
}

/// A bot ready to serve, with what it was built from.
pub struct Launched {
    /// The bot.
    pub bot: Bot,
    /// The bot's name (file stem of its YAML, or `terminal`).
    pub bot_name: String,
    /// The home directory.
    pub home: Home,
    /// The bot spec (after `--persona` / `--model` overrides).
    pub spec: BotSpec,
    /// Where the persona came from (for hot reload: a file to watch, or a built-in).
    pub persona_source: Source,
    /// The model as named (registry name, .gguf path, or remote model name).
    pub model: String,
    /// The GGUF file loaded (`None` for a remote engine).
    pub model_path: Option<PathBuf>,
    /// The bot's database directory.
    pub storage_dir: PathBuf,
    /// Conversations erased by `storage.retention` at start-up.
    pub retention_erased: usize,
}

impl Launched {
    /// The persona file, if the persona came from one.
    pub fn persona_path(&self) -> Option<&Path> {
        match &self.persona_source {
            Source::File(p) => Some(p),
            Source::Builtin { .. } => None,
        }
    }
}

/// What to build, decided from files and flags without loading anything heavy.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The home directory.
    pub home: Home,
    /// The bot spec after overrides.
    pub spec: BotSpec,
    /// The persona, loaded and validated.
    pub persona: Persona,
    /// Where the persona came from.
    pub persona_source: Source,
    /// The model as named.
    pub model: String,
    /// The bot's database directory.
    pub storage_dir: PathBuf,
}

/// Decide bot, persona and model from `args` in `home` (loads and validates the YAML files).
pub fn plan(home: Home, args: &BotArgs) -> Result<Plan, LaunchError> {
    let mut spec = match (&args.bot, &args.persona) {
        (Some(bot), _) => BotSpec::load_from(&home, bot)?,
        (None, Some(persona)) => BotSpec::with_defaults(DEFAULT_BOT, persona),
        (None, None) => BotSpec::load_from(&home, DEFAULT_BOT)?,
    };
    if let Some(p) = &args.persona {
        spec.set_persona(p.clone());
    }
    let persona_source = spec
        .find_persona(&home)
        .map_err(LaunchError::PersonaMissing)?;
    let persona = crate::persona::library::load(&persona_source)?;
    if let Some(m) = &args.model {
        spec.set_model(m.clone());
    }
    let model = match spec.engine() {
        EngineSpec::OpenAi(o) => args.model.clone().unwrap_or_else(|| o.model.clone()),
        EngineSpec::Llama(_) => spec
            .model()
            .or(persona.model())
            .unwrap_or(DEFAULT_MODEL)
            .to_string(),
    };
    let storage_dir = spec.storage_dir(&home);
    Ok(Plan {
        home,
        spec,
        persona,
        persona_source,
        model,
        storage_dir,
    })
}

/// Build the bot the user asked for. Errors say which file and what to do.
pub async fn open_bot(global: &GlobalArgs, args: &BotArgs) -> anyhow::Result<Launched> {
    open_bot_for(global, args, None).await
}

/// [`open_bot`] for a front end that will continue the session named `session` (`parlor ask
/// --session`): the checksum of its saved state runs while the model loads, not after.
pub async fn open_bot_for(
    global: &GlobalArgs,
    args: &BotArgs,
    session: Option<&str>,
) -> anyhow::Result<Launched> {
    let plan = planned(global, args)?;
    // The model loads on its own thread while this one opens the store (~8 ms of a warm
    // `ask`'s start); the store's errors still come first.
    let (ahead_tx, ahead_rx) = tokio::sync::oneshot::channel();
    let loading = tokio::spawn({
        let plan = plan.clone();
        async move { build_engine_ahead(&plan, Some(ahead_rx)).await }
    });
    let mut launched = open_planned(&plan)?;
    {
        // Dropped at the end of this block when there is no saved session to check: the
        // loader waits for it.
        let tx = ahead_tx;
        if let Some(name) = session
            && let Ok(Some(s)) = launched.bot.find_session(name)
        {
            let persona = launched.bot.session_persona(s.id);
            let _ = tx.send(crate::engine::session_cache_key(s.id, persona.version()));
        }
    }
    let (engine, model_path) = loading.await.map_err(|e| EngineError::ModelLoad {
        path: plan.model.clone(),
        reason: format!("the loading task failed: {e}"),
    })??;
    launched.bot.set_engine(engine);
    launched.model_path = model_path;
    tracing::info!(model = %plan.model, "model loaded");
    Ok(launched)
}

/// Everything of the bot but the model: home, logging, bot and persona files, the store. Its
/// engine is [`NotLoaded`] until [`Bot::set_engine`] (the TUI opens at once and loads the model
/// with [`engine_loader`], showing a failure inside the app).
pub fn open_bot_unloaded(global: &GlobalArgs, args: &BotArgs) -> anyhow::Result<(Launched, Plan)> {
    let plan = planned(global, args)?;
    Ok((open_planned(&plan)?, plan))
}

/// Home, logging, and the plan for `args`.
fn planned(global: &GlobalArgs, args: &BotArgs) -> anyhow::Result<Plan> {
    let home = Home::resolve(global.home.as_deref())?;
    crate::logging::init(&home, &global.log_options())?;
    Ok(plan(home, args)?)
}

/// The bot of `plan` with its store, without its model.
fn open_planned(plan: &Plan) -> anyhow::Result<Launched> {
    let store = Store::open(&plan.storage_dir)?;
    tracing::info!(
        bot = plan.spec.name(),
        persona = plan.persona.id(),
        model = %plan.model,
        storage = %plan.storage_dir.display(),
        "bot ready"
    );
    let window = match plan.spec.engine() {
        EngineSpec::Llama(l) => l.context,
        EngineSpec::OpenAi(o) => o.context,
    };
    let placeholder = NotLoaded::new(
        model_label(&plan.model),
        window,
        format!("the model \"{}\" is not loaded", plan.model),
    );
    let bot = Bot::new(plan.persona.clone(), Arc::new(placeholder), store);
    bot.set_library(Library::new(plan.home.clone()));
    if !plan.persona.faq().entries().is_empty() {
        bot.set_retriever(retriever(&plan.home));
    }
    // Retention at start-up (a running Telegram bot repeats it on a schedule).
    let retention_erased = match plan.spec.retention() {
        Some(keep) => bot
            .erase_idle(keep, chrono::Utc::now().timestamp_millis())?
            .len(),
        None => 0,
    };
    let launched = Launched {
        bot,
        bot_name: plan.spec.name().to_string(),
        home: plan.home.clone(),
        spec: plan.spec.clone(),
        persona_source: plan.persona_source.clone(),
        model: plan.model.clone(),
        model_path: None,
        storage_dir: plan.storage_dir.clone(),
        retention_erased,
    };
    Ok(launched)
}

/// FAQ retrieval for bots of `home`: the embedding model from `storage/models/` (or
/// `PARLOR_EMBEDDING_MODEL`), vectors cached in `storage/cache/embeddings/`; lexical with a
/// notice when the model is missing or unreadable.
pub fn retriever(home: &Home) -> crate::support::index::Retriever {
    let model = crate::models::embedding_model_path(home.root());
    let cache = home.root().join("storage").join("cache").join("embeddings");
    crate::support::index::Retriever::load(&model, Some(cache))
}

/// Loads `plan`'s engine each time it is called (a retry after the user fetched the model
/// reads the disk again). Errors are the user-facing messages of [`LaunchError`].
pub fn engine_loader(plan: Plan) -> crate::tui::EngineLoader {
    let plan = Arc::new(plan);
    Arc::new(move || {
        let plan = plan.clone();
        Box::pin(async move {
            build_engine(&plan)
                .await
                .map(|(engine, _)| engine)
                .map_err(|e| e.to_string())
        })
    })
}

/// The engine for `plan` from `engines` (keyed by model and engine settings), built and kept
/// there on first use: commands that run many personas load each model once.
pub async fn shared_engine(
    plan: &Plan,
    engines: &mut std::collections::HashMap<String, Arc<dyn Engine>>,
) -> Result<Arc<dyn Engine>, LaunchError> {
    let key = format!("{}|{:?}", plan.model, plan.spec.engine());
    if let Some(e) = engines.get(&key) {
        return Ok(e.clone());
    }
    let (e, _) = build_engine(plan).await?;
    engines.insert(key, e.clone());
    Ok(e)
}

/// The engine of `plan`: llama.cpp loaded on a blocking thread, or a remote client.
pub async fn build_engine(plan: &Plan) -> Result<(Arc<dyn Engine>, Option<PathBuf>), LaunchError> {
    build_engine_ahead(plan, None).await
}

/// [`build_engine`]; while llama.cpp loads, the saved state of the cache key `ahead` sends (if
/// it sends one) is checked ([`crate::engine::llama::verify_state_ahead`]).
async fn build_engine_ahead(
    plan: &Plan,
    ahead: Option<tokio::sync::oneshot::Receiver<String>>,
) -> Result<(Arc<dyn Engine>, Option<PathBuf>), LaunchError> {
    match plan.spec.engine() {
        EngineSpec::Llama(l) => {
            let models_dir = plan.home.models_dir();
            let named = resolve_model(&models_dir, &plan.model)?;
            // The faster encoding of a registry model (made once, on the first load).
            let (model, format) = (plan.model.clone(), l.format);
            let path = tokio::task::spawn_blocking(move || {
                let report = |line: &str| tracing::info!("{line}");
                crate::models::serving_file(&models_dir, &model, &named, format, &report)
            })
            .await
            .map_err(|e| EngineError::ModelLoad {
                path: plan.model.clone(),
                reason: format!("the re-encoding thread failed: {e}"),
            })??;
            let mut settings = EngineSettings::new(&path, model_label(&plan.model));
            settings.threads = l.threads;
            settings.context = l.context;
            settings.slots = l.slots;
            settings.gpu_layers = l.gpu_layers;
            // Warm resume: each session's KV cache is saved beside its history.
            settings.state_dir = Some(plan.storage_dir.join(crate::engine::llama::STATE_DIR));
            let state_dir = settings.state_dir.clone();
            let loading = tokio::task::spawn_blocking(move || LlamaEngine::load(settings));
            if let (Some(rx), Some(dir)) = (ahead, state_dir)
                && let Ok(key) = rx.await
            {
                let model = path.clone();
                let passed = tokio::task::spawn_blocking(move || {
                    crate::engine::llama::verify_state_ahead(&dir, &model, &key)
                })
                .await;
                tracing::debug!(
                    passed = passed.unwrap_or(false),
                    "checked the session's saved state while the model loads"
                );
            }
            let engine = loading.await.map_err(|e| EngineError::ModelLoad {
                path: path.display().to_string(),
                reason: format!("the loading thread failed: {e}"),
            })??;
            Ok((Arc::new(engine), Some(path)))
        }
        EngineSpec::OpenAi(o) => {
            let api_key = match &o.api_key_env {
                Some(var) => Some(std::env::var(var).map_err(|_| LaunchError::ApiKeyMissing {
                    var: var.clone(),
                    bot: plan.spec.name().to_string(),
                })?),
                None => None,
            };
            let engine = OpenAiEngine::new(OpenAiSettings {
                base_url: o.base_url.clone(),
                model: plan.model.clone(),
                api_key,
                context: o.context,
                timeout_secs: o.timeout_secs,
            })?
            .with_extended_sampling(o.extended_sampling);
            Ok((Arc::new(engine), None))
        }
    }
}

/// Short model name for status bars: the registry name, or the file stem of a path.
pub fn model_label(name_or_path: &str) -> String {
    if home::looks_like_path(name_or_path) || name_or_path.ends_with(".gguf") {
        Path::new(name_or_path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| name_or_path.to_string())
    } else {
        name_or_path.to_string()
    }
}

/// The GGUF file for a model name or path ([`crate::models::resolve`]: an existing path, or a
/// registry name's file in `models_dir`; a missing one says which command fetches it).
pub fn resolve_model(models_dir: &Path, name_or_path: &str) -> Result<PathBuf, ModelError> {
    crate::models::resolve(models_dir, name_or_path)
}

#[cfg(test)]
mod tests;
