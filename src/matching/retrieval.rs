//! Hybrid FAQ retrieval, pure: the lexical confidence (BM25 + typo index, `persona::faq`) and
//! the semantic one (cosine of sentence embeddings, best variant per entry) are blended into
//! one score per entry; [`decide`] turns the ranking into answer / choices / inject / miss.
//! Without embeddings the lexical score alone is used (and the caller says so).

use serde::{Deserialize, Serialize};

/// Weight of the lexical confidence in the blended score (the rest is the cosine). Chosen on
/// the tuning part of `evals/` (never on the held-out part): the cosine of MiniLM separates
/// paraphrases ("send back" / "return") that share no word, and questions the FAQ does not
/// cover score lower on it than on words ("do you sell laptops?" shares "sell" with "Which
/// routers do you sell?": lexical 0.70, cosine 0.39); the lexical part keeps typos and exact
/// product names strong. Chosen with all-MiniLM-L6-v2 and kept for all-mpnet-base-v2 (the
/// default since), which reaches as many tuning questions with it.
pub const LEXICAL_WEIGHT: f32 = 0.3;

/// Which signals a score was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Lexical and semantic.
    Hybrid,
    /// Lexical only (no embedding model).
    #[default]
    Lexical,
}

/// One entry's scores for a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Index of the entry.
    pub entry: usize,
    /// Lexical confidence 0..1.
    pub lexical: f32,
    /// Best cosine of the message with the entry's variants, when embeddings are used.
    pub semantic: Option<f32>,
    /// Blended score 0..1.
    pub score: f32,
}

/// Blend per-entry lexical confidences (entries not listed score 0) with per-entry cosines
/// (`semantic[i]` for entry `i`, or `None`): the entries, best first.
pub fn blend(entries: usize, lexical: &[(usize, f32)], semantic: Option<&[f32]>) -> Vec<Scored> {
    let mut lex = vec![0.0f32; entries];
    for &(e, s) in lexical {
        if e < entries {
            lex[e] = lex[e].max(s);
        }
    }
    let mut out: Vec<Scored> = (0..entries)
        .map(|e| {
            let sem = semantic.and_then(|s| s.get(e).copied());
            let score = match sem {
                Some(c) => LEXICAL_WEIGHT * lex[e] + (1.0 - LEXICAL_WEIGHT) * c.max(0.0),
                None => lex[e],
            };
            Scored {
                entry: e,
                lexical: lex[e],
                semantic: sem,
                score,
            }
        })
        .filter(|s| s.score > 0.0)
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.entry.cmp(&b.entry)));
    out
}

/// Thresholds of a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// At or above: answer directly (when clearly ahead of the runner-up).
    pub answer: f32,
    /// At or above: relevant (offer as a choice, or inject as a fact).
    pub relevant: f32,
    /// A runner-up within this of the best makes the best uncertain.
    pub margin: f32,
    /// At most this many choices.
    pub max_choices: usize,
    /// Offer choices for uncertain matches (instead of injecting the best as a fact).
    pub offer_choices: bool,
}

/// What retrieval decides for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Answer with this entry.
    Answer(Scored),
    /// Uncertain: let the user pick one of these (best first, 2 or more).
    Choices(Vec<Scored>),
    /// Give this entry to the model as a fact.
    Inject(Scored),
    /// Nothing relevant (the best candidate, if any, for visibility).
    Miss(Option<Scored>),
}

/// Decide from a ranking (best first).
pub fn decide(ranked: &[Scored], p: &Policy) -> Decision {
    let Some(&best) = ranked.first() else {
        return Decision::Miss(None);
    };
    if best.score < p.relevant {
        return Decision::Miss(Some(best));
    }
    let close: Vec<Scored> = ranked
        .iter()
        .copied()
        .filter(|s| s.score >= p.relevant && best.score - s.score < p.margin)
        .take(p.max_choices.max(2))
        .collect();
    if best.score >= p.answer && close.len() < 2 {
        return Decision::Answer(best);
    }
    if !p.offer_choices {
        return if best.score >= p.answer {
            Decision::Answer(best)
        } else {
            Decision::Inject(best)
        };
    }
    // An entry as close to the best as the margin is as likely to be meant, also when it
    // scores just under `relevant` ("how do I get in touch": custom-cake 0.33, contact 0.30).
    let choices: Vec<Scored> = ranked
        .iter()
        .copied()
        .filter(|s| s.score >= p.relevant || best.score - s.score < p.margin)
        .take(p.max_choices.max(2))
        .collect();
    if choices.len() >= 2 {
        Decision::Choices(choices)
    } else if best.score >= p.answer {
        Decision::Answer(best)
    } else {
        // One uncertain candidate: still a choice ("did you mean ...?"), confirmed by picking.
        Decision::Choices(choices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        answer: 0.6,
        relevant: 0.45,
        margin: 0.05,
        max_choices: 3,
        offer_choices: true,
    };

    fn ranked(scores: &[f32]) -> Vec<Scored> {
        let lex: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        blend(scores.len(), &lex, None)
    }

    #[test]
    fn blend_mixes_both_signals_and_ranks_best_first() {
        let r = blend(3, &[(0, 0.9), (2, 0.2)], Some(&[0.1, 0.9, 0.7]));
        assert_eq!(r.iter().map(|s| s.entry).collect::<Vec<_>>(), vec![1, 2, 0]);
        let w = LEXICAL_WEIGHT;
        assert!((r[0].score - (1.0 - w) * 0.9).abs() < 1e-6);
        assert_eq!(r[1].lexical, 0.2);
        assert_eq!(blend(2, &[(0, 0.5)], None)[0].score, 0.5);
    }

    #[test]
    fn a_clear_strong_match_answers() {
        assert!(matches!(decide(&ranked(&[0.8, 0.5]), &P), Decision::Answer(s) if s.entry == 0));
    }

    #[test]
    fn two_close_strong_matches_become_choices() {
        let Decision::Choices(c) = decide(&ranked(&[0.8, 0.78, 0.1]), &P) else {
            panic!("expected choices")
        };
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_middling_match_becomes_choices_or_a_fact() {
        assert!(matches!(decide(&ranked(&[0.5, 0.46]), &P), Decision::Choices(c) if c.len() == 2));
        assert!(matches!(decide(&ranked(&[0.5, 0.1]), &P), Decision::Choices(c) if c.len() == 1));
        let no_choices = Policy {
            offer_choices: false,
            ..P
        };
        assert!(matches!(
            decide(&ranked(&[0.5, 0.46]), &no_choices),
            Decision::Inject(_)
        ));
    }

    #[test]
    fn an_entry_within_the_margin_of_the_best_is_a_choice_even_below_relevant() {
        let Decision::Choices(c) = decide(&ranked(&[0.47, 0.44, 0.40]), &P) else {
            panic!("expected choices")
        };
        assert_eq!(c.iter().map(|s| s.entry).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn weak_or_no_matches_miss() {
        assert!(matches!(
            decide(&ranked(&[0.3]), &P),
            Decision::Miss(Some(_))
        ));
        assert_eq!(decide(&[], &P), Decision::Miss(None));
    }
}
