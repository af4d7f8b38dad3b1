//! Writing a model file safely, shared by `model pull` and the Q8_0 re-encoding: a hidden
//! temporary file beside the target (`model list` skips it; the final rename is atomic and
//! dropping it on failure leaves nothing behind), then installed readable and durable.

use super::ModelError;
use std::path::Path;
use tempfile::NamedTempFile;

/// An `io::Error` -> [`ModelError::Io`] mapper naming `action` and `path`.
pub(crate) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> ModelError {
    let path = path.to_path_buf();
    move |source| ModelError::Io {
        path,
        action,
        source,
    }
}

/// A hidden temporary file `.NAME.*.part` in `dir`, for the file `name`.
pub(crate) fn temp_beside(dir: &Path, name: &str) -> Result<NamedTempFile, ModelError> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))
}

/// Move the finished `temp` into place at `target` (`moving` names the step in an error:
/// "move the downloaded file into place at"): readable like any other model file (temporary
/// files are private, 0600), renamed atomically, and durable (the directory entry synced).
pub(crate) fn install(
    temp: NamedTempFile,
    target: &Path,
    moving: &'static str,
) -> Result<(), ModelError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io_error(
                "set permissions of the temporary file for",
                target,
            ))?;
    }
    temp.persist(target).map_err(|e| ModelError::Io {
        path: target.to_path_buf(),
        action: moving,
        source: e.error,
    })?;
    // The rename is durable only once the directory entry is on disk.
    if let Some(dir) = target.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}
