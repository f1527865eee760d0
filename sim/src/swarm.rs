//! Swarm schedules: a seed expands into a whole scenario.
//!
//! As in TigerBeetle's swarm testing, the seed first draws the run's *character* (which fault
//! kinds are on at all, how often faults and client operations come, how lossy and slow the
//! network is), then a timeline under it. Different seeds therefore explore very different
//! mixes instead of the same average. A final `heal-all` ends every fault so that liveness can
//! be checked in a quiet tail.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::disk::Corruption;
use crate::net::{LinkProfile, NodeIndex};
use crate::scenario::{Action, ClockSpec, CrashPoints, DiskProfile, Step};
use crate::system::System;
use crate::world::ScenarioOf;

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
    /// through [`System::generate_churn_op`].
    pub churn: bool,
    /// Membership changes (peer removes): drawn through [`System::generate_membership_op`].
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

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "default",
        what: "5 servers, 60 s: network, process, power, detectable disk and clock faults, healed at 30 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: ALL,
        damaged_max: 2,
    },
    Profile {
        name: "calm",
        what: "5 servers, 30 s, no faults: the baseline every system must pass",
        servers: 5,
        duration_ms: 30_000,
        heal_at_ms: 20_000,
        faults: NONE,
        damaged_max: 0,
    },
    Profile {
        name: "network",
        what: "5 servers, 60 s: partitions, clogs, loss, duplication and latency only",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { network: true, ..NONE },
        damaged_max: 0,
    },
    Profile {
        name: "storage",
        what: "3 servers, 60 s: crashes, power loss and every disk fault (lies too) on a minority",
        servers: 3,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { process: true, power: true, disk: true, lies: true, ..NONE },
        damaged_max: 1,
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
    },
    Profile {
        name: "churn",
        what: "5 servers, 60 s: restarts, crashes, leader stepdowns, snapshots and peer removes, healed at 30 s",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { process: true, churn: true, membership: true, focused: true, ..NONE },
        damaged_max: 0,
    },
    Profile {
        name: "restarts",
        what: "churn without peer removes: 5 servers, 60 s, restarts, crashes, leader stepdowns and snapshots",
        servers: 5,
        duration_ms: 60_000,
        heal_at_ms: 30_000,
        faults: FaultFamilies { process: true, churn: true, focused: true, ..NONE },
        damaged_max: 0,
    },
];

pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// Bumped whenever generation changes, so a stored seed says which generator it needs.
/// 9: `churn` draws peer removes (it was `peers`); the old `churn` is `restarts`. A seed of
/// any profile runs as it did under 8 under its new name.
pub const GENERATOR_VERSION: u32 = 9;

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

/// Expand `seed` into a scenario of system `S` under `profile`.
pub fn generate<S: System>(seed: u64, profile: &Profile) -> ScenarioOf<S> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7377_6172_6d21_0001);
    let f = profile.faults;
    // A focused profile draws every family it allows; the others draw a subset per seed.
    let mut coin = |p: f64| f.focused || rng.gen_bool(p);
    let character = Character {
        network: f.network && coin(0.7),
        process: f.process && coin(0.6),
        power: f.power && coin(0.4),
        disk: f.disk && coin(0.4),
        clock: f.clock && coin(0.3),
        // A focused disk profile lets a third of its seeds lie; the rest damage only what
        // checksums catch, so their runs stay fully checked.
        lies: f.lies && (!f.focused || rng.gen_bool(0.3)),
        churn: f.churn,
        membership: f.membership,
        focused: f.focused,
        fault_gap_ms_mean: pick(&mut rng, &[500, 1_500, 4_000, 10_000]),
        client_gap_ms_mean: pick(&mut rng, &[50, 200, 600, 2_000]),
    };
    let servers = profile.servers;
    let network = if character.network {
        LinkProfile {
            latency_min_us: pick(&mut rng, &[100, 500, 2_000]),
            latency_mean_us: pick(&mut rng, &[500, 2_000, 10_000, 40_000]),
            loss_ppm: pick(&mut rng, &[0, 0, 1_000, 20_000, 100_000]),
            duplicate_ppm: pick(&mut rng, &[0, 0, 1_000, 20_000]),
        }
    } else {
        LinkProfile::default()
    };
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
    let crash_points = (character.process && rng.gen_bool(0.5)).then(|| CrashPoints {
        rate_ppm: pick(&mut rng, &[5_000, 30_000, 100_000]),
        restart_after_ms: pick(&mut rng, &[5, 50, 300]),
        until_ms: profile.heal_at_ms,
    });
    let config = S::generate_config(&mut rng, servers);
    let mut steps: Vec<Step<S::ClientOp, S::Expect>> = Vec::new();
    // Client operations, all the way to the start of the quiet tail of the liveness phase,
    // which is long enough for what the system needs to settle.
    let quiet_at = (profile.heal_at_ms + (profile.duration_ms - profile.heal_at_ms) / 3)
        .min(profile.duration_ms.saturating_sub(S::quiet_tail_ms(&config)));
    let mut t = gap(&mut rng, character.client_gap_ms_mean);
    while t < quiet_at {
        // Drawn only in a profile that asks, so other profiles' seeds expand as before.
        let membership_op = character.membership && rng.gen_bool(0.02);
        let op = if membership_op {
            S::generate_membership_op(&mut rng, &config).unwrap_or_else(|| S::generate_client_op(&mut rng, &config))
        } else if character.churn && rng.gen_bool(0.15) {
            S::generate_churn_op(&mut rng, &config).unwrap_or_else(|| S::generate_client_op(&mut rng, &config))
        } else {
            S::generate_client_op(&mut rng, &config)
        };
        let node = Some(rng.gen_range(0..servers));
        steps.push(Step { at_ms: t, action: Action::Client { node, op } });
        t += gap(&mut rng, character.client_gap_ms_mean);
    }

    let mut faults = FaultState { down: vec![false; servers as usize], paused: vec![false; servers as usize] };
    let mut t = gap(&mut rng, character.fault_gap_ms_mean);
    while t < profile.heal_at_ms {
        if let Some(action) = draw_fault::<S>(&mut rng, &character, servers, &damageable, &mut faults) {
            // Most crashed or powered-off servers come back soon, as under a supervisor: a
            // short outage in the middle of an election or a commit is where bugs hide.
            let comeback = match &action {
                Action::Crash { node } | Action::PowerLoss { node, .. } if rng.gen_bool(0.7) => Some(*node),
                _ => None,
            };
            steps.push(Step { at_ms: t, action });
            if let Some(node) = comeback {
                let back_at = t + pick(&mut rng, &[5, 50, 300, 1_000, 3_000]);
                if back_at < profile.heal_at_ms {
                    faults.down[node as usize] = false;
                    steps.push(Step { at_ms: back_at, action: Action::Restart { node } });
                }
            }
        }
        t += gap(&mut rng, character.fault_gap_ms_mean);
    }
    steps.push(Step { at_ms: profile.heal_at_ms, action: Action::HealAll {} });
    // Stable sort keeps generation order among equal times, so the file order is the run order.
    steps.sort_by_key(|s| s.at_ms);

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

struct FaultState {
    down: Vec<bool>,
    paused: Vec<bool>,
}

fn draw_fault<S: System>(
    rng: &mut ChaCha8Rng,
    c: &Character,
    servers: u32,
    damageable: &[NodeIndex],
    st: &mut FaultState,
) -> Option<Action<S::ClientOp, S::Expect>> {
    let mut families = Vec::new();
    if c.network {
        families.push(0);
    }
    if c.process {
        families.push(1);
    }
    if c.power {
        families.push(2);
    }
    if c.disk && !damageable.is_empty() && !S::FILE_KINDS.is_empty() {
        families.push(3);
    }
    if c.clock {
        families.push(4);
    }
    if families.is_empty() {
        return None;
    }
    let node = rng.gen_range(0..servers);
    let other = (node + rng.gen_range(1..servers.max(2))) % servers;
    let action = match pick(rng, &families) {
        0 => match rng.gen_range(0..8) {
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
        },
        1 => {
            if st.paused[node as usize] {
                st.paused[node as usize] = false;
                Action::Resume { node }
            } else if st.down[node as usize] {
                st.down[node as usize] = false;
                Action::Restart { node }
            } else {
                match rng.gen_range(0..3) {
                    0 => {
                        st.down[node as usize] = true;
                        Action::Crash { node }
                    }
                    1 => {
                        st.paused[node as usize] = true;
                        Action::Pause { node }
                    }
                    _ => Action::Restart { node },
                }
            }
        }
        2 => {
            if st.down[node as usize] {
                st.down[node as usize] = false;
                Action::Restart { node }
            } else {
                st.down[node as usize] = true;
                st.paused[node as usize] = false;
                Action::PowerLoss { node, torn: rng.gen_bool(0.5) }
            }
        }
        3 => {
            let node = pick(rng, damageable);
            let kind = pick(rng, S::FILE_KINDS).to_string();
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
        _ => {
            if rng.gen_bool(0.5) {
                Action::ClockJump { node, by_ms: rng.gen_range(-30_000..=30_000) }
            } else {
                Action::ClockDrift { node, ppm: rng.gen_range(-5_000..=5_000) }
            }
        }
    };
    Some(action)
}
