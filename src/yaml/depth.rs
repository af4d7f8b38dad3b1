//! Refusing deeply nested flow collections before serde_yaml sees them.

use super::{Location, location_of_offset};

/// Deepest flow nesting (`[`, `{`) we parse. serde_yaml refuses more than 128 levels anyway,
/// but its parser takes time quadratic in the depth before it gets there: a 1 MiB file of `[`
/// would take many minutes. Deeper text is refused up front.
pub const MAX_DEPTH: usize = 100;

/// The position where flow nesting first goes deeper than [`MAX_DEPTH`], if it does. Quoted
/// strings and comments are skipped (a quote only opens where a scalar can start, so the
/// apostrophe in `don't` does not).
pub(super) fn too_deep(text: &str) -> Option<Location> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut prev = '\n';
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('\'') if c == '\'' => {
                if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                } else {
                    quote = None;
                }
            }
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('"') if c == '"' => quote = None,
            Some(_) => {}
            None => match c {
                '#' if prev.is_whitespace() => {
                    for (_, n) in chars.by_ref() {
                        if n == '\n' {
                            break;
                        }
                    }
                    prev = '\n';
                    continue;
                }
                '\'' | '"' if prev.is_whitespace() || "[{,:-".contains(prev) => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some(location_of_offset(text, i));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    None
}
