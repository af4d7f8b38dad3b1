//! Checks on a model file before llama.cpp sees it, so the common mistakes (missing, empty,
//! not a GGUF file) get a precise message, and a cheap identity of the file for cache keys.

use crate::engine::EngineError;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The GGUF magic number at the start of every file.
const MAGIC: &[u8; 4] = b"GGUF";

/// Fail early, naming the file, if it cannot be a GGUF model.
pub fn check_header(path: &Path, name: &str) -> Result<(), EngineError> {
    let shown = path.display().to_string();
    let bad = |reason: String| EngineError::ModelLoad {
        path: shown.clone(),
        reason,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EngineError::ModelMissing {
                path: shown.clone(),
                hint: name.to_string(),
            });
        }
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(bad(
            "the file is empty (an interrupted download?); delete it and fetch the model again"
                .into(),
        ));
    }
    let mut head = [0u8; 8];
    let n = file
        .read(&mut head)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if n < 8 || &head[..4] != MAGIC {
        let shown_head: String = head[..n.min(4)]
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() {
                    *b as char
                } else {
                    '.'
                }
            })
            .collect();
        return Err(bad(format!(
            "not a GGUF model file (it starts with \"{shown_head}\", expected \"GGUF\")"
        )));
    }
    let version = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(2..=3).contains(&version) {
        return Err(bad(format!(
            "unsupported GGUF version {version} (supported: 2 and 3)"
        )));
    }
    Ok(())
}

/// A cheap identity of the model file: size plus hashes of its first and last MiB. Saved KV
/// state is only valid for the model it came from.
pub fn model_id(path: &Path) -> std::io::Result<String> {
    const PART: u64 = 1 << 20;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = Sha256::new();
    hasher.update(len.to_le_bytes());
    let mut buf = vec![0u8; PART as usize];
    let n = file.read(&mut buf)?;
    hasher.update(&buf[..n]);
    if len > PART {
        file.seek(SeekFrom::Start(len.saturating_sub(PART)))?;
        let n = file.read(&mut buf)?;
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(&hasher.finalize()[..8]))
}
