//! `metasim diff`: where two runs part. Either two trace files (`--trace-out` JSON lines), or
//! one run (a scenario file or a seed) on this binary and on another (`--against`), which
//! answers "what did this commit change about seed 8812?". Prints the events around the
//! first difference with node, time, kind and detail; exit 0 when identical, 1 when not.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Args;
use sim::trace::{first_divergence, TraceEvent};

use super::{current_exe, Scratch, Target};
use crate::cli::output::read_trace;
use crate::cli::{flag_error, CliError};

/// Events shown before and after the first difference.
const AROUND: usize = 8;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Two trace files (JSON lines from `--trace-out`); or, with `--against`, one scenario
    /// file (or none, with `--seed`).
    #[arg(num_args = 0..=2)]
    pub files: Vec<PathBuf>,
    /// Run the target on this binary and on another metasim binary, and diff the two traces.
    #[arg(long, value_name = "METASIM")]
    pub against: Option<PathBuf>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value = metasim::sut::DEFAULT_SYSTEM)]
    pub system: String,
    #[arg(long, default_value = "default")]
    pub profile: String,
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

pub fn diff(args: DiffArgs) -> Result<ExitCode, CliError> {
    let (left, right, names) = match &args.against {
        None => {
            let [a, b] = args.files.as_slice() else {
                return Err(flag_error("FILES", "give two trace files, or a run and --against METASIM"));
            };
            (read_trace(a)?, read_trace(b)?, [a.display().to_string(), b.display().to_string()])
        }
        Some(other) => {
            if args.files.len() > 1 {
                return Err(flag_error("--against", "takes one scenario file or --seed, not two files"));
            }
            let target = Target {
                file: args.files.first().cloned(),
                seed: args.seed,
                system: args.system.clone(),
                profile: args.profile.clone(),
                bugs: args.bugs.clone(),
            };
            if target.file.is_none() && target.seed.is_none() {
                return Err(flag_error("--seed", "give a scenario file or --seed N to run on both binaries"));
            }
            let this = current_exe()?;
            let a = trace_of(&this, &target, "diff-a.jsonl")?;
            let b = trace_of(other, &target, "diff-b.jsonl")?;
            (a, b, [this.display().to_string(), other.display().to_string()])
        }
    };
    println!("first:  {} ({} events)", names[0], left.len());
    println!("second: {} ({} events)", names[1], right.len());
    match first_divergence(&left, &right, AROUND) {
        None => {
            println!("identical: {} events", left.len());
            Ok(ExitCode::SUCCESS)
        }
        Some(d) => {
            print!("{}", report(&d, &left, &right));
            Ok(ExitCode::from(1))
        }
    }
}

/// The first difference, with the equal events before it and both runs' events after it.
pub fn report(d: &sim::trace::Divergence, left: &[TraceEvent], right: &[TraceEvent]) -> String {
    let mut out = format!("differ at event #{}\n", d.index);
    out.push_str("before it (identical in both):\n");
    for e in &d.context {
        out.push_str(&format!("    {}\n", line(e)));
    }
    for (label, trace) in [("first", left), ("second", right)] {
        out.push_str(&format!("{label} run from there:\n"));
        let after = trace.iter().skip(d.index).take(AROUND);
        let mut any = false;
        for (i, e) in after.enumerate() {
            out.push_str(&format!("  {} {}\n", if i == 0 { ">" } else { " " }, line(e)));
            any = true;
        }
        if !any {
            out.push_str("  > <trace ended>\n");
        }
    }
    out
}

fn line(e: &TraceEvent) -> String {
    sim::scenario::escape_control(&e.to_string()).into_owned()
}

/// Run the target on `exe` with `--trace-out` and read the trace back.
fn trace_of(exe: &std::path::Path, target: &Target, name: &str) -> Result<Vec<TraceEvent>, CliError> {
    let scratch = Scratch::new(name);
    let mut cmd = Command::new(exe);
    match &target.file {
        Some(_) => cmd.arg("run"),
        None => cmd.arg("replay"),
    };
    cmd.args(target.args()).arg("--trace-out").arg(&scratch.0).env_remove("RUST_LOG");
    let out = cmd.output().map_err(|e| CliError::Io { path: exe.display().to_string(), message: e.to_string() })?;
    // Exit 1 is a failing run, which has a trace all the same; 2 is bad input.
    if !matches!(out.status.code(), Some(0 | 1)) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(CliError::Io {
            path: exe.display().to_string(),
            message: format!("the run failed ({}): {}", out.status, stderr.trim()),
        });
    }
    read_trace(&scratch.0)
}
