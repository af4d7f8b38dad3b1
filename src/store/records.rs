//! The values stored in sled: self-describing JSON with a schema version (`{"v":1,...}`), so
//! the format can evolve; messages are written in a compact layout since ([`super::compact`]),
//! and their JSON records are still read. Decoding never panics: anything unreadable is
//! [`StoreError::Corrupt`].

use super::{SessionInfo, StoreError, StoredMessage};
use crate::chat::{ReplySource, Role, SessionId, TurnStats};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The schema version this code writes and reads.
pub(crate) const VERSION: u32 = 1;

/// A session in the `sessions` tree (the id is the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub v: u32,
    pub name: String,
    pub persona: String,
    pub model: String,
    pub created: i64,
    pub updated: i64,
    pub message_count: u64,
    /// Sequence number the next appended message gets. Never reused, even after a truncate,
    /// so a seq names one message for good.
    pub next_seq: u64,
}

impl SessionRecord {
    pub fn info(&self, id: SessionId) -> SessionInfo {
        SessionInfo {
            id,
            name: self.name.clone(),
            persona: self.persona.clone(),
            model: self.model.clone(),
            created: self.created,
            updated: self.updated,
            message_count: self.message_count,
        }
    }
}

/// A message in the `messages` tree (session id and seq are the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub v: u32,
    pub role: Role,
    pub text: String,
    pub time: i64,
    #[serde(default)]
    pub tokens: Option<u32>,
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub source: ReplySource,
    #[serde(default)]
    pub stats: Option<TurnStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<crate::chat::Rating>,
}

impl MessageRecord {
    /// The JSON record of `m`, as parlor wrote messages before the compact layout
    /// ([`super::compact`]); still read, written only by tests of older databases.
    #[cfg(test)]
    pub fn from_message(m: &StoredMessage) -> Self {
        Self {
            v: VERSION,
            role: m.role,
            text: m.text.clone(),
            time: m.time,
            tokens: m.tokens,
            interrupted: m.interrupted,
            source: m.source.clone(),
            stats: m.stats.clone(),
            operator: m.operator.clone(),
            rating: m.rating,
        }
    }

    pub fn into_message(self, seq: u64) -> StoredMessage {
        StoredMessage {
            seq,
            role: self.role,
            text: self.text,
            time: self.time,
            tokens: self.tokens,
            interrupted: self.interrupted,
            source: self.source,
            stats: self.stats,
            operator: self.operator,
            rating: self.rating,
        }
    }
}

/// A `kv` value as written.
#[derive(Serialize)]
pub(crate) struct KvOut<'a, T> {
    pub v: u32,
    pub value: &'a T,
}

/// A `kv` value as read.
#[derive(Deserialize)]
pub(crate) struct KvIn<T> {
    pub v: u32,
    pub value: T,
}

/// Just the version of a record, to explain a record this code cannot read.
#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Anything with a schema version field.
pub(crate) trait Versioned {
    fn version(&self) -> u32;
}

impl Versioned for SessionRecord {
    fn version(&self) -> u32 {
        self.v
    }
}
impl Versioned for MessageRecord {
    fn version(&self) -> u32 {
        self.v
    }
}
impl<T> Versioned for KvIn<T> {
    fn version(&self) -> u32 {
        self.v
    }
}

/// Encode a record (serializing these types cannot fail: string keys, no maps with other keys).
pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_else(|e| {
        // Only reachable with a non-serializable value, a programming error.
        unreachable!("serializing a store record failed: {e}")
    })
}

/// Decode a record, checking its version. `key` names the record in the error.
pub(crate) fn decode<T: DeserializeOwned + Versioned>(
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |key: String, reason: String| StoreError::Corrupt { key, reason };
    match serde_json::from_slice::<T>(bytes) {
        Ok(record) if record.version() == VERSION => Ok(record),
        Ok(record) => Err(corrupt(key(), unsupported(record.version()))),
        Err(e) => match serde_json::from_slice::<VersionOnly>(bytes) {
            Ok(head) if head.v != VERSION => Err(corrupt(key(), unsupported(head.v))),
            _ => Err(corrupt(key(), format!("unreadable value ({e})"))),
        },
    }
}

fn unsupported(v: u32) -> String {
    format!(
        "schema version {v} is not supported (this parlor reads version {VERSION}); use the parlor that wrote it, or restore from a JSONL export"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        "messages/1/2".to_string()
    }

    #[test]
    fn a_message_record_round_trips() {
        let mut m = StoredMessage::new(Role::Assistant, "hé\n\"quoted\"");
        m.interrupted = true;
        m.source = ReplySource::Faq("reset".into());
        m.stats = Some(TurnStats {
            ttft_ms: 12.345678901234567,
            ..TurnStats::default()
        });
        let bytes = encode(&MessageRecord::from_message(&m));
        assert!(bytes.starts_with(b"{\"v\":1,"));
        let back: MessageRecord = decode(key, &bytes).unwrap();
        let mut expected = m.clone();
        expected.seq = 9;
        assert_eq!(back.into_message(9), expected);
    }

    #[test]
    fn an_operator_is_stored_and_older_records_read_as_the_bots() {
        let old = br#"{"v":1,"role":"assistant","text":"hi","time":5,"source":{"kind":"model"}}"#;
        let back: MessageRecord = decode(key, old).unwrap();
        assert_eq!(back.operator, None);
        let bot = encode(&MessageRecord::from_message(&StoredMessage::new(
            Role::Assistant,
            "x",
        )));
        assert!(
            !String::from_utf8_lossy(&bot).contains("operator"),
            "the bot's records are written as before"
        );
        let mut m = StoredMessage::new(Role::Assistant, "Please unplug it.");
        m.operator = Some("Anna".into());
        let back: MessageRecord = decode(key, &encode(&MessageRecord::from_message(&m))).unwrap();
        assert_eq!(back.into_message(0), m);
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for bytes in [&b"\xff\xfe"[..], b"", b"{", b"[]", b"{\"v\":1}", b"null"] {
            let err = decode::<MessageRecord>(key, bytes).unwrap_err();
            match err {
                StoreError::Corrupt { key, reason } => {
                    assert_eq!(key, "messages/1/2");
                    assert!(reason.starts_with("unreadable value"), "{reason}");
                }
                other => panic!("expected Corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_newer_version_is_named_in_the_error() {
        let err = decode::<MessageRecord>(key, br#"{"v":2,"role":"user","text":"x","time":1}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("schema version 2 is not supported"),
            "{err}"
        );
        let err = decode::<MessageRecord>(key, br#"{"v":3,"other":"shape"}"#).unwrap_err();
        assert!(err.to_string().contains("schema version 3"), "{err}");
    }
}
