//! `parlor debug`.

use crate::cli::GlobalArgs;

/// Subcommands of `parlor debug`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Not built yet.
    List,
}

/// Run `parlor debug`.
pub async fn run(_global: &GlobalArgs, _command: Command) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor debug` is not built yet")
}
