//! `parlor eval` files and scoring, pure: a YAML list of questions with what is expected of
//! each (`faq: ID`, `unsure: true`, `handoff: true`, `contains`, `not_contains`), judged from
//! what the bot did ([`Observed`]) into counts a support owner can act on, with thresholds the
//! file sets (exit 1 below them).
//!
//! ```yaml
//! persona: acme-support
//! part: held-out
//! thresholds: { reached: 0.9, uncovered_answered: 0, invented: 0, handoff_missed: 0, false_handoff: 0 }
//! questions:
//!   - { q: "can i send back the router i bought 2 weeks ago", faq: returns }
//!   - { q: "do you sell laptops?", unsure: true }
//!   - { q: "I want to speak to a real person", handoff: true }
//! ```

use crate::chat::ReplySource;
use serde::{Deserialize, Serialize};

/// An eval file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalFile {
    /// Persona name (`personas/NAME.yaml`) or path.
    pub persona: String,
    /// Which part this is (`tuning`, `held-out`): named in reports.
    #[serde(default)]
    pub part: Option<String>,
    /// Exit 1 when a count is past these.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// The questions.
    pub questions: Vec<Question>,
}

/// Limits for a passing run.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Least share (0..1) of covered questions whose entry was reached (answered, or offered
    /// as a choice).
    #[serde(default)]
    pub reached: Option<f32>,
    /// Most uncovered questions answered from the FAQ.
    #[serde(default)]
    pub uncovered_answered: Option<usize>,
    /// Most replies with specifics not in the facts.
    #[serde(default)]
    pub invented: Option<usize>,
    /// Most requests for a person not handed off.
    #[serde(default)]
    pub handoff_missed: Option<usize>,
    /// Most handoffs nobody asked for.
    #[serde(default)]
    pub false_handoff: Option<usize>,
}

/// One question and what is expected.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// What the customer writes.
    pub q: String,
    /// The FAQ entry that should answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faq: Option<String>,
    /// The facts do not cover it: the bot must not answer from the FAQ nor invent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsure: bool,
    /// The customer asks for a person: the bot must hand off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handoff: bool,
    /// The reply must contain each (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contains: Vec<String>,
    /// The reply must contain none (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_contains: Vec<String>,
}

/// What the bot did with a question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    /// The reply text.
    pub reply: String,
    /// What produced it.
    pub source: ReplySource,
    /// Entry ids offered as choices.
    pub choices: Vec<String>,
    /// The session was handed to a human.
    pub handoff: bool,
    /// Specifics of the final reply the facts do not contain.
    pub invented: Vec<String>,
    /// Specifics caught in a generated reply (which was replaced).
    pub caught: Vec<String>,
    /// Best entry and score, runner-up, for the table.
    pub matched: String,
    /// The full match (both signals of best and runner-up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<super::MatchInfo>,
}

/// The verdict on one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Answered with the expected entry.
    Right,
    /// The expected entry was among the offered choices.
    Choice,
    /// Answered with another entry (or the model answered a covered question).
    Wrong,
    /// "Not sure" for a covered question.
    Unsure,
    /// Uncovered, and not answered from the FAQ (not sure, choices, small talk).
    HonestlyUnsure,
    /// Uncovered but answered from an FAQ entry.
    UncoveredAnswered,
    /// Handed off as asked.
    HandedOff,
    /// Asked for a person, not handed off.
    HandoffMissed,
    /// Handed off without being asked.
    FalseHandoff,
    /// The reply states specifics not in the facts.
    Invented,
    /// A `contains` / `not_contains` expectation failed (and nothing worse).
    TextMismatch,
}

/// Judge one question.
pub fn judge(q: &Question, o: &Observed) -> Verdict {
    if q.handoff {
        return if o.handoff {
            Verdict::HandedOff
        } else {
            Verdict::HandoffMissed
        };
    }
    if o.handoff {
        return Verdict::FalseHandoff;
    }
    if !o.invented.is_empty() {
        return Verdict::Invented;
    }
    let verdict = if let Some(id) = &q.faq {
        match &o.source {
            ReplySource::Faq(got) if got == id => Verdict::Right,
            ReplySource::Choices if o.choices.contains(id) => Verdict::Choice,
            ReplySource::Unsure => Verdict::Unsure,
            _ => Verdict::Wrong,
        }
    } else if q.unsure {
        match &o.source {
            ReplySource::Faq(_) => Verdict::UncoveredAnswered,
            _ => Verdict::HonestlyUnsure,
        }
    } else {
        Verdict::Right
    };
    let lower = o.reply.to_lowercase();
    let text_ok = q.contains.iter().all(|c| lower.contains(&c.to_lowercase()))
        && !q
            .not_contains
            .iter()
            .any(|c| lower.contains(&c.to_lowercase()));
    match verdict {
        Verdict::Right | Verdict::HonestlyUnsure if !text_ok => Verdict::TextMismatch,
        v => v,
    }
}

/// Counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Questions with `faq:`.
    pub covered: usize,
    /// Of those: answered with the right entry.
    pub right: usize,
    /// Of those: the right entry offered as a choice.
    pub choice: usize,
    /// Of those: wrong entry or the model answered.
    pub wrong: usize,
    /// Of those: "not sure".
    pub unsure: usize,
    /// (right + choice) / covered.
    pub reached: f32,
    /// Questions with `unsure: true`.
    pub uncovered: usize,
    /// Of those: answered from the FAQ.
    pub uncovered_answered: usize,
    /// Questions with `handoff: true`.
    pub handoff_requests: usize,
    /// Of those: not handed off.
    pub handoff_missed: usize,
    /// Handoffs nobody asked for.
    pub false_handoff: usize,
    /// Final replies with specifics not in the facts.
    pub invented: usize,
    /// Generated replies caught inventing and replaced by "not sure".
    pub caught: usize,
    /// `contains` / `not_contains` failures.
    pub text_mismatch: usize,
}

/// Count verdicts (with the questions and observations they came from).
pub fn summarize(results: &[(Question, Observed, Verdict)]) -> Summary {
    let mut s = Summary::default();
    for (q, o, v) in results {
        if q.faq.is_some() {
            s.covered += 1;
        }
        if q.unsure {
            s.uncovered += 1;
        }
        if q.handoff {
            s.handoff_requests += 1;
        }
        if !o.caught.is_empty() {
            s.caught += 1;
        }
        match v {
            Verdict::Right if q.faq.is_some() => s.right += 1,
            Verdict::Choice => s.choice += 1,
            Verdict::Wrong => s.wrong += 1,
            Verdict::Unsure => s.unsure += 1,
            Verdict::UncoveredAnswered => s.uncovered_answered += 1,
            Verdict::HandoffMissed => s.handoff_missed += 1,
            Verdict::FalseHandoff => s.false_handoff += 1,
            Verdict::Invented => s.invented += 1,
            Verdict::TextMismatch => s.text_mismatch += 1,
            Verdict::Right | Verdict::HonestlyUnsure | Verdict::HandedOff => {}
        }
    }
    s.reached = if s.covered == 0 {
        1.0
    } else {
        (s.right + s.choice) as f32 / s.covered as f32
    };
    s
}

/// The thresholds `s` breaks, as sentences (empty: pass).
pub fn breaches(s: &Summary, t: &Thresholds) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(min) = t.reached
        && s.reached + 1e-6 < min
    {
        out.push(format!(
            "right entry reached for {:.1}% of covered questions, below {:.1}%",
            s.reached * 100.0,
            min * 100.0
        ));
    }
    for (name, got, max) in [
        (
            "uncovered questions answered from the FAQ",
            s.uncovered_answered,
            t.uncovered_answered,
        ),
        ("replies with invented specifics", s.invented, t.invented),
        (
            "requests for a person not handed off",
            s.handoff_missed,
            t.handoff_missed,
        ),
        (
            "handoffs nobody asked for",
            s.false_handoff,
            t.false_handoff,
        ),
    ] {
        if let Some(max) = max
            && got > max
        {
            out.push(format!("{got} {name}, more than {max}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(yaml: &str) -> Question {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn seen(source: ReplySource) -> Observed {
        Observed {
            reply: "Returns within 30 days.".into(),
            source,
            choices: vec!["returns".into(), "refund-time".into()],
            handoff: false,
            invented: vec![],
            caught: vec![],
            matched: String::new(),
            retrieval: None,
        }
    }

    #[test]
    fn covered_questions_are_right_choice_wrong_or_unsure() {
        let covered = q("{ q: x, faq: returns }");
        assert_eq!(
            judge(&covered, &seen(ReplySource::Faq("returns".into()))),
            Verdict::Right
        );
        assert_eq!(
            judge(&covered, &seen(ReplySource::Choices)),
            Verdict::Choice
        );
        assert_eq!(
            judge(&covered, &seen(ReplySource::Faq("warranty".into()))),
            Verdict::Wrong
        );
        assert_eq!(judge(&covered, &seen(ReplySource::Model)), Verdict::Wrong);
        assert_eq!(judge(&covered, &seen(ReplySource::Unsure)), Verdict::Unsure);
    }

    #[test]
    fn uncovered_handoff_invented_and_text_checks() {
        let uncovered = q("{ q: x, unsure: true }");
        assert_eq!(
            judge(&uncovered, &seen(ReplySource::Unsure)),
            Verdict::HonestlyUnsure
        );
        assert_eq!(
            judge(&uncovered, &seen(ReplySource::Faq("returns".into()))),
            Verdict::UncoveredAnswered
        );
        let mut inv = seen(ReplySource::Model);
        inv.invented = vec!["3".into()];
        assert_eq!(judge(&uncovered, &inv), Verdict::Invented);
        let human = q("{ q: x, handoff: true }");
        assert_eq!(
            judge(&human, &seen(ReplySource::Model)),
            Verdict::HandoffMissed
        );
        let mut off = seen(ReplySource::Rule("human".into()));
        off.handoff = true;
        assert_eq!(judge(&human, &off), Verdict::HandedOff);
        assert_eq!(judge(&uncovered, &off), Verdict::FalseHandoff);
        let text = q("{ q: x, faq: returns, contains: ['30 days'], not_contains: ['60'] }");
        assert_eq!(
            judge(&text, &seen(ReplySource::Faq("returns".into()))),
            Verdict::Right
        );
        let text = q("{ q: x, faq: returns, contains: ['45 days'] }");
        assert_eq!(
            judge(&text, &seen(ReplySource::Faq("returns".into()))),
            Verdict::TextMismatch
        );
    }

    #[test]
    fn summary_and_thresholds() {
        let results = vec![
            (
                q("{ q: a, faq: returns }"),
                seen(ReplySource::Faq("returns".into())),
                Verdict::Right,
            ),
            (
                q("{ q: b, faq: returns }"),
                seen(ReplySource::Choices),
                Verdict::Choice,
            ),
            (
                q("{ q: c, faq: returns }"),
                seen(ReplySource::Model),
                Verdict::Wrong,
            ),
            (
                q("{ q: d, unsure: true }"),
                seen(ReplySource::Faq("x".into())),
                Verdict::UncoveredAnswered,
            ),
        ];
        let s = summarize(&results);
        assert_eq!(
            (s.covered, s.right, s.choice, s.wrong, s.uncovered_answered),
            (3, 1, 1, 1, 1)
        );
        assert!((s.reached - 2.0 / 3.0).abs() < 1e-6);
        let t = Thresholds {
            reached: Some(0.9),
            uncovered_answered: Some(0),
            ..Default::default()
        };
        assert_eq!(breaches(&s, &t).len(), 2);
        assert!(breaches(&s, &Thresholds::default()).is_empty());
    }
}
