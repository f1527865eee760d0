//! Leader-only bookkeeping of proposed-but-not-yet-applied assignments (spec §5), and the
//! "applied or inflight" views the request handler validates against, so concurrent requests
//! see each other before their entries apply.

use std::collections::BTreeMap;

use super::entry::MetaEntry;
use super::model::{ConsumerAssignment, ConsumerKey, StreamAssignment, StreamKey};
use super::state::MetaState;

/// Bug switches of the meta layer, each re-opening a historic hazard for the simulator to find.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaBugs {
    /// `meta-no-inflight`: nothing is tracked, so concurrent creates each get a group (#3679).
    pub no_inflight: bool,
    /// `meta-limits-ignore-inflight`: limit checks count applied assets only (#3615).
    pub limits_ignore_inflight: bool,
    /// The driver signals meta leadership before the apply barrier; carried, not used here.
    pub leader_before_barrier: bool,
    /// `meta-reassign-repeated`: every assignment result re-places the stream, even while an
    /// earlier re-placement is inflight (PR #6121: one stream hopping from group to group).
    pub reassign_repeated: bool,
    /// `recovery-keep-consumer-on-stream-remove`: a staged stream removal leaves that stream's
    /// staged consumer ops in place, so a recreated stream gets the old consumer (PR #6066).
    pub recovery_keep_consumer_on_stream_remove: bool,
    /// `recovery-snapshot-no-reconcile`: a snapshot staged during recovery does not drop the
    /// staged ops it supersedes, so deleted assets come back (PR #8324).
    pub recovery_snapshot_no_reconcile: bool,
    /// `snapshot-includes-inflight`: the leader's meta snapshot carries its inflight streams.
    pub snapshot_includes_inflight: bool,
    /// `orphan-check-before-sync`: the orphan check runs without its preconditions (a known
    /// leader, healthy), judging orphans against a stale state (PR #5767).
    pub orphan_check_before_sync: bool,
    /// `orphan-check-deletes-direct-consumers`: orphans are judged among all of a stream's
    /// consumers, so the direct consumer a mirror created on its origin (never assigned by
    /// the meta layer) is deleted as one (NATS judges public consumers only, §11 #26).
    pub orphan_check_deletes_direct_consumers: bool,
    /// `peer-remove-reply-early`: the leader answers a peer removal as soon as it proposes
    /// it, before any quorum applied it (S17; NATS test MetaPeerRemoveResponseAfterQuorum).
    pub peer_remove_reply_early: bool,
}

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inflight {
    streams: BTreeMap<StreamKey, InflightOp<StreamAssignment>>,
    consumers: BTreeMap<ConsumerKey, InflightOp<ConsumerAssignment>>,
    /// `bugs.no_inflight`: tracking is a no-op.
    disabled: bool,
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
        untrack(&mut self.streams, key);
    }

    /// One consumer proposal applied. Called unconditionally, even when the parent stream is
    /// missing (the §5.5 leak fix).
    pub fn remove_consumer(&mut self, key: &ConsumerKey) {
        untrack(&mut self.consumers, key);
    }

    /// Leadership changed (gained or lost): nothing inflight will be applied as tracked.
    pub fn clear(&mut self) {
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
        for (key, op) in &self.streams {
            if op.ops == 0 || op.assignment.key() != *key {
                return Err(format!("inflight stream {key}: ops {} for {}", op.ops, op.assignment.key()));
            }
        }
        for (key, op) in &self.consumers {
            if op.ops == 0 || op.assignment.key() != *key {
                return Err(format!("inflight consumer {key}: ops {} for {}", op.ops, op.assignment.key()));
            }
        }
        Ok(())
    }

    /// Inflight wins: a live proposal's assignment, `None` for a pending delete, else applied.
    pub fn stream_or_inflight<'a>(&'a self, state: &'a MetaState, key: &StreamKey) -> Option<&'a StreamAssignment> {
        match self.streams.get(key) {
            Some(op) if op.deleted => None,
            Some(op) => Some(&op.assignment),
            None => state.stream(key),
        }
    }

    /// An account's streams: live inflight ones, then applied ones no inflight entry shadows.
    pub fn streams_or_inflight<'a>(&'a self, state: &'a MetaState, account: &'a str) -> Vec<&'a StreamAssignment> {
        let from = StreamKey::new(account, "");
        let inflight = self.streams.range(from..).take_while(|(k, _)| k.account == account);
        let mut out: Vec<&StreamAssignment> =
            inflight.filter(|(_, op)| !op.deleted).map(|(_, op)| &op.assignment).collect();
        out.extend(state.streams_of(account).filter(|sa| !self.streams.contains_key(&sa.key())));
        out
    }

    /// Inflight wins, as for streams.
    pub fn consumer_or_inflight<'a>(
        &'a self,
        state: &'a MetaState,
        key: &ConsumerKey,
    ) -> Option<&'a ConsumerAssignment> {
        match self.consumers.get(key) {
            Some(op) if op.deleted => None,
            Some(op) => Some(&op.assignment),
            None if self.hides_applied_consumers(state, &key.stream_key()) => None,
            None => state.consumer(key),
        }
    }

    /// An inflight delete or re-create of a stream hides the applied consumers of the old
    /// incarnation: a consumer made for the new one must not reuse their groups, whose files
    /// the delete removes (found by seeds 666 and 3033; NATS reads them, see the notes).
    fn hides_applied_consumers(&self, state: &MetaState, stream: &StreamKey) -> bool {
        let Some(op) = self.streams.get(stream) else { return false };
        op.deleted || state.stream(stream).is_some_and(|sa| sa.group.name != op.assignment.group.name)
    }

    /// A stream's consumers: live inflight ones (even when the stream itself is only inflight),
    /// then the applied stream's consumers no inflight entry shadows.
    pub fn consumers_or_inflight<'a>(
        &'a self,
        state: &'a MetaState,
        stream: &StreamKey,
    ) -> Vec<&'a ConsumerAssignment> {
        let from = ConsumerKey::new(stream.account.clone(), stream.name.clone(), "");
        let inflight =
            self.consumers.range(from..).take_while(|(k, _)| k.account == stream.account && k.stream == stream.name);
        let mut out: Vec<&ConsumerAssignment> =
            inflight.filter(|(_, op)| !op.deleted).map(|(_, op)| &op.assignment).collect();
        if let Some(sa) = state.stream(stream).filter(|_| !self.hides_applied_consumers(state, stream)) {
            out.extend(sa.consumers.values().filter(|ca| !self.consumers.contains_key(&ca.key())));
        }
        out
    }
}
