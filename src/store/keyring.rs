//! Conversation keys: one random 256-bit key per owner (a session `s<id>`, a Telegram chat's
//! own state `tg:<chat>`, the terminal's input history `tui`), kept in one small file beside the
//! sled directory (`<storage>/keys`) that is rewritten whole on every change (temporary file,
//! fsync, rename, fsync of the directory). Conversation content in sled is sealed with its
//! owner's key (ChaCha20-Poly1305, [`seal`]), so taking a key out of this file makes every copy
//! sled still keeps in its log unreadable at once, without waiting for sled to rewrite a segment.
//!
//! Ordering: a key is in the file (fsynced) before the first record sealed with it is written,
//! and it leaves the file before its records are removed. A crash in between leaves records
//! without a key: unreadable, treated as absent, and swept at the next open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// First byte of a sealed value. Plain JSON records (written before encryption) start with `{`.
pub(crate) const SEALED: u8 = 0x01;
/// Nonce width of ChaCha20-Poly1305.
const NONCE_LEN: usize = 12;
/// First line of the keys file.
const HEADER: &str = "parlor-keys 1";

/// One owner's key.
pub(crate) type DataKey = [u8; 32];

/// Why the keys file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a keys file.
    #[error("{path}:{line}: not a parlor keys file line; restore the file from a backup")]
    Corrupt {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
    },
}

/// The keys of one storage directory. Cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    keys: RwLock<BTreeMap<String, DataKey>>,
    /// Held while the file is rewritten, so changes reach the disk in order.
    writer: Mutex<()>,
}

impl KeyRing {
    /// The keys file of storage directory `dir` (`dir/keys`); empty when there is none.
    pub fn load(dir: &Path) -> Result<Self, KeyFileError> {
        let path = dir.join("keys");
        let keys = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io_err(&path, e)),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                keys: RwLock::new(keys),
                writer: Mutex::new(()),
            }),
        })
    }

    /// Whether the keys file exists.
    pub fn file_exists(&self) -> bool {
        self.inner.path.is_file()
    }

    /// The key of `owner`, if it has one.
    pub fn get(&self, owner: &str) -> Option<DataKey> {
        self.read().get(owner).copied()
    }

    /// The key of `owner`, made (and written to the file, fsynced) if it has none.
    pub fn get_or_create(&self, owner: &str) -> Result<DataKey, KeyFileError> {
        if let Some(k) = self.get(owner) {
            return Ok(k);
        }
        let _w = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = self.get(owner) {
            return Ok(k);
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mut next = self.read().clone();
        next.insert(owner.to_string(), key);
        self.persist(&next)?;
        *self.write() = next;
        Ok(key)
    }

    /// Destroy the keys of `owners` (written to the file, fsynced, before this returns).
    /// Returns how many existed.
    pub fn remove(&self, owners: &[String]) -> Result<usize, KeyFileError> {
        let _w = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.read().clone();
        let removed = owners.iter().filter(|o| next.remove(*o).is_some()).count();
        self.persist(&next)?;
        *self.write() = next;
        Ok(removed)
    }

    /// Write the whole file (also when nothing changed: creates it).
    pub fn save(&self) -> Result<(), KeyFileError> {
        let _w = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let keys = self.read().clone();
        self.persist(&keys)
    }

    /// Replace every key (the migration builds a new set).
    pub fn replace_all(&self, keys: BTreeMap<String, DataKey>) -> Result<(), KeyFileError> {
        let _w = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.persist(&keys)?;
        *self.write() = keys;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, DataKey>> {
        self.inner.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, DataKey>> {
        self.inner.keys.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Temporary file, fsync, rename over the file, fsync the directory: after a crash the
    /// file is either the old one or the new one, and once this returns the new one is on disk.
    fn persist(&self, keys: &BTreeMap<String, DataKey>) -> Result<(), KeyFileError> {
        let path = &self.inner.path;
        let tmp = path.with_extension("tmp");
        let mut text = String::with_capacity(16 + keys.len() * 80);
        text.push_str(HEADER);
        text.push('\n');
        for (owner, key) in keys {
            text.push_str(owner);
            text.push(' ');
            text.push_str(&hex::encode(key));
            text.push('\n');
        }
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            restrict(&f)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| io_err(path, e))
    }
}

/// Owner-only permissions for the keys file.
#[cfg(unix)]
fn restrict(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_f: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

fn parse(path: &Path, text: &str) -> Result<BTreeMap<String, DataKey>, KeyFileError> {
    let corrupt = |line| KeyFileError::Corrupt {
        path: path.display().to_string(),
        line,
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(corrupt(1));
    }
    let mut keys = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        let (owner, hex_key) = line.split_once(' ').ok_or_else(|| corrupt(i + 2))?;
        let key: DataKey = hex::decode(hex_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt(i + 2))?;
        keys.insert(owner.to_string(), key);
    }
    Ok(keys)
}

fn io_err(path: &Path, source: std::io::Error) -> KeyFileError {
    KeyFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Seal `plain` with `key`; `aad` (where the value is stored) is authenticated, so a value
/// cannot be moved to another record. Layout: [`SEALED`], nonce, ciphertext with tag.
pub(crate) fn seal(key: &DataKey, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .unwrap_or_else(|e| unreachable!("ChaCha20-Poly1305 cannot fail to encrypt: {e}"));
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEALED);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Open a value made by [`seal`]; `None` if it is not one or fails its tag.
pub(crate) fn open(key: &DataKey, aad: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let rest = value.strip_prefix(&[SEALED])?;
    if rest.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_place() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"messages/1/2", b"my name is Zorblax");
        assert!(!sealed.windows(7).any(|w| w == b"Zorblax"));
        assert_eq!(
            open(&key, b"messages/1/2", &sealed).unwrap(),
            b"my name is Zorblax"
        );
        assert_eq!(open(&[8u8; 32], b"messages/1/2", &sealed), None);
        assert_eq!(open(&key, b"messages/1/3", &sealed), None);
        assert_eq!(open(&key, b"x", b"{\"v\":1}"), None);
    }

    #[test]
    fn keys_survive_a_reload_and_removed_keys_are_gone_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        let a = ring.get_or_create("s1").unwrap();
        let b = ring.get_or_create("s2").unwrap();
        assert_ne!(a, b);
        assert_eq!(ring.get_or_create("s1").unwrap(), a);
        let again = KeyRing::load(dir.path()).unwrap();
        assert_eq!(again.get("s1"), Some(a));
        assert_eq!(ring.remove(&["s1".into(), "nope".into()]).unwrap(), 1);
        let text = std::fs::read_to_string(dir.path().join("keys")).unwrap();
        assert!(!text.contains(&hex::encode(a)), "{text}");
        assert!(text.contains(&hex::encode(b)));
        assert_eq!(KeyRing::load(dir.path()).unwrap().get("s1"), None);
        assert!(!dir.path().join("keys.tmp").exists());
    }

    #[test]
    fn a_damaged_keys_file_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys"), format!("{HEADER}\ns1 zz\n")).unwrap();
        let err = KeyRing::load(dir.path()).err().unwrap().to_string();
        assert!(
            err.ends_with("keys:2: not a parlor keys file line; restore the file from a backup"),
            "{err}"
        );
    }
}
