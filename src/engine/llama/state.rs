//! Warm resume: files holding one session's KV cache (llama.cpp per-sequence state), keyed by
//! session, persona version and model identity, each with a checksum so a corrupt or stale file
//! is ignored (and the prompt evaluated again) instead of giving a wrong answer. The directory
//! is kept under a size cap by evicting the least recently used files.
//!
//! A session's files are named after it (`s<id>-<hash>.kv`): erasing a conversation deletes
//! them ([`remove_prefix`]), since they hold its token ids. Other states (no session in the
//! key) are `p-<hash>.kv`. Files named by the older scheme (`<hash>.kv`, no owner) cannot be
//! told apart, so they are deleted when the directory is opened (the prompt is evaluated again
//! once).
//!
//! The checksum is CRC32 (detects accidental corruption: truncation, torn writes, bit rot) and
//! not SHA-256: a warm start reads the whole state, and on CPUs without SHA extensions SHA-256
//! of a 32 MB state takes about 80 ms of the 300 ms budget. A front end that knows the
//! conversation before the model has loaded checks its state then ([`verify_ahead`]), and the
//! load takes that check instead of reading the file twice.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A state whose checksum passed ahead of its load ([`verify_ahead`]).
struct Checked {
    path: PathBuf,
    /// The file's identity when it passed ([`identity`]).
    id: (u64, u64),
    /// Its checksum line.
    sum: String,
}

/// States checked while the model was still loading. Each is used once, by the next
/// [`StateDir::verified`] of that file.
static AHEAD: Mutex<Vec<Checked>> = Mutex::new(Vec::new());

/// A file's identity for [`AHEAD`]: a state is only ever replaced by renaming a new file over
/// it (a new inode), never written in place.
fn identity(path: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.ino(), m.len()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

/// Check the saved state of `key` (in `dir`, for the model `model_id`) now, so that its load
/// does not: a warm `parlor ask` knows its conversation while the model is still loading, and
/// the checksum (7-10 ms for a 1,500-token state) then runs beside the load instead of after
/// it. A file that fails is left for [`StateDir::verified`] to report and delete.
pub fn verify_ahead(dir: &Path, model_id: &str, key: &str) -> bool {
    let path = state_file(dir, model_id, key);
    let Ok(expected) = std::fs::read_to_string(StateDir::sum_path(&path)) else {
        return false;
    };
    let before = identity(&path);
    let passed = file_sum(&path).ok().as_deref() == Some(expected.trim());
    match before.filter(|id| passed && identity(&path) == Some(*id)) {
        Some(id) => {
            let mut ahead = AHEAD.lock().unwrap_or_else(|e| e.into_inner());
            ahead.retain(|c| c.path != path);
            ahead.push(Checked {
                path,
                id,
                sum: expected.trim().to_string(),
            });
            true
        }
        None => false,
    }
}

/// Whether `path` passed [`verify_ahead`] with the checksum line `expected` and is still the
/// same file; the entry is used up either way.
fn verified_ahead(path: &Path, expected: &str) -> bool {
    let mut ahead = AHEAD.lock().unwrap_or_else(|e| e.into_inner());
    let Some(i) = ahead.iter().position(|c| c.path == path) else {
        return false;
    };
    let c = ahead.swap_remove(i);
    c.sum == expected && identity(path) == Some(c.id)
}

/// The state file of `key` in `dir` for the model `model_id`.
fn state_file(dir: &Path, model_id: &str, key: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(model_id.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let owner = session_prefix(key).unwrap_or("p-");
    dir.join(format!("{owner}{}.kv", hex::encode(&h.finalize()[..16])))
}

/// The saved-state directory of one engine.
pub struct StateDir {
    dir: PathBuf,
    cap_bytes: u64,
    model_id: String,
}

/// The checksum line of a file: `crc32:<hex> <length>`.
fn file_sum(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok(format!("crc32:{:08x} {len}", hasher.finalize()))
}

impl StateDir {
    /// Use `dir` (created if missing) for states of the model `model_id`.
    pub fn new(dir: PathBuf, cap_bytes: u64, model_id: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        remove_legacy(&dir);
        Ok(Self {
            dir,
            cap_bytes,
            model_id,
        })
    }

    /// The state file of a cache key.
    pub fn path_for(&self, key: &str) -> PathBuf {
        state_file(&self.dir, &self.model_id, key)
    }

    /// Delete every state whose key starts with `prefix` (a session's, [`session_prefix`]).
    pub fn remove_prefix(&self, prefix: &str) -> usize {
        remove_prefix(&self.dir, prefix)
    }

    fn sum_path(path: &Path) -> PathBuf {
        path.with_extension("sum")
    }

    /// The state file of `key` if one exists and its checksum matches; a file that fails the
    /// check is deleted (logged). Touches the file for LRU eviction.
    pub fn verified(&self, key: &str) -> Option<PathBuf> {
        let path = self.path_for(key);
        if !path.exists() {
            return None;
        }
        let expected = std::fs::read_to_string(Self::sum_path(&path)).ok();
        let actual = match expected.as_deref().map(str::trim) {
            Some(e) if verified_ahead(&path, e) => Some(e.to_string()),
            _ => file_sum(&path).ok(),
        };
        if expected.is_none() || expected.as_deref().map(str::trim) != actual.as_deref() {
            tracing::warn!(file = %path.display(), "saved session state fails its checksum; ignoring it and evaluating the prompt again");
            self.remove(key);
            return None;
        }
        if let Ok(f) = std::fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(path)
    }

    /// Delete the state of `key`.
    pub fn remove(&self, key: &str) {
        let path = self.path_for(key);
        let _ = std::fs::remove_file(Self::sum_path(&path));
        // Written by versions that used SHA-256.
        let _ = std::fs::remove_file(path.with_extension("sha256"));
        let _ = std::fs::remove_file(&path);
    }

    /// Save through `write` (which writes the state to the path it is given) atomically, with
    /// its checksum; then evict old states over the cap. Returns the file size.
    pub fn save(
        &self,
        key: &str,
        write: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<u64, String> {
        let path = self.path_for(key);
        let tmp = path.with_extension("kv.tmp");
        write(&tmp)?;
        let sum = file_sum(&tmp).map_err(|e| e.to_string())?;
        let size = std::fs::metadata(&tmp).map_err(|e| e.to_string())?.len();
        // Checksum first: a crash between the two renames leaves a state that fails its check.
        let sum_path = Self::sum_path(&path);
        std::fs::write(&sum_path, &sum).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
        self.enforce_cap();
        Ok(size)
    }

    /// Delete least recently used states until the total is under the cap.
    fn enforce_cap(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "kv"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.cap_bytes {
                break;
            }
            let _ = std::fs::remove_file(Self::sum_path(&path));
            let _ = std::fs::remove_file(&path);
            total -= len;
            tracing::info!(file = %path.display(), "evicted saved session state (size cap)");
        }
    }
}

/// The session part of a cache key (`s42-` of `s42-v7`), if it has one.
fn session_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix('s')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && rest.as_bytes().get(digits) == Some(&b'-')).then(|| &key[..digits + 2])
}

/// Delete the states in `dir` of cache keys starting with the session prefix `prefix` (their
/// `.kv`, `.sum` and unfinished `.kv.tmp` files); returns how many states.
pub fn remove_prefix(dir: &Path, prefix: &str) -> usize {
    AHEAD.lock().unwrap_or_else(|e| e.into_inner()).retain(|c| {
        c.path.parent() != Some(dir)
            || !c
                .path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
    });
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut states = 0;
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix)
            && std::fs::remove_file(e.path()).is_ok()
            && name.ends_with(".kv")
        {
            states += 1;
        }
    }
    states
}

/// Delete states named by the scheme before files carried their session (`<32 hex>.kv`).
fn remove_legacy(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let stem = name.split('.').next().unwrap_or("");
        if stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_verifies_and_a_tampered_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path().into(), 1 << 30, "m".into()).unwrap();
        states
            .save("k", |p| {
                std::fs::write(p, b"state").map_err(|e| e.to_string())
            })
            .unwrap();
        assert!(states.verified("k").is_some());
        std::fs::write(states.path_for("k"), b"other").unwrap();
        assert!(states.verified("k").is_none());
        assert!(!states.path_for("k").exists());
    }

    #[test]
    fn a_state_checked_ahead_is_not_read_again_by_its_next_load_only() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path().into(), 1 << 30, "m".into()).unwrap();
        let save = |key: &str| {
            states
                .save(key, |p| {
                    std::fs::write(p, b"state").map_err(|e| e.to_string())
                })
                .unwrap();
        };
        save("s1-a");
        assert!(verify_ahead(dir.path(), "m", "s1-a"));
        // Written in place after the early check (parlor never does: a save renames a new file
        // over the old one): the next load takes the early check, the one after reads it again.
        std::fs::write(states.path_for("s1-a"), b"other").unwrap();
        assert!(
            states.verified("s1-a").is_some(),
            "the early check was used"
        );
        assert!(
            states.verified("s1-a").is_none(),
            "used once, then read again"
        );
        assert!(!states.path_for("s1-a").exists());

        // Replaced by a new file after the early check, as a save does: read again.
        save("s1-b");
        assert!(verify_ahead(dir.path(), "m", "s1-b"));
        let tmp = dir.path().join("replacement");
        std::fs::write(&tmp, b"other").unwrap();
        std::fs::rename(&tmp, states.path_for("s1-b")).unwrap();
        assert!(states.verified("s1-b").is_none());

        // Missing, failing, or erased before its load: nothing is recorded.
        assert!(!verify_ahead(dir.path(), "m", "s1-missing"));
        save("s2-c");
        std::fs::write(states.path_for("s2-c"), b"bad!!").unwrap();
        assert!(!verify_ahead(dir.path(), "m", "s2-c"));
        save("s3-d");
        assert!(verify_ahead(dir.path(), "m", "s3-d"));
        assert_eq!(states.remove_prefix("s3-"), 1);
        let erased = states.path_for("s3-d");
        let ahead = AHEAD.lock().unwrap();
        assert!(
            !ahead.iter().any(|c| c.path == erased),
            "the erased file's early check is gone"
        );
    }

    #[test]
    fn a_sessions_states_are_removed_by_its_prefix_and_legacy_files_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{}.kv", "ab".repeat(16))), b"old").unwrap();
        let states = StateDir::new(dir.path().into(), 1 << 30, "m".into()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "legacy state kept"
        );
        let write = |p: &Path| std::fs::write(p, b"state").map_err(|e| e.to_string());
        for key in ["s4-a", "s4-b", "s41-a", "persona"] {
            states.save(key, write).unwrap();
        }
        assert!(
            states
                .path_for("s4-a")
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("s4-")
        );
        assert!(
            states
                .path_for("persona")
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("p-")
        );
        assert_eq!(states.remove_prefix("s4-"), 2);
        assert!(!states.path_for("s4-a").exists() && !states.path_for("s4-b").exists());
        assert!(states.verified("s41-a").is_some() && states.verified("persona").is_some());
        assert_eq!(session_prefix("s12-v3"), Some("s12-"));
        assert_eq!(session_prefix("s-v3"), None);
        assert_eq!(session_prefix("s12"), None);
    }

    #[test]
    fn keys_of_other_models_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateDir::new(dir.path().into(), 1 << 30, "a".into()).unwrap();
        let b = StateDir::new(dir.path().into(), 1 << 30, "b".into()).unwrap();
        assert_ne!(a.path_for("k"), b.path_for("k"));
    }

    #[test]
    fn the_cap_evicts_the_least_recently_used_state() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path().into(), 10, "m".into()).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        states
            .save("old", |p| {
                std::fs::write(p, b"123456").map_err(|e| e.to_string())
            })
            .unwrap();
        std::fs::File::options()
            .append(true)
            .open(states.path_for("old"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        states
            .save("new", |p| {
                std::fs::write(p, b"123456").map_err(|e| e.to_string())
            })
            .unwrap();
        assert!(!states.path_for("old").exists());
        assert!(states.path_for("new").exists());
    }
}
