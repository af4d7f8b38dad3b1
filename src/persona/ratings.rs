//! `ratings:` in persona YAML: when a front end asks "Did this help?" under an answer (Telegram
//! shows 👍 👎 buttons; the rating is stored with the answer, counted in metrics, and shown by
//! `parlor report` and `/export`).

use crate::chat::ReplySource;
use serde::Deserialize;

/// When to ask for a rating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ratings {
    /// Never (the default).
    #[default]
    Off,
    /// Under answers from the FAQ (the business's own answers).
    Faq,
    /// Under every answer: FAQ, rules and the model's (not under "did you mean" choices or
    /// "not sure", which have buttons of their own).
    All,
}

impl Ratings {
    /// Whether a reply from `source` gets the "Did this help?" buttons.
    pub fn asks_after(self, source: &ReplySource) -> bool {
        match self {
            Ratings::Off => false,
            Ratings::Faq => matches!(source, ReplySource::Faq(_)),
            Ratings::All => matches!(
                source,
                ReplySource::Faq(_) | ReplySource::Rule(_) | ReplySource::Model
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_per_setting() {
        let faq = ReplySource::Faq("hours".into());
        assert!(!Ratings::Off.asks_after(&faq));
        assert!(Ratings::Faq.asks_after(&faq));
        assert!(!Ratings::Faq.asks_after(&ReplySource::Model));
        assert!(Ratings::All.asks_after(&ReplySource::Model));
        assert!(!Ratings::All.asks_after(&ReplySource::Choices));
        assert!(!Ratings::All.asks_after(&ReplySource::Unsure));
    }
}
