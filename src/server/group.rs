//! One raft group on one server: the sans-IO node, its persist pipeline, its applied-state
//! chain, and what it hands up (to the meta layer for the meta group, to publishers for a
//! stream's group).
//!
//! A `Ready` goes to disk through the [`Pipeline`]; only once it is durable are its messages
//! sent and its committed entries applied ([`super::apply`]). The next `Ready` is taken only
//! after that, so an entry is never counted, acknowledged or applied before it is on the
//! platter. Inputs arriving meanwhile are stepped into the node at once; their effects wait in
//! the node for the next `Ready`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sim::NodeIndex;

use super::applied::AppliedLog;
use super::env::ServerEnv;
use super::jetstream::{MetaLayer, MetaSnapshot};
use super::observe::Observation;
use super::persist::Pipeline;
use super::storage::{GroupFiles, InitialMembership};
use super::wire::ServerMsg;
use crate::meta::StreamKey;
use crate::raft::{EntryData, Index, Message, ProposeError, RaftNode, Role, Term};

pub use super::persist::Tokens;

pub struct Group {
    pub name: String,
    /// The name again, shared by every raft message the group sends (one per heartbeat of
    /// thousands of groups): a count bumped, not a string copied.
    wire_name: Arc<str>,
    /// The number its [`super::group_set::GroupSet`] gave it, unique within that set: the
    /// checks find what they remember of the group by it, without comparing names.
    slot: u32,
    pub node: RaftNode,
    pub applied: AppliedLog,
    pub(super) pipeline: Pipeline,
    /// The upper layer's view: a `BecameLeader` arrived and no `SteppedDown` since.
    pub is_leader: bool,
    /// Replay after start finished.
    pub replay_done: bool,
    pub snapshots_installed: u64,
    pub snapshot_every: u64,
    /// Applied index of the last snapshot this server took.
    pub(super) last_snapshot_index: u64,
    pub ack_before_fsync: bool,
    /// The meta layer, for the meta group: it applies what the group commits.
    pub meta: Option<Box<MetaLayer>>,
    /// Publishes this server proposed as the stream's leader, by the index of their last
    /// entry: acknowledged once that entry applies with the payload proposed.
    pub(super) pending_publishes: BTreeMap<Index, PendingPublish>,
    /// Acknowledgements of committed publishes, for the server to route to their clients.
    pub publish_acks: Vec<PublishAck>,
    /// The leadership last reported to the oracle (`Observation::Leads`): a leader reports when
    /// its term or commit moves, not on every input, so reporting costs what changed.
    pub(super) reported_lead: Option<(Term, Index)>,
    /// The membership record still says this node joined and waits for a leader: rewritten
    /// once the node caught up and what it caught up on is durable.
    pub(super) joined_on_record: bool,
    /// The node had caught up when the `Ready` in flight was taken: everything it caught up
    /// on is in that `Ready` or an earlier one, so the record can say so before its
    /// acknowledgements leave (see `release`).
    pub(super) caught_up_in_flight: bool,
    /// The replicated cluster size as the group's record last said it.
    pub(super) cluster_size_on_record: Option<usize>,
    /// When this member may next report to the meta leader that it holds none of the group
    /// (see `Server::report_empty_groups`), on the monotonic clock.
    pub(super) empty_report_at_ms: u64,
}

/// Publishes awaiting commit per group at most; more are refused (the client times out).
pub const PENDING_PUBLISHES_MAX: usize = 1_000;
/// `Ready`s one input may take through the pipeline without waiting on the disk.
const READIES_PER_ADVANCE_MAX: usize = 1_000;

#[derive(Debug)]
pub(super) struct PendingPublish {
    pub ack: PublishAck,
    /// The last entry as proposed. Index and term identify it (Log Matching); the payload
    /// alone does not, since another leader proposes the same publish with the same bytes.
    pub last_term: Term,
    pub last_payload: Vec<u8>,
}

/// A publish to acknowledge: the client's server, its request id, and the messages stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishAck {
    pub origin: NodeIndex,
    pub request: u64,
    pub count: u32,
    /// The stream incarnation the messages belong to (for the oracle, which owes messages
    /// per incarnation across regroups).
    pub stream: StreamKey,
    pub created_ms: u64,
}

/// A group's snapshot payload: the raft-level applied chain (for the checks) and, for the
/// meta group, the meta layer's applied state.
#[derive(Serialize, Deserialize)]
pub(super) struct GroupSnapshot {
    pub applied: AppliedLog,
    pub meta: Option<MetaSnapshot>,
}

impl Group {
    pub fn new(name: &str, node: RaftNode, snapshot_every: u64, ack_before_fsync: bool) -> Self {
        // Only a joiner waits for a leader at start, and only because its record says so.
        let node_waits = node.waits_for_leader();
        // Started from its record, or none: a group that never had a replicated size writes
        // nothing.
        let size_on_record = node.replicated_cluster_size();
        Group {
            name: name.to_string(),
            wire_name: Arc::from(name),
            slot: 0,
            last_snapshot_index: node.snapshot_index(),
            node,
            applied: AppliedLog::default(),
            pipeline: Pipeline::new(GroupFiles::new(name)),
            is_leader: false,
            replay_done: false,
            snapshots_installed: 0,
            snapshot_every,
            ack_before_fsync,
            meta: None,
            pending_publishes: BTreeMap::new(),
            publish_acks: Vec::new(),
            reported_lead: None,
            joined_on_record: node_waits,
            caught_up_in_flight: false,
            cluster_size_on_record: size_on_record,
            empty_report_at_ms: 0,
        }
    }

    /// The number its group set gave it, unique within that set.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    pub(super) fn set_slot(&mut self, slot: u32) {
        self.slot = slot;
    }

    /// One line of state for failure reports, at `now_ms`, with the local clock raised to
    /// `clock_floor_ms` (see [`GroupSet::tick_walk`](super::group_set::GroupSet::tick_walk)).
    pub fn describe(&self, now_ms: u64, clock_floor_ms: u64) -> String {
        let n = &self.node;
        let (contact_ms, clock_ms) = n.leader_contact_ms();
        format!(
            "{:?} term {} peers {:?} leader {:?} commit {} applied {} last {} current {} (now {now_ms}, contact/clock {:?}) persisting {}",
            n.role(),
            n.term(),
            n.peers(),
            n.group_leader(),
            n.commit_index(),
            self.applied.index,
            n.last_index(),
            n.current(now_ms),
            (contact_ms, clock_ms.max(clock_floor_ms)),
            self.pipeline.describe()
        )
    }

    pub fn files(&self) -> &GroupFiles {
        self.pipeline.files()
    }

    /// Whether a `Ready` is on its way to disk.
    pub fn persisting(&self) -> bool {
        self.pipeline.busy()
    }

    /// Whether a snapshot is being written and not yet marked durable.
    pub fn writing_snapshot(&self) -> bool {
        self.pipeline.writing_snapshot()
    }

    /// The last storage write that failed, while the pipeline waits to retry it.
    pub fn write_error(&self) -> Option<&str> {
        self.pipeline.write_error.as_deref()
    }

    /// Take the next `Ready` if none is in flight, and push the pipeline as far as it goes;
    /// then hand the core's coverage probes on.
    pub fn advance(&mut self, env: &mut ServerEnv<'_>, tokens: &mut Tokens) {
        self.advance_pipeline(env, tokens);
        self.record_caught_up(env);
        self.record_cluster_size(env);
        let meta = self.meta.is_some();
        for probe in self.node.take_probes() {
            env.probe(probe.name(meta));
        }
    }

    fn advance_pipeline(&mut self, env: &mut ServerEnv<'_>, tokens: &mut Tokens) {
        if self.pipeline.blocked() {
            return; // a full disk; retried on the next tick
        }
        // Bounded: each round either waits on an fsync or releases a Ready; a node produces
        // finitely many Readies without new input.
        for _ in 0..READIES_PER_ADVANCE_MAX {
            if !self.pipeline.busy() {
                if !self.node.has_ready() {
                    return;
                }
                self.caught_up_in_flight = !self.node.waits_for_leader();
                let mut ready = self.node.ready();
                if self.ack_before_fsync {
                    // The bug: acknowledgements leave before the entries they acknowledge are durable.
                    let (acks, rest): (Vec<_>, Vec<_>) =
                        ready.messages.drain(..).partition(|(_, m)| matches!(m, Message::AppendResponse { .. }));
                    ready.messages = rest;
                    self.send(env, acks);
                }
                if self.pipeline.passes_unwritten(&ready) {
                    self.release(env, ready);
                    continue;
                }
                self.pipeline.start(ready);
            }
            match self.pipeline.drive(env, tokens, &self.name) {
                Some(ready) => self.release(env, ready),
                None => return,
            }
        }
        panic!("group {} produced {READIES_PER_ADVANCE_MAX} Readies without waiting on the disk", self.name);
    }

    /// A joiner that caught up is a member like any other, also after a restart: say so in
    /// its membership record, once nothing is on its way to disk (the entries it caught up on
    /// are durable). A failed write is retried on the next advance; an fsync the disk lied
    /// about leaves the record saying "joined", which only makes a restart wait again.
    fn record_caught_up(&mut self, env: &mut ServerEnv<'_>) {
        if self.caught_up_record_due() {
            self.write_caught_up(env);
        }
    }

    /// The record still says "joined", and the node caught up with nothing on its way to disk.
    fn caught_up_record_due(&self) -> bool {
        self.joined_on_record && !self.node.waits_for_leader() && !self.pipeline.busy() && !self.node.has_ready()
    }

    /// Rewrite the membership record to say the joiner caught up. Also called when a durable
    /// `Ready` taken after the catch-up is let out, before its acknowledgements leave: a
    /// leader adds a joiner once its acknowledgements reach the commit, and a joiner that
    /// restarted between that acknowledgement and its record would wait again and refuse the
    /// leader that now needs its vote (churn seed 10044 of v13: an R2 consumer group stuck
    /// for good after a crash at `append-acknowledged`).
    pub(super) fn write_caught_up(&mut self, env: &mut ServerEnv<'_>) {
        let files = self.pipeline.files();
        let peers = match files.read_initial_peers(env.disk()) {
            Ok(Some(start)) => start.peers,
            // Nothing to rewrite (lost to a power loss before the node voted, or damaged: the
            // next start reports that).
            Ok(None) | Err(_) => {
                self.joined_on_record = false;
                return;
            }
        };
        let start = InitialMembership { peers, joined: false };
        match files.write_initial_peers(env.disk(), &start) {
            Ok(synced) => {
                if !synced {
                    env.trace_text("fsync-lost", &files.peers);
                }
                env.trace_text("joiner-caught-up", &self.name);
                self.joined_on_record = false;
            }
            Err(e) => super::start::trace_file_error(env, "peers-record-failed", &files.peers, &e.to_string()),
        }
    }

    /// Keep the replicated cluster size on disk whenever it changes, so that a restart from a
    /// snapshot covering the peer-state entry still counts quorums the same way (mixed seed
    /// 130: a follower restarted from such a snapshot counted against five servers, four of
    /// them running JetStream, while the leader and the rest counted against four). A failed
    /// write is retried on the next advance.
    fn record_cluster_size(&mut self, env: &mut ServerEnv<'_>) {
        if !self.cluster_size_record_due() {
            return;
        }
        let size = self.node.replicated_cluster_size();
        let files = self.pipeline.files();
        let record = size.map(|s| u32::try_from(s).expect("a cluster size fits in u32"));
        match files.write_cluster_size(env.disk(), record) {
            Ok(synced) => {
                if !synced {
                    env.trace_text("fsync-lost", &files.cluster_size);
                }
                self.cluster_size_on_record = size;
            }
            Err(e) => {
                super::start::trace_file_error(env, "cluster-size-record-failed", &files.cluster_size, &e.to_string())
            }
        }
    }

    /// Tell the oracle this server leads the group (by raft role; the barrier may not be
    /// passed yet) when the term or the commit moved since it last told. The commit told is
    /// the durable one: entries still on their way to disk are not committed yet (churn seed
    /// 146: a lone member's no-op counted committed, then lost to a crash before the log
    /// write, was taken for a committed entry the next leader skipped).
    pub fn report_lead(&mut self, env: &mut ServerEnv<'_>) {
        let lead = self.lead_now();
        if self.reported_lead == lead {
            return;
        }
        self.reported_lead = lead;
        if let Some((term, commit)) = lead {
            env.observe(Observation::Leads { group: &self.name, term, commit });
        }
    }

    /// The term and durable commit a leader reports (`None` when not leading by raft role).
    fn lead_now(&self) -> Option<(Term, Index)> {
        if self.node.role() != Role::Leader {
            return None;
        }
        let durable = self.pipeline.writing_from().map_or(Index::MAX, |from| from - 1);
        Some((self.node.term(), self.node.commit_index().min(durable)))
    }

    /// An fsync this group asked for completed.
    pub fn on_fsync(&mut self, env: &mut ServerEnv<'_>, tokens: &mut Tokens, token: u64) {
        if self.pipeline.fsync_done(token) {
            self.advance(env, tokens);
        }
    }

    /// Retry a stage a full disk blocked; whether one was.
    pub fn retry_blocked(&mut self, env: &mut ServerEnv<'_>, tokens: &mut Tokens) -> bool {
        let blocked = self.pipeline.unblock();
        if blocked {
            self.advance(env, tokens);
        }
        blocked
    }

    /// The earliest local time at which the tick's visit to this group may do more than raise
    /// its raft clock (see [`RaftNode::tick_due_ms`]); 0 while its pipeline waits for the
    /// tick to lift a block.
    pub fn tick_due_ms(&self) -> u64 {
        if self.pipeline.blocked() {
            return 0;
        }
        self.node.tick_due_ms()
    }

    /// The replicated cluster size moved since the record last said it (or its write failed).
    fn cluster_size_record_due(&self) -> bool {
        self.node.replicated_cluster_size() != self.cluster_size_on_record
    }

    /// Whether settling this group would do anything: each of [`Self::advance`]'s steps and
    /// [`Self::report_lead`] finds work, or there are acknowledgements to route. False means
    /// both are no-ops, so an input that left the group so need not count it as touched.
    pub fn settle_due(&self) -> bool {
        // A busy pipeline that is not blocked waits on fsyncs (`drive` returns only so), and
        // their completion is an input of its own; a blocked one waits for the tick's retry.
        let ready = !self.pipeline.busy() && self.node.has_ready();
        ready
            || self.caught_up_record_due()
            || self.cluster_size_record_due()
            || self.reported_lead != self.lead_now()
            || self.node.has_probes()
            || !self.publish_acks.is_empty()
    }

    pub(super) fn send(&self, env: &mut ServerEnv<'_>, messages: Vec<(u32, Message)>) {
        for (to, msg) in messages {
            if to < env.servers() && to != env.node() {
                env.send(to, ServerMsg::Raft { group: Arc::clone(&self.wire_name), msg });
            }
        }
    }

    /// Leader of a stream group: propose `ack.count` messages, one entry each, acknowledged
    /// once the last one applies here.
    pub fn propose_publish(
        &mut self,
        env: &mut ServerEnv<'_>,
        ack: PublishAck,
        ack_before_commit: bool,
    ) -> Result<(), ProposeError> {
        let now_ms = env.monotonic_ms();
        if self.pending_publishes.len() >= PENDING_PUBLISHES_MAX {
            return Err(ProposeError::TooManyPending { pending: self.pending_publishes.len() as u64 });
        }
        let term: Term = self.node.term();
        let mut last = None;
        for seq in 0..ack.count {
            let payload = bincode::serialize(&(ack.origin, ack.request, seq)).expect("plain data");
            let index = self.node.propose(now_ms, term, EntryData::Normal(payload.clone()))?;
            last = Some((index, payload));
        }
        let (index, last_payload) = last.expect("a publish carries at least one message");
        if ack_before_commit {
            env.observe(Observation::MessagesAcked {
                group: &self.name,
                stream: &ack.stream,
                created_ms: ack.created_ms,
                count: ack.count,
            });
            self.publish_acks.push(ack);
        } else {
            self.pending_publishes.insert(index, PendingPublish { ack, last_term: term, last_payload });
        }
        Ok(())
    }

    /// Snapshot the applied state and compact the log (kept by the node; persisted through the
    /// next Ready).
    /// Never while the meta layer recovers (§3.5): its state is partial until the flush.
    /// Returns false when raft refused.
    pub fn snapshot(&mut self, env: &mut ServerEnv<'_>) -> bool {
        let index = self.node.applied_index();
        if index <= self.node.snapshot_index() || self.meta.as_deref().is_some_and(MetaLayer::recovering) {
            return true;
        }
        let meta = self.meta.as_deref().map(MetaLayer::snapshot);
        if let Some(m) = &meta {
            let digest = crate::meta::projection::projection_digest_of(&m.streams);
            env.observe(Observation::MetaSnapshotTaken { index, digest });
        }
        let data = GroupSnapshot { applied: self.applied, meta };
        let data = bincode::serialize(&data).expect("plain data encodes");
        match self.node.compact(index, data) {
            Ok(()) => {
                self.last_snapshot_index = index;
                env.trace("snapshot-taken", &index);
                true
            }
            Err(e) => {
                env.trace_text("snapshot-refused", &e.to_string());
                false
            }
        }
    }
}
