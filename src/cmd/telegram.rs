//! `parlor telegram`.

use crate::cli::GlobalArgs;

/// Options of `parlor telegram`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `parlor telegram`.
pub async fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor telegram` is not built yet")
}
