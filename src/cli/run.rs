//! `run`, `replay` and `export`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use metasim::sut::{DEFAULT_SYSTEM, SYSTEMS};
use metasim::with_system;
use sim::{Harness, RunOptions, ScenarioOf, System};

use super::output::{print_summary, reproduce_command, write_trace};
use super::{determinism, flag_error, CliError, ExportArgs, Observe, ReplayArgs, RunArgs};

pub fn profile(name: &str) -> Result<&'static sim::swarm::Profile, CliError> {
    sim::swarm::profile(name).ok_or_else(|| {
        let known: Vec<&str> = sim::swarm::PROFILES.iter().map(|p| p.name).collect();
        flag_error("--profile", format!("unknown profile `{name}` (known: {})", known.join(", ")))
    })
}

pub fn unknown_system(name: &str) -> CliError {
    flag_error("--system", format!("unknown system `{name}` (known: {})", SYSTEMS.join(", ")))
}

pub fn check_bugs<S: System>(bugs: &[String]) -> Result<(), CliError> {
    for b in bugs {
        let table = <S::Harness as Harness>::bugs();
        if !table.iter().any(|s| s.name == b) {
            let known: Vec<&str> = table.iter().map(|s| s.name).collect();
            return Err(flag_error(
                "--bug",
                format!("unknown bug switch `{b}` for system {} (known: {})", S::NAME, known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The `--system` part of a reproduce command: empty for the default system.
pub fn system_flag(system: &str) -> String {
    if system == DEFAULT_SYSTEM {
        String::new()
    } else {
        format!(" --system {system}")
    }
}

fn log_wanted(observe: &Observe) -> bool {
    observe.log || std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty())
}

/// Run a scenario in this process and print its summary.
fn execute<S: System>(
    scenario: &ScenarioOf<S>,
    seed: Option<u64>,
    observe: &Observe,
    reproduce: &str,
) -> Result<ExitCode, CliError> {
    check_bugs::<S>(&observe.bugs)?;
    check_bugs::<S>(&scenario.bugs)?;
    let options = RunOptions {
        keep_trace: observe.trace_out.is_some(),
        keep_detail: observe.trace_out.is_some(),
        log: log_wanted(observe),
        bugs: observe.bugs.clone(),
        seed,
    };
    let started = Instant::now();
    let report = sim::run::<S>(scenario, &options);
    let wall = started.elapsed();
    if let Some(path) = &observe.trace_out {
        write_trace(path, &report)?;
    }
    print_summary(&scenario.name, S::NAME, &report, wall, reproduce);
    if let Some(expected) = scenario.expect {
        let actual = if report.passed() { sim::Verdict::Pass } else { sim::Verdict::Fail };
        println!("expected: {expected} ({})", if expected == actual { "as expected" } else { "NOT as expected" });
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The `sut` a scenario file names, read leniently: a file that does not parse is reported,
/// with its place, by the typed parse that follows.
fn sut_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .and_then(|t| t.get("sut").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| DEFAULT_SYSTEM.to_string())
}

pub fn run_file(args: RunArgs) -> Result<ExitCode, CliError> {
    let system = sut_of(&args.file);
    with_system!(system.as_str(), S => {
        let scenario = ScenarioOf::<S>::load(&args.file)?;
        <<S as System>::Harness as Harness>::validate_config(&scenario.system, scenario.servers).map_err(|message| sim::ScenarioError {
            file: args.file.display().to_string(),
            line: 0,
            field: "system".into(),
            message,
        })?;
        let mut base = vec!["run".to_string(), args.file.display().to_string()];
        if let Some(seed) = args.seed {
            base.extend(["--seed".to_string(), seed.to_string()]);
        }
        if args.observe.check_determinism {
            check_bugs::<S>(&args.observe.bugs)?;
            return determinism::check(&base, &args.observe);
        }
        let reproduce = reproduce_command(&base.join(" "), &args.observe.bugs);
        execute::<S>(&scenario, args.seed, &args.observe, &reproduce)
    }, unknown => Err(CliError::Other(format!("{}: sut: unknown system `{system}` (known: {})", args.file.display(), SYSTEMS.join(", ")))))
}

pub fn replay(args: ReplayArgs) -> Result<ExitCode, CliError> {
    let profile = profile(&args.generated.profile)?;
    with_system!(args.generated.system.as_str(), S => {
        let mut base = vec!["replay".into(), "--seed".into(), args.generated.seed.to_string(), "--profile".into(), profile.name.to_string()];
        if args.generated.system != DEFAULT_SYSTEM {
            base.extend(["--system".to_string(), args.generated.system.clone()]);
        }
        if args.observe.check_determinism {
            check_bugs::<S>(&args.observe.bugs)?;
            return determinism::check(&base, &args.observe);
        }
        let scenario = sim::swarm::generate::<S>(args.generated.seed, profile);
        let reproduce = reproduce_command(&base.join(" "), &args.observe.bugs);
        execute::<S>(&scenario, None, &args.observe, &reproduce)
    }, unknown => Err(unknown_system(&args.generated.system)))
}

pub fn export(args: ExportArgs) -> Result<ExitCode, CliError> {
    let profile = profile(&args.generated.profile)?;
    with_system!(args.generated.system.as_str(), S => {
        let scenario = sim::swarm::generate::<S>(args.generated.seed, profile);
        let text = scenario.to_toml().map_err(|e| CliError::Other(format!("cannot encode scenario: {e}")))?;
        write_file(&args.output, text.as_bytes())?;
        println!("wrote {} ({} steps)", args.output.display(), scenario.steps.len());
        Ok(ExitCode::SUCCESS)
    }, unknown => Err(unknown_system(&args.generated.system)))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|e| CliError::Io { path: path.display().to_string(), message: e.to_string() })
}
