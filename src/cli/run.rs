//! `run`, `replay` and `export`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use sim::{RunOptions, ScenarioOf, System};

use super::output::{print_summary, reproduce_command, write_trace};
use super::{determinism, flag_error, CliError, ExportArgs, Observe, ReplayArgs, RunArgs};
use metasim::sut::Sut;

pub fn profile(name: &str) -> Result<&'static sim::swarm::Profile, CliError> {
    sim::swarm::profile(name).ok_or_else(|| {
        let known: Vec<&str> = sim::swarm::PROFILES.iter().map(|p| p.name).collect();
        flag_error(
            "--profile",
            format!("unknown profile `{name}` (known: {})", known.join(", ")),
        )
    })
}

pub fn check_bugs(bugs: &[String]) -> Result<(), CliError> {
    for b in bugs {
        if !Sut::bugs().iter().any(|s| s.name == b) {
            let known: Vec<&str> = Sut::bugs().iter().map(|s| s.name).collect();
            return Err(flag_error(
                "--bug",
                format!("unknown bug switch `{b}` (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn log_wanted(observe: &Observe) -> bool {
    observe.log || std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty())
}

/// Run a scenario in this process and print its summary.
fn execute(
    scenario: &ScenarioOf<Sut>,
    seed: Option<u64>,
    observe: &Observe,
    reproduce: &str,
) -> Result<ExitCode, CliError> {
    check_bugs(&observe.bugs)?;
    check_bugs(&scenario.bugs)?;
    let options = RunOptions {
        keep_trace: observe.trace_out.is_some(),
        keep_detail: observe.trace_out.is_some(),
        log: log_wanted(observe),
        bugs: observe.bugs.clone(),
        seed,
    };
    let started = Instant::now();
    let report = sim::run::<Sut>(scenario, &options);
    let wall = started.elapsed();
    if let Some(path) = &observe.trace_out {
        write_trace(path, &report)?;
    }
    print_summary(&scenario.name, &report, wall, reproduce);
    if let Some(expected) = scenario.expect {
        let actual = if report.passed() {
            sim::Verdict::Pass
        } else {
            sim::Verdict::Fail
        };
        println!(
            "expected: {expected} ({})",
            if expected == actual {
                "as expected"
            } else {
                "NOT as expected"
            }
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn run_file(args: RunArgs) -> Result<ExitCode, CliError> {
    let scenario = ScenarioOf::<Sut>::load(&args.file)?;
    let mut base = format!("run {}", args.file.display());
    if let Some(seed) = args.seed {
        base.push_str(&format!(" --seed {seed}"));
    }
    if args.observe.check_determinism {
        check_bugs(&args.observe.bugs)?;
        return determinism::check(&base, &args.observe);
    }
    let reproduce = reproduce_command(&base, &args.observe.bugs);
    execute(&scenario, args.seed, &args.observe, &reproduce)
}

pub fn replay(args: ReplayArgs) -> Result<ExitCode, CliError> {
    let profile = profile(&args.profile)?;
    let base = format!("replay --seed {} --profile {}", args.seed, profile.name);
    if args.observe.check_determinism {
        check_bugs(&args.observe.bugs)?;
        return determinism::check(&base, &args.observe);
    }
    let scenario = sim::swarm::generate::<Sut>(args.seed, profile);
    let reproduce = reproduce_command(&base, &args.observe.bugs);
    execute(&scenario, None, &args.observe, &reproduce)
}

pub fn export(args: ExportArgs) -> Result<ExitCode, CliError> {
    let profile = profile(&args.profile)?;
    let scenario = sim::swarm::generate::<Sut>(args.seed, profile);
    let text = scenario
        .to_toml()
        .map_err(|e| CliError::Other(format!("cannot encode scenario: {e}")))?;
    write_file(&args.output, text.as_bytes())?;
    println!(
        "wrote {} ({} steps)",
        args.output.display(),
        scenario.steps.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|e| CliError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}
