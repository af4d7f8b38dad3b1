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

/// The sentence-embedding model (all-mpnet-base-v2 zip): `PARLOR_TEST_EMBEDDING_MODEL`, else
/// `storage/models/` of this checkout (fetched by `scripts/setup.sh`).
pub fn embedding_model_path() -> PathBuf {
    model_file(
        "PARLOR_TEST_EMBEDDING_MODEL",
        "all-mpnet-base-v2.zip",
        "mpnet-base",
    )
}

/// The smaller embedding model (all-MiniLM-L6-v2 zip): `PARLOR_TEST_SMALL_EMBEDDING_MODEL`,
/// else `storage/models/` of this checkout (fetched by `scripts/test.sh`).
pub fn small_embedding_model_path() -> PathBuf {
    model_file(
        "PARLOR_TEST_SMALL_EMBEDDING_MODEL",
        "all-MiniLM-L6-v2.zip",
        "minilm-l6",
    )
}

fn model_file(var: &str, file: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("storage/models")
        .join(file);
    assert!(
        p.exists(),
        "the model is missing at {}; run scripts/test.sh (or `parlor model pull {name}`)",
        p.display()
    );
    p
}

/// The `parlor` binary built for these tests.
pub fn parlor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_parlor"))
}
