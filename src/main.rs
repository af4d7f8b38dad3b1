//! The `parlor` binary: parse the command line, run the subcommand, map errors to exit codes
//! (0 ok, 1 a check or test found problems, 2 an error, printed with its whole cause chain).

use clap::Parser;
use parlor::cli::{Cli, Command};

fn main() {
    parlor::engine::llama::openmp::restart_with_spin_count();
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or_else(|| Command::Chat(parlor::cmd::chat::Args::default()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("parlor: could not start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match runtime.block_on(parlor::cmd::run(&cli.global, command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("parlor: {e:#}");
            2
        }
    };
    // Do not wait for blocking tasks (stdin readers) that may never end.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    std::process::exit(code);
}
