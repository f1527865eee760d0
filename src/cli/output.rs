//! What runs print: the summary, failure reports and JSON result lines.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sim::scenario::escape_control;
use sim::trace::TraceEvent;
use sim::{RunReport, Violation};

use super::CliError;

/// How to reproduce a run from the command line (escaped: `base` may hold a file's name).
pub fn reproduce_command(base: &str, bugs: &[String]) -> String {
    let mut cmd = format!("metasim {}", escape_control(base));
    for b in bugs {
        cmd.push_str(&format!(" --bug {b}"));
    }
    cmd
}

/// One line: the invariant, when, where and what was seen. Messages quote scenario text
/// (names, expected strings), so control characters are escaped.
pub fn describe_violation(v: &Violation) -> String {
    let node = v.node.map_or("cluster".to_string(), |n| format!("n{n}"));
    let line = format!("{} at {:.6}s on {node}: {}", v.invariant, v.sim_ns as f64 / 1e9, v.message);
    escape_control(&line).into_owned()
}

/// The `shrink` and `timeline` commands for a run that `reproduce` replays
/// (`metasim replay --seed 1 ...` or `metasim run FILE ...`).
pub fn explain_commands(reproduce: &str) -> Vec<(&'static str, String)> {
    let rest = reproduce
        .strip_prefix("metasim replay ")
        .or_else(|| reproduce.strip_prefix("metasim run "))
        .unwrap_or(reproduce);
    vec![
        ("shrink", format!("metasim shrink {rest} -o min.toml")),
        ("timeline", format!("metasim timeline {rest} -o run.html")),
    ]
}

/// The failure report: which invariant, when, where, the events of what it names (when the
/// run kept its trace), the last events of the cluster, and how to replay and explain it.
pub fn print_failure(v: &Violation, reproduce: &str, trace: Option<&[TraceEvent]>) {
    println!("violation: {}", describe_violation(v));
    let context = trace.map(|t| super::explain::context::select(v, t)).unwrap_or_default();
    if !context.is_empty() {
        println!("events of {} before it:", escape_control(&super::explain::context::heading(v)));
        for e in &context {
            println!("  {}", escape_control(&e.to_string()));
        }
    }
    println!("events before it:");
    for e in &v.recent {
        println!("  {}", escape_control(&e.to_string()));
    }
    println!("reproduce: {reproduce}");
    for (what, command) in explain_commands(reproduce) {
        println!("{what}: {command}");
    }
}

pub fn print_summary(name: &str, system: &str, report: &RunReport, wall: Duration, reproduce: &str) {
    let sim_s = report.sim_ns as f64 / 1e9;
    let wall_s = wall.as_secs_f64();
    println!("scenario: {}", escape_control(name));
    println!("system: {system}");
    println!("seed: {}", report.seed);
    println!("events: {}", report.events);
    println!("messages delivered: {}", report.messages_delivered);
    println!("simulated: {sim_s:.3}s  wall: {wall_s:.3}s  ratio: {:.0}x", sim_s / wall_s.max(1e-9));
    if let Some(v) = &report.violation {
        print_failure(v, reproduce, report.trace.as_deref());
    }
    if let Some(excuse) = &report.excused {
        println!("excused: {}", escape_control(excuse));
    }
    println!("trace-hash: {:016x}", report.trace_hash);
    let verdict = match (&report.violation, &report.excused) {
        (None, None) => "pass",
        (None, Some(_)) => "excused",
        (Some(_), _) => "fail",
    };
    println!("verdict: {verdict}");
}

/// One line of `fuzz --json`, also the worker protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    pub system: String,
    pub profile: String,
    pub bugs: Vec<String>,
    pub verdict: String,
    pub trace_hash: String,
    pub events: u64,
    pub sim_ms: u64,
    pub wall_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
    /// Report text (events before the violation), for the findings file.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub recent: Vec<String>,
    /// When the campaign heard of this seed, in ms since the Unix epoch (wall clock, set by
    /// `fuzz` outside the simulation); `merge` measures seeds per minute from it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub done_unix_ms: Option<u64>,
    /// The scenario file a worker ran (`fuzz --guided`'s derived runs).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<String>,
    /// The probes the run hit, when asked for (`coverage`, `fuzz --guided`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub coverage: Option<Vec<ProbeHit>>,
}

/// One probe a run hit: how often, and when (simulated ms) and on which server first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeHit {
    pub name: String,
    pub hits: u64,
    pub first_ms: u64,
    #[serde(default)]
    pub first_node: u32,
}

impl ProbeHit {
    pub fn of(coverage: &sim::coverage::Coverage) -> Vec<ProbeHit> {
        coverage
            .iter()
            .map(|(name, stat)| ProbeHit {
                name: name.to_string(),
                hits: stat.hits,
                first_ms: stat.first_ns / 1_000_000,
                first_node: stat.first_node,
            })
            .collect()
    }
}

impl SeedResult {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}

/// Create (or empty) the file `--trace-out` names before a run, so an unwritable one is
/// refused at once rather than after the run.
pub fn check_trace_out(path: &Path) -> Result<(), CliError> {
    std::fs::File::create(path).map(drop).map_err(|e| io_error(path, &e.to_string()))
}

/// Write the full trace as JSON lines.
pub fn write_trace(path: &Path, report: &RunReport) -> Result<(), CliError> {
    let io = |e: std::io::Error| io_error(path, &e.to_string());
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for e in report.trace.as_deref().unwrap_or_default() {
        // A full disk shows here first, as the buffer spills: name the file.
        serde_json::to_writer(&mut out, e).map_err(|e| io_error(path, &e.to_string()))?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)
}

fn io_error(path: &Path, message: &str) -> CliError {
    CliError::Io { path: path.display().to_string(), message: message.to_string() }
}

pub fn read_trace(path: &Path) -> Result<Vec<sim::trace::TraceEvent>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Io { path: path.display().to_string(), message: e.to_string() })?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| CliError::Io { path: format!("{}:{}", path.display(), i + 1), message: e.to_string() })
        })
        .collect()
}
