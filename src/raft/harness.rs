//! Test harness: a tiny in-memory cluster. Each node has a "disk" (what its Ready batches
//! persisted) and an "app" (what was handed up). Delivery order, drops and partitions come
//! from one seeded ChaCha8 RNG; every node has its own seeded RNG for election timeouts.
//! Safety is checked as the run goes: one leader per term, and every committed or applied
//! entry at an index is the same on every node. Violations are recorded, not panicked, so
//! negative tests (deliberate bugs) can assert that they happen.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    Applied, Config, Entry, EntryData, HardState, Index, Message, PeerId, RaftNode, Ready, Role, Signal, Snapshot,
    Stamp, Term,
};

/// Simulated tick period and per-round message latency.
pub const TICK_MS: u64 = 100;

/// What survived on a node's disk: exactly what its Ready batches asked to persist.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

impl Disk {
    pub fn last_index(&self) -> Index {
        self.entries.last().map(|e| e.index).or(self.snapshot.as_ref().map(|s| s.last_index)).unwrap_or(0)
    }

    pub fn persist(&mut self, ready: &Ready) {
        if let Some(hard) = ready.hard_state {
            self.hard = hard;
        }
        // The documented order: snapshot, truncation, then contiguous appends.
        if let Some(snapshot) = &ready.snapshot {
            self.entries.retain(|e| e.index > snapshot.last_index);
            self.snapshot = Some(snapshot.clone());
        }
        if let Some(from) = ready.truncate_from {
            self.entries.retain(|e| e.index < from);
        }
        for entry in &ready.entries {
            let expected = self.last_index() + 1;
            assert_eq!(entry.index, expected, "disk append not contiguous");
            self.entries.push(entry.clone());
        }
    }
}

/// The upper layer: the full history of applied entries (a snapshot carries it encoded).
#[derive(Clone, Debug, Default)]
pub struct App {
    pub history: Vec<Entry>,
    pub signals: Vec<Signal>,
    /// Every item handed up, in order (for ordering assertions).
    pub stream: Vec<Applied>,
}

impl App {
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(&self.history).expect("encode app state")
    }

    pub fn applied_index(&self) -> Index {
        self.history.last().map_or(0, |e| e.index)
    }
}

pub struct Cluster {
    pub nodes: Vec<RaftNode>,
    pub configs: Vec<Config>,
    pub initial_peers: Vec<PeerId>,
    pub disks: Vec<Disk>,
    pub apps: Vec<App>,
    /// In flight: (from, to, message).
    pub queue: Vec<(PeerId, PeerId, Message)>,
    pub now_ms: u64,
    pub net_rng: ChaCha8Rng,
    pub node_rngs: Vec<ChaCha8Rng>,
    pub down: BTreeSet<PeerId>,
    /// Directed links that drop everything.
    pub cut: BTreeSet<(PeerId, PeerId)>,
    pub drop_per_mille: u32,
    /// Nodes whose handed-up items are held back from the app (apply-barrier tests).
    pub hold_apply: BTreeSet<PeerId>,
    pub held: BTreeMap<PeerId, Vec<Applied>>,
    pub leaders: BTreeMap<Term, PeerId>,
    pub committed: BTreeMap<Index, Entry>,
    pub violations: Vec<String>,
    /// Per node: committed entries up to here were already checked against `committed`.
    pub checked: Vec<Index>,
    /// Per node: its change stamp and what the stamp covers, when last checked.
    pub stamped: Vec<Option<(Stamp, Covered)>>,
}

/// What [`RaftNode::stamp`] covers.
type Covered = ((Term, Role, bool, Index, Index), (Index, Term, Index, Vec<PeerId>), (bool, usize, usize, usize));

fn covered(node: &RaftNode) -> Covered {
    (
        (node.term(), node.role(), node.leader(), node.commit_index(), node.applied_index()),
        (node.last_index(), node.last_term(), node.snapshot_index(), node.peers().to_vec()),
        (node.may_campaign(), node.election_votes_needed(), node.quorum_size(), node.cluster_size()),
    )
}

impl Cluster {
    /// `n` nodes with ids 0..n, all members. `tweak` adjusts each node's config.
    pub fn new(n: u32, seed: u64, tweak: impl Fn(&mut Config)) -> Self {
        Cluster::with_members(n, (0..n).collect(), seed, tweak)
    }

    /// `n` nodes with ids 0..n; the group starts with `members` (others are spares that
    /// know the membership but are not in it, so they never campaign until added).
    pub fn with_members(n: u32, members: Vec<PeerId>, seed: u64, tweak: impl Fn(&mut Config)) -> Self {
        let initial_peers = members;
        let mut node_rngs: Vec<ChaCha8Rng> =
            (0..n).map(|id| ChaCha8Rng::seed_from_u64(seed ^ (u64::from(id) + 1) << 32)).collect();
        let configs: Vec<Config> = (0..n)
            .map(|id| {
                let mut config = Config { id, ..Config::default() };
                tweak(&mut config);
                config
            })
            .collect();
        let nodes = (0..n as usize)
            .map(|i| RaftNode::new(configs[i].clone(), initial_peers.clone(), 0, &mut node_rngs[i]))
            .collect();
        let mut cluster = Cluster {
            nodes,
            configs,
            initial_peers,
            disks: vec![Disk::default(); n as usize],
            apps: vec![App::default(); n as usize],
            queue: Vec::new(),
            now_ms: 0,
            net_rng: ChaCha8Rng::seed_from_u64(seed),
            node_rngs,
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            drop_per_mille: 0,
            hold_apply: BTreeSet::new(),
            held: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            violations: Vec::new(),
            checked: vec![0; n as usize],
            stamped: vec![None; n as usize],
        };
        for id in 0..n {
            cluster.process(id);
        }
        cluster
    }

    pub fn node(&self, id: PeerId) -> &RaftNode {
        &self.nodes[id as usize]
    }

    pub fn ids(&self) -> Vec<PeerId> {
        (0..self.nodes.len() as PeerId).collect()
    }

    /// Drains every Ready of `id`: persist, queue messages, hand up (unless held), check.
    pub fn process(&mut self, id: PeerId) {
        let i = id as usize;
        // Bounded: each round persists or hands up something; a node settles in a few rounds.
        for _ in 0..64 {
            if !self.nodes[i].has_ready() {
                break;
            }
            let ready = self.nodes[i].ready();
            // Nothing is handed up beyond what an earlier Ready made durable.
            let durable_last = self.disks[i].last_index();
            for item in &ready.applied {
                if let Applied::Entry(entry) = item {
                    assert!(entry.index <= durable_last, "node {id}: applied {} not durable", entry.index);
                }
            }
            self.disks[i].persist(&ready);
            assert!(self.disks[i].hard.commit <= self.disks[i].last_index(), "durable commit past log");
            for (to, msg) in ready.messages {
                self.queue.push((id, to, msg));
            }
            if self.hold_apply.contains(&id) {
                self.held.entry(id).or_default().extend(ready.applied);
            } else {
                for item in ready.applied {
                    self.hand_to_app(id, item);
                }
            }
        }
        self.check_node(id);
    }

    /// Gives `id` the items held back by `hold_apply`, then keeps processing.
    pub fn release_apply(&mut self, id: PeerId) {
        self.hold_apply.remove(&id);
        let held = self.held.remove(&id).unwrap_or_default();
        for item in held {
            self.hand_to_app(id, item);
        }
        self.process(id);
    }

    fn hand_to_app(&mut self, id: PeerId, item: Applied) {
        let i = id as usize;
        self.apps[i].stream.push(item.clone());
        match item {
            Applied::Entry(entry) => {
                assert_eq!(entry.index, self.apps[i].applied_index() + 1, "node {id}: gap in apply");
                self.record_committed(id, &entry);
                let index = entry.index;
                self.apps[i].history.push(entry);
                self.nodes[i].applied_to(index);
            }
            Applied::Snapshot(snapshot) => {
                let history: Vec<Entry> = bincode::deserialize(&snapshot.data).expect("decode");
                for entry in &history {
                    self.record_committed(id, entry);
                }
                self.apps[i].history = history;
                assert_eq!(self.apps[i].applied_index(), snapshot.last_index);
                self.nodes[i].applied_to(snapshot.last_index);
            }
            Applied::Signal(signal) => self.apps[i].signals.push(signal),
        }
    }

    fn record_committed(&mut self, id: PeerId, entry: &Entry) {
        match self.committed.get(&entry.index) {
            Some(known) if known != entry => self
                .violations
                .push(format!("node {id}: committed entry {} is {:?}, elsewhere {:?}", entry.index, entry, known)),
            Some(_) => {}
            None => {
                self.committed.insert(entry.index, entry.clone());
            }
        }
    }

    /// One leader per term; committed entries agree with what was seen committed anywhere.
    fn check_node(&mut self, id: PeerId) {
        let node = &self.nodes[id as usize];
        let now = (node.stamp(), covered(node));
        if let Some((stamp, before)) = &self.stamped[id as usize] {
            assert!(*stamp != now.0 || *before == now.1, "node {id}: {before:?} -> {:?} under one stamp", now.1);
        }
        self.stamped[id as usize] = Some(now);
        assert!(node.applied_index() <= node.commit_index());
        assert!(node.commit_index() <= node.last_index());
        if node.role() == Role::Leader {
            let term = node.term();
            match self.leaders.get(&term) {
                Some(other) if *other != id => {
                    self.violations.push(format!("two leaders in term {term}: {other} and {id}"))
                }
                _ => {
                    self.leaders.insert(term, id);
                }
            }
        }
        let from = self.checked[id as usize] + 1;
        let entries = self.nodes[id as usize].committed_entries(from);
        for entry in &entries {
            self.record_committed(id, entry);
        }
        self.checked[id as usize] = self.nodes[id as usize].commit_index();
    }

    /// Delivers everything queued, in a seeded random order, with drops and partitions.
    /// Messages produced meanwhile wait for the next round.
    pub fn deliver_round(&mut self) {
        let mut batch = std::mem::take(&mut self.queue);
        batch.shuffle(&mut self.net_rng);
        for (from, to, msg) in batch {
            if self.is_blocked(from, to) {
                continue;
            }
            if self.drop_per_mille > 0 && self.net_rng.gen_range(0..1000) < self.drop_per_mille {
                continue;
            }
            self.deliver(from, to, msg);
        }
    }

    pub fn is_blocked(&self, from: PeerId, to: PeerId) -> bool {
        self.down.contains(&from) || self.down.contains(&to) || self.cut.contains(&(from, to))
    }

    pub fn deliver(&mut self, from: PeerId, to: PeerId, msg: Message) {
        let i = to as usize;
        self.nodes[i].step(self.now_ms, from, msg, &mut self.node_rngs[i]);
        self.process(to);
    }

    /// Delivers queued messages accepted by `keep` (in queue order) until none is left;
    /// rejected ones are dropped. Bounded rounds.
    pub fn deliver_only(&mut self, keep: impl Fn(PeerId, PeerId, &Message) -> bool) {
        for _ in 0..200 {
            let batch = std::mem::take(&mut self.queue);
            if batch.is_empty() {
                return;
            }
            for (from, to, msg) in batch {
                if !self.is_blocked(from, to) && keep(from, to, &msg) {
                    self.deliver(from, to, msg);
                }
            }
        }
        panic!("deliver_only did not settle");
    }

    pub fn tick_all(&mut self) {
        for id in self.ids() {
            if self.down.contains(&id) {
                continue;
            }
            let i = id as usize;
            self.nodes[i].tick(self.now_ms, &mut self.node_rngs[i]);
            self.process(id);
        }
    }

    /// Advances time in ticks; two delivery rounds per tick.
    pub fn run_for(&mut self, duration_ms: u64) {
        let end = self.now_ms + duration_ms;
        while self.now_ms < end {
            self.now_ms += TICK_MS;
            self.tick_all();
            self.deliver_round();
            self.deliver_round();
        }
    }

    pub fn crash(&mut self, id: PeerId) {
        self.down.insert(id);
        self.held.remove(&id);
        self.hold_apply.remove(&id);
    }

    /// Rebuilds `id` from its disk; the app starts empty and is fed the replay.
    pub fn restart(&mut self, id: PeerId) {
        let i = id as usize;
        let disk = self.disks[i].clone();
        let node = RaftNode::restore(
            self.configs[i].clone(),
            self.initial_peers.clone(),
            disk.hard,
            disk.snapshot,
            disk.entries,
            self.now_ms,
            &mut self.node_rngs[i],
        )
        .expect("restore from own disk");
        self.nodes[i] = node;
        self.apps[i] = App::default();
        self.checked[i] = 0;
        self.down.remove(&id);
        self.process(id);
    }

    /// Ticks one node now.
    pub fn tick(&mut self, id: PeerId) {
        let i = id as usize;
        self.nodes[i].tick(self.now_ms, &mut self.node_rngs[i]);
        self.process(id);
    }

    /// Compacts `id` at its applied index when at least `threshold` entries were applied
    /// since its snapshot.
    pub fn maybe_compact(&mut self, id: PeerId, threshold: Index) {
        let i = id as usize;
        let applied = self.nodes[i].applied_index();
        if applied >= self.nodes[i].snapshot_index() + threshold && !self.held.contains_key(&id) {
            assert_eq!(self.apps[i].applied_index(), applied);
            let data = self.apps[i].encode();
            self.nodes[i].compact(applied, data).expect("compact at applied");
            self.process(id);
        }
    }

    /// The live node that passed its apply barrier in the highest term, if any.
    pub fn leader(&self) -> Option<PeerId> {
        self.ids()
            .into_iter()
            .filter(|id| !self.down.contains(id) && self.node(*id).leader())
            .max_by_key(|id| self.node(*id).term())
    }

    /// Runs until some node is leader (barrier passed); panics after `limit_ms`.
    pub fn await_leader(&mut self, limit_ms: u64) -> PeerId {
        let end = self.now_ms + limit_ms;
        while self.now_ms < end {
            if let Some(id) = self.leader() {
                return id;
            }
            self.run_for(TICK_MS);
        }
        panic!("no leader within {limit_ms} ms (now {})", self.now_ms);
    }

    pub fn propose(&mut self, id: PeerId, data: EntryData) -> Result<Index, super::ProposeError> {
        let i = id as usize;
        let term = self.nodes[i].term();
        let result = self.nodes[i].propose(self.now_ms, term, data);
        self.process(id);
        result
    }

    /// Forces an election at `id` now and processes its output.
    pub fn campaign(&mut self, id: PeerId) {
        let i = id as usize;
        self.nodes[i].campaign(self.now_ms, &mut self.node_rngs[i]);
        self.process(id);
    }

    /// Isolates `id` from everyone (both directions).
    pub fn isolate(&mut self, id: PeerId) {
        for other in self.ids() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }
}
