//! Slash commands typed in the input box: `/new`, `/reset`, `/persona NAME`, `/retry`,
//! `/export md|jsonl [PATH]`, `/rename NAME`, `/help`. Parsing only; [`super::update`] acts.

use super::app::ExportFormat;
use std::path::PathBuf;

/// A parsed slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slash {
    /// `/new [NAME]`.
    New(Option<String>),
    /// `/reset`: clear this session.
    Reset,
    /// `/persona [NAME]`: switch persona (picker without a name).
    Persona(Option<String>),
    /// `/retry`: answer the last message again.
    Retry,
    /// `/export md|jsonl [PATH]`.
    Export(ExportFormat, Option<PathBuf>),
    /// `/rename NAME`.
    Rename(String),
    /// `/sessions`: the session list.
    Sessions,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// Parse `text` if it is a slash command. `None`: not a command (send it); `Some(Err)`: a
/// command that is unknown or malformed (the message says so; nothing is sent).
pub fn parse(text: &str) -> Option<Result<Slash, String>> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    // "//text" sends "/text" literally? Keep it simple: a path-like message is still a command.
    let mut words = rest.split_whitespace();
    let name = words.next().unwrap_or("");
    let arg = rest[name.len()..].trim();
    let arg = (!arg.is_empty()).then(|| arg.to_string());
    Some(match name {
        "new" => Ok(Slash::New(arg)),
        "reset" | "clear" => Ok(Slash::Reset),
        "persona" => Ok(Slash::Persona(arg)),
        "retry" | "regenerate" => Ok(Slash::Retry),
        "sessions" => Ok(Slash::Sessions),
        "help" => Ok(Slash::Help),
        "quit" | "exit" => Ok(Slash::Quit),
        "rename" => arg
            .map(Slash::Rename)
            .ok_or_else(|| "usage: /rename NAME".to_string()),
        "export" => {
            let mut parts = arg.as_deref().unwrap_or("").splitn(2, char::is_whitespace);
            let format = match parts.next().unwrap_or("") {
                "md" | "markdown" => ExportFormat::Markdown,
                "jsonl" | "json" => ExportFormat::Jsonl,
                other => {
                    return Some(Err(format!(
                        "unknown export format \"{other}\"; use /export md|jsonl [PATH]"
                    )));
                }
            };
            let path = parts
                .next()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from);
            Ok(Slash::Export(format, path))
        }
        other => Err(format!(
            "unknown command \"/{other}\"; /help lists the commands (nothing was sent)"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_not_a_command() {
        assert_eq!(parse("hello /new"), None);
    }

    #[test]
    fn commands_take_their_arguments() {
        assert_eq!(parse("/new"), Some(Ok(Slash::New(None))));
        assert_eq!(
            parse("/persona pirate"),
            Some(Ok(Slash::Persona(Some("pirate".into()))))
        );
        assert_eq!(
            parse("/export jsonl out/a b.jsonl"),
            Some(Ok(Slash::Export(
                ExportFormat::Jsonl,
                Some("out/a b.jsonl".into())
            )))
        );
        assert_eq!(
            parse("/export md"),
            Some(Ok(Slash::Export(ExportFormat::Markdown, None)))
        );
    }

    #[test]
    fn unknown_and_malformed_commands_explain_themselves() {
        let Some(Err(msg)) = parse("/frobnicate now") else {
            panic!("expected an error");
        };
        assert!(msg.contains("unknown command \"/frobnicate\""), "{msg}");
        assert!(matches!(parse("/export pdf"), Some(Err(m)) if m.contains("\"pdf\"")));
        assert!(matches!(parse("/rename"), Some(Err(_))));
    }
}
