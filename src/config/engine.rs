//! The bot file's `engine:` section: raw fields of both kinds -> validated [`EngineSpec`].

use super::{DEFAULT_CONTEXT, DEFAULT_TIMEOUT_SECS};
use crate::models::ModelFormat;
use crate::yaml::Checker;
use serde::Deserialize;

/// Which engine runs the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum EngineKind {
    #[default]
    Llama,
    Openai,
}

/// `engine.format` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawFormat {
    Auto,
    AsIs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    kind: Option<EngineKind>,
    // Both kinds.
    context: Option<u32>,
    // kind: llama
    threads: Option<u32>,
    gpu_layers: Option<u32>,
    slots: Option<u32>,
    format: Option<RawFormat>,
    // kind: openai
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    timeout_secs: Option<u64>,
    extended_sampling: Option<bool>,
}

/// llama.cpp in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaSpec {
    /// CPU threads; `None` = physical cores.
    pub threads: Option<u32>,
    /// Context window per conversation, tokens.
    pub context: u32,
    /// Conversations evaluated at the same time.
    pub slots: u32,
    /// Layers offloaded to a GPU (GPU builds only).
    pub gpu_layers: u32,
    /// Which encoding of the model to load (`auto`: the faster one on this CPU).
    pub format: ModelFormat,
}

impl Default for LlamaSpec {
    fn default() -> Self {
        Self {
            threads: None,
            context: DEFAULT_CONTEXT,
            slots: 1,
            gpu_layers: 0,
            format: ModelFormat::Auto,
        }
    }
}

/// A remote OpenAI-compatible server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiSpec {
    /// e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Model name the server knows.
    pub model: String,
    /// Environment variable holding the API key, if any.
    pub api_key_env: Option<String>,
    /// Context window assumed for prompt budgeting, tokens.
    pub context: u32,
    /// Request timeout, seconds.
    pub timeout_secs: u64,
    /// Send `top_k`, `min_p` and the repetition penalty too (llama-server, vLLM); false for
    /// servers that refuse fields OpenAI does not have.
    pub extended_sampling: bool,
}

/// The `engine:` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineSpec {
    /// `kind: llama` (the default).
    Llama(LlamaSpec),
    /// `kind: openai`.
    OpenAi(OpenAiSpec),
}

/// Validate `e`; `top_model` (the bot's `model:`) names the remote model when `engine.model`
/// is not set.
pub(super) fn validate(
    check: &mut Checker<'_>,
    e: RawEngine,
    top_model: Option<&str>,
) -> EngineSpec {
    check.range("engine.context", e.context, 128..=1_048_576);
    let context = e.context.unwrap_or(DEFAULT_CONTEXT);
    match e.kind.unwrap_or_default() {
        EngineKind::Llama => {
            for (field, set) in [
                ("base_url", e.base_url.is_some()),
                ("model", e.model.is_some()),
                ("api_key_env", e.api_key_env.is_some()),
                ("timeout_secs", e.timeout_secs.is_some()),
                ("extended_sampling", e.extended_sampling.is_some()),
            ] {
                if set {
                    check.error_hint(
                        &format!("engine.{field}"),
                        "only used with `kind: openai`",
                        if field == "model" {
                            "for llama.cpp, name the model with the top-level `model:`"
                        } else {
                            "remove it, or set `kind: openai`"
                        },
                    );
                }
            }
            check.range("engine.threads", e.threads, 1..=1024);
            check.range("engine.slots", e.slots, 1..=256);
            check.range("engine.gpu_layers", e.gpu_layers, 0..=10_000);
            EngineSpec::Llama(LlamaSpec {
                threads: e.threads,
                context,
                slots: e.slots.unwrap_or(1),
                gpu_layers: e.gpu_layers.unwrap_or(0),
                format: match e.format {
                    Some(RawFormat::AsIs) => ModelFormat::AsIs,
                    Some(RawFormat::Auto) | None => ModelFormat::Auto,
                },
            })
        }
        EngineKind::Openai => {
            for (field, set) in [
                ("threads", e.threads.is_some()),
                ("slots", e.slots.is_some()),
                ("gpu_layers", e.gpu_layers.is_some()),
                ("format", e.format.is_some()),
            ] {
                if set {
                    check.error_hint(
                        &format!("engine.{field}"),
                        "only used with `kind: llama`",
                        "remove it, or set `kind: llama`",
                    );
                }
            }
            let base_url = e.base_url.unwrap_or_default();
            if base_url.is_empty() {
                check.error_hint(
                    "engine.base_url",
                    "missing (required with `kind: openai`)",
                    "e.g. `base_url: http://127.0.0.1:8080/v1`",
                );
            } else if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                check.error_hint(
                    "engine.base_url",
                    format!("\"{base_url}\" is not an http:// or https:// URL"),
                    "e.g. `base_url: http://127.0.0.1:8080/v1`",
                );
            }
            let model = e
                .model
                .or_else(|| top_model.map(str::to_string))
                .unwrap_or_default();
            if model.trim().is_empty() {
                check.error_hint(
                    "engine.model",
                    "missing (required with `kind: openai`)",
                    "the model name the server knows",
                );
            }
            if let Some(var) = &e.api_key_env
                && (var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                check.error_hint(
                    "engine.api_key_env",
                    format!("\"{var}\" is not an environment variable name"),
                    "name the variable that holds the key, e.g. OPENAI_API_KEY (never the key itself)",
                );
            }
            check.range("engine.timeout_secs", e.timeout_secs, 1..=3600);
            EngineSpec::OpenAi(OpenAiSpec {
                base_url,
                model,
                api_key_env: e.api_key_env,
                context,
                timeout_secs: e.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
                extended_sampling: e.extended_sampling.unwrap_or(true),
            })
        }
    }
}
