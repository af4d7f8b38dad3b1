//! `parlor bench`.

use crate::cli::GlobalArgs;

/// Options of `parlor bench`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `parlor bench`.
pub async fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor bench` is not built yet")
}
