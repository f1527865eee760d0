//! Leader-only bookkeeping of proposed-but-not-yet-applied assignments (spec §5). The
//! "applied or inflight" views, which read these maps together with the applied state, are in
//! the `view` module.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::entry::MetaEntry;
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
    streams: BTreeMap<StreamKey, InflightOp<StreamAssignment>>,
    consumers: BTreeMap<ConsumerKey, InflightOp<ConsumerAssignment>>,
    /// `bugs.no_inflight`: tracking is a no-op.
    disabled: bool,
    /// The maps passed [`Inflight::check`] and have not changed since. The oracle checks the
    /// structure after every event, and a leader with thousands of creates in flight walked
    /// them all each time; every `&mut self` method clears it.
    checked: Cell<bool>,
}

fn track<K: Ord, T>(map: &mut BTreeMap<K, InflightOp<T>>, key: K, assignment: T, deleted: bool) {
    match map.get_mut(&key) {
        Some(op) => {
            assert!(op.ops >= 1, "a tracked key has outstanding proposals");
            op.ops = op.ops.checked_add(1).expect("inflight ops bounded by the proposal rate");
            op.deleted = deleted;
            op.assignment = assignment;
            op.reassigning = false;
        }
        None => {
            map.insert(key, InflightOp { ops: 1, deleted, assignment, reassigning: false });
        }
    }
}

fn untrack<K: Ord, T>(map: &mut BTreeMap<K, InflightOp<T>>, key: &K) {
    if let Some(op) = map.get_mut(key) {
        assert!(op.ops >= 1, "a tracked key has outstanding proposals");
        op.ops -= 1;
        if op.ops == 0 {
            map.remove(key);
        }
    }
}

impl Inflight {
    /// Empty maps; tracking disabled under `bugs.no_inflight`.
    pub fn new(bugs: MetaBugs) -> Self {
        Inflight { disabled: bugs.no_inflight, ..Inflight::default() }
    }

    /// Record a successful stream proposal (create/update: `deleted = false`; delete: true).
    pub fn track_stream(&mut self, sa: &StreamAssignment, deleted: bool) {
        self.checked.set(false);
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
            for (_, op) in self.consumers.iter_mut().filter(|(k, _)| k.account == key.account && k.stream == key.name) {
                op.deleted = true;
            }
        }
        track(&mut self.streams, key, sa.without_consumers(), deleted);
    }

    /// The stream's latest proposal re-places it (§2.7); call after proposing it.
    pub fn mark_reassigning(&mut self, key: &StreamKey) {
        self.checked.set(false);
        if let Some(op) = self.streams.get_mut(key) {
            assert!(!op.deleted, "a re-placement's latest proposal adds the stream");
            op.reassigning = true;
        }
    }

    /// Record a successful consumer proposal.
    pub fn track_consumer(&mut self, ca: &ConsumerAssignment, deleted: bool) {
        self.checked.set(false);
        if self.disabled {
            return;
        }
        track(&mut self.consumers, ca.key(), ca.clone(), deleted);
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
        self.checked.set(false);
        untrack(&mut self.streams, key);
    }

    /// One consumer proposal applied. Called unconditionally, even when the parent stream is
    /// missing (the §5.5 leak fix).
    pub fn remove_consumer(&mut self, key: &ConsumerKey) {
        self.checked.set(false);
        untrack(&mut self.consumers, key);
    }

    /// Leadership changed (gained or lost): nothing inflight will be applied as tracked.
    pub fn clear(&mut self) {
        self.checked.set(false);
        self.streams.clear();
        self.consumers.clear();
    }

    /// Nothing tracked: true on followers, and on an idle leader (L4).
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.consumers.is_empty()
    }

    /// The raw inflight entry of a stream, ignoring the applied state.
    pub fn stream(&self, key: &StreamKey) -> Option<&InflightOp<StreamAssignment>> {
        self.streams.get(key)
    }

    /// The raw inflight entry of a consumer.
    pub fn consumer(&self, key: &ConsumerKey) -> Option<&InflightOp<ConsumerAssignment>> {
        self.consumers.get(key)
    }

    /// All inflight stream entries, by key.
    pub fn streams(&self) -> impl Iterator<Item = (&StreamKey, &InflightOp<StreamAssignment>)> {
        self.streams.iter()
    }

    /// All inflight consumer entries, by key.
    pub fn consumers(&self) -> impl Iterator<Item = (&ConsumerKey, &InflightOp<ConsumerAssignment>)> {
        self.consumers.iter()
    }

    /// Spec S9's per-entry part: every entry has ops ≥ 1 and is keyed by its assignment.
    pub fn check(&self) -> Result<(), String> {
        if self.checked.get() {
            return Ok(());
        }
        for (key, op) in &self.streams {
            let sa = &op.assignment;
            if op.ops == 0 || sa.account != key.account || sa.name != key.name {
                return Err(format!("inflight stream {key}: ops {} for {}", op.ops, sa.key()));
            }
        }
        for (key, op) in &self.consumers {
            let ca = &op.assignment;
            if op.ops == 0 || ca.account != key.account || ca.stream != key.stream || ca.name != key.name {
                return Err(format!("inflight consumer {key}: ops {} for {}", op.ops, ca.key()));
            }
        }
        self.checked.set(true);
        Ok(())
    }

    /// One account's tracked streams, by name: what the applied-or-inflight view lists.
    pub(super) fn streams_of<'a>(
        &'a self,
        account: &'a str,
    ) -> impl Iterator<Item = (&'a StreamKey, &'a InflightOp<StreamAssignment>)> + 'a {
        let from = StreamKey::new(account, "");
        self.streams.range(from..).take_while(move |(k, _)| k.account == account)
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
        self.consumers.range(from..).take_while(move |(k, _)| k.account == stream.account && k.stream == stream.name)
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

    /// The structure is walked again after any change: a passing check is remembered only
    /// until the next `&mut self` call.
    #[test]
    fn a_change_makes_the_structure_checked_again() {
        let mut inflight = Inflight::default();
        inflight.track_stream(&stream("S1"), false);
        assert_eq!(inflight.check(), Ok(()));
        // What a faulty track would leave: an op filed under another stream's key.
        let wrong = InflightOp { ops: 1, deleted: false, assignment: stream("S1"), reassigning: false };
        inflight.streams.insert(StreamKey::new("A", "X"), wrong);
        inflight.track_stream(&stream("S2"), false);
        let refused = inflight.check().expect_err("filed under the wrong key");
        assert!(refused.starts_with("inflight stream A:X: ops 1 for A:S1"), "{refused}");
        inflight.streams.remove(&StreamKey::new("A", "X"));
        inflight.remove_stream(&StreamKey::new("A", "S2"));
        assert_eq!(inflight.check(), Ok(()));
        let zero = InflightOp { ops: 0, deleted: false, assignment: stream("S3"), reassigning: false };
        inflight.streams.insert(StreamKey::new("A", "S3"), zero);
        inflight.clear();
        assert_eq!(inflight.check(), Ok(()), "cleared");
    }
}
