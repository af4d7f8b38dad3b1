//! `parlor check`.

use crate::cli::GlobalArgs;

/// Options of `parlor check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `parlor check`.
pub fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor check` is not built yet")
}
