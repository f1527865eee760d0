//! Explaining a failure: `shrink` (the smallest scenario that still fails the same way),
//! `timeline` (a picture of the run), `diff` (the first event where two runs part), and the
//! failure context a report shows (the events of what the violation names).

pub mod context;
pub mod diff;
pub mod shrink;
pub mod timeline;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use metasim::sut::DEFAULT_SYSTEM;
use sim::{ScenarioOf, System};

use super::run::{check_bugs, profile, sut_of};
use super::CliError;

/// Which run to explain: a scenario file, or a seed expanded under a profile.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// A scenario file (TOML); without it, `--seed` names a generated scenario.
    pub file: Option<PathBuf>,
    /// The seed to expand (or, with a file, to override the file's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The system under test, for a seed: meta (the default) or register.
    #[arg(long, default_value = DEFAULT_SYSTEM)]
    pub system: String,
    /// Fuzz profile a seed is expanded with; see `metasim profiles`.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Turn on a bug switch (repeatable); see `metasim bugs`.
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

impl Target {
    /// The system the target runs: the file's `sut`, or `--system`.
    pub fn system(&self) -> Result<String, CliError> {
        match &self.file {
            Some(path) => {
                let text = sim::scenario::read_source(path)?;
                Ok(sut_of(&text).map_or_else(|| DEFAULT_SYSTEM.to_string(), |(s, _)| s))
            }
            None => Ok(self.system.clone()),
        }
    }

    /// The scenario, with the target's bug switches folded into its own `bugs`, so that it
    /// runs the same way as a file with no flags.
    pub fn load<S: System>(&self) -> Result<ScenarioOf<S>, CliError> {
        check_bugs::<S>(&self.bugs)?;
        let mut scenario = match (&self.file, self.seed) {
            (Some(path), seed) => {
                let text = sim::scenario::read_source(path)?;
                let loaded = sim::scenario::parse_for::<S>(&path.display().to_string(), &text)?;
                let mut scenario = loaded.scenario;
                if let Some(seed) = seed {
                    scenario.seed = seed;
                }
                scenario
            }
            (None, Some(seed)) => sim::swarm::generate::<S>(seed, profile(&self.profile)?),
            (None, None) => return Err(super::flag_error("--seed", "give a scenario file or --seed N")),
        };
        check_bugs::<S>(&scenario.bugs)?;
        for b in &self.bugs {
            if !scenario.bugs.contains(b) {
                scenario.bugs.push(b.clone());
            }
        }
        Ok(scenario)
    }

    /// The target as `metasim` arguments after the command name (`FILE --seed N` or
    /// `--seed N --profile P`), bugs included.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        match &self.file {
            Some(path) => {
                args.push(path.display().to_string());
                if let Some(seed) = self.seed {
                    args.extend(["--seed".into(), seed.to_string()]);
                }
            }
            None => {
                args.extend(["--seed".into(), self.seed.unwrap_or_default().to_string()]);
                args.extend(["--profile".into(), self.profile.clone()]);
                if self.system != DEFAULT_SYSTEM {
                    args.extend(["--system".into(), self.system.clone()]);
                }
            }
        }
        for b in &self.bugs {
            args.extend(["--bug".into(), b.clone()]);
        }
        args
    }
}

/// What one run of `metasim run` printed, read back from its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The invariant of the violation, if it failed.
    pub invariant: Option<String>,
    /// The violation's simulated time in ms (rounded up).
    pub violation_ms: Option<u64>,
    pub events: u64,
    pub verdict: String,
}

/// Run `exe run file` in a child process (a fresh process per run keeps runs independent, and a
/// candidate that crashes the process costs one run, not the shrink) and read its summary.
pub fn run_child(exe: &Path, file: &Path, extra: &[String]) -> Result<Outcome, CliError> {
    let out = Command::new(exe)
        .arg("run")
        .arg(file)
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .map_err(|e| CliError::Other(format!("cannot run {}: {e}", exe.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(parse_outcome(&stdout))
}

/// Read the lines `violation: INV at 1.5s on n2: ...`, `events: N` and `verdict: V`.
pub fn parse_outcome(stdout: &str) -> Outcome {
    let mut outcome = Outcome::default();
    for line in stdout.lines() {
        if let Some(v) = line.strip_prefix("violation: ") {
            let (invariant, rest) = v.split_once(" at ").unwrap_or((v, ""));
            outcome.invariant = Some(invariant.to_string());
            outcome.violation_ms =
                rest.split_once('s').and_then(|(secs, _)| secs.parse::<f64>().ok()).map(|s| (s * 1000.0).ceil() as u64);
        } else if let Some(v) = line.strip_prefix("events: ") {
            outcome.events = v.trim().parse().unwrap_or_default();
        } else if let Some(v) = line.strip_prefix("verdict: ") {
            outcome.verdict = v.trim().to_string();
        }
    }
    outcome
}

/// This binary, to run children with.
pub fn current_exe() -> Result<PathBuf, CliError> {
    std::env::current_exe().map_err(|e| CliError::Other(format!("cannot find the metasim binary: {e}")))
}

/// A scratch file of this process, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        Scratch(std::env::temp_dir().join(format!("metasim-{}-{name}", std::process::id())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
