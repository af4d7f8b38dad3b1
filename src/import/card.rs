//! Character Card V1/V2/V3 JSON <-> persona. Import composes the system prompt from
//! `system_prompt`, `description`, `personality` and `scenario`, turns `mes_example` blocks into
//! examples and `character_book` into knowledge; everything else goes to `extensions.card`.
//! Export writes a V2 card and gives back what import kept.

use super::{DocExample, ImportError, PersonaDoc, convert_macros};
use crate::persona::knowledge::{RawKnowledge, RawKnowledgeEntry};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Card fields import maps to persona fields (everything else is kept in extensions).
const MAPPED: &[&str] = &[
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "system_prompt",
    "character_book",
];

/// Convert card JSON (V1 flat, V2 `chara_card_v2`, V3 `chara_card_v3`).
pub fn from_json(text: &str) -> Result<PersonaDoc, ImportError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ImportError::BadCard(format!("invalid JSON: {e}")))?;
    let Value::Object(root) = root else {
        return Err(ImportError::BadCard("the JSON is not an object".into()));
    };
    let spec = root.get("spec").and_then(Value::as_str).unwrap_or("");
    let (data, spec) = match spec {
        "chara_card_v2" | "chara_card_v3" => match root.get("data") {
            Some(Value::Object(d)) => (d.clone(), spec.to_string()),
            _ => {
                return Err(ImportError::BadCard(format!(
                    "`{spec}` card without a `data` object"
                )));
            }
        },
        "" if root.contains_key("name") => (root.clone(), "chara_card_v1".to_string()),
        "" => {
            return Err(ImportError::BadCard(
                "no `spec` and no `name`: not a character card".into(),
            ));
        }
        other => {
            return Err(ImportError::BadCard(format!(
                "unsupported spec \"{other}\" (known: chara_card_v2, chara_card_v3)"
            )));
        }
    };
    let text_of = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let name =
        text_of("name").ok_or_else(|| ImportError::BadCard("the card has no `name`".into()))?;
    let mut parts = Vec::new();
    if let Some(s) = text_of("system_prompt") {
        parts.push(convert_macros(&s).trim().to_string());
    }
    if let Some(s) = text_of("description") {
        parts.push(convert_macros(&s));
    }
    if let Some(s) = text_of("personality") {
        parts.push(format!("{{{{bot}}}}'s personality: {}", convert_macros(&s)));
    }
    if let Some(s) = text_of("scenario") {
        parts.push(format!("Scenario: {}", convert_macros(&s)));
    }
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        parts.push("You are {{bot}}.".to_string());
    }
    let mut doc = PersonaDoc {
        name,
        system: parts.join("\n\n"),
        greeting: text_of("first_mes").map(|s| convert_macros(&s)),
        examples: text_of("mes_example")
            .map(|s| parse_examples(&s))
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(Value::Object(book)) = data.get("character_book") {
        doc.knowledge = Some(book_to_knowledge(book));
    }
    let mut kept = Map::new();
    kept.insert("spec".into(), Value::String(spec));
    if let Some(v) = root.get("spec_version") {
        kept.insert("spec_version".into(), v.clone());
    }
    for (k, v) in &data {
        if !MAPPED.contains(&k.as_str()) && !is_empty_value(v) {
            kept.insert(k.clone(), v.clone());
        }
    }
    if let Some(Value::Object(book)) = data.get("character_book") {
        let rest: Map<String, Value> = book
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "entries" | "scan_depth" | "token_budget"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            kept.insert("character_book".into(), Value::Object(rest));
        }
    }
    if let Some(notes) = text_of("creator_notes") {
        doc.description = notes.lines().next().map(|l| l.chars().take(120).collect());
    }
    doc.extensions.insert("card".into(), Value::Object(kept));
    Ok(doc)
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// `mes_example` blocks (`<START>`, then `{{user}}: ...` / `{{char}}: ...` lines) -> exchanges.
pub fn parse_examples(text: &str) -> Vec<DocExample> {
    let text = convert_macros(text);
    let mut out = Vec::new();
    for block in text.split("<START>") {
        let mut turns: Vec<(bool, String)> = Vec::new();
        for line in block.lines() {
            let t = line.trim_end();
            if let Some(rest) = t.strip_prefix("{{user}}:") {
                turns.push((true, rest.trim().to_string()));
            } else if let Some(rest) = t.strip_prefix("{{bot}}:") {
                turns.push((false, rest.trim().to_string()));
            } else if let Some(last) = turns.last_mut()
                && !t.trim().is_empty()
            {
                last.1.push('\n');
                last.1.push_str(t);
            }
        }
        let mut pending: Option<String> = None;
        for (is_user, text) in turns {
            match (is_user, pending.take()) {
                (true, _) => pending = Some(text),
                (false, Some(user)) => out.push(DocExample {
                    user,
                    assistant: text,
                }),
                (false, None) => {}
            }
        }
    }
    out
}

fn book_to_knowledge(book: &Map<String, Value>) -> RawKnowledge {
    let mut k = RawKnowledge {
        budget: 512,
        scan_depth: 4,
        entries: Vec::new(),
    };
    if let Some(b) = book.get("token_budget").and_then(Value::as_u64) {
        k.budget = b.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(d) = book.get("scan_depth").and_then(Value::as_u64) {
        k.scan_depth = (d as usize).max(1);
    }
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for e in book
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Value::Object(e) = e else { continue };
        let flag = |k: &str, d: bool| e.get(k).and_then(Value::as_bool).unwrap_or(d);
        let int = |k: &str| e.get(k).and_then(Value::as_i64).unwrap_or(0) as i32;
        let id = ["comment", "name"]
            .iter()
            .find_map(|k| e.get(*k).and_then(Value::as_str))
            .map(str::to_string)
            .filter(|s| !s.is_empty());
        let known = [
            "keys",
            "content",
            "constant",
            "enabled",
            "priority",
            "insertion_order",
            "case_sensitive",
            "selective",
            "secondary_keys",
        ];
        let extensions: BTreeMap<String, Value> = e
            .iter()
            .filter(|(k, v)| !known.contains(&k.as_str()) && !is_empty_value(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let secondary_keys = strings(e.get("secondary_keys"));
        k.entries.push(RawKnowledgeEntry {
            id,
            keys: strings(e.get("keys")),
            content: convert_macros(e.get("content").and_then(Value::as_str).unwrap_or("")),
            constant: flag("constant", false),
            enabled: flag("enabled", true),
            priority: int("priority"),
            insertion_order: int("insertion_order"),
            case_sensitive: flag("case_sensitive", false),
            selective: flag("selective", false) && !secondary_keys.is_empty(),
            secondary_keys,
            extensions,
        });
    }
    k
}

/// What export needs from a persona (raw texts, macros unexpanded).
#[derive(Debug, Clone, Default)]
pub struct ExportSource {
    /// Display name.
    pub name: String,
    /// One line description.
    pub description: Option<String>,
    /// System text.
    pub system: String,
    /// Greeting.
    pub greeting: Option<String>,
    /// (user, assistant) exchanges.
    pub examples: Vec<(String, String)>,
    /// Knowledge section.
    pub knowledge: Option<RawKnowledge>,
    /// The persona's `extensions`.
    pub extensions: BTreeMap<String, Value>,
    /// parlor-only sections (faq, rules, sampling...) kept under `extensions.parlor`.
    pub parlor: Map<String, Value>,
}

/// Persona macros -> card macros.
fn to_card_macros(text: &str) -> String {
    text.replace("{{bot}}", "{{char}}")
}

/// A Character Card V2 for `src`.
pub fn to_card_v2(src: &ExportSource) -> Value {
    let kept = src
        .extensions
        .get("card")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mes_example = src
        .examples
        .iter()
        .map(|(u, a)| {
            format!(
                "<START>\n{{{{user}}}}: {}\n{{{{char}}}}: {}",
                to_card_macros(u),
                to_card_macros(a)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut data = Map::new();
    data.insert("name".into(), json!(src.name));
    data.insert("description".into(), json!(to_card_macros(&src.system)));
    data.insert("personality".into(), json!(""));
    data.insert("scenario".into(), json!(""));
    data.insert(
        "first_mes".into(),
        json!(
            src.greeting
                .as_deref()
                .map(to_card_macros)
                .unwrap_or_default()
        ),
    );
    data.insert("mes_example".into(), json!(mes_example));
    for (k, default) in [
        (
            "creator_notes",
            json!(src.description.clone().unwrap_or_default()),
        ),
        ("system_prompt", json!("")),
        ("post_history_instructions", json!("")),
        ("alternate_greetings", json!([])),
        ("tags", json!([])),
        ("creator", json!("")),
        ("character_version", json!("")),
    ] {
        data.insert(k.into(), kept.get(k).cloned().unwrap_or(default));
    }
    let mut extensions = kept
        .get("extensions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut parlor = src.parlor.clone();
    for (k, v) in &src.extensions {
        if k != "card" {
            parlor.insert(format!("extensions.{k}"), v.clone());
        }
    }
    if !parlor.is_empty() {
        extensions.insert("parlor".into(), Value::Object(parlor));
    }
    data.insert("extensions".into(), Value::Object(extensions));
    if let Some(k) = &src.knowledge {
        let mut book = kept
            .get("character_book")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        book.insert("scan_depth".into(), json!(k.scan_depth));
        book.insert("token_budget".into(), json!(k.budget));
        book.entry("extensions").or_insert(json!({}));
        let entries: Vec<Value> = k
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut o = Map::new();
                for (k, v) in &e.extensions {
                    o.insert(k.clone(), v.clone());
                }
                o.insert("keys".into(), json!(e.keys));
                o.insert("content".into(), json!(to_card_macros(&e.content)));
                o.entry("extensions").or_insert(json!({}));
                o.insert("enabled".into(), json!(e.enabled));
                o.insert("insertion_order".into(), json!(e.insertion_order));
                o.insert("case_sensitive".into(), json!(e.case_sensitive));
                o.insert("priority".into(), json!(e.priority));
                o.entry("id").or_insert(json!(i));
                if let Some(id) = &e.id {
                    o.insert("comment".into(), json!(id));
                }
                o.insert("selective".into(), json!(e.selective));
                o.insert("secondary_keys".into(), json!(e.secondary_keys));
                o.insert("constant".into(), json!(e.constant));
                Value::Object(o)
            })
            .collect();
        book.insert("entries".into(), Value::Array(entries));
        data.insert("character_book".into(), Value::Object(book));
    }
    json!({ "spec": "chara_card_v2", "spec_version": "2.0", "data": Value::Object(data) })
}
