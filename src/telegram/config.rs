//! The bot YAML's `telegram:` section.

use serde::Deserialize;

/// `telegram:` in a bot file (raw, as parsed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {}
