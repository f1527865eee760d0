//! The `mixed` fuzz profile (issue 18 item 1): a seed expands into a default-style run with one
//! server, chosen per seed, running without JetStream; no other profile draws one.

use std::collections::BTreeSet;

type Meta = metasim::sut::MetaSystem;

fn profile(name: &str) -> &'static sim::swarm::Profile {
    sim::swarm::profile(name).unwrap_or_else(|| panic!("the {name} profile is listed"))
}

#[test]
fn a_mixed_seed_runs_one_server_without_jetstream_chosen_per_seed() {
    let mixed = profile("mixed");
    let mut chosen = BTreeSet::new();
    for seed in 0..16 {
        let scenario = sim::swarm::generate::<Meta>(seed, mixed);
        assert_eq!((scenario.servers, scenario.duration_ms), (5, 60_000));
        let disabled = &scenario.system.jetstream_disabled;
        assert_eq!(disabled.len(), 1, "seed {seed}: {disabled:?}");
        assert!(disabled[0] < scenario.servers);
        chosen.insert(disabled[0]);
    }
    assert!(chosen.len() >= 3, "the server without JetStream varies with the seed: {chosen:?}");
}

#[test]
fn no_other_profile_runs_a_server_without_jetstream() {
    for p in sim::swarm::PROFILES.iter().filter(|p| p.name != "mixed") {
        assert_eq!(p.limited, 0, "{}", p.name);
        for seed in 0..4 {
            let scenario = sim::swarm::generate::<Meta>(seed, p);
            assert!(scenario.system.jetstream_disabled.is_empty(), "{} seed {seed}", p.name);
        }
    }
}
