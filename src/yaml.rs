//! The one place YAML is parsed: size cap, errors as `path:line:col: field: problem`.
