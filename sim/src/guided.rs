//! Guided fuzzing's two halves that know nothing of the system under test: when a run's
//! coverage is new ([`Novelty`], AFL's hit-count buckets), and how a new run is derived from
//! one that reached something ([`mutate`]).
//!
//! A derived run is an ordinary scenario: it replays from its file like any other. Mutations
//! keep what made the parent valid: faults stay before the final `heal-all` (the liveness phase
//! stays quiet), disk faults are never added (they are aimed at a minority of servers, and a
//! spliced one could damage a majority), and steps stay in time order.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::net::NodeIndex;
use crate::scenario::{Action, Scenario, Step, STEPS_MAX};

/// The hit-count bucket of a probe hit `hits` times in one run (AFL's): 1, 2, 3, 4-7, 8-15,
/// 16-31, 32-127, 128 and more.
pub fn bucket(hits: u64) -> u8 {
    match hits {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4..=7 => 4,
        8..=15 => 5,
        16..=31 => 6,
        32..=127 => 7,
        _ => 8,
    }
}

/// Which (probe, bucket) pairs a campaign has seen, and how many runs reached each probe.
#[derive(Clone, Debug, Default)]
pub struct Novelty {
    seen: BTreeMap<String, Seen>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    buckets: u16,
    runs: u64,
}

impl Novelty {
    /// Record one run's probes (name and hits); the probes it reached that no earlier run had
    /// (a new probe, or a known one hit a new number of times, by bucket).
    pub fn record<'a>(&mut self, probes: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<String> {
        let mut new = Vec::new();
        for (name, hits) in probes {
            let bit = 1u16 << bucket(hits);
            let seen = self.seen.entry(name.to_string()).or_default();
            seen.runs += 1;
            if seen.buckets & bit == 0 {
                seen.buckets |= bit;
                new.push(name.to_string());
            }
        }
        new
    }

    /// Distinct probes seen.
    pub fn probes(&self) -> usize {
        self.seen.len()
    }

    /// How many recorded runs reached `probe` (0: none, or never recorded).
    pub fn runs_reaching(&self, probe: &str) -> u64 {
        self.seen.get(probe).map_or(0, |s| s.runs)
    }

    /// A run's weight as a parent, from the rarest probe it reached (FairFuzz's rare branches):
    /// a probe reached by one run in a thousand makes its runs worth a thousand times one
    /// reached by every run. Runs at a rare probe are near a narrow window; deriving from them
    /// again and again is how a campaign gets through it.
    pub fn rarity_weight<'a>(&self, probes: impl IntoIterator<Item = &'a str>) -> u64 {
        probes.into_iter().map(|p| RARITY_SCALE / self.runs_reaching(p).max(1)).max().unwrap_or(1).max(1)
    }

    /// Of `probes` (name, first simulated ms), the times of the `n` reached by fewest runs.
    pub fn rarest_moments(&self, probes: &[(String, u64)], n: usize) -> Vec<u64> {
        let mut by_rarity: Vec<(u64, u64)> = probes.iter().map(|(p, at)| (self.runs_reaching(p), *at)).collect();
        by_rarity.sort_unstable();
        by_rarity.into_iter().take(n).map(|(_, at)| at).collect()
    }
}

/// The weight of a probe every run reaches is `RARITY_SCALE / runs`.
const RARITY_SCALE: u64 = 1 << 20;

/// Draw an index with probability proportional to `weights` (none empty, not all zero).
pub fn pick_weighted(weights: &[u64], rng: &mut ChaCha8Rng) -> usize {
    let total: u64 = weights.iter().sum();
    assert!(total > 0, "a weighted pick needs some weight");
    let mut at = rng.gen_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if at < w {
            return i;
        }
        at -= w;
    }
    unreachable!("the draw is below the total")
}

/// Seeds a mutation draws stay below this: TOML integers are signed, and a file must hold them.
pub const SEED_LIMIT: u64 = 1 << 48;

/// How far a shifted step may move, at most.
pub const SHIFT_MS_MAX: u64 = 5_000;

/// One change to a scenario, in words for the campaign's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Keep everything before `at_ms`, then a fresh random stream.
    Branch { at_ms: u64, seed: u64 },
    /// A new seed for the whole run's randomness, the timeline kept.
    Reseed { seed: u64 },
    /// Step `step` moved to `to_ms`.
    Shift { step: usize, to_ms: u64 },
    /// Step `step` dropped.
    Drop { step: usize },
    /// A step of another run copied in.
    Splice { action: &'static str, at_ms: u64 },
    /// One of the run's knobs turned to where narrow windows open ([`Knob`]).
    Knob { knob: Knob },
    /// Server `node` cut off with one other server from `at_ms` for `for_ms` ([`cut_off`]).
    CutOff { node: NodeIndex, at_ms: u64, for_ms: u64 },
}

/// The knobs a mutation turns, each to the setting a focused profile found to open a narrow
/// window: a campaign on a broad profile can then reach it from the runs it already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// The system's fastest timers and smallest batches ([`Workload::hasten_config`](crate::Workload::hasten_config)):
    /// leaders change often, followers acknowledge a few entries at a time.
    Hasten,
    /// Slow, lossy links ([`swarm::SLOW_LATENCY_MEAN_US`](crate::swarm::SLOW_LATENCY_MEAN_US),
    /// [`swarm::LOSSY_LOSS_PPM`](crate::swarm::LOSSY_LOSS_PPM)): replication lags and elections race.
    SlowLinks,
    /// Both at once, as `elections` draws them.
    Both,
}

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mutation::Branch { at_ms, seed } => write!(f, "branch at {at_ms} ms with seed {seed}"),
            Mutation::Reseed { seed } => write!(f, "reseed {seed}"),
            Mutation::Shift { step, to_ms } => write!(f, "step {step} to {to_ms} ms"),
            Mutation::Drop { step } => write!(f, "drop step {step}"),
            Mutation::Splice { action, at_ms } => write!(f, "splice {action} at {at_ms} ms"),
            Mutation::Knob { knob: Knob::Hasten } => write!(f, "knob hasten"),
            Mutation::Knob { knob: Knob::SlowLinks } => write!(f, "knob slow-links"),
            Mutation::Knob { knob: Knob::Both } => write!(f, "knob hasten+slow-links"),
            Mutation::CutOff { node, at_ms, for_ms } => write!(f, "cut off n{node} at {at_ms} ms for {for_ms} ms"),
        }
    }
}

/// Steps a mutation may move or drop: faults and client operations, not the final heal, the
/// expectations or an earlier branch point.
fn movable<C, E>(action: &Action<C, E>) -> bool {
    !matches!(action, Action::HealAll {} | Action::Expect { .. } | Action::Reseed { .. })
}

/// Faults that may be copied from another run: network, process and clock faults, and client
/// operations. Disk faults stay where the swarm aimed them (a minority of servers).
fn spliceable<C, E>(action: &Action<C, E>) -> bool {
    movable(action)
        && !matches!(
            action,
            Action::Corrupt { .. } | Action::LostFsync { .. } | Action::NoSpace { .. } | Action::SlowDisk { .. }
        )
}

/// The time faults must end by: the first `heal-all`, else the end of the run.
fn heal_at_ms<C, E, K>(scenario: &Scenario<C, E, K>) -> u64 {
    scenario.steps.iter().find(|s| matches!(s.action, Action::HealAll {})).map_or(scenario.duration_ms, |s| s.at_ms)
}

/// Whether a step must come before the heal.
fn is_fault<C, E>(action: &Action<C, E>) -> bool {
    movable(action) && !matches!(action, Action::Client { .. })
}

/// How often [`mutate`] draws each kind of mutation, in percent (they add up to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub branch: u32,
    pub reseed: u32,
    pub shift: u32,
    pub drop: u32,
    pub knob: u32,
    pub splice: u32,
}

/// The kinds of mutation, in the order a [`Mix`] lays them out on its hundred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Branch,
    Reseed,
    Shift,
    Drop,
    Knob,
    Splice,
}

impl Mix {
    /// Knobs in 30 % of derived runs: `raft-commit-old-term` on `default` took a median of
    /// 394 runs over 24 campaigns this way, against 636 with a fifth (README, issue 20).
    pub const KNOBS: Mix = Mix { branch: 35, reseed: 5, shift: 15, drop: 5, knob: 30, splice: 10 };
    /// With cut-off windows a fifth stay knobs: a window's state is one server's, which a
    /// reseeded or trimmed parent reaches as often as a hastened one, and 30 % knobs took
    /// `orphan-check-before-sync` on `disk` from a median of 471 runs to 614.
    pub const WITH_WINDOWS: Mix = Mix { branch: 35, reseed: 10, shift: 15, drop: 10, knob: 20, splice: 10 };

    /// The mix for a campaign with or without windows.
    pub fn for_campaign(windows: bool) -> Mix {
        if windows {
            Mix::WITH_WINDOWS
        } else {
            Mix::KNOBS
        }
    }

    /// The kind of mutation a draw in `0..100` lands on.
    fn kind(&self, draw: u32) -> Kind {
        let parts = [
            (self.branch, Kind::Branch),
            (self.reseed, Kind::Reseed),
            (self.shift, Kind::Shift),
            (self.drop, Kind::Drop),
            (self.knob, Kind::Knob),
            (self.splice, Kind::Splice),
        ];
        assert_eq!(parts.iter().map(|(p, _)| p).sum::<u32>(), 100, "a mix adds up to 100: {self:?}");
        assert!(draw < 100, "a draw is a percent: {draw}");
        let mut at = draw;
        for (part, kind) in parts {
            if at < part {
                return kind;
            }
            at -= part;
        }
        unreachable!("the parts add up to 100")
    }
}

/// Derive a run from `parent`: one mutation drawn from `rng` as `mix` says, using `donor`
/// (another run of the same shape) for splices, `moments` (times at which the parent first
/// reached something new) for branch points and `hasten` (the system's [`Knob::Hasten`]) for
/// that knob. `None` when the drawn mutation has nothing to act on or changes nothing.
pub fn mutate<C: Clone + PartialEq, E: Clone + PartialEq, K: Clone + PartialEq>(
    parent: &Scenario<C, E, K>,
    donor: &Scenario<C, E, K>,
    moments: &[u64],
    hasten: &dyn Fn(&mut ChaCha8Rng, &mut K),
    mix: &Mix,
    rng: &mut ChaCha8Rng,
) -> Option<(Scenario<C, E, K>, Mutation)> {
    let mut child = parent.clone();
    let heal_ms = heal_at_ms(parent);
    let movable_steps: Vec<usize> = (0..child.steps.len()).filter(|&i| movable(&child.steps[i].action)).collect();
    let mutation = match mix.kind(rng.gen_range(0..100)) {
        Kind::Branch => {
            // Branch: at a moment the parent reached something new (a little before or
            // after it), or anywhere in the run.
            let at_ms = match moments {
                [] => rng.gen_range(1..child.duration_ms),
                _ => {
                    let moment = moments[rng.gen_range(0..moments.len())];
                    let jitter = rng.gen_range(0..=2_000);
                    (moment + jitter).saturating_sub(1_000).clamp(1, child.duration_ms - 1)
                }
            };
            let seed = rng.gen_range(0..SEED_LIMIT);
            child.steps.retain(|s| !matches!(s.action, Action::Reseed { .. }) || s.at_ms < at_ms);
            child.steps.push(Step { at_ms, action: Action::Reseed { seed } });
            Mutation::Branch { at_ms, seed }
        }
        Kind::Reseed => {
            let seed = rng.gen_range(0..SEED_LIMIT);
            child.seed = seed;
            Mutation::Reseed { seed }
        }
        Kind::Shift => {
            let &step = pick(&movable_steps, rng)?;
            let at = child.steps[step].at_ms;
            let limit =
                if is_fault(&child.steps[step].action) { heal_ms.saturating_sub(1) } else { child.duration_ms - 1 };
            let to_ms = (at + rng.gen_range(0..=2 * SHIFT_MS_MAX)).saturating_sub(SHIFT_MS_MAX).clamp(1, limit.max(1));
            child.steps[step].at_ms = to_ms;
            Mutation::Shift { step, to_ms }
        }
        Kind::Drop => {
            let &step = pick(&movable_steps, rng)?;
            child.steps.remove(step);
            Mutation::Drop { step }
        }
        Kind::Knob => {
            let knob = [Knob::Hasten, Knob::SlowLinks, Knob::Both][rng.gen_range(0..3)];
            if knob != Knob::SlowLinks {
                hasten(rng, &mut child.system);
            }
            if knob != Knob::Hasten {
                child.network.latency_mean_us = *pick(crate::swarm::SLOW_LATENCY_MEAN_US, rng)?;
                child.network.loss_ppm = *pick(crate::swarm::LOSSY_LOSS_PPM, rng)?;
            }
            // Already there: not a new run.
            if child == *parent {
                return None;
            }
            Mutation::Knob { knob }
        }
        Kind::Splice => {
            if child.steps.len() >= STEPS_MAX || donor.servers != child.servers {
                return None;
            }
            let candidates: Vec<&Step<C, E>> = donor.steps.iter().filter(|s| spliceable(&s.action)).collect();
            let step = *pick(&candidates, rng)?;
            let limit = if is_fault(&step.action) { heal_ms.saturating_sub(1) } else { child.duration_ms - 1 };
            if step.at_ms > limit {
                return None;
            }
            child.steps.push(step.clone());
            Mutation::Splice { action: step.action.name(), at_ms: step.at_ms }
        }
    };
    // Stable: steps at one time keep their order.
    child.steps.sort_by_key(|s| s.at_ms);
    Some((child, mutation))
}

/// Derive a run from `parent` that cuts server `node` off, with one other server drawn from
/// `rng`, from just after `at_ms` (where the parent reached something few runs reach, on that
/// server) for one of [`swarm::CUT_OFF_MS`](crate::swarm::CUT_OFF_MS), or until the heal if
/// sooner: the pair is a minority, so the server hears no leader meanwhile. A window that
/// opened on a server (a view rolled back, a log behind) is held open for whatever it needs
/// time for: a check that judges the view 30 s later, an election among stale members.
/// The cut-off is quiet: the parent's faults from the cut to its heal are left out and its
/// crash points end at the cut, since a crash, a restart or a heal in the meantime closes the
/// window (a restart puts a 30 s check off by 30 s more). What comes before the cut is the
/// parent's, unchanged. `None` when the moment is past the heal or the parent has fewer than
/// three servers.
pub fn cut_off<C: Clone, E: Clone, K: Clone>(
    parent: &Scenario<C, E, K>,
    node: NodeIndex,
    at_ms: u64,
    rng: &mut ChaCha8Rng,
) -> Option<(Scenario<C, E, K>, Mutation)> {
    let servers = parent.servers;
    let heal_ms = heal_at_ms(parent);
    let at_ms = at_ms + rng.gen_range(0..=500);
    if servers < 3 || node >= servers || at_ms + 1 >= heal_ms || parent.steps.len() + 2 > STEPS_MAX {
        return None;
    }
    let other = (node + rng.gen_range(1..servers)) % servers;
    let rest: Vec<NodeIndex> = (0..servers).filter(|&n| n != node && n != other).collect();
    let healed_ms = (at_ms + *pick(crate::swarm::CUT_OFF_MS, rng)?).min(heal_ms.saturating_sub(1));
    let mut child = parent.clone();
    child.steps.retain(|s| !(is_fault(&s.action) && (at_ms..=healed_ms).contains(&s.at_ms)));
    if let Some(points) = &mut child.crash_points {
        points.until_ms = points.until_ms.min(at_ms);
    }
    child.steps.push(Step { at_ms, action: Action::Partition { groups: vec![vec![node, other], rest] } });
    child.steps.push(Step { at_ms: healed_ms, action: Action::HealNetwork {} });
    child.steps.sort_by_key(|s| s.at_ms);
    Some((child, Mutation::CutOff { node, at_ms, for_ms: healed_ms - at_ms }))
}

fn pick<'a, T>(items: &'a [T], rng: &mut ChaCha8Rng) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.gen_range(0..items.len())])
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::fixture::register::RegisterSystem;
    use crate::swarm;

    #[test]
    fn buckets_follow_afl() {
        let buckets: Vec<u8> = [1, 2, 3, 4, 7, 8, 16, 32, 127, 128, 10_000].iter().map(|&h| bucket(h)).collect();
        assert_eq!(buckets, [1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 8]);
    }

    #[test]
    fn novelty_is_a_new_probe_or_a_new_bucket() {
        let mut novelty = Novelty::default();
        assert_eq!(novelty.record([("a", 1), ("b", 5)]), ["a", "b"]);
        assert!(novelty.record([("a", 1), ("b", 6)]).is_empty(), "same buckets: nothing new");
        assert_eq!(novelty.record([("a", 2)]), ["a"], "a new hit count is new");
        assert_eq!(novelty.probes(), 2);
    }

    #[test]
    fn runs_at_rare_probes_weigh_more_and_branch_there() {
        let mut novelty = Novelty::default();
        for _ in 0..99 {
            novelty.record([("common", 1)]);
        }
        novelty.record([("common", 1), ("rare", 1)]);
        assert_eq!((novelty.runs_reaching("common"), novelty.runs_reaching("rare")), (100, 1));
        let ordinary = novelty.rarity_weight(["common"]);
        let near_the_window = novelty.rarity_weight(["common", "rare"]);
        assert_eq!((ordinary, near_the_window), (RARITY_SCALE / 100, RARITY_SCALE));
        let probes = [("common".to_string(), 5), ("rare".to_string(), 40_000)];
        assert_eq!(novelty.rarest_moments(&probes, 1), [40_000]);

        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let picks = (0..1_000).filter(|_| pick_weighted(&[1, 99], &mut rng) == 1).count();
        assert!((900..1_000).contains(&picks), "weight 99 of 100 drawn {picks} times in 1000");
    }

    #[test]
    fn mutants_keep_faults_before_the_heal_and_steps_in_order() {
        let profile = swarm::profile("default").unwrap();
        let parent = swarm::generate::<RegisterSystem>(3, profile);
        let donor = swarm::generate::<RegisterSystem>(4, profile);
        let heal_ms = heal_at_ms(&parent);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut kinds = BTreeMap::new();
        for _ in 0..500 {
            let Some((child, mutation)) = mutate(&parent, &donor, &[10_000, 20_000], &hasten, &Mix::KNOBS, &mut rng)
            else {
                continue;
            };
            *kinds.entry(mutation.to_string().split(' ').next().unwrap_or_default().to_string()).or_insert(0) += 1;
            assert!(child.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "{mutation}: steps out of order");
            assert_eq!(heal_at_ms(&child), heal_ms, "{mutation}: the heal moved");
            let late_faults = child.steps.iter().filter(|s| is_fault(&s.action) && s.at_ms >= heal_ms).count();
            let parent_late = parent.steps.iter().filter(|s| is_fault(&s.action) && s.at_ms >= heal_ms).count();
            assert!(late_faults <= parent_late, "{mutation}: a fault after the heal");
            assert!(child.steps.iter().filter(|s| matches!(s.action, Action::Reseed { .. })).count() <= 1);
            assert_ne!(child, parent, "{mutation}: a mutant differs from its parent");
        }
        assert_eq!(kinds.len(), 6, "every kind of mutation is drawn");
    }

    #[test]
    fn a_mix_lays_its_shares_out_on_the_hundred() {
        for mix in [Mix::KNOBS, Mix::WITH_WINDOWS] {
            let kinds: Vec<Kind> = (0..100).map(|draw| mix.kind(draw)).collect();
            let share = |kind| kinds.iter().filter(|&&k| k == kind).count() as u32;
            let shares = [Kind::Branch, Kind::Reseed, Kind::Shift, Kind::Drop, Kind::Knob, Kind::Splice].map(share);
            assert_eq!(shares, [mix.branch, mix.reseed, mix.shift, mix.drop, mix.knob, mix.splice]);
            assert!(kinds.windows(2).all(|w| w[0] as u8 <= w[1] as u8), "{mix:?}: one run of draws per kind");
        }
        assert_eq!(Mix::for_campaign(false).knob, 30);
        // Windows keep the draws campaigns with `--windows` were measured with.
        let before = |draw| match draw {
            0..=34 => Kind::Branch,
            35..=44 => Kind::Reseed,
            45..=59 => Kind::Shift,
            60..=69 => Kind::Drop,
            70..=89 => Kind::Knob,
            _ => Kind::Splice,
        };
        assert!((0..100).all(|draw| Mix::for_campaign(true).kind(draw) == before(draw)));
    }

    /// The register has no timers to hasten: [`Knob::Hasten`] leaves its runs as they are.
    fn hasten<K>(_: &mut ChaCha8Rng, _: &mut K) {}

    #[test]
    fn knobs_turn_links_slow_and_lossy_and_hasten_through_the_system() {
        let profile = swarm::profile("default").unwrap();
        let parent = swarm::generate::<RegisterSystem>(3, profile);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let hastened = std::cell::Cell::new(0);
        let count = |_: &mut ChaCha8Rng, _: &mut _| hastened.set(hastened.get() + 1);
        let (mut knobs, mut slowed) = (BTreeMap::new(), 0);
        for _ in 0..1_000 {
            let Some((child, mutation)) = mutate(&parent, &parent, &[], &count, &Mix::WITH_WINDOWS, &mut rng) else {
                continue;
            };
            let Mutation::Knob { knob } = mutation else { continue };
            *knobs.entry(format!("{knob:?}")).or_insert(0) += 1;
            assert_eq!(child.steps, parent.steps, "a knob leaves the timeline alone");
            if knob != Knob::Hasten {
                slowed += 1;
                assert!(swarm::SLOW_LATENCY_MEAN_US.contains(&child.network.latency_mean_us));
                assert!(swarm::LOSSY_LOSS_PPM.contains(&child.network.loss_ppm));
            }
        }
        // A fifth of the draws are knobs (the mix with windows). The register has nothing to hasten, so a mutant
        // that only hastens is no new run and is not returned, but the system was asked.
        assert_eq!(knobs.keys().collect::<Vec<_>>(), ["Both", "SlowLinks"], "{knobs:?}");
        assert!((80..200).contains(&slowed), "{slowed} mutants with slow links in 1,000 draws");
        assert!((80..200).contains(&hastened.get()), "{} hasten calls in 1,000 draws", hastened.get());
    }

    #[test]
    fn a_branch_keeps_the_prefix_and_changes_what_follows() {
        let profile = swarm::profile("default").unwrap();
        let parent = swarm::generate::<RegisterSystem>(3, profile);
        let mut child = parent.clone();
        child.steps.push(Step { at_ms: 20_000, action: Action::Reseed { seed: 99 } });
        child.steps.sort_by_key(|s| s.at_ms);
        let options = crate::RunOptions { keep_trace: true, ..Default::default() };
        let a = crate::run::<RegisterSystem>(&parent, &options).trace.unwrap();
        let b = crate::run::<RegisterSystem>(&child, &options).trace.unwrap();
        let parted = a.iter().zip(&b).position(|(x, y)| x != y).expect("the runs part");
        assert!(a[parted].sim_ns >= 20_000_000_000, "the runs are one until the branch point");
        assert!(b[parted].kind == "reseed" || b[parted].sim_ns >= 20_000_000_000);
    }
    #[test]
    fn a_cut_off_holds_the_server_with_one_other_until_a_heal_before_the_final_one() {
        let profile = swarm::profile("default").unwrap();
        let mut parent = swarm::generate::<RegisterSystem>(3, profile);
        let heal_ms = heal_at_ms(&parent);
        parent.crash_points = Some(crate::scenario::CrashPoints {
            rate_ppm: 1_000,
            restart_after_ms: 50,
            until_ms: heal_ms,
            power_loss_percent: 0,
        });
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (node, at_ms) in [(0, 1_000), (2, 20_000), (4, heal_ms - 10_000)] {
            let (child, mutation) = cut_off(&parent, node, at_ms, &mut rng).expect("a moment before the heal");
            let Mutation::CutOff { node: cut, at_ms: from, for_ms } = mutation else { panic!("{mutation}") };
            assert_eq!(cut, node);
            assert!((at_ms..=at_ms + 500).contains(&from), "{mutation}");
            assert!(child.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "{mutation}: steps out of order");
            let before = |steps: &[Step<_, _>]| steps.iter().filter(|s| s.at_ms < from).cloned().collect::<Vec<_>>();
            assert_eq!(before(&child.steps), before(&parent.steps), "{mutation}: the prefix is the parent's");
            assert_eq!(heal_at_ms(&child), heal_ms, "{mutation}: the final heal stays");
            let partition =
                child.steps.iter().find(|s| s.at_ms == from && matches!(s.action, Action::Partition { .. }));
            let Some(Step { action: Action::Partition { groups }, .. }) = partition else {
                panic!("{mutation}: no partition")
            };
            assert!(groups[0].len() == 2 && groups[0].contains(&node), "{groups:?}: the server and one other");
            assert_eq!(groups[0].len() + groups[1].len(), parent.servers as usize);
            let healed = from + for_ms;
            assert!(healed < heal_ms && (for_ms >= 35_000 || healed + 1 == heal_ms), "{mutation}");
            let heal = child.steps.iter().find(|s| s.at_ms == healed && matches!(s.action, Action::HealNetwork {}));
            assert!(heal.is_some(), "{mutation}: healed");
            let faults: Vec<_> =
                child.steps.iter().filter(|s| (from..=healed).contains(&s.at_ms) && is_fault(&s.action)).collect();
            assert_eq!(faults.len(), 2, "{mutation}: the cut-off is quiet: only its partition and heal, {faults:?}");
            let clients = |steps: &[Step<_, _>]| {
                let client = |s: &&Step<_, _>| matches!(s.action, Action::Client { .. });
                steps.iter().filter(|s| (from..=healed).contains(&s.at_ms)).filter(client).count()
            };
            assert_eq!(clients(&child.steps), clients(&parent.steps), "{mutation}: client operations stay");
            let crash_points_until = child.crash_points.as_ref().map(|points| points.until_ms);
            assert_eq!(crash_points_until, Some(from), "{mutation}: crash points end at the cut");
        }
        let faults_in_window = |s: &Scenario<_, _, _>| {
            s.steps.iter().filter(|s| (20_000..=55_000).contains(&s.at_ms) && is_fault(&s.action)).count()
        };
        assert!(faults_in_window(&parent) > 2, "the parent has faults for the cut-off to leave out");
        assert!(cut_off(&parent, 1, heal_ms, &mut rng).is_none(), "no cut-off from the heal on");
        let mut pair = parent.clone();
        pair.servers = 2;
        assert!(cut_off(&pair, 0, 1_000, &mut rng).is_none(), "two servers: no minority to cut off with");
    }
}
