//! `parlor ask`.

use crate::cli::GlobalArgs;

/// Options of `parlor ask`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `parlor ask`.
pub async fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor ask` is not built yet")
}
