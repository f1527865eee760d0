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
