//! serde_yaml errors -> [`Problem`]s: bare messages, friendly type names, "did you mean" hints.

use super::{Location, Problem, did_you_mean};

/// Turn a serde_yaml error into a [`Problem`]: the bare message (serde_yaml's own path prefix and
/// ` at line L column C` suffix removed), friendlier type names, a hint for unknown fields.
pub(super) fn describe(file: &str, text: &str, path: &str, err: &serde_yaml::Error) -> Problem {
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
