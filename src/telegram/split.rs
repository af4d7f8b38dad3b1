//! Splitting a long Markdown reply into messages under Telegram's length limit (counted in
//! UTF-16 units, as Telegram does): at paragraph, then sentence, then word boundaries; a code
//! block cut across messages is closed at the end of one and reopened (same language) in the
//! next.

/// Telegram's limit on one message's text, in UTF-16 units.
pub const TELEGRAM_LIMIT: usize = 4096;

/// Budget per chunk of Markdown source: rendering never makes the visible text longer than
/// the source except for list bullets, so this leaves room for them.
pub const CHUNK_BUDGET: usize = 3900;

/// Length in UTF-16 code units (what Telegram counts).
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// A block of the reply: a paragraph of text or a fenced code block.
enum Block<'a> {
    Text(&'a str),
    Code { fence: String, body: Vec<&'a str> },
}

fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut para_start: Option<usize> = None;
    let mut para_end = 0;
    let mut code: Option<(String, Vec<&str>)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some((fence, body)) = &mut code {
            if bare.trim_start().starts_with("```") {
                out.push(Block::Code {
                    fence: fence.clone(),
                    body: std::mem::take(body),
                });
                code = None;
            } else {
                body.push(bare);
            }
            continue;
        }
        if bare.trim_start().starts_with("```") || bare.trim().is_empty() {
            if let Some(s) = para_start.take() {
                out.push(Block::Text(text[s..para_end].trim_end()));
            }
            if bare.trim_start().starts_with("```") {
                code = Some((bare.trim().to_string(), Vec::new()));
            }
            continue;
        }
        para_start.get_or_insert(start);
        para_end = offset;
    }
    if let Some(s) = para_start {
        out.push(Block::Text(text[s..para_end].trim_end()));
    }
    if let Some((fence, body)) = code {
        // An unclosed fence (reply cut short): still a code block.
        out.push(Block::Code { fence, body });
    }
    out
}

/// Split `text` into chunks of at most `budget` UTF-16 units each.
pub fn split_markdown(text: &str, budget: usize) -> Vec<String> {
    let budget = budget.max(16);
    let mut pieces: Vec<String> = Vec::new();
    for block in blocks(text) {
        match block {
            Block::Text(t) => pieces.extend(split_text(t, budget)),
            Block::Code { fence, body } => pieces.extend(split_code(&fence, &body, budget)),
        }
    }
    // Pack pieces into chunks, separated by blank lines.
    let mut chunks: Vec<String> = Vec::new();
    let mut cur = String::new();
    for p in pieces {
        if cur.is_empty() {
            cur = p;
        } else if utf16_len(&cur) + 2 + utf16_len(&p) <= budget {
            cur.push_str("\n\n");
            cur.push_str(&p);
        } else {
            chunks.push(std::mem::take(&mut cur));
            cur = p;
        }
    }
    if !cur.trim().is_empty() {
        chunks.push(cur);
    }
    chunks
}

fn split_code(fence: &str, body: &[&str], budget: usize) -> Vec<String> {
    let close = "```";
    // Room for "fence\n" + body + "\n```".
    let room = budget
        .saturating_sub(utf16_len(fence) + 1 + 1 + close.len())
        .max(8);
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut cur_len = 0;
    let mut flush = |cur: &mut Vec<String>, cur_len: &mut usize| {
        if !cur.is_empty() {
            out.push(format!("{fence}\n{}\n{close}", cur.join("\n")));
            cur.clear();
            *cur_len = 0;
        }
    };
    for line in body {
        for part in hard_split(line, room) {
            let add = utf16_len(&part) + usize::from(!cur.is_empty());
            if cur_len + add > room {
                flush(&mut cur, &mut cur_len);
            }
            cur_len += utf16_len(&part) + usize::from(!cur.is_empty());
            cur.push(part);
        }
    }
    flush(&mut cur, &mut cur_len);
    if out.is_empty() {
        out.push(format!("{fence}\n{close}"));
    }
    out
}

fn split_text(text: &str, budget: usize) -> Vec<String> {
    if utf16_len(text) <= budget {
        return vec![text.to_string()];
    }
    // Sentences: cut after . ! ? followed by whitespace, and at line ends.
    let mut sentences = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        let next_ws = chars.get(i + 1).is_none_or(|&(_, n)| n.is_whitespace());
        if (matches!(c, '.' | '!' | '?') && next_ws) || c == '\n' {
            let end = pos + c.len_utf8();
            sentences.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        sentences.push(&text[start..]);
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    for s in sentences {
        if utf16_len(&cur) + utf16_len(s) <= budget {
            cur.push_str(s);
            continue;
        }
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
        cur.clear();
        if utf16_len(s) <= budget {
            cur.push_str(s);
            continue;
        }
        // A sentence longer than a message: words, then characters.
        for word in s.split_inclusive(char::is_whitespace) {
            if utf16_len(&cur) + utf16_len(word) > budget {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            if utf16_len(word) > budget {
                let mut parts = hard_split(word, budget);
                let last = parts.pop().unwrap_or_default();
                out.extend(parts);
                cur = last;
            } else {
                cur.push_str(word);
            }
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Cut at character boundaries into parts of at most `budget` UTF-16 units.
fn hard_split(s: &str, budget: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut len = 0;
    for c in s.chars() {
        if len + c.len_utf16() > budget {
            out.push(std::mem::take(&mut cur));
            len = 0;
        }
        cur.push(c);
        len += c.len_utf16();
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(
            split_markdown("Hello.\n\nWorld.", 100),
            vec!["Hello.\n\nWorld."]
        );
    }

    #[test]
    fn splits_at_paragraphs_first() {
        let p1 = "a".repeat(60);
        let p2 = "b".repeat(60);
        let chunks = split_markdown(&format!("{p1}\n\n{p2}"), 100);
        assert_eq!(chunks, vec![p1, p2]);
    }

    #[test]
    fn splits_long_paragraph_at_sentences_then_words() {
        let text = "One two three. Four five six! Seven eight nine?";
        let chunks = split_markdown(text, 20);
        assert_eq!(
            chunks,
            vec!["One two three.", "Four five six!", "Seven eight nine?"]
        );
        let words = split_markdown("alpha beta gamma delta epsilon", 12);
        assert!(words.iter().all(|c| utf16_len(c) <= 12), "{words:?}");
        assert_eq!(words.join(" "), "alpha beta gamma delta epsilon");
    }

    #[test]
    fn counts_utf16_units() {
        // Each emoji is 2 UTF-16 units.
        let text = "😀".repeat(30);
        let chunks = split_markdown(&text, 20);
        assert!(chunks.iter().all(|c| utf16_len(c) <= 20));
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn code_block_is_closed_and_reopened() {
        let body: Vec<String> = (0..40).map(|i| format!("let x{i} = {i};")).collect();
        let text = format!("Intro.\n\n```rust\n{}\n```\n\nOutro.", body.join("\n"));
        let chunks = split_markdown(&text, 200);
        assert!(chunks.len() > 2);
        for c in &chunks {
            assert!(utf16_len(c) <= 200, "{c}");
            assert_eq!(c.matches("```").count() % 2, 0, "unbalanced fence in {c}");
        }
        let code_chunks: Vec<_> = chunks.iter().filter(|c| c.contains("```rust")).collect();
        assert!(code_chunks.len() >= 2);
        let all = chunks.join("\n");
        for line in &body {
            assert!(all.contains(line.as_str()));
        }
    }

    #[test]
    fn unclosed_fence_still_balanced() {
        let chunks = split_markdown("```\ncode", 100);
        assert_eq!(chunks, vec!["```\ncode\n```"]);
    }
}
