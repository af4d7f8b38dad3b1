//! Markdown -> styled, wrapped terminal lines (pulldown-cmark): headings, emphasis, inline code,
//! links, lists, block quotes, rules and fenced code blocks set apart with a gutter. Text must
//! already be inert (see [`crate::sanitize`]). Unclosed constructs of a reply that is still
//! streaming render as their closed form would, so the screen does not jump when they close.

use super::wrap::{Logical, WrapKind, wrap_into};
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// Style of inline code.
const CODE_INLINE: Style = Style::new().fg(Color::LightYellow);
/// Style of code block text.
const CODE_BLOCK: Style = Style::new().fg(Color::LightYellow);
/// Style of the code block gutter and language label.
const GUTTER: Style = Style::new().fg(Color::DarkGray);

/// A container that prefixes the rows inside it (a list item, a block quote).
struct Container {
    /// Prefix of the container's first row, until used.
    pending_first: Option<String>,
    /// Prefix of every other row.
    rest: String,
    style: Style,
}

struct Builder {
    out: Vec<Logical>,
    line: Vec<Span<'static>>,
    styles: Vec<Style>,
    containers: Vec<Container>,
    /// Per open list: the next number (`None` for bullets).
    lists: Vec<Option<u64>>,
    code: Option<(String, String)>,
    need_blank: bool,
}

impl Builder {
    fn style(&self) -> Style {
        self.styles
            .iter()
            .fold(Style::default(), |acc, s| acc.patch(*s))
    }

    fn push_text(&mut self, text: &str, style: Style) {
        if text.is_empty() {
            return;
        }
        match self.line.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push_str(text),
            _ => self.line.push(Span::styled(text.to_string(), style)),
        }
    }

    fn prefixes(&mut self) -> (Vec<Span<'static>>, Vec<Span<'static>>) {
        let mut first = Vec::new();
        let mut rest = Vec::new();
        for c in &mut self.containers {
            let f = c.pending_first.take().unwrap_or_else(|| c.rest.clone());
            first.push(Span::styled(f, c.style));
            rest.push(Span::styled(c.rest.clone(), c.style));
        }
        (first, rest)
    }

    fn flush(&mut self, kind: WrapKind, row_style: Style) {
        if self.line.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.line);
        let (first, rest) = self.prefixes();
        self.out.push(Logical {
            first,
            rest,
            spans,
            kind,
            row_style,
        });
    }

    fn blank_if_needed(&mut self) {
        if !self.need_blank || self.out.is_empty() {
            self.need_blank = false;
            return;
        }
        self.need_blank = false;
        let bars: Vec<Span<'static>> = self
            .containers
            .iter()
            .filter(|c| c.rest.trim() != "")
            .map(|c| Span::styled(c.rest.trim_end().to_string(), c.style))
            .collect();
        self.out.push(Logical {
            first: bars.clone(),
            rest: bars,
            spans: Vec::new(),
            kind: WrapKind::Word,
            row_style: Style::default(),
        });
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.blank_if_needed(),
            Tag::Heading { level, .. } => {
                self.blank_if_needed();
                let style = heading_style(level);
                self.styles.push(style);
                let hashes = "#".repeat(level as usize);
                self.push_text(&format!("{hashes} "), style);
            }
            Tag::BlockQuote(_) => {
                self.flush(WrapKind::Word, Style::default());
                self.blank_if_needed();
                self.containers.push(Container {
                    pending_first: None,
                    rest: "│ ".into(),
                    style: Style::new().fg(Color::DarkGray),
                });
                self.styles
                    .push(Style::new().add_modifier(Modifier::ITALIC));
            }
            Tag::CodeBlock(kind) => {
                self.flush(WrapKind::Word, Style::default());
                self.blank_if_needed();
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => l.split_whitespace().next().unwrap_or("").into(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new()));
            }
            Tag::List(start) => {
                self.flush(WrapKind::Word, Style::default());
                if self.lists.is_empty() {
                    self.blank_if_needed();
                }
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush(WrapKind::Word, Style::default());
                let bullet = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let b = format!("{n}. ");
                        *n += 1;
                        b
                    }
                    _ => "• ".to_string(),
                };
                let rest = " ".repeat(bullet.chars().count());
                self.containers.push(Container {
                    pending_first: Some(bullet),
                    rest,
                    style: Style::new().fg(Color::Cyan),
                });
            }
            Tag::Emphasis => self
                .styles
                .push(Style::new().add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.styles.push(Style::new().add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self
                .styles
                .push(Style::new().add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { .. } | Tag::Image { .. } => self.styles.push(
                Style::new()
                    .fg(Color::Blue)
                    .add_modifier(Modifier::UNDERLINED),
            ),
            _ => self.styles.push(Style::default()),
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => {
                self.flush(WrapKind::Word, Style::default());
                self.need_blank = true;
            }
            TagEnd::Heading(_) => {
                self.flush(WrapKind::Word, Style::default());
                self.styles.pop();
                self.need_blank = true;
            }
            TagEnd::BlockQuote(_) => {
                self.flush(WrapKind::Word, Style::default());
                self.containers.pop();
                self.styles.pop();
                self.need_blank = true;
            }
            TagEnd::CodeBlock => self.end_code(),
            TagEnd::List(_) => {
                self.flush(WrapKind::Word, Style::default());
                self.lists.pop();
                self.need_blank = true;
            }
            TagEnd::Item => {
                self.flush(WrapKind::Word, Style::default());
                self.containers.pop();
            }
            _ => {
                self.styles.pop();
            }
        }
    }

    fn end_code(&mut self) {
        let Some((lang, body)) = self.code.take() else {
            return;
        };
        let body = body.strip_suffix('\n').unwrap_or(&body);
        let label = if lang.is_empty() { "code" } else { &lang };
        self.line.push(Span::styled(format!("╭─ {label}"), GUTTER));
        self.flush(WrapKind::Char, Style::default());
        for row in body.split('\n') {
            self.line.push(Span::styled(row.to_string(), CODE_BLOCK));
            let (mut first, mut rest) = self.prefixes();
            first.push(Span::styled("│ ", GUTTER));
            rest.push(Span::styled("│ ", GUTTER));
            let spans = std::mem::take(&mut self.line);
            self.out.push(Logical {
                first,
                rest,
                spans,
                kind: WrapKind::Char,
                row_style: Style::default(),
            });
        }
        self.line.push(Span::styled("╰─", GUTTER));
        self.flush(WrapKind::Char, Style::default());
        self.need_blank = true;
    }

    fn event(&mut self, ev: Event<'_>) {
        match ev {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => match &mut self.code {
                Some((_, body)) => body.push_str(&t),
                None => {
                    let style = self.style();
                    self.push_text(&t, style);
                }
            },
            Event::Code(t) => {
                let style = self.style().patch(CODE_INLINE);
                self.push_text(&t, style);
            }
            Event::Html(t) | Event::InlineHtml(t) => {
                let style = self.style();
                for (i, part) in t.trim_end_matches('\n').split('\n').enumerate() {
                    if i > 0 {
                        self.flush(WrapKind::Word, Style::default());
                    }
                    self.push_text(part, style);
                }
            }
            Event::SoftBreak => {
                let style = self.style();
                self.push_text(" ", style);
            }
            Event::HardBreak => self.flush(WrapKind::Word, Style::default()),
            Event::Rule => {
                self.blank_if_needed();
                self.line.push(Span::styled("─".repeat(24), GUTTER));
                self.flush(WrapKind::Char, Style::default());
                self.need_blank = true;
            }
            Event::TaskListMarker(done) => {
                let style = self.style();
                self.push_text(if done { "[x] " } else { "[ ] " }, style);
            }
            Event::FootnoteReference(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                let style = self.style();
                self.push_text(&t, style);
            }
        }
    }
}

fn heading_style(level: HeadingLevel) -> Style {
    let base = Style::new().add_modifier(Modifier::BOLD);
    match level {
        HeadingLevel::H1 => base.fg(Color::Magenta),
        HeadingLevel::H2 => base.fg(Color::LightMagenta),
        _ => base.fg(Color::LightBlue),
    }
}

/// Markdown as unwrapped logical lines (independent of the width).
pub fn parse(text: &str) -> Vec<Logical> {
    let mut b = Builder {
        out: Vec::new(),
        line: Vec::new(),
        styles: Vec::new(),
        containers: Vec::new(),
        lists: Vec::new(),
        code: None,
        need_blank: false,
    };
    let opts = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for ev in Parser::new_ext(text, opts) {
        b.event(ev);
    }
    // A reply cut off inside a fence: show what there is as code.
    if b.code.is_some() {
        b.end_code();
    }
    b.flush(WrapKind::Word, Style::default());
    b.out
}

/// Markdown rendered and wrapped to `width` cells, appended to `out`.
pub fn render_into(text: &str, width: u16, out: &mut Vec<Line<'static>>) {
    for logical in parse(text) {
        wrap_into(&logical, width, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, width: u16) -> Vec<String> {
        let mut out = Vec::new();
        render_into(text, width, &mut out);
        out.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn paragraphs_are_separated_by_one_blank_row() {
        assert_eq!(rows("one\n\ntwo", 20), ["one", "", "two"]);
    }

    #[test]
    fn lists_get_bullets_and_hanging_indents() {
        assert_eq!(
            rows("- alpha beta gamma\n- delta", 12),
            ["• alpha beta", "  gamma", "• delta"]
        );
        assert_eq!(rows("3. x\n4. y", 12), ["3. x", "4. y"]);
    }

    #[test]
    fn fenced_code_is_set_apart_and_keeps_its_spacing() {
        assert_eq!(
            rows("Look:\n\n```rust\nfn  main() {}\n```\nafter", 30),
            ["Look:", "", "╭─ rust", "│ fn  main() {}", "╰─", "", "after"]
        );
    }

    #[test]
    fn an_unclosed_fence_while_streaming_renders_as_code() {
        assert_eq!(rows("```\nlet x", 20), ["╭─ code", "│ let x", "╰─"]);
    }

    #[test]
    fn emphasis_and_inline_code_are_styled_not_shown_as_markup() {
        let mut out = Vec::new();
        render_into("a **b** `c`", 20, &mut out);
        assert_eq!(out[0].to_string(), "a b c");
        let bold = out[0].spans.iter().find(|s| s.content == "b").unwrap();
        assert!(bold.style.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn headings_and_quotes_keep_visible_markers() {
        assert_eq!(rows("## Title\n\n> said", 20), ["## Title", "", "│ said"]);
    }
}
