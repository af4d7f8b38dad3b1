//! The acknowledged-writes mark: notice when sled gives back less than it acknowledged.
//!
//! sled reads its log up to the first damaged record and treats the rest as a torn write:
//! damage in the middle of the log (a disk error, a bad copy) drops every later write without
//! an error. So each flush is counted twice: the count goes into sled (`meta` key `flushes`)
//! in the batch the flush makes durable, and, once the flush returned, into a small file beside
//! the database (`<storage>/acknowledged`). The file is written after sled's flush, so on disk
//! it never counts more than sled holds; it is not fsynced (a crash may leave it behind sled,
//! which only narrows what is noticed, never raises a false alarm). At open, a file that counts
//! more than sled gave back means acknowledged writes were lost: the store refuses to open
//! ([`StoreError::Lost`]) until the user restores a backup or deletes the mark to go on with
//! what was recovered. (sled has already cut its log back to the damage by then: its own
//! recovery rewrites the log's tail when it opens, so the lost records cannot be rescued from
//! these files.)

use super::StoreError;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file beside the sled directory.
pub(super) const FILE: &str = "acknowledged";

/// The key of the count in the `meta` tree.
const KEY: &[u8] = b"flushes";

/// Width of the number in the file (fixed, so a rewrite never leaves digits of a longer one).
const WIDTH: usize = 20;

/// The count of one open store.
#[derive(Debug)]
pub(super) struct Mark {
    /// The last count put into sled.
    stamped: Mutex<u64>,
    /// The file and the count it holds; `None` when it could not be opened.
    file: Mutex<Option<(File, u64)>>,
    path: PathBuf,
}

impl Mark {
    /// The mark of the store in `dir`, whose `meta` tree is `meta`. Fails with
    /// [`StoreError::Lost`] when the file counts more flushes than sled gave back.
    pub(super) fn open(dir: &Path, meta: &sled::Tree) -> Result<Self, StoreError> {
        let in_sled = meta
            .get(KEY)
            .map_err(|e| super::map_sled_error(dir, e))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        let path = dir.join(FILE);
        let in_file = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        if let Some(acknowledged) = in_file
            && acknowledged > in_sled
        {
            return Err(StoreError::Lost {
                dir: dir.to_path_buf(),
                recovered: in_sled,
                acknowledged,
                mark: path,
            });
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| tracing::warn!(file = %path.display(), error = %e, "cannot keep the acknowledged-writes mark; damage to the database may go unnoticed"))
            .ok()
            .map(|f| (f, in_file.unwrap_or(0)));
        Ok(Self {
            stamped: Mutex::new(in_sled),
            file: Mutex::new(file),
            path,
        })
    }

    /// Put the next count into sled (before the flush that makes it durable); returns it.
    pub(super) fn stamp(&self, meta: &sled::Tree) -> Result<u64, sled::Error> {
        let mut stamped = self.stamped.lock().unwrap_or_else(|p| p.into_inner());
        let next = *stamped + 1;
        meta.insert(KEY, &next.to_be_bytes())?;
        *stamped = next;
        Ok(next)
    }

    /// The flush that made `count` durable returned: record it in the file (if it is newer
    /// than what the file holds).
    pub(super) fn acknowledged(&self, count: u64) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some((f, written)) = file.as_mut() else {
            return;
        };
        if count <= *written {
            return;
        }
        match write_at_start(f, format!("{count:0WIDTH$}\n").as_bytes()) {
            Ok(()) => *written = count,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot update the acknowledged-writes mark; damage to the database may go unnoticed");
                *file = None;
            }
        }
    }
}

#[cfg(unix)]
fn write_at_start(f: &File, bytes: &[u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, bytes, 0)
}

#[cfg(not(unix))]
fn write_at_start(mut f: &File, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(0))?;
    f.write_all(bytes)
}
