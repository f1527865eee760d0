//! `fuzz`: many seeds, in worker processes, with failures reported the moment they are found.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use sim::scenario::escape_control;
use sim::{RunOptions, System};

use metasim::sut::DEFAULT_SYSTEM;
use metasim::with_system;

use super::output::{describe_violation, reproduce_command, ProbeHit, SeedResult};
use super::pool::{Items, Pool};
use super::run::{check_bugs, profile, system_flag, unknown_system};
use super::{flag_error, CliError};

/// Worker processes at most; more than this on one machine is a typo.
const JOBS_MAX: usize = 256;

/// What a campaign runs, for `fuzz` and `coverage` alike: a seed range of one profile of one
/// system, with bug switches, on worker processes.
#[derive(Args, Debug)]
pub struct CampaignArgs {
    /// Seed range, end exclusive: `0..1000` (required, but by `coverage --scenarios`).
    #[arg(long, value_name = "A..B")]
    pub seeds: Option<String>,
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// The system under test: meta (the default) or register (the engine's fixture).
    #[arg(long, default_value = DEFAULT_SYSTEM)]
    pub system: String,
    /// Worker processes (each runs its seeds one after another, one fresh runtime per seed);
    /// default: the machine's available parallelism.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Turn a bug switch on (repeatable; `metasim bugs` lists them).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

/// A campaign's arguments, checked against its system.
pub struct Campaign {
    pub range: std::ops::Range<u64>,
    pub profile: &'static sim::swarm::Profile,
    pub jobs: usize,
    /// This executable: the workers run it.
    pub exe: PathBuf,
}

impl CampaignArgs {
    /// Check the flags for system `S`; every error names its flag.
    pub fn check<S: System>(&self) -> Result<Campaign, CliError> {
        let seeds =
            self.seeds.as_deref().ok_or_else(|| flag_error("--seeds", "a seed range is required, like 0..1000"))?;
        let range = parse_range(seeds)?;
        self.check_with_range::<S>(range)
    }

    /// [`Self::check`] for a campaign whose runs are not a seed range (scenario files).
    pub fn check_with_range<S: System>(&self, range: std::ops::Range<u64>) -> Result<Campaign, CliError> {
        let profile = profile(&self.profile)?;
        check_bugs::<S>(&self.bugs)?;
        let jobs = jobs_or_default(self.jobs)?;
        let exe = std::env::current_exe().map_err(|e| CliError::Other(format!("cannot find own executable: {e}")))?;
        Ok(Campaign { range, profile, jobs, exe })
    }
}

#[derive(Args, Debug)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Run only the K-th of N interleaved shards of the range (1-based), to split a campaign
    /// across machines: `--shard 2/4` runs the seeds s with s % 4 == 1.
    #[arg(long, value_name = "K/N", conflicts_with = "shard_from_env")]
    pub shard: Option<String>,
    /// Run shard K+1 of N, K read from `JOB_COMPLETION_INDEX` (0-based, as a Kubernetes Indexed
    /// Job sets it): `--shard-from-env 10` in pod 3 is `--shard 4/10`.
    #[arg(long, value_name = "N")]
    pub shard_from_env: Option<u64>,
    /// Print one JSON line per seed on stdout (seed, verdict, trace hash, simulated and wall time).
    #[arg(long)]
    pub json: bool,
    /// Findings file: each failure is appended and fsynced as soon as it is found.
    #[arg(long, default_value = "metasim-findings.txt")]
    pub findings: PathBuf,
    /// Stop at the first failure.
    #[arg(long)]
    pub stop_on_failure: bool,
    /// Check every invariant on the whole cluster after every event (see `run --full-checks`).
    #[arg(long)]
    pub full_checks: bool,
    /// Coverage-guided: start with a few plain seeds, then derive runs from those that reached
    /// new coverage (branched, reseeded, steps shifted, dropped or spliced, knobs turned: the
    /// system's fastest timers, slow lossy links). The range's length
    /// is the budget of runs and its start seeds the campaign; failing derived runs are kept as
    /// scenario files beside the findings file.
    #[arg(long, conflicts_with_all = ["shard", "shard_from_env"])]
    pub guided: bool,
    /// With --guided: the plain seeds a campaign starts with, before it derives runs.
    #[arg(long, requires = "guided", default_value_t = super::guided::PLAIN_RUNS)]
    pub plain_runs: u64,
    /// With --guided: keep every derived run's scenario file in this folder (`run-N.toml`, N
    /// as in the campaign's lines), not only the failing ones.
    #[arg(long, requires = "guided", value_name = "DIR")]
    pub runs_out: Option<PathBuf>,
    /// With --guided: a run that reaches a probe at most four runs reached opens a window, and
    /// up to four runs of each batch cut the server that first reached it off, with one other
    /// server, from that moment for 35 or 45 s (a server's state held until a check or an
    /// election meets it). On by default for the `disk` profile only: elsewhere it takes runs
    /// from the knobs that open elections.
    #[arg(long, requires = "guided", conflicts_with = "no_windows")]
    pub windows: bool,
    /// With --guided: no windows, on a profile that opens them by default (`disk`).
    #[arg(long, requires = "guided")]
    pub no_windows: bool,
}

impl FuzzArgs {
    /// Whether a guided campaign on `profile` opens windows: as the flags say, else as the
    /// profile does.
    pub fn windows_on(&self, profile: &sim::swarm::Profile) -> bool {
        self.windows || (profile.guided_windows && !self.no_windows)
    }
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[arg(long)]
    profile: String,
    #[arg(long)]
    system: String,
    #[arg(long = "bug")]
    bugs: Vec<String>,
    #[arg(long)]
    full_checks: bool,
    /// Report the probes each run hit.
    #[arg(long)]
    coverage: bool,
    /// Comma-separated seeds to run.
    #[arg(long, required_unless_present = "files")]
    seeds: Option<String>,
    /// Comma-separated scenario files to run instead (guided fuzzing's derived runs).
    #[arg(long, conflicts_with = "seeds")]
    files: Option<String>,
}

pub fn parse_range(text: &str) -> Result<std::ops::Range<u64>, CliError> {
    let bad = |m: String| flag_error("--seeds", m);
    let (a, b) = text.split_once("..").ok_or_else(|| bad(format!("`{text}` is not a range like 0..1000")))?;
    let a: u64 = a.trim().parse().map_err(|e| bad(format!("start `{a}`: {e}")))?;
    let b: u64 = b.trim().parse().map_err(|e| bad(format!("end `{b}`: {e}")))?;
    if a >= b {
        return Err(bad(format!("the range {a}..{b} is empty (the end is exclusive)")));
    }
    Ok(a..b)
}

/// The seeds of one shard of a range, in order, computed as they are needed: `--seeds
/// 0..18446744073709551615`, or one shard in a million of a trillion seeds, starts at once.
/// Shard `k` of `n` holds the seeds `s` with `s % n == k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSeeds {
    next: Option<u64>,
    end: u64,
    step: u64,
}

impl ShardSeeds {
    /// `shard` is 0-based and below `shards`.
    pub fn new(range: std::ops::Range<u64>, shard: u64, shards: u64) -> Self {
        let rest = range.start % shards;
        let offset = if shard >= rest { shard - rest } else { shards - rest + shard };
        let first = range.start.checked_add(offset).filter(|&s| s < range.end);
        ShardSeeds { next: first, end: range.end, step: shards }
    }

    /// Seeds left.
    pub fn remaining(&self) -> u64 {
        self.next.map_or(0, |first| (self.end - 1 - first) / self.step + 1)
    }
}

impl Iterator for ShardSeeds {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let seed = self.next?;
        self.next = seed.checked_add(self.step).filter(|&s| s < self.end);
        Some(seed)
    }
}

/// The variable a Kubernetes Indexed Job sets in each pod: the pod's index, from 0.
pub const SHARD_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// The shard (0-based) and shard count of `--shard-from-env N`: the index from
/// [`SHARD_INDEX_VAR`], which must be below N.
pub fn shard_from_env(shards: u64, index: Option<std::ffi::OsString>) -> Result<(u64, u64), CliError> {
    let bad = |m: String| flag_error("--shard-from-env", m);
    if shards == 0 {
        return Err(bad("N must be at least 1".into()));
    }
    let Some(index) = index else {
        return Err(bad(format!("{SHARD_INDEX_VAR} is not set (a Kubernetes Indexed Job sets it in each pod)")));
    };
    let text = index.to_string_lossy();
    let k: u64 = text.trim().parse().map_err(|e| bad(format!("{SHARD_INDEX_VAR} = `{text}`: {e}")))?;
    if k >= shards {
        return Err(bad(format!("{SHARD_INDEX_VAR} = {k} is not below N = {shards} (the index counts from 0)")));
    }
    Ok((k, shards))
}

/// `--jobs`, or the machine's available parallelism.
pub fn jobs_or_default(jobs: Option<usize>) -> Result<usize, CliError> {
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(JOBS_MAX)));
    if jobs == 0 || jobs > JOBS_MAX {
        return Err(flag_error("--jobs", format!("must be between 1 and {JOBS_MAX}, got {jobs}")));
    }
    Ok(jobs)
}

pub fn parse_shard(text: &str) -> Result<(u64, u64), CliError> {
    let bad = |m: String| flag_error("--shard", m);
    let (k, n) = text.split_once('/').ok_or_else(|| bad(format!("`{text}` is not K/N, like 1/4")))?;
    let k: u64 = k.trim().parse().map_err(|e| bad(format!("K `{k}`: {e}")))?;
    let n: u64 = n.trim().parse().map_err(|e| bad(format!("N `{n}`: {e}")))?;
    if n == 0 || k == 0 || k > n {
        return Err(bad(format!("K/N needs 1 <= K <= N, got {k}/{n}")));
    }
    Ok((k - 1, n))
}

/// The closing count. Excused runs (a panic or stall a lying disk explains) are neither passes nor
/// failures, and are only mentioned when there are some.
pub fn tally(passed: u64, excused: u64, failed: u64) -> String {
    if excused == 0 {
        format!("{passed} passed, {failed} failed")
    } else {
        format!("{passed} passed, {excused} excused (a disk that lied explains the panic or stall), {failed} failed")
    }
}

/// Run one seed in this process; with `coverage`, the result lists the probes it hit.
pub fn run_seed<S: System>(
    seed: u64,
    profile: &sim::swarm::Profile,
    options: &RunOptions,
    coverage: bool,
) -> SeedResult {
    let scenario = sim::swarm::generate::<S>(seed, profile);
    let base = format!("replay --seed {seed} --profile {}{}", profile.name, system_flag(S::NAME));
    run_one::<S>(&scenario, profile.name, &base, options, coverage)
}

/// Run one scenario in this process; `base` is the command that reproduces it, before the
/// bug switches. With `coverage`, the result lists the probes the run hit.
pub fn run_one<S: System>(
    scenario: &sim::ScenarioOf<S>,
    profile: &str,
    base: &str,
    options: &RunOptions,
    coverage: bool,
) -> SeedResult {
    let bugs = &options.bugs;
    let started = Instant::now();
    let report = sim::run::<S>(scenario, options);
    let wall_ms = started.elapsed().as_millis() as u64;
    let coverage = coverage.then(|| ProbeHit::of(&report.coverage));
    let reproduce = reproduce_command(base, bugs);
    let seed = options.seed.unwrap_or(scenario.seed);
    SeedResult {
        seed,
        system: S::NAME.to_string(),
        profile: profile.to_string(),
        bugs: bugs.to_vec(),
        verdict: match (&report.violation, &report.excused) {
            (Some(_), _) => "fail",
            (None, Some(_)) => "excused",
            (None, None) => "pass",
        }
        .into(),
        trace_hash: format!("{:016x}", report.trace_hash),
        events: report.events,
        sim_ms: report.sim_ns / 1_000_000,
        wall_ms,
        violation: report.violation.as_ref().map(describe_violation).or(report.excused.clone()),
        reproduce: (!report.passed()).then_some(reproduce),
        recent: report.violation.map(|v| v.recent.iter().map(|e| e.to_string()).collect()).unwrap_or_default(),
        done_unix_ms: None,
        file: None,
        coverage,
    }
}

pub fn worker(args: WorkerArgs) -> Result<ExitCode, CliError> {
    with_system!(args.system.as_str(), S => worker_for::<S>(args), unknown => Err(unknown_system(&args.system)))
}

fn worker_for<S: System>(args: WorkerArgs) -> Result<ExitCode, CliError> {
    let profile = profile(&args.profile)?;
    check_bugs::<S>(&args.bugs)?;
    let stdout = std::io::stdout();
    let options = RunOptions { bugs: args.bugs.clone(), full_checks: args.full_checks, ..Default::default() };
    let items = args.seeds.as_deref().or(args.files.as_deref()).unwrap_or_default();
    for item in items.split(',').filter(|s| !s.is_empty()) {
        let result = match args.files {
            Some(_) => {
                let loaded = sim::scenario::load_for::<S>(std::path::Path::new(item))?;
                let base = format!("run {item}");
                let mut result = run_one::<S>(&loaded.scenario, profile.name, &base, &options, args.coverage);
                result.file = Some(item.to_string());
                result
            }
            None => {
                let seed: u64 = item.parse().map_err(|e| flag_error("--seeds", format!("`{item}`: {e}")))?;
                run_seed::<S>(seed, profile, &options, args.coverage)
            }
        };
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, &result).map_err(|e| CliError::Other(e.to_string()))?;
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
    Ok(ExitCode::SUCCESS)
}

/// Milliseconds since the Unix epoch, by the wall clock (never read inside a simulation).
fn unix_ms() -> Option<u64> {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
}

/// Appends findings and fsyncs each one, so a killed campaign loses nothing it reported.
pub struct Findings {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Findings {
    /// Check up front that findings can be written: an existing file is opened for appending
    /// (and left as it is), a new one needs a writable folder. It is created at the first
    /// finding, so a clean campaign leaves no empty file behind.
    pub fn check(path: &Path) -> Result<Self, CliError> {
        let io = |message: String| CliError::Io { path: path.display().to_string(), message };
        if path.exists() {
            let file = OpenOptions::new().append(true).open(path).map_err(|e| io(e.to_string()))?;
            return Ok(Findings { path: path.to_path_buf(), file: Some(file) });
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(io(format!("cannot create it: {} is not a folder", folder.display())));
        }
        if !writable_folder(folder) {
            return Err(io(format!("cannot create it: {} is not writable", folder.display())));
        }
        Ok(Findings { path: path.to_path_buf(), file: None })
    }

    pub fn append(&mut self, r: &SeedResult) -> Result<(), CliError> {
        let io = |e: std::io::Error| CliError::Io { path: self.path.display().to_string(), message: e.to_string() };
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?);
        }
        let file = self.file.as_mut().expect("opened above");
        let mut text = format!(
            "seed={} profile={} generator=v{} trace-hash={} violation: {}\n",
            r.seed,
            r.profile,
            sim::swarm::GENERATOR_VERSION,
            r.trace_hash,
            r.violation.as_deref().unwrap_or("?")
        );
        text.push_str(&format!("  reproduce: {}\n", r.reproduce.as_deref().unwrap_or("?")));
        for (what, command) in super::output::explain_commands(r.reproduce.as_deref().unwrap_or("?")) {
            text.push_str(&format!("  {what}: {command}\n"));
        }
        file.write_all(text.as_bytes()).map_err(io)?;
        match file.sync_all() {
            // A findings "file" that cannot be synced (/dev/null, a pipe) has nothing to lose.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            other => other.map_err(io),
        }
    }
}

/// Whether this process may create files in `folder` (access(2) also says no on a read-only
/// file system).
fn writable_folder(folder: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(folder.as_os_str().as_bytes()) else { return false };
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

pub fn fuzz(args: FuzzArgs) -> Result<ExitCode, CliError> {
    let system = args.campaign.system.clone();
    with_system!(system.as_str(), S => fuzz_for::<S>(args), unknown => Err(unknown_system(&system)))
}

fn fuzz_for<S: System>(args: FuzzArgs) -> Result<ExitCode, CliError> {
    let Campaign { range, profile, jobs, exe } = args.campaign.check::<S>()?;
    let (shard, shards) = match (&args.shard, args.shard_from_env) {
        (Some(s), _) => parse_shard(s)?,
        (None, Some(n)) => shard_from_env(n, std::env::var_os(SHARD_INDEX_VAR))?,
        (None, None) => (0, 1),
    };
    let mut findings = Findings::check(&args.findings)?;
    if args.guided {
        return super::guided::campaign::<S>(&args, range, profile, jobs, &mut findings, exe);
    }
    let seeds = ShardSeeds::new(range, shard, shards);
    let total = seeds.remaining();

    let worker_args = worker_args(profile, S::NAME, &args.campaign.bugs, args.full_checks, false);
    let pool = Pool::start(exe, worker_args, seeds.map(|s| s.to_string()), Items::SEEDS, jobs);

    let progress = progress_bar(total, args.json);
    let mut counts = Counts::default();
    let started = Instant::now();
    for msg in pool.results.iter() {
        let mut result = msg.map_err(CliError::Other)?;
        // When this campaign heard of the seed (wall clock, outside the simulation): `merge`
        // measures a campaign of several shards from it.
        result.done_unix_ms = unix_ms();
        counts.record(&result, &progress, args.json, &mut findings)?;
        if counts.failed > 0 && args.stop_on_failure {
            pool.stop();
            break;
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if counts.received < total && !(counts.failed > 0 && args.stop_on_failure) {
        return Err(CliError::Other(format!("only {} of {total} seeds reported; a worker died", counts.received)));
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = format!(
        "profile {} ({}), {} seeds in {wall:.1}s ({:.0} seeds/min)",
        profile.name,
        S::NAME,
        counts.received,
        counts.received as f64 * 60.0 / wall.max(1e-9)
    );
    let mut closing = vec![summary, tally(counts.passed, counts.excused, counts.failed)];
    if counts.failed > 0 {
        closing.insert(0, format!("findings appended to {}", escape_control(&args.findings.display().to_string())));
    }
    print_closing(&closing, args.json);
    Ok(if counts.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A campaign's closing lines: on stdout, or on stderr with --json (stdout holds only the
/// JSON lines then).
pub fn print_closing(lines: &[String], json: bool) {
    for line in lines {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// The arguments every worker of a campaign gets, before its seeds or files.
pub fn worker_args(
    profile: &sim::swarm::Profile,
    system: &str,
    bugs: &[String],
    full_checks: bool,
    coverage: bool,
) -> Vec<String> {
    let mut args = vec!["--profile".to_string(), profile.name.to_string(), "--system".into(), system.into()];
    for b in bugs {
        args.extend(["--bug".to_string(), b.clone()]);
    }
    if full_checks {
        args.push("--full-checks".into());
    }
    if coverage {
        args.push("--coverage".into());
    }
    args
}

fn progress_bar(total: u64, json: bool) -> Option<indicatif::ProgressBar> {
    (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}")
                .expect("valid template"),
        );
        bar
    })
}

/// Seeds reported so far, by verdict.
#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    excused: u64,
    received: u64,
}

impl Counts {
    /// Count one seed's result and report it: its JSON line, an excused run on stderr, a
    /// failure printed at once and then appended to the findings.
    fn record(
        &mut self,
        result: &SeedResult,
        progress: &Option<indicatif::ProgressBar>,
        json: bool,
        findings: &mut Findings,
    ) -> Result<(), CliError> {
        self.received += 1;
        if json {
            println!("{}", serde_json::to_string(result).map_err(|e| CliError::Other(e.to_string()))?);
        }
        if result.passed() {
            self.passed += 1;
        } else if result.verdict == "excused" {
            self.excused += 1;
            let report = format!("EXCUSED seed {}: {}", result.seed, result.violation.as_deref().unwrap_or("?"));
            match progress {
                Some(bar) => bar.println(report),
                None => eprintln!("{report}"),
            }
        } else {
            self.failed += 1;
            let reproduce = result.reproduce.as_deref().unwrap_or("?");
            let mut report = format!(
                "FAIL seed {}: {}\n  reproduce: {reproduce}",
                result.seed,
                result.violation.as_deref().unwrap_or("?")
            );
            for (what, command) in super::output::explain_commands(reproduce) {
                report.push_str(&format!("\n  {what}: {command}"));
            }
            match progress {
                Some(bar) => bar.println(report),
                None if json => eprintln!("{report}"),
                None => println!("{report}"),
            }
            // After printing: a findings file that fails now does not hide the failure.
            findings.append(result)?;
        }
        if let Some(bar) = progress {
            bar.set_message(format!("{} failed", self.failed));
            bar.inc(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{jobs_or_default, shard_from_env, ShardSeeds};

    #[test]
    fn jobs_default_to_the_available_parallelism() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(jobs_or_default(None).unwrap(), cores);
        assert_eq!(jobs_or_default(Some(3)).unwrap(), 3);
        assert!(jobs_or_default(Some(0)).is_err());
    }

    #[test]
    fn the_kubernetes_index_counts_from_zero() {
        assert_eq!(shard_from_env(10, Some("0".into())).unwrap(), (0, 10), "pod 0 runs --shard 1/10");
        assert_eq!(shard_from_env(10, Some("9".into())).unwrap(), (9, 10));
        assert!(shard_from_env(10, Some("10".into())).is_err());
        assert!(shard_from_env(10, None).is_err());
    }

    #[test]
    fn shards_are_computed_not_collected() {
        let all: Vec<u64> = ShardSeeds::new(10..40, 0, 1).collect();
        assert_eq!(all, (10..40).collect::<Vec<_>>());
        let mut union: Vec<u64> = (0..3).flat_map(|k| ShardSeeds::new(10..40, k, 3)).collect();
        union.sort();
        assert_eq!(union, all, "shards split the range without overlap");
        assert_eq!(ShardSeeds::new(10..40, 1, 3).next(), Some(10), "10 % 3 == 1");
        for k in 0..3 {
            let shard = ShardSeeds::new(10..40, k, 3);
            assert_eq!(shard.remaining(), shard.count() as u64);
        }
        let huge = ShardSeeds::new(0..u64::MAX, 0, 1);
        assert_eq!(huge.remaining(), u64::MAX);
        let sparse = ShardSeeds::new(0..1_000_000_000_000, 999_999, 1_000_000);
        assert_eq!(sparse.take(2).collect::<Vec<_>>(), [999_999, 1_999_999]);
        let last: Vec<u64> = ShardSeeds::new(u64::MAX - 5..u64::MAX, 0, 2).collect();
        assert_eq!(last, [u64::MAX - 5, u64::MAX - 3, u64::MAX - 1], "no overflow at the top");
        assert_eq!(ShardSeeds::new(5..6, 2, 4).remaining(), 0, "an empty shard: 5 % 4 == 1");
    }
}
