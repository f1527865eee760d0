//! Leader-only bookkeeping of proposed-but-not-yet-applied assignments (spec §5). The
//! "applied or inflight" views, which read these maps together with the applied state, are in
//! the `view` module.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::entry::MetaEntry;
use super::group_names::NameCounts;
use super::model::{ConsumerAssignment, ConsumerKey, StreamAssignment, StreamKey};

// The switches used to live here; `meta::inflight::MetaBugs` still names them.
pub use super::bugs::MetaBugs;

/// One tracked key: outstanding proposals, and the latest proposal's intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InflightOp<T> {
    /// Proposals not yet applied; always ≥ 1 while tracked.
    pub ops: u32,
    /// The latest proposal deletes the asset.
    pub deleted: bool,
    /// The latest proposed assignment (latest wins).
    pub assignment: T,
    /// The latest proposal re-places a stream after a failed create: further results about
    /// it are ignored until it applies (NATS `reassigning`).
    pub reassigning: bool,
}

/// The inflight maps of §5. Empty on every server but the leader.
#[derive(Clone, Debug, Default)]
pub struct Inflight {
    streams: Tracked<StreamKey, StreamAssignment>,
    consumers: Tracked<ConsumerKey, ConsumerAssignment>,
    /// `bugs.no_inflight`: tracking is a no-op.
    disabled: bool,
}

/// One inflight map, with the keys written since it last passed [`Inflight::check`]. The
/// oracle checks the structure after every event, and a leader with thousands of creates in
/// flight walked them all each time. Every write goes through here and records the key it
/// wrote under, so an op filed under a wrong key is checked too.
///
/// It also counts the group names the ops' latest assignments use: a leader picks a fresh
/// group name for every create, and walking every op to see whether one took it cost a
/// create burst as much as the rest of its requests.
#[derive(Clone, Debug)]
struct Tracked<K, T> {
    ops: BTreeMap<K, InflightOp<T>>,
    unchecked: RefCell<BTreeSet<K>>,
    /// How many ops' latest assignments name each group.
    group_names: NameCounts,
}

/// An assignment's raft group name.
trait Grouped {
    fn group_name(&self) -> &str;
}

impl Grouped for StreamAssignment {
    fn group_name(&self) -> &str {
        &self.group.name
    }
}

impl Grouped for ConsumerAssignment {
    fn group_name(&self) -> &str {
        &self.group.name
    }
}

impl<K, T> Default for Tracked<K, T> {
    fn default() -> Self {
        Tracked { ops: BTreeMap::new(), unchecked: RefCell::new(BTreeSet::new()), group_names: NameCounts::default() }
    }
}

impl<K: Ord + Clone, T: Grouped> Tracked<K, T> {
    fn track(&mut self, key: K, assignment: T, deleted: bool) {
        self.unchecked.get_mut().insert(key.clone());
        self.group_names.add(assignment.group_name());
        match self.ops.get_mut(&key) {
            Some(op) => {
                assert!(op.ops >= 1, "a tracked key has outstanding proposals");
                op.ops = op.ops.checked_add(1).expect("inflight ops bounded by the proposal rate");
                op.deleted = deleted;
                let replaced = std::mem::replace(&mut op.assignment, assignment);
                op.reassigning = false;
                self.group_names.remove(replaced.group_name());
            }
            None => {
                self.ops.insert(key, InflightOp { ops: 1, deleted, assignment, reassigning: false });
            }
        }
    }

    fn untrack(&mut self, key: &K) {
        let Some(op) = self.ops.get_mut(key) else { return };
        self.unchecked.get_mut().insert(key.clone());
        assert!(op.ops >= 1, "a tracked key has outstanding proposals");
        op.ops -= 1;
        if op.ops == 0 {
            let op = self.ops.remove(key).expect("found above");
            self.group_names.remove(op.assignment.group_name());
        }
    }

    /// Whether an op's latest assignment names group `name`.
    fn names_group(&self, name: &str) -> bool {
        let named = self.group_names.contains(name);
        debug_assert_eq!(
            named,
            self.ops.values().any(|op| op.assignment.group_name() == name),
            "group names miscounted"
        );
        named
    }

    /// The op under `key`, to change in place (its flags: the assignment, and so its group
    /// name, is replaced only through [`Self::track`]).
    fn get_mut(&mut self, key: &K) -> Option<&mut InflightOp<T>> {
        let op = self.ops.get_mut(key)?;
        self.unchecked.get_mut().insert(key.clone());
        Some(op)
    }

    fn clear(&mut self) {
        self.ops.clear();
        self.unchecked.get_mut().clear();
        self.group_names.clear();
    }

    /// The first op written since the last pass for which `bad` holds, in key order. Ops not
    /// written since passed then and are the same now. A pass forgets the writes; a failure
    /// keeps them, so the next check finds the same op.
    fn first_bad(&self, bad: impl Fn(&K, &InflightOp<T>) -> bool) -> Option<(&K, &InflightOp<T>)> {
        let mut unchecked = self.unchecked.borrow_mut();
        let found = unchecked.iter().find_map(|key| self.ops.get_key_value(key).filter(|(key, op)| bad(key, op)));
        // An empty set's `clear` still drops a tree: it ran twice after every event.
        if found.is_none() && !unchecked.is_empty() {
            unchecked.clear();
        }
        found
    }
}

impl Inflight {
    /// Empty maps; tracking disabled under `bugs.no_inflight`.
    pub fn new(bugs: MetaBugs) -> Self {
        Inflight { disabled: bugs.no_inflight, ..Inflight::default() }
    }

    /// Record a successful stream proposal (create/update: `deleted = false`; delete: true).
    pub fn track_stream(&mut self, sa: &StreamAssignment, deleted: bool) {
        if self.disabled {
            return;
        }
        debug_assert!(sa.consumers.is_empty(), "proposed stream assignments carry no consumers");
        let key = sa.key();
        if deleted {
            // A stream delete takes its consumers with it, inflight ones included: otherwise a
            // consumer re-created on a new incarnation of the stream would reuse the raft group
            // of an inflight one whose files the delete removes on some members (found by
            // seed 666; NATS keeps such entries, see the notes). Their ops still drain on apply.
            let of_stream: Vec<ConsumerKey> = self.consumers_of(&key).map(|(k, _)| k.clone()).collect();
            for consumer in &of_stream {
                self.consumers.get_mut(consumer).expect("just listed").deleted = true;
            }
        }
        self.streams.track(key, sa.without_consumers(), deleted);
    }

    /// The stream's latest proposal re-places it (§2.7); call after proposing it.
    pub fn mark_reassigning(&mut self, key: &StreamKey) {
        if let Some(op) = self.streams.get_mut(key) {
            assert!(!op.deleted, "a re-placement's latest proposal adds the stream");
            op.reassigning = true;
        }
    }

    /// Record a successful consumer proposal.
    pub fn track_consumer(&mut self, ca: &ConsumerAssignment, deleted: bool) {
        if self.disabled {
            return;
        }
        self.consumers.track(ca.key(), ca.clone(), deleted);
    }

    /// Record whatever `entry` proposes; call only after the propose succeeded.
    pub fn track_entry(&mut self, entry: &MetaEntry) {
        match entry {
            MetaEntry::AssignStream { sa, .. } | MetaEntry::UpdateStream { sa, .. } => self.track_stream(sa, false),
            MetaEntry::RemoveStream { sa, .. } => self.track_stream(sa, true),
            MetaEntry::AssignConsumer { ca, .. } => self.track_consumer(ca, false),
            MetaEntry::RemoveConsumer { ca, .. } => self.track_consumer(ca, true),
        }
    }

    /// One stream proposal applied: decrement, dropping the key at zero. No-op on followers.
    pub fn remove_stream(&mut self, key: &StreamKey) {
        self.streams.untrack(key);
    }

    /// One consumer proposal applied. Called unconditionally, even when the parent stream is
    /// missing (the §5.5 leak fix).
    pub fn remove_consumer(&mut self, key: &ConsumerKey) {
        self.consumers.untrack(key);
    }

    /// Leadership changed (gained or lost): nothing inflight will be applied as tracked.
    pub fn clear(&mut self) {
        self.streams.clear();
        self.consumers.clear();
    }

    /// Whether the latest proposal of any tracked stream or consumer, a delete's included,
    /// names group `name`.
    pub fn names_group(&self, name: &str) -> bool {
        self.streams.names_group(name) || self.consumers.names_group(name)
    }

    /// Nothing tracked: true on followers, and on an idle leader (L4).
    pub fn is_empty(&self) -> bool {
        self.streams.ops.is_empty() && self.consumers.ops.is_empty()
    }

    /// The raw inflight entry of a stream, ignoring the applied state.
    pub fn stream(&self, key: &StreamKey) -> Option<&InflightOp<StreamAssignment>> {
        self.streams.ops.get(key)
    }

    /// The raw inflight entry of a consumer.
    pub fn consumer(&self, key: &ConsumerKey) -> Option<&InflightOp<ConsumerAssignment>> {
        self.consumers.ops.get(key)
    }

    /// All inflight stream entries, by key.
    pub fn streams(&self) -> impl Iterator<Item = (&StreamKey, &InflightOp<StreamAssignment>)> {
        self.streams.ops.iter()
    }

    /// All inflight consumer entries, by key.
    pub fn consumers(&self) -> impl Iterator<Item = (&ConsumerKey, &InflightOp<ConsumerAssignment>)> {
        self.consumers.ops.iter()
    }

    /// Spec S9's per-entry part: every entry has ops ≥ 1 and is keyed by its assignment.
    /// Only the entries written since the last pass are read (see [`Tracked`]).
    pub fn check(&self) -> Result<(), String> {
        let stream = self.streams.first_bad(|key, op| {
            let sa = &op.assignment;
            op.ops == 0 || sa.account != key.account || sa.name != key.name
        });
        if let Some((key, op)) = stream {
            return Err(format!("inflight stream {key}: ops {} for {}", op.ops, op.assignment.key()));
        }
        let consumer = self.consumers.first_bad(|key, op| {
            let ca = &op.assignment;
            op.ops == 0 || ca.account != key.account || ca.stream != key.stream || ca.name != key.name
        });
        if let Some((key, op)) = consumer {
            return Err(format!("inflight consumer {key}: ops {} for {}", op.ops, op.assignment.key()));
        }
        Ok(())
    }

    /// One account's tracked streams, by name: what the applied-or-inflight view lists.
    pub(super) fn streams_of<'a>(
        &'a self,
        account: &'a str,
    ) -> impl Iterator<Item = (&'a StreamKey, &'a InflightOp<StreamAssignment>)> + 'a {
        let from = StreamKey::new(account, "");
        self.streams.ops.range(from..).take_while(move |(k, _)| k.account == account)
    }

    /// One stream's tracked consumers, by name.
    pub(super) fn consumers_of<'a, 'k>(
        &'a self,
        stream: &'k StreamKey,
    ) -> impl Iterator<Item = (&'a ConsumerKey, &'a InflightOp<ConsumerAssignment>)> + 'k
    where
        'a: 'k,
    {
        let from = ConsumerKey::new(stream.account.clone(), stream.name.clone(), "");
        self.consumers
            .ops
            .range(from..)
            .take_while(move |(k, _)| k.account == stream.account && k.stream == stream.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::model::RaftGroup;

    fn stream(name: &str) -> StreamAssignment {
        StreamAssignment {
            account: "A".into(),
            name: name.into(),
            created_ms: 1,
            config_json: Vec::new(),
            group: RaftGroup { name: format!("S-R1-{name}"), peers: vec![0], preferred: Some(0), joiners: vec![] },
            sync: String::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The entries written since the last pass are checked again, wherever they were filed.
    #[test]
    fn a_write_makes_its_entry_checked_again() {
        let mut inflight = Inflight::default();
        for name in ["S1", "S2", "S3"] {
            inflight.track_stream(&stream(name), false);
        }
        assert_eq!(inflight.check(), Ok(()));
        assert!(inflight.streams.unchecked.borrow().is_empty(), "a pass forgets the writes");
        // What a faulty track_stream would leave: an op filed under another stream's key.
        inflight.streams.track(StreamKey::new("A", "X"), stream("S1"), false);
        let refused = inflight.check().expect_err("filed under the wrong key");
        assert!(refused.starts_with("inflight stream A:X: ops 1 for A:S1"), "{refused}");
        assert_eq!(inflight.check(), Err(refused), "a failure is found again");
        inflight.remove_stream(&StreamKey::new("A", "X"));
        assert_eq!(inflight.check(), Ok(()));
        // A faulty untrack that left an op of no proposals behind.
        inflight.streams.get_mut(&StreamKey::new("A", "S2")).expect("tracked").ops = 0;
        assert!(inflight.check().expect_err("no ops").starts_with("inflight stream A:S2: ops 0"));
        inflight.clear();
        assert_eq!(inflight.check(), Ok(()), "cleared");
        // Consumers the same way.
        let mut ca = ConsumerAssignment {
            account: "A".into(),
            stream: "S1".into(),
            name: "c".into(),
            created_ms: 1,
            config_json: Vec::new(),
            group: RaftGroup { name: "C-R1-c".into(), peers: vec![0], preferred: Some(0), joiners: vec![] },
        };
        inflight.track_consumer(&ca, false);
        assert_eq!(inflight.check(), Ok(()));
        ca.name = "d".into();
        inflight.consumers.track(ConsumerKey::new("A", "S1", "c"), ca, false);
        assert!(inflight.check().expect_err("wrong key").starts_with("inflight consumer A:S1:c"));
    }

    /// A group is named while some op's latest proposal names it, a delete's included: a
    /// proposal that regroups a stream frees the old name, and so does the last apply.
    #[test]
    fn a_group_is_named_while_a_latest_proposal_names_it() {
        let mut inflight = Inflight::default();
        let first = stream("S1");
        let mut regrouped = stream("S1");
        regrouped.group.name = "S-R1-again".into();
        inflight.track_stream(&first, false);
        assert!(inflight.names_group("S-R1-S1"));
        inflight.track_stream(&regrouped, false);
        assert!(!inflight.names_group("S-R1-S1"), "replaced by the latest proposal");
        assert!(inflight.names_group("S-R1-again"));
        inflight.track_stream(&regrouped, true);
        assert!(inflight.names_group("S-R1-again"), "a pending delete still names its group");
        inflight.remove_stream(&first.key());
        inflight.remove_stream(&first.key());
        assert!(inflight.names_group("S-R1-again"), "one proposal still outstanding");
        inflight.remove_stream(&first.key());
        assert!(!inflight.names_group("S-R1-again"), "the last apply drops the op");
        inflight.track_stream(&stream("S2"), false);
        inflight.clear();
        assert!(!inflight.names_group("S-R1-S2"), "cleared");
    }
}
