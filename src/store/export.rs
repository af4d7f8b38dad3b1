//! Export and import of sessions. JSONL: one session header line, then one line per message;
//! export -> import -> export gives the same bytes (except the name, when it was taken).
//! Markdown: a readable transcript with times, interrupted replies marked.

use super::records::{SessionRecord, VERSION, encode};
use super::{SessionInfo, Store, StoreError, StoredMessage, check_name, keys, sealed};
use crate::chat::{ReplySource, Role, SessionId, TurnStats};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// The first line of a JSONL export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderLine {
    v: u32,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    persona: String,
    model: String,
    created: i64,
    updated: i64,
    message_count: u64,
}

/// Every further line of a JSONL export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageLine {
    v: u32,
    #[serde(rename = "type")]
    kind: String,
    seq: u64,
    role: Role,
    text: String,
    time: i64,
    tokens: Option<u32>,
    interrupted: bool,
    source: ReplySource,
    stats: Option<TurnStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rating: Option<crate::chat::Rating>,
}

const SESSION: &str = "session";
const MESSAGE: &str = "message";

impl Store {
    /// Write `session` as JSONL: a header line, then one line per message in order.
    pub fn export_jsonl(&self, session: SessionId, out: &mut impl Write) -> Result<(), StoreError> {
        let info = self.require(session)?;
        let io = |e| io_err("export", e);
        let header = HeaderLine {
            v: VERSION,
            kind: SESSION.to_string(),
            name: info.name,
            persona: info.persona,
            model: info.model,
            created: info.created,
            updated: info.updated,
            message_count: info.message_count,
        };
        write_line(out, &encode(&header)).map_err(io)?;
        for m in self.messages(session)? {
            let line = MessageLine {
                v: VERSION,
                kind: MESSAGE.to_string(),
                seq: m.seq,
                role: m.role,
                text: m.text,
                time: m.time,
                tokens: m.tokens,
                interrupted: m.interrupted,
                source: m.source,
                stats: m.stats,
                operator: m.operator,
                rating: m.rating,
            };
            write_line(out, &encode(&line)).map_err(io)?;
        }
        out.flush().map_err(io)
    }

    /// Write `session` as a Markdown transcript.
    pub fn export_markdown(
        &self,
        session: SessionId,
        out: &mut impl Write,
    ) -> Result<(), StoreError> {
        let info = self.require(session)?;
        let io = |e| io_err("export", e);
        writeln!(out, "# {}\n", info.name).map_err(io)?;
        writeln!(out, "- Persona: `{}`", info.persona).map_err(io)?;
        writeln!(out, "- Model: `{}`", info.model).map_err(io)?;
        writeln!(out, "- Started: {}", format_time(info.created)).map_err(io)?;
        writeln!(out, "- Last message: {}", format_time(info.updated)).map_err(io)?;
        writeln!(out, "- Messages: {}", info.message_count).map_err(io)?;
        for m in self.messages(session)? {
            writeln!(
                out,
                "\n---\n\n{}\n\n{}",
                markdown_heading(&m),
                m.text.trim_end()
            )
            .map_err(io)?;
        }
        out.flush().map_err(io)
    }

    /// Import a JSONL export from a file as a new session (named `NAME-2`, `NAME-3`... when
    /// its name is taken). Nothing is stored unless the whole file is valid.
    pub fn import_jsonl(&self, path: &Path) -> Result<SessionInfo, StoreError> {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| StoreError::Io {
            path: origin.clone(),
            source: e,
        })?;
        self.import_jsonl_from(std::io::BufReader::new(file), &origin)
    }

    /// Import a JSONL export read from `input`; `origin` names it in errors.
    pub fn import_jsonl_from(
        &self,
        input: impl BufRead,
        origin: &str,
    ) -> Result<SessionInfo, StoreError> {
        let (header, lines) = parse_jsonl(input, origin)?;
        let mut record = SessionRecord {
            v: VERSION,
            name: header.name,
            persona: header.persona,
            model: header.model,
            created: header.created,
            updated: header.updated,
            message_count: lines.len() as u64,
            next_seq: lines.last().map_or(1, |m| m.seq + 1),
        };
        let base = record.name.clone();
        let mut name = base.clone();
        let mut n = 2;
        let id = loop {
            check_name(&name)?;
            let rec = SessionRecord {
                name: name.clone(),
                ..record.clone()
            };
            let written = self.with_new_session(&name, |id, key, (sessions, messages, meta)| {
                meta.insert(keys::name_key(&rec.name), &keys::session_key(id))?;
                sessions.insert(&keys::session_key(id), sealed::session_value(key, id, &rec))?;
                // Sealed here: the values depend on the id (their place is authenticated).
                for m in &lines {
                    let mkey = keys::message_key(id, m.seq);
                    messages.insert(&mkey, sealed::message_value(key, &mkey, m))?;
                }
                Ok(())
            });
            match written {
                Ok(id) => break id,
                Err(StoreError::NameTaken(_)) => {
                    name = format!("{base}-{n}");
                    n += 1;
                }
                Err(e) => return Err(e),
            }
        };
        record.name = name;
        Ok(record.info(id))
    }

    fn require(&self, session: SessionId) -> Result<SessionInfo, StoreError> {
        self.session(session)?
            .ok_or_else(|| StoreError::NoSession(session.to_string()))
    }
}

/// Parse and check a whole JSONL export: header first, then messages with increasing seqs.
fn parse_jsonl(
    input: impl BufRead,
    origin: &str,
) -> Result<(HeaderLine, Vec<StoredMessage>), StoreError> {
    let bad = |line: usize, reason: String| StoreError::BadImport {
        path: origin.to_string(),
        line,
        reason,
    };
    let mut header: Option<HeaderLine> = None;
    let mut messages: Vec<StoredMessage> = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| io_err(origin, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(n, format!("not JSON ({e})")))?;
        let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let version = value.get("v").and_then(|v| v.as_u64());
        if version != Some(u64::from(VERSION)) {
            return Err(bad(
                n,
                format!("expected \"v\": {VERSION} (a parlor JSONL export), found {version:?}"),
            ));
        }
        match (kind, &header) {
            (SESSION, None) => {
                let h: HeaderLine = serde_json::from_value(value)
                    .map_err(|e| bad(n, format!("bad session line: {e}")))?;
                check_name(&h.name).map_err(|e| bad(n, e.to_string()))?;
                header = Some(h);
            }
            (SESSION, Some(_)) => {
                return Err(bad(
                    n,
                    "a second session line; import one session per file".into(),
                ));
            }
            (MESSAGE, Some(_)) => {
                let m: MessageLine = serde_json::from_value(value)
                    .map_err(|e| bad(n, format!("bad message line: {e}")))?;
                if let Some(prev) = messages.last()
                    && m.seq <= prev.seq
                {
                    return Err(bad(
                        n,
                        format!("message seq {} does not follow seq {}", m.seq, prev.seq),
                    ));
                }
                messages.push(StoredMessage {
                    seq: m.seq,
                    role: m.role,
                    text: m.text,
                    time: m.time,
                    tokens: m.tokens,
                    interrupted: m.interrupted,
                    source: m.source,
                    stats: m.stats,
                    operator: m.operator,
                    rating: m.rating,
                });
            }
            (MESSAGE, None) => {
                return Err(bad(n, "a message before the session line".to_string()));
            }
            (other, _) => {
                return Err(bad(
                    n,
                    format!("unknown line type \"{other}\" (expected \"session\" or \"message\")"),
                ));
            }
        }
    }
    let header = header.ok_or_else(|| bad(1, "the file has no session line".to_string()))?;
    Ok((header, messages))
}

fn write_line(out: &mut impl Write, json: &[u8]) -> std::io::Result<()> {
    out.write_all(json)?;
    out.write_all(b"\n")
}

fn io_err(path: &str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_string(),
        source,
    }
}

/// `**User** · 2026-11-28 13:50:21 UTC`, with the source of non-model replies and an
/// interrupted mark.
fn markdown_heading(m: &StoredMessage) -> String {
    let who = match (m.role, &m.operator) {
        (Role::Assistant, Some(name)) => format!("{name} (operator)"),
        (Role::User, _) => "User".into(),
        (Role::Assistant, None) => "Bot".into(),
        (Role::System, _) => "System".into(),
    };
    let mut heading = format!("**{who}** · {}", format_time(m.time));
    if m.role == Role::Assistant && m.operator.is_none() {
        match &m.source {
            ReplySource::Model => {}
            ReplySource::Faq(id) => heading.push_str(&format!(" · FAQ `{id}`")),
            ReplySource::Rule(id) => heading.push_str(&format!(" · rule `{id}`")),
            ReplySource::Choices => heading.push_str(" · choices"),
            ReplySource::Unsure => heading.push_str(" · not sure"),
        }
    }
    if m.interrupted {
        heading.push_str(" · *interrupted*");
    }
    if let Some(r) = m.rating {
        heading.push_str(&format!(" · rated {}", r.emoji()));
    }
    heading
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => format!("{ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(HeaderLine, Vec<StoredMessage>), StoreError> {
        parse_jsonl(text.as_bytes(), "in.jsonl")
    }

    const HEAD: &str = r#"{"v":1,"type":"session","name":"s","persona":"p","model":"m","created":1,"updated":2,"message_count":0}"#;

    #[test]
    fn import_errors_name_the_line() {
        let cases = [
            ("", "in.jsonl:1: the file has no session line"),
            ("nope", "in.jsonl:1: not JSON"),
            (
                r#"{"v":2,"type":"session"}"#,
                "in.jsonl:1: expected \"v\": 1 (a parlor JSONL export), found Some(2)",
            ),
            (
                r#"{"v":1,"type":"message","seq":1,"role":"user","text":"x","time":1,"tokens":null,"interrupted":false,"source":{"kind":"model"},"stats":null}"#,
                "in.jsonl:1: a message before the session line",
            ),
            (
                r#"{"v":1,"type":"other"}"#,
                "in.jsonl:1: unknown line type \"other\"",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{err:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn sequences_must_increase() {
        let msg = |seq: u64| {
            format!(
                r#"{{"v":1,"type":"message","seq":{seq},"role":"user","text":"x","time":1,"tokens":null,"interrupted":false,"source":{{"kind":"model"}},"stats":null}}"#
            )
        };
        let text = format!("{HEAD}\n{}\n{}\n", msg(3), msg(3));
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(err, "in.jsonl:3: message seq 3 does not follow seq 3");
        let text = format!("{HEAD}\n{}\n\n{}\n", msg(3), msg(5));
        let (_, msgs) = parse(&text).unwrap();
        assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 5]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = HEAD.replace("\"created\"", "\"extra\":1,\"created\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn markdown_heading_marks_interrupted_and_sources() {
        let mut m = StoredMessage::new(Role::Assistant, "hi");
        m.time = 0;
        m.interrupted = true;
        m.source = ReplySource::Faq("reset".into());
        assert_eq!(
            markdown_heading(&m),
            "**Bot** · 1970-01-01 00:00:00 UTC · FAQ `reset` · *interrupted*"
        );
        let mut op = StoredMessage::new(Role::Assistant, "unplug it");
        op.time = 0;
        op.operator = Some("Anna".into());
        assert_eq!(
            markdown_heading(&op),
            "**Anna (operator)** · 1970-01-01 00:00:00 UTC"
        );
    }
}
