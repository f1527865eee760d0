//! Command-line interface: argument types and dispatch.

mod bench;
mod bench_bare;
mod bench_checks;
mod bench_meta;
mod coverage;
mod determinism;
mod explain;
mod fuzz;
mod guided;
mod merge;
mod output;
mod pool;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sim::scenario::escape_control;
use thiserror::Error;

/// A human-facing error at the CLI edge; always exit code 2. Text that comes from the user
/// (flag values, paths, a file's content) is shown with control characters escaped.
#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Scenario(#[from] sim::ScenarioError),
    #[error("{flag}: {}", escape_control(message))]
    Flag { flag: &'static str, message: String },
    #[error("{}: {}", escape_control(path), escape_control(message))]
    Io { path: String, message: String },
    #[error("{0}")]
    Other(String),
}

pub fn flag_error(flag: &'static str, message: impl Into<String>) -> CliError {
    CliError::Flag { flag, message: message.into() }
}

#[derive(Parser, Debug)]
#[command(name = "metasim", version, about = "Deterministic simulation testbed for cluster metadata")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario file.
    Run(RunArgs),
    /// Run the scenario that a seed generates.
    Replay(ReplayArgs),
    /// Run many seeds and report every failure.
    Fuzz(fuzz::FuzzArgs),
    /// Merge the `fuzz --json` lines of a campaign's shards: failures, missing seeds, totals.
    Merge(merge::MergeArgs),
    /// Write the scenario a seed generates to a file.
    Export(ExportArgs),
    /// Which behaviours (coverage probes) a range of seeds reached, how often, and what never.
    Coverage(coverage::CoverageArgs),
    /// Shrink a failing run to a small scenario that still fails with the same invariant.
    Shrink(explain::shrink::ShrinkArgs),
    /// Draw a run as one self-contained HTML page: a lane per server, the failure marked.
    Timeline(explain::timeline::TimelineArgs),
    /// The first event where two runs part: two trace files, or one run on two binaries.
    Diff(explain::diff::DiffArgs),
    /// Measure the engine: message throughput and simulated-to-wall ratio, next to raw madsim.
    Bench(bench::BenchArgs),
    /// List the fuzz profiles.
    Profiles,
    /// List the bug switches of the system under test.
    Bugs,
    #[command(hide = true)]
    Worker(fuzz::WorkerArgs),
}

/// Options shared by every command that runs a simulation.
#[derive(Args, Debug, Clone, Default)]
pub struct Observe {
    /// Turn on a bug switch (repeatable); see `metasim bugs`.
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Print the event log (simulated time, node, event) to stderr. RUST_LOG does the same.
    #[arg(long)]
    pub log: bool,
    /// Run twice in separate processes and report the first differing trace event.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write the full canonical trace as JSON lines (with --check-determinism: the first run's).
    #[arg(long, value_name = "FILE")]
    pub trace_out: Option<PathBuf>,
    /// Check every invariant on the whole cluster after every event, not only where the event
    /// touched (slower; the verdict must be the same).
    #[arg(long)]
    pub full_checks: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub file: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub observe: Observe,
}

/// Which generated scenario: a seed, the system it is for and the fuzz profile it expands with.
#[derive(Args, Debug)]
pub struct Generated {
    #[arg(long)]
    pub seed: u64,
    /// The system under test: meta (the default) or register (the engine's fixture).
    #[arg(long, default_value = metasim::sut::DEFAULT_SYSTEM)]
    pub system: String,
    /// Fuzz profile the seed is expanded with; see `metasim profiles`.
    #[arg(long, default_value = "default")]
    pub profile: String,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub generated: Generated,
    #[command(flatten)]
    pub observe: Observe,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub generated: Generated,
    /// Where to write the scenario.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

pub fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run(args) => run::run_file(args),
        Command::Replay(args) => run::replay(args),
        Command::Fuzz(args) => fuzz::fuzz(args),
        Command::Merge(args) => merge::merge(args),
        Command::Export(args) => run::export(args),
        Command::Coverage(args) => coverage::coverage(args),
        Command::Bench(args) => bench::bench(args),
        Command::Shrink(args) => explain::shrink::shrink(args),
        Command::Timeline(args) => explain::timeline::timeline(args),
        Command::Diff(args) => explain::diff::diff(args),
        Command::Profiles => {
            for p in sim::swarm::PROFILES {
                let windows = if p.guided_windows { "; `fuzz --guided` opens windows by default" } else { "" };
                println!("{:<10} {}{windows}", p.name, p.what);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bugs => {
            for system in metasim::sut::SYSTEMS {
                metasim::with_system!(*system, S => {
                    for b in <<S as sim::System>::Harness as sim::Harness>::bugs() {
                        println!("{system:<9} {:<28} {}", b.name, b.what);
                    }
                }, unknown => unreachable!("listed systems are known"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => fuzz::worker(args),
    }
}
