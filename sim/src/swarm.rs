//! Swarm schedules: a seed expands into a whole scenario.
//!
//! As in TigerBeetle's swarm testing, the seed first draws the run's *character* (which fault
//! kinds are on at all, how often faults and client operations come, how lossy and slow the
//! network is), then a timeline under it. Different seeds therefore explore very different
//! mixes instead of the same average. A final `heal-all` ends every fault so that liveness can
//! be checked in a quiet tail.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::disk::Corruption;
use crate::net::{LinkProfile, NodeIndex};
use crate::node::{ClientOpOf, ConfigOf, Node};
use crate::scenario::{Action, ClockSpec, CrashPoints, DiskProfile, Step, STEPS_MAX};
use crate::system::{ExpectOf, ScenarioOf, System};
use crate::workload::Workload;

/// Which fault families a profile may draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultFamilies {
    pub network: bool,
    pub process: bool,
    pub power: bool,
    pub disk: bool,
    /// Disk faults that lie or silently lose synced data (lost fsync, truncation, rollback,
    /// wipe), beyond the detectable ones (bit flips, ENOSPC, slow I/O).
    pub lies: bool,
    pub clock: bool,
    /// Operational churn the system under test offers (leader stepdowns, snapshots): drawn
    /// through [`Workload::churn_op`].
    pub churn: bool,
    /// Membership changes (peer removes): drawn through [`Workload::membership_op`].
    pub membership: bool,
    /// Every allowed family is drawn in every seed (a focused profile), instead of each seed
    /// drawing a subset.
    pub focused: bool,
}

/// A named fuzz profile: the shape of the runs a seed can expand into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub what: &'static str,
    pub servers: u32,
    pub duration_ms: u64,
    /// Faults stop and `heal-all` runs here; the rest is the liveness phase.
    pub heal_at_ms: u64,
    pub faults: FaultFamilies,
    /// Servers whose disks may be damaged, at most (always a minority).
    pub damaged_max: u32,
    /// A bulk load on top of the usual client operations, for profiles about the size of what
    /// the system holds; `None` draws nothing, so a profile without one expands as before.
    pub bulk: Option<BulkLoad>,
    /// Servers the system runs in a limited role ([`Workload::limit_servers`]: what the role is
    /// is the system's business), drawn per seed; 0 draws nothing, so a profile without them
    /// expands as before.
    pub limited: u32,
    /// The pace a seed draws from instead of the swarm's usual ranges; `None` draws as before.
    pub pace: Option<Pace>,
    /// Percent of client operations drawn from [`Workload::single_copy_op`] (data only one
    /// server holds); 0 draws nothing, so a profile without them expands as before.
    pub single_copy_percent: u32,
    /// Each disk fault is followed by a restart of the damaged server, which is where damage is
    /// found (a server reads its files at start); `false` draws nothing.
    pub restart_damaged: bool,
    /// Each of those restarts comes back into a partition that cuts the server and one other
    /// off from the rest for [`CUT_OFF_MS`]: a server back from damage, its view possibly
    /// stale, that cannot reach a majority for a while. Only with `restart_damaged`; `false`
    /// draws nothing.
    pub cut_off_restarted: bool,
    /// A focused profile that allows lies draws them in every seed, not in a third; `false`
    /// draws as before.
    pub lies_always: bool,
    /// The file kinds disk faults aim at, of the system's own ([`Node::FILE_KINDS`]); empty,
    /// or none of them the system's: all of its kinds.
    pub damage_kinds: &'static [&'static str],
    /// A membership change while a minority is down, met by their restart ([`Outage`]);
    /// `None` draws nothing, so a profile without one expands as before.
    pub outage: Option<Outage>,
    /// A guided campaign on this profile opens windows (`fuzz --guided --windows`) unless told
    /// not to: the narrow windows its faults open are states one server holds (a meta view a
    /// damaged disk rolled back) until a check 30 s later meets them.
    pub guided_windows: bool,
}

/// One outage per seed, at a time drawn in the first half of the faults: `down` servers go
/// down together (up to 300 ms apart); while they are down, the servers still running are
/// asked `remove_gap_ms` apart to remove `removes` members ([`Workload::remove_member_op`]):
/// first the server that went down first (an operator removing a dead server), then servers
/// still running, one of which may be the leader. `back_after_ms` after the last remove the
/// down servers restart (0, 100 or 1,000 ms apart) with the view of the members they went down
/// with, and the servers that stayed up crash `others_down_before_ms` before the first of
/// those restarts and come back 0.5, 1.5 or 3 s later: the restarted servers hear from
/// everyone, removed servers too, before any leader. Work a server does at start before it
/// hears a leader (the meta system's cold-boot size check) then meets a stale view of the
/// members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    pub down: u32,
    pub removes: u32,
    pub remove_gap_ms: u64,
    pub back_after_ms: u64,
    pub others_down_before_ms: u64,
}

/// Slow links (mean latency) and lossy ones (parts per million lost): `elections` draws its
/// links from these, and a guided campaign's [`Knob::SlowLinks`](crate::guided::Knob) turns
/// a run's links to them.
pub const SLOW_LATENCY_MEAN_US: &[u64] = &[40_000, 80_000];
pub const LOSSY_LOSS_PPM: &[u32] = &[20_000, 50_000];

/// How long a restarted server stays cut off (one is picked per restart). Longer than the
/// work a server owes some time after its start (the meta system's one-shot orphan check
/// comes 30 s after its replay), so that work meets the stale view.
pub const CUT_OFF_MS: &[u64] = &[35_000, 45_000];

/// The lists a focused profile draws a seed's pace from instead of the swarm's usual ones
/// (each a list to pick one from): a profile about one kind of narrow window (a leader losing
/// its term in the middle of replicating) draws the paces that open it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub fault_gap_ms_means: &'static [u64],
    pub client_gap_ms_means: &'static [u64],
    pub latency_mean_us: &'static [u64],
    pub loss_ppm: &'static [u32],
    /// The system's fastest timers and smallest batches ([`Workload::hasten_config`]).
    pub hasten: bool,
}

/// A bulk load: the seed draws how many units the workload loads ([`Workload::bulk_unit`]:
/// what one unit is, e.g. an object and its dependents, is the system's business) and when,
/// inside a window that ends before the heal, so faults meet the load and liveness is judged
/// with all of it in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkLoad {
    /// Units drawn per seed, uniformly in `units_min..=units_max`.
    pub units_min: u32,
    pub units_max: u32,
    /// The window in which units start.
    pub from_ms: u64,
    pub until_ms: u64,
    /// The operations of one unit are sent this far apart, so a dependent operation finds
    /// what the one before it created.
    pub follow_up_ms: u64,
}

const ALL: FaultFamilies = FaultFamilies {
    network: true,
    process: true,
    power: true,
    disk: true,
    lies: false,
    clock: true,
    churn: false,
    membership: false,
    focused: false,
};
const NONE: FaultFamilies = FaultFamilies {
    network: false,
    process: false,
    power: false,
    disk: false,
    lies: false,
    clock: false,
    churn: false,
    membership: false,
    focused: false,
};

/// The swarm's usual paces, which a profile without a [`Pace`] draws from.
const FAULT_GAP_MS_MEANS: &[u64] = &[500, 1_500, 4_000, 10_000];
const CLIENT_GAP_MS_MEANS: &[u64] = &[50, 200, 600, 2_000];
const LATENCY_MEAN_US: &[u64] = &[500, 2_000, 10_000, 40_000];
const LOSS_PPM: &[u32] = &[0, 0, 1_000, 20_000, 100_000];

/// What a profile draws unless it says otherwise: no bulk load, no limited servers, the
/// swarm's usual paces, the usual client operations and no restarts after damage. Every
/// profile names its own shape and faults.
const USUAL: Profile = Profile {
    name: "",
    what: "",
    servers: 5,
    duration_ms: 60_000,
    heal_at_ms: 30_000,
    faults: NONE,
    damaged_max: 0,
    bulk: None,
    limited: 0,
    pace: None,
    single_copy_percent: 0,
    restart_damaged: false,
    cut_off_restarted: false,
    lies_always: false,
    damage_kinds: &[],
    outage: None,
    guided_windows: false,
};

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "default",
        what: "5 servers, 60 s: network, process, power, detectable disk and clock faults, healed at 30 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: ALL,
        damaged_max: 2,
        ..USUAL
    },
    Profile {
        name: "calm",
        what: "5 servers, 30 s, no faults: the baseline every system must pass",
        servers: 5,
        duration_ms: 30_000,
        heal_at_ms: 20_000,
        faults: NONE,
        damaged_max: 0,
        ..USUAL
    },
    Profile {
        name: "network",
        what: "5 servers, 60 s: partitions, clogs, loss, duplication and latency only",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { network: true, ..NONE },
        damaged_max: 0,
        ..USUAL
    },
    Profile {
        name: "storage",
        what: "3 servers, 60 s: crashes, power loss and every disk fault (lies too) on a minority",
        servers: 3,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { process: true, power: true, disk: true, lies: true, ..NONE },
        damaged_max: 1,
        ..USUAL
    },
    Profile {
        name: "disk",
        what: "5 servers, 90 s: bit flips, truncation and stale-chunk restores of snapshots and logs on one server, power loss with pauses and partitions, healed at 60 s",
        servers: 5,
        // Faults run for 60 s: the orphan check comes 30 s after a restart, and a restart in
        // the first half still meets its check under faults.
        duration_ms: 90_000,
        heal_at_ms: 60_000,
        faults: FaultFamilies { network: true, process: true, power: true, disk: true, lies: true, focused: true, ..NONE },
        // One damaged disk: two that lost acknowledged data can outvote the intact copies,
        // which no replicated log survives.
        damaged_max: 1,
        // Windows took `orphan-check-before-sync` from >1,500 guided runs to a median of 471
        // (README, issue 20).
        guided_windows: true,
        ..USUAL
    },
    Profile {
        name: "churn",
        what: "5 servers, 60 s: restarts, crashes, leader stepdowns, snapshots and peer removes, healed at 30 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { process: true, churn: true, membership: true, focused: true, ..NONE },
        damaged_max: 0,
        ..USUAL
    },
    Profile {
        name: "restarts",
        what: "churn without peer removes: 5 servers, 60 s, restarts, crashes, leader stepdowns and snapshots",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { process: true, churn: true, focused: true, ..NONE },
        damaged_max: 0,
        ..USUAL
    },
    Profile {
        name: "scale",
        what: "5 servers, 60 s: the default faults healed at 30 s, and a bulk load of 300-1,000 units (the system says what a unit is) started by 20 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: ALL,
        damaged_max: 2,
        // The last unit's follow-ups go out by 22 s: under the faults, with 8 s of them left,
        // and 38 s before the liveness checks.
        bulk: Some(BulkLoad { units_min: 300, units_max: 1_000, from_ms: 1_000, until_ms: 20_000, follow_up_ms: 2_000 }),
        ..USUAL
    },
    Profile {
        name: "elections",
        // Each knob was measured against `raft-commit-old-term` (runs per find, 3,000 seeds):
        // slow lossy links and a heavy load 1 in 333, fast raft with small batches 1 in 86.
        what: "5 servers, 60 s: leaders changing under load, partitions, clogs and clock faults every few hundred ms on slow, lossy links, raft at its fastest, healed at 30 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { network: true, clock: true, focused: true, ..NONE },
        damaged_max: 0,
        pace: Some(Pace {
            fault_gap_ms_means: &[300, 700, 1_500],
            client_gap_ms_means: &[50, 100],
            latency_mean_us: SLOW_LATENCY_MEAN_US,
            loss_ppm: LOSSY_LOSS_PPM,
            hasten: true,
        }),
        ..USUAL
    },
    Profile {
        name: "recovery",
        // Measured against `messages-deleted-before-replay` (runs per find over 1,500 seeds):
        // restarts after damage alone 1 in 750, 30 % single-copy operations 1 in 375, both
        // with 60 % 1 in 83.
        what: "5 servers, 60 s: crashes, power loss and detectable disk damage on two servers, each damage found by a restart of its server soon after; most client operations on data one server holds alone (the system says what), healed at 30 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { process: true, power: true, disk: true, focused: true, ..NONE },
        damaged_max: 2,
        single_copy_percent: 60,
        restart_damaged: true,
        ..USUAL
    },
    Profile {
        name: "cutoff",
        // Measured against `orphan-check-before-sync`: see the README's paragraph on `cutoff`
        // under runs to find.
        what: "5 servers, 90 s: a few network faults and disk damage (lies in every seed) to one server's logs and state files, each damage found by a restart into a partition that cuts that server and one other off for 35 or 45 s; a third of client operations on data one server holds alone (the system says what), healed at 60 s",
        servers: 5,
        // As in `disk`: faults for 60 s, so a restart in the first half meets the meta
        // system's orphan check (30 s after it) cut off.
        duration_ms: 90_000,
        heal_at_ms: 60_000,
        faults: FaultFamilies { network: true, disk: true, lies: true, focused: true, ..NONE },
        damaged_max: 1,
        // A fault every 25 s on average: a server damaged again restarts again, and each
        // restart puts off the work it owes after its start.
        pace: Some(Pace {
            fault_gap_ms_means: &[25_000],
            client_gap_ms_means: CLIENT_GAP_MS_MEANS,
            latency_mean_us: LATENCY_MEAN_US,
            loss_ppm: LOSS_PPM,
            hasten: false,
        }),
        single_copy_percent: 30,
        restart_damaged: true,
        cut_off_restarted: true,
        // A rolled-back meta log is what leaves a server behind the streams it holds: every
        // seed lies, and damage aims at logs and state files (runs per find, 2,000 seeds of a
        // draft: a third lying 1 in 333, all 1 in 154, all on logs and state 1 in 100).
        lies_always: true,
        damage_kinds: &["log", "state"],
        ..USUAL
    },
    Profile {
        name: "outage",
        // Measured against `boot-size-after-restart`: see the README's paragraph on `outage`
        // under runs to find.
        what: "5 servers, 60 s: two servers go down together; while they are down the others remove one of them and two servers still running; the servers left crash just before the two come back with a stale view of the members; leader stepdowns and snapshots, healed at 30 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        // No other crashes or peer removes: they restart the down servers early or remove
        // others than the outage's (runs per find over 500 seeds of a draft whose servers left
        // crashed 1.5 s before the comeback: 1 in 50 with `churn`'s crashes and removes, 1 in
        // 20 with its removes, 1 in 11 without either; 0.5 s before, as now, 1 in 9).
        faults: FaultFamilies { churn: true, focused: true, ..NONE },
        damaged_max: 0,
        outage: Some(Outage { down: 2, removes: 3, remove_gap_ms: 1_500, back_after_ms: 3_000, others_down_before_ms: 500 }),
        ..USUAL
    },
    Profile {
        name: "mixed",
        what: "5 servers, 60 s: the default faults healed at 30 s, one server in a limited role (the system says which role) chosen per seed",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: ALL,
        // One damaged disk: with the limited server, two would leave the system two servers
        // of five in full role, no quorum (mixed seed 11).
        damaged_max: 1,
        limited: 1,
        ..USUAL
    },
];

pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// Bumped whenever generation changes, so a stored seed says which generator it needs.
/// The `scale` profile came in under 10 without a bump: a profile without a bulk load draws
/// exactly what it drew before (the bulk draws happen only with a bulk load), so no stored
/// seed of another profile changes. `mixed` came in under 12 the same way: only a profile
/// with limited servers draws them. `elections` came in under 15 the same way: a profile
/// without a [`Pace`] draws from the same lists, and only a hastening one redraws its timers.
/// `outage` came in under 15 the same way: only a profile with an [`Outage`] draws one.
/// `recovery` and `cutoff` came in under 15 the same way: only a profile that sets
/// `single_copy_percent`, `restart_damaged` or `cut_off_restarted` draws for them, and
/// `lies_always` and `damage_kinds` change what a profile that sets them draws, no one else's.
/// 9: `churn` draws peer removes (it was `peers`); the old `churn` is `restarts`. A seed of
/// any profile runs as it did under 8 under its new name.
/// 10: the same draws as 9, but the system's health query became pure (issue 15), so a seed
/// whose orphan check met a shrinking apply gap runs differently (default seed 984).
/// 11: crash points may lose power (`power_loss_percent`, drawn where power faults are on),
/// and the meta system marks eight more risky moments (snapshot writes and installs, log
/// truncations, the recovery flush, orphan removals, stepdown hand-overs): every seed with
/// crash points runs differently.
/// 12: the meta workload draws mirrors and their deletes (3 % and 1 % of client ops), so
/// every meta seed draws other client ops.
/// 13: the meta workload draws replica changes (3 % of client ops, taken from stream creates)
/// and a fifth of consumer creates ask for replicas of their own, so every meta seed draws
/// other client ops.
/// 14: profiles with membership changes draw them for 3 % of operations, not 2 % (the meta
/// workload makes a third of them stream peer removals), and a quarter of their seeds start
/// one server outside the membership (`Workload::join_later`). Other profiles draw as under 13.
/// 15: the meta workload draws asset groups' stepdowns, consumer info, stream and consumer
/// lists, seals, subjects that overlap another stream's and consumer limits on creates (10 of
/// every 110 client ops are the new kinds), and disk faults aim at the peers and assets
/// records too: every meta seed draws other client ops.
/// 16: the world runs on its own event queue instead of madsim's tasks (events of one instant
/// in an order drawn from the seed). A seed expands to the scenario it did under 15, but every
/// run takes another course, so a finding of 15 does not replay here.
/// 17: each node and each ordered link draws from a random stream of its own (faults and crash
/// points stay on the world's), so a step a shrink removes moves the draws of what it touches
/// only. A seed expands to the scenario it did under 16; every run takes another course.
pub const GENERATOR_VERSION: u32 = 17;

/// The swarm's draws for one seed.
#[derive(Clone, Debug)]
struct Character {
    network: bool,
    process: bool,
    power: bool,
    disk: bool,
    lies: bool,
    clock: bool,
    churn: bool,
    membership: bool,
    focused: bool,
    fault_gap_ms_mean: u64,
    client_gap_ms_mean: u64,
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[T]) -> T {
    options[rng.gen_range(0..options.len())]
}

fn gap(rng: &mut ChaCha8Rng, mean_ms: u64) -> u64 {
    rng.gen_range(1..=2 * mean_ms)
}

/// Random words the workload may draw for one operation: a bound on its loops.
pub const WORKLOAD_WORDS_PER_OP_MAX: u128 = 100_000;

type StepOf<S> = Step<ClientOpOf<<S as System>::Node>, ExpectOf<S>>;
type ActionOf<S> = Action<ClientOpOf<<S as System>::Node>, ExpectOf<S>>;

/// Expand `seed` into a scenario of system `S` under `profile`.
pub fn generate<S: System>(seed: u64, profile: &Profile) -> ScenarioOf<S> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7377_6172_6d21_0001);
    let character = draw_character(&mut rng, profile);
    let servers = profile.servers;
    let network = draw_network(&mut rng, &character, profile.pace.as_ref());
    let clocks = draw_clocks(&mut rng, &character, servers);
    // Disk damage is aimed at a minority, as in the Jepsen NATS analysis: a majority of intact
    // disks is what any replicated system may rely on.
    let minority = ((servers - 1) / 2).min(profile.damaged_max);
    let mut damageable: Vec<NodeIndex> = (0..servers).collect();
    for i in (1..damageable.len()).rev() {
        damageable.swap(i, rng.gen_range(0..=i));
    }
    damageable.truncate(minority as usize);

    // Crash points aim crashes at the moments the system marks as risky (a vote just sent, a
    // commit just advanced), which crashes at random times rarely hit.
    let mut crash_points = (character.process && rng.gen_bool(0.5)).then(|| CrashPoints {
        rate_ppm: pick(&mut rng, &[5_000, 30_000, 100_000]),
        restart_after_ms: pick(&mut rng, &[5, 50, 300]),
        until_ms: profile.heal_at_ms,
        power_loss_percent: 0,
    });
    let mut config = S::Workload::generate_config(&mut rng, servers);
    if profile.bulk.is_some() {
        S::Workload::bulk_config(&mut config);
    }
    if profile.pace.is_some_and(|p| p.hasten) {
        S::Workload::hasten_config(&mut rng, &mut config);
    }
    // Drawn only for a profile with limited servers, right after the config they change: a
    // `mixed` seed's draws part from its `default` seed's here.
    if profile.limited > 0 {
        let mut nodes: Vec<NodeIndex> = (0..servers).collect();
        nodes.shuffle(&mut rng);
        nodes.truncate(profile.limited.min(servers) as usize);
        nodes.sort_unstable();
        S::Workload::limit_servers(&mut config, &nodes);
    }
    // Drawn only for a profile with membership changes: a quarter of its seeds start one
    // server outside the membership, to join by itself.
    if character.membership && rng.gen_bool(0.25) {
        S::Workload::join_later(&mut config, rng.gen_range(0..servers), servers);
    }
    let mut steps = client_steps::<S>(&mut rng, &character, profile, &config);
    steps.extend(fault_steps::<S>(&mut rng, &character, profile, &damageable));
    // Drawn only for a profile with an outage, after the other faults.
    if let Some(outage) = &profile.outage {
        steps.extend(outage_steps::<S>(&mut rng, outage, profile, &config));
    }
    // Where power faults are on, some crash points lose power instead: drawn after the steps,
    // so the rest of the seed is what it was without them.
    if let Some(cp) = crash_points.as_mut().filter(|_| character.power) {
        cp.power_loss_percent = pick(&mut rng, &[0, 25, 50]);
    }
    // The bulk load is drawn last, and only for a profile with one: the draws before are those
    // of the same seed without it (a `scale` seed is its `default` seed plus the load).
    if let Some(bulk) = &profile.bulk {
        steps.extend(bulk_steps::<S>(&mut rng, bulk, servers, &config));
    }
    steps.push(Step { at_ms: profile.heal_at_ms, action: Action::HealAll {} });
    // Stable sort keeps generation order among equal times, so the file order is the run order.
    steps.sort_by_key(|s| s.at_ms);
    assert!(
        steps.len() <= STEPS_MAX,
        "seed {seed} generated {} steps, more than a scenario file may hold",
        steps.len()
    );

    ScenarioOf::<S> {
        name: format!("swarm-{}-seed-{seed}", profile.name),
        sut: Some(S::NAME.to_string()),
        description: format!("generated by swarm v{GENERATOR_VERSION} from seed {seed}, profile {}", profile.name),
        seed,
        servers,
        duration_ms: profile.duration_ms,
        network,
        disk: DiskProfile::default(),
        clocks,
        crash_points,
        bugs: Vec::new(),
        liveness: true,
        expect: None,
        expect_violation: None,
        system: config,
        steps,
    }
}

/// The seed's character: which families are on, and how often faults and operations come.
fn draw_character(rng: &mut ChaCha8Rng, profile: &Profile) -> Character {
    let (f, pace) = (profile.faults, profile.pace.as_ref());
    // A focused profile draws every family it allows; the others draw a subset per seed.
    let mut coin = |p: f64| f.focused || rng.gen_bool(p);
    let network = f.network && coin(0.7);
    let process = f.process && coin(0.6);
    let power = f.power && coin(0.4);
    let disk = f.disk && coin(0.4);
    let clock = f.clock && coin(0.3);
    Character {
        network,
        process,
        power,
        disk,
        clock,
        // A focused disk profile lets a third of its seeds lie; the rest damage only what
        // checksums catch, so their runs stay fully checked. The coin is drawn either way, so
        // `lies_always` changes no other draw.
        lies: f.lies && (!f.focused || rng.gen_bool(0.3) || profile.lies_always),
        churn: f.churn,
        membership: f.membership,
        focused: f.focused,
        fault_gap_ms_mean: pick(rng, pace.map_or(FAULT_GAP_MS_MEANS, |p| p.fault_gap_ms_means)),
        client_gap_ms_mean: pick(rng, pace.map_or(CLIENT_GAP_MS_MEANS, |p| p.client_gap_ms_means)),
    }
}

fn draw_network(rng: &mut ChaCha8Rng, character: &Character, pace: Option<&Pace>) -> LinkProfile {
    if !character.network {
        return LinkProfile::default();
    }
    LinkProfile {
        latency_min_us: pick(rng, &[100, 500, 2_000]),
        latency_mean_us: pick(rng, pace.map_or(LATENCY_MEAN_US, |p| p.latency_mean_us)),
        loss_ppm: pick(rng, pace.map_or(LOSS_PPM, |p| p.loss_ppm)),
        duplicate_ppm: pick(rng, &[0, 0, 1_000, 20_000]),
    }
}

fn draw_clocks(rng: &mut ChaCha8Rng, character: &Character, servers: u32) -> Vec<ClockSpec> {
    let mut clocks = Vec::new();
    if character.clock {
        for node in 0..servers {
            if rng.gen_bool(0.4) {
                clocks.push(ClockSpec {
                    node,
                    offset_ms: rng.gen_range(-5_000..=5_000),
                    drift_ppm: rng.gen_range(-2_000..=2_000),
                });
            }
        }
    }
    clocks
}

/// Client operations, all the way to the start of the quiet tail of the liveness phase,
/// which is long enough for what the system needs to settle.
fn client_steps<S: System>(
    rng: &mut ChaCha8Rng,
    character: &Character,
    profile: &Profile,
    config: &ConfigOf<S::Node>,
) -> Vec<StepOf<S>> {
    let servers = profile.servers;
    let quiet_at = (profile.heal_at_ms + (profile.duration_ms - profile.heal_at_ms) / 3)
        .min(profile.duration_ms.saturating_sub(S::Workload::quiet_tail_ms(config)));
    let mut steps = Vec::new();
    let mut t = gap(rng, character.client_gap_ms_mean);
    while t < quiet_at {
        let op = draw_op::<S>(rng, character, profile, config);
        let node = Some(rng.gen_range(0..servers));
        steps.push(Step { at_ms: t, action: Action::Client { node, op } });
        t += gap(rng, character.client_gap_ms_mean);
    }
    steps
}

/// The bulk load: a number of units drawn per seed, each a few operations `follow_up_ms`
/// apart, started in the window at times drawn per seed: all at once, in a few bursts, or
/// spread out, since many things created together (many groups electing at once) and a
/// steady stream of them find different bugs.
fn bulk_steps<S: System>(
    rng: &mut ChaCha8Rng,
    bulk: &BulkLoad,
    servers: u32,
    config: &ConfigOf<S::Node>,
) -> Vec<StepOf<S>> {
    let units = rng.gen_range(bulk.units_min..=bulk.units_max);
    let bursts = pick(rng, &[1, 5, 50, units]).min(units);
    let mut starts: Vec<u64> = (0..bursts).map(|_| rng.gen_range(bulk.from_ms..=bulk.until_ms)).collect();
    starts.sort_unstable();
    let mut steps = Vec::new();
    for index in 0..units {
        // Unit i goes with burst i * bursts / units: the bursts share the units evenly, in order.
        let start = starts[(u64::from(index) * u64::from(bursts) / u64::from(units)) as usize];
        let words_before = rng.get_word_pos();
        let ops = S::Workload::bulk_unit(rng, config, index);
        let words = rng.get_word_pos() - words_before;
        assert!(words <= WORKLOAD_WORDS_PER_OP_MAX, "the workload drew {words} random words for one bulk unit");
        let mut at_ms = start;
        for op in ops {
            let node = Some(rng.gen_range(0..servers));
            steps.push(Step { at_ms, action: Action::Client { node, op } });
            at_ms += bulk.follow_up_ms;
        }
    }
    steps
}

/// One client operation: now and then an operation on single-copy data, a membership change or
/// churn, where the profile asks for them (drawn only then, so other profiles' seeds expand as
/// before).
fn draw_op<S: System>(
    rng: &mut ChaCha8Rng,
    character: &Character,
    profile: &Profile,
    config: &ConfigOf<S::Node>,
) -> ClientOpOf<S::Node> {
    let membership_op = character.membership && rng.gen_bool(0.03);
    let single_copy = profile.single_copy_percent > 0 && rng.gen_range(0..100) < profile.single_copy_percent;
    let words_before = rng.get_word_pos();
    let op = if single_copy {
        S::Workload::single_copy_op(rng, config).unwrap_or_else(|| S::Workload::client_op(rng, config))
    } else if membership_op {
        S::Workload::membership_op(rng, config).unwrap_or_else(|| S::Workload::client_op(rng, config))
    } else if character.churn && rng.gen_bool(0.15) {
        S::Workload::churn_op(rng, config).unwrap_or_else(|| S::Workload::client_op(rng, config))
    } else {
        S::Workload::client_op(rng, config)
    };
    let words = rng.get_word_pos() - words_before;
    assert!(words <= WORKLOAD_WORDS_PER_OP_MAX, "the workload drew {words} random words for one operation");
    op
}

/// Faults until the heal, each crash or power loss mostly followed by a restart soon after.
fn fault_steps<S: System>(
    rng: &mut ChaCha8Rng,
    character: &Character,
    profile: &Profile,
    damageable: &[NodeIndex],
) -> Vec<StepOf<S>> {
    let servers = profile.servers;
    let mut steps = Vec::new();
    let mut faults = FaultState { down: vec![false; servers as usize], paused: vec![false; servers as usize] };
    let kinds = damage_kinds::<S>(profile);
    let mut t = gap(rng, character.fault_gap_ms_mean);
    while t < profile.heal_at_ms {
        if let Some(action) = draw_fault::<S>(rng, character, servers, damageable, &kinds, &mut faults) {
            // Most crashed or powered-off servers come back soon, as under a supervisor: a
            // short outage in the middle of an election or a commit is where bugs hide.
            if let Some(node) = damaged_node(&action).filter(|_| profile.restart_damaged) {
                let found_at = t + pick(rng, &[100, 1_000, 5_000]);
                if found_at < profile.heal_at_ms {
                    steps.push(Step { at_ms: found_at, action: Action::Restart { node } });
                    if profile.cut_off_restarted {
                        steps.extend(cut_off::<S>(rng, node, found_at, profile));
                    }
                }
            }
            let comeback = match &action {
                Action::Crash { node } | Action::PowerLoss { node, .. } if rng.gen_bool(0.7) => Some(*node),
                _ => None,
            };
            steps.push(Step { at_ms: t, action });
            if let Some(node) = comeback {
                let back_at = t + pick(rng, &[5, 50, 300, 1_000, 3_000]);
                if back_at < profile.heal_at_ms {
                    faults.down[node as usize] = false;
                    steps.push(Step { at_ms: back_at, action: Action::Restart { node } });
                }
            }
        }
        t += gap(rng, character.fault_gap_ms_mean);
    }
    steps
}

/// `node`, restarted at `at_ms`, comes back into a partition with one other server, healed
/// [`CUT_OFF_MS`] later (or at the profile's heal, if sooner).
fn cut_off<S: System>(rng: &mut ChaCha8Rng, node: NodeIndex, at_ms: u64, profile: &Profile) -> [StepOf<S>; 2] {
    let servers = profile.servers;
    let other = (node + rng.gen_range(1..servers.max(2))) % servers;
    let rest: Vec<NodeIndex> = (0..servers).filter(|&n| n != node && n != other).collect();
    let healed_at = (at_ms + pick(rng, CUT_OFF_MS)).min(profile.heal_at_ms);
    [
        Step { at_ms, action: Action::Partition { groups: vec![vec![node, other], rest] } },
        Step { at_ms: healed_at, action: Action::HealNetwork {} },
    ]
}

/// The steps of `outage` (see [`Outage`]): it starts at a time drawn so that its last restart
/// comes before the heal.
fn outage_steps<S: System>(
    rng: &mut ChaCha8Rng,
    outage: &Outage,
    profile: &Profile,
    config: &ConfigOf<S::Node>,
) -> Vec<StepOf<S>> {
    let span = outage.remove_gap_ms * u64::from(outage.removes + 1) + outage.back_after_ms + 2_000;
    let latest = profile.heal_at_ms.saturating_sub(span).max(OUTAGE_FROM_MS + 1);
    let mut t = rng.gen_range(OUTAGE_FROM_MS..latest);
    let mut nodes: Vec<NodeIndex> = (0..profile.servers).collect();
    nodes.shuffle(rng);
    let (down, up) = nodes.split_at((outage.down as usize).min(nodes.len().saturating_sub(1)));
    let mut steps = Vec::new();
    for &node in down {
        steps.push(Step { at_ms: t, action: Action::Crash { node } });
        t += pick(rng, &[0, 50, 300]);
    }
    // The first down server, then servers still running, in an order drawn per seed.
    let mut others = up.to_vec();
    others.shuffle(rng);
    let targets = down.iter().take(1).chain(&others).take(outage.removes as usize);
    for &target in targets {
        t += outage.remove_gap_ms;
        let via = pick(rng, up);
        if let Some(op) = S::Workload::remove_member_op(config, target) {
            steps.push(Step { at_ms: t, action: Action::Client { node: Some(via), op } });
        }
    }
    t += outage.back_after_ms;
    let others_at = t - outage.others_down_before_ms.min(outage.back_after_ms);
    for &node in up {
        steps.push(Step { at_ms: others_at, action: Action::Crash { node } });
        steps.push(Step { at_ms: others_at + pick(rng, &[500, 1_500, 3_000]), action: Action::Restart { node } });
    }
    let mut back = down.to_vec();
    back.shuffle(rng);
    for node in back {
        steps.push(Step { at_ms: t, action: Action::Restart { node } });
        t += pick(rng, &[0, 100, 1_000]);
    }
    steps
}

/// An outage starts no sooner than this.
const OUTAGE_FROM_MS: u64 = 2_000;

/// The file kinds `profile`'s disk faults aim at: its own list, of those the system has, or
/// all of the system's.
fn damage_kinds<S: System>(profile: &Profile) -> Vec<&'static str> {
    let all = <S::Node as Node>::FILE_KINDS;
    let aimed: Vec<&'static str> = all.iter().copied().filter(|k| profile.damage_kinds.contains(k)).collect();
    if aimed.is_empty() {
        all.to_vec()
    } else {
        aimed
    }
}

/// The server whose disk a fault damages (slow I/O damages nothing).
fn damaged_node<C, E>(action: &Action<C, E>) -> Option<NodeIndex> {
    match action {
        Action::Corrupt { node, .. } | Action::NoSpace { node, .. } | Action::LostFsync { node, .. } => Some(*node),
        _ => None,
    }
}

/// Which nodes the fault timeline has down or paused, so it restarts and resumes them.
struct FaultState {
    down: Vec<bool>,
    paused: Vec<bool>,
}

#[derive(Clone, Copy)]
enum Family {
    Network,
    Process,
    Power,
    Disk,
    Clock,
}

fn draw_fault<S: System>(
    rng: &mut ChaCha8Rng,
    c: &Character,
    servers: u32,
    damageable: &[NodeIndex],
    file_kinds: &[&str],
    st: &mut FaultState,
) -> Option<ActionOf<S>> {
    let mut families = Vec::new();
    for (on, family) in [
        (c.network, Family::Network),
        (c.process, Family::Process),
        (c.power, Family::Power),
        (c.disk && !damageable.is_empty() && !file_kinds.is_empty(), Family::Disk),
        (c.clock, Family::Clock),
    ] {
        if on {
            families.push(family);
        }
    }
    if families.is_empty() {
        return None;
    }
    let node = rng.gen_range(0..servers);
    let other = (node + rng.gen_range(1..servers.max(2))) % servers;
    Some(match pick(rng, &families) {
        Family::Network => network_fault(rng, servers, node, other),
        Family::Process => process_fault(rng, node, st),
        Family::Power => power_fault(rng, node, st),
        Family::Disk => disk_fault(rng, c, damageable, file_kinds),
        Family::Clock => clock_fault(rng, node),
    })
}

fn network_fault<C, E>(rng: &mut ChaCha8Rng, servers: u32, node: NodeIndex, other: NodeIndex) -> Action<C, E> {
    match rng.gen_range(0..8) {
        0 | 1 => {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for n in 0..servers {
                if rng.gen_bool(0.5) {
                    a.push(n)
                } else {
                    b.push(n)
                }
            }
            if a.is_empty() || b.is_empty() {
                Action::Isolate { node }
            } else {
                Action::Partition { groups: vec![a, b] }
            }
        }
        2 => Action::Isolate { node },
        3 => Action::PartitionOneWay { from: vec![node], to: vec![other] },
        4 => Action::Clog { node },
        5 => Action::Unclog { node },
        _ => Action::HealNetwork {},
    }
}

fn process_fault<C, E>(rng: &mut ChaCha8Rng, node: NodeIndex, st: &mut FaultState) -> Action<C, E> {
    let i = node as usize;
    if st.paused[i] {
        st.paused[i] = false;
        return Action::Resume { node };
    }
    if st.down[i] {
        st.down[i] = false;
        return Action::Restart { node };
    }
    match rng.gen_range(0..3) {
        0 => {
            st.down[i] = true;
            Action::Crash { node }
        }
        1 => {
            st.paused[i] = true;
            Action::Pause { node }
        }
        _ => Action::Restart { node },
    }
}

fn power_fault<C, E>(rng: &mut ChaCha8Rng, node: NodeIndex, st: &mut FaultState) -> Action<C, E> {
    let i = node as usize;
    if st.down[i] {
        st.down[i] = false;
        Action::Restart { node }
    } else {
        st.down[i] = true;
        st.paused[i] = false;
        Action::PowerLoss { node, torn: rng.gen_bool(0.5) }
    }
}

fn disk_fault<C, E>(rng: &mut ChaCha8Rng, c: &Character, damageable: &[NodeIndex], kinds: &[&str]) -> Action<C, E> {
    let node = pick(rng, damageable);
    let kind = pick(rng, kinds).to_string();
    let detectable_only = [0, 5, 6, 7];
    // A focused disk profile damages what recovery reads (bit flips, truncation, stale
    // chunks) but never wipes a disk or drops fsyncs wholesale.
    let choice = match (c.lies, c.focused) {
        (true, true) => pick(rng, &[0, 0, 1, 1, 2, 2, 5, 6]),
        (true, false) => rng.gen_range(0..8),
        (false, _) => pick(rng, &detectable_only),
    };
    match choice {
        0 => Action::Corrupt { node, kind, corruption: Corruption::BitFlip },
        1 => Action::Corrupt { node, kind, corruption: Corruption::Truncate },
        2 => Action::Corrupt { node, kind, corruption: Corruption::Rollback },
        3 => Action::Corrupt { node, kind, corruption: Corruption::Wipe },
        4 => Action::LostFsync { node, kind, on: rng.gen_bool(0.6) },
        5 => Action::NoSpace { node, kind, on: rng.gen_bool(0.6) },
        _ => Action::SlowDisk { node, extra_ms: pick(rng, &[0, 10, 200, 2_000]) },
    }
}

fn clock_fault<C, E>(rng: &mut ChaCha8Rng, node: NodeIndex) -> Action<C, E> {
    if rng.gen_bool(0.5) {
        Action::ClockJump { node, by_ms: rng.gen_range(-30_000..=30_000) }
    } else {
        Action::ClockDrift { node, ppm: rng.gen_range(-5_000..=5_000) }
    }
}
