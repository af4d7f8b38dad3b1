//! Model registry, `model pull` (sources, checksum, progress, atomic write), path resolution.
