//! Derived model files: a registry model re-encoded once in a format llama.cpp runs faster on
//! this CPU ([`super::q8`]), kept beside the original in the models directory with a small
//! sidecar JSON (`<file>.json`) that records what it was made from and its own sha256.
//!
//! The original's sha256 is verified before converting; the result is checked against the
//! sha256 the registry expects (the conversion is deterministic), then moved into place
//! atomically and the sidecar written last: a derived file without a matching sidecar is made
//! again. Loading trusts the sidecar (no re-hash of 140 MB at every start); `model verify`
//! re-hashes both files.

use super::q8;
use super::{Digested, ModelError, ModelSpec, digest, verify_digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the converter, recorded in sidecars (a change makes files again).
const CONVERTER: u32 = 1;

/// A faster encoding of a registry model, made locally from the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedSpec {
    /// File name in the models directory.
    pub file: String,
    /// Tensor format of the re-encoded weights (`Q8_0`).
    pub format: String,
    /// Expected size in bytes.
    pub size: u64,
    /// Expected sha256 (the conversion is deterministic).
    pub sha256: String,
}

/// The sidecar of a derived file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Tensor format (`Q8_0`).
    pub format: String,
    /// The original's file name.
    pub derived_from: String,
    /// The original's sha256, verified before converting.
    pub source_sha256: String,
    /// Size of the derived file.
    pub size: u64,
    /// sha256 of the derived file.
    pub sha256: String,
    /// Converter version.
    pub converter: u32,
}

/// The sidecar path of a derived file.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".json");
    path.with_file_name(name)
}

/// The sidecar of `path`, if there is a readable one.
pub fn read_sidecar(path: &Path) -> Option<Sidecar> {
    serde_json::from_slice(&std::fs::read(sidecar_path(path)).ok()?).ok()
}

/// Whether the derived file of `spec` in `models_dir` is in place (present, with a sidecar that
/// names the registry's original and matches the file's size).
pub fn is_ready(models_dir: &Path, spec: &ModelSpec, derived: &DerivedSpec) -> bool {
    let path = models_dir.join(&derived.file);
    let Some(side) = read_sidecar(&path) else {
        return false;
    };
    let size = std::fs::metadata(&path).map(|m| m.len()).ok();
    side.converter == CONVERTER
        && side.sha256 == derived.sha256
        && Some(side.size) == size
        && spec.sha256.as_deref() == Some(side.source_sha256.as_str())
}

/// The derived file of `spec`, made from the original first if it is not in place. `report`
/// gets a line when the conversion starts. Fails when the original is missing or corrupt, or
/// when the conversion does not give the expected bytes.
pub fn ensure(
    models_dir: &Path,
    spec: &ModelSpec,
    derived: &DerivedSpec,
    report: &dyn Fn(&str),
) -> Result<PathBuf, ModelError> {
    let target = models_dir.join(&derived.file);
    if is_ready(models_dir, spec, derived) {
        return Ok(target);
    }
    let original = models_dir.join(&spec.file);
    if !original.is_file() {
        return Err(ModelError::NotPulled {
            name: spec.name.clone(),
            path: original,
        });
    }
    report(&format!(
        "re-encoding {} as {} (once; kept as {})",
        spec.file, derived.format, derived.file
    ));
    let source = digest(&original, false)?;
    verify_digest(spec, &source)?;
    let made = convert(&original, models_dir, &target)?;
    if made.sha256 != derived.sha256 || made.size != derived.size {
        return Err(ModelError::Source(format!(
            "re-encoding {} as {} gave sha256 {} ({} bytes), expected {} ({} bytes); \
             set `engine.format: as-is` to use the original",
            spec.file, derived.format, made.sha256, made.size, derived.sha256, derived.size
        )));
    }
    let side = Sidecar {
        format: derived.format.clone(),
        derived_from: spec.file.clone(),
        source_sha256: source.sha256,
        size: made.size,
        sha256: made.sha256,
        converter: CONVERTER,
    };
    write_sidecar(models_dir, &target, &side)?;
    Ok(target)
}

/// Convert `original` to Q8_0 at `target` through a hidden temporary file (fsync, rename),
/// returning the new file's digest. Nothing is left behind on failure.
pub fn convert(original: &Path, dir: &Path, target: &Path) -> Result<Digested, ModelError> {
    let io = super::install::io_error;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let temp = super::install::temp_beside(dir, &name)?;
    let made = {
        let mut out = Hashing {
            inner: std::io::BufWriter::new(temp.as_file()),
            hasher: Sha256::new(),
            size: 0,
        };
        q8::convert_file(original, &mut out).map_err(|e| match e {
            super::gguf::GgufError::Io(source) => ModelError::Io {
                path: original.to_path_buf(),
                action: "re-encode",
                source,
            },
            e @ super::gguf::GgufError::Format(_) => {
                ModelError::Source(format!("cannot re-encode {}: {e}", original.display()))
            }
        })?;
        out.inner.flush().map_err(io("write", target))?;
        Digested {
            size: out.size,
            sha256: hex::encode(std::mem::take(&mut out.hasher).finalize()),
        }
    };
    temp.as_file().sync_all().map_err(io("write", target))?;
    super::install::install(temp, target, "move the re-encoded file into place at")?;
    Ok(made)
}

fn write_sidecar(dir: &Path, target: &Path, side: &Sidecar) -> Result<(), ModelError> {
    let path = sidecar_path(target);
    let io = |source| ModelError::Io {
        path: path.clone(),
        action: "write",
        source,
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let json = serde_json::to_vec_pretty(side).expect("plain struct");
    temp.write_all(&json).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(&path).map_err(|e| io(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Re-hash the derived file at `path` and compare it with the registry and its sidecar
/// (`model verify`, `model pull`). Returns the digest.
pub fn verify_file(
    path: &Path,
    derived: &DerivedSpec,
    progress: bool,
) -> Result<Digested, ModelError> {
    let d = digest(path, progress)?;
    if d.size != derived.size {
        return Err(ModelError::SizeMismatch {
            file: derived.file.clone(),
            expected: derived.size,
            actual: d.size,
        });
    }
    if d.sha256 != derived.sha256 {
        return Err(ModelError::ChecksumMismatch {
            file: derived.file.clone(),
            expected: derived.sha256.clone(),
            actual: d.sha256,
        });
    }
    match read_sidecar(path) {
        Some(side) if side.sha256 == d.sha256 && side.size == d.size => Ok(d),
        _ => Err(ModelError::Source(format!(
            "\"{}\" has no sidecar {} recording what it was made from",
            derived.file,
            sidecar_path(path).display()
        ))),
    }
}

/// Remove a derived file and its sidecar (sidecar first: a half-removed pair is made again).
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(sidecar_path(path));
    let _ = std::fs::remove_file(path);
}
