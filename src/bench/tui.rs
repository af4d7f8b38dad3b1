//! Frame-time measurements for `parlor bench`: render frames of a synthetic session (new, or
//! thousands of messages) into an in-memory terminal, while idle, streaming, scrolling and
//! typing. Numbers only; nothing here asserts a speed.

use super::Report;
use crate::bot::ReplyEvent;
use crate::tui::app::{App, AppInit, ModelState, Msg};
use crate::tui::transcript::{Entry, EntryKind};
use crate::tui::update::update;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;

/// Summary of many timed frames, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl Timing {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len().max(1);
        let at = |q: f64| {
            samples
                .get(((n - 1) as f64 * q) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        Self {
            mean_ms: samples.iter().sum::<f64>() / n as f64,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }
}

/// Frame times of one session size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTimes {
    /// Messages in the session.
    pub messages: usize,
    /// The first frame after opening the session (nothing laid out yet).
    pub first_frame: Timing,
    /// Redrawing an unchanged screen.
    pub idle: Timing,
    /// One streamed token appended, then a frame.
    pub streaming: Timing,
    /// One page scrolled up (new rows laid out), then a frame.
    pub scrolling: Timing,
    /// One typed character through `update`, then a frame (keystroke to frame).
    pub keystroke: Timing,
}

/// A synthetic session of `messages` alternating user and Markdown bot messages.
pub fn synthetic_app(messages: usize, width: u16, height: u16) -> App {
    let mut app = App::new(AppInit {
        persona: "Bench".into(),
        model: "bench-model".into(),
        context_window: 4096,
        size: (width, height),
        history: Vec::new(),
        model_state: ModelState::Ready,
    });
    app.transcript
        .entries
        .push(Entry::new(EntryKind::Greeting, "Hello! Ask me anything."));
    for i in 0..messages {
        let entry = if i % 2 == 0 {
            Entry::new(
                EntryKind::User,
                format!("Question {i}: how do I read a file line by line in Rust?"),
            )
        } else {
            Entry::new(
                EntryKind::Bot { interrupted: false },
                format!(
                    "## Answer {i}\n\nUse a **`BufReader`** and its `lines()` iterator:\n\n\
                     ```rust\nlet f = File::open(path)?;\nfor line in BufReader::new(f).lines() {{\n    \
                     println!(\"{{}}\", line?);\n}}\n```\n\n- errors are *per line*\n- it is \
                     buffered, so it is fast even for large files that do not fit in memory\n"
                ),
            )
        };
        app.transcript.entries.push(entry);
    }
    app
}

fn draw(terminal: &mut Terminal<TestBackend>, app: &App) -> f64 {
    let t = Instant::now();
    terminal
        .draw(|f| f.render_widget(app, f.area()))
        .expect("in-memory terminal");
    t.elapsed().as_secs_f64() * 1000.0
}

/// Measure `frames` frames of each kind for a session of `messages` messages on a
/// `width` x `height` screen.
pub fn bench_frames(messages: usize, frames: usize, width: u16, height: u16) -> FrameTimes {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("in-memory terminal");
    let mut first = Vec::new();
    for _ in 0..frames.clamp(1, 20) {
        let app = synthetic_app(messages, width, height);
        terminal.clear().expect("in-memory terminal");
        first.push(draw(&mut terminal, &app));
    }

    let mut app = synthetic_app(messages, width, height);
    draw(&mut terminal, &app);
    let idle = (0..frames).map(|_| draw(&mut terminal, &app)).collect();

    let mut streaming = Vec::with_capacity(frames);
    update(&mut app, Msg::Reply(ReplyEvent::Token(String::new())));
    for i in 0..frames {
        let t = Instant::now();
        let piece = if i % 40 == 39 { "word\n\n" } else { "word " };
        update(&mut app, Msg::Reply(ReplyEvent::Token(piece.into())));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        streaming.push(ms + draw(&mut terminal, &app));
    }

    let mut scrolling = Vec::with_capacity(frames);
    let page_up = KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE);
    for _ in 0..frames {
        let t = Instant::now();
        update(&mut app, Msg::Key(page_up));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        scrolling.push(ms + draw(&mut terminal, &app));
    }

    let mut keystroke = Vec::with_capacity(frames);
    for i in 0..frames {
        let c = if i % 60 == 59 { ' ' } else { 'x' };
        let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let t = Instant::now();
        update(&mut app, Msg::Key(key));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        keystroke.push(ms + draw(&mut terminal, &app));
    }

    FrameTimes {
        messages,
        first_frame: Timing::of(first),
        idle: Timing::of(idle),
        streaming: Timing::of(streaming),
        scrolling: Timing::of(scrolling),
        keystroke: Timing::of(keystroke),
    }
}

/// Terminal UI frames: render time of a new session vs one with 5,000 messages (idle,
/// streaming, scrolling) and keystroke-to-frame latency, on ratatui's `TestBackend` (100x30).
pub fn section(report: &mut Report, quick: bool) {
    let frames = if quick { 50 } else { 300 };
    let small = bench_frames(2, frames, 100, 30);
    let large = bench_frames(5000, frames, 100, 30);
    let sec = "tui";
    report.add(sec, "frame, new session (mean)", small.idle.mean_ms, "ms");
    report.check(
        sec,
        "frame, 5,000 messages, idle (p99)",
        large.idle.p99_ms,
        "ms",
        2.0,
        false,
    );
    report.check(
        sec,
        "frame, 5,000 messages, streaming (p99)",
        large.streaming.p99_ms,
        "ms",
        2.0,
        false,
    );
    report.check(
        sec,
        "frame, 5,000 messages, scrolling (p99)",
        large.scrolling.p99_ms,
        "ms",
        2.0,
        false,
    );
    report.add(
        sec,
        "first frame, 5,000 messages",
        large.first_frame.mean_ms,
        "ms",
    );
    report.add(
        sec,
        "keystroke to frame, 5,000 messages (p99)",
        large.keystroke.p99_ms,
        "ms",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prints the numbers: `cargo test --lib tui::bench -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check; run with --ignored --nocapture"]
    fn print_frame_times() {
        for n in [0, 5000] {
            let t = bench_frames(n, 300, 120, 40);
            println!("{t:#?}");
        }
    }
}
