//! The checkable specifics of a text, and the check that a reply states none the facts do not:
//! numbers (with units: durations, prices, percentages, versions, times, phone numbers), e-mail
//! addresses, URLs, and product codes (words mixing letters and digits, like `R2`). Pure.
//!
//! A small model asked to answer from facts still invents ("the warranty is 3 years", "version
//! 4.0"); a reply with a specific not in the facts is replaced by the persona's "not sure" text.

use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}").expect("regex"));
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:https?://|www\.)[^\s<>()]+|\b\d{1,3}(?:\.\d{1,3}){3}\b").expect("regex")
});
/// Digit runs with inner separators (3.2.1, 9:00, 1,234, +49 30 1234).
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+(?:[.,:]\d+)*").expect("regex"));
/// A word with letters and digits: a model or plan code (R2, X200, 5G is excluded below).
static CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:[A-Za-z]+\d+[A-Za-z0-9]*|\d+[A-Za-z]+\d*)\b").expect("regex")
});

const NUMBER_WORDS: [(&str, &str); 20] = [
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("fifteen", "15"),
    ("twenty", "20"),
    ("thirty", "30"),
    ("forty", "40"),
    ("fifty", "50"),
    ("sixty", "60"),
    ("hundred", "100"),
    ("thousand", "1000"),
];

/// Units after which a number-like code is a quantity, not a product code (`24h`, `5GB`).
const UNIT_CODES: [&str; 10] = ["h", "min", "s", "gb", "mb", "tb", "km", "kg", "st", "nd"];

/// A specific found in a text, in a normal form (`2`, `3.2.1`, `support@x.example`, `r2`).
pub type Specific = String;

/// The specifics of `text`, normalised.
pub fn specifics(text: &str) -> BTreeSet<Specific> {
    let mut out = BTreeSet::new();
    let mut rest = text.to_string();
    for re in [&*EMAIL, &*URL] {
        for m in re.find_iter(text) {
            let s = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?']);
            out.insert(
                s.to_lowercase()
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_string(),
            );
            rest = rest.replace(m.as_str(), " ");
        }
    }
    for m in CODE.find_iter(&rest) {
        let lower = m.as_str().to_lowercase();
        let unit = lower.trim_start_matches(|c: char| c.is_ascii_digit());
        if lower.starts_with(|c: char| c.is_ascii_digit()) && UNIT_CODES.contains(&unit) {
            continue;
        }
        out.insert(lower);
    }
    for m in NUMBER.find_iter(&rest) {
        let n = m.as_str().trim_end_matches([',', '.', ':']);
        // "9:00" is 9; "1,234" stays as written.
        let n = n.strip_suffix(":00").unwrap_or(n);
        out.insert(n.to_string());
    }
    for w in rest.split(|c: char| !c.is_alphabetic()) {
        let w = w.to_lowercase();
        if let Some((_, d)) = NUMBER_WORDS.iter().find(|(word, _)| *word == w) {
            out.insert(d.to_string());
        }
    }
    out
}

/// The specifics of `reply` that appear nowhere in `facts` (empty: the reply is grounded).
pub fn unsupported(reply: &str, facts: &str) -> Vec<Specific> {
    let known = specifics(facts);
    let facts_lower = facts.to_lowercase();
    specifics(reply)
        .into_iter()
        .filter(|s| !(known.contains(s) || (s.len() > 3 && facts_lower.contains(s.as_str()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: &str = "Warranty: 2 years from purchase. Shipping: free within the EU, 2 to 4 \
        business days; worldwide 7 to 14 days for 15 EUR. Firmware 3.2.1. Hours 9:00 to 18:00. \
        Admin page http://192.168.1.1. Contact support@acme-routers.example, phone +49 30 1234 5678. \
        Products: Acme R1 and Acme R2 Pro. Returns within 30 days, 100% refund.";

    #[test]
    fn finds_numbers_codes_addresses_and_number_words() {
        let s = specifics(
            "Call +49 30 1234 or mail a@b.example; the R2 costs 15 EUR (10%), two years, 3.2.1, 24h",
        );
        for want in [
            "49",
            "30",
            "1234",
            "a@b.example",
            "r2",
            "15",
            "10",
            "2",
            "3.2.1",
        ] {
            assert!(s.contains(want), "{want} missing from {s:?}");
        }
        assert!(!s.contains("24h"));
    }

    #[test]
    fn a_reply_from_the_facts_is_grounded() {
        for reply in [
            "The warranty is two years from purchase.",
            "EU orders arrive in 2 to 4 business days; worldwide shipping costs 15 EUR.",
            "The latest firmware is 3.2.1. Open http://192.168.1.1 and go to System > Firmware.",
            "Write to support@acme-routers.example or call +49 30 1234 5678, 9:00 to 18:00.",
            "The Acme R2 Pro supports mesh.",
            "I am not sure; shall I connect you with a colleague?",
        ] {
            assert_eq!(unsupported(reply, FACTS), Vec::<String>::new(), "{reply}");
        }
    }

    #[test]
    fn invented_specifics_are_caught() {
        for (reply, bad) in [
            ("The warranty is 3 years.", "3"),
            ("The warranty lasts five years.", "5"),
            ("Firmware 4.0.2 is the latest.", "4.0.2"),
            ("Shipping costs 25 EUR.", "25"),
            ("The Acme R3 is our newest router.", "r3"),
            ("Write to help@acme.example.", "help@acme.example"),
            ("See https://acme.example/returns", "acme.example/returns"),
            ("You get a 50% discount.", "50"),
        ] {
            assert!(
                unsupported(reply, FACTS).contains(&bad.to_string()),
                "{reply}: {:?}",
                unsupported(reply, FACTS)
            );
        }
    }
}
