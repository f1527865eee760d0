//! The safety checks look only where an event touched (issue 16); a full sweep after every
//! event (`RunOptions::full_checks`, `--full-checks`) is the reference. Both must give the same
//! run: the same trace hash (which covers the violation event), verdict and violation, on
//! seeds of every fuzz profile and on every bug-switch seed of the corpus.
//! (`scripts/trace-hashes --flag --full-checks` compares 300 seeds of every profile, the corpus
//! and every scenario file the same way, on a release build.)

mod common;

use sim::{RunOptions, RunReport, ScenarioOf};

type Meta = metasim::sut::MetaSystem;

/// Seeds per profile here; the script runs more.
const SEEDS: u64 = 6;

fn run(scenario: &ScenarioOf<Meta>, bugs: &[String], full_checks: bool) -> RunReport {
    sim::run::<Meta>(scenario, &RunOptions { bugs: bugs.to_vec(), full_checks, ..Default::default() })
}

/// What must agree between the two ways of checking: trace hash, violation (invariant, node,
/// message) and excuse.
fn outcome(report: &RunReport) -> String {
    let violation = report.violation.as_ref().map(|v| (&v.invariant, v.node, &v.message));
    format!("{:016x} {violation:?} {:?}", report.trace_hash, report.excused)
}

fn assert_same(scenario: &ScenarioOf<Meta>, bugs: &[String], what: &str) -> RunReport {
    let incremental = run(scenario, bugs, false);
    let full = run(scenario, bugs, true);
    assert_eq!(outcome(&incremental), outcome(&full), "{what}: incremental and full checks disagree");
    incremental
}

#[test]
fn incremental_checks_agree_with_full_sweeps_on_every_profile() {
    for profile in sim::swarm::PROFILES {
        for seed in 0..SEEDS {
            let mut scenario = sim::swarm::generate::<Meta>(seed, profile);
            if profile.bulk.is_some() {
                // A full sweep over a bulk load's thousands of groups after every event takes
                // hours: the first BULK_MS of the run (the load's first units, under faults) compares.
                scenario.steps.retain(|s| s.at_ms < BULK_MS);
                scenario.duration_ms = BULK_MS;
                scenario.liveness = false;
            }
            assert_same(&scenario, &[], &format!("seed {seed} of {}", profile.name));
        }
    }
}

/// How much of a bulk-load profile's run (`scale`) the comparison covers.
const BULK_MS: u64 = 4_000;

#[test]
fn incremental_checks_agree_with_full_sweeps_on_the_bug_switch_corpus() {
    let text = std::fs::read_to_string(common::root().join("seeds/meta.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let mut failures = 0;
    for entry in doc["seed"].as_array().unwrap() {
        let bugs: Vec<String> =
            entry["bugs"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect();
        if bugs.is_empty() {
            continue;
        }
        let seed = entry["seed"].as_integer().unwrap() as u64;
        let profile = sim::swarm::profile(entry["profile"].as_str().unwrap()).unwrap();
        let scenario = sim::swarm::generate::<Meta>(seed, profile);
        let report = assert_same(&scenario, &bugs, &format!("seed {seed} of {} with {bugs:?}", profile.name));
        failures += usize::from(report.violation.is_some());
    }
    // The corpus's bug seeds fail: the comparison covered the checks that fire.
    assert!(failures >= 10, "only {failures} corpus seeds failed");
}
