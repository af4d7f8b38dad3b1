//! `Persona`: who the bot is, what it knows, how it samples. YAML -> raw struct
//! (`deny_unknown_fields`, [`raw`]) -> validated `Persona` that cannot be invalid; renders the
//! prompt for a turn within the context budget ([`prompt`]).

pub mod faq;
pub mod grounding;
pub mod knowledge;
pub mod library;
pub mod macros;
pub mod problem;
mod prompt;
pub mod ratings;
pub mod raw;
pub mod rules;
pub mod script;
pub mod session;
pub mod testing;
pub mod text;
pub mod watch;

use crate::chat::ChatMessage;
use crate::engine::{EngineError, Sampling};
use crate::yaml::{self, Checker, Problem};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reply length cap when `sampling.max_tokens` is not set.
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// Errors of loading a persona: each problem one line `file:line:col: field.path: problem`.
#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    /// Problems found in the file (or in reading it), each with its position.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Problem>),
}

impl PersonaError {
    /// The problems, one per line when printed.
    pub fn problems(&self) -> &[Problem] {
        match self {
            PersonaError::Invalid(p) => p,
        }
    }
}

/// Problems one per line.
pub(crate) fn join_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Values macros expand to.
#[derive(Debug, Clone, Default)]
pub struct MacroContext {
    /// `{{user}}`.
    pub user: String,
    /// `{{var.NAME}}`: session variables.
    pub vars: BTreeMap<String, String>,
    /// Seed of `{{random:a,b,c}}` (the same seed and text always pick the same option).
    pub seed: u64,
}

/// A prompt ready for the engine.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// System, examples, the history that fits, the new user message.
    pub messages: Vec<ChatMessage>,
    /// How many leading messages are the persona's preamble (system, examples, greeting).
    pub preamble: usize,
    /// History messages left out to fit the budget.
    pub trimmed: u32,
    /// Tokens the prompt takes.
    pub tokens: u32,
    /// Facts injected into the system message (`faq:ID`, `knowledge:ID`).
    pub injected: Vec<String>,
}

/// One few-shot exchange of a persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// What the user says (macros unexpanded).
    pub user: String,
    /// What the bot answers (macros unexpanded).
    pub assistant: String,
}

/// A validated persona.
#[derive(Debug, Clone)]
pub struct Persona {
    id: String,
    path: Option<PathBuf>,
    name: String,
    description: Option<String>,
    system: String,
    greeting: Option<String>,
    examples: Vec<Example>,
    model: Option<String>,
    sampling: Sampling,
    max_tokens: u32,
    stop: Vec<String>,
    context_window: Option<u32>,
    /// `context.reply_reserve` as written; `None` = `max_tokens`, at most half the window.
    reply_reserve: Option<u32>,
    version: String,
    scripting: script::Scripting,
    extensions: BTreeMap<String, serde_json::Value>,
}

impl Persona {
    /// Load and validate `path` (refused over [`yaml::MAX_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Self, PersonaError> {
        let text = yaml::read(path).map_err(|p| PersonaError::Invalid(vec![p]))?;
        let mut persona = Self::parse(path, &text)?;
        persona.path = Some(path.to_path_buf());
        Ok(persona)
    }

    /// Validate `text` as the content of `path` (the file stem becomes the id; the path is only
    /// used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, PersonaError> {
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = yaml::display_path(path);
        let raw: raw::RawPersona =
            yaml::parse(&file, text).map_err(|p| PersonaError::Invalid(vec![p]))?;
        let mut check = Checker::new(file, text);
        let persona = validate(&mut check, id, raw, text);
        check.finish(persona).map_err(PersonaError::Invalid)
    }

    /// File stem: how bots and sessions name it.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The file it was loaded from (`None` for a built-in persona parsed from memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    /// Display name (`{{bot}}`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// One-line description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The system text with macros expanded.
    pub fn system_text(&self, ctx: &MacroContext) -> String {
        self.expand(&self.system, ctx)
    }
    /// The few-shot examples (macros unexpanded).
    pub fn examples(&self) -> &[Example] {
        &self.examples
    }
    /// Greeting shown at the start of a session, macros expanded.
    pub fn greeting(&self, ctx: &MacroContext) -> Option<String> {
        self.greeting.as_ref().map(|g| self.expand(g, ctx))
    }
    /// Model the persona asks for, if any.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// Sampler settings.
    pub fn sampling(&self) -> &Sampling {
        &self.sampling
    }
    /// Reply length cap in tokens.
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }
    /// Stop strings.
    pub fn stop(&self) -> &[String] {
        &self.stop
    }
    /// `context.window`, if set (else the engine's).
    pub fn context_window(&self) -> Option<u32> {
        self.context_window
    }
    /// `context.reply_reserve`: tokens kept free for the reply (default `max_tokens`).
    pub fn reply_reserve(&self) -> u32 {
        self.reply_reserve.unwrap_or(self.max_tokens)
    }

    /// The reserve used with a `window`-token context: `context.reply_reserve` as written, or
    /// by default `max_tokens` but at most half the window (so a small engine context still
    /// leaves room for the prompt).
    pub fn reply_reserve_for(&self, window: u32) -> u32 {
        self.reply_reserve
            .unwrap_or_else(|| self.max_tokens.min(window / 2))
    }
    /// Fields kept from imported formats (`card`, `modelfile`), unused by parlor.
    pub fn extensions(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.extensions
    }
    /// Content hash: changes whenever the file's meaning changes (KV cache keys).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The prompt for a new user message: system (macros expanded), examples, the greeting as
    /// the first assistant turn, as much recent history as fits `window -`
    /// [`Persona::reply_reserve_for`]`(window)`
    /// (oldest dropped first, system and the new message always kept), the new message.
    /// `count` gives the token count of messages (chat template applied).
    pub fn render_prompt(
        &self,
        history: &[ChatMessage],
        user_text: &str,
        ctx: &MacroContext,
        window: u32,
        count: &dyn Fn(&[ChatMessage]) -> Result<u32, EngineError>,
    ) -> Result<Prompt, EngineError> {
        self.render(history, user_text, ctx, window, count, None)
    }

    /// [`Persona::render_prompt`] with the FAQ entry (index) to give the model as a fact
    /// chosen by retrieval (`None`: none).
    pub fn render_prompt_injecting(
        &self,
        history: &[ChatMessage],
        user_text: &str,
        ctx: &MacroContext,
        window: u32,
        count: &dyn Fn(&[ChatMessage]) -> Result<u32, EngineError>,
        inject: Option<usize>,
    ) -> Result<Prompt, EngineError> {
        self.render(history, user_text, ctx, window, count, Some(inject))
    }

    fn render(
        &self,
        history: &[ChatMessage],
        user_text: &str,
        ctx: &MacroContext,
        window: u32,
        count: &dyn Fn(&[ChatMessage]) -> Result<u32, EngineError>,
        inject: Option<Option<usize>>,
    ) -> Result<Prompt, EngineError> {
        let budget = window.saturating_sub(self.reply_reserve_for(window));
        let mut preamble = self.preamble(ctx);
        // Tokens of a text alone: the templated message minus an empty one's overhead.
        let system = |t: &str| [ChatMessage::new(crate::chat::Role::System, t)];
        let overhead = count(&system("")).unwrap_or(0);
        let text_tokens = |t: &str| match count(&system(t)) {
            Ok(n) => n.saturating_sub(overhead),
            Err(_) => knowledge::estimate_tokens(t),
        };
        let facts = match inject {
            None => self.facts(history, user_text, ctx, &text_tokens),
            Some(faq) => self.facts_with(history, ctx, &text_tokens, user_text, faq),
        };
        preamble[0].content =
            script::system_with_facts(std::mem::take(&mut preamble[0].content), &facts);
        let mut prompt = prompt::fit(
            preamble,
            history,
            ChatMessage::new(crate::chat::Role::User, user_text),
            budget,
            count,
        )?;
        prompt.injected = facts.into_iter().map(|f| f.id).collect();
        Ok(prompt)
    }

    /// System message, examples and greeting, macros expanded.
    fn preamble(&self, ctx: &MacroContext) -> Vec<ChatMessage> {
        use crate::chat::Role;
        let mut out = vec![ChatMessage::new(Role::System, self.system_text(ctx))];
        for ex in &self.examples {
            out.push(ChatMessage::new(Role::User, self.expand(&ex.user, ctx)));
            out.push(ChatMessage::new(
                Role::Assistant,
                self.expand(&ex.assistant, ctx),
            ));
        }
        if let Some(g) = self.greeting(ctx) {
            out.push(ChatMessage::new(Role::Assistant, g));
        }
        out
    }

    fn expand(&self, text: &str, ctx: &MacroContext) -> String {
        macros::expand(text, &self.name, ctx, chrono::Local::now())
    }
}

/// Raw -> validated, recording every problem (not just the first) in `check`.
fn validate(check: &mut Checker<'_>, id: String, raw: raw::RawPersona, text: &str) -> Persona {
    let scripting = script::validate(check, &raw);
    let defaults = Sampling::default();
    let s = &raw.sampling;
    check.range("sampling.temperature", s.temperature, 0.0..=2.0);
    check.range("sampling.top_k", s.top_k, 0..=1000);
    check.range("sampling.top_p", s.top_p, 0.0..=1.0);
    check.range("sampling.min_p", s.min_p, 0.0..=1.0);
    check.range("sampling.repeat_penalty", s.repeat_penalty, 0.5..=2.0);
    check.range("sampling.repeat_last_n", s.repeat_last_n, -1..=32768);
    check.range("sampling.max_tokens", s.max_tokens, 1..=32768);
    check.range("context.window", raw.context.window, 128..=1_048_576);
    check.range(
        "context.reply_reserve",
        raw.context.reply_reserve,
        1..=1_048_576,
    );

    let name = required_text(check, "name", raw.name, "give the bot's display name");
    let system = required_text(
        check,
        "system",
        raw.system,
        "write who the bot is and how it answers",
    );
    check_macros(check, "system", &system);
    let greeting = raw.greeting.filter(|g| !g.trim().is_empty());
    if let Some(g) = &greeting {
        check_macros(check, "greeting", g);
    }
    let description = raw.description.filter(|d| !d.trim().is_empty());
    if raw.model.as_ref().is_some_and(|m| m.trim().is_empty()) {
        check.error_hint(
            "model",
            "is empty",
            "name a model such as \"smollm2-135m\" or remove the line",
        );
    }
    let mut examples = Vec::new();
    for (i, ex) in raw.examples.into_iter().enumerate() {
        for (field, value) in [("user", &ex.user), ("assistant", &ex.assistant)] {
            let path = format!("examples[{i}].{field}");
            if value.trim().is_empty() {
                check.error(&path, "is empty");
            }
            check_macros(check, &path, value);
        }
        examples.push(Example {
            user: ex.user,
            assistant: ex.assistant,
        });
    }
    for (i, stop) in raw.stop.iter().enumerate() {
        if stop.is_empty() {
            check.error_hint(
                &format!("stop[{i}]"),
                "is empty",
                "an empty stop string would end every reply at once",
            );
        }
    }
    let max_tokens = s.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let reply_reserve = raw.context.reply_reserve.unwrap_or(max_tokens);
    if let Some(window) = raw.context.window {
        if reply_reserve >= window && raw.context.reply_reserve.is_some() {
            check.error_hint(
                "context.reply_reserve",
                format!("{reply_reserve} leaves no room for the prompt in a {window}-token window"),
                "make it well below context.window",
            );
        } else if reply_reserve >= window {
            check.error_hint(
                "sampling.max_tokens",
                format!("{max_tokens} does not fit a {window}-token window"),
                "lower it or raise context.window",
            );
        }
    }
    Persona {
        id,
        path: None,
        name,
        description,
        system,
        greeting,
        examples,
        model: raw.model,
        sampling: Sampling {
            temperature: s.temperature.unwrap_or(defaults.temperature),
            top_k: s.top_k.unwrap_or(defaults.top_k),
            top_p: s.top_p.unwrap_or(defaults.top_p),
            min_p: s.min_p.unwrap_or(defaults.min_p),
            repeat_penalty: s.repeat_penalty.unwrap_or(defaults.repeat_penalty),
            repeat_last_n: s.repeat_last_n.unwrap_or(defaults.repeat_last_n),
            seed: s.seed.unwrap_or(defaults.seed),
        },
        max_tokens,
        stop: raw.stop,
        context_window: raw.context.window,
        reply_reserve: raw.context.reply_reserve,
        version: content_hash(text),
        scripting,
        extensions: raw.extensions,
    }
}

fn required_text(
    check: &mut Checker<'_>,
    field: &str,
    value: Option<String>,
    hint: &str,
) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v,
        Some(_) => {
            check.error_hint(field, "is empty", hint);
            String::new()
        }
        None => {
            check.error_hint(field, "missing (required)", hint);
            String::new()
        }
    }
}

pub(crate) fn check_macros(check: &mut Checker<'_>, field: &str, text: &str) {
    for unknown in macros::unknown(text) {
        check.error_hint(
            field,
            format!("unknown macro \"{{{{{}}}}}\"", unknown.name),
            unknown.hint,
        );
    }
}

/// First 16 hex digits of the SHA-256 of the file content.
fn content_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests;
