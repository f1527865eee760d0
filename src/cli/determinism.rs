//! `--check-determinism`: run the same command twice in fresh processes, each writing its full
//! trace, and report the first event where they differ. Separate processes, so that nothing a
//! first run leaves in the process (a static, an allocator's state) can make the second agree.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use super::output::{check_trace_out, read_trace};
use super::{CliError, Observe};

/// How many equal events to show before the first difference.
const CONTEXT_EVENTS: usize = 10;

fn temp_trace(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("metasim-{}-{tag}.trace.jsonl", std::process::id()))
}

/// Run `metasim <base> [--bug ..] --trace-out T` twice and compare the traces. A
/// `--trace-out` of the user's receives the first run's trace.
pub fn check(base: &[String], observe: &Observe) -> Result<ExitCode, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Other(format!("cannot find own executable: {e}")))?;
    if let Some(path) = &observe.trace_out {
        check_trace_out(path)?;
    }
    let mut traces = Vec::new();
    let mut summaries = Vec::new();
    let mut codes = Vec::new();
    for tag in ["first", "second"] {
        let kept = observe.trace_out.as_ref().filter(|_| tag == "first");
        let path = kept.cloned().unwrap_or_else(|| temp_trace(tag));
        let mut cmd = Command::new(&exe);
        cmd.args(base);
        for b in &observe.bugs {
            cmd.args(["--bug", b]);
        }
        if observe.full_checks {
            cmd.arg("--full-checks");
        }
        cmd.arg("--trace-out").arg(&path).stdin(Stdio::null()).stderr(Stdio::inherit());
        let out = cmd.output().map_err(|e| CliError::Other(format!("cannot start a child run: {e}")))?;
        if out.status.code() == Some(2) {
            // The child said why on the stderr it shares with us.
            return Err(CliError::Other(format!("the {tag} run refused its input (see above)")));
        }
        let trace = read_trace(&path)?;
        if kept.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        summaries.push(String::from_utf8_lossy(&out.stdout).into_owned());
        codes.push(out.status.code());
        traces.push(trace);
    }
    let hash_line = |s: &str| s.lines().find(|l| l.starts_with("trace-hash:")).unwrap_or("trace-hash: ?").to_string();
    print!("{}", summaries[0]);
    match sim::trace::first_divergence(&traces[0], &traces[1], CONTEXT_EVENTS) {
        None if hash_line(&summaries[0]) == hash_line(&summaries[1]) => {
            println!("determinism: ok ({} events, same trace in two processes)", traces[0].len());
            // The run's own exit code: a failure, or a verdict the file did not expect, is 1.
            Ok(if codes[0] == Some(0) { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
