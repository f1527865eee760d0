//! Peer management on the meta leader (spec §8.2, §8.3): streams placed on servers that are
//! no longer meta peers (stale peers) or on fewer servers than their replica count (missing
//! peers) are re-placed, and their consumers remapped onto the stream's new peers. Pure: the
//! driver proposes what comes out, when a peer removal applies and when it becomes leader.
//!
//! The group keeps its name (NATS `removePeerFromStreamLocked` keeps it too): the surviving
//! members keep their data, and the group's own raft membership follows the assignment.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::RngCore;

use super::bugs::MetaBugs;
use super::entry::MetaEntry;
use super::entry::Reply;
use super::error::ApiError;
use super::inflight::Inflight;
use super::model::{ConsumerAssignment, PeerId, RaftGroup, StreamAssignment, StreamKey};
use super::request::{Handler, LeaderContext};
use super::state::MetaState;

/// What the leader proposes to heal stale and missing peers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerRemap {
    /// Stream updates (new peers, same group), each followed by its consumers' remaps.
    pub entries: Vec<MetaEntry>,
    /// Groups none of whose peers is left: their data went with the removed servers.
    pub emptied_groups: Vec<String>,
}

/// Group peers that are not meta peers (NATS `stalePeers`).
pub fn stale_peers(group: &RaftGroup, meta_peers: &[PeerId]) -> Vec<PeerId> {
    group.peers.iter().copied().filter(|p| !meta_peers.contains(p)).collect()
}

/// The replica count a stream's config asks for; `None` when the config does not decode.
fn replicas_wanted(sa: &StreamAssignment) -> Option<usize> {
    let config = sa.config().ok()?.into_config().normalized();
    Some(usize::from(config.replicas).max(1))
}

/// Supported streams of the applied-or-inflight view, by key.
fn streams_in_view<'a>(state: &'a MetaState, inflight: &'a Inflight) -> Vec<&'a StreamAssignment> {
    let keys: BTreeSet<&StreamKey> =
        state.snapshot_streams().keys().chain(inflight.streams().map(|(k, _)| k)).collect();
    keys.into_iter()
        .filter(|key| state.stream_unsupported(key).is_none())
        .filter_map(|key| inflight.stream_or_inflight(state, key))
        .collect()
}

/// How many peers a consumer of `sa` should have (NATS `remapConsumerAssignments`): its
/// configured replicas, where 0 or more than the stream asks for means the stream's, bounded
/// by the stream's peers. A config that does not decode keeps the consumer's size. Under
/// `consumer-not-topped-up` the size is the consumer's current one instead, so a consumer a
/// peer removal shrank never grows back.
pub fn consumer_peers_wanted(ca: &ConsumerAssignment, sa: &StreamAssignment, bugs: &MetaBugs) -> usize {
    let stream_peers = sa.group.peers.len();
    let current = ca.group.peers.len().min(stream_peers);
    if bugs.consumer_not_topped_up {
        return current;
    }
    let (Some(stream_replicas), Ok(config)) = (replicas_wanted(sa), ca.config()) else { return current };
    let configured = usize::from(config.config().replicas);
    let replicas = if configured == 0 || configured > stream_replicas { stream_replicas } else { configured };
    replicas.min(stream_peers)
}

/// Whether any stream needs re-placing, or any consumer re-sizing: cheap, and draws nothing,
/// so a leader with nothing to heal leaves the seed's random stream untouched.
pub fn peers_need_reconcile(state: &MetaState, inflight: &Inflight, ctx: &LeaderContext) -> bool {
    streams_in_view(state, inflight).into_iter().any(|sa| {
        let short = replicas_wanted(sa).is_some_and(|r| sa.group.peers.len() < r);
        // A short group only counts when some meta peer could top it up.
        let room = ctx.meta_peers.iter().any(|p| !sa.group.is_member(*p));
        !stale_peers(&sa.group, &ctx.meta_peers).is_empty()
            || (short && room)
            || strays(state, inflight, sa)
            || short_consumers(state, inflight, sa, &ctx.bugs)
    })
}

/// Whether a consumer of `sa` has fewer peers than it should have on the stream's peers.
fn short_consumers(state: &MetaState, inflight: &Inflight, sa: &StreamAssignment, bugs: &MetaBugs) -> bool {
    inflight
        .consumers_or_inflight(state, &sa.key())
        .iter()
        .any(|ca| ca.group.peers.len() < consumer_peers_wanted(ca, sa, bugs))
}

/// Whether a consumer of `sa` lives on peers outside the stream's group: one created from the
/// stream's old peers, or whose remap was lost with a leader change while the stream's own
/// re-placement applied (peers seed 1809).
fn strays(state: &MetaState, inflight: &Inflight, sa: &StreamAssignment) -> bool {
    inflight
        .consumers_or_inflight(state, &sa.key())
        .iter()
        .any(|ca| !ca.group.peers.iter().all(|p| sa.group.is_member(*p)))
}

/// NATS `reconcilePeerAssignments` for all peers: drop stale peers, top every stream up to its
/// replica count from the meta peers (online first, full ones skipped, within the stream's
/// cluster), and remap its consumers onto the result. A stream with nowhere to go keeps
/// what it has ("heal later").
pub fn reconcile_peers(
    state: &MetaState,
    inflight: &Inflight,
    ctx: &LeaderContext,
    rng: &mut dyn RngCore,
) -> PeerRemap {
    let mut remap = PeerRemap::default();
    for sa in streams_in_view(state, inflight) {
        let Some(replicas) = replicas_wanted(sa) else { continue };
        let kept: Vec<PeerId> = sa.group.peers.iter().copied().filter(|p| ctx.meta_peers.contains(p)).collect();
        if kept.len() == sa.group.peers.len() && kept.len() >= replicas {
            // The stream stays; its consumers still follow it.
            for ca in inflight.consumers_or_inflight(state, &sa.key()) {
                remap.entries.extend(remap_consumer(state, inflight, ca, sa, ctx, rng));
            }
            continue;
        }
        let mut peers = kept.clone();
        let mut candidates = candidates(sa, &kept, ctx);
        candidates.shuffle(rng);
        // Stable: shuffled order within the online and offline classes.
        candidates.sort_by_key(|p| !ctx.online_peers.contains(p));
        peers.extend(candidates.into_iter().take(replicas.saturating_sub(kept.len())));
        peers.sort_unstable();
        if peers.is_empty() || peers == sa.group.peers {
            // Nowhere to go: the stream keeps what it has, and its consumers still follow it.
            for ca in inflight.consumers_or_inflight(state, &sa.key()) {
                remap.entries.extend(remap_consumer(state, inflight, ca, sa, ctx, rng));
            }
            continue;
        }
        assert!(peers.iter().all(|p| ctx.meta_peers.contains(p)), "re-placed only on meta peers (S11)");
        assert!(peers.len() <= replicas.max(sa.group.peers.len()), "re-placement never grows past the replicas");
        let name = if kept.is_empty() {
            remap.emptied_groups.push(sa.group.name.clone());
            // A group that starts over gets a new name: a member the group left earlier may
            // still hold a copy of the old history, whose terms a new member's log would not
            // outrank (churn seed 3667 of v13: a server shrunk out of the group, re-added under
            // the old name, could have outvoted the new member).
            let handler = Handler { state, view: inflight, limits: inflight, ctx };
            match handler.fresh_group_name("S", replicas, rng) {
                Ok(name) => name,
                Err(_) => continue,
            }
        } else {
            sa.group.name.clone()
        };
        let preferred = first_leader(kept.is_empty(), &peers, ctx);
        let group = if kept.is_empty() {
            RaftGroup::founded(name, peers.clone(), preferred)
        } else {
            sa.group.moved_to(peers.clone(), preferred)
        };
        let moved = StreamAssignment { group, ..sa.without_consumers() };
        remap.entries.push(MetaEntry::UpdateStream { sa: moved.clone(), reply: None });
        for ca in inflight.consumers_or_inflight(state, &sa.key()) {
            if let Some(entry) = remap_consumer(state, inflight, ca, &moved, ctx, rng) {
                if kept.is_empty() || !ca.group.peers.iter().any(|p| peers.contains(p)) {
                    remap.emptied_groups.push(ca.group.name.clone());
                }
                remap.entries.push(entry);
            }
        }
    }
    remap
}

impl Handler<'_> {
    /// NATS `STREAM.PEER.REMOVE` (§8.2): `peer` leaves stream `key`'s group and a replacement
    /// takes its place, or the request is refused (NATS's `requireReplicas`: a group is never
    /// left short by an operator). The replacement is a meta peer with room in the stream's
    /// cluster that is online and current, as for a scale-up: one that missed leaving the group
    /// could outvote the others from a stale log. A replicated group keeps its name: the
    /// replacement joins it and the group's leader adds it before dropping `peer` (adds
    /// first). An R1 stream moves to a fresh group on the replacement and its messages stay
    /// behind, as in NATS, where the new server starts the stream empty. The stream's
    /// consumers follow through the leader's peer reconcile once the update applies.
    pub(super) fn remove_stream_peer(
        &self,
        key: &StreamKey,
        peer: PeerId,
        reply: Option<Reply>,
        rng: &mut dyn RngCore,
    ) -> Result<MetaEntry, ApiError> {
        let sa = self.view.stream_or_inflight(self.state, key).ok_or(ApiError::StreamNotFound)?;
        if let Some(reason) = self.state.stream_unsupported(key) {
            return Err(ApiError::Offline(reason.into()));
        }
        if !sa.group.is_member(peer) {
            return Err(ApiError::PeerNotMember);
        }
        let replicas = replicas_wanted(sa).ok_or(ApiError::PeerRemapFailed)?;
        let kept: Vec<PeerId> = sa.group.peers.iter().copied().filter(|&p| p != peer).collect();
        // A scale-down still shrinking its group may have a peer to spare.
        let missing = replicas.saturating_sub(kept.len());
        let mut spare: Vec<PeerId> = candidates(sa, &kept, self.ctx)
            .into_iter()
            .filter(|p| self.ctx.online_peers.contains(p) && !self.ctx.lagging_peers.contains(p))
            .collect();
        if spare.len() < missing {
            return Err(ApiError::PeerRemapFailed);
        }
        spare.shuffle(rng);
        let mut peers: Vec<PeerId> = kept.iter().copied().chain(spare.into_iter().take(missing)).collect();
        peers.sort_unstable();
        assert!(!peers.contains(&peer), "the removed peer is out of the group");
        assert!(peers.len() >= replicas.min(sa.group.peers.len()), "a peer removal never leaves a group short");
        let group = if kept.is_empty() {
            // Nothing of the old group stays: a fresh group, as for a re-placement that starts over.
            let name = self.fresh_group_name("S", replicas, rng)?;
            RaftGroup::founded(name, peers.clone(), peers.first().copied())
        } else {
            sa.group.moved_to(peers, None)
        };
        assert_eq!(group.check(), Ok(()), "a re-placed group is valid");
        Ok(MetaEntry::UpdateStream { sa: StreamAssignment { group, ..sa.without_consumers() }, reply })
    }
}

/// The preferred member of a re-placed group. `None` says the group keeps running and every
/// new member joins it (waits for a leader's data before it campaigns); a group none of whose
/// members survived starts over like a new one, so a member must campaign.
fn first_leader(emptied: bool, peers: &[PeerId], ctx: &LeaderContext) -> Option<PeerId> {
    if !emptied {
        return None;
    }
    peers.iter().copied().find(|p| ctx.online_peers.contains(p)).or(peers.first().copied())
}

/// Meta peers that may join `sa`'s group: not in it, not full, and in the stream's cluster
/// when the cluster is a super-cluster.
fn candidates(sa: &StreamAssignment, kept: &[PeerId], ctx: &LeaderContext) -> Vec<PeerId> {
    let placed = sa.config().ok().and_then(|c| c.into_config().placement).map(|p| p.cluster);
    let cluster = ctx.clusters.iter().find(|c| match &placed {
        Some(name) => &c.name == name,
        None => sa.group.peers.iter().any(|p| c.peers.contains(p)),
    });
    ctx.meta_peers
        .iter()
        .copied()
        .filter(|p| !kept.contains(p) && !sa.group.is_member(*p) && !ctx.unplaceable_peers.contains(p))
        .filter(|p| ctx.clusters.is_empty() || cluster.is_some_and(|c| c.peers.contains(p)))
        .collect()
}

/// A consumer keeps its peers that stay in the stream's group (at most as many as it should
/// have) and is backfilled at random from the others up to its size
/// ([`consumer_peers_wanted`]); a durable that lost every peer jumps to new ones, an
/// ephemeral is deleted (§8.3). `None` when nothing changes.
fn remap_consumer(
    state: &MetaState,
    inflight: &Inflight,
    ca: &ConsumerAssignment,
    sa: &StreamAssignment,
    ctx: &LeaderContext,
    rng: &mut dyn RngCore,
) -> Option<MetaEntry> {
    let stream_peers = &sa.group.peers;
    let wanted = consumer_peers_wanted(ca, sa, &ctx.bugs);
    let mut peers: Vec<PeerId> = ca.group.peers.iter().copied().filter(|p| stream_peers.contains(p)).collect();
    if peers.len() == ca.group.peers.len() && peers.len() == wanted {
        return None;
    }
    let ephemeral = ca.config().ok().is_some_and(|c| c.config().durable_name.is_none());
    if peers.is_empty() && ephemeral {
        return Some(MetaEntry::RemoveConsumer { ca: ca.clone(), reply: None });
    }
    let emptied = peers.is_empty();
    peers.truncate(wanted);
    let mut spare: Vec<PeerId> = stream_peers.iter().copied().filter(|p| !peers.contains(p)).collect();
    spare.shuffle(rng);
    peers.extend(spare.into_iter().take(wanted.saturating_sub(peers.len())));
    peers.sort_unstable();
    assert!(!peers.is_empty(), "a remapped consumer keeps at least one peer");
    assert!(peers.iter().all(|p| stream_peers.contains(p)), "a consumer lives on its stream's peers");
    // A member still in the meta group that the consumer drops wipes its copy at once, and
    // re-added later it would start empty while the raft membership still counted it.
    let drops_live = ca.group.peers.iter().any(|p| !peers.contains(p) && ctx.meta_peers.contains(p));
    let group = if (ca.group.peers.len() == 1 && peers.len() > 1) || drops_live || emptied {
        // A fresh group, first led by a server it keeps (or the first, when it kept none).
        // From one replica: its one member ran no raft node, but kept the files of the group
        // it had before it shrank, whose members are gone; restarted from them it could
        // outvote the new members. Emptied: it starts over, as a stream's group does.
        let handler = Handler { state, view: inflight, limits: inflight, ctx };
        let name = handler.fresh_group_name("C", peers.len(), rng).ok()?;
        let preferred = ca.group.peers.iter().copied().find(|p| peers.contains(p)).or(peers.first().copied());
        RaftGroup::founded(name, peers, preferred)
    } else {
        let preferred = first_leader(emptied, &peers, ctx);
        ca.group.moved_to(peers, preferred)
    };
    Some(MetaEntry::AssignConsumer { ca: ConsumerAssignment { group, ..ca.clone() }, reply: None })
}
