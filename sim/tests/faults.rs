//! Each fault of the engine, shown by its effect on the register fixture (or on a probe system
//! written here, as any user of `sim` would). Every test compares the faulty run with what the
//! model promises, so a broken model fails it.

use sim::fixture::ping::PingSystem;
use sim::fixture::register::RegisterSystem;
use sim::{
    run, CheckFailure, Cluster, Env, Harness, Node, NodeIndex, NodeTypes, RunOptions, RunReport, ScenarioOf, System,
    Touched, Workload,
};

fn run_register(toml: &str) -> RunReport {
    let scenario = ScenarioOf::<RegisterSystem>::parse("inline.toml", toml).unwrap_or_else(|e| panic!("{e}"));
    run::<RegisterSystem>(&scenario, &RunOptions { keep_trace: true, keep_detail: true, ..Default::default() })
}

fn assert_pass(r: &RunReport) {
    if let Some(v) = &r.violation {
        let recent: Vec<String> = v.recent.iter().map(|e| e.to_string()).collect();
        panic!("{}: {}\n{}", v.invariant, v.message, recent.join("\n"));
    }
}

fn count(r: &RunReport, node: u32, kind: &str) -> usize {
    r.trace.as_ref().unwrap().iter().filter(|e| e.node == node && e.kind == kind).count()
}

/// One write on node 0 whose fsync takes a second (slow disk), then `fault` at 500 ms, before
/// the fsync completes, then a restart. Node 0 is isolated so replication cannot refill it.
fn unsynced_write_then(fault: &str, expect_after_restart: &str) -> RunReport {
    run_register(&format!(
        r#"
duration_ms = 2000
[cluster]
servers = 2
[[step]]
at_ms = 0
action = "isolate"
node = 0
[[step]]
at_ms = 10
action = "slow-disk"
node = 0
extra_ms = 1000
[[step]]
at_ms = 100
action = "client"
node = 0
op = {{ kind = "write", value = 7 }}
[[step]]
at_ms = 500
action = "expect"
check = {{ kind = "durable-records", node = 0, equals = 0 }}
{fault}
[[step]]
at_ms = 600
action = "restart"
node = 0
[[step]]
at_ms = 601
action = "expect"
check = {expect_after_restart}
"#
    ))
}

#[test]
fn power_loss_drops_exactly_the_unsynced_writes() {
    let fault = "[[step]]\nat_ms = 500\naction = \"power-loss\"\nnode = 0\n";
    let r = unsynced_write_then(fault, "{ kind = \"recovered-records\", node = 0, equals = 0 }");
    assert_pass(&r);
    // The control: the same expectation fails when the write is kept.
    let r = unsynced_write_then(fault, "{ kind = \"recovered-records\", node = 0, equals = 1 }");
    assert!(!r.passed(), "power loss must drop the unsynced record");
}

#[test]
fn process_crash_keeps_unsynced_writes() {
    let fault = "[[step]]\nat_ms = 500\naction = \"crash\"\nnode = 0\n";
    let r = unsynced_write_then(fault, "{ kind = \"recovered-records\", node = 0, equals = 1 }");
    assert_pass(&r);
    let r = unsynced_write_then(fault, "{ kind = \"value\", node = 0, equals = 7 }");
    assert_pass(&r);
}

#[test]
fn torn_write_leaves_a_detectably_partial_record() {
    let fault = "[[step]]\nat_ms = 500\naction = \"power-loss\"\nnode = 0\ntorn = true\n";
    let r = unsynced_write_then(fault, "{ kind = \"torn-bytes-discarded\", node = 0, at_least = 1 }");
    assert_pass(&r);
    assert_eq!(count(&r, 0, "torn-write"), 1, "the world tore the write");
    assert_eq!(count(&r, 0, "torn-tail"), 1, "recovery detected the partial record");
    let r = unsynced_write_then(fault, "{ kind = \"recovered-records\", node = 0, equals = 0 }");
    assert_pass(&r);
}

/// Three writes, all synced, then a corruption of node 1's log while it is down.
fn corrupted(corruption: &str, expect: &str) -> RunReport {
    run_register(&format!(
        r#"
duration_ms = 3000
[cluster]
servers = 2
[[step]]
at_ms = 0
action = "isolate"
node = 1
[[step]]
at_ms = 100
action = "client"
node = 1
op = {{ kind = "write", value = 1 }}
[[step]]
at_ms = 200
action = "client"
node = 1
op = {{ kind = "write", value = 2 }}
[[step]]
at_ms = 300
action = "client"
node = 1
op = {{ kind = "write", value = 3 }}
[[step]]
at_ms = 400
action = "crash"
node = 1
[[step]]
at_ms = 500
action = "corrupt"
node = 1
kind = "log"
corruption = "{corruption}"
[[step]]
at_ms = 600
action = "restart"
node = 1
[[step]]
at_ms = 700
action = "expect"
check = {expect}
"#
    ))
}

#[test]
fn bit_flip_is_detected_and_the_node_refuses_to_start() {
    assert_pass(&corrupted("bit-flip", "{ kind = \"status\", node = 1, is = \"refused\" }"));
    // Without the flip the same node starts.
    assert_pass(&corrupted("rollback", "{ kind = \"status\", node = 1, is = \"running\" }"));
}

#[test]
fn truncation_rollback_and_wipe_lose_records() {
    assert!(!corrupted("truncate", "{ kind = \"recovered-records\", node = 1, equals = 3 }").passed());
    assert_pass(&corrupted("rollback", "{ kind = \"recovered-records\", node = 1, equals = 2 }"));
    assert_pass(&corrupted("wipe", "{ kind = \"recovered-records\", node = 1, equals = 0 }"));
}

fn one_write_with(setup: &str, checks: &str) -> RunReport {
    run_register(&format!(
        r#"
duration_ms = 3000
[cluster]
servers = 2
[[step]]
at_ms = 0
action = "isolate"
node = 0
{setup}
[[step]]
at_ms = 100
action = "client"
node = 0
op = {{ kind = "write", value = 9 }}
{checks}
"#
    ))
}

#[test]
fn lost_fsync_reports_success_but_power_loss_takes_the_data() {
    let setup = "[[step]]\nat_ms = 50\naction = \"lost-fsync\"\nnode = 0\nkind = \"log\"\non = true\n";
    let checks = r#"
[[step]]
at_ms = 500
action = "power-loss"
node = 0
[[step]]
at_ms = 600
action = "restart"
node = 0
[[step]]
at_ms = 601
action = "expect"
check = { kind = "recovered-records", node = 0, equals = REC }
"#;
    let r = one_write_with(setup, &checks.replace("REC", "0"));
    assert_pass(&r);
    assert_eq!(count(&r, 0, "fsync-lost"), 1);
    assert_eq!(count(&r, 0, "ack"), 1, "the write was acknowledged on a lying fsync");
    assert_pass(&one_write_with("", &checks.replace("REC", "1")));
}

#[test]
fn enospc_fails_the_write() {
    let setup = "[[step]]\nat_ms = 50\naction = \"no-space\"\nnode = 0\nkind = \"log\"\non = true\n";
    let checks =
        "[[step]]\nat_ms = 500\naction = \"expect\"\ncheck = { kind = \"durable-records\", node = 0, equals = N }\n";
    let r = one_write_with(setup, &checks.replace('N', "0"));
    assert_pass(&r);
    assert_eq!(count(&r, 0, "write-failed"), 1);
    assert_pass(&one_write_with("", &checks.replace('N', "1")));
}

#[test]
fn slow_disk_delays_durability() {
    let setup = "[[step]]\nat_ms = 50\naction = \"slow-disk\"\nnode = 0\nextra_ms = 800\n";
    let checks = r#"
[[step]]
at_ms = 500
action = "expect"
check = { kind = "durable-records", node = 0, equals = 0 }
[[step]]
at_ms = 1000
action = "expect"
check = { kind = "durable-records", node = 0, equals = 1 }
"#;
    assert_pass(&one_write_with(setup, checks));
    assert!(!one_write_with("", checks).passed(), "without the fault the record is durable by 500 ms");
}

/// Two nodes, a network action at 0 ms, a write of 11 on node 0, later a write of 22 on node 1,
/// then where the values went. Versions are (counter << 8 | node): node 1's write outranks node
/// 0's only if node 1 heard it first.
fn two_writes_under(network: &str, n0_sees: u64, n1_sees: u64) -> RunReport {
    run_register(&format!(
        r#"
duration_ms = 3000
[cluster]
servers = 2
[[step]]
at_ms = 0
{network}
[[step]]
at_ms = 100
action = "client"
node = 0
op = {{ kind = "write", value = 11 }}
[[step]]
at_ms = 1000
action = "client"
node = 1
op = {{ kind = "write", value = 22 }}
[[step]]
at_ms = 2000
action = "expect"
check = {{ kind = "value", node = 0, equals = {n0_sees} }}
[[step]]
at_ms = 2000
action = "expect"
check = {{ kind = "value", node = 1, equals = {n1_sees} }}
"#
    ))
}

#[test]
fn partition_stops_delivery_both_ways() {
    let healthy = two_writes_under("action = \"heal-network\"", 22, 22);
    assert_pass(&healthy);
    assert!(count(&healthy, 0, "recv") > 0 && count(&healthy, 1, "recv") > 0);
    let cut = two_writes_under("action = \"partition\"\ngroups = [[0], [1]]", 11, 22);
    assert_pass(&cut);
    assert_eq!(count(&cut, 0, "recv") + count(&cut, 1, "recv"), 0, "nothing crosses a partition");
    assert!(count(&cut, 0, "drop") + count(&cut, 1, "drop") > 0, "sends were dropped, and traced");
}

#[test]
fn one_way_partition_stops_one_direction_only() {
    // 0 -> 1 cut: node 1 never hears 11, so its 22 is version 0x101 and node 0 adopts it.
    let r = two_writes_under("action = \"partition-one-way\"\nfrom = [0]\nto = [1]", 22, 22);
    assert_pass(&r);
    assert_eq!(count(&r, 1, "recv"), 0, "nothing crosses the cut direction");
    assert!(count(&r, 0, "recv") > 0, "the other direction still delivers");
    // 1 -> 0 cut: node 0 keeps 11 for ever; node 1 heard it and still wins with 22 locally.
    let r = two_writes_under("action = \"partition-one-way\"\nfrom = [1]\nto = [0]", 11, 22);
    assert_pass(&r);
    assert_eq!(count(&r, 0, "recv"), 0);
    assert!(count(&r, 1, "recv") > 0);
}

#[test]
fn clog_holds_messages_and_unclog_releases_them() {
    let r = run_register(
        r#"
duration_ms = 3000
[cluster]
servers = 2
[[step]]
at_ms = 0
action = "clog"
node = 1
[[step]]
at_ms = 100
action = "client"
node = 0
op = { kind = "write", value = 5 }
[[step]]
at_ms = 1000
action = "expect"
check = { kind = "value", node = 1, equals = 0 }
[[step]]
at_ms = 1500
action = "unclog"
node = 1
[[step]]
at_ms = 1600
action = "expect"
check = { kind = "value", node = 1, equals = 5 }
"#,
    );
    assert_pass(&r);
    let first_recv = r.trace.as_ref().unwrap().iter().find(|e| e.node == 1 && e.kind == "recv").unwrap();
    assert!(first_recv.sim_ns >= 1_500_000_000, "held until the unclog");
}

#[test]
fn pause_queues_inputs_until_resume() {
    let r = run_register(
        r#"
duration_ms = 3000
[cluster]
servers = 2
[[step]]
at_ms = 0
action = "pause"
node = 1
[[step]]
at_ms = 100
action = "client"
node = 0
op = { kind = "write", value = 5 }
[[step]]
at_ms = 1000
action = "expect"
check = { kind = "status", node = 1, is = "paused" }
[[step]]
at_ms = 1000
action = "resume"
node = 1
[[step]]
at_ms = 1100
action = "expect"
check = { kind = "value", node = 1, equals = 5 }
"#,
    );
    assert_pass(&r);
    let trace = r.trace.as_ref().unwrap();
    assert!(trace.iter().filter(|e| e.node == 1 && e.kind == "recv").all(|e| e.sim_ns >= 1_000_000_000));
}

fn ping(network: &str) -> RunReport {
    let scenario = ScenarioOf::<PingSystem>::parse(
        "ping.toml",
        &format!("duration_ms = 1000\n[cluster]\nservers = 2\n[system]\ninterval_us = 10000\n[network]\n{network}\n"),
    )
    .unwrap();
    run::<PingSystem>(&scenario, &RunOptions::default())
}

#[test]
fn duplication_delivers_twice_and_loss_delivers_nothing() {
    let plain = ping("latency_min_us = 100\nlatency_mean_us = 100");
    let doubled = ping("latency_min_us = 100\nlatency_mean_us = 100\nduplicate_ppm = 1000000");
    let lost = ping("latency_min_us = 100\nlatency_mean_us = 100\nloss_ppm = 1000000");
    assert!(plain.messages_delivered >= 190, "{}", plain.messages_delivered);
    // Both copies of all but the last few in-flight messages arrive.
    let twice = 2 * plain.messages_delivered;
    assert!((twice - 4..=twice).contains(&doubled.messages_delivered), "{} vs {}", doubled.messages_delivered, twice);
    assert_eq!(lost.messages_delivered, 0);
}

/// A probe that reads its node's clock on every timer tick.
#[derive(Debug)]
struct ClockProbe {
    readings_ms: Vec<(u64, u64)>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct NoOp {}

impl std::fmt::Display for NoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("nothing")
    }
}

struct ProbeTypes;

impl NodeTypes for ProbeTypes {
    type Msg = ();
    type ClientOp = NoOp;
    type Config = ();
    type Observation<'a> = ();
}

impl Node for ClockProbe {
    type Types = ProbeTypes;
    const FILE_KINDS: &'static [&'static str] = &[];

    fn start(env: &mut Env<'_, ProbeTypes>) -> Result<Self, String> {
        env.set_timer(100_000_000, 0);
        Ok(ClockProbe { readings_ms: vec![] })
    }
    fn on_message(&mut self, _: &mut Env<'_, ProbeTypes>, _: NodeIndex, _: ()) {}
    fn on_timer(&mut self, env: &mut Env<'_, ProbeTypes>, _: u64) {
        let (node, now) = (env.node(), env.now_ms());
        self.readings_ms.push((node.into(), now));
        env.trace("reading", &now);
        env.set_timer(100_000_000, 0);
    }
    fn on_fsync(&mut self, _: &mut Env<'_, ProbeTypes>, _: u64) {}
    fn on_client(&mut self, _: &mut Env<'_, ProbeTypes>, _: NoOp) {}
}

/// A harness and workload that check and draw nothing, for the probe nodes here.
struct NoChecks<N>(std::marker::PhantomData<N>);

impl<N> Default for NoChecks<N> {
    fn default() -> Self {
        NoChecks(std::marker::PhantomData)
    }
}

impl<N: Node<Types = ProbeTypes>> Harness for NoChecks<N> {
    type Node = N;
    type Expect = NoOp;
    fn observe(&mut self, _: NodeIndex, _: ()) {}
    fn check_safety(&mut self, _: &Cluster<'_, N>, _: Touched) -> Result<(), CheckFailure> {
        Ok(())
    }
    fn check_liveness(&self, _: &Cluster<'_, N>) -> Result<(), CheckFailure> {
        Ok(())
    }
    fn check_expect(&self, _: &Cluster<'_, N>, _: &NoOp) -> Result<(), CheckFailure> {
        Ok(())
    }
}

impl<N: Node<Types = ProbeTypes>> Workload for NoChecks<N> {
    type Node = N;
    fn client_op(_: &mut dyn rand::RngCore, _: &()) -> NoOp {
        NoOp {}
    }
}

struct ProbeSystem;

impl System for ProbeSystem {
    const NAME: &'static str = "clock-probe";
    type Node = ClockProbe;
    type Harness = NoChecks<ClockProbe>;
    type Workload = NoChecks<ClockProbe>;
}

/// A node that sets a timer of no delay every time one fires: time would stop.
#[derive(Debug)]
struct Spinner;

impl Node for Spinner {
    type Types = ProbeTypes;
    const FILE_KINDS: &'static [&'static str] = &[];

    fn start(env: &mut Env<'_, ProbeTypes>) -> Result<Self, String> {
        env.set_timer(1_000_000, 0);
        Ok(Spinner)
    }
    fn on_message(&mut self, _: &mut Env<'_, ProbeTypes>, _: NodeIndex, _: ()) {}
    fn on_timer(&mut self, env: &mut Env<'_, ProbeTypes>, _: u64) {
        env.set_timer(0, 0);
    }
    fn on_fsync(&mut self, _: &mut Env<'_, ProbeTypes>, _: u64) {}
    fn on_client(&mut self, _: &mut Env<'_, ProbeTypes>, _: NoOp) {}
}

struct SpinnerSystem;

impl System for SpinnerSystem {
    const NAME: &'static str = "spinner";
    type Node = Spinner;
    type Harness = NoChecks<Spinner>;
    type Workload = NoChecks<Spinner>;
}

#[test]
fn a_handler_that_stops_time_is_a_finding_not_a_hang() {
    let scenario =
        ScenarioOf::<SpinnerSystem>::parse("spin.toml", "duration_ms = 1000\n[cluster]\nservers = 1\n").unwrap();
    let r = run::<SpinnerSystem>(&scenario, &RunOptions::default());
    let v = r.violation.expect("the run fails");
    assert_eq!(v.invariant, "panic");
    assert!(v.message.contains("events at 1000000 ns"), "{}", v.message);
    assert_eq!(v.sim_ns, 1_000_000, "time stood at the first timer");
}

#[test]
fn skewed_clocks_read_differently_and_timers_follow_them() {
    // Node 1 runs 25% fast from +5 s, so its 100 ms timers fire every 80 ms of simulated time
    // and read 5100, 5200, ...; node 0's clock jumps a minute ahead at 500 ms.
    let scenario = ScenarioOf::<ProbeSystem>::parse(
        "probe.toml",
        r#"
duration_ms = 1000
[cluster]
servers = 2
[[clock]]
node = 1
offset_ms = 5000
drift_ppm = 250000
[[step]]
at_ms = 550
action = "clock-jump"
node = 0
by_ms = 60000
"#,
    )
    .unwrap();
    let r = run::<ProbeSystem>(&scenario, &RunOptions { keep_trace: true, keep_detail: true, ..Default::default() });
    let events = |node, kind: &str| -> Vec<(u64, String)> {
        r.trace
            .as_ref()
            .unwrap()
            .iter()
            .filter(|e| e.node == node && e.kind == kind)
            .map(|e| (e.sim_ns / 1_000_000, e.detail.clone()))
            .collect()
    };
    let fires0: Vec<u64> = events(0, "timer").iter().map(|e| e.0).collect();
    let fires1: Vec<u64> = events(1, "timer").iter().map(|e| e.0).collect();
    // The run's last instant is part of it: the timer due at 1000 ms fires before the end.
    assert_eq!(fires0, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    assert_eq!(fires1[..3], [80, 160, 240]);
    assert_eq!(fires1.len(), 12);
    // Wall clocks read Unix time from the epoch on.
    let since_epoch = |node| -> Vec<u64> {
        let epoch_ms = sim::clock::WALL_EPOCH_NS / 1_000_000;
        events(node, "reading").into_iter().map(|e| e.1.parse::<u64>().unwrap() - epoch_ms).collect()
    };
    assert_eq!(since_epoch(0)[..6], [100, 200, 300, 400, 500, 60600]);
    assert_eq!(since_epoch(1)[..3], [5100, 5200, 5300]);
}

/// A crash point may cut the power instead (`power_loss_percent`): what was written but not
/// synced is lost, which a process crash at the same moment keeps. With the register acking
/// before its fsync, only the power loss loses an acknowledged write, and the oracle says so.
#[test]
fn a_crash_point_that_loses_power_drops_what_was_not_synced() {
    let scenario = |power_loss_percent: u8| {
        format!(
            r#"
duration_ms = 1000
bugs = ["register-ack-before-fsync"]
[cluster]
servers = 2
[disk]
fsync_latency_us = 200000
[crash_points]
rate_ppm = 1000000
restart_after_ms = 50
until_ms = 1000
power_loss_percent = {power_loss_percent}
[[step]]
at_ms = 0
action = "isolate"
node = 0
[[step]]
at_ms = 100
action = "client"
node = 0
op = {{ kind = "write", value = 7 }}
"#
        )
    };
    let crashed = run_register(&scenario(0));
    assert_pass(&crashed);
    assert!(crashed
        .trace
        .as_ref()
        .unwrap()
        .iter()
        .any(|e| e.kind == "crash" && e.detail.contains("crash point on n0")));

    let powered_off = run_register(&scenario(100));
    let trace = powered_off.trace.as_ref().unwrap();
    let cut = trace.iter().find(|e| e.kind == "power-loss").expect("the crash point cuts the power");
    assert!(cut.detail.starts_with("crash point on n0"), "{}", cut.detail);
    assert!(!trace.iter().any(|e| e.kind == "crash"), "a power loss, not a process crash");
    let violation = powered_off.violation.as_ref().expect("the acknowledged write is lost");
    assert_eq!(violation.invariant, "register-durable-ack", "{}", violation.message);
}

/// Crash points: at rate 1,000,000 ppm the node crashes right after its acknowledgement and
/// restarts `restart_after_ms` later; at rate 0, or past `until_ms`, nothing happens.
#[test]
fn crash_point_crashes_after_the_marked_moment_and_restarts() {
    let scenario = |rate_ppm: u32, until_ms: u64| {
        format!(
            r#"
duration_ms = 1000
[cluster]
servers = 2
[crash_points]
rate_ppm = {rate_ppm}
restart_after_ms = 50
until_ms = {until_ms}
[[step]]
at_ms = 100
action = "client"
node = 0
op = {{ kind = "write", value = 7 }}
[[step]]
at_ms = 400
action = "expect"
check = {{ kind = "durable-records", node = 0, equals = 1 }}
"#
        )
    };
    let fired = run_register(&scenario(1_000_000, 1_000));
    assert_pass(&fired);
    let trace = fired.trace.as_ref().unwrap();
    let ack = trace.iter().find(|e| e.node == 0 && e.kind == "ack").expect("the write is acknowledged");
    let point = trace.iter().find(|e| e.node == 0 && e.kind == "crash-point").expect("the crash point fires");
    assert_eq!(point.sim_ns, ack.sim_ns, "the crash point is the acknowledgement's moment");
    let crash = trace.iter().find(|e| e.kind == "crash" && e.detail.contains("n0")).expect("n0 crashes");
    assert!(crash.index > point.index);
    let starts: Vec<u64> = trace.iter().filter(|e| e.node == 0 && e.kind == "start").map(|e| e.sim_ns).collect();
    assert_eq!(starts.len(), 2, "started, then restarted once: {starts:?}");
    // The restart is an event 50 ms after the crash, and the start happens at its instant.
    let restart_delay_ns = starts[1] - crash.sim_ns;
    assert_eq!(restart_delay_ns, 50_000_000, "restarted after {restart_delay_ns} ns, not 50 ms");

    for quiet in [run_register(&scenario(0, 1_000)), run_register(&scenario(1_000_000, 50))] {
        assert_pass(&quiet);
        assert_eq!(count(&quiet, 0, "crash-point"), 0);
        assert_eq!(count(&quiet, 0, "start"), 1);
    }
}
