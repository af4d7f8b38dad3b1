//! `parlor history`.

use crate::cli::GlobalArgs;

/// Subcommands of `parlor history`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Not built yet.
    List,
}

/// Run `parlor history`.
pub fn run(_global: &GlobalArgs, _command: Command) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor history` is not built yet")
}
