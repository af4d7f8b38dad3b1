//! Server-sent events as OpenAI-compatible servers stream them: `data: {...}` lines, events
//! separated by blank lines, `: comment` lines, `data: [DONE]` at the end. Pure parsing, no IO.

use serde::Deserialize;

/// Splits a byte stream into the data of each event (multi-line data joined with `\n`).
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseParser {
    /// Feed bytes; returns the data of every event completed by them.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line_done(&line, &mut events);
        }
        events
    }

    /// The end of the stream: an event not yet closed by a blank line still counts.
    pub(crate) fn finish(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, &mut events);
        }
        events.extend(self.data.take());
        events
    }

    fn line_done(&mut self, line: &[u8], events: &mut Vec<String>) {
        if line.is_empty() {
            events.extend(self.data.take());
            return;
        }
        let line = String::from_utf8_lossy(line);
        let Some(value) = line.strip_prefix("data:") else {
            return; // `event:`, `id:`, `retry:` and `: comments` carry nothing we use
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match &mut self.data {
            Some(d) => {
                d.push('\n');
                d.push_str(value);
            }
            None => self.data = Some(value.to_string()),
        }
    }
}

/// One streamed chunk of `/chat/completions`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Some servers report a failure inside the stream.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

/// `choices[i]` of a chunk.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The new text of a chunk.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub content: Option<String>,
}

/// Token counts, sent by servers with (or without being asked by) `stream_options`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
}

/// The readable part of an error body: `{"error": {"message": ...}}`, `{"error": "..."}`,
/// `{"message": ...}`, or the text itself (shortened).
pub(crate) fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| json_message(&v));
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

pub(crate) fn json_message(v: &serde_json::Value) -> Option<String> {
    let e = v.get("error").unwrap_or(v);
    e.get("message")
        .and_then(|m| m.as_str())
        .or_else(|| e.as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_and_crlf_are_joined() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: {\"a\"").is_empty());
        assert_eq!(
            p.push(b":1}\r\n\r\n: keep-alive\n\ndata: [DONE]\n\n"),
            ["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn multi_line_data_and_an_unterminated_last_event() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: x\ndata: one\ndata: two").is_empty());
        assert_eq!(p.finish(), ["one\ntwo"]);
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad key","type":"auth"}}"#),
            "bad key"
        );
        assert_eq!(
            error_message(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message("  plain text \n"), "plain text");
        assert!(error_message(&"x".repeat(1000)).ends_with('…'));
    }
}
