//! The `storage:` section of a bot: a directory (`storage: data/acme`), or a mapping with the
//! directory and a retention period:
//!
//! ```yaml
//! storage:
//!   dir: storage/acme-support   # optional; default storage/<bot name>/
//!   retention:
//!     days: 30                  # erase conversations idle longer than this
//! ```

use crate::yaml::Checker;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use std::path::PathBuf;

/// Longest retention accepted, in days (100 years: "keep" is saying nothing).
const MAX_DAYS: u32 = 36_500;

/// `storage:` as parsed: a string or a mapping.
#[derive(Debug, Clone, Default)]
pub(super) struct RawStorage {
    dir: Option<String>,
    retention: Option<RawRetention>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorageMap {
    dir: Option<String>,
    retention: Option<RawRetention>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    days: Option<u32>,
}

impl<'de> Deserialize<'de> for RawStorage {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawStorage;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a directory, or a mapping with `dir` and `retention`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawStorage, E> {
                Ok(RawStorage {
                    dir: Some(v.to_string()),
                    retention: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawStorage, A::Error> {
                let m = RawStorageMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawStorage {
                    dir: m.dir,
                    retention: m.retention,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The validated `storage:` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct StorageSpec {
    pub dir: Option<PathBuf>,
    pub retention_days: Option<u32>,
}

/// Raw -> validated, recording problems in `check`.
pub(super) fn validate(check: &mut Checker<'_>, raw: Option<RawStorage>) -> StorageSpec {
    let Some(raw) = raw else {
        return StorageSpec::default();
    };
    let field = if raw.retention.is_some() || check.text().contains("dir:") {
        "storage.dir"
    } else {
        "storage"
    };
    if raw.dir.as_ref().is_some_and(|s| s.trim().is_empty()) {
        check.error_hint(
            field,
            "is empty",
            "remove the line to use storage/<bot name>/",
        );
    }
    let retention_days = match raw.retention {
        Some(RawRetention { days: None }) => {
            check.error_hint(
                "storage.retention.days",
                "missing (required in `retention`)",
                "e.g. `days: 30` erases conversations idle for 30 days",
            );
            None
        }
        Some(RawRetention { days }) => {
            check.range("storage.retention.days", days, 1..=MAX_DAYS);
            days
        }
        None => None,
    };
    StorageSpec {
        dir: raw.dir.map(PathBuf::from),
        retention_days,
    }
}
