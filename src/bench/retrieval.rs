//! Bench section `retrieval`: the cost of FAQ retrieval per message at 1,000 entries / 3,000
//! question variants and 1,000 answers with both signals (BM25 + typo index, and cosines over
//! the cached embeddings, blended and decided), the load of that many cached embeddings from
//! disk, and, when the embedding model is installed, the embedding of one question.

use super::Report;
use crate::matching::embed::Embedder;
use crate::matching::retrieval::{self, Policy};
use crate::persona::faq::{Faq, FaqEntry};
use crate::support::index::Vectors;
use std::path::Path;
use std::time::Instant;

const SECTION: &str = "retrieval";
const ENTRIES: usize = 1000;
const VARIANTS: usize = 3;
/// Width of the synthetic embeddings: the default model's (all-mpnet-base-v2).
const DIM: usize = 768;

/// Words the synthetic questions are made of (a support vocabulary).
const WORDS: [&str; 40] = [
    "router", "shipping", "delivery", "refund", "return", "warranty", "firmware", "password",
    "reset", "order", "invoice", "payment", "account", "login", "mesh", "antenna", "signal",
    "speed", "cable", "modem", "label", "box", "parcel", "tracking", "cancel", "price", "plan",
    "upgrade", "install", "setup", "light", "button", "network", "guest", "parental", "port",
    "update", "support", "hours", "contact",
];

/// A deterministic pseudo-random sequence (xorshift), so every run measures the same data.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A pseudo-random unit vector.
fn unit(seed: &mut u64) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| (rng(seed) % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn synthetic() -> (Faq, Vectors) {
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let mut entries = Vec::with_capacity(ENTRIES);
    let mut rows = Vec::with_capacity(ENTRIES * VARIANTS);
    let mut entry_of = Vec::new();
    for e in 0..ENTRIES {
        let questions = (0..VARIANTS)
            .map(|_| {
                let n = 4 + (rng(&mut seed) % 5) as usize;
                let words: Vec<&str> = (0..n)
                    .map(|_| WORDS[(rng(&mut seed) % WORDS.len() as u64) as usize])
                    .collect();
                format!("how do I {} item{e}?", words.join(" "))
            })
            .collect();
        for _ in 0..VARIANTS {
            rows.push(unit(&mut seed));
            entry_of.push(e as u32);
        }
        entries.push(FaqEntry {
            id: format!("e{e}"),
            questions,
            answer: "An answer.".into(),
            tags: Vec::new(),
        });
    }
    let variants = rows.len();
    rows.extend((0..ENTRIES).map(|_| unit(&mut seed)));
    let faq = Faq::new(entries, 0.65, 0.45);
    (
        faq,
        Vectors {
            entry_of,
            rows,
            variants,
            answers: ENTRIES,
        },
    )
}

/// Run the section; `embedding_model` is the installed model file, if any.
pub fn run_retrieval_section(report: &mut Report, embedding_model: &Path, quick: bool) {
    let (faq, vectors) = synthetic();
    let policy = Policy {
        answer: 0.65,
        relevant: 0.45,
        margin: 0.04,
        max_choices: 3,
        offer_choices: true,
    };
    let questions = [
        "how long does delivery of my router take",
        "my parcel tracking label is missing",
        "reset the password of my account",
        "can I upgrade the firmware of the mesh network",
    ];
    let query = vectors.rows[7].clone();
    let reps = if quick { 20 } else { 200 };
    let started = Instant::now();
    for i in 0..reps {
        let q = questions[i % questions.len()];
        let lexical: Vec<(usize, f32)> = faq
            .rank(q, ENTRIES)
            .into_iter()
            .map(|m| (m.entry, m.score))
            .collect();
        let cos = vectors.scores(&query, ENTRIES);
        let ranked = retrieval::blend(ENTRIES, &lexical, Some(&cos.entries));
        std::hint::black_box(retrieval::decide(&ranked, &policy));
    }
    let per = started.elapsed().as_secs_f64() * 1000.0 / reps as f64;
    report.check(
        SECTION,
        "scoring per message, 1,000 entries / 3,000 variants + 1,000 answers, both signals",
        per,
        "ms",
        5.0,
        false,
    );
    let dir = tempfile::tempdir().ok();
    if let Some(dir) = &dir {
        let file = dir.path().join("bench.emb");
        if vectors.save(&file).is_ok() {
            let started = Instant::now();
            let loaded = Vectors::load(&file);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if loaded.is_some() {
                report.check(
                    SECTION,
                    "embedding cache load, 4,000 vectors",
                    ms,
                    "ms",
                    50.0,
                    false,
                );
            }
        }
    }
    match Embedder::load(embedding_model) {
        Ok(e) => {
            let n = if quick { 5 } else { 30 };
            let started = Instant::now();
            for i in 0..n {
                std::hint::black_box(e.embed(questions[i % questions.len()]));
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / n as f64;
            let model = if e.dim() == 384 {
                "MiniLM-L6"
            } else {
                "MPNet-base"
            };
            report.add(
                SECTION,
                &format!("embedding one question ({model}, 1 thread)"),
                ms,
                "ms",
            );
        }
        Err(err) => tracing::info!("bench: no embedding row: {err}"),
    }
}
