//! `view`: the screen as a pure function of the [`App`] (`impl Widget for &App`): transcript,
//! input box, status bar, and the overlay on top. Every piece of user or model text passes
//! through [`crate::sanitize`] first. With `NO_COLOR` the finished screen loses its colours
//! ([`without_colours`]).

use super::app::{App, ListMode, ModelState, Overlay, Status};
use super::keys::HELP;
use super::transcript::Scroll;
use crate::sanitize::inert_line;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

/// Background of the status bar.
const BAR: Style = Style::new().bg(Color::DarkGray).fg(Color::White);

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [transcript, input, status] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(self.input_height()),
            Constraint::Length(1),
        ])
        .areas(area);
        render_transcript(self, transcript, buf);
        render_input(self, input, buf);
        render_status(self, status, buf);
        match &self.overlay {
            Overlay::None => {}
            Overlay::Help => render_help(area, buf),
            Overlay::Sessions {
                items,
                selected,
                mode,
            } => {
                let rows: Vec<Line<'static>> = items
                    .iter()
                    .map(|s| {
                        let when = chrono::DateTime::from_timestamp_millis(s.updated)
                            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default();
                        let mark = if s.id == self.session.id { "●" } else { " " };
                        Line::from(format!(
                            "{mark} {}  ({}, {} messages, {when})",
                            inert_line(&s.name),
                            inert_line(&s.persona),
                            s.message_count
                        ))
                    })
                    .collect();
                let footer = match mode {
                    ListMode::Browse => {
                        "Enter open · n new · r rename · d delete · Esc close".to_string()
                    }
                    ListMode::Rename(name) => {
                        format!("new name: {}▏ (Enter, Esc)", inert_line(name))
                    }
                    ListMode::ConfirmDelete => format!(
                        "delete \"{}\" and all its messages? y / n",
                        items
                            .get(*selected)
                            .map(|s| inert_line(&s.name))
                            .unwrap_or_default()
                    ),
                };
                render_list(area, buf, " sessions ", &rows, *selected, &footer);
            }
            Overlay::Personas { items, selected } => {
                let rows: Vec<Line<'static>> =
                    items.iter().map(|p| Line::from(inert_line(p))).collect();
                render_list(
                    area,
                    buf,
                    " persona for a new session ",
                    &rows,
                    *selected,
                    "Enter start a session · Esc close",
                );
            }
        }
        if self.monochrome {
            without_colours(area, buf);
        }
    }
}

/// `NO_COLOR`: every colour in `area` back to the terminal's own; what stood out by its
/// background (status bar, selection) is shown in reverse video instead.
pub fn without_colours(area: Rect, buf: &mut Buffer) {
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell_mut((x, y)) {
                if cell.bg != Color::Reset {
                    cell.modifier |= Modifier::REVERSED;
                }
                cell.fg = Color::Reset;
                cell.bg = Color::Reset;
                cell.underline_color = Color::Reset;
            }
        }
    }
}

fn render_transcript(app: &App, area: Rect, buf: &mut Buffer) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let rows = app.transcript.visible(area.width, area.height);
    for (i, line) in rows.iter().enumerate() {
        buf.set_line(area.x, area.y + i as u16, line, area.width);
    }
    if let Scroll::Anchor { .. } = app.transcript.scroll {
        let hint = " ↓ more below · End to follow ";
        let w = hint.chars().count() as u16;
        if area.width > w {
            let x = area.x + area.width - w;
            buf.set_string(
                x,
                area.y + area.height - 1,
                hint,
                Style::new().bg(Color::Blue).fg(Color::White),
            );
        }
    }
}

fn render_input(app: &App, area: Rect, buf: &mut Buffer) {
    let (title, color) = if app.copy_mode {
        (
            " copy mode: select with the mouse · F3 to leave ",
            Color::Yellow,
        )
    } else if app.status.busy() {
        (" message (Esc stops the reply) ", Color::DarkGray)
    } else if matches!(app.model_state, ModelState::Failed(_)) {
        (
            " message (no model: /retry loads it again) ",
            Color::LightRed,
        )
    } else {
        (" message ", Color::Gray)
    };
    let block = Block::default()
        .borders(Borders::TOP | Borders::BOTTOM)
        .border_style(Style::new().fg(color))
        .title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    (&app.input).render(inner, buf);
}

fn status_text(app: &App) -> (String, Style) {
    match &app.model_state {
        ModelState::Loading => return ("loading model…".into(), BAR.fg(Color::Yellow)),
        ModelState::Failed(_) => return ("no model".into(), BAR.fg(Color::LightRed)),
        ModelState::Ready => {}
    }
    match &app.status {
        Status::Idle => ("idle".into(), BAR.fg(Color::Green)),
        Status::Thinking => ("thinking…".into(), BAR.fg(Color::Yellow)),
        Status::Queued(n) => (format!("queued #{n}"), BAR.fg(Color::Yellow)),
        Status::Streaming => ("streaming…".into(), BAR.fg(Color::Cyan)),
        Status::Failed(_) => ("error".into(), BAR.fg(Color::LightRed)),
    }
}

fn render_status(app: &App, area: Rect, buf: &mut Buffer) {
    buf.set_style(area, BAR);
    let sep = Span::styled(" │ ", BAR.fg(Color::Gray));
    let (state, state_style) = status_text(app);
    let mut spans = vec![
        Span::styled(
            format!(" {state}"),
            state_style.add_modifier(Modifier::BOLD),
        ),
        sep.clone(),
        Span::styled(inert_line(&app.persona), BAR.add_modifier(Modifier::BOLD)),
        Span::styled(format!(" · {}", inert_line(&app.session.name)), BAR),
    ];
    // Most important first: what is cut off at narrow widths is the end.
    let stats = app.last_stats.clone().unwrap_or_default();
    if stats.trimmed_messages > 0 {
        spans.push(sep.clone());
        spans.push(Span::styled(
            format!("⚠ {} older messages left out", stats.trimmed_messages),
            BAR.fg(Color::LightYellow),
        ));
    }
    if let Some(problem) = &app.persona_error {
        spans.push(sep.clone());
        spans.push(Span::styled(
            format!("⚠ persona edit rejected: {}", inert_line(problem)),
            BAR.fg(Color::LightRed),
        ));
    }
    if let Some(n) = &app.notice {
        spans.push(sep.clone());
        spans.push(Span::styled(inert_line(n), BAR.fg(Color::LightCyan)));
    }
    // While a reply streams: its live rate; afterwards the finished turn's.
    let rate = app.live_rate.unwrap_or(stats.tokens_per_second);
    if rate > 0.0 {
        spans.push(sep.clone());
        spans.push(Span::styled(format!("{rate:.1} tok/s"), BAR));
    }
    let window = if stats.context_window > 0 {
        stats.context_window
    } else {
        app.context_window
    };
    spans.push(sep.clone());
    spans.push(Span::styled(
        format!(
            "ctx {}/{}",
            stats.prompt_tokens + stats.completion_tokens,
            window
        ),
        BAR,
    ));
    // The model name matters least: it goes last and is the first thing cut off.
    spans.push(sep);
    spans.push(Span::styled(inert_line(&app.model), BAR.fg(Color::Gray)));
    let line = Line::from(spans);
    let used = line.width() as u16;
    buf.set_line(area.x, area.y, &line, area.width);
    let help = " F1 help ";
    let w = help.len() as u16;
    if area.width >= used + w {
        buf.set_string(area.x + area.width - w, area.y, help, BAR.fg(Color::Gray));
    }
}

/// A centered rectangle of at most `w` x `h` cells.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn render_help(area: Rect, buf: &mut Buffer) {
    let key_w = HELP
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line<'static>> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:<key_w$}  "),
                    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let rect = centered(area, 100, lines.len() as u16 + 2);
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered()
                .title(" keys ")
                .title_bottom(" any key closes "),
        )
        .render(rect, buf);
}

fn render_list(
    area: Rect,
    buf: &mut Buffer,
    title: &str,
    rows: &[Line<'static>],
    selected: usize,
    footer: &str,
) {
    let height = (rows.len() as u16 + 2).clamp(3, area.height.saturating_sub(2).max(3));
    let rect = centered(area, 80, height + 1);
    Clear.render(rect, buf);
    let block = Block::bordered().title(title.to_string());
    let inner = block.inner(rect);
    block.render(rect, buf);
    if inner.height == 0 {
        return;
    }
    let list_h = usize::from(inner.height.saturating_sub(1));
    // Keep the selection in view: only the rows around it are drawn.
    let first = selected.saturating_sub(list_h.saturating_sub(1));
    for (i, row) in rows.iter().skip(first).take(list_h).enumerate() {
        let y = inner.y + i as u16;
        let chosen = first + i == selected;
        let style = if chosen {
            Style::new().bg(Color::Blue).fg(Color::White)
        } else {
            Style::default()
        };
        buf.set_style(Rect::new(inner.x, y, inner.width, 1), style);
        // A visible marker too, for terminals without colour.
        let mut line = Line::from(if chosen { "› " } else { "  " });
        line.spans.extend(row.spans.iter().cloned());
        buf.set_line(inner.x, y, &line.patch_style(style), inner.width);
    }
    if rows.is_empty() {
        buf.set_string(inner.x, inner.y, "(none)", Style::new().fg(Color::DarkGray));
    }
    buf.set_stringn(
        inner.x,
        inner.y + inner.height - 1,
        footer,
        usize::from(inner.width),
        Style::new().fg(Color::Gray),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::{AppInit, ModelState};
    use crate::tui::transcript::{Entry, EntryKind};

    /// The screen of a small session (a question and a Markdown answer), with or without
    /// colours.
    fn screen(monochrome: bool) -> Buffer {
        let mut app = App::new(AppInit {
            persona: "View".into(),
            model: "view-model".into(),
            context_window: 4096,
            size: (60, 20),
            history: Vec::new(),
            model_state: ModelState::Ready,
        });
        app.transcript.entries.extend([
            Entry::new(EntryKind::Greeting, "Hello! Ask me anything."),
            Entry::new(EntryKind::User, "How do I read a file?"),
            Entry::new(
                EntryKind::Bot { interrupted: false },
                "## Answer\n\nUse a **`BufReader`**:\n\n```rust\nlet f = File::open(path)?;\n```\n",
            ),
        ]);
        app.monochrome = monochrome;
        let area = Rect::new(0, 0, 60, 20);
        let mut buf = Buffer::empty(area);
        (&app).render(area, &mut buf);
        buf
    }

    #[test]
    fn no_color_leaves_no_colour_and_keeps_the_status_bar_visible() {
        let coloured = screen(false);
        assert!(
            coloured
                .content
                .iter()
                .any(|c| c.bg != Color::Reset || c.fg != Color::Reset),
            "the normal screen has colours"
        );
        let plain = screen(true);
        assert!(
            plain
                .content
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
            "NO_COLOR screen has a colour"
        );
        // The status bar (last row) stood out by its background: now by reverse video.
        let last = plain.area.bottom() - 1;
        let cell = &plain[(0, last)];
        assert!(cell.modifier.contains(Modifier::REVERSED), "{cell:?}");
        // Same text either way.
        let text = |b: &Buffer| b.content.iter().map(|c| c.symbol()).collect::<String>();
        assert_eq!(text(&coloured), text(&plain));
    }
}
