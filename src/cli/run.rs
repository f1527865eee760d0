//! `run`, `replay` and `export`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use metasim::sut::{DEFAULT_SYSTEM, SYSTEMS};
use metasim::with_system;
use sim::scenario::escape_control;
use sim::{Harness, RunOptions, ScenarioOf, System, Verdict};

use super::output::{check_trace_out, describe_violation, print_summary, reproduce_command, write_trace};
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
            return Err(flag_error("--bug", sim::harness::unknown_bug_message(b, S::NAME, table)));
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

/// Run a scenario in this process and print its summary. Exit 0 when it passed and, if the
/// file says what it expects, gave that; 1 otherwise.
fn execute<S: System>(
    scenario: &ScenarioOf<S>,
    seed: Option<u64>,
    observe: &Observe,
    reproduce: &str,
) -> Result<ExitCode, CliError> {
    check_bugs::<S>(&observe.bugs)?;
    check_bugs::<S>(&scenario.bugs)?;
    if let Some(path) = &observe.trace_out {
        check_trace_out(path)?;
    }
    // A failure shows the events of what it names in words, which takes the whole trace with
    // its details; most runs pass and need neither, and keeping them made a run take up to a
    // third longer. So a run keeps them only when its trace is asked for (`--trace-out`,
    // `--log`), and a failure is run again keeping them: the same run, which the trace hash
    // proves. Its wall time is the first run's.
    let detailed = RunOptions {
        keep_trace: true,
        keep_detail: true,
        log: log_wanted(observe),
        bugs: observe.bugs.clone(),
        seed,
        full_checks: observe.full_checks,
    };
    let trace_wanted = detailed.log || observe.trace_out.is_some();
    let quick = RunOptions { keep_trace: false, keep_detail: false, ..detailed.clone() };
    let started = Instant::now();
    let mut report = sim::run::<S>(scenario, if trace_wanted { &detailed } else { &quick });
    let wall = started.elapsed();
    if report.violation.is_some() && !trace_wanted {
        report = again_with_trace::<S>(scenario, &detailed, &report)?;
    }
    if let Some(path) = &observe.trace_out {
        write_trace(path, &report)?;
    }
    print_summary(&scenario.name, S::NAME, &report, wall, reproduce);
    let as_expected = match scenario.expect {
        Some(expected) => {
            let judged = judge_expectation(expected, scenario.expect_violation.as_deref(), &report);
            match &judged {
                Ok(()) => println!("expected: {expected} (as expected)"),
                Err(why) => println!("expected: {expected} (NOT as expected: {why})"),
            }
            judged.is_ok()
        }
        None => true,
    };
    Ok(if report.passed() && as_expected { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The run that gave `first` once more, keeping its trace with details; an error if it does not
/// repeat `first` event for event (equal trace hashes and event counts).
fn again_with_trace<S: System>(
    scenario: &ScenarioOf<S>,
    options: &RunOptions,
    first: &sim::RunReport,
) -> Result<sim::RunReport, CliError> {
    let again = sim::run::<S>(scenario, options);
    if (again.trace_hash, again.events) != (first.trace_hash, first.events) {
        // A determinism bug; `replay --check-determinism` shows where the two runs part.
        return Err(CliError::Other(format!(
            "the run did not repeat itself when run again to show its failure: {} events and trace hash \
             {:016x}, then {} and {:016x}",
            first.events, first.trace_hash, again.events, again.trace_hash
        )));
    }
    Ok(again)
}

/// Whether a run gave the verdict its file expects, and failed the way it names.
fn judge_expectation(expected: Verdict, violation: Option<&str>, report: &sim::RunReport) -> Result<(), String> {
    let actual = if report.passed() { Verdict::Pass } else { Verdict::Fail };
    if actual != expected {
        return Err(format!("the run gave {actual}"));
    }
    match (violation, &report.violation) {
        (Some(want), Some(got)) if !describe_violation(got).contains(want) => {
            Err(format!("the violation does not contain {:?}", escape_control(want)))
        }
        (Some(want), None) => Err(format!("no violation, expected one containing {:?}", escape_control(want))),
        _ => Ok(()),
    }
}

/// The `sut` a scenario file names, with its line, read leniently: a file that does not
/// parse is reported, with its place, by the typed parse that follows.
pub(super) fn sut_of(text: &str) -> Option<(String, usize)> {
    #[derive(serde::Deserialize)]
    struct SutOnly {
        sut: Option<toml::Spanned<String>>,
    }
    let sut = toml::from_str::<SutOnly>(text).ok()?.sut?;
    let line = text.as_bytes()[..sut.span().start].iter().filter(|&&b| b == b'\n').count() + 1;
    Some((sut.into_inner(), line))
}

pub fn run_file(args: RunArgs) -> Result<ExitCode, CliError> {
    let file = args.file.display().to_string();
    let text = sim::scenario::read_source(&args.file)?;
    let (system, sut_line) = sut_of(&text).unwrap_or_else(|| (DEFAULT_SYSTEM.to_string(), 0));
    with_system!(system.as_str(), S => run_text::<S>(&args, &file, &text), unknown => Err(CliError::Scenario(
        sim::ScenarioError {
            file,
            line: sut_line,
            field: "sut".into(),
            message: format!("unknown system `{system}` (known: {})", SYSTEMS.join(", ")),
        },
    )))
}

/// A file's warnings on stderr: the first few, then how many more (an exported seed can
/// hold dozens of the same kind).
fn print_warnings(warnings: &[sim::ScenarioError]) {
    const SHOWN_MAX: usize = 3;
    for warning in warnings.iter().take(SHOWN_MAX) {
        eprintln!("warning: {warning}");
    }
    if warnings.len() > SHOWN_MAX {
        eprintln!("warning: ... and {} more like these", warnings.len() - SHOWN_MAX);
    }
}

/// Check a scenario file's text for system `S` (refused: exit 2) and run it.
fn run_text<S: System>(args: &RunArgs, file: &str, text: &str) -> Result<ExitCode, CliError> {
    let loaded = sim::scenario::parse_for::<S>(file, text)?;
    let mut base = vec!["run".to_string(), file.to_string()];
    if let Some(seed) = args.seed {
        base.extend(["--seed".to_string(), seed.to_string()]);
    }
    if args.observe.check_determinism {
        // The two child runs load the file again and print its warnings.
        check_bugs::<S>(&args.observe.bugs)?;
        return determinism::check(&base, &args.observe);
    }
    print_warnings(&loaded.warnings);
    let reproduce = reproduce_command(&base.join(" "), &args.observe.bugs);
    execute::<S>(&loaded.scenario, args.seed, &args.observe, &reproduce)
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

pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|e| CliError::Io { path: path.display().to_string(), message: e.to_string() })
}

/// Refuse an output file whose folder is missing, or that is a folder, before a command that
/// takes minutes starts instead of when it is done.
pub(super) fn check_output_path(path: &Path) -> Result<(), CliError> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let problem = if path.is_dir() {
        "is a folder, not a file".to_string()
    } else if !folder.is_dir() {
        format!("there is no folder {} to write it in", folder.display())
    } else {
        return Ok(());
    };
    Err(CliError::Io { path: path.display().to_string(), message: problem })
}
