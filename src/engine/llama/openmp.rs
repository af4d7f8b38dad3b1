//! How long llama.cpp's threads spin at a barrier before they sleep.
//!
//! llama.cpp runs a decode's threads under OpenMP; every operation of the graph ends at a
//! barrier. GNU OpenMP spins 300 000 times at a barrier before it sleeps (`GOMP_SPINCOUNT`),
//! and it only lowers that when one process has more threads than CPUs. Two processes of 2
//! threads on 2 cores (a Telegram bot and a chat in the terminal, or a bot and anything else
//! busy) then burn each other's time slices spinning: measured here (SmolLM2-135M, 400-token
//! greedy replies, `parlor ask --json`), 80-83 tok/s alone, 11.4 each with two processes and
//! 3.7-4.6 each with three. With 1000 spins: 80-83 alone (the same), 28.5 each with two and
//! 21 each with three. Spinning 0 times (`OMP_WAIT_POLICY=passive`) or 100 costs a single
//! process two thirds of its speed (28-32 tok/s). docs/bench.md has the table and commands.
//!
//! libgomp also spins less once a process has more OpenMP threads than CPUs, which happens
//! as soon as a second thread of the process runs llama.cpp (each thread that starts a
//! parallel region gets a team of its own): then it spins 100 times, or 1000 with
//! `OMP_WAIT_POLICY=active`. At 100 a decode pays a sleep and a wake-up at almost every
//! barrier: `parlor bench --only throughput`, which runs a raw llama.cpp loop on one thread and
//! the bot on another, measured whichever ran second at 30 tok/s against 62-78 for the first
//! (with the wait policy active: 62 and 63). So parlor sets `OMP_WAIT_POLICY=active` together
//! with `GOMP_SPINCOUNT=1000`: 1000 spins everywhere (a process alone: 81-85 tok/s with or
//! without the policy; two processes: 30 each).
//!
//! libgomp reads its environment in a constructor that runs before `main`, so setting the
//! variables in `main` comes too late: the `parlor` binary starts itself again, once, with them
//! set ([`restart_with_spin_count`]; `exec` keeps the process id, so signals and service
//! managers see one process). `.cargo/config.toml` sets them for the test binaries. A
//! `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` the user set is left alone (then neither is set).

use std::ffi::OsString;

/// The variable libgomp reads for its spin count.
pub const SPIN_VAR: &str = "GOMP_SPINCOUNT";

/// The variable libgomp reads for its wait policy.
pub const POLICY_VAR: &str = "OMP_WAIT_POLICY";

/// The wait policy parlor sets: `active` only raises the spin count used once a process has
/// more threads than CPUs (from 100 to 1000); [`SPIN_COUNT`] caps the rest.
pub const POLICY: &str = "active";

/// Spins at a barrier before a thread sleeps (libgomp's own value when a process has more
/// threads than CPUs).
pub const SPIN_COUNT: &str = "1000";

/// Whether the environment (`get` reads one variable) leaves the spin count to parlor.
pub fn spin_count_unset(get: impl Fn(&str) -> Option<OsString>) -> bool {
    get(SPIN_VAR).is_none() && get(POLICY_VAR).is_none()
}

/// Replace this process by the same program with the same arguments, [`SPIN_VAR`] set to
/// [`SPIN_COUNT`] and [`POLICY_VAR`] to [`POLICY`], unless the user chose a spin count or wait policy. Returns only when it did
/// not restart (nothing to do, or the program could not be started again, in which case the
/// process goes on with libgomp's default).
#[cfg(unix)]
pub fn restart_with_spin_count() {
    use std::os::unix::process::CommandExt;
    if !spin_count_unset(|k| std::env::var_os(k)) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // `exec` returns only on failure.
    let _failed = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env(SPIN_VAR, SPIN_COUNT)
        .env(POLICY_VAR, POLICY)
        .exec();
}

/// Elsewhere llama.cpp is not built with GNU OpenMP by this crate's defaults: nothing to do.
#[cfg(not(unix))]
pub fn restart_with_spin_count() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spin_count_or_wait_policy_the_user_set_is_kept() {
        assert!(spin_count_unset(|_| None));
        assert!(!spin_count_unset(|k| (k == SPIN_VAR).then(|| "5000".into())));
        assert!(!spin_count_unset(
            |k| (k == POLICY_VAR).then(|| "active".into())
        ));
    }
}
