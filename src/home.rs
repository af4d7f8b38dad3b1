//! Where `bots/`, `personas/` and `storage/` live: `--home`, `PARLOR_HOME`, the current
//! directory if it has `personas/` or `bots/`, else the user's data directory (seeded with the
//! built-in personas on first use).
