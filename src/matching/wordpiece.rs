//! BERT's uncased WordPiece tokenizer, as `tokenizer.json` of a sentence-transformers model
//! describes it: clean and lower-case the text, strip accents, split on whitespace and
//! punctuation (each CJK character on its own), then greedy longest-match word pieces with a
//! `##` continuation prefix; a word with no split, or longer than 100 characters, is `[UNK]`.

use std::collections::HashMap;

/// Words longer than this (in characters) are `[UNK]`, as in BERT.
const MAX_WORD_CHARS: usize = 100;

/// Errors reading a `tokenizer.json`.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Not JSON, or not the shape expected.
    #[error("tokenizer.json: {0}")]
    Format(String),
    /// A special token is missing from the vocabulary.
    #[error("tokenizer.json: the vocabulary has no {0}")]
    Missing(String),
}

/// The tokens a single text is framed with, as the `post_processor` of a `tokenizer.json` says:
/// `RobertaProcessing` / `BertProcessing` name them (`cls`, `sep`), `TemplateProcessing` puts
/// them around the sequence in `single`; BERT's `[CLS]` / `[SEP]` otherwise. (MPNet's
/// vocabulary has `[CLS]` too, but frames with `<s>` / `</s>`.)
fn framing(post: &serde_json::Value) -> (String, String) {
    let name = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let named = name(&post["cls"][0]).zip(name(&post["sep"][0]));
    let template = || {
        let specials: Vec<String> = post["single"]
            .as_array()?
            .iter()
            .filter_map(|p| name(&p["SpecialToken"]["id"]))
            .collect();
        match &specials[..] {
            [first, .., last] => Some((first.clone(), last.clone())),
            _ => None,
        }
    };
    named
        .or_else(template)
        .unwrap_or_else(|| ("[CLS]".into(), "[SEP]".into()))
}

/// A WordPiece vocabulary with its special tokens.
#[derive(Debug, Clone)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    /// The token before the text (`[CLS]` in BERT, `<s>` in MPNet).
    pub cls: u32,
    /// The token after the text (`[SEP]` in BERT, `</s>` in MPNet).
    pub sep: u32,
}

impl WordPiece {
    /// Read the `model.vocab` map of a Hugging Face `tokenizer.json` (type `WordPiece`).
    pub fn from_tokenizer_json(json: &[u8]) -> Result<Self, TokenizerError> {
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| TokenizerError::Format(e.to_string()))?;
        let model = &v["model"];
        if model["type"].as_str() != Some("WordPiece") {
            return Err(TokenizerError::Format(format!(
                "model type {} is not WordPiece",
                model["type"]
            )));
        }
        let map = model["vocab"]
            .as_object()
            .ok_or_else(|| TokenizerError::Format("no model.vocab map".into()))?;
        let mut vocab = HashMap::with_capacity(map.len());
        for (k, id) in map {
            let id = id
                .as_u64()
                .ok_or_else(|| TokenizerError::Format(format!("id of {k:?} is not a number")))?;
            vocab.insert(k.clone(), id as u32);
        }
        let get = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| TokenizerError::Missing(t.to_string()))
        };
        let (cls, sep) = framing(&v["post_processor"]);
        let unk = model["unk_token"].as_str().unwrap_or("[UNK]");
        Ok(Self {
            unk: get(unk)?,
            cls: get(&cls)?,
            sep: get(&sep)?,
            vocab,
        })
    }

    /// Token ids of `text` between the opening and closing tokens, at most `max_len` in all.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        'words: for word in basic_tokens(text) {
            for id in self.word_pieces(&word) {
                if ids.len() + 1 >= max_len {
                    break 'words;
                }
                ids.push(id);
            }
        }
        ids.push(self.sep);
        ids
    }

    fn word_pieces(&self, word: &str) -> Vec<u32> {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            return vec![self.unk];
        }
        let mut out = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                let piece: String = chars[start..end].iter().collect();
                let key = if start > 0 {
                    format!("##{piece}")
                } else {
                    piece
                };
                if let Some(&id) = self.vocab.get(&key) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                None => return vec![self.unk],
            }
            start = end;
        }
        out
    }
}

/// BERT's basic tokenizer (uncased): words and single punctuation marks.
fn basic_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
            continue;
        }
        if c.is_whitespace() {
            flush(&mut cur, &mut out);
        } else if is_punctuation(c) || is_cjk(c) {
            flush(&mut cur, &mut out);
            out.push(c.to_string());
        } else {
            for l in c.to_lowercase() {
                if let Some(base) = strip_accent(l) {
                    cur.push(base);
                }
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// Punctuation as BERT sees it: ASCII symbols and Unicode punctuation.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c, '\u{2000}'..='\u{206f}' | '\u{3000}'..='\u{303f}' | '\u{00a1}'..='\u{00bf}')
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// The letter without its accent (NFD then drop combining marks) for the Latin-1 and Latin
/// Extended-A letters; combining marks themselves are dropped; anything else is kept.
fn strip_accent(c: char) -> Option<char> {
    if ('\u{0300}'..='\u{036f}').contains(&c) {
        return None;
    }
    const FROM: &str =
        "àáâãäåāăąçćĉċčďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįıĵķĺļľŀłñńņňòóôõöøōŏőŕŗřśŝşšţťŧùúûüũūŭůűųŵýÿŷźżž";
    const TO: &str =
        "aaaaaaaaacccccddeeeeeeeeeggggghhiiiiiiiiijklllllnnnnooooooooorrrssssttttuuuuuuuuuuwyyyzzz";
    match FROM.chars().position(|f| f == c) {
        Some(i) => TO.chars().nth(i),
        None => Some(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(words: &[&str]) -> WordPiece {
        let mut v: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
        for (i, w) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
            .iter()
            .chain(words)
            .enumerate()
        {
            v.insert(w.to_string(), i.into());
        }
        let json = serde_json::json!({"model": {"type": "WordPiece", "vocab": v}});
        WordPiece::from_tokenizer_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn splits_words_into_longest_pieces_and_punctuation() {
        let wp = vocab(&["router", "un", "##want", "##ed", "?", "cafe"]);
        assert_eq!(
            wp.encode("Unwanted ROUTER? Café", 64),
            vec![2, 5, 6, 7, 4, 8, 9, 3]
        );
    }

    #[test]
    fn the_post_processor_names_the_framing_tokens() {
        let mut v: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
        for (i, w) in ["<s>", "<pad>", "</s>", "[UNK]", "[CLS]", "[SEP]", "hi"]
            .iter()
            .enumerate()
        {
            v.insert(w.to_string(), i.into());
        }
        let roberta = serde_json::json!({
            "model": {"type": "WordPiece", "vocab": v, "unk_token": "[UNK]"},
            "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]},
        });
        let wp = WordPiece::from_tokenizer_json(roberta.to_string().as_bytes()).unwrap();
        assert_eq!(wp.encode("hi", 8), vec![0, 6, 2]);
        let template = serde_json::json!({
            "model": {"type": "WordPiece", "vocab": v},
            "post_processor": {"type": "TemplateProcessing", "single": [
                {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
            ]},
        });
        let wp = WordPiece::from_tokenizer_json(template.to_string().as_bytes()).unwrap();
        assert_eq!(wp.encode("hi", 8), vec![4, 6, 5]);
    }

    #[test]
    fn unknown_words_control_characters_and_the_length_cap() {
        let wp = vocab(&["a"]);
        assert_eq!(wp.encode("zzz\u{7}a", 64), vec![2, 1, 3]);
        assert_eq!(wp.encode(&"a ".repeat(1000), 8).len(), 8);
        assert_eq!(wp.encode("", 8), vec![2, 3]);
    }
}
