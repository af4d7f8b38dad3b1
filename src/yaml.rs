//! The one place YAML is parsed: size cap, errors as `path:line:col: field: problem`.
//!
//! Parsing is serde_yaml (0.9) behind [`parse`]; [`serde_path_to_error`] gives the field path of
//! a failure, serde_yaml its position. Checks that run after parsing (ranges, cross-field rules)
//! report through a [`Checker`], which finds the position of a field path in the source text
//! with [`locate`], so every problem carries `file:line:col`.

mod checker;
mod depth;
mod errors;
mod locate;

pub use checker::{Checker, MAX_PROBLEMS};
pub use depth::MAX_DEPTH;
pub use locate::locate;

use depth::too_deep;
use serde::de::DeserializeOwned;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// Largest YAML file we parse. Persona and bot files are a few KiB; anything this big is a
/// mistake (or an attack on the parser) and is refused before parsing.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// A position in a file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, 1-based.
    pub line: usize,
    /// Column (characters), 1-based.
    pub column: usize,
}

impl Location {
    /// The start of the file.
    pub const START: Location = Location { line: 1, column: 1 };
}

/// One problem found in a file: prints as `file:line:col: field.path: message; hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as the user should see it.
    pub file: String,
    /// Where, when known.
    pub location: Option<Location>,
    /// The field path (`sampling.temperature`, `examples[1].user`); empty for the whole file.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do, when we can say.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(at) = self.location {
            write!(f, ":{}:{}", at.line, at.column)?;
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// How a path is shown in messages: relative to the current directory when under it, without a
/// leading `./`.
pub fn display_path(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf());
    let s = shown.display().to_string();
    match s.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => s,
    }
}

/// Read a YAML file as UTF-8 text, refusing files over [`MAX_FILE_BYTES`] before reading them
/// whole (so `/dev/zero` or a huge file cannot exhaust memory).
pub fn read(path: &Path) -> Result<String, Problem> {
    let file = display_path(path);
    let problem = |location, message: String, hint: Option<&str>| Problem {
        file: file.clone(),
        location,
        field: String::new(),
        message,
        hint: hint.map(str::to_string),
    };
    let f = std::fs::File::open(path).map_err(|e| {
        problem(
            None,
            format!("could not open the file: {}", io_reason(&e)),
            Some("check the path"),
        )
    })?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            problem(
                None,
                format!("could not read the file: {}", io_reason(&e)),
                None,
            )
        })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(problem(
            None,
            format!("the file is larger than {} KiB", MAX_FILE_BYTES / 1024),
            Some("persona and bot files are small; is this the right file?"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // The valid prefix is UTF-8 by definition.
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        problem(
            Some(location_of_offset(prefix, prefix.len())),
            "the file is not valid UTF-8 text".to_string(),
            Some("save it as UTF-8"),
        )
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string().to_lowercase(),
    }
}

fn location_of_offset(text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Location { line, column }
}

/// Parse `text` (the content of `file`, as shown to the user) into `T`. Unknown fields, wrong
/// types and syntax errors become one [`Problem`] with the position and field path.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Problem> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Problem {
            file: file.to_string(),
            location: None,
            field: String::new(),
            message: format!("the file is larger than {} KiB", MAX_FILE_BYTES / 1024),
            hint: Some("persona and bot files are small; is this the right file?".into()),
        });
    }
    if is_blank(text) {
        return Err(Problem {
            file: file.to_string(),
            location: Some(Location::START),
            field: String::new(),
            message: "the file is empty".to_string(),
            hint: Some("see the shipped examples in personas/ and bots/".into()),
        });
    }
    if let Some(at) = too_deep(text) {
        return Err(Problem {
            file: file.to_string(),
            location: Some(at),
            field: String::new(),
            message: format!("nested deeper than {MAX_DEPTH} levels"),
            hint: Some("persona and bot files are shallow; is this the right file?".into()),
        });
    }
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        errors::describe(file, text, &path, &inner)
    })
}

/// Only whitespace, comments and document markers.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// The top-level keys of a YAML mapping (empty if `text` is not one).
pub fn top_level_keys(text: &str) -> Vec<String> {
    if text.len() > MAX_FILE_BYTES || too_deep(text).is_some() {
        return Vec::new();
    }
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests;
