//! The `cutoff` fuzz profile (issue 20): every restart that finds disk damage brings its server
//! back into a partition with one other server, healed 35 or 45 s later (or at the heal), so
//! the work a server owes after its start (the orphan check, 30 s on) meets a stale view.
//! Every seed lies, and damage aims at logs and state files (a rolled-back meta log is what
//! leaves a server behind the streams it holds). No other profile draws any of these.

use sim::disk::Corruption;
use sim::swarm::{Profile, CUT_OFF_MS};
use sim::Action;

type Meta = metasim::sut::MetaSystem;

fn cutoff() -> &'static Profile {
    sim::swarm::profile("cutoff").expect("the cutoff profile is listed")
}

#[test]
fn every_restart_after_damage_comes_back_cut_off_with_one_other_server() {
    let profile = cutoff();
    assert!(profile.restart_damaged && profile.cut_off_restarted);
    let mut cut_offs = 0;
    for seed in 0..40 {
        let steps = sim::swarm::generate::<Meta>(seed, profile).steps;
        for (i, step) in steps.iter().enumerate() {
            let node = match step.action {
                Action::Corrupt { node, .. } | Action::NoSpace { node, .. } | Action::LostFsync { node, .. } => node,
                _ => continue,
            };
            let Some(restart) = steps.iter().skip(i).find(|s| {
                matches!(s.action, Action::Restart { node: n } if n == node)
                    && [100, 1_000, 5_000].iter().any(|after| s.at_ms == step.at_ms + after)
            }) else {
                assert!(step.at_ms + 5_000 >= profile.heal_at_ms, "seed {seed}: damage at {} ms not found", step.at_ms);
                continue;
            };
            let partition = steps.iter().find(|s| {
                s.at_ms == restart.at_ms
                    && matches!(&s.action, Action::Partition { groups }
                        if groups.len() == 2 && groups[0].len() == 2 && groups[0][0] == node
                            && groups[1].len() == 3 && !groups[1].contains(&node))
            });
            assert!(partition.is_some(), "seed {seed}: n{node} restarted at {} ms and was not cut off", restart.at_ms);
            let healed = steps.iter().any(|s| {
                matches!(s.action, Action::HealNetwork {})
                    && CUT_OFF_MS.iter().any(|ms| s.at_ms == (restart.at_ms + ms).min(profile.heal_at_ms))
            });
            assert!(healed, "seed {seed}: n{node} cut off at {} ms and never healed", restart.at_ms);
            cut_offs += 1;
        }
    }
    assert!(cut_offs >= 20, "the profile cuts restarted servers off in most seeds: {cut_offs} in 40 seeds");
}

#[test]
fn only_the_cutoff_profile_cuts_restarted_servers_off() {
    for p in sim::swarm::PROFILES.iter().filter(|p| p.name != "cutoff") {
        assert!(!p.cut_off_restarted, "{}", p.name);
    }
}

/// Seeds of `profile` (of 0..80) whose damage includes a lie (truncation, a stale copy), and
/// damages in all, each checked to hit a kind in `kinds`.
fn lying_seeds(profile: &Profile, kinds: &[&str]) -> (usize, usize) {
    let (mut lying, mut damages) = (0, 0);
    for seed in 0..80 {
        let mut lies = false;
        for step in sim::swarm::generate::<Meta>(seed, profile).steps {
            let (kind, lie) = match step.action {
                Action::Corrupt { kind, corruption, .. } => (kind, corruption != Corruption::BitFlip),
                Action::NoSpace { kind, .. } | Action::LostFsync { kind, .. } => (kind, false),
                _ => continue,
            };
            damages += 1;
            lies |= lie;
            assert!(kinds.contains(&kind.as_str()), "{} seed {seed}: damage to {kind}", profile.name);
        }
        lying += usize::from(lies);
    }
    (lying, damages)
}

#[test]
fn damage_aims_at_logs_and_state_and_every_seed_may_lie() {
    let profile = cutoff();
    let (lying, damages) = lying_seeds(profile, &["log", "state"]);
    assert!(damages >= 40, "{damages} damages in 80 seeds");
    // The same profile with lies in a third of the seeds, as `disk` draws them.
    let third = Profile { lies_always: false, damage_kinds: &[], ..*profile };
    let (lying_third, _) = lying_seeds(&third, &["log", "state", "snapshot", "peers", "assets"]);
    assert!(lying >= 2 * lying_third, "{lying} of 80 seeds lie, against {lying_third} with lies in a third");
}

#[test]
fn only_the_cutoff_profile_lies_always_or_aims_its_damage() {
    for p in sim::swarm::PROFILES.iter().filter(|p| p.name != "cutoff") {
        assert!(!p.lies_always && p.damage_kinds.is_empty(), "{}", p.name);
    }
}
