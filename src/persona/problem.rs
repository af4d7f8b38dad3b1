//! A validation problem found in a persona section, located by its field path
//! (`faq.entries[3].id`); the YAML layer turns the path into `file:line:col`.

/// One problem: where (field path) and what (a lowercase message saying what to do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field path, e.g. `rules[2].when.regex`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
