//! `coverage`: which behaviours a range of seeds reached, how often, and which it never did.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use sim::coverage::ProbeInfo;
use sim::System;

use metasim::with_system;

use super::fuzz::{worker_args, Campaign, CampaignArgs};
use super::output::ProbeHit;
use super::pool::{Items, Pool};
use super::run::unknown_system;
use super::CliError;

#[derive(Args, Debug)]
pub struct CoverageArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
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
    /// Listed probes no run hit, with what they stand for.
    pub never: Vec<(String, String)>,
    /// Probes hit that the catalogue does not list (a catalogue to complete).
    pub unlisted: BTreeMap<String, ProbeTally>,
    pub listed: usize,
}

impl CoverageReport {
    pub fn new(catalogue: &[ProbeInfo]) -> Self {
        let never = catalogue.iter().map(|p| (p.name.to_string(), p.what.to_string())).collect();
        CoverageReport { listed: catalogue.len(), never, ..Default::default() }
    }

    /// Add one run's probes (runs must come in seed order for `first_seed` to be the first).
    pub fn add(&mut self, seed: u64, probes: &[ProbeHit]) {
        self.runs += 1;
        for probe in probes {
            let listed = match self.never.iter().position(|(name, _)| *name == probe.name) {
                Some(at) => {
                    self.never.remove(at);
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
}

pub fn coverage(args: CoverageArgs) -> Result<ExitCode, CliError> {
    let system = args.campaign.system.clone();
    with_system!(system.as_str(), S => coverage_for::<S>(args), unknown => Err(unknown_system(&system)))
}

fn coverage_for<S: System>(args: CoverageArgs) -> Result<ExitCode, CliError> {
    let Campaign { range, profile, jobs, exe } = args.campaign.check::<S>()?;
    let total = range.end - range.start;
    let worker_args = worker_args(profile, S::NAME, &args.campaign.bugs, false, true);
    let pool = Pool::start(exe, worker_args, range.map(|s| s.to_string()), Items::SEEDS, jobs);
    // Workers finish out of order: keep every run's probes, then add them in seed order.
    let mut by_seed = BTreeMap::new();
    for msg in pool.results.iter() {
        let result = msg.map_err(CliError::Other)?;
        by_seed.insert(result.seed, result.coverage.unwrap_or_default());
    }
    if (by_seed.len() as u64) < total {
        return Err(CliError::Other(format!("only {} of {total} seeds reported; a worker died", by_seed.len())));
    }
    let mut report = CoverageReport::new(&sim::coverage::catalogue::<S::Harness>());
    for (seed, probes) in &by_seed {
        report.add(*seed, probes);
    }
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(|e| CliError::Other(e.to_string()))?);
    } else {
        print_report(&report, profile.name);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &CoverageReport, profile: &str) {
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
    println!("\nnever hit:");
    for (name, what) in &report.never {
        println!("{name:<58} {what}");
    }
    println!(
        "\nprofile {profile}: {} runs hit {} of {} listed probes ({:.1}%); {} never hit",
        report.runs,
        report.hit.len(),
        report.listed,
        100.0 * report.share(),
        report.never.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &str, hits: u64) -> ProbeHit {
        ProbeHit { name: name.into(), hits, first_ms: 0 }
    }

    #[test]
    fn a_report_counts_runs_and_hits_and_keeps_what_was_never_hit() {
        let catalogue = [ProbeInfo::new("a", "A"), ProbeInfo::new("b", "B"), ProbeInfo::new("c", "C")];
        let mut report = CoverageReport::new(&catalogue);
        report.add(7, &[hit("a", 2), hit("x", 1)]);
        report.add(9, &[hit("a", 3), hit("b", 1)]);
        assert_eq!(report.runs, 2);
        assert_eq!(report.hit["a"], ProbeTally { runs: 2, hits: 5, first_seed: 7 });
        assert_eq!(report.hit["b"], ProbeTally { runs: 1, hits: 1, first_seed: 9 });
        assert_eq!(report.never, vec![("c".to_string(), "C".to_string())]);
        assert_eq!(report.unlisted["x"].runs, 1, "a probe outside the catalogue is reported apart");
        assert!((report.share() - 2.0 / 3.0).abs() < 1e-9);
    }
}
