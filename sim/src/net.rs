//! The fault-injecting network model: pure data and decisions. The world asks it, for each
//! message, how many copies arrive and after how long; it knows nothing of payloads.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::math;

/// Node index inside a simulated cluster (0-based).
pub type NodeIndex = u32;

/// Latency, loss and duplication applied to every link without an override.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkProfile {
    /// Fixed part of one-way latency.
    #[serde(default = "default_latency_min_us")]
    pub latency_min_us: u64,
    /// Mean of the exponential part added to the minimum; spread makes messages reorder.
    #[serde(default = "default_latency_mean_us")]
    pub latency_mean_us: u64,
    /// Probability, in parts per million, that a message is lost.
    #[serde(default)]
    pub loss_ppm: u32,
    /// Probability, in parts per million, that a message is delivered twice.
    #[serde(default)]
    pub duplicate_ppm: u32,
}

fn default_latency_min_us() -> u64 {
    500
}
fn default_latency_mean_us() -> u64 {
    2_000
}

impl Default for LinkProfile {
    fn default() -> Self {
        LinkProfile {
            latency_min_us: default_latency_min_us(),
            latency_mean_us: default_latency_mean_us(),
            loss_ppm: 0,
            duplicate_ppm: 0,
        }
    }
}

/// One message's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped for the reason given.
    Dropped(DropReason),
    /// Delivered after `delay_ns`, and once more after `copy_ns` when duplicated.
    Deliver { delay_ns: u64, copy_ns: Option<u64> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    Partitioned,
    Lost,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Partitioned => "partitioned",
            DropReason::Lost => "lost",
        }
    }
}

/// A clogged link holds messages instead of dropping them; at most this many are held,
/// beyond which the oldest is dropped (a bounded queue, like a real socket buffer).
pub const HELD_MESSAGES_MAX: usize = 100_000;

/// Network state: the default link profile, per-link overrides, cuts and clogs.
#[derive(Clone, Debug, Default)]
pub struct Network {
    pub profile: LinkProfile,
    pub link_overrides: BTreeMap<(NodeIndex, NodeIndex), LinkProfile>,
    /// Directed links that drop everything (partitions).
    cut: BTreeSet<(NodeIndex, NodeIndex)>,
    /// Directed links that hold messages until unclogged.
    clogged_links: BTreeSet<(NodeIndex, NodeIndex)>,
    clogged_nodes: BTreeSet<NodeIndex>,
}

impl Network {
    pub fn new(profile: LinkProfile) -> Self {
        Network { profile, ..Default::default() }
    }

    /// Cut every link between different groups, both ways. Nodes in no group are untouched.
    pub fn partition(&mut self, groups: &[Vec<NodeIndex>]) {
        for (gi, a) in groups.iter().enumerate() {
            for (gj, b) in groups.iter().enumerate() {
                if gi == gj {
                    continue;
                }
                for &x in a {
                    for &y in b {
                        self.cut.insert((x, y));
                    }
                }
            }
        }
    }

    /// Cut the links from every node of `from` to every node of `to`, one way only.
    pub fn partition_one_way(&mut self, from: &[NodeIndex], to: &[NodeIndex]) {
        for &x in from {
            for &y in to {
                if x != y {
                    self.cut.insert((x, y));
                }
            }
        }
    }

    /// Cut `node` off from every other node of a cluster of `servers`, both ways.
    pub fn isolate(&mut self, node: NodeIndex, servers: u32) {
        for other in (0..servers).filter(|&o| o != node) {
            self.cut.insert((node, other));
            self.cut.insert((other, node));
        }
    }

    pub fn heal_partitions(&mut self) {
        self.cut.clear();
    }

    pub fn clog_link(&mut self, from: NodeIndex, to: NodeIndex) {
        self.clogged_links.insert((from, to));
    }

    pub fn unclog_link(&mut self, from: NodeIndex, to: NodeIndex) {
        self.clogged_links.remove(&(from, to));
    }

    pub fn clog_node(&mut self, node: NodeIndex) {
        self.clogged_nodes.insert(node);
    }

    pub fn unclog_node(&mut self, node: NodeIndex) {
        self.clogged_nodes.remove(&node);
    }

    pub fn unclog_all(&mut self) {
        self.clogged_links.clear();
        self.clogged_nodes.clear();
    }

    pub fn is_cut(&self, from: NodeIndex, to: NodeIndex) -> bool {
        self.cut.contains(&(from, to))
    }

    pub fn is_clogged(&self, from: NodeIndex, to: NodeIndex) -> bool {
        self.clogged_links.contains(&(from, to))
            || self.clogged_nodes.contains(&from)
            || self.clogged_nodes.contains(&to)
    }

    fn link(&self, from: NodeIndex, to: NodeIndex) -> &LinkProfile {
        self.link_overrides.get(&(from, to)).unwrap_or(&self.profile)
    }

    /// One-way latency of a message on this link, in nanoseconds.
    pub fn latency_ns(&self, from: NodeIndex, to: NodeIndex, rng: &mut impl Rng) -> u64 {
        latency_from_draw_ns(self.link(from, to), rng.gen::<f64>())
    }

    /// Decide what happens to a message sent now from `from` to `to`. Loss, duplication and
    /// both copies' latencies are drawn even when the answer is already known, so that a
    /// partition does not shift every later random choice of the run; a latency nobody uses
    /// is drawn but not worked out.
    pub fn fate(&self, from: NodeIndex, to: NodeIndex, rng: &mut impl Rng) -> Fate {
        let link = *self.link(from, to);
        let lost = rng.gen_range(0..1_000_000) < link.loss_ppm;
        let duplicated = rng.gen_range(0..1_000_000) < link.duplicate_ppm;
        let first_draw = rng.gen::<f64>();
        let copy_draw = rng.gen::<f64>();
        if self.is_cut(from, to) {
            return Fate::Dropped(DropReason::Partitioned);
        }
        if lost {
            return Fate::Dropped(DropReason::Lost);
        }
        Fate::Deliver {
            delay_ns: latency_from_draw_ns(&link, first_draw),
            copy_ns: duplicated.then(|| latency_from_draw_ns(&link, copy_draw)),
        }
    }
}

/// A latency on `link` from a uniform draw in [0, 1): the floor plus an exponential tail,
/// bounded so a pathological draw cannot push delivery past any sane horizon.
pub fn latency_from_draw_ns(link: &LinkProfile, draw: f64) -> u64 {
    let mean_us = link.latency_mean_us as f64;
    let extra_us = math::exponential_whole(mean_us, draw, mean_us * 50.0);
    (link.latency_min_us + extra_us) * 1_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn symmetric_partition_cuts_both_ways_only_across_groups() {
        let mut net = Network::default();
        net.partition(&[vec![0, 1], vec![2]]);
        assert!(net.is_cut(0, 2) && net.is_cut(2, 0) && net.is_cut(1, 2));
        assert!(!net.is_cut(0, 1) && !net.is_cut(1, 0));
        net.heal_partitions();
        assert!(!net.is_cut(0, 2));
    }

    #[test]
    fn one_way_partition_cuts_one_direction() {
        let mut net = Network::default();
        net.partition_one_way(&[0], &[1]);
        assert!(net.is_cut(0, 1));
        assert!(!net.is_cut(1, 0));
    }

    #[test]
    fn loss_and_duplication_rates_are_honoured() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let net = Network::new(LinkProfile { loss_ppm: 100_000, duplicate_ppm: 200_000, ..Default::default() });
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..10_000 {
            match net.fate(0, 1, &mut rng) {
                Fate::Dropped(DropReason::Lost) => lost += 1,
                Fate::Deliver { copy_ns: Some(_), .. } => dup += 1,
                _ => {}
            }
        }
        assert!((800..1200).contains(&lost), "lost {lost}");
        assert!((1500..2100).contains(&dup), "dup {dup}");
    }

    #[test]
    fn latency_has_a_floor_and_a_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let net = Network::new(LinkProfile { latency_min_us: 1_000, latency_mean_us: 4_000, ..Default::default() });
        let samples: Vec<u64> = (0..1000).map(|_| net.latency_ns(0, 1, &mut rng)).collect();
        assert!(samples.iter().all(|&s| s >= 1_000_000));
        let distinct: BTreeSet<u64> = samples.iter().copied().collect();
        assert!(distinct.len() > 900, "latencies must spread so messages reorder");
    }
}
