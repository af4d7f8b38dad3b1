//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// The default model (SmolLM2-135M-Instruct Q4_1): `PARLOR_TEST_MODEL`, else
/// `storage/models/` of this checkout (fetched by `scripts/setup.sh`).
pub fn model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PARLOR_TEST_MODEL") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("storage/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "the default model is missing at {}; run scripts/setup.sh (or `parlor model pull smollm2-135m`)",
        p.display()
    );
    p
}

/// The sentence-embedding model (all-MiniLM-L6-v2 zip): `PARLOR_TEST_EMBEDDING_MODEL`, else
/// `storage/models/` of this checkout (fetched by `scripts/setup.sh`).
pub fn embedding_model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PARLOR_TEST_EMBEDDING_MODEL") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("storage/models/all-MiniLM-L6-v2.zip");
    assert!(
        p.exists(),
        "the embedding model is missing at {}; run scripts/setup.sh (or `parlor model pull minilm-l6`)",
        p.display()
    );
    p
}

/// The `parlor` binary built for these tests.
pub fn parlor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_parlor"))
}
