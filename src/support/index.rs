//! The retriever a bot holds: the embedding model (if present) and, per persona version, the
//! embeddings of its FAQ variants, its FAQ answers and the handoff prototypes, cached on disk
//! (`<cache>/<persona>-<version>-<model>.emb`) so a persona loads them instead of embedding
//! again. [`Retriever::rank`] scores a message with both signals (or lexical alone, with a
//! notice, when the model is missing).

use crate::matching::Ranking;
use crate::matching::embed::{Embedder, Embedding, cosine};
use crate::matching::intent;
use crate::matching::retrieval::{Signal, blend};
use crate::persona::Persona;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Cache format: bumped whenever what is embedded changes (02: more handoff prototypes, 03: the
/// answers), so an older file is a miss and gets rebuilt.
const MAGIC: &[u8; 8] = b"PLREMB04";

/// Embeddings of one persona version's texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// Entry index of each FAQ variant.
    pub entry_of: Vec<u32>,
    /// One unit vector per variant, then one per entry's answer, then one per handoff
    /// prototype.
    pub rows: Vec<Embedding>,
    /// How many of `rows` are FAQ variants.
    pub variants: usize,
    /// How many rows after the variants are answers (one per entry, in entry order).
    pub answers: usize,
}

/// A message's cosines with one persona's vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Cosines {
    /// Per entry: the best cosine with its variants and its answer. Customers often ask in
    /// the answer's words rather than a variant's ("how many days for the parcel to get to
    /// Germany": best `shipping-time` variant 0.44, its answer 0.54). Counting the answer like
    /// one more variant was chosen on the tuning part of `evals/`: acme reaches 95% of its
    /// paraphrases instead of 90%, crumb and nimbus the same, no uncovered question answered.
    /// A bonus for the answer (up to +0.10) reaches no more there and turns more uncovered
    /// questions from "not sure" into "did you mean" choices (crumb 3 -> 5 of 10), a malus
    /// (-0.05) loses acme's gain. (The held-out part was replayed once with the +0.10 bonus
    /// before this was settled; the README says so.)
    pub entries: Vec<f32>,
    /// The best cosine with any variant (the questions the FAQ answers), which the "asks for a
    /// person" signal is weighed against.
    pub best_variant: f32,
    /// The best cosine with a handoff prototype.
    pub person: f32,
}

impl Vectors {
    /// Embed every variant and answer of `persona`'s FAQ and the prototypes.
    pub fn build(embedder: &Embedder, persona: &Persona) -> Self {
        let mut entry_of = Vec::new();
        let mut rows = Vec::new();
        let entries = persona.faq().entries();
        for (e, entry) in entries.iter().enumerate() {
            for q in &entry.questions {
                entry_of.push(e as u32);
                rows.push(embedder.embed(q));
            }
        }
        let variants = rows.len();
        rows.extend(entries.iter().map(|e| embedder.embed(&e.answer)));
        rows.extend(intent::PROTOTYPES.iter().map(|p| embedder.embed(p)));
        Self {
            entry_of,
            rows,
            variants,
            answers: entries.len(),
        }
    }

    /// A message's cosines (`query` embedded) for an FAQ of `entries` entries.
    pub fn scores(&self, query: &[f32], entries: usize) -> Cosines {
        let mut best = vec![0.0f32; entries];
        for (row, &e) in self.rows[..self.variants].iter().zip(&self.entry_of) {
            let c = cosine(query, row);
            if let Some(b) = best.get_mut(e as usize) {
                *b = b.max(c);
            }
        }
        let best_variant = best.iter().copied().fold(0.0f32, f32::max);
        let answers = &self.rows[self.variants..self.variants + self.answers];
        for (b, row) in best.iter_mut().zip(answers) {
            *b = b.max(cosine(query, row));
        }
        let person = self.rows[self.variants + self.answers..]
            .iter()
            .map(|r| cosine(query, r))
            .fold(0.0f32, f32::max);
        Cosines {
            entries: best,
            best_variant,
            person,
        }
    }

    /// Write to `path` (atomically: a temporary file renamed).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        let dim = self.rows.first().map_or(0, Vec::len);
        let mut buf = Vec::with_capacity(24 + self.rows.len() * (4 + dim * 4));
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(dim as u32).to_le_bytes());
        buf.extend_from_slice(&(self.rows.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(self.variants as u32).to_le_bytes());
        buf.extend_from_slice(&(self.answers as u32).to_le_bytes());
        for &e in &self.entry_of {
            buf.extend_from_slice(&e.to_le_bytes());
        }
        for r in &self.rows {
            buf.extend_from_slice(bytemuck::cast_slice(r));
        }
        tmp.write_all(&buf)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Read what [`Vectors::save`] wrote; `None` for a missing or damaged file.
    pub fn load(path: &Path) -> Option<Self> {
        // One allocation of the file's size, and one copy per row below (no intermediate buffer
        // of all the floats): 4,000 vectors of 768 are 12 MB.
        let bytes = std::fs::read(path).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let u32_at = |b: &[u8], i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
        };
        let dim = u32_at(rest, 0)? as usize;
        let n = u32_at(rest, 4)? as usize;
        let variants = u32_at(rest, 8)? as usize;
        let answers = u32_at(rest, 12)? as usize;
        let len = n
            .checked_mul(dim)?
            .checked_mul(4)?
            .checked_add(variants.checked_mul(4)?)?
            .checked_add(16)?;
        if variants.checked_add(answers)? > n || rest.len() != len || (n > 0 && dim == 0) {
            return None;
        }
        let entry_of = (0..variants)
            .map(|i| u32_at(rest, 16 + i * 4))
            .collect::<Option<Vec<_>>>()?;
        let data = &rest[16 + variants * 4..];
        // Written little-endian by `save`, read the same way on every target parlor builds for.
        let rows = data
            .chunks_exact((dim * 4).max(4))
            .map(bytemuck::pod_collect_to_vec)
            .collect();
        Some(Self {
            entry_of,
            rows,
            variants,
            answers,
        })
    }
}

/// Scores messages against personas; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Retriever {
    embedder: Option<Arc<Embedder>>,
    notice: Option<String>,
    cache_dir: Option<PathBuf>,
    vectors: Arc<Mutex<HashMap<String, Arc<Vectors>>>>,
}

impl Retriever {
    /// Lexical only, saying why (`notice` is shown to users and logged).
    pub fn lexical(notice: impl Into<String>) -> Self {
        Self {
            notice: Some(notice.into()),
            ..Default::default()
        }
    }

    /// With the embedding model at `model` (lexical with a notice if it cannot be loaded);
    /// embeddings cached under `cache_dir`.
    pub fn load(model: &Path, cache_dir: Option<PathBuf>) -> Self {
        if !model.exists() {
            let notice = format!(
                "semantic FAQ search is off: the embedding model is not installed ({}); run `parlor model pull {}`. Using word matching only.",
                model.display(),
                crate::models::EMBEDDING_MODEL
            );
            tracing::warn!("{notice}");
            return Self::lexical(notice);
        }
        match Embedder::load(model) {
            Ok(e) => Self {
                embedder: Some(Arc::new(e)),
                notice: None,
                cache_dir,
                vectors: Arc::default(),
            },
            Err(e) => {
                let notice = format!("semantic FAQ search is off ({e}). Using word matching only.");
                tracing::warn!("{notice}");
                Self::lexical(notice)
            }
        }
    }

    /// Which signal messages are scored with.
    pub fn signal(&self) -> Signal {
        if self.embedder.is_some() {
            Signal::Hybrid
        } else {
            Signal::Lexical
        }
    }

    /// Why semantic search is off, if it is.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// The embedding model, if loaded.
    pub fn embedder(&self) -> Option<&Arc<Embedder>> {
        self.embedder.as_ref()
    }

    /// The persona's vectors: from memory, the disk cache, or embedded now (and cached).
    pub fn vectors(&self, persona: &Persona) -> Option<Arc<Vectors>> {
        let embedder = self.embedder.as_ref()?;
        let key = format!("{}-{}-{}", persona.id(), persona.version(), embedder.id());
        let mut map = self.vectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = map.get(&key) {
            return Some(v.clone());
        }
        let file = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{}.emb", sanitize(&key))));
        let loaded = file.as_deref().and_then(Vectors::load);
        let v = Arc::new(match loaded {
            Some(v) => v,
            None => {
                let v = Vectors::build(embedder, persona);
                if let Some(f) = &file
                    && let Err(e) = v.save(f)
                {
                    tracing::warn!("could not cache FAQ embeddings in {}: {e}", f.display());
                }
                v
            }
        });
        map.insert(key, v.clone());
        Some(v)
    }

    /// Score `text` against `persona`'s FAQ.
    pub fn rank(&self, persona: &Persona, text: &str) -> Ranking {
        let faq = persona.faq();
        let entries = faq.entries().len();
        let lexical: Vec<(usize, f32)> = faq
            .rank(text, entries.max(1))
            .into_iter()
            .map(|m| (m.entry, m.score))
            .collect();
        let words_ask = intent::asks_for_person(text);
        let semantic = self.embedder.as_ref().and_then(|e| {
            let v = self.vectors(persona)?;
            Some(v.scores(&e.embed(text), entries))
        });
        match semantic {
            Some(cos) => Ranking {
                scored: blend(entries, &lexical, Some(&cos.entries)),
                signal: Signal::Hybrid,
                asks_for_person: words_ask || intent::semantic_asks(cos.person, cos.best_variant),
                person: Some(cos.person),
            },
            None => Ranking {
                scored: blend(entries, &lexical, None),
                signal: Signal::Lexical,
                asks_for_person: words_ask,
                person: None,
            },
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width of the test vectors (MPNet's).
    const DIM: usize = 768;

    fn axis(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIM];
        v[i] = 1.0;
        v
    }

    #[test]
    fn an_entry_scores_its_closest_variant_or_answer_and_the_person_signal_sees_only_variants() {
        // Entry 0: variants along axes 0 and 1, answer along axis 2; entry 1: one variant
        // along axis 3, answer along axis 4; one handoff prototype along axis 5.
        let v = Vectors {
            entry_of: vec![0, 0, 1],
            rows: [0, 1, 3, 2, 4, 5].into_iter().map(axis).collect(),
            variants: 3,
            answers: 2,
        };
        let near_answer = {
            let mut q = vec![0.0; DIM];
            q[2] = 0.8;
            q[3] = 0.6;
            q
        };
        let c = v.scores(&near_answer, 2);
        assert_eq!(c.entries, vec![0.8, 0.6]);
        assert_eq!(
            c.best_variant, 0.6,
            "the answer does not count as a question asked"
        );
        assert_eq!(c.person, 0.0);
        assert_eq!(v.scores(&axis(5), 2).person, 1.0);
    }

    #[test]
    fn vectors_round_trip_through_the_cache_file_and_damage_is_a_miss() {
        let v = Vectors {
            entry_of: vec![0, 0, 1],
            rows: (0..6).map(|i| vec![i as f32 / 10.0; DIM]).collect(),
            variants: 3,
            answers: 2,
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.emb");
        v.save(&p).unwrap();
        assert_eq!(Vectors::load(&p), Some(v));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(Vectors::load(&p), None);
        assert_eq!(Vectors::load(&dir.path().join("missing")), None);
    }
}
