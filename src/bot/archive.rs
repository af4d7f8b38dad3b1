//! [`Archive`]: a bot's stored conversations without a model, the same door as the sessions API
//! of [`Bot`](super::Bot) for the commands that load no engine (`parlor history`, `parlor
//! report`, `history prune`). Erasing here erases what a running bot's [`Bot::forget_sessions`]
//! erases, less the engine's memory (no engine runs; the database lock keeps a running bot out
//! meanwhile).
//!
//! [`Bot::forget_sessions`]: super::Bot::forget_sessions

use super::BotError;
use super::sessions::ExportFormat;
use crate::chat::SessionId;
use crate::store::{Erased, SessionInfo, Store, StoredMessage};
use std::io::Write;
use std::path::Path;

/// The conversations in one bot's storage directory, opened without a model.
pub struct Archive {
    store: Store,
}

impl Archive {
    /// The history in `dir`, or `None` when nothing was ever stored there (nothing is created).
    pub fn open(dir: &Path) -> Result<Option<Archive>, BotError> {
        if !Store::exists(dir) {
            return Ok(None);
        }
        Ok(Some(Archive {
            store: Store::open(dir)?,
        }))
    }

    /// The history in `dir`, created empty when missing (for imports).
    pub fn create(dir: &Path) -> Result<Archive, BotError> {
        Ok(Archive {
            store: Store::open(dir)?,
        })
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Every session, most recently updated first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>, BotError> {
        Ok(self.store.sessions()?)
    }

    /// The session named `name` (or with that id), if it exists.
    pub fn find_session(&self, name: &str) -> Result<Option<SessionInfo>, BotError> {
        Ok(self.store.find_session(name)?)
    }

    /// Every message of session `id`, oldest first.
    pub fn transcript(&self, id: SessionId) -> Result<Vec<StoredMessage>, BotError> {
        Ok(self.store.messages(id)?)
    }

    /// Every conversation updated at or after `since` (unix milliseconds; all when `None`),
    /// as (session name, its messages from `since` on), most recently updated first.
    pub fn conversations_since(
        &self,
        since: Option<i64>,
    ) -> Result<Vec<(String, Vec<StoredMessage>)>, BotError> {
        let mut out = Vec::new();
        for s in self.store.sessions()? {
            if since.is_some_and(|t| s.updated < t) {
                continue;
            }
            let msgs = self
                .store
                .messages(s.id)?
                .into_iter()
                .filter(|m| since.is_none_or(|t| m.time >= t))
                .collect();
            out.push((s.name, msgs));
        }
        Ok(out)
    }

    /// Write session `id` to `out` as `format`.
    pub fn export(
        &self,
        id: SessionId,
        format: ExportFormat,
        out: &mut impl Write,
    ) -> Result<(), BotError> {
        match format {
            ExportFormat::Markdown => self.store.export_markdown(id, out)?,
            ExportFormat::Jsonl => self.store.export_jsonl(id, out)?,
        }
        Ok(())
    }

    /// Import a JSONL export as a new session (renamed NAME-2... if the name is taken);
    /// durable when this returns.
    pub fn import_jsonl(&self, path: &Path) -> Result<SessionInfo, BotError> {
        let info = self.store.import_jsonl(path)?;
        self.store.flush()?;
        Ok(info)
    }

    /// Erase session `id`: its key and records (every older copy in the database files
    /// becomes unreadable) and the engine states saved for it. Durable when this returns.
    pub fn erase(&self, id: SessionId) -> Result<Erased, BotError> {
        let mut erased = self.store.erase_session(id)?;
        erased.saved_states += crate::engine::llama::erase_saved_states(self.store.dir(), id);
        Ok(erased)
    }

    /// Erase every session last updated before `cutoff_ms` (unix milliseconds), oldest
    /// included; returns each erased session with what went.
    pub fn erase_idle(&self, cutoff_ms: i64) -> Result<Vec<(SessionInfo, Erased)>, BotError> {
        let mut out = Vec::new();
        for info in self.store.sessions()? {
            if info.updated >= cutoff_ms {
                continue;
            }
            let erased = self.erase(info.id)?;
            out.push((info, erased));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;

    #[test]
    fn a_missing_history_is_none_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("storage/bot");
        assert!(Archive::open(&at).unwrap().is_none());
        assert!(!at.exists());
    }

    #[test]
    fn reads_exports_and_erases_what_a_bot_stored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let old = store.create_session("old", "assistant", "m").unwrap();
            store
                .append_message(old.id, StoredMessage::new(Role::User, "hello"))
                .unwrap();
            store.flush().unwrap();
        }
        let archive = Archive::open(dir.path()).unwrap().expect("history");
        let info = archive.find_session("old").unwrap().expect("session");
        assert_eq!(archive.transcript(info.id).unwrap()[0].text, "hello");
        let mut md = Vec::new();
        archive
            .export(info.id, ExportFormat::Markdown, &mut md)
            .unwrap();
        assert!(String::from_utf8(md).unwrap().contains("hello"));
        let all = archive.conversations_since(None).unwrap();
        assert_eq!(all.len(), 1);
        assert!(
            archive
                .conversations_since(Some(i64::MAX))
                .unwrap()
                .is_empty()
        );
        let gone = archive.erase_idle(i64::MAX).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].1.messages, 1);
        assert!(archive.sessions().unwrap().is_empty());
    }
}
