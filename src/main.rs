//! `metasim`: run, replay, fuzz and export deterministic cluster simulations.
//!
//! Exit codes: 0 pass, 1 a violated invariant or expectation (or a determinism failure),
//! 2 bad input (scenario file or flag).

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// A run allocates and frees small things all the time (messages, keys, effects); mimalloc
/// keeps that cheap, and its placement never reaches a run: nothing simulated reads an address.
/// Built without transparent huge pages (`no_thp`): with them, a 2 MB page's first touch cost
/// whole milliseconds on some runs and not others on our VM, so figures were bimodal.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::Cli::parse();
    sim::world::quiet_panics();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Rust ignores SIGPIPE, so a print to a reader that has gone (`metasim run f | head -3`)
/// panics with a backtrace. Taking the signal's default back ends the process quietly, the way
/// other command-line tools end in a pipeline.
fn restore_sigpipe() {
    // SAFETY: called first thing in `main`, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
