//! A synthetic session (Markdown answers, code blocks) for `parlor bench`'s frame times and
//! the view's tests; it lives here so both can use it without a circle between tui and bench.

use super::app::{App, AppInit, ModelState};
use super::transcript::{Entry, EntryKind};

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
