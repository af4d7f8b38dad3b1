//! The grounded pieces of a turn, pure: picking an offered choice by its number, the choices a
//! front end shows, and the retrieval info of a picked answer.

use crate::chat::ReplySource;
use crate::matching::MatchInfo;
use crate::persona::Persona;
use crate::store::StoredMessage;
use serde::{Deserialize, Serialize};

/// A "did you mean" choice for front ends (numbered list, buttons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// 1-based number the user may type.
    pub number: usize,
    /// FAQ entry id ([`crate::bot::Bot::choose`] takes it).
    pub id: String,
    /// The entry's first question.
    pub question: String,
}

/// The choices offered by a stored reply (empty when it offered none).
pub fn offered(persona: &Persona, info: Option<&MatchInfo>) -> Vec<Choice> {
    let Some(info) = info else {
        return Vec::new();
    };
    info.choices
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let e = persona.faq().entry(id)?;
            Some(Choice {
                number: i + 1,
                id: id.clone(),
                question: e.questions.first().cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// The entry id picked by `text` after `last` (the previous bot message): its number
/// ("2", "2.", "#2", "number 2") or its question word for word.
pub fn picked(persona: &Persona, last: Option<&StoredMessage>, text: &str) -> Option<String> {
    let last = last.filter(|m| m.source == ReplySource::Choices)?;
    let choices = offered(persona, last.stats.as_ref()?.retrieval.as_deref());
    let t = text.trim().trim_end_matches('.').to_lowercase();
    let t = t
        .trim_start_matches('#')
        .trim_start_matches("number ")
        .trim();
    if let Ok(n) = t.parse::<usize>() {
        return choices.into_iter().find(|c| c.number == n).map(|c| c.id);
    }
    choices
        .into_iter()
        .find(|c| c.question.trim_end_matches('?').to_lowercase() == t.trim_end_matches('?'))
        .map(|c| c.id)
}

/// Retrieval info of an answer the user picked from offered choices.
pub fn picked_info(id: &str) -> MatchInfo {
    MatchInfo {
        best: Some(crate::matching::EntryScore {
            id: id.to_string(),
            score: 1.0,
            lexical: 1.0,
            semantic: None,
        }),
        ..Default::default()
    }
}
