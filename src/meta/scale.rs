//! Replica changes (§2.2): an update that asks a stream or a consumer for another replica count
//! keeps its incarnation (created time) and its data, and gives its group other peers.
//!
//! - A replicated group keeps its name and its raft node: new members join it (they wait for a
//!   leader's data), dropped ones leave, and the group leader moves the raft membership after
//!   the assignment one change at a time (`sync_group_peers`).
//! - An R1 stream has no raft node: its messages are in its store on its one server. Scaled up,
//!   it gets a group of a new name on its server and new peers; that server founds the group
//!   with its store carried over as the group's first entry, and the new peers join it.
//! - An R1 consumer scaled up gets a fresh group (consumers hold no data here), led first by its
//!   old server as NATS prefers it.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::RngCore;

use super::model::{ConsumerAssignment, PeerId, RaftGroup, StreamAssignment};
use super::request::{ApiError, Handler};

/// Raft quorum of a group of `members`.
fn quorum(members: usize) -> usize {
    members / 2 + 1
}

impl Handler<'_> {
    /// The group `sa` moves to for `replicas` replicas. Scaling up keeps every current peer and
    /// adds meta peers with room (online first, in the stream's cluster); it is refused when too
    /// few are left, or the new group would lack an online quorum. Scaling down keeps the
    /// online peers first.
    pub(super) fn rescale_stream_group(
        &self,
        sa: &StreamAssignment,
        replicas: usize,
        rng: &mut dyn RngCore,
    ) -> Result<RaftGroup, ApiError> {
        assert!(replicas >= 1, "a stream has at least one replica");
        let online = &self.ctx.online_peers;
        let have = &sa.group.peers;
        let mut peers: Vec<PeerId> = if replicas > have.len() {
            let cluster = self.ctx.clusters.iter().find(|c| have.iter().any(|p| c.peers.contains(p)));
            let mut candidates: Vec<PeerId> = self
                .ctx
                .meta_peers
                .iter()
                .copied()
                .filter(|p| !have.contains(p) && !self.ctx.unplaceable_peers.contains(p))
                .filter(|p| cluster.is_none_or(|c| c.peers.contains(p)))
                .collect();
            candidates.shuffle(rng);
            // Stable: shuffled order within the online and offline classes.
            candidates.sort_by_key(|p| !online.contains(p));
            let added = replicas - have.len();
            if candidates.len() < added {
                return Err(ApiError::InsufficientResources);
            }
            have.iter().copied().chain(candidates.into_iter().take(added)).collect()
        } else {
            let mut kept = have.clone();
            kept.sort_by_key(|p| !online.contains(p));
            kept.truncate(replicas);
            kept
        };
        peers.sort_unstable();
        if peers.iter().filter(|p| online.contains(p)).count() < quorum(peers.len()) {
            return Err(ApiError::InsufficientResources);
        }
        let group = if sa.replicated() {
            RaftGroup { name: sa.group.name.clone(), peers, preferred: None }
        } else {
            // The store's server founds the new group; the others join it.
            RaftGroup { preferred: None, ..self.new_group("S", peers, rng)? }
        };
        assert_eq!(group.check(), Ok(()), "a rescaled group is valid");
        assert_eq!(group.peers.len(), replicas, "a rescaled stream has the replicas it asked for");
        Ok(group)
    }

    /// The group consumer `ca` of a stream with `stream_peers` moves to for `replicas`
    /// replicas: its peers that stay, topped up at random from the stream's.
    pub(super) fn rescale_consumer_group(
        &self,
        ca: &ConsumerAssignment,
        stream_peers: &[PeerId],
        replicas: usize,
        rng: &mut dyn RngCore,
    ) -> Result<RaftGroup, ApiError> {
        assert!(replicas >= 1 && replicas <= stream_peers.len(), "a consumer lives on its stream's peers");
        let online = &self.ctx.online_peers;
        let mut peers: Vec<PeerId> = ca.group.peers.iter().copied().filter(|p| stream_peers.contains(p)).collect();
        peers.sort_by_key(|p| !online.contains(p));
        peers.truncate(replicas);
        let kept: BTreeSet<PeerId> = peers.iter().copied().collect();
        let mut spare: Vec<PeerId> = stream_peers.iter().copied().filter(|p| !kept.contains(p)).collect();
        spare.shuffle(rng);
        spare.sort_by_key(|p| !online.contains(p));
        peers.extend(spare.into_iter().take(replicas - peers.len()));
        peers.sort_unstable();
        if peers.iter().filter(|p| online.contains(p)).count() < quorum(peers.len()) {
            return Err(ApiError::InsufficientResources);
        }
        let group = if ca.group.peers.len() == 1 && replicas > 1 {
            // From one replica: a fresh group, whose first leader is the old server.
            let old = ca.group.peers[0];
            let fresh = self.new_group("C", peers, rng)?;
            let preferred = Some(old).filter(|p| fresh.is_member(*p)).or(fresh.preferred);
            RaftGroup { preferred, ..fresh }
        } else {
            RaftGroup { name: ca.group.name.clone(), peers, preferred: None }
        };
        assert_eq!(group.check(), Ok(()), "a rescaled group is valid");
        Ok(group)
    }
}
