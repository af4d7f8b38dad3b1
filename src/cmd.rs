//! One module per subcommand. Each has its clap `Args` (or `Command`) and a `run` function
//! returning the process exit code (0 ok, 1 a check or test found problems) or an error (2).

pub mod ask;
pub mod bench;
pub mod chat;
pub mod check;
pub mod debug;
pub mod erase;
pub mod history;
pub mod model;
pub mod persona;
pub mod telegram;
pub mod test;

use crate::cli::{Command, GlobalArgs};

/// Exit code of a subcommand that ran.
pub type ExitCode = i32;

/// Run one subcommand.
pub async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Chat(a) => chat::run(global, a).await,
        Command::Ask(a) => ask::run(global, a).await,
        Command::Check(a) => check::run(global, a),
        Command::Model(c) => model::run(global, c).await,
        Command::History(c) => history::run(global, c),
        Command::Telegram(a) => telegram::run(global, a).await,
        Command::Test(a) => test::run(global, a).await,
        Command::Persona(c) => persona::run(global, c),
        Command::Bench(a) => bench::run(global, a).await,
        Command::Debug(c) => debug::run(global, c).await,
    }
}
