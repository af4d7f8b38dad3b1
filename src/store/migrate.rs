//! One-time migration of a database written before conversations were encrypted: every record
//! is copied, sealed with a new per-conversation key, into a new sled directory
//! (`sled.migrating`); the keys are written (fsynced); then the directories are swapped
//! (`sled` -> `sled.legacy`, `sled.migrating` -> `sled`) and the old one, which holds the
//! conversations in plain text, is deleted. Until the swap the old database is untouched (the
//! backup), so a crash at any point loses nothing: [`recover`] finishes or undoes the swap, and
//! an unfinished copy is made again. Messages left behind by the old, non-atomic delete (under
//! a session that no longer exists) are not copied.

use super::keyring::{DataKey, KeyRing};
use super::{SLED_DIR, StoreError, keys, open_sled, sealed};
use rand::RngCore;
use std::collections::BTreeMap;
use std::path::Path;

const MIGRATING: &str = "sled.migrating";
const LEGACY: &str = "sled.legacy";

/// Finish or undo a swap cut short by a crash, and drop an unfinished copy.
pub(super) fn recover(dir: &Path) -> Result<(), StoreError> {
    let (live, migrating, legacy) = (dir.join(SLED_DIR), dir.join(MIGRATING), dir.join(LEGACY));
    let io = |path: &Path, e| io_err(path, e);
    if legacy.exists() {
        if !live.exists() {
            // Crashed between the two renames: the copy is complete (it is only renamed after
            // it was flushed and the keys written); without it, put the old one back.
            let from = if migrating.exists() {
                &migrating
            } else {
                &legacy
            };
            std::fs::rename(from, &live).map_err(|e| io(from, e))?;
            sync_dir(dir)?;
        }
        if legacy.exists() {
            std::fs::remove_dir_all(&legacy).map_err(|e| io(&legacy, e))?;
        }
    }
    if migrating.exists() {
        std::fs::remove_dir_all(&migrating).map_err(|e| io(&migrating, e))?;
    }
    Ok(())
}

/// Copy the plain database of `dir` into a sealed one and swap them.
pub(super) fn migrate(dir: &Path) -> Result<(), StoreError> {
    let (live, migrating, legacy) = (dir.join(SLED_DIR), dir.join(MIGRATING), dir.join(LEGACY));
    let mut keys: BTreeMap<String, DataKey> = BTreeMap::new();
    let (sessions, messages) = {
        let old = open_sled(&live, dir)?;
        let new = open_sled(&migrating, dir)?;
        let counts = copy(dir, &old, &new, &mut keys)?;
        new.flush().map_err(|e| super::map_sled_error(dir, e))?;
        counts
    };
    KeyRing::load(dir)?.replace_all(keys)?;
    std::fs::rename(&live, &legacy).map_err(|e| io_err(&live, e))?;
    std::fs::rename(&migrating, &live).map_err(|e| io_err(&migrating, e))?;
    sync_dir(dir)?;
    std::fs::remove_dir_all(&legacy).map_err(|e| io_err(&legacy, e))?;
    // The new database counts its flushes afresh.
    let _ = std::fs::remove_file(dir.join(super::mark::FILE));
    tracing::info!(
        dir = %dir.display(),
        sessions,
        messages,
        "encrypted the conversations of a database written by an older parlor (one-time migration; the old files are deleted)"
    );
    Ok(())
}

/// Copy every record, sealing conversation content; returns (sessions, messages) copied.
fn copy(
    dir: &Path,
    old: &sled::Db,
    new: &sled::Db,
    keys: &mut BTreeMap<String, DataKey>,
) -> Result<(u64, u64), StoreError> {
    let err = |e: sled::Error| super::map_sled_error(dir, e);
    let tree = |db: &sled::Db, name: &str| db.open_tree(name).map_err(err);
    let mut key_of = |owner: String| -> DataKey {
        *keys.entry(owner).or_insert_with(|| {
            let mut k = [0u8; 32];
            rand::rng().fill_bytes(&mut k);
            k
        })
    };
    let (old_sessions, new_sessions) = (tree(old, "sessions")?, tree(new, "sessions")?);
    let mut live = std::collections::HashSet::new();
    let mut n_sessions = 0;
    for item in &old_sessions {
        let (k, v) = item.map_err(err)?;
        let Some(id) = keys::split_session_key(&k) else {
            continue;
        };
        let key = key_of(sealed::session_owner(id));
        new_sessions
            .insert(&k, sealed::seal_value(&key, "sessions", &k, &v))
            .map_err(err)?;
        live.insert(id);
        n_sessions += 1;
    }
    let (old_messages, new_messages) = (tree(old, "messages")?, tree(new, "messages")?);
    let mut n_messages = 0;
    let mut batch = sled::Batch::default();
    for item in &old_messages {
        let (k, v) = item.map_err(err)?;
        let Some((id, _)) = keys::split_message_key(&k).filter(|(id, _)| live.contains(id)) else {
            continue;
        };
        let key = key_of(sealed::session_owner(id));
        batch.insert(&k, sealed::seal_value(&key, "messages", &k, &v));
        n_messages += 1;
        if n_messages % 10_000 == 0 {
            new_messages
                .apply_batch(std::mem::take(&mut batch))
                .map_err(err)?;
        }
    }
    new_messages.apply_batch(batch).map_err(err)?;
    let (old_meta, new_meta) = (tree(old, "meta")?, tree(new, "meta")?);
    for item in &old_meta {
        let (k, v) = item.map_err(err)?;
        match k.strip_prefix(keys::LEGACY_NAME_PREFIX) {
            Some(name) => {
                let alive = keys::split_session_key(&v).is_some_and(|id| live.contains(&id));
                if alive {
                    let name = String::from_utf8_lossy(name);
                    new_meta.insert(keys::name_key(&name), v).map_err(err)?;
                }
            }
            None => {
                new_meta.insert(k, v).map_err(err)?;
            }
        }
    }
    new_meta
        .insert(b"format", super::erase::FORMAT)
        .map_err(err)?;
    let (old_kv, new_kv) = (tree(old, "kv")?, tree(new, "kv")?);
    for item in &old_kv {
        let (k, v) = item.map_err(err)?;
        let owner = std::str::from_utf8(&k).ok().and_then(sealed::kv_owner);
        match owner {
            Some(o)
                if sealed::is_session_owner(&o)
                    && !o[1..]
                        .parse()
                        .is_ok_and(|id| live.contains(&crate::chat::SessionId(id))) => {} // deleted
            Some(o) => {
                let key = key_of(o);
                new_kv
                    .insert(&k, sealed::seal_value(&key, "kv", &k, &v))
                    .map_err(err)?;
            }
            None => {
                new_kv.insert(k, v).map_err(err)?;
            }
        }
    }
    Ok((n_sessions, n_messages))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}
