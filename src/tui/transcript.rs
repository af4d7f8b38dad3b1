//! The conversation on screen: entries with their wrapped rows cached per width, and a scroll
//! position anchored to an entry, so laying out a frame touches only the entries it shows,
//! however long the session is.

use super::markdown;
use super::wrap::wrap_plain;
use crate::sanitize::inert;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use std::cell::RefCell;
use std::rc::Rc;

/// What kind of entry a transcript row belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// The person at the keyboard.
    User,
    /// The bot; `interrupted` when the reply was cut short.
    Bot {
        /// Stopped by Esc, quit or a failure.
        interrupted: bool,
    },
    /// The persona's greeting on a new session (shown, not stored).
    Greeting,
    /// Information from the app (command results).
    Notice,
    /// Something failed; the text says what to do.
    Error,
}

/// One message on screen.
#[derive(Debug)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// The raw text (made inert when laid out).
    pub text: String,
    /// Who wrote a reply, when not the transcript's persona (a reply after a persona switch).
    speaker: Option<String>,
    /// Rows at the width they were wrapped for.
    cache: RefCell<Option<(u16, Rc<Vec<Line<'static>>>)>>,
}

impl Entry {
    /// An entry of `kind` with `text`.
    pub fn new(kind: EntryKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.into(),
            speaker: None,
            cache: RefCell::new(None),
        }
    }

    /// Head this reply with `name` instead of the transcript's persona.
    pub fn set_speaker(&mut self, name: &str) {
        self.speaker = Some(name.to_string());
        *self.cache.get_mut() = None;
    }

    /// Append streamed text; the cached layout is dropped.
    pub fn push_str(&mut self, piece: &str) {
        self.text.push_str(piece);
        *self.cache.get_mut() = None;
    }

    /// Change the kind (a streaming reply that ends interrupted).
    pub fn set_kind(&mut self, kind: EntryKind) {
        self.kind = kind;
        *self.cache.get_mut() = None;
    }

    /// The entry's rows at `width`: a header row, the body, a blank separator row.
    pub fn rows(&self, width: u16, bot_name: &str) -> Rc<Vec<Line<'static>>> {
        if let Some((w, rows)) = &*self.cache.borrow()
            && *w == width
        {
            return rows.clone();
        }
        let rows = Rc::new(self.layout(width, bot_name));
        *self.cache.borrow_mut() = Some((width, rows.clone()));
        rows
    }

    fn layout(&self, width: u16, bot_name: &str) -> Vec<Line<'static>> {
        let text = inert(&self.text);
        let bot_name = self.speaker.as_deref().unwrap_or(bot_name);
        let mut out = Vec::new();
        let header = |label: String, color: Color| {
            Line::from(Span::styled(
                label,
                Style::new().fg(color).add_modifier(Modifier::BOLD),
            ))
        };
        match &self.kind {
            EntryKind::User => {
                out.push(header("▌ you".into(), Color::Green));
                wrap_plain(&text, Style::default(), width, &mut out);
            }
            EntryKind::Bot { interrupted } => {
                out.push(header(format!("▌ {bot_name}"), Color::Cyan));
                markdown::render_into(&text, width, &mut out);
                if *interrupted {
                    out.push(Line::from(Span::styled(
                        "[interrupted]",
                        Style::new()
                            .fg(Color::DarkGray)
                            .add_modifier(Modifier::ITALIC),
                    )));
                }
            }
            EntryKind::Greeting => {
                out.push(header(format!("▌ {bot_name}"), Color::Cyan));
                markdown::render_into(&text, width, &mut out);
            }
            EntryKind::Notice => {
                wrap_plain(&text, Style::new().fg(Color::DarkGray), width, &mut out);
            }
            EntryKind::Error => {
                let style = Style::new().fg(Color::Red);
                wrap_plain(&format!("✗ {text}"), style, width, &mut out);
            }
        }
        out.push(Line::default());
        out
    }
}

/// Where the transcript view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    /// Show the end and follow new text.
    Follow,
    /// The top row of the view is row `row` of entry `entry`.
    Anchor {
        /// Entry index.
        entry: usize,
        /// Row within the entry.
        row: usize,
    },
}

/// Entries plus a scroll position.
#[derive(Debug)]
pub struct Transcript {
    /// All entries, oldest first.
    pub entries: Vec<Entry>,
    /// The view position.
    pub scroll: Scroll,
    /// Name shown on bot headers.
    pub bot_name: String,
}

impl Transcript {
    /// An empty transcript whose replies are headed `bot_name`.
    pub fn new(bot_name: impl Into<String>) -> Self {
        Self {
            entries: Vec::new(),
            scroll: Scroll::Follow,
            bot_name: bot_name.into(),
        }
    }

    /// The rows visible in a view of `width` x `height`. Work is proportional to the rows shown.
    pub fn visible(&self, width: u16, height: u16) -> Vec<Line<'static>> {
        let height = usize::from(height);
        match self.scroll {
            Scroll::Follow => self.tail(width, height),
            Scroll::Anchor { entry, row } => {
                let rows = self.forward(entry, row, width, height);
                if rows.len() < height {
                    self.tail(width, height)
                } else {
                    rows
                }
            }
        }
    }

    /// The last `height` rows.
    fn tail(&self, width: u16, height: usize) -> Vec<Line<'static>> {
        let mut chunks = Vec::new();
        let mut have = 0;
        for e in self.entries.iter().rev() {
            let rows = e.rows(width, &self.bot_name);
            have += rows.len();
            chunks.push(rows);
            if have >= height {
                break;
            }
        }
        let mut out: Vec<Line<'static>> = Vec::with_capacity(height);
        let mut skip = have.saturating_sub(height);
        for rows in chunks.iter().rev() {
            let take = rows.len().saturating_sub(skip);
            out.extend(rows[rows.len() - take..].iter().cloned());
            skip = skip.saturating_sub(rows.len());
        }
        out
    }

    /// Up to `height` rows starting at row `row` of entry `entry`.
    fn forward(&self, entry: usize, row: usize, width: u16, height: usize) -> Vec<Line<'static>> {
        let mut out = Vec::with_capacity(height);
        let mut row = row;
        for e in self.entries.iter().skip(entry) {
            let rows = e.rows(width, &self.bot_name);
            for line in rows.iter().skip(row) {
                if out.len() == height {
                    return out;
                }
                out.push(line.clone());
            }
            row = 0;
        }
        out
    }

    /// The anchor of the top row when following the end.
    fn tail_anchor(&self, width: u16, height: usize) -> (usize, usize) {
        let mut have = 0;
        for (i, e) in self.entries.iter().enumerate().rev() {
            let n = e.rows(width, &self.bot_name).len();
            if have + n >= height {
                return (i, have + n - height);
            }
            have += n;
        }
        (0, 0)
    }

    /// Scroll up by `lines` rows in a view of `width` x `height`.
    pub fn scroll_up(&mut self, lines: usize, width: u16, height: u16) {
        let (mut entry, mut row) = match self.scroll {
            Scroll::Follow => self.tail_anchor(width, usize::from(height)),
            Scroll::Anchor { entry, row } => (entry, row),
        };
        let mut left = lines;
        while left > 0 {
            if row >= left {
                row -= left;
                left = 0;
            } else if entry == 0 {
                row = 0;
                left = 0;
            } else {
                left -= row + 1;
                entry -= 1;
                row = self.entries[entry].rows(width, &self.bot_name).len() - 1;
            }
        }
        self.scroll = Scroll::Anchor { entry, row };
        // A transcript shorter than the view cannot scroll.
        if self.forward(entry, row, width, usize::from(height)).len() < usize::from(height) {
            self.scroll = Scroll::Follow;
        }
    }

    /// Scroll down by `lines` rows; reaching the end returns to following.
    pub fn scroll_down(&mut self, lines: usize, width: u16, height: u16) {
        let Scroll::Anchor { mut entry, mut row } = self.scroll else {
            return;
        };
        let mut left = lines;
        while left > 0 && entry < self.entries.len() {
            let n = self.entries[entry].rows(width, &self.bot_name).len();
            if row + left < n {
                row += left;
                left = 0;
            } else {
                left -= n - row;
                entry += 1;
                row = 0;
            }
        }
        let shown = self.forward(entry, row, width, usize::from(height) + 1);
        self.scroll = if shown.len() <= usize::from(height) {
            Scroll::Follow
        } else {
            Scroll::Anchor { entry, row }
        };
    }

    /// Jump to the first row.
    pub fn scroll_top(&mut self, width: u16, height: u16) {
        self.scroll = Scroll::Anchor { entry: 0, row: 0 };
        if self.forward(0, 0, width, usize::from(height) + 1).len() <= usize::from(height) {
            self.scroll = Scroll::Follow;
        }
    }

    /// Drop every cached layout (the bot name changed).
    pub fn invalidate(&mut self) {
        for e in &mut self.entries {
            *e.cache.get_mut() = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(n: usize) -> Transcript {
        let mut t = Transcript::new("bot");
        for i in 0..n {
            t.entries
                .push(Entry::new(EntryKind::User, format!("message {i}")));
        }
        t
    }

    fn texts(rows: &[Line<'_>]) -> Vec<String> {
        rows.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn following_shows_the_last_rows() {
        let t = transcript(10);
        assert_eq!(texts(&t.visible(20, 3)), ["▌ you", "message 9", ""]);
    }

    #[test]
    fn scrolling_up_then_down_past_the_end_follows_again() {
        let mut t = transcript(10);
        t.scroll_up(4, 20, 3);
        assert_eq!(t.scroll, Scroll::Anchor { entry: 7, row: 2 });
        assert_eq!(texts(&t.visible(20, 3)), ["", "▌ you", "message 8"]);
        t.scroll_down(100, 20, 3);
        assert_eq!(t.scroll, Scroll::Follow);
    }

    #[test]
    fn scrolled_view_stays_put_while_text_arrives() {
        let mut t = transcript(10);
        t.scroll_up(6, 20, 3);
        let before = texts(&t.visible(20, 3));
        t.entries.push(Entry::new(EntryKind::User, "new"));
        assert_eq!(texts(&t.visible(20, 3)), before);
    }

    #[test]
    fn top_shows_the_first_entry() {
        let mut t = transcript(10);
        t.scroll_top(20, 3);
        assert_eq!(texts(&t.visible(20, 3)), ["▌ you", "message 0", ""]);
    }

    #[test]
    fn layout_only_touches_visible_entries() {
        let t = transcript(5000);
        t.visible(40, 10);
        let laid_out = t
            .entries
            .iter()
            .filter(|e| e.cache.borrow().is_some())
            .count();
        assert_eq!(laid_out, 4);
    }
}
