//! `--check-determinism`: run the same command twice in fresh processes, each writing its full
//! trace, and report the first event where they differ. Separate processes, because madsim
//! statics can leak between runs of one process (madsim issue #174).

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use super::output::read_trace;
use super::{CliError, Observe};

/// How many equal events to show before the first difference.
const CONTEXT_EVENTS: usize = 10;

fn temp_trace(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("metasim-{}-{tag}.trace.jsonl", std::process::id()))
}

/// Run `metasim <base> [--bug ..] --trace-out T` twice and compare the traces.
pub fn check(base: &[String], observe: &Observe) -> Result<ExitCode, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Other(format!("cannot find own executable: {e}")))?;
    let mut traces = Vec::new();
    let mut summaries = Vec::new();
    for tag in ["first", "second"] {
        let path = temp_trace(tag);
        let mut cmd = Command::new(&exe);
        cmd.args(base);
        for b in &observe.bugs {
            cmd.args(["--bug", b]);
        }
        cmd.arg("--trace-out").arg(&path).stdin(Stdio::null()).stderr(Stdio::inherit());
        let out = cmd.output().map_err(|e| CliError::Other(format!("cannot start a child run: {e}")))?;
        if out.status.code() == Some(2) {
            return Err(CliError::Other(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let trace = read_trace(&path)?;
        let _ = std::fs::remove_file(&path);
        summaries.push(String::from_utf8_lossy(&out.stdout).into_owned());
        traces.push(trace);
    }
    let hash_line = |s: &str| s.lines().find(|l| l.starts_with("trace-hash:")).unwrap_or("trace-hash: ?").to_string();
    print!("{}", summaries[0]);
    match sim::trace::first_divergence(&traces[0], &traces[1], CONTEXT_EVENTS) {
        None if hash_line(&summaries[0]) == hash_line(&summaries[1]) => {
            println!("determinism: ok ({} events, same trace in two processes)", traces[0].len());
            let passed = summaries[0].lines().any(|l| l == "verdict: pass");
            Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        None => {
            println!("determinism: FAILED: traces agree but the summaries differ:");
            println!("  first:  {}", hash_line(&summaries[0]));
            println!("  second: {}", hash_line(&summaries[1]));
            Ok(ExitCode::from(1))
        }
        Some(d) => {
            println!("determinism: FAILED: the same run gave two different traces");
            println!("{d}");
            Ok(ExitCode::from(1))
        }
    }
}
