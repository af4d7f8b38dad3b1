//! Ollama Modelfiles: `FROM`, `SYSTEM`, `PARAMETER name value`, `MESSAGE user|assistant text`,
//! `TEMPLATE`, `ADAPTER`, `LICENSE`. Arguments are bare text, `"quoted"` or `"""multi-line"""`.
//! Sampling parameters map to `sampling:`, `num_ctx` to `context.window`, `stop` to `stop:`;
//! the rest (template, unknown parameters, a non-GGUF `FROM`) is kept under
//! `extensions.modelfile`.

use super::{DocExample, ImportError, PersonaDoc, convert_macros};
use serde_json::{Map, Value, json};

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "SYSTEM",
    "PARAMETER",
    "MESSAGE",
    "TEMPLATE",
    "ADAPTER",
    "LICENSE",
    "REQUIRES",
];

/// Whether `text` reads like a Modelfile (its first instruction is a known one).
pub fn looks_like(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .is_some_and(|w| INSTRUCTIONS.contains(&w.to_ascii_uppercase().as_str()))
}

/// One instruction with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
struct Instruction {
    line: usize,
    name: String,
    args: String,
}

/// Split into instructions, resolving quoting.
fn instructions(text: &str) -> Result<Vec<Instruction>, ImportError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let name = name.to_ascii_uppercase();
        if !INSTRUCTIONS.contains(&name.as_str()) {
            return Err(ImportError::BadModelfile {
                line: line_no,
                message: format!(
                    "unknown instruction \"{name}\"; expected one of {}",
                    INSTRUCTIONS.join(", ")
                ),
            });
        }
        let rest = rest.trim_start();
        // PARAMETER and MESSAGE have one bare word before the (possibly quoted) value.
        let (head, value) = if matches!(name.as_str(), "PARAMETER" | "MESSAGE") {
            let (h, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (Some(h.to_string()), v.trim_start())
        } else {
            (None, rest)
        };
        let value = if let Some(after) = value.strip_prefix("\"\"\"") {
            if let Some(end) = after.find("\"\"\"") {
                after[..end].to_string()
            } else {
                let mut buf = after.to_string();
                loop {
                    let Some(next) = lines.get(i) else {
                        return Err(ImportError::BadModelfile {
                            line: line_no,
                            message: "a `\"\"\"` string is never closed".into(),
                        });
                    };
                    i += 1;
                    buf.push('\n');
                    if let Some(end) = next.find("\"\"\"") {
                        buf.push_str(&next[..end]);
                        break;
                    }
                    buf.push_str(next);
                }
                buf
            }
        } else if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value[1..value.len() - 1].replace("\\\"", "\"")
        } else {
            value.to_string()
        };
        let args = match head {
            Some(h) => format!("{h} {value}"),
            None => value,
        };
        out.push(Instruction {
            line: line_no,
            name,
            args,
        });
    }
    Ok(out)
}

/// Convert a Modelfile.
pub fn parse(text: &str) -> Result<PersonaDoc, ImportError> {
    let mut doc = PersonaDoc::default();
    let mut kept = Map::new();
    let mut other_params = Map::new();
    let mut pending_user: Option<String> = None;
    let mut extra_messages = Vec::new();
    let mut system = None;
    for ins in instructions(text)? {
        let bad = |message: String| ImportError::BadModelfile {
            line: ins.line,
            message,
        };
        match ins.name.as_str() {
            "FROM" => {
                let from = ins.args.trim().to_string();
                if from.to_ascii_lowercase().ends_with(".gguf") {
                    doc.model = Some(from);
                } else {
                    kept.insert("from".into(), json!(from));
                }
            }
            "SYSTEM" => system = Some(convert_macros(ins.args.trim())),
            "TEMPLATE" | "ADAPTER" | "LICENSE" | "REQUIRES" => {
                kept.insert(ins.name.to_ascii_lowercase(), json!(ins.args));
            }
            "PARAMETER" => {
                let (key, value) = ins.args.split_once(' ').unwrap_or((&ins.args, ""));
                let value = value.trim();
                let number = || -> Result<Value, ImportError> {
                    let n: f64 = value.parse().map_err(|_| {
                        bad(format!("PARAMETER {key} needs a number, found \"{value}\""))
                    })?;
                    Ok(if n.fract() == 0.0 && !value.contains('.') {
                        json!(n as i64)
                    } else {
                        json!(n)
                    })
                };
                match key {
                    "temperature" | "top_k" | "top_p" | "min_p" | "repeat_penalty"
                    | "repeat_last_n" | "seed" => {
                        doc.sampling.insert(key.into(), number()?);
                    }
                    "num_predict" => {
                        doc.sampling.insert("max_tokens".into(), number()?);
                    }
                    "num_ctx" => {
                        doc.context.insert("window".into(), number()?);
                    }
                    "stop" => doc.stop.push(value.to_string()),
                    _ => {
                        other_params.insert(key.into(), json!(value));
                    }
                }
            }
            "MESSAGE" => {
                let (role, content) = ins.args.split_once(' ').unwrap_or((&ins.args, ""));
                let content = convert_macros(content.trim());
                match role.to_ascii_lowercase().as_str() {
                    "user" => {
                        if let Some(prev) = pending_user.replace(content) {
                            extra_messages.push(json!({"role": "user", "content": prev}));
                        }
                    }
                    "assistant" => match pending_user.take() {
                        Some(user) => doc.examples.push(DocExample {
                            user,
                            assistant: content,
                        }),
                        None => {
                            extra_messages.push(json!({"role": "assistant", "content": content}));
                        }
                    },
                    "system" => extra_messages.push(json!({"role": "system", "content": content})),
                    other => {
                        return Err(bad(format!(
                            "MESSAGE role \"{other}\" is not user, assistant or system"
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(user) = pending_user {
        extra_messages.push(json!({"role": "user", "content": user}));
    }
    if !other_params.is_empty() {
        kept.insert("parameters".into(), Value::Object(other_params));
    }
    if !extra_messages.is_empty() {
        kept.insert("messages".into(), Value::Array(extra_messages));
    }
    doc.system = system.unwrap_or_else(|| {
        kept.insert(
            "note".into(),
            json!("the Modelfile had no SYSTEM; a default was written"),
        );
        "You are {{bot}}, a helpful assistant.".to_string()
    });
    doc.name = kept
        .get("from")
        .and_then(Value::as_str)
        .map(|f| {
            let base = f.rsplit('/').next().unwrap_or(f);
            base.split(':').next().unwrap_or(base).to_string()
        })
        .or_else(|| {
            doc.model.as_ref().and_then(|m| {
                std::path::Path::new(m)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
        })
        .unwrap_or_else(|| "Assistant".to_string());
    if !kept.is_empty() {
        doc.extensions
            .insert("modelfile".into(), Value::Object(kept));
    }
    Ok(doc)
}
