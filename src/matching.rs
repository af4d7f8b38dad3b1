//! Pure matching parts of grounded support, below every other module: [`retrieval`] (hybrid
//! lexical + semantic scoring and the answer / choices / miss decision), [`specifics`] (the
//! facts check of a generated reply), [`intent`] (asking for a person vs mentioning one),
//! [`embed`] (the sentence-embedding model run in-process) and its [`wordpiece`] tokenizer,
//! and the [`MatchInfo`] every reply carries.

pub mod embed;
pub mod intent;
pub mod retrieval;
pub mod specifics;
pub mod wordpiece;

use serde::{Deserialize, Serialize};

/// One FAQ entry's score for a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryScore {
    /// Entry id.
    pub id: String,
    /// Blended score 0..1 (what thresholds compare).
    pub score: f32,
    /// Lexical confidence.
    pub lexical: f32,
    /// Cosine with the closest variant, when embeddings were used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<f32>,
}

/// What retrieval saw for a message: shown in `ask --json`, `parlor test`, the TUI badge and
/// the log, and stored with the reply (for `parlor report`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MatchInfo {
    /// Which signals scored the message.
    pub signal: retrieval::Signal,
    /// The best entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<EntryScore>,
    /// The second best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<EntryScore>,
    /// Entries offered as choices (ids, in the numbered order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// The message asked for a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asks_for_person: bool,
    /// Cosine with the closest "asks for a person" prototype, when embeddings were used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<f32>,
    /// Specifics of a generated reply that the facts do not contain (the reply was replaced
    /// by the "not sure" text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invented: Vec<String>,
}

impl MatchInfo {
    /// "faq:returns 0.82 (runner-up warranty 0.41)" for badges and logs.
    pub fn summary(&self) -> String {
        let mut s = match &self.best {
            Some(b) => format!("{} {:.2}", b.id, b.score),
            None => "no match".to_string(),
        };
        if let Some(r) = &self.runner_up {
            s.push_str(&format!(" (runner-up {} {:.2})", r.id, r.score));
        }
        if self.signal == retrieval::Signal::Lexical {
            s.push_str(" [lexical]");
        }
        s
    }
}

/// A message scored against a persona.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// FAQ entries, best first.
    pub scored: Vec<retrieval::Scored>,
    /// Which signals made the scores.
    pub signal: retrieval::Signal,
    /// The message asks for a person (words, or the semantic signal).
    pub asks_for_person: bool,
    /// Cosine with the closest person prototype, when embeddings were used.
    pub person: Option<f32>,
}
