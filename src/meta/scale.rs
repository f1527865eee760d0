//! Replica changes (§2.2): an update that asks a stream or a consumer for another replica count
//! keeps its incarnation (created time) and its data, and gives its group other peers.
//!
//! - A replicated group keeps its name and its raft node. Scaled up, its new members join it
//!   (they wait for a leader's data) and the group leader adds them to the raft membership one
//!   at a time (`sync_group_peers`). Scaled down, the assignment keeps its peers at first: the
//!   group leader removes the members least caught up (never itself), then reports the peers
//!   left, and [`shrink_to_group`] drops the others from the assignment. A member never leaves
//!   a raft membership that still needs its vote, and the peers kept hold what was committed.
//! - An R1 stream has no raft node: its messages are in its store on its one server. Scaled up,
//!   it gets a group of a new name on its server and new peers; that server founds the group
//!   with its store carried over as the group's first entry, and the new peers join it.
//! - A consumer scaled up from one replica, or down, gets a fresh group (consumers hold no data
//!   here, and a fresh group never waits for dropped members), led first by a server it keeps.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::RngCore;

use super::entry::MetaEntry;
use super::inflight::Inflight;
use super::model::{ConsumerAssignment, PeerId, RaftGroup, StreamAssignment, StreamKey};
use super::request::{ApiError, Handler};
use super::state::MetaState;

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
        if replicas < have.len() {
            // Scaled down: the group leader shrinks the group first (see the module doc).
            return Ok(sa.group.clone());
        }
        let mut peers: Vec<PeerId> = {
            let cluster = self.ctx.clusters.iter().find(|c| have.iter().any(|p| c.peers.contains(p)));
            let mut candidates: Vec<PeerId> = self
                .ctx
                .meta_peers
                .iter()
                .copied()
                .filter(|p| !have.contains(p) && !self.ctx.unplaceable_peers.contains(p))
                .filter(|p| cluster.is_none_or(|c| c.peers.contains(p)))
                // New members are online and current (see `LeaderContext::lagging_peers`).
                .filter(|p| online.contains(p) && !self.ctx.lagging_peers.contains(p))
                .collect();
            candidates.shuffle(rng);
            let added = replicas - have.len();
            if candidates.len() < added {
                return Err(ApiError::InsufficientResources);
            }
            have.iter().copied().chain(candidates.into_iter().take(added)).collect()
        };
        peers.sort_unstable();
        if peers.iter().filter(|p| online.contains(p)).count() < quorum(peers.len()) {
            return Err(ApiError::InsufficientResources);
        }
        let group = if sa.replicated() {
            sa.group.moved_to(peers, None)
        } else {
            // The store's server founds the new group; the others join it.
            let store = &sa.group;
            let joiners = peers.iter().copied().filter(|p| !store.is_member(*p)).collect();
            RaftGroup { preferred: None, joiners, ..self.new_group("S", peers, rng)? }
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
        let group = if (ca.group.peers.len() == 1 && replicas > 1) || replicas < ca.group.peers.len() {
            // A fresh group, whose first leader is a server it keeps (the old one from one).
            let fresh = self.new_group("C", peers, rng)?;
            let kept = ca.group.peers.iter().copied().find(|p| fresh.is_member(*p) && online.contains(p));
            RaftGroup { preferred: kept.or(fresh.preferred), ..fresh }
        } else {
            ca.group.moved_to(peers, None)
        };
        assert_eq!(group.check(), Ok(()), "a rescaled group is valid");
        Ok(group)
    }
}

/// A member of a scaled-down stream's group as the group's leader sees it when it shrinks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkMember {
    pub peer: PeerId,
    /// The highest index the leader knows it holds.
    pub match_index: u64,
    /// When it last answered the leader in the leader's term, on the leader's clock (`None`:
    /// not yet; a new leader's grace for its members is no sign of life, default seed 3554).
    pub heard_ms: Option<u64>,
}

/// A member counts as heard from lately by a shrinking leader when it answered within this
/// many heartbeats (see [`shrink_removal`]); the oracle judges a shrink by the same window.
pub const HEARD_LATELY_HEARTBEATS: u64 = 2;

/// The member the leader `me` of a scaled-down stream's group removes next to shrink it (it
/// is one of `members`, and never removed itself), or `None` to wait a tick. It removes the
/// member least caught up among those heard from lately, so that the member learns its
/// removal (the leader's last Append) and never campaigns on a stale membership; but a silent
/// one when removing a member heard from would leave fewer heard from than the smaller
/// group's quorum (default seed 50 of v13: a member that does not run the stream kept, a
/// running one removed, and the group never led again). A silent member that comes back
/// counts a membership nobody votes for it in.
///
/// Heard from lately is within two heartbeats (a live member answers each one), not the
/// lost-quorum window of ten: a member that stopped the group a moment ago answered within
/// that window, and elections seed 2471 of v15 kept one that had stopped 570 ms before (a
/// consumer it judged unsupported stopped the stream there, §7), tied on match with one that
/// had answered every heartbeat since: it removed the live one, and the group of two never
/// elected again. `keeps_silent` is the bug switch `shrink-keeps-silent-member`: the old rule,
/// the laggard heard from within `lost_quorum_ms` whatever it leaves, never a silent member.
pub fn shrink_removal(
    me: PeerId,
    members: &[ShrinkMember],
    now_ms: u64,
    heartbeat_ms: u64,
    lost_quorum_ms: u64,
    keeps_silent: bool,
) -> Option<PeerId> {
    assert!(members.iter().any(|m| m.peer == me), "the leader shrinks a group it is a member of");
    assert!(members.len() > 1, "a group of one has no member to remove but its leader");
    let window = if keeps_silent { lost_quorum_ms } else { HEARD_LATELY_HEARTBEATS * heartbeat_ms };
    let heard = |m: &ShrinkMember| m.peer == me || m.heard_ms.is_some_and(|at| now_ms < at.saturating_add(window));
    let by_lag = |m: &&ShrinkMember| (m.match_index, std::cmp::Reverse(m.peer));
    let others = || members.iter().filter(|m| m.peer != me);
    let laggard = others().filter(|m| heard(m)).min_by_key(by_lag).map(|m| m.peer);
    let silent = others().filter(|m| !heard(m)).min_by_key(by_lag).map(|m| m.peer);
    let heard_after = |removed: PeerId| {
        let left = members.iter().filter(|m| m.peer != removed && heard(m)).count();
        left >= quorum(members.len() - 1)
    };
    match (laggard, silent) {
        (laggard, _) if keeps_silent => laggard,
        (Some(p), _) if heard_after(p) => Some(p),
        (_, Some(p)) if heard_after(p) => Some(p),
        _ => None,
    }
}

/// The update that drops from scaled-down stream `key` the peers its group `group` no longer
/// counts, once the group's leader reports the raft membership `peers` it shrank to: only for
/// the assignment in view (applied or inflight) that still runs in that group with more peers
/// than its replicas, `peers` being as many of its own peers as its replicas ask for. A
/// stream this server does not support is left alone: its consumers could not follow, as the
/// peer reconcile leaves such a stream's assets alone (default seed 16826 of v13: consumers
/// kept peers the shrunk stream no longer had).
pub fn shrink_to_group(
    state: &MetaState,
    inflight: &Inflight,
    key: &StreamKey,
    group: &str,
    peers: &[PeerId],
) -> Option<MetaEntry> {
    if state.stream_unsupported(key).is_some() {
        return None;
    }
    let sa = inflight.stream_or_inflight(state, key)?;
    let replicas = usize::from(sa.config().ok()?.into_config().normalized().replicas);
    let fits = peers.len() == replicas && peers.iter().all(|p| sa.group.is_member(*p));
    if sa.group.name != group || sa.group.peers.len() <= replicas || !fits {
        return None;
    }
    let mut peers = peers.to_vec();
    peers.sort_unstable();
    let group = sa.group.moved_to(peers, None);
    Some(MetaEntry::UpdateStream { sa: StreamAssignment { group, ..sa.without_consumers() }, reply: None })
}
