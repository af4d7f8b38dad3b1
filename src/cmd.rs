//! One module per subcommand. Each has its clap `Args` (or `Command`) and a `run` function
//! returning the process exit code (0 ok, 1 a check or test found problems) or an error (2).

pub mod ask;
#[cfg(feature = "bench")]
pub mod bench;
pub mod chat;
pub mod check;
#[cfg(feature = "testkit")]
pub mod debug;
pub mod erase;
pub mod eval;
pub mod history;
pub mod model;
pub mod persona;
pub mod report;
pub mod telegram;
pub mod test;

use crate::cli::{Command, GlobalArgs};
use std::io::IsTerminal;

/// Exit code of a subcommand that ran.
pub type ExitCode = i32;

/// Run one subcommand.
pub async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<ExitCode> {
    let mut global = global.clone();
    match &command {
        // A service whose stderr is not a terminal (systemd, a container): its stderr is the
        // journal or the container log, so the logs go there too.
        Command::Telegram(_) if !std::io::stderr().is_terminal() => global.log_stderr = true,
        // The full-screen chat owns the terminal.
        Command::Chat(_) => global.log_stderr = false,
        _ => {}
    }
    let global = &global;
    match command {
        Command::Chat(a) => chat::run(global, a).await,
        Command::Ask(a) => ask::run(global, a).await,
        Command::Check(a) => check::run(global, a),
        Command::Model(c) => model::run(global, c).await,
        Command::History(c) => history::run(global, c),
        Command::Telegram(a) => telegram::run(global, a).await,
        Command::Test(a) => test::run(global, a).await,
        Command::Persona(c) => persona::run(global, c),
        #[cfg(feature = "bench")]
        Command::Bench(a) => bench::run(global, a).await,
        Command::Eval(a) => eval::run(global, a).await,
        Command::Report(a) => report::run(global, a),
        #[cfg(feature = "testkit")]
        Command::Debug(c) => debug::run(global, c).await,
        Command::Completions { shell } => {
            let mut cli = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cli, "parlor", &mut std::io::stdout());
            Ok(0)
        }
    }
}
