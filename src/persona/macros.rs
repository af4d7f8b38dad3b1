//! Persona text macros: `{{bot}}`, `{{user}}`, `{{date}}`, `{{time}}` and `{{var.NAME}}`
//! (session variables). Unknown macros are found when the persona loads, never at chat time.

use super::MacroContext;

/// Macro names a persona may use (besides `var.NAME`).
pub const KNOWN: &[&str] = &["bot", "user", "date", "time"];

/// One piece of a text: literal text or a macro name (trimmed, without braces).
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Macro(&'a str),
}

/// Split `text` at `{{ ... }}`. A `{{` without a closing `}}` on the same text is literal.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim();
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        out.push(Piece::Macro(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// A macro a persona text uses that parlor does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMacro {
    /// The name between the braces.
    pub name: String,
    /// What to write instead.
    pub hint: String,
}

/// The unknown macros in `text`, in order.
pub fn unknown(text: &str) -> Vec<UnknownMacro> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Macro(name) if !is_known(name) => Some(UnknownMacro {
                name: name.to_string(),
                hint: hint_for(name),
            }),
            _ => None,
        })
        .collect()
}

fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
        || name
            .strip_prefix("var.")
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

fn hint_for(name: &str) -> String {
    let lower = name.to_lowercase();
    let suggestion = match lower.as_str() {
        // Character Card names for the same things.
        "char" | "character" | "assistant" | "name" => Some("bot"),
        "persona" | "human" => Some("user"),
        _ => crate::yaml::did_you_mean(&lower, KNOWN.iter().copied()),
    };
    match suggestion {
        Some(s) => format!("did you mean {{{{{s}}}}}?"),
        None => "known macros: {{bot}}, {{user}}, {{date}}, {{time}}, {{var.NAME}}".to_string(),
    }
}

/// `text` with every macro replaced. `now` gives `{{date}}` (YYYY-MM-DD) and `{{time}}`
/// (HH:MM); unknown names (impossible after loading) and unset variables become empty.
pub fn expand(
    text: &str,
    bot: &str,
    ctx: &MacroContext,
    now: chrono::DateTime<chrono::Local>,
) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Macro("bot") => out.push_str(bot),
            Piece::Macro("user") => out.push_str(&ctx.user),
            Piece::Macro("date") => out.push_str(&now.format("%Y-%m-%d").to_string()),
            Piece::Macro("time") => out.push_str(&now.format("%H:%M").to_string()),
            Piece::Macro(other) => {
                if let Some(v) = other.strip_prefix("var.").and_then(|v| ctx.vars.get(v)) {
                    out.push_str(v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ctx() -> MacroContext {
        let mut c = MacroContext {
            user: "Ada".into(),
            ..Default::default()
        };
        c.vars.insert("order".into(), "A-17".into());
        c
    }

    #[test]
    fn expands_every_known_macro() {
        let now = chrono::Local
            .with_ymd_and_hms(2026, 3, 4, 9, 5, 0)
            .single()
            .expect("valid time");
        let text =
            "I am {{bot}}, you are {{ user }}. {{date}} {{time}} order {{var.order}}{{var.none}}.";
        assert_eq!(
            expand(text, "Polly", &ctx(), now),
            "I am Polly, you are Ada. 2026-03-04 09:05 order A-17."
        );
    }

    #[test]
    fn unclosed_braces_are_literal() {
        assert!(unknown("a {{ b").is_empty());
        let now = chrono::Local::now();
        assert_eq!(expand("a {{ b", "x", &ctx(), now), "a {{ b");
    }

    #[test]
    fn unknown_macros_have_hints() {
        let found = unknown("{{char}} meets {{usr}} and {{weather}} and {{var.}}");
        let names: Vec<_> = found.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["char", "usr", "weather", "var."]);
        assert_eq!(found[0].hint, "did you mean {{bot}}?");
        assert_eq!(found[1].hint, "did you mean {{user}}?");
        assert!(found[2].hint.starts_with("known macros:"));
    }
}
