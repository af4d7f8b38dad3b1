//! Conversation keys: one random 256-bit key per owner (a session `s<id>`, a Telegram chat's
//! own state `tg:<chat>`, the terminal's input history `tui`), kept in one small file beside the
//! sled directory (`<storage>/keys`) that is rewritten whole on every change (temporary file,
//! fsync, rename, fsync of the directory). Conversation content in sled is sealed with its
//! owner's key (AES-256-GCM, [`seal`]; values sealed before with ChaCha20-Poly1305 still open),
//! so taking a key out of this file makes every copy sled still keeps in its log unreadable at
//! once, without waiting for sled to rewrite a segment.
//!
//! Ordering: a key is in the file (fsynced) before the first record sealed with it is written,
//! and it leaves the file before its records are removed. A crash in between leaves records
//! without a key: unreadable, treated as absent, and swept at the next open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce as GcmNonce, UnboundKey};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// First byte of a value sealed with ChaCha20-Poly1305 (written before AES-256-GCM; opened,
/// never written). Plain JSON records (written before encryption) start with `{`.
const SEALED_CHACHA: u8 = 0x01;
/// First byte of a value sealed with AES-256-GCM.
const SEALED_GCM: u8 = 0x02;
/// Nonce width of both ciphers.
const NONCE_LEN: usize = 12;
/// Tag width of both ciphers.
const TAG_LEN: usize = 16;

/// Whether `value` is sealed (by either cipher), judged by its first byte.
pub(crate) fn is_sealed(value: &[u8]) -> bool {
    matches!(value.first(), Some(&SEALED_CHACHA | &SEALED_GCM))
}
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
/// cannot be moved to another record. Layout: `0x02`, nonce (random: one key per conversation
/// seals far fewer than the 2^32 values a random 96-bit nonce allows), ciphertext, tag.
pub(crate) fn seal(key: &DataKey, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + TAG_LEN);
    out.push(SEALED_GCM);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let tag = gcm_key(key)
        .seal_in_place_separate_tag(
            GcmNonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[1 + NONCE_LEN..],
        )
        .unwrap_or_else(|e| unreachable!("AES-256-GCM cannot fail to seal a record: {e}"));
    out.extend_from_slice(tag.as_ref());
    out
}

/// Open a value made by [`seal`] (or by the ChaCha20-Poly1305 sealing before it); `None` if it
/// is not one or fails its tag.
pub(crate) fn open(key: &DataKey, aad: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    Opener::new(key).open(aad, value).map(<[u8]>::to_vec)
}

fn gcm_key(key: &DataKey) -> LessSafeKey {
    let unbound = UnboundKey::new(&AES_256_GCM, key)
        .unwrap_or_else(|e| unreachable!("a 32-byte key is an AES-256 key: {e}"));
    LessSafeKey::new(unbound)
}

/// Opens many values of one key: the key schedule is made once and the plaintext is written
/// into one reused buffer (reading the last 50 messages of a conversation opens 50 values).
pub(crate) struct Opener<'k> {
    key: &'k DataKey,
    gcm: LessSafeKey,
    buf: Vec<u8>,
}

impl<'k> Opener<'k> {
    pub fn new(key: &'k DataKey) -> Self {
        Self {
            key,
            gcm: gcm_key(key),
            buf: Vec::with_capacity(512),
        }
    }

    /// The plaintext of `value`, valid until the next call; `None` if `value` is not sealed or
    /// fails its tag.
    pub fn open(&mut self, aad: &[u8], value: &[u8]) -> Option<&[u8]> {
        let (&kind, rest) = value.split_first()?;
        if rest.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        match kind {
            SEALED_GCM => {
                let nonce = GcmNonce::try_assume_unique_for_key(nonce).ok()?;
                self.buf.clear();
                self.buf.extend_from_slice(sealed);
                let plain = self
                    .gcm
                    .open_in_place(nonce, Aad::from(aad), &mut self.buf)
                    .ok()?;
                Some(plain)
            }
            SEALED_CHACHA => {
                self.buf = ChaCha20Poly1305::new(Key::from_slice(self.key))
                    .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
                    .ok()?;
                Some(&self.buf)
            }
            _ => None,
        }
    }
}

/// A value sealed the way parlor sealed values before AES-256-GCM (`0x01`, nonce, ChaCha20-
/// Poly1305 ciphertext and tag): for tests of databases written then.
#[cfg(test)]
pub(crate) fn seal_chacha(key: &DataKey, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .unwrap_or_else(|e| unreachable!("ChaCha20-Poly1305 cannot fail to encrypt: {e}"));
    let mut out = vec![SEALED_CHACHA];
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
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
    fn values_sealed_with_chacha20_poly1305_before_still_open() {
        let key = [9u8; 32];
        let old = seal_chacha(&key, b"kv/tg/chat/5", b"Zorblax's router");
        assert_eq!(old[0], SEALED_CHACHA);
        assert!(is_sealed(&old));
        let new = seal(&key, b"kv/tg/chat/5", b"Zorblax's router");
        assert_eq!(new[0], SEALED_GCM);
        assert!(is_sealed(&new));
        assert!(!is_sealed(b"{\"v\":1}"));
        let mut opener = Opener::new(&key);
        for value in [&old, &new] {
            assert_eq!(
                opener.open(b"kv/tg/chat/5", value),
                Some(&b"Zorblax's router"[..])
            );
            assert_eq!(opener.open(b"kv/tg/chat/6", value), None);
            let mut flipped = value.clone();
            *flipped.last_mut().unwrap() ^= 1;
            assert_eq!(opener.open(b"kv/tg/chat/5", &flipped), None);
        }
        assert_eq!(Opener::new(&[1u8; 32]).open(b"kv/tg/chat/5", &new), None);
        assert_eq!(opener.open(b"kv/tg/chat/5", &new[..20]), None);
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
