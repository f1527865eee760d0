//! The ghost's meta half: the reference meta state machine (S6), projections by index (S4,
//! S5, S8), orphan removals (S12), meta leadership and peer removals (S17).

use std::collections::BTreeMap;

use sim::NodeIndex;

use super::{Ghost, Verdict};
use crate::meta::{
    direct_consumer_name, ConsumerKey, Inflight, LocalAssets, MetaEntry, MetaState, PeerId, StreamAssignment, StreamKey,
};
use crate::raft::{Index, Term};
use crate::server::jetstream::FILLER_TAG;

/// The reference meta state: fed each meta log index by the first server to hand it up (every
/// index is handed up somewhere before anyone can snapshot past it).
#[derive(Debug, Default)]
pub struct MetaOracle {
    pub state: MetaState,
    /// The oracle lost track (an apply error, or a gap only a lying disk explains): from
    /// here on it vouches for nothing.
    pub stopped: Option<String>,
}

/// A server's local assets without an assignment as its start-up recovery ended, with the
/// created time of each (a server holds one incarnation of a key).
#[derive(Debug, Default)]
pub struct StartupOrphans {
    streams: BTreeMap<StreamKey, u64>,
    consumers: BTreeMap<ConsumerKey, u64>,
}

impl StartupOrphans {
    /// Whether the local stream `key` created at `created_ms` was an orphan then.
    pub fn holds_stream(&self, key: &StreamKey, created_ms: u64) -> bool {
        self.streams.get(key) == Some(&created_ms)
    }

    /// Whether the local consumer `key` created at `created_ms` was an orphan then.
    pub fn holds_consumer(&self, key: &ConsumerKey, created_ms: u64) -> bool {
        self.consumers.get(key) == Some(&created_ms)
    }
}

/// What a server tells the oracle about a direct consumer it removes (see
/// [`crate::server::Observation::DirectConsumerRemoved`]).
#[derive(Clone, Copy, Debug)]
pub struct DirectConsumerFacts<'a> {
    /// The created time of the mirror incarnation it served.
    pub created_ms: u64,
    pub running: bool,
    /// The group its origin stream runs in here (`None`: the origin does not run here).
    pub origin_group: Option<&'a str>,
    /// Whether this server leads the origin (`None`: the path could not tell).
    pub leads_origin: Option<bool>,
}

/// The mirror in `state` whose direct consumer `consumer` is: a stream of the same account,
/// named by the consumer's name, that mirrors the consumer's stream.
fn committed_mirror<'s>(state: &'s MetaState, consumer: &ConsumerKey) -> Option<&'s StreamAssignment> {
    let name = consumer.name.strip_prefix(&direct_consumer_name(""))?;
    let mirror = state.stream(&StreamKey::new(consumer.account.clone(), name))?;
    let source = mirror.config().ok()?.into_config().mirror?;
    (source.name == consumer.stream).then_some(mirror)
}

/// The oracle's own peer id: a member of no group, so its effects are irrelevant.
const ORACLE_PEER: PeerId = PeerId::MAX;

/// Meta indexes whose projection the ghost remembers (a 60 s run reaches a few thousand).
pub const PROJECTIONS_KEPT_MAX: usize = 1_000_000;

impl Ghost {
    /// `node`'s meta layer reached applied index `index` with projection `digest`: it must be
    /// what every server has there (S4).
    pub fn observe_projection(&mut self, node: NodeIndex, index: Index, digest: u64) {
        if let Some(&expected) = self.meta_projections.get(&index) {
            if expected != digest {
                let message = format!("projection at meta index {index} differs from the reference state machine's");
                self.diverged("meta-same-index-same-projection", node, message);
            }
        }
    }

    /// A server hands up meta index `index` (`None`: no meta operation in it). The first to do
    /// so feeds the oracle.
    pub fn observe_meta_entry(&mut self, index: Index, data: Option<&[u8]>) {
        let oracle = &mut self.meta_oracle;
        if oracle.stopped.is_some() || index <= oracle.state.applied_index() {
            return;
        }
        if index != oracle.state.applied_index() + 1 {
            oracle.stopped = Some(format!("meta index {index} handed up after {}", oracle.state.applied_index()));
            return;
        }
        match data {
            Some(data) if data.first() != Some(&FILLER_TAG) => {
                // A replica change that gives a stream a new group on its store's server
                // continues its line: the acknowledged messages are owed there (known here, not
                // from the servers). A new group none of whose peers ran the old one (a peer
                // removal that moves an R1 stream, a re-placement whose members all left)
                // starts empty: what the old group acknowledged stayed behind, as in NATS.
                let entry = MetaEntry::decode(data).ok();
                if let Some(MetaEntry::UpdateStream { sa, .. }) = &entry {
                    let old = oracle.state.stream(&sa.key()).filter(|old| old.created_ms == sa.created_ms);
                    let carried = |old: &&StreamAssignment| {
                        old.group.name != sa.group.name && old.group.peers.iter().any(|p| sa.group.is_member(*p))
                    };
                    if let Some(from) = old.filter(carried).map(|o| o.group.name.clone()) {
                        self.continue_line(&from, &sa.group.name);
                    }
                }
                let oracle = &mut self.meta_oracle;
                if let Err(e) = oracle.state.apply(index, data, ORACLE_PEER, &mut Inflight::default()) {
                    oracle.stopped = Some(e.to_string());
                    return;
                }
                if let Some(key) = entry.as_ref().map(MetaEntry::stream_key) {
                    self.incarnations.note_key(&self.meta_oracle.state, &key);
                    self.note_scale_down(&key);
                }
            }
            _ => oracle.state.note_applied(index),
        }
        self.record_oracle_projection();
    }

    /// A stream the reference state holds with more peers than its replicas is being scaled
    /// down: its group's leader shrinks the raft membership to the replicas, then reports
    /// which peers are left (§2.2). Every peer the group had meanwhile is remembered, so that
    /// the members the shrink removed are known after the assignment dropped them.
    fn note_scale_down(&mut self, key: &StreamKey) {
        let Some(sa) = self.meta_oracle.state.stream(key) else { return };
        let Ok(config) = sa.config() else { return };
        let replicas = usize::from(config.into_config().normalized().replicas).max(1);
        if sa.group.peers.len() > replicas {
            self.scale_downs.entry(sa.group.name.clone()).or_default().extend(sa.group.peers.iter().copied());
        }
    }

    fn record_oracle_projection(&mut self) {
        if self.meta_projections.len() < PROJECTIONS_KEPT_MAX {
            let state = &self.meta_oracle.state;
            self.meta_projections.insert(state.applied_index(), state.projection_digest());
        }
    }

    /// `node` installs or stages a meta snapshot at `index` whose projection is `digest`: a
    /// snapshot holds the applied state at its index and nothing else, inflight proposals
    /// least of all (S5, S8).
    pub fn observe_meta_snapshot(
        &mut self,
        node: NodeIndex,
        index: Index,
        digest: u64,
        streams: &BTreeMap<StreamKey, StreamAssignment>,
    ) {
        if let Some(&expected) = self.meta_projections.get(&index) {
            if expected != digest {
                let message = format!("meta snapshot at index {index} differs from the applied state there");
                self.diverged("meta-snapshot-applied-only", node, message);
            }
            return;
        }
        let oracle = &mut self.meta_oracle;
        if oracle.stopped.is_none() && index > oracle.state.applied_index() {
            // Only a lying disk gets a snapshot past every handed-up index; follow it.
            if let Err(e) = oracle.state.apply_snapshot(index, streams.clone(), ORACLE_PEER) {
                oracle.stopped = Some(e.to_string());
                return;
            }
            for sa in streams.values() {
                self.incarnations.note_stream(sa);
            }
            self.record_oracle_projection();
        }
    }

    /// `node` took a meta snapshot at `index` (S5: it must decode to the applied state there).
    pub fn observe_meta_snapshot_taken(&mut self, node: NodeIndex, index: Index, digest: u64) {
        if self.meta_projections.get(&index).is_some_and(|&expected| expected != digest) {
            let message = format!("took a meta snapshot at index {index} that differs from the applied state there");
            self.diverged("meta-snapshot-applied-only", node, message);
        }
    }

    /// `node` ended a recovery at meta index `index` with projection `digest` (S6).
    pub fn observe_recovered(&mut self, node: NodeIndex, index: Index, digest: u64) {
        if self.meta_projections.get(&index).is_some_and(|&expected| expected != digest) {
            let message = format!(
                "recovery ended at meta index {index} with a projection that applying the same entries one by one does not give"
            );
            self.diverged("meta-recovery-equivalence", node, message);
        }
    }

    /// `node`'s start-up recovery ended with `local` assets and the applied `state`: the
    /// local streams the state lacks, and the public consumers it assigns nowhere, replace
    /// what its earlier start-ups left. A consumer of an unassigned stream counts too: the
    /// stream's assignment may come before the consumer's (cutoff seed 1665: a stream assigned
    /// again after a rolled-back meta log, its consumer's assignment the next entry).
    pub fn observe_startup_orphans(&mut self, node: NodeIndex, local: &LocalAssets, state: &MetaState) {
        let streams = local
            .streams()
            .filter(|(k, _)| state.stream(k).is_none())
            .map(|(k, a)| (k.clone(), a.created_ms))
            .collect();
        let assigned =
            |k: &ConsumerKey| state.stream(&k.stream_key()).is_some_and(|sa| sa.consumers.contains_key(&k.name));
        let consumers =
            local.public_consumers().filter(|(k, _)| !assigned(k)).map(|(k, a)| (k.clone(), a.created_ms)).collect();
        self.startup_orphans.insert(node, StartupOrphans { streams, consumers });
    }

    /// `node` removed a local stream (or a consumer of it) created at `created_ms` as an
    /// orphan. S12: never an incarnation the committed state still holds.
    pub fn observe_orphan_removed(
        &mut self,
        node: NodeIndex,
        account: &str,
        stream: &str,
        consumer: Option<&str>,
        created_ms: u64,
    ) {
        if self.meta_oracle.stopped.is_some() {
            return;
        }
        let state = &self.meta_oracle.state;
        let key = StreamKey::new(account, stream);
        let live = match consumer {
            None => state.stream(&key).is_some_and(|sa| sa.created_ms == created_ms),
            Some(name) => {
                state.stream(&key).and_then(|sa| sa.consumers.get(name)).is_some_and(|ca| ca.created_ms == created_ms)
            }
        };
        if live {
            let what = match consumer {
                None => format!("stream {key}"),
                Some(name) => format!("consumer {key}:{name}"),
            };
            let message = format!(
                "removed {what} (created {created_ms}) as an orphan, but the committed meta state (index {}) holds it",
                state.applied_index()
            );
            self.diverged("meta-orphan-stale-view", node, message);
        }
    }

    /// `node` removed `consumer`, a mirror's direct consumer, whose local facts are `local`.
    /// It must not remove one it should still run: one that ran, for the mirror incarnation
    /// the committed meta state still holds, on an origin that runs here in the group the
    /// committed state assigns it and that this server leads. A direct consumer goes
    /// legitimately when its mirror is deleted or re-created (another created time), when its
    /// origin is deleted, stopped or moves off this server or to another leader, and with a
    /// restart (it lives in memory only, so nothing is removed then).
    pub fn observe_direct_consumer_removed(
        &mut self,
        node: NodeIndex,
        consumer: &ConsumerKey,
        local: &DirectConsumerFacts<'_>,
    ) {
        if self.meta_oracle.stopped.is_some() {
            return;
        }
        let state = &self.meta_oracle.state;
        let Some(mirror) = committed_mirror(state, consumer).filter(|m| m.created_ms == local.created_ms) else {
            return;
        };
        let Some(origin) = state.stream(&consumer.stream_key()) else { return };
        let runs_assigned = local.origin_group == Some(origin.group.name.as_str());
        // An R1 origin's only member leads it, whatever the path could tell.
        let leads = local.leads_origin.unwrap_or(!origin.replicated());
        if local.running && runs_assigned && leads {
            let message = format!(
                "removed direct consumer {consumer} of mirror {} (created {}) while the committed meta state (index {}) holds that mirror and its origin runs here in group {}, led here",
                mirror.key(),
                mirror.created_ms,
                state.applied_index(),
                origin.group.name
            );
            self.diverged("meta-direct-consumer-kept", node, message);
        }
    }

    /// `node` founded group `to` of `stream` on the R1 store of group `from`, carrying
    /// `messages` (issue 17 item 5): only within one incarnation, as a scale-up does. A store
    /// carried into a re-created stream's group gives the new incarnation the old one's data.
    pub fn observe_store_carried(&mut self, node: NodeIndex, stream: &StreamKey, from: &str, to: &str, messages: u64) {
        if let Verdict::Other(owner) = self.incarnations.carry(stream, from, to) {
            let message = format!(
                "carried {messages} messages of stream {stream} from group {from} ({owner}) into {to}, a group of another incarnation"
            );
            self.diverged("meta-asset-fresh-incarnation", node, message);
        }
    }

    /// `node`'s meta layer starts (`true`) or stops (`false`) acting as leader; a crashed
    /// server stops too.
    pub fn observe_meta_acting(&mut self, node: NodeIndex, acting: bool) {
        if acting {
            self.acting_meta_leader = Some(node);
        } else if self.acting_meta_leader == Some(node) {
            self.acting_meta_leader = None;
        } else {
            return;
        }
        self.meta_leader_changes += 1;
    }

    /// `node` applied the removal of `peer` in normal mode, acting as meta leader of
    /// `leader_term` if any.
    pub fn observe_peer_removal_applied(&mut self, node: NodeIndex, peer: PeerId, leader_term: Option<Term>) {
        self.peer_removals_applied.insert((node, peer, leader_term));
        if node == peer {
            self.removed_servers.insert(node);
        }
    }

    /// S17, one at a time: the meta leader `node` proposed the removal of `peer` in `term`.
    pub fn observe_peer_remove_proposed(&mut self, node: NodeIndex, term: Term, peer: PeerId) {
        if let Some(&(pending_term, pending)) = self.peer_removes_pending.get(&node) {
            if pending_term == term {
                let message = format!("proposed removing n{peer} while the removal of n{pending} awaits its answer");
                self.flag("meta-peer-remove-one-at-a-time", node, message);
            }
        }
        self.peer_removes_pending.insert(node, (term, peer));
    }

    /// S17, answer after apply: `node` answered the removal of `peer` it proposed in `term`.
    pub fn observe_peer_remove_answered(&mut self, node: NodeIndex, term: Term, peer: PeerId) {
        self.peer_removes_pending.remove(&node);
        if !self.peer_removals_applied.contains(&(node, peer, Some(term))) {
            let message = format!("answered the removal of n{peer} before applying it as leader of term {term}");
            self.flag("meta-peer-remove-answer-after-apply", node, message);
        }
    }

    /// The leader `node` lost its leadership with a removal unanswered.
    pub fn observe_peer_remove_dropped(&mut self, node: NodeIndex) {
        self.peer_removes_pending.remove(&node);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::DirectConsumerFacts;
    use crate::harness::ghost::Ghost;
    use crate::meta::{direct_consumer_name, ConsumerKey, MetaEntry, RaftGroup, StreamAssignment};

    fn stream(name: &str, created_ms: u64, config: &str, group: &str, peers: &[u32]) -> StreamAssignment {
        StreamAssignment {
            account: "A".into(),
            name: name.into(),
            created_ms,
            config_json: config.as_bytes().to_vec(),
            group: RaftGroup { name: group.into(), peers: peers.to_vec(), preferred: None, joiners: vec![] },
            sync: format!("$SYS.JSC.SYNC.{name}"),
            consumers: BTreeMap::new(),
        }
    }

    /// A ghost whose reference state holds origin S (R1 in S-R1-s, or R3 in S-R3-s) and M,
    /// created at 200, a mirror of S; and the key of M's direct consumer on S.
    fn ghost_with_mirror(replicated: bool) -> (Ghost, ConsumerKey, StreamAssignment) {
        let mut ghost = Ghost::default();
        let origin = if replicated {
            stream("S", 100, r#"{"name":"S","replicas":3}"#, "S-R3-s", &[0, 1, 2])
        } else {
            stream("S", 100, r#"{"name":"S"}"#, "S-R1-s", &[0])
        };
        let mirror = stream("M", 200, r#"{"name":"M","mirror":{"name":"S"}}"#, "S-R1-m", &[1]);
        for (index, sa) in [(1, origin), (2, mirror.clone())] {
            ghost.observe_meta_entry(index, Some(&MetaEntry::AssignStream { sa, reply: None }.encode()));
        }
        (ghost, ConsumerKey::new("A", "S", direct_consumer_name("M")), mirror)
    }

    const KEPT: DirectConsumerFacts<'static> =
        DirectConsumerFacts { created_ms: 200, running: true, origin_group: Some("S-R1-s"), leads_origin: Some(true) };

    fn flagged(ghost: Ghost) -> Option<String> {
        ghost.violation.map(|v| v.invariant)
    }

    /// A direct consumer the server should still run (its mirror committed, its origin
    /// running here in its committed group and led here) must not be removed; every
    /// legitimate reason to remove one passes.
    #[test]
    fn a_direct_consumer_goes_only_when_it_is_no_longer_wanted() {
        let kept = Some("meta-direct-consumer-kept".to_string());
        let judge = |replicated: bool, facts: DirectConsumerFacts<'_>| {
            let (mut ghost, key, _) = ghost_with_mirror(replicated);
            ghost.observe_direct_consumer_removed(1, &key, &facts);
            flagged(ghost)
        };
        assert_eq!(judge(false, KEPT), kept, "removed while still wanted");
        assert_eq!(judge(false, DirectConsumerFacts { leads_origin: None, ..KEPT }), kept, "an R1 origin is led here");
        let r3 = DirectConsumerFacts { origin_group: Some("S-R3-s"), ..KEPT };
        assert_eq!(judge(true, r3), kept, "led here");
        assert_eq!(judge(true, DirectConsumerFacts { leads_origin: Some(false), ..r3 }), None, "another leads S");
        assert_eq!(judge(true, DirectConsumerFacts { leads_origin: None, ..r3 }), None, "leadership not known");
        assert_eq!(judge(false, DirectConsumerFacts { created_ms: 150, ..KEPT }), None, "an older mirror's");
        assert_eq!(judge(false, DirectConsumerFacts { running: false, ..KEPT }), None, "stopped");
        assert_eq!(judge(false, DirectConsumerFacts { origin_group: None, ..KEPT }), None, "S does not run here");
        let moved = DirectConsumerFacts { origin_group: Some("S-R1-old"), ..KEPT };
        assert_eq!(judge(false, moved), None, "S runs here in a group its assignment no longer names");

        // The mirror deleted, or its origin: the consumer is no longer wanted.
        let (mut ghost, key, mirror) = ghost_with_mirror(false);
        ghost.observe_meta_entry(3, Some(&MetaEntry::RemoveStream { sa: mirror, reply: None }.encode()));
        ghost.observe_direct_consumer_removed(1, &key, &KEPT);
        assert_eq!(flagged(ghost), None, "mirror deleted");
        let (mut ghost, key, _) = ghost_with_mirror(false);
        let origin = stream("S", 100, r#"{"name":"S"}"#, "S-R1-s", &[0]);
        ghost.observe_meta_entry(3, Some(&MetaEntry::RemoveStream { sa: origin, reply: None }.encode()));
        ghost.observe_direct_consumer_removed(1, &key, &KEPT);
        assert_eq!(flagged(ghost), None, "origin deleted");

        // A consumer name that names no mirror of S is none of this invariant's business.
        let (mut ghost, _, _) = ghost_with_mirror(false);
        ghost.observe_direct_consumer_removed(1, &ConsumerKey::new("A", "S", direct_consumer_name("X")), &KEPT);
        ghost.observe_direct_consumer_removed(1, &ConsumerKey::new("A", "S", "M"), &KEPT);
        assert_eq!(flagged(ghost), None);

        // A lying disk excuses it, as every divergence from the reference state.
        let (mut ghost, key, _) = ghost_with_mirror(false);
        ghost.tainted.insert(3);
        ghost.observe_direct_consumer_removed(1, &key, &KEPT);
        assert_eq!((ghost.violation.is_none(), ghost.excused), (true, 1));
    }
}
