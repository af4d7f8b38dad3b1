//! [`Checker`]: problems found after parsing (ranges, cross-field rules), each located in the
//! source text.

use super::{Location, Problem, locate};
use std::fmt;

/// Most problems reported per file; each costs a walk of the document to locate, and after a
/// few dozen the user needs to fix those first anyway.
pub const MAX_PROBLEMS: usize = 20;

/// Collects problems found after parsing, each located in the source text.
#[derive(Debug)]
pub struct Checker<'t> {
    file: String,
    text: &'t str,
    problems: Vec<Problem>,
    suppressed: usize,
}

impl<'t> Checker<'t> {
    /// A checker for `text`, the content of `file` (as shown to the user).
    pub fn new(file: impl Into<String>, text: &'t str) -> Self {
        Self {
            file: file.into(),
            text,
            problems: Vec::new(),
            suppressed: 0,
        }
    }

    /// The file as shown to the user.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The source text.
    pub fn text(&self) -> &'t str {
        self.text
    }

    /// Record a problem at `field` (a path such as `sampling.temperature`).
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.push(field, message.into(), None);
    }

    /// Record a problem at `field` with a hint saying what to do.
    pub fn error_hint(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.push(field, message.into(), Some(hint.into()));
    }

    /// Record an already built problem.
    pub fn push_problem(&mut self, problem: Problem) {
        if self.problems.len() >= MAX_PROBLEMS {
            self.suppressed += 1;
        } else {
            self.problems.push(problem);
        }
    }

    fn push(&mut self, field: &str, message: String, hint: Option<String>) {
        if self.problems.len() >= MAX_PROBLEMS {
            self.suppressed += 1;
            return;
        }
        self.problems.push(Problem {
            file: self.file.clone(),
            location: locate(self.text, field).or(Some(Location::START)),
            field: field.to_string(),
            message,
            hint,
        });
    }

    /// Check that `value` lies in `range`, recording `field: VALUE is out of range (LO to HI)`.
    pub fn range<T>(&mut self, field: &str, value: Option<T>, range: std::ops::RangeInclusive<T>)
    where
        T: PartialOrd + fmt::Display + Copy,
    {
        if let Some(v) = value
            && !range.contains(&v)
        {
            let (lo, hi) = (range.start(), range.end());
            let shown = locate(self.text, field)
                .and_then(|at| literal_at(self.text, at))
                .map(str::to_string)
                .unwrap_or_else(|| Num(v).to_string());
            self.error(
                field,
                format!("{shown} is out of range ({} to {})", Num(*lo), Num(*hi)),
            );
        }
    }

    /// No problems so far.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn finish<T>(self, value: T) -> Result<T, Vec<Problem>> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(self.into_problems())
        }
    }

    /// The problems recorded (after [`MAX_PROBLEMS`], one line saying how many more).
    pub fn into_problems(mut self) -> Vec<Problem> {
        self.problems
            .sort_by_key(|p| p.location.map(|l| (l.line, l.column)));
        if self.suppressed > 0 {
            self.problems.push(Problem {
                file: self.file.clone(),
                location: None,
                field: String::new(),
                message: format!("{} more problems not shown", self.suppressed),
                hint: Some("fix the ones above first".into()),
            });
        }
        self.problems
    }
}

/// The plain scalar starting at `at`, as written (up to a comment, `,`, `}`, `]` or the end of
/// the line).
fn literal_at(text: &str, at: Location) -> Option<&str> {
    let line = text.lines().nth(at.line.checked_sub(1)?)?;
    let start = line.char_indices().nth(at.column.checked_sub(1)?)?.0;
    let rest = &line[start..];
    let end = rest.find([',', '}', ']', '#']).unwrap_or(rest.len());
    let lit = rest[..end].trim();
    (!lit.is_empty()).then_some(lit)
}

/// Numbers as a user would write them: `2.0` stays `2.0`, `3` stays `3`.
struct Num<T>(T);

impl<T: fmt::Display> fmt::Display for Num<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.to_string();
        let is_float = std::any::type_name::<T>().starts_with('f');
        if is_float && !s.contains(['.', 'e', 'N', 'i']) {
            write!(f, "{s}.0")
        } else {
            f.write_str(&s)
        }
    }
}
