//! The compact encoding of a message record, written inside its seal since AES-256-GCM: the
//! fields every message has in a fixed binary layout, the optional and evolving ones (turn
//! stats, operator) as a JSON tail. Reading the last 50 messages decodes 50 records per turn;
//! this layout decodes in a fraction of the JSON record's time, which pays for the AEAD (issue
//! #16: reads within 10% of the plain JSON records before encryption).
//!
//! Layout (integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | [`MARKER`] (a JSON record starts with `{`) |
//! | 1 | role: 0 system, 1 user, 2 assistant |
//! | 1 | flags: 1 interrupted, 2 tokens follow, 4 rated 👍, 8 rated 👎 |
//! | 8 | time (ms since the epoch) |
//! | 4 | tokens, when flagged |
//! | 1 | source: 0 model, 1 faq, 2 rule, 3 choices, 4 unsure |
//! | 4 + n | the FAQ entry or rule id, for faq and rule |
//! | 4 + n | text (UTF-8) |
//! | rest | JSON object `{"stats":…,"operator":…}`, or nothing when both are absent |

use super::StoredMessage;
use super::records::{MessageRecord, VERSION};
use crate::chat::{Rating, ReplySource, Role, TurnStats};

/// First byte of a compact message record: neither `{` (a JSON record) nor a seal's first
/// byte (a compact record only ever exists inside a seal, but a byte of its own keeps the two
/// apart when reading damaged data).
pub(crate) const MARKER: u8 = 0xC1;

const INTERRUPTED: u8 = 1;
const TOKENS: u8 = 2;
const RATED_UP: u8 = 4;
const RATED_DOWN: u8 = 8;

/// The optional fields, kept as JSON so they can grow without a new layout.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Tail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stats: Option<TurnStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
}

/// `msg` in the compact layout.
pub(crate) fn encode(msg: &StoredMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + msg.text.len());
    out.push(MARKER);
    out.push(match msg.role {
        Role::System => 0,
        Role::User => 1,
        Role::Assistant => 2,
    });
    let mut flags = 0;
    if msg.interrupted {
        flags |= INTERRUPTED;
    }
    if msg.tokens.is_some() {
        flags |= TOKENS;
    }
    flags |= match msg.rating {
        Some(Rating::Up) => RATED_UP,
        Some(Rating::Down) => RATED_DOWN,
        None => 0,
    };
    out.push(flags);
    out.extend_from_slice(&msg.time.to_le_bytes());
    if let Some(t) = msg.tokens {
        out.extend_from_slice(&t.to_le_bytes());
    }
    match &msg.source {
        ReplySource::Model => out.push(0),
        ReplySource::Faq(id) => {
            out.push(1);
            put_str(&mut out, id);
        }
        ReplySource::Rule(id) => {
            out.push(2);
            put_str(&mut out, id);
        }
        ReplySource::Choices => out.push(3),
        ReplySource::Unsure => out.push(4),
    }
    put_str(&mut out, &msg.text);
    if msg.stats.is_some() || msg.operator.is_some() {
        let tail = Tail {
            stats: msg.stats.clone(),
            operator: msg.operator.clone(),
        };
        out.extend_from_slice(&super::records::encode(&tail));
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Message texts are capped far below 4 GiB (the turn refuses long input).
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// Decode a compact record; the error says what is wrong with it.
pub(crate) fn decode(bytes: &[u8]) -> Result<MessageRecord, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.u8()? != MARKER {
        return Err("not a compact message record".into());
    }
    let role = match r.u8()? {
        0 => Role::System,
        1 => Role::User,
        2 => Role::Assistant,
        n => return Err(format!("unknown role {n}")),
    };
    let flags = r.u8()?;
    if flags & !(INTERRUPTED | TOKENS | RATED_UP | RATED_DOWN) != 0
        || flags & (RATED_UP | RATED_DOWN) == RATED_UP | RATED_DOWN
    {
        return Err(format!("unknown flags {flags:#x}"));
    }
    let time = i64::from_le_bytes(r.array()?);
    let tokens = if flags & TOKENS != 0 {
        Some(u32::from_le_bytes(r.array()?))
    } else {
        None
    };
    let source = match r.u8()? {
        0 => ReplySource::Model,
        1 => ReplySource::Faq(r.string()?),
        2 => ReplySource::Rule(r.string()?),
        3 => ReplySource::Choices,
        4 => ReplySource::Unsure,
        n => return Err(format!("unknown reply source {n}")),
    };
    let text = r.string()?;
    let rest = &bytes[r.at..];
    let tail: Tail = if rest.is_empty() {
        Tail::default()
    } else {
        serde_json::from_slice(rest).map_err(|e| format!("unreadable stats ({e})"))?
    };
    Ok(MessageRecord {
        v: VERSION,
        role,
        text,
        time,
        tokens,
        interrupted: flags & INTERRUPTED != 0,
        source,
        stats: tail.stats,
        operator: tail.operator,
        rating: match flags & (RATED_UP | RATED_DOWN) {
            RATED_UP => Some(Rating::Up),
            RATED_DOWN => Some(Rating::Down),
            _ => None,
        },
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("cut short at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn string(&mut self) -> Result<String, String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        let at = self.at;
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|e| format!("text at byte {at} is not UTF-8 ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::FinishReason;

    fn round_trip(m: &StoredMessage) -> StoredMessage {
        decode(&encode(m)).unwrap().into_message(m.seq)
    }

    #[test]
    fn every_field_round_trips() {
        let mut m = StoredMessage::new(Role::Assistant, "hé\n\"quoted\" 👍 \u{1b}[31m");
        assert_eq!(round_trip(&m), m);
        m.interrupted = true;
        m.tokens = Some(42);
        m.rating = Some(Rating::Down);
        m.source = ReplySource::Faq("returns".into());
        m.operator = Some("Ana".into());
        m.stats = Some(TurnStats {
            prompt_tokens: 900,
            finish: FinishReason::MaxTokens,
            injected: vec!["faq:returns".into()],
            ..TurnStats::default()
        });
        assert_eq!(round_trip(&m), m);
        for source in [
            ReplySource::Model,
            ReplySource::Rule("hello".into()),
            ReplySource::Choices,
            ReplySource::Unsure,
        ] {
            m.source = source;
            m.rating = Some(Rating::Up);
            m.stats = None;
            assert_eq!(round_trip(&m), m);
        }
        for role in [Role::System, Role::User] {
            let m = StoredMessage::new(role, "");
            assert_eq!(round_trip(&m), m);
        }
    }

    #[test]
    fn damaged_records_are_errors_never_panics() {
        let mut m = StoredMessage::new(Role::User, "my router");
        m.tokens = Some(3);
        m.source = ReplySource::Faq("x".into());
        let good = encode(&m);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[1] = 9;
        assert_eq!(decode(&bad).unwrap_err(), "unknown role 9");
        let mut bad = good.clone();
        bad[2] |= RATED_UP | RATED_DOWN;
        assert!(decode(&bad).unwrap_err().starts_with("unknown flags"));
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = 0xff;
        assert!(decode(&bad).unwrap_err().contains("not UTF-8"));
        let mut bad = good;
        bad.extend_from_slice(b"{not json");
        assert!(decode(&bad).unwrap_err().starts_with("unreadable stats"));
        assert!(decode(b"{\"v\":1}").is_err());
    }
}
