//! Messages of a session: append (seq assigned atomically with the session's counters),
//! update, truncate, and reads in order or newest first.

use super::{Store, StoreError, StoredMessage, keys, sealed, tx_session};
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
        let key = self.session_data_key(session)?;
        let seq = self.tx((&self.sessions, &self.messages), |(sessions, messages)| {
            let mut record = tx_session(&key, sessions, session)?;
            let seq = record.next_seq;
            record.next_seq += 1;
            record.message_count += 1;
            record.updated = record.updated.max(msg.time);
            let mkey = keys::message_key(session, seq);
            messages.insert(&mkey, sealed::message_value(&key, &mkey, &msg))?;
            sessions.insert(
                &keys::session_key(session),
                sealed::session_value(&key, session, &record),
            )?;
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
        let data_key = self.session_data_key(session)?;
        let key = keys::message_key(session, msg.seq);
        let value = sealed::message_value(&data_key, &key, msg);
        self.tx((&self.sessions, &self.messages), |(sessions, messages)| {
            let mut record = tx_session(&data_key, sessions, session)?;
            if messages.get(key)?.is_none() {
                return sled::transaction::abort(StoreError::NoMessage {
                    session: session.to_string(),
                    seq: msg.seq,
                });
            }
            messages.insert(&key, value.as_slice())?;
            record.updated = record.updated.max(msg.time);
            sessions.insert(
                &keys::session_key(session),
                sealed::session_value(&data_key, session, &record),
            )?;
            Ok(())
        })
    }

    /// Delete the messages of a session from `seq` on (for regenerate).
    pub fn truncate_messages(&self, session: SessionId, from_seq: u64) -> Result<(), StoreError> {
        let data_key = self.session_data_key(session)?;
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
            let mut record = tx_session(&data_key, sessions, session)?;
            let mut removed = 0;
            for key in &doomed {
                if messages.remove(key)?.is_some() {
                    removed += 1;
                }
            }
            record.message_count = record.message_count.saturating_sub(removed);
            sessions.insert(
                &keys::session_key(session),
                sealed::session_value(&data_key, session, &record),
            )?;
            Ok(())
        })
    }

    /// All messages of a session, in order.
    pub fn messages(&self, session: SessionId) -> Result<Vec<StoredMessage>, StoreError> {
        let key = self.keys.get(&sealed::session_owner(session));
        let mut opener = sealed::MessageOpener::new(key.as_ref());
        let mut out = Vec::new();
        for item in self.messages.scan_prefix(keys::message_prefix(session)) {
            out.extend(self.decode_message(&mut opener, item)?);
        }
        Ok(out)
    }

    /// The last `limit` messages of a session, in order. Reads only those: a reverse scan
    /// from the end of the session's key range, so the cost does not grow with the history.
    pub fn recent_messages(
        &self,
        session: SessionId,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let key = self.keys.get(&sealed::session_owner(session));
        let mut opener = sealed::MessageOpener::new(key.as_ref());
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self
            .messages
            .scan_prefix(keys::message_prefix(session))
            .rev()
            .take(limit)
        {
            out.extend(self.decode_message(&mut opener, item)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Decode one message of the session `opener` opens; `None` once erased.
    fn decode_message(
        &self,
        opener: &mut sealed::MessageOpener<'_>,
        item: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let (key, value) = item.map_err(|e| self.sled_err(e))?;
        let describe = || keys::describe_message_key(&key);
        let (_, seq) = keys::split_message_key(&key).ok_or_else(|| StoreError::Corrupt {
            key: describe(),
            reason: "the key is not a session id and sequence".to_string(),
        })?;
        let record = opener.open(&key, &value)?;
        Ok(record.map(|r| r.into_message(seq)))
    }
}
