//! Messages of a session: append (seq assigned atomically with the session's counters),
//! update, truncate, and reads in order or newest first.

use super::records::{MessageRecord, decode, encode};
use super::{Store, StoreError, StoredMessage, keys, tx_session};
use crate::chat::SessionId;

impl Store {
    /// Append a message; returns it with its `seq`. Not flushed: call [`Store::flush`] before
    /// telling anyone it is saved.
    ///
    /// The seq comes from the session record and the message, the session's `message_count`
    /// and `updated` are written in one transaction: two threads appending to one session get
    /// distinct, increasing seqs, and a crash leaves either all of it or none.
    pub fn append_message(
        &self,
        session: SessionId,
        msg: StoredMessage,
    ) -> Result<StoredMessage, StoreError> {
        let value = encode(&MessageRecord::from_message(&msg));
        let seq = self.tx((&self.sessions, &self.messages), |(sessions, messages)| {
            let mut record = tx_session(sessions, session)?;
            let seq = record.next_seq;
            record.next_seq += 1;
            record.message_count += 1;
            record.updated = record.updated.max(msg.time);
            messages.insert(&keys::message_key(session, seq), value.as_slice())?;
            sessions.insert(&keys::session_key(session), encode(&record))?;
            Ok(seq)
        })?;
        Ok(StoredMessage { seq, ..msg })
    }

    /// Replace a stored message (same session and seq).
    pub fn update_message(
        &self,
        session: SessionId,
        msg: &StoredMessage,
    ) -> Result<(), StoreError> {
        let key = keys::message_key(session, msg.seq);
        let value = encode(&MessageRecord::from_message(msg));
        self.tx((&self.sessions, &self.messages), |(sessions, messages)| {
            let mut record = tx_session(sessions, session)?;
            if messages.get(key)?.is_none() {
                return sled::transaction::abort(StoreError::NoMessage {
                    session: session.to_string(),
                    seq: msg.seq,
                });
            }
            messages.insert(&key, value.as_slice())?;
            record.updated = record.updated.max(msg.time);
            sessions.insert(&keys::session_key(session), encode(&record))?;
            Ok(())
        })
    }

    /// Delete the messages of a session from `seq` on (for regenerate).
    pub fn truncate_messages(&self, session: SessionId, from_seq: u64) -> Result<(), StoreError> {
        if self.session(session)?.is_none() {
            return Err(StoreError::NoSession(session.to_string()));
        }
        let from = keys::message_key(session, from_seq);
        let to = keys::message_key(session, u64::MAX);
        let doomed = self
            .messages
            .range(from..=to)
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sled_err(e))?;
        // The keys were listed outside the transaction (sled transactions cannot scan); the
        // count is adjusted by what the transaction actually removed, so a racing append or
        // truncate cannot make `message_count` drift.
        self.tx((&self.sessions, &self.messages), |(sessions, messages)| {
            let mut record = tx_session(sessions, session)?;
            let mut removed = 0;
            for key in &doomed {
                if messages.remove(key)?.is_some() {
                    removed += 1;
                }
            }
            record.message_count = record.message_count.saturating_sub(removed);
            sessions.insert(&keys::session_key(session), encode(&record))?;
            Ok(())
        })
    }

    /// All messages of a session, in order.
    pub fn messages(&self, session: SessionId) -> Result<Vec<StoredMessage>, StoreError> {
        self.messages
            .scan_prefix(keys::message_prefix(session))
            .map(|item| self.decode_message(item))
            .collect()
    }

    /// The last `limit` messages of a session, in order. Reads only those: a reverse scan
    /// from the end of the session's key range, so the cost does not grow with the history.
    pub fn recent_messages(
        &self,
        session: SessionId,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = self
            .messages
            .scan_prefix(keys::message_prefix(session))
            .rev()
            .take(limit)
            .map(|item| self.decode_message(item))
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    fn decode_message(
        &self,
        item: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Result<StoredMessage, StoreError> {
        let (key, value) = item.map_err(|e| self.sled_err(e))?;
        let describe = || keys::describe_message_key(&key);
        let (_, seq) = keys::split_message_key(&key).ok_or_else(|| StoreError::Corrupt {
            key: describe(),
            reason: "the key is not a session id and sequence".to_string(),
        })?;
        let record: MessageRecord = decode(describe, &value)?;
        Ok(record.into_message(seq))
    }
}
