//! `parlor test`.

use crate::cli::GlobalArgs;

/// Options of `parlor test`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `parlor test`.
pub async fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor test` is not built yet")
}
