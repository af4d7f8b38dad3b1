//! `model pull` and `model verify`: try the sources in order, stream into a temporary file in
//! the models directory while hashing, check size and sha256, then fsync and rename into place
//! (a reader never sees a partial model file), and re-hash installed files on demand.

use super::source::{PullOptions, Sink};
use super::{ModelError, ModelSpec};
use indicatif::{ProgressBar, ProgressDrawTarget};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What `pull` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// The file was already there with the right size and checksum.
    AlreadyPresent {
        /// The model file.
        path: PathBuf,
    },
    /// The file was fetched and installed.
    Fetched {
        /// The model file.
        path: PathBuf,
        /// Which source delivered it.
        source: String,
        /// Its size.
        size: u64,
        /// Its sha256 (hex).
        sha256: String,
    },
}

/// Size and sha256 of a file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    /// Bytes.
    pub size: u64,
    /// sha256, lowercase hex.
    pub sha256: String,
}

/// Fetch `spec` into `models_dir` unless a valid copy is there. Sources are tried in order;
/// `report` receives one line per step (which source, why it failed) for the user.
pub async fn pull(
    models_dir: &Path,
    spec: &ModelSpec,
    opts: &PullOptions,
    report: &(dyn Fn(&str) + Sync),
) -> Result<PullOutcome, ModelError> {
    let target = models_dir.join(&spec.file);
    if target.is_file() {
        let digest = digest_blocking(target.clone(), opts.progress).await?;
        match verify_digest(spec, &digest) {
            Ok(()) => return Ok(PullOutcome::AlreadyPresent { path: target }),
            Err(e) => report(&format!("{e}; fetching it again")),
        }
    }
    std::fs::create_dir_all(models_dir).map_err(|source| ModelError::Io {
        path: models_dir.to_path_buf(),
        action: "create the models directory",
        source,
    })?;

    let mut attempts = Vec::new();
    for source in &spec.sources {
        let name = source.describe(opts);
        report(&format!("fetching \"{}\" from {name}", spec.file));
        match fetch_one(models_dir, spec, source, opts, &target).await {
            Ok((size, sha256)) => {
                return Ok(PullOutcome::Fetched {
                    path: target,
                    source: name,
                    size,
                    sha256,
                });
            }
            Err(e) => {
                report(&format!("  failed: {e}"));
                attempts.push(format!("  - {name}: {e}"));
            }
        }
    }
    if attempts.is_empty() {
        attempts.push("  - no sources are known for this model".into());
    }
    Err(ModelError::AllSourcesFailed {
        file: spec.file.clone(),
        attempts: attempts.join("\n"),
    })
}

/// One source: stream into a temporary file next to `target`, check it, rename it into place.
/// Any failure drops the temporary file, so nothing partial is left behind.
async fn fetch_one(
    models_dir: &Path,
    spec: &ModelSpec,
    source: &super::Source,
    opts: &PullOptions,
    target: &Path,
) -> Result<(u64, String), ModelError> {
    let io = super::install::io_error;
    // Hidden name in the same directory: the rename below is atomic, and `model list` skips it.
    let temp = super::install::temp_beside(models_dir, &spec.file)?;
    let sink = Sink::new(temp, &spec.file, spec.size, opts.progress);
    let sink = source.fetch(sink, opts).await.map_err(ModelError::Source)?;
    let (temp, size, sha256) = sink
        .finish()
        .map_err(io("write the temporary file for", target))?;
    let digest = Digested { size, sha256 };
    verify_digest(spec, &digest)?;
    super::install::install(temp, target, "move the downloaded file into place at")?;
    Ok((digest.size, digest.sha256))
}

/// Compare a digest with what the registry expects (nothing to compare for `hf:` files).
pub fn verify_digest(spec: &ModelSpec, digest: &Digested) -> Result<(), ModelError> {
    if let Some(expected) = spec.size.filter(|&s| s != digest.size) {
        return Err(ModelError::SizeMismatch {
            file: spec.file.clone(),
            expected,
            actual: digest.size,
        });
    }
    if let Some(expected) = spec
        .sha256
        .as_ref()
        .filter(|s| !s.eq_ignore_ascii_case(&digest.sha256))
    {
        return Err(ModelError::ChecksumMismatch {
            file: spec.file.clone(),
            expected: expected.clone(),
            actual: digest.sha256.clone(),
        });
    }
    Ok(())
}

/// Re-hash the installed file of `spec` and compare it with the registry (`model verify`).
/// Returns the digest; for files the registry has no checksum for, it is only computed.
pub fn verify(path: &Path, spec: &ModelSpec, progress: bool) -> Result<Digested, ModelError> {
    let digest = digest(path, progress)?;
    verify_digest(spec, &digest)?;
    Ok(digest)
}

async fn digest_blocking(path: PathBuf, progress: bool) -> Result<Digested, ModelError> {
    tokio::task::spawn_blocking(move || digest(&path, progress))
        .await
        .unwrap_or_else(|e| Err(ModelError::Source(format!("the hashing task failed: {e}"))))
}

/// Size and sha256 of a file, read in 1 MiB blocks.
pub fn digest(path: &Path, progress: bool) -> Result<Digested, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(Digested {
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}
