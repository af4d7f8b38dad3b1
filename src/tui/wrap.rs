//! Wrapping styled text to a width: word wrap for prose (long words break by character), hard
//! wrap for code. Widths are terminal cells (`unicode-width`), so wide characters count twice.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

/// How a logical line breaks when it is wider than the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapKind {
    /// Break between words; words wider than the line break by character.
    Word,
    /// Break anywhere (code: keeps spacing exactly).
    Char,
}

/// One unwrapped line with the prefix of its first row and of its continuation rows
/// (list bullets, quote bars, code gutters).
#[derive(Debug, Clone)]
pub struct Logical {
    /// Prefix of the first row.
    pub first: Vec<Span<'static>>,
    /// Prefix of every following row (same width as `first` as a rule).
    pub rest: Vec<Span<'static>>,
    /// The content.
    pub spans: Vec<Span<'static>>,
    /// How it breaks.
    pub kind: WrapKind,
    /// Style of the whole row (code block background).
    pub row_style: Style,
}

fn spans_width(spans: &[Span<'_>]) -> usize {
    spans.iter().map(|s| s.width()).sum()
}

fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Collects styled characters into rows of at most `width` cells.
struct Rows {
    out: Vec<Line<'static>>,
    row: Vec<Span<'static>>,
    row_width: usize,
    row_style: Style,
}

impl Rows {
    fn push_str(&mut self, text: &str, style: Style, width: usize) {
        if let Some(last) = self.row.last_mut()
            && last.style == style
        {
            last.content.to_mut().push_str(text);
        } else {
            self.row.push(Span::styled(text.to_string(), style));
        }
        self.row_width += width;
    }

    fn finish_row(&mut self, prefix: &[Span<'static>], trim: bool) {
        let mut spans = std::mem::take(&mut self.row);
        if trim {
            // Spaces at the end of a wrapped row are invisible and only confuse copying.
            while let Some(last) = spans.last_mut() {
                let trimmed = last.content.trim_end_matches(' ').len();
                if trimmed == 0 {
                    spans.pop();
                } else {
                    last.content.to_mut().truncate(trimmed);
                    break;
                }
            }
        }
        if spans.is_empty() && prefix.is_empty() {
            self.out.push(Line::default().style(self.row_style));
        } else {
            let mut line = prefix.to_vec();
            line.append(&mut spans);
            self.out.push(Line::from(line).style(self.row_style));
        }
        self.row_width = 0;
    }
}

/// Wrap `logical` to rows of at most `width` cells, appending them to `out`.
pub fn wrap_into(logical: &Logical, width: u16, out: &mut Vec<Line<'static>>) {
    let width = usize::from(width.max(1));
    let first_w = spans_width(&logical.first);
    let rest_w = spans_width(&logical.rest);
    // A prefix that leaves no room is dropped rather than producing empty rows forever.
    let (first, rest) = if first_w.max(rest_w) + 1 > width {
        (&[][..], &[][..])
    } else {
        (&logical.first[..], &logical.rest[..])
    };
    let avail_first = width - spans_width(first);
    let avail_rest = width - spans_width(rest);

    let mut rows = Rows {
        out: std::mem::take(out),
        row: Vec::new(),
        row_width: 0,
        row_style: logical.row_style,
    };
    let mut on_first = true;
    let trim = logical.kind == WrapKind::Word;
    let avail = |on_first: bool| if on_first { avail_first } else { avail_rest };

    for span in &logical.spans {
        let style = span.style;
        let text: &str = &span.content;
        match logical.kind {
            WrapKind::Char => {
                for c in text.chars() {
                    let w = char_width(c);
                    if rows.row_width + w > avail(on_first) && rows.row_width > 0 {
                        rows.finish_row(if on_first { first } else { rest }, trim);
                        on_first = false;
                    }
                    let mut buf = [0u8; 4];
                    rows.push_str(c.encode_utf8(&mut buf), style, w);
                }
            }
            WrapKind::Word => {
                for piece in split_words(text) {
                    let w: usize = piece.chars().map(char_width).sum();
                    let is_space = piece.starts_with(' ');
                    if rows.row_width + w <= avail(on_first) {
                        if !(is_space && rows.row_width == 0 && !on_first) {
                            rows.push_str(piece, style, w);
                        }
                        continue;
                    }
                    if is_space {
                        // Spaces at a break vanish.
                        rows.finish_row(if on_first { first } else { rest }, trim);
                        on_first = false;
                        continue;
                    }
                    if rows.row_width > 0 {
                        rows.finish_row(if on_first { first } else { rest }, trim);
                        on_first = false;
                    }
                    if w <= avail(on_first) {
                        rows.push_str(piece, style, w);
                        continue;
                    }
                    // A word wider than a whole row: break it by character.
                    for c in piece.chars() {
                        let cw = char_width(c);
                        if rows.row_width + cw > avail(on_first) && rows.row_width > 0 {
                            rows.finish_row(if on_first { first } else { rest }, trim);
                            on_first = false;
                        }
                        let mut buf = [0u8; 4];
                        rows.push_str(c.encode_utf8(&mut buf), style, cw);
                    }
                }
            }
        }
    }
    rows.finish_row(if on_first { first } else { rest }, trim);
    *out = rows.out;
}

/// Split into runs of spaces and runs of non-spaces, in order.
fn split_words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let space = first == ' ';
        let end = rest
            .char_indices()
            .find(|&(_, c)| (c == ' ') != space)
            .map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// Plain text (one logical line per `\n`) wrapped by words with one style.
pub fn wrap_plain(text: &str, style: Style, width: u16, out: &mut Vec<Line<'static>>) {
    for line in text.split('\n') {
        let logical = Logical {
            first: Vec::new(),
            rest: Vec::new(),
            spans: vec![Span::styled(line.to_string(), style)],
            kind: WrapKind::Word,
            row_style: Style::default(),
        };
        wrap_into(&logical, width, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, width: u16) -> Vec<String> {
        let mut out = Vec::new();
        wrap_plain(text, Style::default(), width, &mut out);
        out.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn words_move_to_the_next_row_and_spaces_at_breaks_vanish() {
        assert_eq!(rows("the quick brown fox", 10), ["the quick", "brown fox"]);
    }

    #[test]
    fn a_word_wider_than_the_row_breaks_by_character() {
        assert_eq!(rows("abcdefghij xy", 4), ["abcd", "efgh", "ij", "xy"]);
    }

    #[test]
    fn wide_characters_take_two_cells() {
        assert_eq!(rows("日本語です", 4), ["日本", "語で", "す"]);
    }

    #[test]
    fn empty_lines_are_kept() {
        assert_eq!(rows("a\n\nb", 10), ["a", "", "b"]);
    }

    #[test]
    fn continuation_rows_get_the_continuation_prefix() {
        let logical = Logical {
            first: vec![Span::raw("• ")],
            rest: vec![Span::raw("  ")],
            spans: vec![Span::raw("one two three")],
            kind: WrapKind::Word,
            row_style: Style::default(),
        };
        let mut out = Vec::new();
        wrap_into(&logical, 9, &mut out);
        let got: Vec<String> = out.iter().map(|l| l.to_string()).collect();
        assert_eq!(got, ["• one two", "  three"]);
    }
}
