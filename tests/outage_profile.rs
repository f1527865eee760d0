//! The `outage` fuzz profile (issue 20): two servers go down together; while they are down the
//! servers still running are asked to remove the first of them and two running servers; the
//! servers that stayed up crash just before the two come back, so those restart with a stale
//! view of the members and hear from everyone, removed servers too, before any leader. No
//! other profile draws an outage.

use metasim::server::wire::MetaOp;
use sim::swarm::{Outage, Profile};
use sim::{Action, NodeIndex, RunOptions};

type Meta = metasim::sut::MetaSystem;

fn outage() -> &'static Profile {
    sim::swarm::profile("outage").expect("the outage profile is listed")
}

/// The knobs of `profile`'s outage.
fn knobs(profile: &Profile) -> Outage {
    profile.outage.expect("the outage profile draws an outage")
}

/// When each server crashes, in the order of the steps.
fn crashes<C, E>(steps: &[sim::Step<C, E>]) -> Vec<(u64, NodeIndex)> {
    steps
        .iter()
        .filter_map(|s| match s.action {
            Action::Crash { node } => Some((s.at_ms, node)),
            _ => None,
        })
        .collect()
}

#[test]
fn removes_come_while_two_servers_are_down_the_first_of_them_then_running_servers() {
    let profile = outage();
    let o = knobs(profile);
    assert_eq!((o.down, o.removes), (2, 3));
    for seed in 0..40 {
        let scenario = sim::swarm::generate::<Meta>(seed, profile);
        let steps = &scenario.steps;
        // The outage's crashes are the run's first: the profile draws no others.
        let crashes = crashes(steps);
        let down: Vec<NodeIndex> = crashes.iter().take(2).map(|&(_, n)| n).collect();
        let went_down = crashes[0].0;
        assert!(crashes[1].0 - went_down <= 300, "seed {seed}: {crashes:?}");
        assert_ne!(down[0], down[1], "seed {seed}");
        let removes: Vec<(u64, Option<NodeIndex>, NodeIndex)> = steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Client { node, op: MetaOp::RemovePeer { peer: Some(peer), name: None } } => {
                    Some((s.at_ms, *node, *peer))
                }
                Action::Client { op: MetaOp::RemovePeer { .. } | MetaOp::StreamPeerRemove { .. }, .. } => {
                    panic!("seed {seed}: a peer remove outside the outage: {}", s.action)
                }
                _ => None,
            })
            .collect();
        assert_eq!(removes.len(), 3, "seed {seed}: {removes:?}");
        assert_eq!(removes[0].2, down[0], "seed {seed}: the first remove is of the server that went down first");
        let mut targets: Vec<NodeIndex> = removes.iter().map(|r| r.2).collect();
        for &(at_ms, _, target) in &removes[1..] {
            assert!(!down.contains(&target), "seed {seed}: n{target} is down at {at_ms} ms");
        }
        targets.sort_unstable();
        targets.dedup();
        assert_eq!(targets.len(), 3, "seed {seed}: three servers removed");
        for (i, &(at_ms, via, _)) in removes.iter().enumerate() {
            assert!(!down.contains(&via.expect("sent to a server")), "seed {seed}: sent to a down server");
            // The first comes a gap after the second crash and its stagger (0, 50 or 300 ms).
            let gap = if i == 0 { at_ms - crashes[1].0 } else { at_ms - removes[i - 1].0 };
            let staggers: &[u64] = if i == 0 { &[0, 50, 300] } else { &[0] };
            assert!(staggers.iter().any(|s| gap == o.remove_gap_ms + s), "seed {seed}: remove {i} {gap} ms after");
        }
        // The down servers stay down through the removes and come back after the last.
        let last_remove = removes[2].0;
        for &node in &down {
            let back = steps
                .iter()
                .find(|s| s.at_ms > went_down && matches!(s.action, Action::Restart { node: n } if n == node))
                .unwrap_or_else(|| panic!("seed {seed}: n{node} never comes back"));
            assert!(back.at_ms >= last_remove + o.back_after_ms, "seed {seed}: n{node} back at {} ms", back.at_ms);
            assert!(
                back.at_ms <= last_remove + o.back_after_ms + 1_000,
                "seed {seed}: n{node} back at {} ms",
                back.at_ms
            );
            assert!(back.at_ms < profile.heal_at_ms, "seed {seed}: after the heal");
        }
        assert!(scenario.crash_points.is_none(), "seed {seed}: no crash points");
    }
}

#[test]
fn the_servers_that_stayed_up_crash_just_before_the_down_servers_come_back() {
    let profile = outage();
    let o = knobs(profile);
    for seed in 0..40 {
        let steps = sim::swarm::generate::<Meta>(seed, profile).steps;
        let crashes = crashes(&steps);
        assert_eq!(crashes.len(), 5, "seed {seed}: every server goes down once: {crashes:?}");
        let down: Vec<NodeIndex> = crashes[..2].iter().map(|&(_, n)| n).collect();
        let first_back = steps
            .iter()
            .filter(|s| matches!(s.action, Action::Restart { node } if down.contains(&node)))
            .map(|s| s.at_ms)
            .min()
            .expect("the down servers come back");
        for &(at_ms, node) in &crashes[2..] {
            assert_eq!(at_ms, first_back - o.others_down_before_ms, "seed {seed}: n{node} crashed at {at_ms} ms");
            let back = steps
                .iter()
                .find(|s| s.at_ms > at_ms && matches!(s.action, Action::Restart { node: n } if n == node))
                .unwrap_or_else(|| panic!("seed {seed}: n{node} never comes back"));
            assert!([500, 1_500, 3_000].contains(&(back.at_ms - at_ms)), "seed {seed}: n{node} back at {}", back.at_ms);
        }
    }
}

/// What the outage is for: with `boot-size-after-restart`, a restarted server's cold-boot check
/// counts the removed servers and shrinks its quorum, and a run fails with
/// `raft-leader-completeness`, in several of the first seeds.
#[test]
fn the_outage_finds_the_cold_boot_switch_in_a_few_seeds() {
    let bugs = vec!["boot-size-after-restart".to_string()];
    let options = RunOptions { bugs, ..Default::default() };
    let found: Vec<u64> = (0..40)
        .filter(|&seed| {
            let report = sim::run::<Meta>(&sim::swarm::generate::<Meta>(seed, outage()), &options);
            report.violation.is_some_and(|v| v.invariant == "raft-leader-completeness")
        })
        .collect();
    assert!(found.len() >= 3, "seeds of 0..40 that find the switch: {found:?}");
}

#[test]
fn only_the_outage_profile_draws_an_outage() {
    for p in sim::swarm::PROFILES.iter().filter(|p| p.name != "outage") {
        assert!(p.outage.is_none(), "{}", p.name);
    }
}
