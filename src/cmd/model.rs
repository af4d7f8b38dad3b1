//! `parlor model`.

use crate::cli::GlobalArgs;

/// Subcommands of `parlor model`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Not built yet.
    List,
}

/// Run `parlor model`.
pub async fn run(_global: &GlobalArgs, _command: Command) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor model` is not built yet")
}
