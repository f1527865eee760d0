//! What the harness does with each thing a server observed: most go into the ghost's memory
//! of the run; a few are invariants judged on the spot, from the facts the observation
//! carries (S11, S18, S20 as the meta leader proposes and applies, S12's view in sync, and
//! a failed-create report answered on the group it was about).

use sim::NodeIndex;

use super::ghost::{DirectConsumerFacts, Ghost};
use crate::meta::{MetaEntry, PeerId, RaftGroup, StreamAssignment, StreamKey};
use crate::server::Observation;

/// Feed one observation of `node` to the ghost, judging what is judged on the spot.
pub fn observe(ghost: &mut Ghost, node: NodeIndex, observation: Observation<'_>) {
    match observation {
        Observation::Leads { group, term, commit } => ghost.observe_leader(group, node, term, commit),
        Observation::Applied { group, index, term, digest, chain } => {
            ghost.observe_apply(group, node, index, term, digest, chain)
        }
        Observation::SnapshotInstalled { group, index, chain } => ghost.observe_snapshot(group, node, index, chain),
        Observation::Appended { proposed_term, entry_term } => ghost.observe_append(node, proposed_term, entry_term),
        Observation::MessagesAcked { group, stream, created_ms, count } => {
            ghost.observe_acked_messages(group, stream, created_ms, node, count)
        }
        Observation::GroupEmptied { group } => ghost.observe_group_emptied(group),
        Observation::GroupDropped { group } => ghost.observe_group_dropped(group, node),
        Observation::StoreCarried { stream, from, to, messages } => {
            ghost.observe_store_carried(node, stream, from, to, messages)
        }
        Observation::MetaEntry { index, data } => ghost.observe_meta_entry(index, data),
        Observation::Projection { index, digest } => ghost.observe_projection(node, index, digest),
        Observation::MetaSnapshotTaken { index, digest } => ghost.observe_meta_snapshot_taken(node, index, digest),
        Observation::MetaSnapshotInstalled { index, digest, streams } => {
            ghost.observe_meta_snapshot(node, index, digest, streams)
        }
        Observation::Recovered { index, digest } => ghost.observe_recovered(node, index, digest),
        Observation::StartupOrphans { local, state } => ghost.observe_startup_orphans(node, local, state),
        Observation::StreamAssigned { assignment, applied } => stream_assigned(ghost, node, assignment, applied),
        Observation::OrphansRemoving { in_sync, streams, consumers } => {
            orphans_removing(ghost, node, in_sync, streams, consumers)
        }
        Observation::OrphanRemoved { stream, consumer, created_ms } => {
            ghost.observe_orphan_removed(node, &stream.account, &stream.name, consumer, created_ms)
        }
        Observation::DirectConsumerRemoved { consumer, created_ms, running, origin_group, leads_origin } => {
            let local = DirectConsumerFacts { created_ms, running, origin_group, leads_origin };
            ghost.observe_direct_consumer_removed(node, consumer, &local)
        }
        Observation::MetaActing { acting } => ghost.observe_meta_acting(node, acting),
        Observation::RemovalApplied { peer, leader_term } => {
            ghost.observe_peer_removal_applied(node, peer, leader_term)
        }
        Observation::Membership { index, peer, member: false } => ghost.observe_peer_removed(index, peer),
        Observation::Membership { index, peer, member: true } => ghost.observe_peer_added(index, peer),
        Observation::PeerRemoveProposed { term, peer } => ghost.observe_peer_remove_proposed(node, term, peer),
        Observation::ShrinkRemoving { group, index, removed, now_ms } => {
            ghost.observe_shrink_removing(node, group, index, removed, now_ms)
        }
        Observation::PeerRemoveAnswered { term, peer } => ghost.observe_peer_remove_answered(node, term, peer),
        Observation::PeerRemoveDropped => ghost.observe_peer_remove_dropped(node),
        Observation::MetaProposed { entry, meta_peers, kept, stream } => {
            meta_proposed(ghost, node, entry, meta_peers, kept, stream)
        }
        Observation::ResultRemoves { stream, reported, removed } => {
            result_removes(ghost, node, stream, reported, removed)
        }
        Observation::RequestOpened { request, target, watched } => {
            ghost.observe_request_opened(node, request, target, watched)
        }
        Observation::RequestAnswered { request } => ghost.observe_request_answered(node, request),
        Observation::RequestTimedOut { request } => ghost.observe_request_timed_out(node, request),
        Observation::InfoRouted { origin, request, group } => ghost.observe_info_routed(origin, request, group),
        Observation::HandedOver { group, term, heir } => ghost.observe_handed_over(node, group, term, heir),
    }
}

/// S18: a stream is (re)assigned only with the group and created time it already has.
/// Concurrent identical creates must reuse the first one's; a new incarnation needs a delete
/// first. Two groups for one stream (#3679) show up here on every server.
fn stream_assigned(ghost: &mut Ghost, node: NodeIndex, sa: &StreamAssignment, applied: Option<&StreamAssignment>) {
    let Some(old) = applied else { return };
    if old.group.name != sa.group.name || old.created_ms != sa.created_ms {
        let message = format!(
            "stream {} reassigned from group {} (created {}) to {} (created {}) without a delete",
            sa.key(),
            old.group.name,
            old.created_ms,
            sa.group.name,
            sa.created_ms
        );
        // A leader whose disk lost the committed assignment proposes a fresh one: excused then.
        ghost.diverged("meta-idempotent-create", node, message);
    }
}

/// S12's precondition: orphans are removed only from a view in sync with the leader's.
fn orphans_removing(ghost: &mut Ghost, node: NodeIndex, in_sync: bool, streams: usize, consumers: usize) {
    if !in_sync {
        let message = format!(
            "removes {streams} streams and {consumers} consumers as orphans with no known meta leader or an unhealthy meta group"
        );
        ghost.flag("meta-orphan-stale-view", node, message);
    }
}

/// S11 and S20 as the meta leader proposes.
fn meta_proposed(
    ghost: &mut Ghost,
    node: NodeIndex,
    entry: &MetaEntry,
    meta_peers: &[PeerId],
    kept: Option<&RaftGroup>,
    stream: Option<&RaftGroup>,
) {
    if !placed_on_known_peers(entry, meta_peers, kept, stream) {
        let message = format!("proposed {entry:?} on peers outside the meta group {meta_peers:?}");
        ghost.flag("meta-placement-known-peers", node, message);
    }
    if let Some(message) =
        placed_without_jetstream(entry, ghost.jetstream_disabled.as_deref().unwrap_or_default(), kept)
    {
        ghost.flag("meta-placement-runs-jetstream", node, message);
    }
    if let MetaEntry::AssignStream { sa, .. } = entry {
        if kept.is_none_or(|k| k.name != sa.group.name) {
            ghost.observe_new_placement(node, sa.key().to_string(), &sa.group.peers);
        }
    }
    if let MetaEntry::AssignStream { sa, .. } | MetaEntry::UpdateStream { sa, .. } = entry {
        if sa.sync.is_empty() {
            ghost.flag("meta-sync-subject", node, format!("proposed stream {} without a sync subject", sa.key()));
        }
    }
}

/// S11: a proposal places only on meta peers, except for members a group already has
/// (`kept`: a re-placement keeps the members it can), and a consumer's members taken from
/// its stream's group (NATS copies the stream's peers, stale ones included until the stream
/// is re-placed; the stream's re-placement then moves it).
fn placed_on_known_peers(
    entry: &MetaEntry,
    meta_peers: &[PeerId],
    kept: Option<&RaftGroup>,
    stream: Option<&RaftGroup>,
) -> bool {
    let group = match entry {
        MetaEntry::AssignStream { sa, .. } | MetaEntry::UpdateStream { sa, .. } => &sa.group,
        MetaEntry::AssignConsumer { ca, .. } => &ca.group,
        _ => return true,
    };
    let kept = |p: &PeerId| kept.is_some_and(|e| e.name == group.name && e.peers.contains(p));
    let inherited = |p: &PeerId| stream.is_some_and(|s| s.peers.contains(p));
    group.peers.iter().all(|p| kept(p) || inherited(p) || meta_peers.contains(p))
}

/// Issue 18 item 1: a stream is never placed on a server that runs without JetStream (NATS
/// selects only servers whose stats carry a JetStream config). Members a re-placement keeps
/// are not placed anew, and a consumer's peers come from its stream.
fn placed_without_jetstream(entry: &MetaEntry, disabled: &[NodeIndex], kept: Option<&RaftGroup>) -> Option<String> {
    let (MetaEntry::AssignStream { sa, .. } | MetaEntry::UpdateStream { sa, .. }) = entry else { return None };
    let kept = |p: &PeerId| kept.is_some_and(|e| e.name == sa.group.name && e.peers.contains(p));
    let peer = sa.group.peers.iter().find(|p| disabled.contains(p) && !kept(p))?;
    Some(format!(
        "proposed stream {} on {:?} ({}): n{peer} runs without JetStream",
        sa.key(),
        sa.group.peers,
        sa.group.name
    ))
}

/// The leader removes a stream on a report about that very group, never about another (PR
/// #6121: one stream hopping from group to group on repeated reports).
fn result_removes(ghost: &mut Ghost, node: NodeIndex, stream: &StreamKey, reported: &str, removed: &str) {
    if removed != reported {
        let message = format!("removes group {removed} of {stream} on a report about group {reported}");
        ghost.flag("meta-result-removes-reported-group", node, message);
    }
}
