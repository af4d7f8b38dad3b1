//! Which key seals which record, and the sealing of each record kind. The authenticated data
//! of every value is its tree and key, so a sealed value cannot be moved to another record.
//!
//! Owners: a session is `s<id>` (its record, its messages, its `session/<id>/...` state in
//! `kv`); a Telegram chat's own state (`tg/chat|pending|answering|handoff|forget|undelivered/<chat>...`) is
//! `tg:<chat>`; the terminal's input history is `tui`. Other `kv` values (update offsets, ids
//! seen, relay posts, the last session shown) hold no conversation text and stay plain.
//!
//! Values written before encryption (plain JSON, first byte `{`) are still read: the one-time
//! migration reads them ([`super::migrate`]).

use super::compact;
use super::keyring::{self, DataKey, Opener};
use super::records::{MessageRecord, SessionRecord, decode, encode};
use super::{StoreError, StoredMessage};
use crate::chat::SessionId;
use std::borrow::Cow;

/// The owner of a session's records.
pub(crate) fn session_owner(id: SessionId) -> String {
    format!("s{}", id.0)
}

/// Telegram `kv` key kinds owned by one chat (the chat id follows the prefix).
const CHAT_KINDS: &[&str] = &[
    "tg/chat/",
    "tg/pending/",
    "tg/answering/",
    "tg/handoff/",
    "tg/forget/",
    "tg/undelivered/",
];

/// The terminal's input history (typed lines, recalled with Up).
const TUI_HISTORY: &str = "tui.input_history";

/// The owner of a `kv` key, if its value holds conversation content.
pub(crate) fn kv_owner(key: &str) -> Option<String> {
    if let Some(rest) = key.strip_prefix("session/") {
        let id: u64 = rest.split('/').next()?.parse().ok()?;
        return Some(session_owner(SessionId(id)));
    }
    if key == TUI_HISTORY {
        return Some("tui".to_string());
    }
    CHAT_KINDS.iter().find_map(|kind| {
        let chat: i64 = key.strip_prefix(kind)?.split('/').next()?.parse().ok()?;
        Some(format!("tg:{chat}"))
    })
}

/// Whether `owner` is a session's (its key is made with the session, never on demand).
pub(crate) fn is_session_owner(owner: &str) -> bool {
    owner
        .strip_prefix('s')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The authenticated data of `tree`/`key`: where the value is stored.
fn aad(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(tree.len() + 1 + key.len());
    aad_into(&mut a, tree, key);
    a
}

/// [`aad`] written into `out` (cleared first), to reuse one buffer across many values.
fn aad_into(out: &mut Vec<u8>, tree: &str, key: &[u8]) {
    out.clear();
    out.extend_from_slice(tree.as_bytes());
    out.push(b'/');
    out.extend_from_slice(key);
}

/// Open `value` of `tree`/`key`: plain JSON as it is, sealed values with `data_key`.
/// `Ok(None)` when the value is sealed and its key is gone (erased).
pub(crate) fn open_value<'a>(
    data_key: Option<&DataKey>,
    tree: &str,
    key: &[u8],
    value: &'a [u8],
    describe: impl FnOnce() -> String,
) -> Result<Option<Cow<'a, [u8]>>, StoreError> {
    if !keyring::is_sealed(value) {
        return Ok(Some(Cow::Borrowed(value)));
    }
    let Some(k) = data_key else { return Ok(None) };
    keyring::open(k, &aad(tree, key), value)
        .map(|v| Some(Cow::Owned(v)))
        .ok_or_else(|| fails_check(describe()))
}

fn fails_check(key: String) -> StoreError {
    StoreError::Corrupt {
        key,
        reason: "the sealed value fails its check (damaged, or moved from another record)".into(),
    }
}

/// Seal `plain` for `tree`/`key`.
pub(crate) fn seal_value(data_key: &DataKey, tree: &str, key: &[u8], plain: &[u8]) -> Vec<u8> {
    keyring::seal(data_key, &aad(tree, key), plain)
}

/// A session record as stored.
pub(crate) fn session_value(data_key: &DataKey, id: SessionId, record: &SessionRecord) -> Vec<u8> {
    let key = super::keys::session_key(id);
    seal_value(data_key, "sessions", &key, &encode(record))
}

/// Decode a stored session record; `None` once erased.
pub(crate) fn open_session(
    data_key: Option<&DataKey>,
    id: SessionId,
    value: &[u8],
) -> Result<Option<SessionRecord>, StoreError> {
    let key = super::keys::session_key(id);
    let describe = || format!("sessions/{id}");
    match open_value(data_key, "sessions", &key, value, describe)? {
        Some(plain) => decode(describe, &plain).map(Some),
        None => Ok(None),
    }
}

/// A message as stored under `key` (a message key): the compact record, sealed.
pub(crate) fn message_value(data_key: &DataKey, key: &[u8], msg: &StoredMessage) -> Vec<u8> {
    seal_value(data_key, "messages", key, &compact::encode(msg))
}

/// Opens the messages of one session: one key schedule and one buffer for all of them.
pub(crate) struct MessageOpener<'k> {
    opener: Option<Opener<'k>>,
    aad: Vec<u8>,
}

impl<'k> MessageOpener<'k> {
    /// For a session whose key is `data_key` (`None`: erased).
    pub fn new(data_key: Option<&'k DataKey>) -> Self {
        Self {
            opener: data_key.map(Opener::new),
            aad: Vec::with_capacity(32),
        }
    }

    /// Decode the message stored under `key`; `None` once erased.
    pub fn open(&mut self, key: &[u8], value: &[u8]) -> Result<Option<MessageRecord>, StoreError> {
        let describe = || super::keys::describe_message_key(key);
        if !keyring::is_sealed(value) {
            return decode_message(describe, value).map(Some);
        }
        let Some(opener) = self.opener.as_mut() else {
            return Ok(None);
        };
        aad_into(&mut self.aad, "messages", key);
        let plain = opener
            .open(&self.aad, value)
            .ok_or_else(|| fails_check(describe()))?;
        decode_message(describe, plain).map(Some)
    }
}

/// Decode a message record: compact (written since AES-256-GCM) or JSON (before).
fn decode_message(
    describe: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<MessageRecord, StoreError> {
    if bytes.first() == Some(&compact::MARKER) {
        return compact::decode(bytes).map_err(|reason| StoreError::Corrupt {
            key: describe(),
            reason,
        });
    }
    decode(describe, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_keys_map_to_their_owners() {
        let cases = [
            ("session/42/script", Some("s42")),
            ("tg/chat/-100123", Some("tg:-100123")),
            ("tg/pending/7/00000000000000000001", Some("tg:7")),
            ("tg/answering/7", Some("tg:7")),
            ("tg/handoff/7", Some("tg:7")),
            ("tg/forget/7", Some("tg:7")),
            ("tg/undelivered/-5/00000000000000000001-0000", Some("tg:-5")),
            ("tui.input_history", Some("tui")),
            ("tg/offset", None),
            ("tg/seen/00000000000000000001", None),
            ("tg/relay/5", None),
            ("tui.last_session", None),
            ("session/x/script", None),
        ];
        for (key, owner) in cases {
            assert_eq!(kv_owner(key).as_deref(), owner, "{key}");
        }
        assert!(is_session_owner("s42"));
        assert!(!is_session_owner("s"));
        assert!(!is_session_owner("tg:42"));
    }

    #[test]
    fn messages_open_in_every_form_parlor_has_written() {
        use crate::chat::{ReplySource, Role};
        let key = [3u8; 32];
        let mkey = super::super::keys::message_key(SessionId(4), 9);
        let mut m = StoredMessage::new(Role::Assistant, "Returns within 30 days.");
        m.source = ReplySource::Faq("returns".into());
        m.tokens = Some(7);
        let json = encode(&MessageRecord::from_message(&m));
        let aad = aad("messages", &mkey);
        let forms = [
            // Before encryption: plain JSON.
            json.clone(),
            // Sealed with ChaCha20-Poly1305, JSON inside.
            keyring::seal_chacha(&key, &aad, &json),
            // Now: AES-256-GCM, compact inside.
            message_value(&key, &mkey, &m),
        ];
        let mut opener = MessageOpener::new(Some(&key));
        for value in &forms {
            let back = opener.open(&mkey, value).unwrap().unwrap();
            assert_eq!(back.into_message(m.seq), m);
        }
        assert_eq!(forms[2][0], 0x02);
        // Erased key: sealed forms are gone, never an error.
        let mut erased = MessageOpener::new(None);
        assert!(erased.open(&mkey, &forms[1]).unwrap().is_none());
        assert!(erased.open(&mkey, &forms[2]).unwrap().is_none());
        // Moved to another message: refused, naming the record.
        let other = super::super::keys::message_key(SessionId(4), 10);
        let err = opener.open(&other, &forms[2]).unwrap_err().to_string();
        assert!(err.contains("fails its check"), "{err}");
    }
}
