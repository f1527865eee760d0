//! The Rust scenario API (`metasim::scenario`) runs what a file runs: a scenario built in
//! Rust gives the trace hash of the same scenario written as a file, and its `to_toml()`
//! is such a file.

mod common;

use common::{metasim, scratch};
use metasim::scenario::{meta, MetaExpect, MetaOp, MetaScenario, RunVerdict, Verdict};

/// scenarios/meta/election-under-partition.toml, step for step.
fn election_under_partition() -> MetaScenario {
    meta("election under a partition")
        .servers(5)
        .duration_ms(60_000)
        .liveness(true)
        .expect(Verdict::Pass)
        .partition(0, &[&[0, 1], &[2, 3, 4]])
        .client(15_000, 3, MetaOp::Propose { count: 5 })
        .check(20_000, MetaExpect::Leaderless { node: 0, is: true })
        .check(20_000, MetaExpect::Leaderless { node: 1, is: true })
        .check(20_000, MetaExpect::Leaderless { node: 2, is: false })
        .check(20_000, MetaExpect::Current { node: 0, is: false })
        .heal_all(25_000)
        .check(45_000, MetaExpect::OneLeader {})
        .check(45_000, MetaExpect::AppliedAtLeast { node: 0, index: 6 })
}

#[test]
fn a_built_scenario_and_its_file_give_the_same_trace_hash() {
    let built = election_under_partition();
    let outcome = built.run().expect("valid");
    assert_eq!(outcome.verdict, RunVerdict::Pass, "{:?}", outcome.failure);
    assert!(outcome.as_expected);

    // The hand-written file.
    let file = metasim(&["run", "scenarios/meta/election-under-partition.toml"]);
    assert_eq!(file.code, 0, "{}", file.stdout);
    assert_eq!(file.line("trace-hash: "), Some(outcome.trace_hash_hex().as_str()));

    // The builder's own file, run by the CLI.
    let path = scratch("scenario-api").join("built.toml");
    std::fs::write(&path, built.to_toml().unwrap()).unwrap();
    let run = metasim(&["run", path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.line("trace-hash: "), Some(outcome.trace_hash_hex().as_str()));

    // Another seed is another run: the hash is the run's, not the file's.
    let reseeded = built.clone().seed(99).run().unwrap();
    assert_ne!(reseeded.trace_hash, outcome.trace_hash);
}

#[test]
fn a_failing_built_scenario_reports_its_violation() {
    // The expectation cannot hold: node 0 is on the minority side.
    let outcome = meta("the minority elects")
        .servers(5)
        .duration_ms(30_000)
        .partition(0, &[&[0, 1], &[2, 3, 4]])
        .check(21_000, MetaExpect::Leaderless { node: 0, is: false })
        .expect_violation("expect")
        .run()
        .unwrap();
    assert_eq!(outcome.verdict, RunVerdict::Fail);
    let failure = outcome.failure.as_ref().expect("a violation");
    assert!(failure.invariant.starts_with("expect"), "{failure:?}");
    assert_eq!(failure.sim_ns / 1_000_000, 21_000, "at the step's time");
    assert!(outcome.as_expected, "expect_violation = \"expect\" matches {failure:?}");
}

#[test]
fn steps_out_of_time_order_are_refused_as_in_a_file() {
    let error = meta("backwards").heal_all(5_000).crash(1_000, 0).build().unwrap_err();
    assert_eq!(error.field, "step[1].at_ms");
    assert!(error.message.contains("steps must be in time order"), "{error}");
}
