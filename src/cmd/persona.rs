//! `parlor persona`.

use crate::cli::GlobalArgs;

/// Subcommands of `parlor persona`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Not built yet.
    List,
}

/// Run `parlor persona`.
pub fn run(_global: &GlobalArgs, _command: Command) -> anyhow::Result<super::ExitCode> {
    anyhow::bail!("`parlor persona` is not built yet")
}
