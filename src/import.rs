//! Import personas from other formats: Character Card V1/V2/V3 JSON, PNG cards (a `chara` or
//! `ccv3` text chunk holding base64 JSON) and Ollama Modelfiles, into persona YAML. Fields with
//! no persona equivalent are kept under `extensions` so nothing is lost (and export can give
//! them back).

pub mod card;
pub mod modelfile;
pub mod png;

use crate::persona::knowledge::RawKnowledge;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Errors of importing a file. Messages are for users.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("could not read \"{path}\": {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The format could not be recognised.
    #[error(
        "\"{0}\" is not a character card (JSON or PNG) or an Ollama Modelfile; import takes .json, .png or Modelfile files"
    )]
    UnknownFormat(String),
    /// A JSON card is malformed.
    #[error("the character card is not valid: {0}")]
    BadCard(String),
    /// A PNG file is malformed or holds no card.
    #[error("the PNG file: {0}")]
    BadPng(String),
    /// A Modelfile line could not be understood.
    #[error("Modelfile line {line}: {message}")]
    BadModelfile {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A persona file as import writes it (the persona YAML v1 fields, in reading order).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PersonaDoc {
    /// Display name.
    pub name: String,
    /// One line for lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// System prompt.
    pub system: String,
    /// First assistant message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Few-shot exchanges.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<DocExample>,
    /// Model (registry name or .gguf path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampler settings that were given.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sampling: BTreeMap<String, serde_json::Value>,
    /// Stop strings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Context settings that were given.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, serde_json::Value>,
    /// Knowledge (from a card's `character_book`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<RawKnowledge>,
    /// Everything with no equivalent, by source format (`card`, `modelfile`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, serde_json::Value>,
}

/// One few-shot exchange.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocExample {
    /// What the user says.
    pub user: String,
    /// What the bot answers.
    pub assistant: String,
}

impl PersonaDoc {
    /// The YAML text of the persona file, with a header comment naming the source.
    pub fn to_yaml(&self, source: &str) -> String {
        let body = serde_yaml::to_string(self).unwrap_or_default();
        format!("# Imported by `parlor persona import` from {source}\n{body}")
    }
}

/// Convert the file at `path` (format recognised by content) into a persona.
pub fn import_file(path: &Path) -> Result<PersonaDoc, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    import_bytes(&bytes, &path.display().to_string())
}

/// Convert file content (`name` is only used in messages).
pub fn import_bytes(bytes: &[u8], name: &str) -> Result<PersonaDoc, ImportError> {
    if bytes.starts_with(png::SIGNATURE) {
        let json = png::card_json(bytes)?;
        return card::from_json(&json);
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| ImportError::UnknownFormat(name.to_string()))?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('{') {
        return card::from_json(text);
    }
    if modelfile::looks_like(text) {
        return modelfile::parse(text);
    }
    Err(ImportError::UnknownFormat(name.to_string()))
}

/// Card and Modelfile macros -> persona macros: `{{char}}`/`<BOT>` -> `{{bot}}`, `<USER>` ->
/// `{{user}}`, `{{original}}` (the app's default prompt) dropped.
pub fn convert_macros(text: &str) -> String {
    let mut out = text.to_string();
    for (from, to) in [
        ("{{char}}", "{{bot}}"),
        ("{{Char}}", "{{bot}}"),
        ("<BOT>", "{{bot}}"),
        ("<bot>", "{{bot}}"),
        ("{{User}}", "{{user}}"),
        ("<USER>", "{{user}}"),
        ("<user>", "{{user}}"),
        ("{{original}}", ""),
    ] {
        out = out.replace(from, to);
    }
    out
}

#[cfg(test)]
mod tests;
