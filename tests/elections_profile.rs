//! The `elections` fuzz profile (issue 20): leaders changing under load on slow, lossy links,
//! with raft at its fastest pace. Its seeds draw from the profile's own lists; a profile
//! without a pace still draws the usual ones (NRG's default timers in some seeds).

use std::collections::BTreeSet;

use sim::Action;

type Meta = metasim::sut::MetaSystem;

fn profile(name: &str) -> &'static sim::swarm::Profile {
    sim::swarm::profile(name).unwrap_or_else(|| panic!("the {name} profile is listed"))
}

#[test]
fn an_elections_seed_draws_its_pace_and_the_fastest_raft() {
    let elections = profile("elections");
    let (mut batches, mut latencies, mut gaps) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for seed in 0..24 {
        let scenario = sim::swarm::generate::<Meta>(seed, elections);
        let system = &scenario.system;
        assert!([100, 200].contains(&system.heartbeat_ms), "seed {seed}: heartbeat {}", system.heartbeat_ms);
        assert_eq!(system.election_timeout_ms_min, system.heartbeat_ms * 4, "seed {seed}");
        assert_eq!(system.tick_ms, system.heartbeat_ms / 10, "seed {seed}");
        assert!([1, 4].contains(&system.max_entries_per_append), "seed {seed}");
        batches.insert(system.max_entries_per_append);
        assert!([40_000, 80_000].contains(&scenario.network.latency_mean_us), "seed {seed}");
        assert!([20_000, 50_000].contains(&scenario.network.loss_ppm), "seed {seed}");
        latencies.insert(scenario.network.latency_mean_us);
        // Leaders change by elections: no crash, power or disk fault, and no crash points.
        assert!(scenario.crash_points.is_none(), "seed {seed}");
        for step in &scenario.steps {
            assert!(
                !matches!(
                    step.action,
                    Action::Crash { .. } | Action::PowerLoss { .. } | Action::Corrupt { .. } | Action::NoSpace { .. }
                ),
                "seed {seed}: {}",
                step.action
            );
        }
        let clients: Vec<u64> =
            scenario.steps.iter().filter(|s| matches!(s.action, Action::Client { .. })).map(|s| s.at_ms).collect();
        // A client operation every 50 or 100 ms on average until the quiet tail at 40 s.
        gaps.insert(clients.len() > 500);
        assert!(clients.len() > 250, "seed {seed}: {} client steps", clients.len());
    }
    assert_eq!(batches, BTreeSet::from([1, 4]), "both batch sizes are drawn");
    assert_eq!(latencies, BTreeSet::from([40_000, 80_000]), "both latencies are drawn");
    assert_eq!(gaps, BTreeSet::from([false, true]), "both client paces are drawn");
}

#[test]
fn a_profile_without_a_pace_draws_the_usual_timers() {
    let default = profile("default");
    assert!(default.pace.is_none());
    let heartbeats: BTreeSet<u64> =
        (0..24).map(|seed| sim::swarm::generate::<Meta>(seed, default).system.heartbeat_ms).collect();
    assert!(heartbeats.contains(&1_000), "NRG's default timers in some seeds: {heartbeats:?}");
    let batches: BTreeSet<usize> =
        (0..24).map(|seed| sim::swarm::generate::<Meta>(seed, default).system.max_entries_per_append).collect();
    assert!(batches.contains(&64), "{batches:?}");
}
