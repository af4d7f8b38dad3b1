//! `grounding:` in persona YAML: answer only from the persona's own facts. With it on, a
//! message that retrieval finds nothing relevant for gets the persona's `not_sure` text (and
//! the offer of a human) instead of free generation; a generated reply stating a specific that
//! the facts do not is replaced by that text; uncertain FAQ matches are offered as choices.

use crate::persona::problem::Problem;
use serde::{Deserialize, Serialize};

/// `grounding:` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrounding {
    /// Turn grounded mode on (default off).
    #[serde(default)]
    pub enabled: bool,
    /// The reply when the facts do not answer (macros allowed).
    #[serde(default = "default_not_sure")]
    pub not_sure: String,
    /// Offer a human with the "not sure" reply (front ends may show a button).
    #[serde(default = "yes")]
    pub offer_handoff: bool,
    /// Messages the model may answer without facts (greetings, thanks): a message that
    /// contains one of these phrases as its main content.
    #[serde(default = "default_small_talk")]
    pub small_talk: Vec<String>,
    /// How many FAQ entries to offer when the best match is uncertain (0: never offer).
    #[serde(default = "default_choices")]
    pub choices: usize,
    /// Two entries whose scores are closer than this are both uncertain.
    #[serde(default = "default_margin")]
    pub margin: f32,
}

fn yes() -> bool {
    true
}
fn default_not_sure() -> String {
    "I am not sure about that, and I do not want to give you wrong information. Would you like me to connect you with a human colleague? Type /human.".into()
}
fn default_small_talk() -> Vec<String> {
    [
        "hello",
        "hi",
        "hey",
        "good morning",
        "good afternoon",
        "good evening",
        "thanks",
        "thank you",
        "bye",
        "goodbye",
        "ok",
        "okay",
        "cool",
        "great",
        "how are you",
    ]
    .map(String::from)
    .to_vec()
}
fn default_choices() -> usize {
    3
}
/// Chosen on the tuning parts of `evals/` with all-mpnet-base-v2 (0.04, 0.08, 0.12 tried): its
/// cosines put related entries closer together than MiniLM's did, and at 0.04 and 0.08 one
/// tuning question got a confidently wrong entry ("my money hasn't come back yet after I
/// returned the router": returns 0.71, refund-time 0.60); 0.12 offers both instead and answers
/// no fewer tuning questions directly.
fn default_margin() -> f32 {
    0.12
}

impl Default for RawGrounding {
    fn default() -> Self {
        Self {
            enabled: false,
            not_sure: default_not_sure(),
            offer_handoff: true,
            small_talk: default_small_talk(),
            choices: default_choices(),
            margin: default_margin(),
        }
    }
}

/// The validated `grounding:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grounding {
    /// The settings as written (validated).
    pub raw: RawGrounding,
}

impl Grounding {
    /// Validate; problems carry their field path under `field`.
    pub fn from_raw(raw: &RawGrounding, field: &str) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        if raw.not_sure.trim().is_empty() {
            problems.push(Problem::new(
                format!("{field}.not_sure"),
                "is empty; say what the bot replies when its facts do not answer",
            ));
        }
        if !(0.0..=0.5).contains(&raw.margin) {
            problems.push(Problem::new(
                format!("{field}.margin"),
                format!("{} is out of range (0.0 to 0.5)", raw.margin),
            ));
        }
        if raw.choices > 5 {
            problems.push(Problem::new(
                format!("{field}.choices"),
                format!("{} is too many to read; use 0 to 5", raw.choices),
            ));
        }
        if problems.is_empty() {
            Ok(Self { raw: raw.clone() })
        } else {
            Err(problems)
        }
    }

    /// Whether grounded mode is on.
    pub fn enabled(&self) -> bool {
        self.raw.enabled
    }

    /// Whether `text` is small talk the model may answer without facts: after removing the
    /// allowed phrases, punctuation and the words "you", "very", "much", "so", nothing is left.
    pub fn is_small_talk(&self, text: &str) -> bool {
        let mut rest = format!(
            " {} ",
            text.to_lowercase()
                .chars()
                .map(|c| if c.is_alphanumeric() || c == '\'' {
                    c
                } else {
                    ' '
                })
                .collect::<String>()
        );
        if rest.trim().is_empty() {
            return false;
        }
        let mut phrases: Vec<&String> = self.raw.small_talk.iter().collect();
        phrases.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut found = false;
        for p in phrases {
            let p = format!(" {} ", p.to_lowercase().trim());
            while rest.contains(&p) {
                rest = rest.replacen(&p, " ", 1);
                found = true;
            }
        }
        found
            && rest
                .split_whitespace()
                .all(|w| ["you", "very", "much", "so", "a", "lot", "there", "again"].contains(&w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_talk_is_only_small_talk() {
        let g = Grounding::default();
        for t in [
            "Hello!",
            "thanks a lot",
            "Thank you very much.",
            "hi there",
            "OK, bye",
        ] {
            assert!(g.is_small_talk(t), "{t}");
        }
        for t in [
            "hi, how long is the warranty?",
            "thanks, and the price?",
            "",
            "🙂",
        ] {
            assert!(!g.is_small_talk(t), "{t}");
        }
    }

    #[test]
    fn bad_settings_are_reported_with_their_field() {
        let raw = RawGrounding {
            not_sure: " ".into(),
            margin: 0.9,
            choices: 9,
            ..Default::default()
        };
        let p = Grounding::from_raw(&raw, "grounding").unwrap_err();
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "grounding.not_sure",
                "grounding.margin",
                "grounding.choices"
            ]
        );
    }
}
