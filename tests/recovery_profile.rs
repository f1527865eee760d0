//! The `recovery` fuzz profile (issue 20): disk damage found by a restart of the damaged server,
//! and a workload weighted towards data one server holds alone (R1 streams and publishes to
//! them). Other profiles draw neither, but `cutoff` (tests/cutoff_profile.rs).

use metasim::server::wire::MetaOp;
use sim::Action;

type Meta = metasim::sut::MetaSystem;

fn profile(name: &str) -> &'static sim::swarm::Profile {
    sim::swarm::profile(name).unwrap_or_else(|| panic!("the {name} profile is listed"))
}

/// Of the client operations of `seeds` seeds of `profile`: how many, and how many are on
/// single-copy data (R1 creates and publishes).
fn single_copy_share(profile: &sim::swarm::Profile, seeds: std::ops::Range<u64>) -> (usize, usize) {
    let (mut all, mut single) = (0, 0);
    for seed in seeds {
        for step in sim::swarm::generate::<Meta>(seed, profile).steps {
            if let Action::Client { op, .. } = step.action {
                all += 1;
                if matches!(op, MetaOp::Publish { .. } | MetaOp::CreateStream { replicas: 1, .. }) {
                    single += 1;
                }
            }
        }
    }
    (all, single)
}

#[test]
fn every_damage_is_found_by_a_restart_of_its_server() {
    let recovery = profile("recovery");
    assert!(recovery.restart_damaged);
    let mut damages = 0;
    for seed in 0..24 {
        let scenario = sim::swarm::generate::<Meta>(seed, recovery);
        for step in &scenario.steps {
            let node = match step.action {
                Action::Corrupt { node, .. } | Action::NoSpace { node, .. } | Action::LostFsync { node, .. } => node,
                _ => continue,
            };
            damages += 1;
            let found = scenario.steps.iter().any(|s| {
                matches!(s.action, Action::Restart { node: n } if n == node)
                    && [100, 1_000, 5_000].iter().any(|after| s.at_ms == step.at_ms + after)
            });
            // A restart drawn past the heal is not scheduled.
            let near_heal = step.at_ms + 5_000 >= recovery.heal_at_ms;
            assert!(found || near_heal, "seed {seed}: damage at {} ms on n{node} and no restart after it", step.at_ms);
        }
    }
    assert!(damages > 24, "the profile damages disks in most seeds: {damages} damages in 24 seeds");
}

#[test]
fn most_recovery_operations_are_on_single_copy_data_and_few_elsewhere() {
    let (all, single) = single_copy_share(profile("recovery"), 0..24);
    let percent = single * 100 / all;
    // 60 % drawn as such, plus the usual workload's own share of the other 40 %.
    assert!((55..=80).contains(&percent), "recovery: {single} of {all} client operations ({percent} %)");
    let (all, single) = single_copy_share(profile("default"), 0..24);
    let percent = single * 100 / all;
    assert!(percent < 25, "default: {single} of {all} client operations ({percent} %)");
}

#[test]
fn only_the_recovery_and_cutoff_profiles_draw_single_copy_operations_or_restarts_after_damage() {
    for p in sim::swarm::PROFILES.iter().filter(|p| !["recovery", "cutoff"].contains(&p.name)) {
        assert_eq!((p.single_copy_percent, p.restart_damaged), (0, false), "{}", p.name);
    }
}
