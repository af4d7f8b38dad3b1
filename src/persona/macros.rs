//! Persona text macros: `{{bot}}`, `{{user}}`, `{{date}}`, `{{time}}`, `{{weekday}}`,
//! `{{var.NAME}}` (session variables) and `{{random:a,b,c}}` (one option, picked by the
//! context's seed: the same seed gives the same pick). Unknown macros are found when the persona loads, never at chat time.

use super::MacroContext;

/// Macro names a persona may use (besides `var.NAME`).
pub const KNOWN: &[&str] = &["bot", "user", "date", "time", "weekday"];

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
        || random_options(name).is_some_and(|o| o.iter().all(|s| !s.is_empty()))
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
        None if lower.starts_with("random") => {
            "write options after a colon, separated by commas: {{random:a,b,c}}".to_string()
        }
        None => "known macros: {{bot}}, {{user}}, {{date}}, {{time}}, {{weekday}}, {{var.NAME}}, {{random:a,b,c}}".to_string(),
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
    let mut n_random = 0u64;
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Macro("bot") => out.push_str(bot),
            Piece::Macro("user") => out.push_str(&ctx.user),
            Piece::Macro("date") => out.push_str(&now.format("%Y-%m-%d").to_string()),
            Piece::Macro("time") => out.push_str(&now.format("%H:%M").to_string()),
            Piece::Macro("weekday") => out.push_str(&now.format("%A").to_string()),
            Piece::Macro(other) if random_options(other).is_some() => {
                let options = random_options(other).unwrap_or_default();
                n_random += 1;
                out.push_str(pick(&options, ctx.seed, n_random));
            }
            Piece::Macro(other) => {
                if let Some(v) = other.strip_prefix("var.").and_then(|v| ctx.vars.get(v)) {
                    out.push_str(v);
                }
            }
        }
    }
    out
}

/// The options of `random:a,b,c` (trimmed), or `None` for another macro.
fn random_options(name: &str) -> Option<Vec<&str>> {
    let rest = name.strip_prefix("random:")?;
    Some(rest.split(',').map(str::trim).collect())
}

/// One of `options`, chosen by `seed` and the macro's place in the text (FNV-1a), so two
/// `{{random}}` in one text pick independently but repeatably.
fn pick<'a>(options: &[&'a str], seed: u64, nth: u64) -> &'a str {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().into_iter().chain(nth.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    options[(h % options.len() as u64) as usize]
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
    fn weekday_and_seeded_random() {
        let now = chrono::Local
            .with_ymd_and_hms(2026, 3, 4, 9, 5, 0)
            .single()
            .expect("valid time");
        assert_eq!(expand("{{weekday}}", "b", &ctx(), now), "Wednesday");
        let text = "{{random: Hi, Hello ,Hey}} there";
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let c = MacroContext { seed, ..ctx() };
            let a = expand(text, "b", &c, now);
            assert_eq!(a, expand(text, "b", &c, now), "same seed, same pick");
            assert!(
                ["Hi there", "Hello there", "Hey there"].contains(&a.as_str()),
                "{a}"
            );
            seen.insert(a);
        }
        assert_eq!(seen.len(), 3, "every option gets picked by some seed");
        assert!(unknown(text).is_empty());
        let bad = unknown("{{random:a,,b}} {{random}}");
        assert_eq!(bad.len(), 2);
        assert!(bad[0].hint.contains("{{random:a,b,c}}"), "{}", bad[0].hint);
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
