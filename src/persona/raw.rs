//! The persona file as parsed, before validation: every field a persona YAML may have. This is
//! the one place that lists them; unknown fields are errors (with a "did you mean" hint).
//! To add a section, add a field here and its check in `persona::validate`.

use serde::Deserialize;

/// A persona file (v1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPersona {
    /// Display name, `{{bot}}` (required).
    pub name: Option<String>,
    /// One line for lists and `parlor check` output.
    pub description: Option<String>,
    /// System prompt, with macros (required).
    pub system: Option<String>,
    /// First assistant message of a session, with macros.
    pub greeting: Option<String>,
    /// Few-shot turns placed after the system prompt.
    #[serde(default)]
    pub examples: Vec<RawExample>,
    /// Model this persona wants (registry name or .gguf path).
    pub model: Option<String>,
    /// Sampler settings.
    #[serde(default)]
    pub sampling: RawSampling,
    /// Strings that end a reply.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Context budget.
    #[serde(default)]
    pub context: RawContext,
    /// FAQ entries answered without the model (`persona::faq`).
    pub faq: Option<crate::persona::faq::RawFaq>,
    /// Knowledge entries injected by keys (`persona::knowledge`).
    pub knowledge: Option<crate::persona::knowledge::RawKnowledge>,
    /// Answer only from the persona's facts (`persona::grounding`).
    pub grounding: Option<crate::persona::grounding::RawGrounding>,
    /// When front ends ask "Did this help?" (`persona::ratings`): off, faq, all.
    pub ratings: Option<crate::persona::ratings::Ratings>,
    /// Rules checked before the model (`persona::rules`).
    #[serde(default)]
    pub rules: Vec<crate::persona::rules::RawRule>,
    /// Fields of imported formats with no equivalent (kept for export).
    #[serde(default)]
    pub extensions: std::collections::BTreeMap<String, serde_json::Value>,
}

/// One few-shot exchange.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExample {
    /// What the user says.
    pub user: String,
    /// What the bot answers.
    pub assistant: String,
}

/// `sampling:`; every field optional (defaults in `persona::defaults`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSampling {
    /// 0.0 = greedy.
    pub temperature: Option<f32>,
    /// 0 disables.
    pub top_k: Option<i32>,
    /// 1.0 disables.
    pub top_p: Option<f32>,
    /// 0.0 disables.
    pub min_p: Option<f32>,
    /// 1.0 disables.
    pub repeat_penalty: Option<f32>,
    /// Tokens the penalty looks back over.
    pub repeat_last_n: Option<i32>,
    /// Random seed.
    pub seed: Option<u32>,
    /// Reply length cap, tokens.
    pub max_tokens: Option<u32>,
}

/// `context:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContext {
    /// Context window, tokens (default: the engine's).
    pub window: Option<u32>,
    /// Tokens kept free for the reply (default: `sampling.max_tokens`).
    pub reply_reserve: Option<u32>,
}
