//! The `shutdown` step (issue 18 item 5): a graceful stop hands over what the server leads
//! before the process stops, as NATS's `Server.Shutdown` does; a crash does not.

mod common;

use common::metasim;
use metasim::scenario::{meta, MetaExpect, MetaOp, MetaScenario, RunVerdict, Verdict};
use sim::NodeIndex;

/// Server 2 is made meta leader, takes three proposals, and is stopped at 18 s by `stop`;
/// 300 ms later, far below the 4 s minimum election timeout, exactly one server leads.
fn stop_the_leader(stop: impl FnOnce(MetaScenario, u64, NodeIndex) -> MetaScenario) -> MetaScenario {
    let scenario = meta("a graceful shutdown hands leadership over")
        .servers(3)
        .duration_ms(40_000)
        .liveness(true)
        .expect(Verdict::Pass)
        .client(15_000, 0, MetaOp::Stepdown { preferred: Some(2) })
        .check(17_000, MetaExpect::Leader { node: 2, is: true })
        .client(17_000, 0, MetaOp::Propose { count: 3 });
    stop(scenario, 18_000, 2)
        .check(18_300, MetaExpect::Leaderless { node: 0, is: false })
        .check(18_300, MetaExpect::Leaderless { node: 1, is: false })
        .check(18_300, MetaExpect::OneLeader {})
        .restart(20_000, 2)
        .heal_all(25_000)
        .check(35_000, MetaExpect::OneLeader {})
}

#[test]
fn a_graceful_shutdown_hands_leadership_over_where_a_crash_leaves_none() {
    let shutdown = stop_the_leader(|s, at, node| s.shutdown(at, node));
    let outcome = shutdown.run().expect("valid");
    assert_eq!(outcome.verdict, RunVerdict::Pass, "{:?}", outcome.failure);

    // The file in scenarios/ is this scenario.
    let file = metasim(&["run", "scenarios/meta/graceful-shutdown-hands-over.toml"]);
    assert_eq!(file.code, 0, "{}", file.stdout);
    assert_eq!(file.line("trace-hash: "), Some(outcome.trace_hash_hex().as_str()));

    let crash = stop_the_leader(|s, at, node| s.crash(at, node)).run().expect("valid");
    assert_eq!(crash.verdict, RunVerdict::Fail, "a crash leaves no leader for an election timeout");
    let failure = crash.failure.expect("a violation");
    assert_eq!(failure.invariant, "expect:meta");
    assert_eq!(failure.sim_ns / 1_000_000, 18_300, "{failure:?}");
}

#[test]
fn a_paused_server_cannot_shut_down_gracefully_and_is_killed() {
    // Paused from 17.5 s, server 2 cannot run its shutdown: it is killed as a crash kills it.
    let outcome = stop_the_leader(|s, at, node| s.pause(at - 500, node).shutdown(at, node)).run().expect("valid");
    assert_eq!(outcome.verdict, RunVerdict::Fail);
    assert_eq!(outcome.failure.expect("a violation").sim_ns / 1_000_000, 18_300);
}

#[test]
fn shutting_down_a_stopped_server_changes_nothing() {
    // Crashed at 17.9 s, server 2 has nothing to shut down; the run goes on and it restarts.
    let crashed = |s: MetaScenario, at, node| s.crash(at - 100, node);
    let both = stop_the_leader(|s, at, node| crashed(s, at, node).shutdown(at, node)).run().expect("valid");
    let crash_only = stop_the_leader(crashed).run().expect("valid");
    assert_eq!(both.verdict, RunVerdict::Fail);
    assert_eq!(both.failure.as_ref().map(|f| f.sim_ns), crash_only.failure.as_ref().map(|f| f.sim_ns));
    let report = metasim::scenario::meta("restart after").servers(3).duration_ms(20_000);
    let after = report.crash(5_000, 1).shutdown(6_000, 1).restart(7_000, 1).check(19_000, MetaExpect::OneLeader {});
    assert_eq!(after.run().expect("valid").verdict, RunVerdict::Pass);
}
