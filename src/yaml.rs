//! The one place YAML is parsed: size cap, errors as `path:line:col: field: problem`.
//!
//! Parsing is serde_yaml (0.9) behind [`parse`]; [`serde_path_to_error`] gives the field path of
//! a failure, serde_yaml its position. Checks that run after parsing (ranges, cross-field rules)
//! report through a [`Checker`], which finds the position of a field path in the source text
//! with [`locate`], so every problem carries `file:line:col`.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// Largest YAML file we parse. Persona and bot files are a few KiB; anything this big is a
/// mistake (or an attack on the parser) and is refused before parsing.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// A position in a file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, 1-based.
    pub line: usize,
    /// Column (characters), 1-based.
    pub column: usize,
}

impl Location {
    /// The start of the file.
    pub const START: Location = Location { line: 1, column: 1 };
}

/// One problem found in a file: prints as `file:line:col: field.path: message; hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as the user should see it.
    pub file: String,
    /// Where, when known.
    pub location: Option<Location>,
    /// The field path (`sampling.temperature`, `examples[1].user`); empty for the whole file.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do, when we can say.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(at) = self.location {
            write!(f, ":{}:{}", at.line, at.column)?;
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// How a path is shown in messages: relative to the current directory when under it, without a
/// leading `./`.
pub fn display_path(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf());
    let s = shown.display().to_string();
    match s.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => s,
    }
}

/// Read a YAML file as UTF-8 text, refusing files over [`MAX_FILE_BYTES`] before reading them
/// whole (so `/dev/zero` or a huge file cannot exhaust memory).
pub fn read(path: &Path) -> Result<String, Problem> {
    let file = display_path(path);
    let problem = |location, message: String, hint: Option<&str>| Problem {
        file: file.clone(),
        location,
        field: String::new(),
        message,
        hint: hint.map(str::to_string),
    };
    let f = std::fs::File::open(path).map_err(|e| {
        problem(
            None,
            format!("could not open the file: {}", io_reason(&e)),
            Some("check the path"),
        )
    })?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            problem(
                None,
                format!("could not read the file: {}", io_reason(&e)),
                None,
            )
        })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(problem(
            None,
            format!("the file is larger than {} KiB", MAX_FILE_BYTES / 1024),
            Some("persona and bot files are small; is this the right file?"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // The valid prefix is UTF-8 by definition.
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        problem(
            Some(location_of_offset(prefix, prefix.len())),
            "the file is not valid UTF-8 text".to_string(),
            Some("save it as UTF-8"),
        )
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string().to_lowercase(),
    }
}

fn location_of_offset(text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Location { line, column }
}

/// Parse `text` (the content of `file`, as shown to the user) into `T`. Unknown fields, wrong
/// types and syntax errors become one [`Problem`] with the position and field path.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Problem> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Problem {
            file: file.to_string(),
            location: None,
            field: String::new(),
            message: format!("the file is larger than {} KiB", MAX_FILE_BYTES / 1024),
            hint: Some("persona and bot files are small; is this the right file?".into()),
        });
    }
    if is_blank(text) {
        return Err(Problem {
            file: file.to_string(),
            location: Some(Location::START),
            field: String::new(),
            message: "the file is empty".to_string(),
            hint: Some("see the shipped examples in personas/ and bots/".into()),
        });
    }
    if let Some(at) = too_deep(text) {
        return Err(Problem {
            file: file.to_string(),
            location: Some(at),
            field: String::new(),
            message: format!("nested deeper than {MAX_DEPTH} levels"),
            hint: Some("persona and bot files are shallow; is this the right file?".into()),
        });
    }
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        describe(file, text, &path, &inner)
    })
}

/// Deepest flow nesting (`[`, `{`) we parse. serde_yaml refuses more than 128 levels anyway,
/// but its parser takes time quadratic in the depth before it gets there: a 1 MiB file of `[`
/// would take many minutes. Deeper text is refused up front.
pub const MAX_DEPTH: usize = 100;

/// The position where flow nesting first goes deeper than [`MAX_DEPTH`], if it does. Quoted
/// strings and comments are skipped (a quote only opens where a scalar can start, so the
/// apostrophe in `don't` does not).
fn too_deep(text: &str) -> Option<Location> {
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

/// Only whitespace, comments and document markers.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// Turn a serde_yaml error into a [`Problem`]: the bare message (serde_yaml's own path prefix and
/// ` at line L column C` suffix removed), friendlier type names, a hint for unknown fields.
fn describe(file: &str, text: &str, path: &str, err: &serde_yaml::Error) -> Problem {
    let mut location = err.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    });
    let mut message = err.to_string();
    if let Some(at) = location {
        let suffix = format!(" at line {} column {}", at.line, at.column);
        if let Some(i) = message.find(&suffix) {
            message.replace_range(i..i + suffix.len(), "");
        }
    }
    // serde_path_to_error writes `?` for a position it could not name (syntax errors).
    let mut field = if path == "." { "" } else { path }
        .split('.')
        .filter(|s| *s != "?")
        .collect::<Vec<_>>()
        .join(".");
    let syntax = path.ends_with('?');
    if !field.is_empty()
        && let Some(rest) = message.strip_prefix(&format!("{field}: "))
    {
        message = rest.to_string();
    } else if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.is_empty()
        && field.starts_with(prefix)
    {
        // serde_yaml names the parent of a value that failed in a custom `TryFrom`.
        message = rest.to_string();
    }
    let mut hint = None;
    if let Some((name, expected)) = parse_unknown_field(&message) {
        hint = Some(
            match did_you_mean(&name, expected.iter().map(String::as_str)) {
                Some(best) => format!("did you mean \"{best}\"?"),
                None if expected.is_empty() => "this section takes no fields".to_string(),
                None => format!("known fields: {}", expected.join(", ")),
            },
        );
        field = join_field(&field, &name);
        message = "unknown field".to_string();
    } else if let Some(name) = between(&message, "missing field `", "`") {
        field = join_field(&field, &name);
        message = "missing (required)".to_string();
    } else if let Some(variant) = between(&message, "unknown variant `", "`") {
        let expected = backticked(message.split_once("expected").map_or("", |(_, e)| e));
        hint = did_you_mean(&variant, expected.iter().map(String::as_str))
            .map(|b| format!("did you mean \"{b}\"?"))
            .or_else(|| Some(format!("expected one of: {}", expected.join(", "))));
        message = format!("unknown value \"{variant}\"");
    } else if message.contains("more than one document") {
        message = "the file holds more than one YAML document".to_string();
        // Point at the separator that starts the second document.
        let mut seen_content = false;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim_end();
            if l.starts_with("---") && seen_content {
                location = Some(Location {
                    line: i + 1,
                    column: 1,
                });
                break;
            }
            seen_content |=
                !(l.is_empty() || l.starts_with('#') || l.starts_with('%') || l == "---");
        }
        hint = Some("remove the `---` separator lines".to_string());
    } else if syntax {
        message = format!("invalid YAML: {message}");
        hint = Some("check the indentation and quoting near this position".to_string());
    } else {
        message = friendly_types(&message);
    }
    Problem {
        file: file.to_string(),
        location: location.or(Some(Location::START)),
        field,
        message,
        hint,
    }
}

fn join_field(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else if parent.ends_with(&format!(".{name}")) || parent == name {
        parent.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `unknown field `x`, expected one of `a`, `b`` -> ("x", ["a", "b"]).
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let name = between(message, "unknown field `", "`")?;
    let rest = message.split_once("expected").map_or("", |(_, e)| e);
    Some((name, backticked(rest)))
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(s[from..from + len].to_string())
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, w)| w.to_string())
        .collect()
}

/// Rust type names in serde messages -> words a persona author knows.
fn friendly_types(message: &str) -> String {
    let mut out = message.to_string();
    for (from, to) in [
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected u8", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected a string", "expected text"),
        ("expected a borrowed string", "expected text"),
    ] {
        if let Some(i) = out.find(from)
            && !out[i + from.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            out.replace_range(i..i + from.len(), to);
        }
    }
    if let Some(i) = out.find("expected struct ") {
        out.replace_range(i.., "expected a mapping (`key: value` lines)");
    }
    if let Some(i) = out.find("expected a sequence") {
        out.replace_range(i.., "expected a list (`- item` lines)");
    }
    out
}

/// The top-level keys of a YAML mapping (empty if `text` is not one).
pub fn top_level_keys(text: &str) -> Vec<String> {
    if text.len() > MAX_FILE_BYTES || too_deep(text).is_some() {
        return Vec::new();
    }
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `examples[2].user` -> [Key(examples), Index(2), Key(user)].
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Segment::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(inner) = rest.strip_prefix('[') {
                let Some(close) = inner.find(']') else { break };
                if let Ok(n) = inner[..close].parse() {
                    out.push(Segment::Index(n));
                }
                rest = &inner[close + 1..];
            }
        } else {
            out.push(Segment::Key(rest.to_string()));
        }
    }
    out
}

const FOUND: &str = "\u{0}parlor-locate-found";

/// Position of the value at `path` (`sampling.temperature`, `examples[1].user`) in `text`, or
/// of its closest existing parent; `None` if the text does not parse or nothing matches.
///
/// It walks the document with serde_yaml itself and stops with a marker error at the target:
/// serde_yaml stamps the position of the value on that error, so flow style, quoting, anchors
/// and comments are all handled the way the parser sees them.
pub fn locate(text: &str, path: &str) -> Option<Location> {
    let segs = segments(path);
    (0..=segs.len())
        .rev()
        .find_map(|n| locate_exact(text, &segs[..n]))
}

fn locate_exact(text: &str, segs: &[Segment]) -> Option<Location> {
    if text.len() > MAX_FILE_BYTES || too_deep(text).is_some() {
        return None;
    }
    let de = serde_yaml::Deserializer::from_str(text);
    match (Locator { path: segs }).deserialize(de) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        }),
        Err(_) => None,
    }
}

struct Locator<'p> {
    path: &'p [Segment],
}

impl<'de> DeserializeSeed<'de> for Locator<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Locator<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.path.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            let matches = match (&self.path[0], &key) {
                (Segment::Key(k), serde_yaml::Value::String(s)) => k == s,
                (Segment::Key(k), other) => serde_yaml::to_string(other)
                    .map(|s| s.trim() == k)
                    .unwrap_or(false),
                (Segment::Index(_), _) => false,
            };
            if matches {
                return map.next_value_seed(Locator {
                    path: &self.path[1..],
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let target = match self.path.first() {
            None => return Err(de::Error::custom(FOUND)),
            Some(Segment::Index(n)) => Some(*n),
            Some(Segment::Key(_)) => None,
        };
        let mut i = 0;
        loop {
            if Some(i) == target {
                return seq
                    .next_element_seed(Locator {
                        path: &self.path[1..],
                    })
                    .map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        if self.path.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        let (_, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<IgnoredAny>(variant).map(|_| ())
    }
}

impl Locator<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

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

#[cfg(test)]
mod tests;
