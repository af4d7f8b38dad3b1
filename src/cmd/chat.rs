//! `parlor chat`.

use crate::cli::GlobalArgs;

/// Options of `parlor chat`.
#[derive(Debug, Default, clap::Args)]
pub struct Args {}

/// Run `parlor chat`.
pub async fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor chat` is not built yet")
}
