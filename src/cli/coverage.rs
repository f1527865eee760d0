//! `coverage`: which behaviours a range of seeds reached, how often, and which it never did.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use sim::coverage::{ProbeInfo, Reach};
use sim::System;

use metasim::with_system;

use super::fuzz::{worker_args, Campaign, CampaignArgs};
use super::output::ProbeHit;
use super::pool::{Items, Pool};
use super::run::unknown_system;
use super::{flag_error, CliError};

#[derive(Args, Debug)]
pub struct CoverageArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run these scenario files (or every `.toml` under these folders) instead of seeds: what
    /// the regression scenarios reach.
    #[arg(long, num_args = 1.., value_name = "PATH", conflicts_with = "seeds")]
    pub scenarios: Vec<PathBuf>,
}

/// What a campaign reached of one probe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProbeTally {
    /// Runs that hit it.
    pub runs: u64,
    /// Hits over every run.
    pub hits: u64,
    /// The first seed that hit it.
    pub first_seed: u64,
}

/// A campaign's coverage against the system's catalogue.
#[derive(Debug, Default, Serialize)]
pub struct CoverageReport {
    pub runs: u64,
    /// Listed probes hit, by name.
    pub hit: BTreeMap<String, ProbeTally>,
    /// Listed probes no run hit, with what they stand for and what reaches them.
    pub never: Vec<(String, String, Reach)>,
    /// Probes hit that the catalogue does not list (a catalogue to complete).
    pub unlisted: BTreeMap<String, ProbeTally>,
    pub listed: usize,
    /// Listed probes fuzzing should reach ([`Reach::Fuzz`]), and how many of them were hit.
    pub reachable: usize,
    pub reachable_hit: usize,
}

impl CoverageReport {
    pub fn new(catalogue: &[ProbeInfo]) -> Self {
        let never = catalogue.iter().map(|p| (p.name.to_string(), p.what.to_string(), p.reach)).collect();
        let reachable = catalogue.iter().filter(|p| p.reach == Reach::Fuzz).count();
        CoverageReport { listed: catalogue.len(), never, reachable, ..Default::default() }
    }

    /// Add one run's probes (runs must come in seed order for `first_seed` to be the first).
    pub fn add(&mut self, seed: u64, probes: &[ProbeHit]) {
        self.runs += 1;
        for probe in probes {
            let listed = match self.never.iter().position(|(name, ..)| *name == probe.name) {
                Some(at) => {
                    if self.never.remove(at).2 == Reach::Fuzz {
                        self.reachable_hit += 1;
                    }
                    true
                }
                None => self.hit.contains_key(&probe.name),
            };
            let map = if listed { &mut self.hit } else { &mut self.unlisted };
            let tally = map.entry(probe.name.clone()).or_insert(ProbeTally { first_seed: seed, ..Default::default() });
            tally.runs += 1;
            tally.hits += probe.hits;
        }
    }

    /// Listed probes hit, as a share of the catalogue.
    pub fn share(&self) -> f64 {
        self.hit.len() as f64 / self.listed.max(1) as f64
    }

    /// Probes hit of those fuzzing should reach, as a share of them.
    pub fn reachable_share(&self) -> f64 {
        self.reachable_hit as f64 / self.reachable.max(1) as f64
    }
}

pub fn coverage(args: CoverageArgs) -> Result<ExitCode, CliError> {
    let system = args.campaign.system.clone();
    with_system!(system.as_str(), S => coverage_for::<S>(args), unknown => Err(unknown_system(&system)))
}

fn coverage_for<S: System>(args: CoverageArgs) -> Result<ExitCode, CliError> {
    // Scenario files name their own seeds: no range.
    let Campaign { range, profile, jobs, exe } = match args.scenarios.is_empty() {
        true => args.campaign.check::<S>()?,
        false => args.campaign.check_with_range::<S>(0..0)?,
    };
    let worker_args = worker_args(profile, S::NAME, &args.campaign.bugs, false, true);
    let (items, names, what): (Items, Vec<String>, String) = if args.scenarios.is_empty() {
        (Items::SEEDS, range.map(|s| s.to_string()).collect(), format!("profile {}", profile.name))
    } else {
        let files = scenario_files(&args.scenarios, S::NAME)?;
        let items = Items { flag: "--files", chunk: files.len().div_ceil(jobs).max(1) };
        (items, files, "scenario files".to_string())
    };
    let total = names.len();
    let pool = Pool::start(exe, worker_args, names.clone().into_iter(), items, jobs);
    // Workers finish out of order: keep every run's probes, then add them in order (seed, or
    // the files' order), so `first_seed` is the first seed, or the index of the first file.
    let mut by_item = BTreeMap::new();
    for msg in pool.results.iter() {
        let result = msg.map_err(CliError::Other)?;
        let order = match &result.file {
            Some(file) => names.iter().position(|n| n == file).unwrap_or(total) as u64,
            None => result.seed,
        };
        by_item.insert(order, result.coverage.unwrap_or_default());
    }
    if by_item.len() < total {
        return Err(CliError::Other(format!("only {} of {total} runs reported; a worker died", by_item.len())));
    }
    let mut report = CoverageReport::new(&sim::coverage::catalogue::<S::Harness>());
    for (order, probes) in &by_item {
        report.add(*order, probes);
    }
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(|e| CliError::Other(e.to_string()))?);
    } else {
        print_report(&report, &what);
    }
    Ok(ExitCode::SUCCESS)
}

/// The scenario files of `system` among `paths`: each file as given, and every `.toml` under
/// each folder that names this system, sorted. Bounded, as a folder may be large by mistake.
fn scenario_files(paths: &[PathBuf], system: &str) -> Result<Vec<String>, CliError> {
    const FILES_MAX: usize = 10_000;
    let mut files = Vec::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    for path in paths {
        if path.is_dir() {
            folders.push(path.clone());
        } else if path.is_file() {
            if !names_system(path, system)? {
                return Err(flag_error(
                    "--scenarios",
                    format!("{}: not a scenario of system {system}", path.display()),
                ));
            }
            files.push(path.display().to_string());
        } else {
            return Err(flag_error("--scenarios", format!("{}: no such file or folder", path.display())));
        }
    }
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|e| flag_error("--scenarios", format!("{}: {e}", folder.display())))?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| flag_error("--scenarios", format!("{}: {e}", folder.display())))?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") && names_system(&path, system)? {
                found.push(path.display().to_string());
            }
        }
        found.sort();
        files.extend(found);
        if files.len() > FILES_MAX {
            return Err(flag_error("--scenarios", format!("more than {FILES_MAX} files")));
        }
    }
    if files.is_empty() {
        return Err(flag_error("--scenarios", "no scenario files found".to_string()));
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Whether the scenario file at `path` is one of `system` (the default system's when it names
/// none, as `run` reads it).
fn names_system(path: &std::path::Path, system: &str) -> Result<bool, CliError> {
    let text = sim::scenario::read_source(path)?;
    let sut = super::run::sut_of(&text).map(|(sut, _)| sut);
    Ok(sut.as_deref().unwrap_or(metasim::sut::DEFAULT_SYSTEM) == system)
}

fn print_report(report: &CoverageReport, what: &str) {
    println!("{:<58} {:>6} {:>10} {:>10}", "probe", "runs", "hits", "first seed");
    for (name, t) in &report.hit {
        println!("{name:<58} {:>6} {:>10} {:>10}", t.runs, t.hits, t.first_seed);
    }
    if !report.unlisted.is_empty() {
        println!("\nhit but not in the catalogue:");
        for (name, t) in &report.unlisted {
            println!("{name:<58} {:>6} {:>10} {:>10}", t.runs, t.hits, t.first_seed);
        }
    }
    for reach in [Reach::Fuzz, Reach::Scenario, Reach::BugSwitch, Reach::Unexpected] {
        let never: Vec<_> = report.never.iter().filter(|p| p.2 == reach).collect();
        if never.is_empty() {
            continue;
        }
        println!("\nnever hit, {}:", reach_heading(reach));
        for (name, what, _) in never {
            println!("{name:<58} {what}");
        }
    }
    println!(
        "\n{what}: {} runs hit {} of {} listed probes ({:.1}%); {} never hit",
        report.runs,
        report.hit.len(),
        report.listed,
        100.0 * report.share(),
        report.never.len()
    );
    println!(
        "of the {} that fuzzing should reach, {} ({:.1}%)",
        report.reachable,
        report.reachable_hit,
        100.0 * report.reachable_share()
    );
}

fn reach_heading(reach: Reach) -> &'static str {
    match reach {
        Reach::Fuzz => "though fuzzing should reach them",
        Reach::Scenario => "reached only by actions scenario files play",
        Reach::BugSwitch => "reached only with a bug switch",
        Reach::Unexpected => "never expected in a correct build",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &str, hits: u64) -> ProbeHit {
        ProbeHit { name: name.into(), hits, first_ms: 0, first_node: 0 }
    }

    #[test]
    fn a_report_counts_runs_and_hits_and_keeps_what_was_never_hit() {
        let catalogue =
            [ProbeInfo::new("a", "A"), ProbeInfo::new("b", "B").reached_by(Reach::Scenario), ProbeInfo::new("c", "C")];
        let mut report = CoverageReport::new(&catalogue);
        report.add(7, &[hit("a", 2), hit("x", 1)]);
        report.add(9, &[hit("a", 3), hit("b", 1)]);
        assert_eq!(report.runs, 2);
        assert_eq!(report.hit["a"], ProbeTally { runs: 2, hits: 5, first_seed: 7 });
        assert_eq!(report.hit["b"], ProbeTally { runs: 1, hits: 1, first_seed: 9 });
        assert_eq!(report.never, vec![("c".to_string(), "C".to_string(), Reach::Fuzz)]);
        assert_eq!((report.reachable, report.reachable_hit), (2, 1), "b is not one fuzzing should reach");
        assert_eq!(report.unlisted["x"].runs, 1, "a probe outside the catalogue is reported apart");
        assert!((report.share() - 2.0 / 3.0).abs() < 1e-9);
    }
}
