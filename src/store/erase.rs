//! Erasure: a conversation's key leaves the keys file first (fsynced: from that moment no copy
//! of its records, live or left in sled's log, can be read), then its records are removed and
//! the database flushed. A crash between the two leaves records nobody can read; the next
//! [`Store::open`] sweeps them ([`Store::sweep`]). So an erase is all or nothing: before the
//! keys file is replaced the conversation is all there, after it none of it is.

use super::{Store, StoreError, keys, sealed};
use crate::chat::SessionId;
use serde::Serialize;

/// What an erase removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Conversations (sessions).
    pub sessions: usize,
    /// Their messages.
    pub messages: u64,
    /// Other records: per-conversation state, and a front end's per-chat records.
    pub records: usize,
    /// The engine's saved states of the conversations (files holding their token ids).
    pub saved_states: usize,
}

impl Erased {
    /// Add `other` to this.
    pub fn add(&mut self, other: &Erased) {
        self.sessions += other.sessions;
        self.messages += other.messages;
        self.records += other.records;
        self.saved_states += other.saved_states;
    }
}

/// `meta` key of the storage format (absent in databases written before encryption).
const FORMAT_KEY: &[u8] = b"format";
/// The format this code writes: conversation content sealed with per-conversation keys.
pub(crate) const FORMAT: &[u8] = b"sealed-1";

impl Store {
    /// Erase session `id` and everything of it: its key (so every old copy of its record,
    /// messages and state in sled's files is unreadable), then its records. Durable when this
    /// returns. Saved engine states are the engine's ([`crate::engine::Engine::forget`]).
    pub fn erase_session(&self, id: SessionId) -> Result<Erased, StoreError> {
        if self.session(id)?.is_none() {
            return Err(StoreError::NoSession(id.to_string()));
        }
        self.erase(&[id], &[])
    }

    /// Erase `sessions` (those that still exist) and the `kv` records of the front-end owners
    /// `owners` (`tg:<chat>`, `tui`) in one step: all their keys leave the keys file in one
    /// rewrite, so a crash leaves all of them or none. Durable when this returns.
    pub fn erase(&self, sessions: &[SessionId], owners: &[String]) -> Result<Erased, StoreError> {
        let mut live = Vec::new();
        for id in sessions {
            if let Some(info) = self.session(*id)? {
                live.push(info);
            }
        }
        let doomed: Vec<String> = live
            .iter()
            .map(|i| sealed::session_owner(i.id))
            .chain(owners.iter().cloned())
            .collect();
        self.keys.remove(&doomed)?;
        let mut erased = Erased::default();
        for info in &live {
            erased.add(&self.remove_session_records(info.id, Some(&info.name))?);
        }
        if !owners.is_empty() {
            erased.records += self.remove_kv_where(|o| owners.iter().any(|x| x == o))?;
        }
        self.flush()?;
        Ok(erased)
    }

    /// Erase every session not updated since `cutoff_ms` (unix milliseconds): retention.
    pub fn erase_idle(
        &self,
        cutoff_ms: i64,
    ) -> Result<Vec<(super::SessionInfo, Erased)>, StoreError> {
        let mut out = Vec::new();
        for info in self.sessions()? {
            if info.updated < cutoff_ms {
                match self.erase_session(info.id) {
                    Ok(e) => out.push((info, e)),
                    Err(StoreError::NoSession(_)) => {} // erased meanwhile
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// Remove the records of conversations whose key is gone (an erase cut short by a crash).
    pub(crate) fn sweep(&self) -> Result<(), StoreError> {
        let mut orphans = Vec::new();
        for item in &self.sessions {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            // Only sealed records without a key: anything else is damage, reported on read.
            if super::keyring::is_sealed(&value)
                && let Some(id) = keys::split_session_key(&key)
                && self.keys.get(&sealed::session_owner(id)).is_none()
            {
                orphans.push(id);
            }
        }
        let mut names = Vec::new();
        for item in self.meta.scan_prefix(keys::NAME_PREFIX) {
            let (name, id) = item.map_err(|e| self.sled_err(e))?;
            if let Some(id) = keys::split_session_key(&id)
                && self.keys.get(&sealed::session_owner(id)).is_none()
            {
                names.push(name);
            }
        }
        for id in &orphans {
            self.remove_session_records(*id, None)?;
        }
        for name in names {
            self.meta.remove(name).map_err(|e| self.sled_err(e))?;
        }
        let keys = &self.keys;
        let stale = self.remove_kv_where(|o| keys.get(o).is_none())?;
        if !orphans.is_empty() || stale > 0 {
            tracing::info!(
                sessions = orphans.len(),
                records = stale,
                "removed the records of conversations erased before a crash"
            );
            self.flush()?;
        }
        Ok(())
    }

    /// Remove session `id`'s record, name, messages and `kv` state (its key is already gone).
    fn remove_session_records(
        &self,
        id: SessionId,
        name: Option<&str>,
    ) -> Result<Erased, StoreError> {
        self.sessions
            .remove(keys::session_key(id))
            .map_err(|e| self.sled_err(e))?;
        if let Some(name) = name {
            self.meta
                .remove(keys::name_key(name))
                .map_err(|e| self.sled_err(e))?;
        }
        let mut batch = sled::Batch::default();
        let mut messages = 0;
        for key in self.messages.scan_prefix(keys::message_prefix(id)).keys() {
            batch.remove(key.map_err(|e| self.sled_err(e))?);
            messages += 1;
        }
        self.messages
            .apply_batch(batch)
            .map_err(|e| self.sled_err(e))?;
        let prefix = format!("session/{}/", id.0);
        let records = self.kv_remove_range(&prefix, &format!("session/{}0", id.0))?;
        Ok(Erased {
            sessions: 1,
            messages,
            records,
            saved_states: 0,
        })
    }

    /// Remove the `kv` records whose owner matches `doomed`; returns how many.
    fn remove_kv_where(&self, doomed: impl Fn(&str) -> bool) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for key in self.kv.iter().keys() {
            let key = key.map_err(|e| self.sled_err(e))?;
            let owner = std::str::from_utf8(&key).ok().and_then(sealed::kv_owner);
            if owner.is_some_and(|o| doomed(&o)) {
                batch.remove(key);
                n += 1;
            }
        }
        self.kv.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        Ok(n)
    }

    /// The storage format recorded in `meta` (`None`: written before encryption, or new).
    pub(crate) fn format(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self.meta.get(FORMAT_KEY).map_err(|e| self.sled_err(e))?;
        Ok(v.map(|v| v.to_vec()))
    }

    /// Record the current format (a new database, or the end of a migration).
    pub(crate) fn set_format(&self) -> Result<(), StoreError> {
        self.meta
            .insert(FORMAT_KEY, FORMAT)
            .map_err(|e| self.sled_err(e))?;
        self.flush()
    }

    /// Whether the database holds nothing at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.messages.is_empty()
            && self.meta.is_empty()
            && self.kv.is_empty()
    }
}
