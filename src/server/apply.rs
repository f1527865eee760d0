//! A durable `Ready` let out: its messages sent, its crash points marked, and what it commits
//! handed up in order (entries, snapshots, leadership and catch-up signals) to the group's
//! applied chain, the meta layer and waiting publishers, each told to the oracle as it
//! happens.

use sim::hash::digest;

use super::crash_points::{self, CrashPoint};
use super::env::ServerEnv;
use super::group::{Group, GroupSnapshot};
use super::jetstream::RecoveryKind;
use super::observe::Observation;
use crate::raft::{Applied, Entry, EntryData, Message, Ready, Role, Signal, Snapshot};

impl Group {
    /// Everything in the Ready is durable: let it out.
    pub(super) fn release(&mut self, env: &mut ServerEnv<'_>, ready: Ready) {
        // Crash points: the moments after which a crash tests what was made durable first.
        let vote_sent = ready.messages.iter().any(|(_, m)| matches!(m, Message::Vote { granted: true, .. }));
        let ack_sent = ready.messages.iter().any(|(_, m)| matches!(m, Message::AppendResponse { success: true, .. }));
        let committed = ready.hard_state.is_some_and(|h| h.commit > self.applied.index);
        if ack_sent && self.joined_on_record && self.caught_up_in_flight {
            self.write_caught_up(env);
        }
        self.send(env, ready.messages);
        if vote_sent {
            crash_points::reach(env, CrashPoint::VoteSent);
        }
        if ack_sent {
            crash_points::reach(env, CrashPoint::AppendAcknowledged);
        }
        if committed && self.node.role() == Role::Leader {
            crash_points::reach(env, CrashPoint::LeaderCommitted);
        }
        if let Some(s) = &ready.snapshot {
            self.pipeline.files().remove_older_snapshots(env.disk(), s.last_index);
        }
        for item in ready.applied {
            match item {
                Applied::Entry(entry) => self.apply_entry(env, entry),
                Applied::Snapshot(snapshot) => self.apply_snapshot(env, snapshot),
                Applied::Signal(signal) => self.apply_signal(env, signal),
            }
        }
        if self.node.applied_index() >= self.last_snapshot_index + self.snapshot_every {
            self.snapshot(env);
        }
    }

    /// A committed entry: into the applied chain, then the meta layer, then a publish waiting
    /// for it.
    fn apply_entry(&mut self, env: &mut ServerEnv<'_>, entry: Entry) {
        let entry_digest = self.applied.apply(&entry);
        let chain = self.applied.chain;
        let (index, term) = (entry.index, entry.term);
        env.observe(Observation::Applied { group: &self.name, index, term, digest: entry_digest, chain });
        let meta = self.meta.is_some();
        env.trace_with("apply", &(index, term, entry_digest), || {
            format!("{}#{index} t{term} {}", self.name, describe_entry(meta, &entry.data))
        });
        if let Some(meta) = self.meta.as_deref_mut() {
            match &entry.data {
                EntryData::Normal(data) => {
                    let answer = meta.leader_term.is_some();
                    meta.on_entry(env, index, data, answer);
                }
                other => meta.on_other_entry(env, index, other),
            }
        }
        if let Some(pending) = self.pending_publishes.remove(&index) {
            // A later leader may have put another entry at that index.
            if term == pending.last_term && entry.data == EntryData::Normal(pending.last_payload) {
                let ack = &pending.ack;
                let (stream, created_ms, count) = (&ack.stream, ack.created_ms, ack.count);
                env.observe(Observation::MessagesAcked { group: &self.name, stream, created_ms, count });
                self.publish_acks.push(pending.ack);
            }
        }
        self.node.applied_to(index);
    }

    /// A leader's snapshot: it replaces the applied chain (and the meta layer's state).
    fn apply_snapshot(&mut self, env: &mut ServerEnv<'_>, snapshot: Snapshot) {
        // Snapshots are checksummed on disk and on arrival, so one that does not decode was
        // built wrong: a bug, not a fault.
        let decoded: GroupSnapshot = bincode::deserialize(&snapshot.data).unwrap_or_else(|e| {
            panic!("group {}: a snapshot built by a peer's upper layer fails to decode: {e}", self.name)
        });
        self.applied = decoded.applied;
        if let (Some(meta), Some(state)) = (self.meta.as_deref_mut(), decoded.meta) {
            meta.install(env, snapshot.last_index, state);
        }
        assert_eq!(self.applied.index, snapshot.last_index, "snapshot state matches its index");
        let (index, chain) = (snapshot.last_index, self.applied.chain);
        env.observe(Observation::SnapshotInstalled { group: &self.name, index, chain });
        let name = &self.name;
        env.trace_with("snapshot-applied", &(snapshot.last_index, digest(&snapshot.data)), || {
            format!("{name}#{index}: a leader's snapshot")
        });
        self.node.applied_to(snapshot.last_index);
        // Publishes the snapshot jumped over are never acknowledged from here.
        self.pending_publishes.retain(|&index, _| index > snapshot.last_index);
        if snapshot.last_index > self.last_snapshot_index {
            self.last_snapshot_index = snapshot.last_index;
            self.snapshots_installed += 1;
        }
    }

    /// Leadership and catch-up signals; the end of a catch-up may end a meta recovery.
    fn apply_signal(&mut self, env: &mut ServerEnv<'_>, signal: Signal) {
        match signal {
            Signal::BecameLeader { .. } => {
                self.is_leader = true;
                crash_points::reach(env, CrashPoint::BecameLeader);
            }
            Signal::SteppedDown { .. } => self.is_leader = false,
            Signal::CatchupStarted => {
                if let Some(meta) = self.meta.as_deref_mut() {
                    meta.on_catchup_started(env);
                }
            }
            Signal::CatchupDone => self.replay_done = true,
        }
        let name = &self.name;
        env.trace_with("signal", &format!("{signal:?}"), || format!("{name}: {signal}"));
        let ended = if signal == Signal::CatchupDone {
            self.meta.as_deref_mut().and_then(|m| m.on_replay_done(env))
        } else {
            None
        };
        if let Some(kind) = ended {
            // §3.4: a recovery ends with a fresh snapshot and a compacted log.
            self.snapshot(env);
            self.stay_out_if_removed(env, kind);
            crash_points::reach(env, CrashPoint::RecoveryFlushed);
        }
    }

    /// After the meta layer's recovery ended (from the tick, or as raft's replay ended with a
    /// route up): a server its own log removed from the meta group (it applied the removal,
    /// or a snapshot without it, in recovery, where JetStream ignores removals) stays out, as
    /// if it had applied the removal then (§8.2). Judged by what the meta layer applied, which
    /// is durable: raft's membership changes as soon as a commit index arrives, and stopping
    /// JetStream on that dropped a removal still on its way to disk, so the restarted server
    /// forgot it (churn seed 16808: n1, resumed from a pause, received its removal and the
    /// commit at once, left, and came back with an empty meta log as a member of the initial
    /// five). Both ways of ending a recovery ask: only the tick's did before, so a removed
    /// server whose replay ended with a route up ran on outside the group, and announced
    /// itself once servers joined by themselves (churn seed 16695 of v14). True when it stays
    /// out.
    pub(super) fn stay_out_if_removed(&mut self, env: &mut ServerEnv<'_>, kind: RecoveryKind) -> bool {
        let me = env.node();
        let Some(meta) = self.meta.as_deref_mut() else { return false };
        let applied = meta.state.applied_index();
        // By what was applied: an addition committed but not yet applied is no removal (churn
        // seed 11606: a server that joined by itself restarted with its addition in the log
        // past its applied index, took itself for removed and, once removals were recorded,
        // kept JetStream off for good while the others counted it a member).
        let was_member = super::Server::initial_peers(env).contains(&me) || self.node.was_member_by(applied, me);
        // A catch-up's snapshot may predate an addition raft already counts (a server added
        // back after a removal catches up from a snapshot that does not name it).
        let member_now = kind == RecoveryKind::Catchup && self.node.peers().contains(&me);
        if self.node.peers_at_index(applied).contains(&me) || !was_member || member_now {
            return false;
        }
        env.observe(Observation::RemovalApplied { peer: me, leader_term: None });
        meta.peers_removed.push((me, None));
        true
    }
}

/// What an entry carries, in words: a meta op with its key, group, peers and config; peer
/// changes; for an asset group the payload's size.
pub(super) fn describe_entry(meta: bool, data: &EntryData) -> String {
    match data {
        EntryData::Normal(bytes) if bytes.first() == Some(&super::jetstream::FILLER_TAG) => "filler".into(),
        EntryData::Normal(bytes) if meta => match crate::meta::entry::MetaEntry::decode(bytes) {
            Ok(entry) => entry.describe(),
            Err(e) => format!("undecodable ({e})"),
        },
        EntryData::Normal(bytes) => match super::scale::carried(bytes) {
            Some(n) => format!("carries {n} messages from an R1 store"),
            None => format!("payload {} bytes", bytes.len()),
        },
        EntryData::AddPeer(peer) => format!("AddPeer n{peer}"),
        EntryData::RemovePeer(peer) => format!("RemovePeer n{peer}"),
        EntryData::LeaderNoop => "LeaderNoop".into(),
        EntryData::PeerState { cluster_size } => format!("PeerState cluster size {cluster_size}"),
        EntryData::Members(peers) => format!("Members {}", crate::meta::model::peer_list(peers)),
    }
}
