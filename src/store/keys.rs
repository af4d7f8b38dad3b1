//! Key encoding of the sled trees. Fixed-width big-endian integers sort in numeric order, so
//! a prefix scan over one session id yields its messages in sequence order and `.rev()` the
//! newest first.

use crate::chat::SessionId;

/// Width of a message key: session id (u64) ++ sequence (u64).
pub(crate) const MESSAGE_KEY_LEN: usize = 16;

/// Key of a session record in the `sessions` tree.
pub(crate) fn session_key(id: SessionId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// The prefix shared by all message keys of one session.
pub(crate) fn message_prefix(id: SessionId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Key of one message in the `messages` tree.
pub(crate) fn message_key(id: SessionId, seq: u64) -> [u8; MESSAGE_KEY_LEN] {
    let mut key = [0u8; MESSAGE_KEY_LEN];
    key[..8].copy_from_slice(&id.0.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Split a message key back into session id and sequence; `None` if it has the wrong width.
pub(crate) fn split_message_key(key: &[u8]) -> Option<(SessionId, u64)> {
    if key.len() != MESSAGE_KEY_LEN {
        return None;
    }
    let id = u64::from_be_bytes(key[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(key[8..].try_into().ok()?);
    Some((SessionId(id), seq))
}

/// Decode a session key.
pub(crate) fn split_session_key(key: &[u8]) -> Option<SessionId> {
    Some(SessionId(u64::from_be_bytes(key.try_into().ok()?)))
}

/// Prefix of the name index in the `meta` tree.
pub(crate) const NAME_PREFIX: &[u8] = b"name#";

/// Key of a session name in the `meta` tree (the unique name index): a SHA-256 of the name, so
/// a name (which a person may have chosen) is not left readable in sled's log after an erase.
pub(crate) fn name_key(name: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut key = NAME_PREFIX.to_vec();
    key.extend_from_slice(&Sha256::digest(name.as_bytes())[..16]);
    key
}

/// Key of a session name in databases written before encryption (read by the migration).
pub(crate) const LEGACY_NAME_PREFIX: &[u8] = b"name/";

/// Key of the session id counter in the `meta` tree.
pub(crate) const NEXT_SESSION_ID: &[u8] = b"next_session_id";

/// Readable form of a message key for error messages.
pub(crate) fn describe_message_key(key: &[u8]) -> String {
    match split_message_key(key) {
        Some((id, seq)) => format!("messages/{id}/{seq}"),
        None => format!("messages/{}", hex::encode(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_sort_by_session_then_sequence() {
        let mut keys = [
            message_key(SessionId(2), 1),
            message_key(SessionId(1), 256),
            message_key(SessionId(1), 2),
            message_key(SessionId(1), u64::MAX),
            message_key(SessionId(256), 0),
            message_key(SessionId(1), 1),
        ];
        keys.sort_unstable();
        let decoded: Vec<_> = keys.iter().map(|k| split_message_key(k).unwrap()).collect();
        assert_eq!(
            decoded,
            vec![
                (SessionId(1), 1),
                (SessionId(1), 2),
                (SessionId(1), 256),
                (SessionId(1), u64::MAX),
                (SessionId(2), 1),
                (SessionId(256), 0),
            ]
        );
    }

    #[test]
    fn message_key_starts_with_its_session_prefix() {
        let key = message_key(SessionId(7), 9);
        assert!(key.starts_with(&message_prefix(SessionId(7))));
        assert!(!key.starts_with(&message_prefix(SessionId(8))));
    }

    #[test]
    fn keys_of_the_wrong_width_do_not_decode() {
        assert_eq!(split_message_key(&[0; 15]), None);
        assert_eq!(split_session_key(&[0; 9]), None);
        assert_eq!(describe_message_key(&[0xab, 0xcd]), "messages/abcd");
        assert_eq!(
            describe_message_key(&message_key(SessionId(3), 4)),
            "messages/3/4"
        );
    }
}
