//! FAQ: entries with question variants and one exact answer. A user message is matched against
//! every variant (BM25 over normalised, stemmed terms, with typo tolerance through a trigram
//! index and a bounded edit distance); a strong match answers without the model, a weaker one
//! is injected into the prompt as a fact.

use super::problem::Problem;
use super::text;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;
/// Weight of a query word matched only through a typo correction.
const TYPO_WEIGHT: f32 = 0.8;
/// Weight of "the message covers the question" against "the question explains the message"
/// in the confidence (a weighted geometric mean): extra words in a message cost less than
/// missing words of the question.
const DOC_WEIGHT: f32 = 0.6;
/// How many typo candidates (most shared trigrams first) get an edit-distance check.
const TYPO_CANDIDATES: usize = 48;

/// `faq:` as written in persona YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFaq {
    /// Confidence (0..1) at which an entry answers directly, without the model.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Confidence (0..1) at which an entry is injected into the prompt as a fact.
    #[serde(default = "default_inject_threshold")]
    pub inject_threshold: f32,
    /// The entries.
    #[serde(default)]
    pub entries: Vec<RawFaqEntry>,
}

/// One FAQ entry as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFaqEntry {
    /// Unique id (recorded with the message that it answered).
    pub id: String,
    /// Ways people ask it.
    pub questions: Vec<String>,
    /// The exact answer (macros allowed).
    pub answer: String,
    /// Free labels for authors and reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

fn default_threshold() -> f32 {
    0.7
}
fn default_inject_threshold() -> f32 {
    0.4
}

/// A validated FAQ entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FaqEntry {
    /// Unique id.
    pub id: String,
    /// Question variants.
    pub questions: Vec<String>,
    /// The answer text (macros not yet expanded).
    pub answer: String,
    /// Labels.
    pub tags: Vec<String>,
}

/// A ranked candidate for a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaqMatch {
    /// Index into [`Faq::entries`].
    pub entry: usize,
    /// Confidence in 0..=1: how much of the best variant the message covers (BM25 weights)
    /// and how much of the message that variant explains.
    pub score: f32,
}

/// What the FAQ decides about one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaqDecision<'a> {
    /// Answer with this entry, without the model.
    Answer(&'a FaqEntry, f32),
    /// Give this entry to the model as a fact.
    Inject(&'a FaqEntry, f32),
    /// Nothing relevant.
    Miss,
}

/// A validated FAQ with its search index.
#[derive(Debug, Clone)]
pub struct Faq {
    threshold: f32,
    inject_threshold: f32,
    entries: Vec<FaqEntry>,
    index: Index,
}

impl Default for Faq {
    fn default() -> Self {
        Faq::new(Vec::new(), default_threshold(), default_inject_threshold())
    }
}

impl Faq {
    /// Validate `raw`; problems carry their field path under `field` (e.g. `faq`).
    pub fn from_raw(raw: &RawFaq, field: &str) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        for (name, v) in [
            ("threshold", raw.threshold),
            ("inject_threshold", raw.inject_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(Problem::new(
                    format!("{field}.{name}"),
                    format!("{v} is out of range (0.0 to 1.0)"),
                ));
            }
        }
        if raw.inject_threshold > raw.threshold {
            problems.push(Problem::new(
                format!("{field}.inject_threshold"),
                format!(
                    "{} is above `threshold` ({}); injecting needs a weaker match than answering",
                    raw.inject_threshold, raw.threshold
                ),
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, e) in raw.entries.iter().enumerate() {
            let at = format!("{field}.entries[{i}]");
            if e.id.trim().is_empty() {
                problems.push(Problem::new(
                    format!("{at}.id"),
                    "is empty; give the entry an id",
                ));
            } else if let Some(first) = seen.insert(&e.id, i) {
                problems.push(Problem::new(
                    format!("{at}.id"),
                    format!(
                        "duplicate FAQ id \"{}\" (also used by entries[{first}]); ids must be unique",
                        e.id
                    ),
                ));
            }
            if e.questions.is_empty() {
                problems.push(Problem::new(
                    format!("{at}.questions"),
                    "is empty; list at least one way people ask this",
                ));
            }
            for (j, q) in e.questions.iter().enumerate() {
                if text::terms(q).is_empty() {
                    problems.push(Problem::new(
                        format!("{at}.questions[{j}]"),
                        format!("\"{q}\" has no searchable words (only stop words or punctuation)"),
                    ));
                }
            }
            if e.answer.trim().is_empty() {
                problems.push(Problem::new(format!("{at}.answer"), "is empty"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let entries = raw
            .entries
            .iter()
            .map(|e| FaqEntry {
                id: e.id.clone(),
                questions: e.questions.clone(),
                answer: e.answer.clone(),
                tags: e.tags.clone(),
            })
            .collect();
        Ok(Faq::new(entries, raw.threshold, raw.inject_threshold))
    }

    /// An FAQ over `entries` (assumed valid) with the given thresholds.
    pub fn new(entries: Vec<FaqEntry>, threshold: f32, inject_threshold: f32) -> Self {
        let index = Index::build(&entries);
        Self {
            threshold,
            inject_threshold,
            entries,
            index,
        }
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[FaqEntry] {
        &self.entries
    }

    /// The entry with this id.
    pub fn entry(&self, id: &str) -> Option<&FaqEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Confidence needed to answer directly.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Confidence needed to inject an entry as a fact.
    pub fn inject_threshold(&self) -> f32 {
        self.inject_threshold
    }

    /// The best `limit` entries for `message`, best first (entries with no shared term are
    /// left out).
    pub fn rank(&self, message: &str, limit: usize) -> Vec<FaqMatch> {
        self.index.rank(message, limit)
    }

    /// Answer, inject, or nothing, by the best match and the thresholds.
    pub fn decide(&self, message: &str) -> FaqDecision<'_> {
        match self.rank(message, 1).first() {
            Some(m) if m.score >= self.threshold => {
                FaqDecision::Answer(&self.entries[m.entry], m.score)
            }
            Some(m) if m.score >= self.inject_threshold => {
                FaqDecision::Inject(&self.entries[m.entry], m.score)
            }
            _ => FaqDecision::Miss,
        }
    }
}

/// One indexed question variant.
#[derive(Debug, Clone)]
struct Doc {
    entry: usize,
    len: f32,
    /// BM25 score of the variant against itself: a perfect match.
    self_score: f32,
}

/// Inverted index over all question variants.
#[derive(Debug, Clone, Default)]
struct Index {
    vocab: HashMap<String, u32>,
    /// Term text by id.
    terms: Vec<String>,
    /// Per term: (doc, term frequency).
    postings: Vec<Vec<(u32, u16)>>,
    idf: Vec<f32>,
    docs: Vec<Doc>,
    avg_len: f32,
    /// Trigram -> terms containing it (typo candidates).
    trigrams: HashMap<String, Vec<u32>>,
    /// Weight of a query word the FAQ has never seen.
    unknown_idf: f32,
}

impl Index {
    fn build(entries: &[FaqEntry]) -> Self {
        let mut ix = Index::default();
        let mut doc_terms: Vec<HashMap<u32, u16>> = Vec::new();
        for (e, entry) in entries.iter().enumerate() {
            for q in &entry.questions {
                let terms = text::terms(q);
                let mut tf: HashMap<u32, u16> = HashMap::new();
                for t in &terms {
                    let next = ix.vocab.len() as u32;
                    let id = *ix.vocab.entry(t.clone()).or_insert(next);
                    if id as usize == ix.postings.len() {
                        ix.postings.push(Vec::new());
                        ix.terms.push(t.clone());
                    }
                    *tf.entry(id).or_default() += 1;
                }
                let d = ix.docs.len() as u32;
                for (&t, &n) in &tf {
                    ix.postings[t as usize].push((d, n));
                }
                ix.docs.push(Doc {
                    entry: e,
                    len: terms.len() as f32,
                    self_score: 0.0,
                });
                doc_terms.push(tf);
            }
        }
        let n = ix.docs.len() as f32;
        ix.avg_len = if ix.docs.is_empty() {
            1.0
        } else {
            ix.docs.iter().map(|d| d.len).sum::<f32>() / n
        };
        ix.idf = ix.postings.iter().map(|p| idf(n, p.len() as f32)).collect();
        ix.unknown_idf = 0.5 * idf(n, 1.0);
        for (d, tf) in doc_terms.iter().enumerate() {
            let len = ix.docs[d].len;
            ix.docs[d].self_score = tf
                .iter()
                .map(|(&t, &f)| ix.idf[t as usize] * ix.tf_part(f, len))
                .sum();
        }
        for (term, &id) in &ix.vocab {
            for g in text::trigrams(term) {
                ix.trigrams.entry(g).or_default().push(id);
            }
        }
        ix
    }

    fn tf_part(&self, tf: u16, len: f32) -> f32 {
        let tf = f32::from(tf);
        tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len))
    }

    /// The vocabulary term for a query word: itself, or the closest known term within the
    /// word's typo budget (weight [`TYPO_WEIGHT`]).
    fn resolve(&self, word: &str) -> Option<(u32, f32)> {
        if let Some(&id) = self.vocab.get(word) {
            return Some((id, 1.0));
        }
        let budget = text::typo_budget(word.chars().count());
        if budget == 0 {
            return None;
        }
        // An edit destroys at most three padded trigrams, a transposition four: a candidate
        // within the budget shares at least `len - 4 * budget` of them. Only the candidates
        // sharing the most trigrams get the (costlier) edit-distance check.
        let grams = text::trigrams(word);
        let needed = grams.len().saturating_sub(4 * budget).max(1);
        let mut shared: HashMap<u32, usize> = HashMap::new();
        for g in &grams {
            for &cand in self.trigrams.get(g).map(Vec::as_slice).unwrap_or(&[]) {
                *shared.entry(cand).or_default() += 1;
            }
        }
        let mut cands: Vec<(usize, u32)> = shared
            .into_iter()
            .filter(|&(_, n)| n >= needed)
            .map(|(c, n)| (n, c))
            .collect();
        cands.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        cands.truncate(TYPO_CANDIDATES);
        let mut best: Option<(usize, u32)> = None;
        for (_, cand) in cands {
            let term = self.term(cand);
            let allowed = budget.min(text::typo_budget(term.chars().count()));
            if let Some(d) = text::edit_distance(word, term, allowed)
                && best.is_none_or(|(bd, bid)| d < bd || (d == bd && cand < bid))
            {
                best = Some((d, cand));
            }
        }
        best.map(|(_, id)| (id, TYPO_WEIGHT))
    }

    fn term(&self, id: u32) -> &str {
        &self.terms[id as usize]
    }

    fn rank(&self, message: &str, limit: usize) -> Vec<FaqMatch> {
        let mut words = text::terms(message);
        words.sort();
        words.dedup();
        if words.is_empty() || self.docs.is_empty() {
            return Vec::new();
        }
        let mut query_total = 0.0f32;
        let mut resolved = Vec::new();
        for w in &words {
            match self.resolve(w) {
                Some((id, weight)) => {
                    query_total += self.idf[id as usize];
                    resolved.push((id, weight));
                }
                None => query_total += self.unknown_idf,
            }
        }
        resolved.sort_by_key(|&(id, _)| id);
        resolved.dedup_by_key(|&mut (id, _)| id);
        // Per touched doc: its BM25 score. Per entry: the query weight its variants explain
        // together (a message may use words of two variants of the same question).
        let mut acc: HashMap<u32, f32> = HashMap::new();
        let mut explained: HashMap<usize, f32> = HashMap::new();
        for &(t, weight) in &resolved {
            let idf = self.idf[t as usize];
            // Postings are in doc order and an entry's docs are contiguous: an entry's first
            // posting of the term is where the entry changes.
            let mut last_entry = None;
            for &(d, tf) in &self.postings[t as usize] {
                let doc = &self.docs[d as usize];
                *acc.entry(d).or_default() += weight * idf * self.tf_part(tf, doc.len);
                if last_entry != Some(doc.entry) {
                    last_entry = Some(doc.entry);
                    *explained.entry(doc.entry).or_default() += weight * idf;
                }
            }
        }
        let mut best: HashMap<usize, (f32, f32)> = HashMap::new();
        for (d, bm25) in acc {
            let doc = &self.docs[d as usize];
            let doc_cov = (bm25 / doc.self_score).min(1.0);
            let covered = explained.get(&doc.entry).copied().unwrap_or(0.0);
            let query_cov = (covered / query_total).min(1.0);
            let score = doc_cov.powf(DOC_WEIGHT) * query_cov.powf(1.0 - DOC_WEIGHT);
            let slot = best.entry(doc.entry).or_insert((0.0, 0.0));
            if (score, bm25) > *slot {
                *slot = (score, bm25);
            }
        }
        let mut out: Vec<(usize, f32, f32)> =
            best.into_iter().map(|(e, (s, b))| (e, s, b)).collect();
        out.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(b.2.total_cmp(&a.2))
                .then(a.0.cmp(&b.0))
        });
        out.truncate(limit);
        out.into_iter()
            .map(|(entry, score, _)| FaqMatch { entry, score })
            .collect()
    }
}

fn idf(n: f32, df: f32) -> f32 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

#[cfg(test)]
#[path = "faq_tests.rs"]
mod tests;
