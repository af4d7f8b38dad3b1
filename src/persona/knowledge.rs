//! Knowledge (`knowledge:`): the semantics of Character Card V2's `character_book`. Constant
//! entries are always candidates; the others when one of their keys (and, for `selective`
//! entries, one of their secondary keys) appears in the recent messages. A token budget decides
//! what fits: constant entries first, then higher `priority`; what fits goes into the prompt in
//! `insertion_order`.

use super::problem::Problem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `knowledge:` as written in persona YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKnowledge {
    /// Tokens the selected entries may take in the prompt (counted with the model's tokenizer
    /// at run time; `parlor check` estimates 4 characters a token).
    #[serde(default = "default_budget")]
    pub budget: u32,
    /// How many recent messages (including the new one) are scanned for keys.
    #[serde(default = "default_scan_depth")]
    pub scan_depth: usize,
    /// The entries.
    #[serde(default)]
    pub entries: Vec<RawKnowledgeEntry>,
}

/// One knowledge entry as written in YAML (field names as in `character_book`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKnowledgeEntry {
    /// Name for reports (`comment`/`name` in cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Words or phrases that pull the entry in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// The text given to the model.
    pub content: String,
    /// Always a candidate, keys or not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub constant: bool,
    /// Disabled entries are kept in the file but never used.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub enabled: bool,
    /// Higher wins when the budget is short.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// Position in the prompt among selected entries (lower first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub insertion_order: i32,
    /// Match keys with case.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_sensitive: bool,
    /// Also require one of `secondary_keys`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub selective: bool,
    /// Second key set for `selective` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secondary_keys: Vec<String>,
    /// Fields of other formats with no equivalent here (kept for export).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, serde_json::Value>,
}

fn default_budget() -> u32 {
    512
}
fn default_scan_depth() -> usize {
    4
}
fn yes() -> bool {
    true
}
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// Estimated tokens of `text` (about four characters a token; no tokenizer needed).
pub fn estimate_tokens(text: &str) -> u32 {
    (text.chars().count() as u32).div_ceil(4)
}

/// A validated knowledge entry.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeEntry {
    /// Name for reports: the `id`, or `entries[N]`.
    pub id: String,
    /// The raw entry (for export).
    pub raw: RawKnowledgeEntry,
    tokens: u32,
}

/// What fits the budget for one turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection<'a> {
    /// Selected entries in insertion order.
    pub entries: Vec<&'a KnowledgeEntry>,
    /// Tokens they take.
    pub tokens: u32,
    /// Ids of triggered entries left out for lack of budget.
    pub dropped: Vec<String>,
}

/// A validated knowledge section.
#[derive(Debug, Clone, PartialEq)]
pub struct Knowledge {
    budget: u32,
    scan_depth: usize,
    entries: Vec<KnowledgeEntry>,
}

impl Default for Knowledge {
    fn default() -> Self {
        Self {
            budget: default_budget(),
            scan_depth: default_scan_depth(),
            entries: Vec::new(),
        }
    }
}

impl Knowledge {
    /// Validate `raw`; problems carry their field path under `field`.
    pub fn from_raw(raw: &RawKnowledge, field: &str) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        if raw.scan_depth == 0 {
            problems.push(Problem::new(
                format!("{field}.scan_depth"),
                "must be at least 1 (the new message)",
            ));
        }
        let mut constant_tokens = 0;
        let mut entries = Vec::new();
        for (i, e) in raw.entries.iter().enumerate() {
            let at = format!("{field}.entries[{i}]");
            let tokens = estimate_tokens(&e.content);
            if e.content.trim().is_empty() {
                problems.push(Problem::new(format!("{at}.content"), "is empty"));
            }
            if !e.constant && e.keys.iter().all(|k| k.trim().is_empty()) {
                problems.push(Problem::new(
                    format!("{at}.keys"),
                    "is empty; give keys that pull the entry in, or set `constant: true`",
                ));
            }
            if e.selective && e.secondary_keys.is_empty() {
                problems.push(Problem::new(
                    format!("{at}.secondary_keys"),
                    "is empty but `selective` is true; add secondary keys or drop `selective`",
                ));
            }
            if e.enabled && tokens > raw.budget {
                problems.push(Problem::new(
                    format!("{at}.content"),
                    format!(
                        "takes about {tokens} tokens, over the knowledge budget of {}; shorten it or raise `{field}.budget`",
                        raw.budget
                    ),
                ));
            }
            if e.enabled && e.constant {
                constant_tokens += tokens;
            }
            entries.push(KnowledgeEntry {
                id: e.id.clone().unwrap_or_else(|| format!("entries[{i}]")),
                raw: e.clone(),
                tokens,
            });
        }
        if constant_tokens > raw.budget {
            problems.push(Problem::new(
                format!("{field}.budget"),
                format!(
                    "constant entries take about {constant_tokens} tokens, over the budget of {}; raise the budget or make some entries keyed",
                    raw.budget
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            budget: raw.budget,
            scan_depth: raw.scan_depth,
            entries,
        })
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[KnowledgeEntry] {
        &self.entries
    }

    /// Token budget.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Messages scanned for keys.
    pub fn scan_depth(&self) -> usize {
        self.scan_depth
    }

    /// Whether `text` triggers a keyed (not constant) entry: grounded mode then has a fact to
    /// answer from even when no FAQ entry matches.
    pub fn keyed_by(&self, text: &str) -> bool {
        self.select(&[text]).entries.iter().any(|e| !e.raw.constant)
    }

    /// The entries for a turn with estimated token counts (no tokenizer: `parlor check`).
    pub fn select(&self, recent: &[&str]) -> Selection<'_> {
        self.select_by(recent, &|e| e.tokens)
    }

    /// The entries for a turn. `recent` holds message texts oldest first, the new user message
    /// last; only the last `scan_depth` are scanned. `tokens` counts what an entry takes in the
    /// prompt (the model's tokenizer at run time); it is asked only about triggered entries.
    pub fn select_by(
        &self,
        recent: &[&str],
        tokens: &dyn Fn(&KnowledgeEntry) -> u32,
    ) -> Selection<'_> {
        let from = recent.len().saturating_sub(self.scan_depth);
        let scanned = &recent[from..];
        let lower: Vec<String> = scanned.iter().map(|t| t.to_lowercase()).collect();
        let hit = |keys: &[String], case_sensitive: bool| {
            keys.iter().filter(|k| !k.trim().is_empty()).any(|k| {
                if case_sensitive {
                    scanned.iter().any(|t| contains_word(t, k))
                } else {
                    let k = k.to_lowercase();
                    lower.iter().any(|t| contains_word(t, &k))
                }
            })
        };
        let mut candidates: Vec<&KnowledgeEntry> = self
            .entries
            .iter()
            .filter(|e| e.raw.enabled)
            .filter(|e| {
                e.raw.constant
                    || (hit(&e.raw.keys, e.raw.case_sensitive)
                        && (!e.raw.selective || hit(&e.raw.secondary_keys, e.raw.case_sensitive)))
            })
            .collect();
        // Constant entries first, then higher priority, then earlier in the prompt.
        candidates.sort_by_key(|e| (!e.raw.constant, -e.raw.priority, e.raw.insertion_order));
        let mut sel = Selection::default();
        for e in candidates {
            let n = tokens(e);
            if sel.tokens + n <= self.budget {
                sel.tokens += n;
                sel.entries.push(e);
            } else {
                sel.dropped.push(e.id.clone());
            }
        }
        sel.entries.sort_by_key(|e| e.raw.insertion_order);
        sel
    }
}

/// Whether `key` occurs in `text` with no letter or digit right before or after it.
fn contains_word(text: &str, key: &str) -> bool {
    if key.is_empty() {
        return false;
    }
    text.match_indices(key).any(|(i, m)| {
        let before = text[..i].chars().next_back();
        let after = text[i + m.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
#[path = "knowledge_tests.rs"]
mod tests;
