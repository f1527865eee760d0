//! One raft group on one server: the sans-IO node, its files, and the persist pipeline that
//! makes each `Ready` durable before anything in it leaves the server.
//!
//! A `Ready` goes through stages, each ending in fsyncs: snapshot file, the record naming the
//! snapshot durable, hard state, then the log. The snapshot goes first because the hard state's
//! commit may point at it: a crash between the two must not leave a commit with nothing under
//! it. Only then are its messages sent and its
//! committed entries applied. The next `Ready` is taken only after that, so an entry is never
//! counted, acknowledged or applied before it is on the platter. Inputs arriving meanwhile are
//! stepped into the node at once; their effects wait in the node for the next `Ready`.

use std::collections::{BTreeMap, BTreeSet};

use sim::hash::digest;
use sim::{Env, NodeIndex};

use serde::{Deserialize, Serialize};

use super::applied::AppliedLog;
use super::jetstream::{MetaLayer, MetaSnapshot};
use super::ops::ServerMsg;
use super::storage::{GroupFiles, WalRecord};
use super::Server;
use crate::raft::{Applied, EntryData, Index, Message, ProposeError, RaftNode, Ready, Signal, Term};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Snapshot,
    SnapshotMark,
    HardState,
    Log,
    Release,
}

#[derive(Debug)]
struct Persist {
    ready: Ready,
    stage: Stage,
    waiting: BTreeSet<u64>,
    /// The last write failed (ENOSPC); the stage is retried on the next tick.
    blocked: bool,
}

pub struct Group {
    pub name: String,
    pub node: RaftNode,
    pub applied: AppliedLog,
    files: GroupFiles,
    persist: Option<Persist>,
    /// The upper layer's view: a `BecameLeader` arrived and no `SteppedDown` since.
    pub is_leader: bool,
    /// Replay after start finished.
    pub replay_done: bool,
    pub snapshots_installed: u64,
    pub snapshot_every: u64,
    /// Applied index of the last snapshot this server took.
    last_snapshot_index: u64,
    pub ack_before_fsync: bool,
    /// The last storage write that failed (e.g. a full disk), while the pipeline waits to retry
    /// it. Unlike NRG's sticky write error it clears once a write succeeds again: here a blocked
    /// stage is retried, so the error says "stuck now", which is what health reports need.
    pub write_error: Option<String>,
    /// The meta layer, for the meta group: it applies what the group commits.
    pub meta: Option<Box<MetaLayer>>,
    /// Publishes this server proposed as the stream's leader, by the index of their last
    /// entry: acknowledged once that entry applies with the payload proposed.
    pending_publishes: BTreeMap<Index, PendingPublish>,
    /// Acknowledgements of committed publishes, for the server to route to their clients.
    pub publish_acks: Vec<PublishAck>,
}

/// Publishes awaiting commit per group at most; more are refused (the client times out).
pub const PENDING_PUBLISHES_MAX: usize = 1_000;

#[derive(Debug)]
struct PendingPublish {
    ack: PublishAck,
    /// The last entry as proposed. Index and term identify it (Log Matching); the payload
    /// alone does not, since another leader proposes the same publish with the same bytes.
    last_term: Term,
    last_payload: Vec<u8>,
}

/// A publish to acknowledge: the client's server, its request id, and the messages stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishAck {
    pub origin: NodeIndex,
    pub request: u64,
    pub count: u32,
}

/// A group's snapshot payload: the raft-level applied chain (for the checks) and, for the
/// meta group, the meta layer's applied state.
#[derive(Serialize, Deserialize)]
struct GroupSnapshot {
    applied: AppliedLog,
    meta: Option<MetaSnapshot>,
}

impl Group {
    pub fn new(name: &str, node: RaftNode, snapshot_every: u64, ack_before_fsync: bool) -> Self {
        Group {
            name: name.to_string(),
            last_snapshot_index: node.snapshot_index(),
            node,
            applied: AppliedLog::default(),
            files: GroupFiles::new(name),
            persist: None,
            is_leader: false,
            replay_done: false,
            snapshots_installed: 0,
            snapshot_every,
            ack_before_fsync,
            write_error: None,
            meta: None,
            pending_publishes: BTreeMap::new(),
            publish_acks: Vec::new(),
        }
    }

    /// One line of state for failure reports.
    pub fn describe(&self, now_ms: u64) -> String {
        let n = &self.node;
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
            n.leader_contact_ms(),
            self.persist.as_ref().map_or("no".to_string(), |p| format!("{:?}{}", p.stage, if p.blocked { " blocked" } else { "" }))
        )
    }

    pub fn files(&self) -> &GroupFiles {
        &self.files
    }

    /// Whether a `Ready` is on its way to disk.
    pub fn persisting(&self) -> bool {
        self.persist.is_some()
    }

    /// Take the next `Ready` if none is in flight, and push the pipeline as far as it goes.
    pub fn advance(&mut self, env: &mut Env<'_, Server>, tokens: &mut Tokens) {
        if self.persist.as_ref().is_some_and(|p| p.blocked) {
            return; // a full disk; retried on the next tick
        }
        // Bounded: each round either waits on an fsync or releases a Ready; a node produces
        // finitely many Readies without new input.
        for _ in 0..1_000 {
            if self.persist.is_none() {
                if !self.node.has_ready() {
                    return;
                }
                let mut ready = self.node.ready();
                if self.ack_before_fsync {
                    // The bug: acknowledgements leave before the entries they acknowledge are durable.
                    let (acks, rest): (Vec<_>, Vec<_>) =
                        ready.messages.drain(..).partition(|(_, m)| matches!(m, Message::AppendResponse { .. }));
                    ready.messages = rest;
                    self.send(env, acks);
                }
                self.persist =
                    Some(Persist { ready, stage: Stage::Snapshot, waiting: BTreeSet::new(), blocked: false });
            }
            if !self.drive(env, tokens) {
                return;
            }
        }
        panic!("group {} produced 1000 Readies without waiting on the disk", self.name);
    }

    /// An fsync this group asked for completed.
    pub fn on_fsync(&mut self, env: &mut Env<'_, Server>, tokens: &mut Tokens, token: u64) {
        if let Some(p) = &mut self.persist {
            if p.waiting.remove(&token) && p.waiting.is_empty() {
                self.advance(env, tokens);
            }
        }
    }

    /// Retry a stage a full disk blocked.
    pub fn retry_blocked(&mut self, env: &mut Env<'_, Server>, tokens: &mut Tokens) {
        if let Some(p) = self.persist.as_mut().filter(|p| p.blocked) {
            p.blocked = false;
            self.advance(env, tokens);
        }
    }

    /// Run stages until one waits on fsyncs (false) or the Ready is released (true).
    fn drive(&mut self, env: &mut Env<'_, Server>, tokens: &mut Tokens) -> bool {
        loop {
            let p = self.persist.as_mut().expect("driving a persist");
            if !p.waiting.is_empty() {
                return false;
            }
            p.blocked = false;
            let written = match p.stage {
                Stage::Snapshot => match &p.ready.snapshot {
                    Some(snap) => self.files.write_snapshot(env.disk(), snap).map(|path| vec![path]),
                    None => Ok(vec![]),
                },
                Stage::SnapshotMark => match &p.ready.snapshot {
                    Some(snap) => self
                        .files
                        .mark_snapshot_durable(env.disk(), snap.last_index)
                        .map(|()| vec![self.files.state.clone()]),
                    None => Ok(vec![]),
                },
                Stage::HardState => match p.ready.hard_state {
                    Some(hard) => {
                        self.files.append_hard_state(env.disk(), hard).map(|()| vec![self.files.state.clone()])
                    }
                    None => Ok(vec![]),
                },
                Stage::Log => {
                    let mut result = Ok(());
                    if let Some(from) = p.ready.truncate_from {
                        result =
                            result.and_then(|()| self.files.append_wal(env.disk(), &WalRecord::TruncateFrom(from)));
                    }
                    if !p.ready.entries.is_empty() {
                        let record = WalRecord::Entries(p.ready.entries.clone());
                        result = result.and_then(|()| self.files.append_wal(env.disk(), &record));
                    }
                    let touched = p.ready.truncate_from.is_some() || !p.ready.entries.is_empty();
                    result.map(|()| if touched { vec![self.files.wal.clone()] } else { vec![] })
                }
                Stage::Release => {
                    self.release(env, tokens);
                    return true;
                }
            };
            let p = self.persist.as_mut().expect("still persisting");
            match written {
                Ok(paths) => {
                    self.write_error = None;
                    for path in paths {
                        let token = tokens.next(&self.name);
                        p.waiting.insert(token);
                        env.fsync(&path, token);
                    }
                    p.stage = match p.stage {
                        Stage::Snapshot => Stage::SnapshotMark,
                        Stage::SnapshotMark => Stage::HardState,
                        Stage::HardState => Stage::Log,
                        Stage::Log | Stage::Release => Stage::Release,
                    };
                }
                Err(e) => {
                    p.blocked = true;
                    env.trace("write-error", &e.to_string());
                    self.write_error = Some(e.to_string());
                    return false;
                }
            }
        }
    }

    fn send(&self, env: &mut Env<'_, Server>, messages: Vec<(u32, Message)>) {
        for (to, msg) in messages {
            if to < env.servers() && to != env.node() {
                env.send(to, ServerMsg::Raft { group: self.name.clone(), msg });
            }
        }
    }

    /// Everything in the Ready is durable: let it out.
    fn release(&mut self, env: &mut Env<'_, Server>, _tokens: &mut Tokens) {
        let p = self.persist.take().expect("releasing a persist");
        let me: NodeIndex = env.node();
        // Crash points: the moments after which a crash tests what was made durable first.
        let vote_sent = p.ready.messages.iter().any(|(_, m)| matches!(m, Message::Vote { granted: true, .. }));
        let ack_sent = p.ready.messages.iter().any(|(_, m)| matches!(m, Message::AppendResponse { success: true, .. }));
        let committed = p.ready.hard_state.is_some_and(|h| h.commit > self.applied.index);
        self.send(env, p.ready.messages);
        if vote_sent {
            env.crash_point("vote-sent");
        }
        if ack_sent {
            env.crash_point("append-acknowledged");
        }
        if committed && self.node.role() == crate::raft::Role::Leader {
            env.crash_point("leader-committed");
        }
        if let Some(s) = &p.ready.snapshot {
            self.files.remove_older_snapshots(env.disk(), s.last_index);
        }
        for item in p.ready.applied {
            match item {
                Applied::Entry(entry) => {
                    let entry_digest = self.applied.apply(&entry);
                    let chain = self.applied.chain;
                    env.ghost().observe_apply(&self.name, me, entry.index, entry.term, entry_digest, chain);
                    env.trace("apply", &(entry.index, entry.term, entry_digest));
                    if let Some(meta) = self.meta.as_deref_mut() {
                        match &entry.data {
                            EntryData::Normal(data) => {
                                let answer = meta.leader_term.is_some();
                                meta.on_entry(env, entry.index, data, answer);
                            }
                            other => meta.on_other_entry(env, entry.index, other),
                        }
                    }
                    if let Some(pending) = self.pending_publishes.remove(&entry.index) {
                        // A later leader may have put another entry at that index.
                        if entry.term == pending.last_term && entry.data == EntryData::Normal(pending.last_payload) {
                            let me = env.node();
                            env.ghost().observe_acked_messages(&self.name, me, pending.ack.count);
                            self.publish_acks.push(pending.ack);
                        }
                    }
                    self.node.applied_to(entry.index);
                }
                Applied::Snapshot(snapshot) => {
                    // Snapshots are checksummed on disk and on arrival, so one that does not
                    // decode was built wrong: a bug, not a fault.
                    let decoded: GroupSnapshot = bincode::deserialize(&snapshot.data).unwrap_or_else(|e| {
                        panic!("group {}: a snapshot built by a peer's upper layer fails to decode: {e}", self.name)
                    });
                    self.applied = decoded.applied;
                    if let (Some(meta), Some(state)) = (self.meta.as_deref_mut(), decoded.meta) {
                        meta.install(env, snapshot.last_index, state);
                    }
                    assert_eq!(self.applied.index, snapshot.last_index, "snapshot state matches its index");
                    env.ghost().observe_snapshot(&self.name, me, snapshot.last_index, self.applied.chain);
                    env.trace("snapshot-applied", &(snapshot.last_index, digest(&snapshot.data)));
                    self.node.applied_to(snapshot.last_index);
                    // Publishes the snapshot jumped over are never acknowledged from here.
                    self.pending_publishes.retain(|&index, _| index > snapshot.last_index);
                    if snapshot.last_index > self.last_snapshot_index {
                        self.last_snapshot_index = snapshot.last_index;
                        self.snapshots_installed += 1;
                    }
                }
                Applied::Signal(signal) => {
                    match signal {
                        Signal::BecameLeader { .. } => {
                            self.is_leader = true;
                            env.crash_point("became-leader");
                        }
                        Signal::SteppedDown { .. } => self.is_leader = false,
                        Signal::CatchupStarted => {
                            if let Some(meta) = self.meta.as_deref_mut() {
                                meta.on_catchup_started(env);
                            }
                        }
                        Signal::CatchupDone => self.replay_done = true,
                    }
                    env.trace("signal", &format!("{signal:?}"));
                    if signal == Signal::CatchupDone && self.meta.as_deref_mut().is_some_and(|m| m.on_replay_done(env))
                    {
                        // §3.4: a recovery ends with a fresh snapshot and a compacted log.
                        self.snapshot(env);
                    }
                }
            }
        }
        if self.node.applied_index() >= self.last_snapshot_index + self.snapshot_every {
            self.snapshot(env);
        }
    }

    /// Leader of a stream group: propose `ack.count` messages, one entry each, acknowledged
    /// once the last one applies here.
    pub fn propose_publish(
        &mut self,
        env: &mut Env<'_, Server>,
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
            let me = env.node();
            env.ghost().observe_acked_messages(&self.name, me, ack.count);
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
    pub fn snapshot(&mut self, env: &mut Env<'_, Server>) -> bool {
        let index = self.node.applied_index();
        if index <= self.node.snapshot_index() || self.meta.as_deref().is_some_and(MetaLayer::recovering) {
            return true;
        }
        let meta = self.meta.as_deref().map(MetaLayer::snapshot);
        if let Some(m) = &meta {
            let digest = sim::hash::digest(&crate::meta::state::project(&m.streams));
            let me = env.node();
            env.ghost().observe_meta_snapshot_taken(me, index, digest);
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
                env.trace("snapshot-refused", &e.to_string());
                false
            }
        }
    }
}

/// fsync tokens, each remembering the group that asked.
#[derive(Debug, Default)]
pub struct Tokens {
    next: u64,
    owners: std::collections::BTreeMap<u64, String>,
}

/// Outstanding fsyncs per server are bounded by the pipeline (a few per group); this guards
/// against a leak.
const TOKENS_OUTSTANDING_MAX: usize = 10_000;

impl Tokens {
    pub fn next(&mut self, group: &str) -> u64 {
        assert!(self.owners.len() < TOKENS_OUTSTANDING_MAX, "fsync tokens leak");
        self.next += 1;
        self.owners.insert(self.next, group.to_string());
        self.next
    }

    pub fn owner(&mut self, token: u64) -> Option<String> {
        self.owners.remove(&token)
    }

    /// A group stopped: its outstanding fsyncs must not reach a later group of that name.
    pub fn forget_group(&mut self, group: &str) {
        self.owners.retain(|_, owner| owner != group);
    }
}
