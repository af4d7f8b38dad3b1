//! Text normalisation shared by FAQ matching and rule triggers: lowercase words without
//! punctuation, a light English stemmer, stop words, and a bounded edit distance for typos.

/// Words that carry no meaning for matching questions ("how do I ..." / "what is the ...").
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "i", "me", "my", "we", "our", "you", "your", "it", "its", "is", "are", "was",
    "were", "be", "been", "am", "do", "does", "did", "can", "could", "would", "should", "will",
    "shall", "may", "might", "to", "of", "in", "on", "at", "for", "with", "by", "from", "and",
    "or", "so", "that", "this", "these", "those", "there", "what", "whats", "how", "hi", "hello",
    "please", "pls", "thanks", "thank", "hey", "any", "some", "just", "about", "get", "got",
    "have", "has", "had", "im", "ive", "u", "ur", "if", "then", "also", "too", "know", "tell",
    "want", "need", "like", "s", "t", "where", "when", "which", "who", "why", "wheres", "doing",
    "until", "much", "many", "here", "still", "again", "one",
];

/// Lowercase `text` and split it into words: letters and digits, apostrophes and hyphens
/// inside words dropped (`don't` -> `dont`, `Wi-Fi` -> `wifi`), everything else a separator.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        let joins = matches!(ch, '\'' | '’' | '-')
            && !cur.is_empty()
            && chars.peek().is_some_and(|c| c.is_alphanumeric());
        if ch.is_alphanumeric() {
            cur.extend(ch.to_lowercase());
        } else if joins {
            // `don't` -> `dont`, `customer's` -> `customers`, `e-mail` -> `email`.
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether `word` (already lowercase) is a stop word.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// A light suffix stemmer: `shipping`/`shipped`/`ships` -> `ship`, `returns` -> `return`,
/// `warranties` -> `warranty`, `charge`/`charged` -> `charg`. Deliberately conservative: words of
/// three letters or fewer and numbers are kept as they are.
pub fn stem(word: &str) -> String {
    let mut s = stem_suffix(word);
    if s.len() > 4 && s.ends_with('e') {
        s.pop();
    }
    s
}

fn stem_suffix(word: &str) -> String {
    if word.chars().count() <= 3 || word.chars().any(|c| c.is_ascii_digit()) {
        return word.to_string();
    }
    let w = word;
    let cut = |suffix: &str, add: &str| -> Option<String> {
        let base = w.strip_suffix(suffix)?;
        if base.chars().count() < 3 {
            return None;
        }
        let mut s = undouble(base);
        s.push_str(add);
        Some(s)
    };
    cut("ies", "y")
        .or_else(|| cut("ing", ""))
        .or_else(|| cut("ed", ""))
        .or_else(|| cut("ly", ""))
        .or_else(|| {
            if w.ends_with("ss") || w.ends_with("us") || w.ends_with("is") {
                None
            } else if w.ends_with("ches") || w.ends_with("shes") || w.ends_with("xes") {
                cut("es", "")
            } else {
                cut("s", "")
            }
        })
        .unwrap_or_else(|| w.to_string())
}

/// `shipp` -> `ship`, `stopp` -> `stop` (doubled final consonant left by `-ing`/`-ed`).
fn undouble(base: &str) -> String {
    let b = base.as_bytes();
    let n = b.len();
    if n >= 2 && b[n - 1] == b[n - 2] && !matches!(b[n - 1], b'l' | b's' | b'z' | b'e' | b'o') {
        return base[..n - 1].to_string();
    }
    base.to_string()
}

/// The matching terms of `text`: words, stop words removed, stemmed.
pub fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| !is_stop_word(w))
        .map(|w| stem(&w))
        .collect()
}

/// Normalised text: words joined by single spaces (for phrase containment checks).
pub fn normalise(text: &str) -> String {
    words(text).join(" ")
}

/// Whether the normalised `phrase` occurs in normalised `text` on word boundaries.
pub fn contains_phrase(text_norm: &str, phrase_norm: &str) -> bool {
    if phrase_norm.is_empty() {
        return false;
    }
    let padded = format!(" {text_norm} ");
    padded.contains(&format!(" {phrase_norm} "))
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions) between `a`
/// and `b`, or `None` when it exceeds `max`.
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = usize::MAX;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
    }
    let dist = d[a.len() * w + b.len()];
    (dist <= max).then_some(dist)
}

/// Typos tolerated in a word of this many characters: none up to 3, one up to 7, two above.
pub fn typo_budget(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Character trigrams of a word padded with `^`/`$` (the typo candidate index).
pub fn trigrams(word: &str) -> Vec<String> {
    let chars: Vec<char> = format!("^{word}$").chars().collect();
    chars.windows(3).map(|w| w.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lowercase_and_drop_punctuation() {
        assert_eq!(
            words("Hello, WORLD! Don't-panic: v2.1? Wi-Fi - ok'"),
            vec!["hello", "world", "dontpanic", "v2", "1", "wifi", "ok"]
        );
    }

    #[test]
    fn stemming_maps_inflections_together() {
        for (w, s) in [
            ("shipping", "ship"),
            ("shipped", "ship"),
            ("ships", "ship"),
            ("returns", "return"),
            ("warranties", "warranty"),
            ("resetting", "reset"),
            ("hours", "hour"),
            ("address", "address"),
            ("status", "status"),
            ("boxes", "box"),
            ("refunds", "refund"),
            ("bus", "bus"),
            ("days", "day"),
            ("charge", "charg"),
            ("charged", "charg"),
            ("closing", "clos"),
            ("close", "clos"),
        ] {
            assert_eq!(stem(w), s, "{w}");
        }
    }

    #[test]
    fn terms_drop_stop_words() {
        assert_eq!(
            terms("How do I reset my router?"),
            vec!["reset".to_string(), "router".to_string()]
        );
    }

    #[test]
    fn phrase_containment_respects_word_boundaries() {
        let t = normalise("I want to talk to a HUMAN, now!");
        assert!(contains_phrase(&t, "talk to a human"));
        assert!(!contains_phrase(&t, "hum"));
        assert!(!contains_phrase(&t, ""));
    }

    #[test]
    fn edit_distance_counts_typos_and_transpositions() {
        assert_eq!(edit_distance("warranty", "waranty", 2), Some(1));
        assert_eq!(edit_distance("shipping", "shpiping", 2), Some(1));
        assert_eq!(edit_distance("reset", "rseet", 2), Some(1));
        assert_eq!(edit_distance("reset", "rsete", 2), Some(2));
        assert_eq!(edit_distance("firmware", "hardware", 2), None);
        assert_eq!(edit_distance("abc", "abc", 0), Some(0));
    }

    #[test]
    fn trigrams_are_padded() {
        assert_eq!(trigrams("ab"), vec!["^ab", "ab$"]);
    }
}
