//! `fuzz --guided`: coverage-guided fuzzing (AFL's corpus loop on a deterministic machine).
//!
//! The campaign starts with plain seeds. A run that reaches new coverage (a probe never hit,
//! or hit a new number of times) joins the corpus. Then come batches of a few fresh seeds and
//! runs derived from corpus entries ([`sim::guided::mutate`]): branched at a moment where the entry reached
//! something new (its prefix replays exactly, then a fresh random stream), reseeded, with a
//! step shifted, dropped or copied from another entry, or with a knob turned where focused
//! profiles found narrow windows (the system's fastest timers, slow lossy links). With
//! windows (`--windows`, or the profile's default), a few runs of each batch cut off a server
//! where it reached a probe few runs reached ([`sim::guided::cut_off`]).
//!
//! The campaign is deterministic: batches are drawn from a stream seeded by the range's start
//! and judged in order, whatever the number of workers, so run N of a campaign is the same run
//! every time. Every derived run is a scenario file; a failing one is kept beside the findings
//! file and its reproduce line runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::guided::Novelty;
use sim::{ScenarioOf, System};

use super::fuzz::{print_closing, tally, worker_args, FuzzArgs};
use super::output::{reproduce_command, SeedResult};
use super::pool::{Items, Pool};
use super::run::{system_flag, write_file};
use super::CliError;

/// Plain seeds a campaign starts with by default (fewer when the budget is smaller).
pub const PLAIN_RUNS: u64 = 32;
/// Runs drawn and judged together: fixed, so a campaign does not depend on `--jobs`.
pub const BATCH_RUNS: usize = 16;
/// Runs of each batch that are fresh plain seeds (the next seeds of the range), so a campaign
/// keeps exploring as plain fuzzing does while it exploits what its corpus reached.
pub const FRESH_PER_BATCH: usize = 4;
/// Corpus entries at most; the oldest of the entries found by plain seeds go first.
pub const CORPUS_MAX: usize = 1_000;

/// A run that reached something new.
struct Entry<S: System> {
    scenario: ScenarioOf<S>,
    /// When it first reached each probe it was the first to reach (simulated ms).
    moments: Vec<u64>,
    /// Every probe it reached, with when it first did (simulated ms): how rare its rarest
    /// probe has become decides how often it is a parent, and where it branches.
    probes: Vec<(String, u64)>,
}

/// Probes whose first moments a branch may start near, besides the entry's new ones: the
/// entry's rarest.
const RARE_MOMENTS: usize = 3;

/// With `--windows`: a moment where a run reached a probe that few runs of the campaign
/// reached, on the server that reached it. Derived runs hold it open by cutting that server
/// off from there ([`sim::guided::cut_off`]). A narrow window is often a state of one server
/// (a view rolled back, a log behind) that a check or an election must meet before anyone
/// repairs it.
struct Window<S: System> {
    scenario: ScenarioOf<S>,
    probe: String,
    node: u32,
    at_ms: u64,
    /// Cut-off runs still to derive from it.
    left: usize,
}

/// A probe reached by at most this many runs of the campaign (not counting cut-off runs,
/// which replay their window's prefix and so reach its probe whatever it is) opens a window.
const WINDOW_REACH_MAX: u64 = 4;
/// Cut-off runs derived from each window, and at most this many per batch (taken from the
/// runs derived from the corpus).
const WINDOW_RUNS: usize = 4;
const WINDOW_RUNS_PER_BATCH: usize = 4;
/// Windows waiting at most; when they are that many, the one whose probe most runs have
/// reached since makes room for a rarer one.
const WINDOWS_MAX: usize = 32;

/// What a campaign found, for its closing lines.
#[derive(Default)]
struct Tally {
    runs: u64,
    passed: u64,
    failed: u64,
    excused: u64,
    first_failure: Option<u64>,
}

pub fn campaign<S: System>(
    args: &FuzzArgs,
    range: std::ops::Range<u64>,
    profile: &'static sim::swarm::Profile,
    jobs: usize,
    findings: &mut super::fuzz::Findings,
    exe: std::path::PathBuf,
) -> Result<ExitCode, CliError> {
    let budget = range.end - range.start;
    let worker_args = worker_args(profile, S::NAME, &args.campaign.bugs, args.full_checks, true);
    let work = match &args.runs_out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::Io { path: dir.display().to_string(), message: e.to_string() })?;
            dir.clone()
        }
        None => scratch_folder(range.start)?,
    };
    let kept = kept_folder(&args.findings);
    let mut rng = ChaCha8Rng::seed_from_u64(range.start ^ 0x6775_6964_6564_2131);
    let mut novelty = Novelty::default();
    let mut corpus: Vec<Entry<S>> = Vec::new();
    let mut windows = Windows::new(args.windows_on(profile));
    let mix = sim::guided::Mix::for_campaign(windows.on);
    let mut tally = Tally::default();
    let started = Instant::now();

    // Plain seeds first.
    if args.plain_runs == 0 {
        return Err(super::flag_error("--plain-runs", "a guided campaign needs at least one plain seed to start from"));
    }
    let plain = range.start..range.start + budget.min(args.plain_runs);
    let pool = Pool::start(exe.clone(), worker_args.clone(), plain.clone().map(|s| s.to_string()), Items::SEEDS, jobs);
    let mut results: Vec<SeedResult> = pool.results.iter().collect::<Result<_, _>>().map_err(CliError::Other)?;
    results.sort_by_key(|r| r.seed);
    for result in results {
        let scenario = sim::swarm::generate::<S>(result.seed, profile);
        let label = format!("seed {}", result.seed);
        let book = Book { novelty: &mut novelty, corpus: &mut corpus, windows: &mut windows };
        judge(&mut tally, book, scenario, false, result, &label, args, findings, None)?;
        if stop(&tally, args) {
            return finish::<S>(&tally, &novelty, corpus.len(), started, profile, args);
        }
    }

    // Then batches of fresh seeds and derived runs.
    let mut next_seed = plain.end;
    while tally.runs < budget && !corpus.is_empty() {
        let batch = (budget - tally.runs).min(BATCH_RUNS as u64) as usize;
        let mut derived = Vec::with_capacity(batch);
        let mut fresh = Vec::with_capacity(FRESH_PER_BATCH);
        while fresh.len() < FRESH_PER_BATCH.min(batch) {
            fresh.push(next_seed);
            derived.push(sim::swarm::generate::<S>(next_seed, profile));
            next_seed += 1;
        }
        let weights: Vec<u64> =
            corpus.iter().map(|e| novelty.rarity_weight(e.probes.iter().map(|(p, _)| p.as_str()))).collect();
        let mut window_runs = 0;
        let window_runs_max = if windows.on { WINDOW_RUNS_PER_BATCH } else { 0 };
        while derived.len() < batch && window_runs < window_runs_max {
            let Some(at) = windows.next() else { break };
            let window = &mut windows.open[at];
            window.left -= 1;
            window_runs += 1;
            let Some((mut scenario, mutation)) =
                sim::guided::cut_off(&window.scenario, window.node, window.at_ms, &mut rng)
            else {
                continue;
            };
            let run = tally.runs + derived.len() as u64;
            scenario.description = format!("{} ({mutation}, where it reached {})", window.scenario.name, window.probe);
            scenario.name = format!("guided run {run} of {}..{}", range.start, range.end);
            if loads::<S>(&scenario) {
                derived.push(scenario);
            }
        }
        let cut_offs = derived.len() - fresh.len();
        while derived.len() < batch {
            let parent = &corpus[pick_parent(&weights, &mut rng)];
            let donor = &corpus[rng.gen_range(0..corpus.len())];
            let mut moments = parent.moments.clone();
            moments.extend(novelty.rarest_moments(&parent.probes, RARE_MOMENTS));
            if let Some((scenario, mutation)) =
                sim::guided::mutate(&parent.scenario, &donor.scenario, &moments, &hasten::<S>, &mix, &mut rng)
            {
                let run = tally.runs + derived.len() as u64;
                let mut scenario = scenario;
                scenario.name = format!("guided run {run} of {}..{}", range.start, range.end);
                scenario.description = format!("{} ({mutation})", parent.scenario.name);
                // A step spliced from a run of another shape may not fit this one (an op
                // naming a cluster this run's [system] lacks): such a mutant is not a run.
                if loads::<S>(&scenario) {
                    derived.push(scenario);
                }
            }
        }
        let mut files = Vec::with_capacity(batch);
        for (i, scenario) in derived.iter().enumerate() {
            let path = work.join(format!("run-{}.toml", tally.runs + i as u64));
            let text = scenario.to_toml().map_err(|e| CliError::Other(format!("cannot encode a derived run: {e}")))?;
            write_file(&path, text.as_bytes())?;
            files.push(path);
        }
        let chunk = batch.div_ceil(jobs);
        let items = Items { flag: "--files", chunk };
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        let pool = Pool::start(exe.clone(), worker_args.clone(), names.clone().into_iter(), items, jobs);
        let mut by_file: BTreeMap<String, SeedResult> = BTreeMap::new();
        for msg in pool.results.iter() {
            let result = msg.map_err(CliError::Other)?;
            let file = result.file.clone().unwrap_or_default();
            by_file.insert(file, result);
        }
        for (i, ((scenario, path), name)) in derived.into_iter().zip(&files).zip(&names).enumerate() {
            let mut result = by_file.remove(name).ok_or_else(|| CliError::Other(format!("no result for {name}")))?;
            let (label, keep) = match fresh.get(i) {
                Some(&seed) => {
                    // A fresh seed replays from its number, like any plain run.
                    let base = format!("replay --seed {seed} --profile {}{}", profile.name, system_flag(S::NAME));
                    result.reproduce = result.reproduce.map(|_| reproduce_command(&base, &args.campaign.bugs));
                    (format!("seed {seed}"), None)
                }
                None => (scenario.name.clone(), Some((path.as_path(), kept.as_path()))),
            };
            let cut_off = (fresh.len()..fresh.len() + cut_offs).contains(&i);
            let book = Book { novelty: &mut novelty, corpus: &mut corpus, windows: &mut windows };
            judge(&mut tally, book, scenario, cut_off, result, &label, args, findings, keep)?;
            if stop(&tally, args) {
                break;
            }
        }
        if args.runs_out.is_none() {
            for path in &files {
                let _ = std::fs::remove_file(path);
            }
        }
        if stop(&tally, args) {
            break;
        }
    }
    if args.runs_out.is_none() {
        let _ = std::fs::remove_dir(&work);
    }
    finish::<S>(&tally, &novelty, corpus.len(), started, profile, args)
}

/// The windows waiting for cut-off runs, and how many runs that were not cut-offs reached
/// each probe.
struct Windows<S: System> {
    /// Whether the campaign opens windows at all (`--windows`, or the profile's default).
    on: bool,
    open: Vec<Window<S>>,
    reach: BTreeMap<String, u64>,
}

impl<S: System> Windows<S> {
    fn new(on: bool) -> Self {
        Self { on, open: Vec::new(), reach: BTreeMap::new() }
    }

    fn reach(&self, probe: &str) -> u64 {
        self.reach.get(probe).copied().unwrap_or(0)
    }

    /// The window to derive a cut-off run from: of those with runs left whose probe is still
    /// rare, the one whose probe fewest runs reached, the oldest first. Spent and no longer
    /// rare windows go.
    fn next(&mut self) -> Option<usize> {
        let reach = &self.reach;
        let rare = |probe: &str| reach.get(probe).copied().unwrap_or(0) <= WINDOW_REACH_MAX;
        self.open.retain(|w| w.left > 0 && rare(&w.probe));
        (0..self.open.len()).min_by_key(|&i| (self.reach(&self.open[i].probe), i))
    }

    /// Count a run that was not a `cut_off`, and open a window at the probe it reached that
    /// fewest such runs reached (the earliest of those), if at most [`WINDOW_REACH_MAX`] did.
    /// A cut-off run is not counted and opens none: it reaches its window's probe by replaying
    /// the prefix, which says nothing of how rare the probe is, and would open its own window
    /// again. A campaign without windows records nothing.
    fn record(&mut self, scenario: &ScenarioOf<S>, probes: &[super::output::ProbeHit], cut_off: bool) {
        if !self.on || cut_off {
            return;
        }
        for probe in probes {
            *self.reach.entry(probe.name.clone()).or_default() += 1;
        }
        let rarest = probes.iter().min_by_key(|p| (self.reach(&p.name), p.first_ms));
        let Some(probe) = rarest.filter(|p| self.reach(&p.name) <= WINDOW_REACH_MAX) else { return };
        if self.make_room(self.reach(&probe.name)) {
            self.open.push(Window {
                scenario: scenario.clone(),
                probe: probe.name.clone(),
                node: probe.first_node,
                at_ms: probe.first_ms,
                left: WINDOW_RUNS,
            });
        }
    }

    /// Whether a window at a probe `reach` runs reached fits: when [`WINDOWS_MAX`] wait, the
    /// one whose probe most runs have reached goes if that is more than `reach`.
    fn make_room(&mut self, reach: u64) -> bool {
        if self.open.len() < WINDOWS_MAX {
            return true;
        }
        let commonest = (0..self.open.len()).max_by_key(|&i| (self.reach(&self.open[i].probe), i));
        match commonest.filter(|&i| self.reach(&self.open[i].probe) > reach) {
            Some(i) => {
                self.open.remove(i);
                true
            }
            None => false,
        }
    }
}

/// A parent for a derived run (`weights`: each entry's rarity weight): a third of the draws
/// go to the newest eighth of the corpus, a third to any entry, and a third by the rarity of
/// what the entry reached.
fn pick_parent(weights: &[u64], rng: &mut ChaCha8Rng) -> usize {
    let len = weights.len();
    match rng.gen_range(0..3) {
        0 => len - 1 - rng.gen_range(0..len.div_ceil(8)),
        1 => rng.gen_range(0..len),
        _ => sim::guided::pick_weighted(weights, rng),
    }
}

/// Whether `scenario` is one the system's loader accepts, as its file will be loaded.
fn loads<S: System>(scenario: &ScenarioOf<S>) -> bool {
    scenario.to_toml().is_ok_and(|text| sim::scenario::parse_for::<S>("derived.toml", &text).is_ok())
}

fn stop(tally: &Tally, args: &FuzzArgs) -> bool {
    args.stop_on_failure && tally.failed > 0
}

/// What a campaign keeps of the runs it judged.
struct Book<'a, S: System> {
    novelty: &'a mut Novelty,
    corpus: &'a mut Vec<Entry<S>>,
    windows: &'a mut Windows<S>,
}

/// Count one run, report it, keep it in the corpus when it reached something new, and open
/// windows where it reached probes few runs reached (unless it is a `cut_off` run). A failing
/// derived run's file is kept (`file`: where it is, and the folder to keep it in).
#[allow(clippy::too_many_arguments)]
fn judge<S: System>(
    tally: &mut Tally,
    book: Book<'_, S>,
    scenario: ScenarioOf<S>,
    cut_off: bool,
    mut result: SeedResult,
    label: &str,
    args: &FuzzArgs,
    findings: &mut super::fuzz::Findings,
    file: Option<(&Path, &Path)>,
) -> Result<(), CliError> {
    let run = tally.runs;
    tally.runs += 1;
    let Book { novelty, corpus, windows } = book;
    let probes = result.coverage.take().unwrap_or_default();
    let new = novelty.record(probes.iter().map(|p| (p.name.as_str(), p.hits)));
    windows.record(&scenario, &probes, cut_off);
    if args.json {
        let line = serde_json::json!({
            "run": run, "label": label, "seed": result.seed, "verdict": result.verdict,
            "trace_hash": result.trace_hash, "new_probes": new.len(),
        });
        println!("{line}");
    }
    match result.verdict.as_str() {
        "pass" => tally.passed += 1,
        "excused" => tally.excused += 1,
        _ => {
            tally.failed += 1;
            tally.first_failure.get_or_insert(run);
            if let Some((path, kept)) = file {
                std::fs::create_dir_all(kept)
                    .map_err(|e| CliError::Io { path: kept.display().to_string(), message: e.to_string() })?;
                let keep = kept.join(path.file_name().unwrap_or_default());
                std::fs::copy(path, &keep)
                    .map_err(|e| CliError::Io { path: keep.display().to_string(), message: e.to_string() })?;
                let bugs: String = args.campaign.bugs.iter().map(|b| format!(" --bug {b}")).collect();
                result.reproduce = Some(format!("metasim run {}{bugs}", keep.display()));
            }
            let violation = result.violation.as_deref().unwrap_or("?");
            let reproduce = result.reproduce.as_deref().unwrap_or("?");
            let report = format!("FAIL guided run {run} ({label}): {violation}\n  reproduce: {reproduce}");
            if args.json {
                eprintln!("{report}");
            } else {
                println!("{report}");
            }
            findings.append(&result)?;
        }
    }
    if !new.is_empty() {
        let moments = probes.iter().filter(|p| new.contains(&p.name)).map(|p| p.first_ms).collect();
        let probes = probes.into_iter().map(|p| (p.name, p.first_ms)).collect();
        if corpus.len() >= CORPUS_MAX {
            corpus.remove(0);
        }
        corpus.push(Entry { scenario, moments, probes });
    }
    Ok(())
}

fn finish<S: System>(
    counts: &Tally,
    novelty: &Novelty,
    corpus: usize,
    started: Instant,
    profile: &sim::swarm::Profile,
    args: &FuzzArgs,
) -> Result<ExitCode, CliError> {
    let wall = started.elapsed().as_secs_f64();
    let listed = sim::coverage::catalogue::<S::Harness>().len();
    let windows = if args.windows_on(profile) { ", windows" } else { "" };
    let mut lines = vec![
        format!(
            "profile {} ({}), guided{windows}: {} runs in {wall:.1}s ({:.0} runs/min); corpus {corpus}; {} probes reached ({listed} listed)",
            profile.name,
            S::NAME,
            counts.runs,
            counts.runs as f64 * 60.0 / wall.max(1e-9),
            novelty.probes(),
        ),
        tally(counts.passed, counts.excused, counts.failed),
    ];
    if let Some(run) = counts.first_failure {
        lines.insert(0, format!("first failure at run {run} (runs to find: {})", run + 1));
    }
    print_closing(&lines, args.json);
    Ok(if counts.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The system's [`sim::guided::Knob::Hasten`].
fn hasten<S: System>(rng: &mut ChaCha8Rng, config: &mut sim::ConfigOf<S::Node>) {
    <S::Workload as sim::Workload>::hasten_config(rng, config);
}

/// Where derived runs are written while they run.
fn scratch_folder(start: u64) -> Result<PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!("metasim-guided-{}-{start}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Io { path: dir.display().to_string(), message: e.to_string() })?;
    Ok(dir)
}

/// Where failing derived runs are kept: a folder named after the findings file.
fn kept_folder(findings: &Path) -> PathBuf {
    let mut name = findings.file_name().unwrap_or_default().to_os_string();
    name.push(".runs");
    findings.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use sim::{Action, Step};

    use super::{loads, Windows, WINDOW_REACH_MAX, WINDOW_RUNS};
    use crate::cli::output::ProbeHit;
    use metasim::server::wire::MetaOp;
    use metasim::sut::MetaSystem;

    /// A mutant that names a cluster its run's [system] lacks is not drawn as a run (a splice
    /// from a two-cluster run brought one in, and the worker refused the file).
    #[test]
    fn a_mutant_the_loader_refuses_is_not_a_run() {
        let profile = sim::swarm::profile("default").unwrap();
        let mut scenario = sim::swarm::generate::<MetaSystem>(0, profile);
        scenario.system.clusters.clear();
        assert!(loads::<MetaSystem>(&scenario));
        let op = MetaOp::CreateStream {
            account: "A".into(),
            name: "S0".into(),
            subjects: vec!["s0.>".into()],
            replicas: 1,
            max_consumers: None,
            required_api_level: None,
            config_json: None,
            cluster: Some("east".into()),
        };
        scenario.steps.insert(0, Step { at_ms: 1, action: Action::Client { node: Some(0), op } });
        assert!(!loads::<MetaSystem>(&scenario));
    }

    /// A window stays open while few runs that were not its own cut-offs reached its probe:
    /// every cut-off run replays the moment the window opened at, so counting them would close
    /// a window after its first few runs, however rare its probe is.
    #[test]
    fn cut_off_runs_do_not_make_their_probe_common() {
        let scenario = sim::swarm::generate::<MetaSystem>(0, sim::swarm::profile("default").unwrap());
        let hit = |name: &str, first_ms| ProbeHit { name: name.into(), hits: 1, first_ms, first_node: 3 };
        let mut windows = Windows::<MetaSystem>::new(true);
        for _ in 0..10 {
            windows.record(&scenario, &[hit("common", 5)], false);
        }
        windows.record(&scenario, &[hit("common", 5), hit("rare", 40_000)], false);
        let at = windows.next().expect("the rare probe opened a window");
        let window = &windows.open[at];
        assert_eq!((window.probe.as_str(), window.node, window.at_ms), ("rare", 3, 40_000));
        assert_eq!(windows.open.len(), 1, "the common probe opened none");

        // Its cut-off runs, and more, reach the probe again: the window stays until spent.
        for _ in 0..WINDOW_RUNS + 4 {
            windows.record(&scenario, &[hit("common", 5), hit("rare", 40_000)], true);
        }
        assert_eq!(windows.reach("rare"), 1);
        assert_eq!(windows.next(), Some(at));

        // Runs of their own that reach it make it common: then no window waits on it.
        for _ in 0..WINDOW_REACH_MAX {
            windows.record(&scenario, &[hit("common", 5), hit("rare", 40_000)], false);
        }
        assert_eq!(windows.reach("rare"), 1 + WINDOW_REACH_MAX);
        assert_eq!(windows.next(), None, "{} windows", windows.open.len());
    }
}
