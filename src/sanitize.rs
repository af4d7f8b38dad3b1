//! Makes text inert before it reaches a terminal: control characters and escape sequences in
//! model output, stored history or session names become visible caret forms (`^[`, `^G`, `^?`)
//! or U+FFFD, so nothing the model or a customer writes can move the cursor, change colours,
//! set titles or take over the screen. Used by the TUI and by every command that prints stored
//! or model text (`history show`, `history export` to a terminal, `ask`, `test`); exports to
//! files and JSON stay exact.

use std::borrow::Cow;

/// Tab stops are expanded to this many spaces (ratatui would otherwise drop the tab).
const TAB: &str = "    ";

/// True when `c` would be interpreted by a terminal rather than shown.
fn is_hazard(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Bidirectional overrides and isolates reorder what follows them ("trojan source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text with every control character made visible; newlines are kept, tabs become spaces and
/// `\r\n` becomes `\n`. Borrowed when there is nothing to change (the common case).
pub fn inert(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_hazard(c) && c != '\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str(TAB),
            '\r' if chars.peek() == Some(&'\n') => {}
            c => push_inert(&mut out, c),
        }
    }
    Cow::Owned(out)
}

/// One line of text for a single-line place (status bar, list item): newlines become `⏎`.
pub fn inert_line(text: &str) -> String {
    inert(text).replace('\n', "⏎")
}

/// `text` as it should reach an output: inert when the output is a terminal, exact otherwise
/// (a file or a pipe gets the bytes that were stored or generated).
pub fn for_output(text: &str, terminal: bool) -> Cow<'_, str> {
    if terminal {
        inert(text)
    } else {
        Cow::Borrowed(text)
    }
}

fn push_inert(out: &mut String, c: char) {
    let code = c as u32;
    if code < 0x20 {
        // Caret notation: ESC -> ^[, BEL -> ^G, NUL -> ^@.
        out.push('^');
        out.push(char::from_u32(code + 0x40).unwrap_or('?'));
    } else if code == 0x7f {
        out.push_str("^?");
    } else if is_hazard(c) {
        // C1 controls (CSI U+009B, OSC U+009D, ...) and bidi controls.
        out.push('\u{FFFD}');
    } else {
        out.push(c);
    }
}

/// Colours allowed on terminals: `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_caret_notation() {
        assert_eq!(inert("a\x1b[2Jb"), "a^[[2Jb");
        assert_eq!(inert("\x1b]0;title\x07"), "^[]0;title^G");
    }

    #[test]
    fn c1_controls_and_bidi_overrides_become_replacement_characters() {
        assert_eq!(inert("x\u{9b}31my"), "x\u{FFFD}31my");
        assert_eq!(inert("a\u{202E}b"), "a\u{FFFD}b");
    }

    #[test]
    fn newlines_stay_tabs_expand_and_crlf_folds() {
        assert_eq!(inert("a\r\nb\tc\rd\x7f"), "a\nb    c^Md^?");
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(inert("plain ü 日本"), Cow::Borrowed(_)));
    }

    #[test]
    fn outputs_other_than_terminals_get_the_exact_text() {
        assert_eq!(for_output("a\x1b[2J", false), "a\x1b[2J");
        assert_eq!(for_output("a\x1b[2J", true), "a^[[2J");
    }

    #[test]
    fn single_line_form_marks_newlines() {
        assert_eq!(inert_line("a\nb\x1b"), "a⏎b^[");
    }
}
