//! `bench` rows for the cost of the safety checks: scenarios that grow the metadata (N
//! replicated streams created at once on 3 servers, then 60 s of heartbeats and ticks), and
//! the default fuzz profile, each run with incremental checks and with a full sweep after every
//! event (`--full-checks`), in one process, so the ratio holds on a busy machine too.

use std::time::Instant;

use metasim::harness::workload::bulk_assets;
use metasim::sut::MetaSystem;
use sim::scenario::parse_for;
use sim::{RunOptions, RunReport, ScenarioOf};

use super::fuzz::run_seed;

/// A scenario's head: its name, 60 s, expected to pass, on `servers` servers.
fn scenario_head(name: &str, servers: usize) -> String {
    format!("name = \"{name}\"\nduration_ms = 60000\nexpect = \"pass\"\n\n[cluster]\nservers = {servers}\n")
}

/// One client step: `op` (an inline table's fields) asked of `node` at `at_ms`.
fn push_client_step(text: &mut String, at_ms: u64, node: usize, op: &str) {
    text.push_str(&format!("\n[[step]]\nat_ms = {at_ms}\naction = \"client\"\nnode = {node}\nop = {{ {op} }}\n"));
}

/// N R3 streams created 5 s in, spread over the 3 servers' clients.
pub fn creates_scenario(streams: usize) -> ScenarioOf<MetaSystem> {
    let mut text = scenario_head(&format!("{streams} R3 streams created at 5 s"), 3);
    for i in 0..streams {
        let op = format!("kind = \"create-stream\", name = \"S{i}\", subjects = [\"s{i}.>\"], replicas = 3");
        push_client_step(&mut text, 5_000, i % 3, &op);
    }
    parse_for::<MetaSystem>("bench", &text).expect("the bench scenario loads").scenario
}

/// Issue 16's largest target as a scenario: 1,000 R3 streams created 5 s in and two R3
/// consumers on each 3 s later, spread over 5 servers' clients, then 60 s in all.
fn target_assets_scenario() -> ScenarioOf<MetaSystem> {
    const STREAMS: usize = 1_000;
    const SERVERS: usize = 5;
    let mut text = scenario_head(&format!("{STREAMS} R3 streams and {} R3 consumers", 2 * STREAMS), SERVERS);
    for i in 0..STREAMS {
        let op = format!("kind = \"create-stream\", name = \"S{i}\", subjects = [\"s{i}.>\"], replicas = 3");
        push_client_step(&mut text, 5_000, i % SERVERS, &op);
    }
    for i in 0..2 * STREAMS {
        let op = format!("kind = \"create-consumer\", stream = \"S{}\", name = \"C{}\", replicas = 3", i / 2, i % 2);
        push_client_step(&mut text, 8_000, i % SERVERS, &op);
    }
    parse_for::<MetaSystem>("bench", &text).expect("the bench scenario loads").scenario
}

/// `--target-assets`: the scenario above once, with incremental checks.
pub fn target_assets() {
    let scenario = target_assets_scenario();
    let (wall, report) = timed(&scenario, false);
    println!(
        "1000 R3 streams + 2000 R3 consumers, 5 servers, 60 s: {wall:.2}s wall ({:.1}x sim/wall), {} events ({:.0} ns each), {} msgs{}",
        scenario.duration_ms as f64 / 1e3 / wall,
        report.events,
        wall * 1e9 / report.events.max(1) as f64,
        report.messages_delivered,
        if report.passed() { "" } else { " NOT PASSED" }
    );
}

/// Wall seconds of one run of `scenario`, and its report.
fn timed(scenario: &ScenarioOf<MetaSystem>, full_checks: bool) -> (f64, RunReport) {
    let started = Instant::now();
    let report = sim::run::<MetaSystem>(scenario, &RunOptions { full_checks, ..Default::default() });
    (started.elapsed().as_secs_f64().max(1e-9), report)
}

/// One row per stream count: incremental and full checks side by side.
pub fn metadata_size(counts: &[usize]) {
    for &n in counts {
        let scenario = creates_scenario(n);
        let (incremental, report) = timed(&scenario, false);
        let (full, _) = timed(&scenario, true);
        let sim_s = scenario.duration_ms as f64 / 1e3;
        println!(
            "{n:>5} R3 streams, 3 servers, 60 s: {incremental:>7.2}s wall ({:>5.0}x sim/wall){}; full checks {full:>7.2}s ({:.1}x slower)",
            sim_s / incremental,
            if report.passed() { "" } else { " NOT PASSED" },
            full / incremental
        );
    }
}

/// The default profile's seeds per minute both ways.
pub fn fuzz_rate(seeds: u64) {
    let profile = sim::swarm::profile("default").expect("built in");
    let mut walls = [0.0; 2];
    for (i, full_checks) in [false, true].into_iter().enumerate() {
        let started = Instant::now();
        for seed in 0..seeds {
            run_seed::<MetaSystem>(seed, profile, &RunOptions { full_checks, ..Default::default() }, false);
        }
        walls[i] = started.elapsed().as_secs_f64().max(1e-9);
    }
    println!(
        "default fuzz profile, full checks: {seeds} seeds in {:.2}s = {:.0} seeds/min ({:.2}x the incremental wall time)",
        walls[1],
        seeds as f64 * 60.0 / walls[1],
        walls[1] / walls[0]
    );
}

/// The `scale` profile's seeds per minute and simulated/wall ratio, with what the seeds loaded
/// (the bulk load's stream and consumer creates), how many passed and the slowest seed: the
/// cost of a seed varies with how much of its load the faults let through.
pub fn scale_profile(seeds: u64) {
    if seeds == 0 {
        return;
    }
    let profile = sim::swarm::profile("scale").expect("built in");
    let (mut streams, mut consumers, mut passed, mut sim_ms, mut events) = (0, 0, 0, 0, 0);
    let mut wall = 0.0;
    let mut slowest = (0, 0.0);
    for seed in 0..seeds {
        let (s, c) = bulk_assets(&sim::swarm::generate::<MetaSystem>(seed, profile).steps);
        streams += s;
        consumers += c;
        let started = Instant::now();
        let r = run_seed::<MetaSystem>(seed, profile, &RunOptions::default(), false);
        let took = started.elapsed().as_secs_f64();
        wall += took;
        if took > slowest.1 {
            slowest = (seed, took);
        }
        passed += u64::from(r.verdict == "pass");
        sim_ms += r.sim_ms;
        events += r.events;
    }
    let wall = f64::max(wall, 1e-9);
    println!(
        "scale fuzz profile (meta, {streams} stream and {consumers} consumer creates in all): {seeds} seeds in {wall:.2}s = {:.1} seeds/min, {:.1}x sim/wall, {:.0} events/s, {passed} passed; slowest seed {} in {:.2}s",
        seeds as f64 * 60.0 / wall,
        sim_ms as f64 / 1e3 / wall,
        events as f64 / wall,
        slowest.0,
        slowest.1
    );
}
