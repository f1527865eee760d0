//! Meta-layer invariants (spec §10) over every running server's meta layer.

use std::collections::BTreeMap;

use sim::{CheckFailure, Cluster, Touched};

use super::meta_members;
use super::scope::{CheckMemo, LayerMark};
use crate::harness::ghost::{Ghost, Verdict};
use crate::meta::model::StreamCursor;
use crate::meta::{self, ConsumerAssignment, MetaBugs};
use crate::server::jetstream::MetaLayer;
use crate::server::wire::META;
use crate::server::Server;

fn fail(invariant: &str, node: u32, message: String) -> Result<(), CheckFailure> {
    Err(CheckFailure::new(invariant, Some(node), message))
}

fn layers<'a>(cluster: &'a Cluster<'_, Server>) -> impl Iterator<Item = (u32, &'a Server, &'a MetaLayer)> + 'a {
    cluster.running().filter_map(|(id, s)| meta_layer(s).map(|m| (id, s, m)))
}

/// After every event: S2 for the meta layer, S4, S9, S10, S15, S16, S17 (a removed server
/// disables itself), S19, S21. (S11, S18 and S20 are judged as the servers propose and apply,
/// in [`crate::harness::observe`].)
///
/// What one server's meta layer holds is checked on the server an event `touched` (every
/// server after the world acted): the others' layers did not change and passed before. What
/// the ghost's memory decides (the barrier) and what compares servers is checked everywhere.
///
/// After an event on one server, the other servers' checks are passed over when nothing
/// they read moved: their layers did not, and neither did the ghost's meta commits, the
/// tainted disks or the touched server's projection ([`MetaSeen`]). Every server passed the
/// check before, so the first violation can only be the touched server's.
pub fn safety(
    ghost: &Ghost,
    memo: &mut CheckMemo,
    cluster: &Cluster<'_, Server>,
    touched: Touched,
) -> Result<(), CheckFailure> {
    removed_servers_disabled(ghost, cluster)?;
    if let Touched::Node(id) = touched {
        if memo.meta_seen.holds(GhostSeen::of(ghost), id, LayerSeen::of(cluster, id)) {
            let Some((server, meta)) = layer_of(cluster, id) else { return Ok(()) };
            leadership_holds(ghost, id, server, meta)?;
            return layer_holds(ghost, Some(memo), cluster, id, server, meta);
        }
    }
    memo.meta_seen.valid = false;
    // (applied index, server, digest): one per server at most, searched in place. The list is
    // the memo's, so that a check after every event does not allocate one.
    let mut projections = std::mem::take(&mut memo.projections);
    projections.clear();
    for (id, server, meta) in layers(cluster) {
        leadership_holds(ghost, id, server, meta)?;
        match touched {
            Touched::World => layer_holds(ghost, None, cluster, id, server, meta)?,
            Touched::Node(node) if node == id => layer_holds(ghost, Some(&mut *memo), cluster, id, server, meta)?,
            Touched::Node(_) => {}
        }
        same_index_same_projection(ghost, &mut projections, id, meta)?;
    }
    memo.projections = projections;
    memo.meta_seen.passed(GhostSeen::of(ghost), (0..cluster.nodes.len() as u32).map(|id| LayerSeen::of(cluster, id)));
    Ok(())
}

/// What the meta checks of every server last passed on (see [`safety`]).
#[derive(Debug, Default)]
pub struct MetaSeen {
    /// A pass over every server ran since the last one that failed or was cut short.
    valid: bool,
    ghost: GhostSeen,
    /// Per node index.
    layers: Vec<LayerSeen>,
}

/// What the ghost showed the checks of servers an event did not touch: the meta group's
/// [`crate::harness::ghost::GroupHistory::commits_changed`] (a leader's apply barrier), and
/// whether no disk lied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct GhostSeen {
    commits_changed: u64,
    untainted: bool,
}

impl GhostSeen {
    fn of(ghost: &Ghost) -> Self {
        GhostSeen { commits_changed: ghost.group(META).commits_changed(), untainted: ghost.tainted.is_empty() }
    }
}

/// What one server's meta layer showed the checks that compare servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LayerSeen {
    /// Not running, or running no meta layer.
    #[default]
    Absent,
    /// Its projection is not compared (an apply error, or a recovery under way).
    Uncompared,
    /// Its applied index and projection digest.
    At(u64, u64),
}

impl LayerSeen {
    fn of(cluster: &Cluster<'_, Server>, id: u32) -> Self {
        match layer_of(cluster, id) {
            None => LayerSeen::Absent,
            Some((_, meta)) if meta.state.write_error().is_some() || meta.recovering() => LayerSeen::Uncompared,
            Some((_, meta)) => LayerSeen::At(meta.state.applied_index(), meta.state.projection_digest()),
        }
    }
}

impl MetaSeen {
    /// Whether only server `id`'s own checks can fail now, its layer showing `layer`: nothing
    /// any other server's checks read moved since they passed, and `id` compares with the
    /// others as it did.
    fn holds(&self, ghost: GhostSeen, id: u32, layer: LayerSeen) -> bool {
        self.valid && self.ghost == ghost && self.layers.get(id as usize) == Some(&layer)
    }

    /// Every server passed, their layers showing `layers` (by node index).
    fn passed(&mut self, ghost: GhostSeen, layers: impl Iterator<Item = LayerSeen>) {
        self.ghost = ghost;
        self.layers.clear();
        self.layers.extend(layers);
        self.valid = true;
    }
}

/// Server `id` and its meta layer, if it runs one.
fn layer_of<'a>(cluster: &'a Cluster<'_, Server>, id: u32) -> Option<(&'a Server, &'a MetaLayer)> {
    let server = cluster.server(id)?;
    meta_layer(server).map(|meta| (server, meta))
}

/// The meta layer `server` runs, if any.
fn meta_layer(server: &Server) -> Option<&MetaLayer> {
    server.meta_group().and_then(|g| g.meta.as_deref())
}

/// What one server's meta layer must hold on its own. The checks that walk every assignment
/// or every unsupported marker are skipped when the memo saw them pass on the same
/// assignments, local assets and group names (a full sweep, `memo` None, runs them all).
fn layer_holds(
    ghost: &Ghost,
    memo: Option<&mut CheckMemo>,
    cluster: &Cluster<'_, Server>,
    id: u32,
    server: &Server,
    meta: &MetaLayer,
) -> Result<(), CheckFailure> {
    if let Err(e) = meta.inflight.check() {
        return fail("meta-inflight-structure", id, e);
    }
    if let Err(e) = meta.state.check_structure() {
        return fail("meta-structure", id, e);
    }
    let mark = LayerMark::of(ghost, server, meta);
    if memo.as_ref().is_some_and(|memo| memo.layer_passed(id) == Some(mark)) {
        return Ok(());
    }
    unsupported_not_running(id, server, meta)?;
    local_assets_follow_assignments(ghost, id, meta)?;
    local_assets_of_their_incarnation(ghost, id, meta)?;
    stream_limit_holds(ghost, cluster.config.max_streams_per_account, id, meta)?;
    if let Some(memo) = memo {
        memo.layer_passes(id, mark);
    }
    Ok(())
}

/// S17: a server that applied its own removal runs no JetStream until it restarts.
fn removed_servers_disabled(ghost: &Ghost, cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
    let running_meta = |n: &&u32| cluster.server(**n).is_some_and(|s| s.meta_group().is_some());
    match ghost.removed_servers.iter().find(running_meta) {
        Some(&node) => {
            fail("meta-removed-server-disables", node, "applied its own removal and still runs the meta group".into())
        }
        None => Ok(()),
    }
}

/// S2 and S16 for the meta layer: only a leader past its apply barrier and free of apply
/// errors acts as meta leader, and only the acting leader holds inflight proposals.
fn leadership_holds(ghost: &Ghost, id: u32, server: &Server, meta: &MetaLayer) -> Result<(), CheckFailure> {
    let Some(term) = meta.leader_term else {
        if !meta.inflight.is_empty() {
            return fail("meta-inflight-leader-only", id, "holds inflight proposals while not meta leader".into());
        }
        return Ok(());
    };
    if meta.state.write_error().is_some() {
        return fail("meta-write-error-terminal", id, "acts as meta leader after an apply error".into());
    }
    let needed = ghost.group(META).last_committed_before(term);
    let node = &server.meta_group().expect("layer lives in the meta group").node;
    if node.applied_index() < needed && ghost.tainted.is_empty() {
        return fail(
            "meta-leader-apply-barrier",
            id,
            format!("acts as meta leader of term {term} having applied {} < {needed}", node.applied_index()),
        );
    }
    Ok(())
}

/// S9: an account holds no more streams than its limit. A leader whose disk lost synced data
/// can propose against a state missing streams that were committed; the limit then holds
/// only where no disk lied. (S20 is checked where the leader proposes: an applied stream may
/// lack a sync subject when an old server wrote it, and the next leader repairs it, §2.1.)
fn stream_limit_holds(ghost: &Ghost, limit: Option<u32>, id: u32, meta: &MetaLayer) -> Result<(), CheckFailure> {
    let Some(limit) = limit.filter(|_| ghost.tainted.is_empty()) else { return Ok(()) };
    let mut per_account: BTreeMap<&str, u32> = BTreeMap::new();
    for sa in meta.state.streams() {
        *per_account.entry(sa.account.as_str()).or_default() += 1;
    }
    match per_account.iter().find(|(_, &n)| n > limit) {
        Some((account, n)) => fail("meta-max-streams", id, format!("account {account} has {n} streams, limit {limit}")),
        None => Ok(()),
    }
}

/// S4: servers at the same applied index hold the same projection. A recovering layer's
/// applied index runs ahead of its assignments until the flush.
fn same_index_same_projection(
    ghost: &Ghost,
    projections: &mut Vec<(u64, u32, u64)>,
    id: u32,
    meta: &MetaLayer,
) -> Result<(), CheckFailure> {
    let state = &meta.state;
    if state.write_error().is_some() || meta.recovering() {
        return Ok(());
    }
    let (index, digest) = (state.applied_index(), state.projection_digest());
    match projections.iter_mut().find(|(i, _, _)| *i == index) {
        Some(&mut (_, other, d)) if d != digest && ghost.tainted.is_empty() => {
            fail("meta-same-index-same-projection", id, format!("projection at index {index} differs from n{other}'s"))
        }
        // The last server seen at an index stands for it, as the first did when it agreed.
        Some(seen) => {
            *seen = (index, id, digest);
            Ok(())
        }
        None => {
            projections.push((index, id, digest));
            Ok(())
        }
    }
}

/// S15: an asset this server judges unsupported has no running local copy and no raft node here.
fn unsupported_not_running(id: u32, server: &Server, meta: &MetaLayer) -> Result<(), CheckFailure> {
    // Walk the (usually empty) unsupported markers, not every asset: this runs after every event.
    for (key, reason) in meta.state.unsupported_streams() {
        let group = meta.state.stream(key).map(|sa| sa.group.name.as_str());
        if meta.local.stream(key).is_some_and(|a| a.running) || group.is_some_and(|g| server.group(g).is_some()) {
            return fail("meta-unsupported-not-run", id, format!("runs unsupported stream {key} ({reason})"));
        }
    }
    for (key, reason) in meta.state.unsupported_consumers() {
        let group = meta.state.consumer(key).map(|ca| ca.group.name.as_str());
        if meta.local.consumer(key).is_some_and(|a| a.running) || group.is_some_and(|g| server.group(g).is_some()) {
            return fail("meta-unsupported-not-run", id, format!("runs unsupported consumer {key} ({reason})"));
        }
    }
    Ok(())
}

/// S21: a running local asset runs in the group its assignment names (one node per group name
/// is the server's map key), so healthz never has to report skew.
///
/// Local assets and assignments are both kept in key order (a consumer's key begins with its
/// stream's): they are walked side by side, as this runs after every event of the server.
///
/// In normal mode a local asset the applied state lacks must have been an orphan when the
/// server's start-up recovery ended (`meta-local-follows-applied`): applying a removal, or a
/// leader's snapshot without the asset, removes the local copy at once (§2.3, §2.5, §3.3).
/// Orphans are otherwise judged late, by liveness, and one a removal left looked like an
/// orphan the skipped check left (a planted defect, README "Five defects planted by hand").
fn local_assets_follow_assignments(ghost: &Ghost, id: u32, meta: &MetaLayer) -> Result<(), CheckFailure> {
    let normal = !meta.recovering() && meta.state.write_error().is_none();
    let orphans = ghost.startup_orphans.get(&id);
    let mut applied = StreamCursor::new(meta.state.streams_by_key());
    for (key, asset) in meta.local.streams() {
        let Some(sa) = applied.seek(&key.account, &key.name) else {
            if normal && !orphans.is_some_and(|o| o.holds_stream(key, asset.created_ms)) {
                let what = format!(
                    "holds stream {key} created {} that the applied state lacks, which was no orphan when its start-up recovery ended",
                    asset.created_ms
                );
                return fail("meta-local-follows-applied", id, what);
            }
            continue;
        };
        if asset.running && sa.group.name != asset.group_name {
            let what =
                format!("runs stream {key} in group {} but its assignment names {}", asset.group_name, sa.group.name);
            return fail("meta-no-node-skew", id, what);
        }
    }
    let mut applied = StreamCursor::new(meta.state.streams_by_key());
    for (key, asset) in meta.local.consumers().filter(|(_, a)| a.running) {
        let parent = applied.seek(&key.account, &key.stream);
        let ca = parent.and_then(|sa| sa.consumers.get(&key.name));
        let unassigned = parent.is_some() && ca.is_none() && !asset.direct;
        if unassigned && normal && !orphans.is_some_and(|o| o.holds_consumer(key, asset.created_ms)) {
            let what = format!(
                "runs consumer {key} created {} that its assigned stream lacks, which was no orphan when its start-up recovery ended",
                asset.created_ms
            );
            return fail("meta-local-follows-applied", id, what);
        }
        if let Some(ca) = ca.filter(|ca| ca.group.name != asset.group_name) {
            let what =
                format!("runs consumer {key} in group {} but its assignment names {}", asset.group_name, ca.group.name);
            return fail("meta-no-node-skew", id, what);
        }
    }
    Ok(())
}

/// Issue 17 item 5: a local stream or consumer holds the state of its own incarnation only.
/// Its group must be one the committed state named for that incarnation (a re-created asset
/// whose old local copy was regrouped runs in the new incarnation's group, which starts
/// fresh), and a consumer must have been created in the incarnation of the local stream it
/// runs under (a stream re-created while this server was away does not keep the old one's
/// consumers). Groups the reference state never named (it stopped following) are not judged.
fn local_assets_of_their_incarnation(ghost: &Ghost, id: u32, meta: &MetaLayer) -> Result<(), CheckFailure> {
    let book = &ghost.incarnations;
    for (key, asset) in meta.local.streams() {
        if let Verdict::Other(owner) = book.stream_group(&asset.group_name, key, asset.created_ms) {
            let what = format!(
                "holds stream {key} created {} in group {}, which the committed state named for {owner}",
                asset.created_ms, asset.group_name
            );
            return fail("meta-asset-fresh-incarnation", id, what);
        }
    }
    // Both maps are in key order: walk the streams beside the consumers, no key built.
    let mut streams = StreamCursor::new(meta.local.streams());
    for (key, asset) in meta.local.public_consumers() {
        let Some(stream) = streams.seek(&key.account, &key.stream) else { continue };
        if let Verdict::Other(owner) = book.consumer_group(&asset.group_name, key, asset.created_ms, stream.created_ms)
        {
            let what = format!(
                "holds consumer {key} created {} in group {} under stream created {}; the committed state named that group for {owner}",
                asset.created_ms, asset.group_name, stream.created_ms
            );
            return fail("meta-asset-fresh-incarnation", id, what);
        }
    }
    Ok(())
}

/// After heal, once raft liveness holds: every recovery ended (L3), orphans are gone (L5), the
/// leader's inflight maps drained (L4), every member holds the leader's projection (L2) and
/// counts quorums against no more servers than run JetStream (L10).
pub fn liveness(ghost: &Ghost, cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
    // L3: every member's replay ends once a route is up (the network is whole after heal). A
    // server removed while down hears from no one (routes are modelled by raft traffic), so
    // it is owed nothing.
    let reference = meta_members(cluster.running());
    if let Some((id, _, meta)) = layers(cluster).find(|(id, _, m)| reference.contains(id) && m.recovering()) {
        let kind = meta.recovery.as_ref().map(|r| r.kind);
        return fail("meta-recovery-ends", id, format!("still in {kind:?} recovery"));
    }
    for (id, _, meta) in layers(cluster).filter(|(id, _, _)| reference.contains(id)) {
        if let Some((invariant, message)) = orphans_left(meta) {
            return fail(invariant, id, message);
        }
    }
    let Some((leader, _, leader_meta)) = layers(cluster).find(|(_, _, m)| m.leader_term.is_some()) else {
        return Ok(()); // raft liveness reports a missing leader
    };
    let waiting = leader_meta.inflight.streams().count() + leader_meta.inflight.consumers().count();
    if waiting > 0 {
        return fail("meta-inflight-drains", leader, format!("{waiting} inflight proposals never applied"));
    }
    peers_healed(cluster, leader, leader_meta)?;
    servers_joined(ghost, cluster, leader)?;
    super::assets::asset_groups_live(ghost, cluster, leader_meta)?;
    let digest = leader_meta.state.projection_digest();
    for (id, server, meta) in layers(cluster) {
        let member = reference.contains(&id) && server.meta_group().is_some_and(|g| g.node.peers().contains(&id));
        // A leader whose disk lost synced data may lead with less than was committed.
        let excused = !ghost.tainted.is_empty();
        if member && !excused && meta.state.write_error().is_none() && meta.state.projection_digest() != digest {
            return fail("meta-projection-converges", id, "projection differs from the meta leader's".into());
        }
        // L2: current and healthy with the meta leader, as healthz's meta part sees it.
        if member && meta.state.write_error().is_none() {
            if let Err(e) = server.healthz(true) {
                return fail("meta-layer-healthy", id, e);
            }
        }
    }
    cluster_size_converged(cluster, leader, reference)
}

/// L5's verdict on one server's meta layer (a member, recoveries over): a local stream the
/// applied state lacks, or a local consumer its assigned stream lacks (`getOrphans`, §4), is
/// owed removal once the one-shot check ran with its preconditions, or a leader's snapshot
/// applied in normal mode (both remove every orphan). While the check is still to come
/// (`orphan_check_at_ms`) nothing is owed yet.
///
/// When the check came and was skipped (no known leader, or not healthy) NATS never retries
/// it, and only a snapshot catch-up in normal mode would clean up: the orphan may stay for
/// good. The spec asks for that to be reported as a finding. It is reported under its own
/// invariant, `meta-orphans-after-skipped-check`, rather than as a trace event: it then
/// shows up in reports and fuzz findings like any liveness failure (and is excused like them
/// when a lying disk is in play), while `meta-orphans-removed` keeps meaning a bug in the
/// model's own cleanup. A wiped disk makes orphans, but so does a server that was down while
/// its stream was deleted and the delete compacted into a snapshot: disk seed 7828 of
/// generator 12 is one, its check skipped under a partition (a finding, kept in `seeds/`).
fn orphans_left(meta: &MetaLayer) -> Option<(&'static str, String)> {
    if meta.recovering() || meta.state.write_error().is_some() || meta.orphan_check_at_ms.is_some() {
        return None;
    }
    // Public consumers only, whatever the bug switches say: a direct consumer is legitimate.
    let orphans = meta.local.orphans(&meta.state, false);
    let what = match (orphans.streams.first(), orphans.consumers.first()) {
        (None, None) => return None,
        (Some(stream), _) => format!("stream {stream}"),
        (None, Some(consumer)) => format!("consumer {consumer}"),
    };
    let count = orphans.streams.len() + orphans.consumers.len();
    Some(if meta.orphan_check_skipped {
        let message =
            format!("{count} orphans ({what} first) outlive the orphan check, which was skipped and is never retried");
        ("meta-orphans-after-skipped-check", message)
    } else {
        ("meta-orphans-removed", format!("{count} orphans ({what} first) outlive the orphan check"))
    })
}

/// L10, the size half of "a quorum of the JetStream servers elects" (L1): the meta leader
/// counts quorums against at most as many servers as its members that run JetStream (at
/// least two, NRG's floor). Servers without JetStream never join the meta group, so a size
/// that counts them asks for votes that never come: the cold-boot check lowers it before the
/// first leader, the leader's `checkClusterSize` after it (§8.4). A size the leader chose is
/// replicated by its peer-state entry, and then every member that follows it must count the
/// same way, or losing the leader loses the group. (A cold-boot size is not replicated in
/// this model, see `RaftNode::peer_state_cluster_size`: a follower restarted under a leader
/// that only booted small keeps its configured size, which the spec's L10 would flag.) With
/// every server running JetStream no size exceeds the members, and this always holds.
fn cluster_size_converged(cluster: &Cluster<'_, Server>, leader: u32, reference: &[u32]) -> Result<(), CheckFailure> {
    let Some(leader_group) = cluster.server(leader).and_then(|s| s.meta_group()) else { return Ok(()) };
    // A leader that has not yet heard from enough servers to judge leaves the size to its next
    // periodic check, up to a minute on (NATS's snapshot ticker), which a run may end before
    // (mixed seed 16: a leader elected 5 s after the heal had heard from too few).
    let judged = leader_group
        .meta
        .as_deref()
        .is_some_and(|m| m.leader_term.is_some() && m.cluster_size_judged_term == m.leader_term);
    if !judged {
        return Ok(());
    }
    let replicated = leader_group.node.cluster_size_replicated();
    let disabled = &cluster.config.jetstream_disabled;
    for (id, server, meta) in layers(cluster) {
        let Some(group) = server.meta_group() else { continue };
        let peers = group.node.peers();
        let member = reference.contains(&id) && peers.contains(&id);
        let settled = !meta.recovering() && meta.state.write_error().is_none();
        if !member || !settled || (id != leader && !replicated) {
            continue;
        }
        let jetstream = peers.iter().filter(|p| !disabled.contains(p)).count();
        let size = group.node.cluster_size();
        if size > jetstream.max(2) {
            let message = format!(
                "counts quorums ({}) against {size} servers, but only {jetstream} of its {} members run JetStream",
                group.node.quorum_size(),
                peers.len()
            );
            return fail("meta-cluster-size-converges", id, message);
        }
    }
    Ok(())
}

/// §8.1: every server that runs JetStream outside the meta group was added by the leader
/// (NRG `trackPeer`), unless it was removed from the group (the re-add ban keeps a removed
/// server out for five minutes, longer than a run; a removed server that knows it stays out).
fn servers_joined(ghost: &Ghost, cluster: &Cluster<'_, Server>, leader: u32) -> Result<(), CheckFailure> {
    let Some(leader_group) = cluster.server(leader).and_then(|s| s.meta_group()) else { return Ok(()) };
    let members = leader_group.node.peers();
    let removed = |id: u32| ghost.meta_membership.contains_key(&id) || ghost.removed_servers.contains(&id);
    let outside = layers(cluster).find(|(id, _, m)| !m.recovering() && !members.contains(id) && !removed(*id));
    if let Some((id, _, _)) = outside {
        let message = format!("runs JetStream but the meta leader n{leader} never added it (members {members:?})");
        return fail("meta-servers-joined", id, message);
    }
    Ok(())
}

/// L6: no supported stream is left on a server that is no longer a meta peer, none stays
/// short of its replicas while a running JetStream meta peer has room for it, nor above them
/// (a scale-down's shrink, §2.2), every consumer lives on its stream's peers, and has as many
/// of them as its replicas ask for (or all), no more.
fn peers_healed(cluster: &Cluster<'_, Server>, leader: u32, leader_meta: &MetaLayer) -> Result<(), CheckFailure> {
    let Some(leader_server) = cluster.server(leader) else { return Ok(()) };
    let meta_peers = leader_server.meta_group().map(|g| g.node.peers().to_vec()).unwrap_or_default();
    let full = leader_server.full_peers();
    let state = &leader_meta.state;
    for sa in state.streams().filter(|sa| state.stream_unsupported(&sa.key()).is_none()) {
        let Ok(config) = sa.config() else { continue };
        let config = config.into_config().normalized();
        let replicas = usize::from(config.replicas).max(1);
        let cluster_of = |p: u32| cluster.config.cluster_of(p).map(String::from);
        let home = config.placement.map(|p| p.cluster).or_else(|| sa.group.peers.first().and_then(|&p| cluster_of(p)));
        let room = meta_peers.iter().find(|&&p| {
            !sa.group.is_member(p)
                && !full.contains(&p)
                && cluster_of(p) == home
                && cluster.server(p).is_some_and(|s| s.meta_group().is_some())
        });
        // A stale peer goes unless it is the only one and nothing has room for the stream:
        // then the assignment stays where it was, offline (NATS heals it later).
        let kept = sa.group.peers.iter().any(|p| meta_peers.contains(p));
        if let Some(stale) = sa.group.peers.iter().find(|p| !meta_peers.contains(p)).filter(|_| kept || room.is_some())
        {
            let message = format!("stream {} still placed on n{stale}, which left the meta group", sa.key());
            return fail("meta-stale-peers-healed", leader, message);
        }
        if let (true, Some(room)) = (sa.group.peers.len() < replicas, room) {
            let message =
                format!("stream {} has {} of {replicas} peers while n{room} has room", sa.key(), sa.group.peers.len());
            return fail("meta-missing-peers-healed", leader, message);
        }
        // Only a group's leader shrinks it: one that has none is the leader checks' to judge
        // (they excuse a group whose members cannot run it).
        let led = |group: &str| cluster.running().any(|(_, s)| s.group(group).is_some_and(|g| g.node.leader()));
        if sa.group.peers.len() > replicas && led(&sa.group.name) {
            let message = format!("stream {} has {} peers for {replicas} replicas", sa.key(), sa.group.peers.len());
            return fail("meta-extra-peers-healed", leader, message);
        }
        if let Some(ca) = sa.consumers.values().find(|ca| ca.group.peers.iter().any(|p| !sa.group.is_member(*p))) {
            let message =
                format!("consumer {} on {:?}, outside its stream's {:?}", ca.key(), ca.group.peers, sa.group.peers);
            return fail("meta-consumer-on-stream-peers", leader, message);
        }
        // Judged by NATS's rule whatever the bug switches say: the replicas a consumer asks
        // for, bounded by its stream's peers.
        let wanted = |ca: &ConsumerAssignment| meta::consumer_peers_wanted(ca, sa, &MetaBugs::default());
        let supported = |ca: &&ConsumerAssignment| state.consumer_unsupported(&ca.key()).is_none();
        if let Some(ca) =
            sa.consumers.values().map(Box::as_ref).filter(supported).find(|ca| ca.group.peers.len() < wanted(ca))
        {
            let message = format!(
                "consumer {} has {} of the {} peers it should have on its stream's {:?}",
                ca.key(),
                ca.group.peers.len(),
                wanted(ca),
                sa.group.peers
            );
            return fail("meta-consumer-replicas-healed", leader, message);
        }
        // A consumer's shrink follows its stream's.
        let stream_shrunk = sa.group.peers.len() <= replicas;
        let extra = |ca: &&ConsumerAssignment| ca.group.peers.len() > wanted(ca) && led(&ca.group.name);
        if let Some(ca) = sa.consumers.values().map(Box::as_ref).filter(|_| stream_shrunk).filter(supported).find(extra)
        {
            let message = format!(
                "consumer {} has {} peers, {} more than it should",
                ca.key(),
                ca.group.peers.len(),
                ca.group.peers.len() - wanted(ca)
            );
            return fail("meta-extra-peers-healed", leader, message);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        local_assets_follow_assignments, local_assets_of_their_incarnation, orphans_left, GhostSeen, LayerSeen,
        MetaSeen,
    };
    use std::collections::BTreeMap;

    use crate::harness::ghost::{test_stream, Ghost};

    use crate::meta::{
        direct_consumer_name, ConsumerKey, LocalAsset, MetaBugs, MetaEntry, RaftGroup, StreamAssignment, StreamKey,
        API_LEVEL,
    };
    use crate::server::jetstream::MetaLayer;

    /// A recovered layer holding local stream X, which its applied state lacks.
    fn layer_with_orphan() -> MetaLayer {
        let mut meta = MetaLayer::new(MetaBugs::default(), API_LEVEL, None);
        meta.recovery = None;
        let asset =
            LocalAsset { created_ms: 1, group_name: "S-R1-x".into(), messages: 3, running: true, direct: false };
        meta.local.restore_stream(StreamKey::new("A", "X"), asset);
        meta
    }

    /// L5 owes nothing while the one-shot check is still to come or the layer recovers; an
    /// orphan that outlived a check that ran is a cleanup bug, one that outlived a skipped
    /// check is the finding the spec asks for, under its own name.
    #[test]
    fn orphans_are_judged_by_what_became_of_the_one_shot_check() {
        let mut meta = layer_with_orphan();
        meta.orphan_check_at_ms = Some(30_000);
        assert_eq!(orphans_left(&meta), None, "the check is still to come");
        meta.orphan_check_at_ms = None;
        let (invariant, message) = orphans_left(&meta).expect("the check ran and left X");
        assert_eq!(invariant, "meta-orphans-removed");
        assert!(message.contains("A:X"), "{message}");
        meta.orphan_check_skipped = true;
        assert_eq!(orphans_left(&meta).map(|(i, _)| i), Some("meta-orphans-after-skipped-check"));
        meta.recovery = MetaLayer::new(MetaBugs::default(), API_LEVEL, None).recovery; // recovering: nothing owed
        assert_eq!(orphans_left(&meta), None);
        assert_eq!(orphans_left(&MetaLayer::new(MetaBugs::default(), API_LEVEL, None)), None, "no local assets");
    }

    /// In normal mode a local stream the applied state lacks must have been an orphan, of
    /// the same incarnation, when the server's start-up recovery ended: a removal applied
    /// since removes the local copy at once. While the layer recovers nothing is judged.
    #[test]
    fn a_local_asset_without_assignment_was_a_startup_orphan() {
        let mut meta = layer_with_orphan();
        let mut ghost = Ghost::default();
        let failure = local_assets_follow_assignments(&ghost, 2, &meta).expect_err("X was no start-up orphan");
        assert_eq!(failure.invariant, "meta-local-follows-applied");
        assert!(failure.message.contains("A:X created 1"), "{}", failure.message);
        ghost.observe_startup_orphans(2, &meta.local, &meta.state);
        assert_eq!(local_assets_follow_assignments(&ghost, 2, &meta), Ok(()), "X was an orphan at start-up");
        assert!(local_assets_follow_assignments(&ghost, 1, &meta).is_err(), "another server's orphans excuse nothing");
        // A later incarnation of X is not the orphan the start-up left.
        meta.local.restore_stream(StreamKey::new("A", "X"), local(5, "S-R1-y"));
        assert!(local_assets_follow_assignments(&ghost, 2, &meta).is_err());
        meta.recovery = MetaLayer::new(MetaBugs::default(), API_LEVEL, None).recovery;
        assert_eq!(local_assets_follow_assignments(&ghost, 2, &meta), Ok(()), "recovering: not judged");
    }

    /// The same for a running public consumer its assigned stream lacks; a mirror's direct
    /// consumer has no assignment and is never judged.
    #[test]
    fn a_local_consumer_without_assignment_was_a_startup_orphan() {
        let mut meta = MetaLayer::new(MetaBugs::default(), API_LEVEL, None);
        meta.recovery = None;
        let entry = MetaEntry::AssignStream { sa: test_stream(1, "S-R1-s", None), reply: None }.encode();
        let effects = meta.state.apply(1, &entry, 0, &mut meta.inflight).expect("applies");
        meta.local.apply_effects(&effects);
        let ghost = Ghost::default();
        assert_eq!(local_assets_follow_assignments(&ghost, 0, &meta), Ok(()), "the stream is assigned");
        let direct = ConsumerKey::new("A", "S", direct_consumer_name("M"));
        meta.local.sync_direct_consumers(&BTreeMap::from([(direct, 2)]), |_| true);
        assert_eq!(local_assets_follow_assignments(&ghost, 0, &meta), Ok(()), "a direct consumer is not judged");
        assert!(meta.local.restore_consumer(ConsumerKey::new("A", "S", "C"), local(3, "C-R1-c")));
        let failure = local_assets_follow_assignments(&ghost, 0, &meta).expect_err("C is assigned nowhere");
        assert_eq!(failure.invariant, "meta-local-follows-applied");
        assert!(failure.message.contains("consumer A:S:C created 3"), "{}", failure.message);
        let mut ghost = ghost;
        ghost.observe_startup_orphans(0, &meta.local, &meta.state);
        assert_eq!(local_assets_follow_assignments(&ghost, 0, &meta), Ok(()));
    }

    /// A consumer of a stream that was itself an orphan at start-up is one too: the stream's
    /// assignment may be applied before the consumer's (cutoff seed 1665).
    #[test]
    fn a_consumer_under_an_orphan_stream_was_an_orphan_too() {
        let mut meta = MetaLayer::new(MetaBugs::default(), API_LEVEL, None);
        meta.recovery = None;
        let stream = StreamKey::new("A", "S");
        meta.local.restore_stream(stream.clone(), local(1, "S-R1-s"));
        assert!(meta.local.restore_consumer(ConsumerKey::new("A", "S", "C"), local(3, "C-R1-c")));
        let mut ghost = Ghost::default();
        ghost.observe_startup_orphans(0, &meta.local, &meta.state);
        let entry = MetaEntry::AssignStream { sa: test_stream(1, "S-R1-s", None), reply: None }.encode();
        let effects = meta.state.apply(1, &entry, 0, &mut meta.inflight).expect("applies");
        meta.local.apply_effects(&effects);
        assert!(meta.local.stream(&stream).is_some());
        assert_eq!(local_assets_follow_assignments(&ghost, 0, &meta), Ok(()), "C waits for its assignment");
    }

    /// L5 judges public consumers only: a mirror's direct consumer on its assigned origin has
    /// no assignment and is legitimate, whatever the bug switches do to the cleanup (§11 #26).
    #[test]
    fn a_direct_consumer_is_no_orphan() {
        let bugs = MetaBugs { orphan_check_deletes_direct_consumers: true, ..MetaBugs::default() };
        let mut meta = MetaLayer::new(bugs, API_LEVEL, None);
        meta.recovery = None;
        let sa = StreamAssignment {
            account: "A".into(),
            name: "S".into(),
            created_ms: 1,
            config_json: br#"{"name":"S"}"#.to_vec(),
            group: RaftGroup { name: "S-R1-s".into(), peers: vec![0], preferred: Some(0), joiners: vec![] },
            sync: "$SYS.JSC.SYNC.s".into(),
            consumers: BTreeMap::new(),
        };
        let entry = MetaEntry::AssignStream { sa, reply: None }.encode();
        let effects = meta.state.apply(1, &entry, 0, &mut meta.inflight).expect("applies");
        meta.local.apply_effects(&effects);
        let direct = ConsumerKey::new("A", "S", direct_consumer_name("M"));
        meta.local.sync_direct_consumers(&BTreeMap::from([(direct.clone(), 2)]), |_| true);
        assert!(meta.local.consumer(&direct).is_some());
        assert_eq!(orphans_left(&meta), None);
    }

    fn local(created_ms: u64, group: &str) -> LocalAsset {
        LocalAsset { created_ms, group_name: group.into(), messages: 0, running: true, direct: false }
    }

    /// Issue 17 item 5: a local stream must run in a group its own incarnation was committed
    /// with, and a local consumer must have been created in the local stream's incarnation.
    #[test]
    fn a_local_asset_holds_its_own_incarnation_only() {
        let mut ghost = Ghost::default();
        ghost.incarnations.note_stream(&test_stream(100, "S-R1-old", Some((110, "C-R1-old"))));
        ghost.incarnations.note_stream(&test_stream(200, "S-R1-new", None));
        let (stream, consumer) = (StreamKey::new("A", "S"), ConsumerKey::new("A", "S", "C"));
        let judge = |stream_asset: LocalAsset, consumer_asset: Option<LocalAsset>| {
            let mut meta = MetaLayer::new(MetaBugs::default(), API_LEVEL, None);
            meta.local.restore_stream(stream.clone(), stream_asset);
            if let Some(asset) = consumer_asset {
                assert!(meta.local.restore_consumer(consumer.clone(), asset));
            }
            local_assets_of_their_incarnation(&ghost, 0, &meta).err().map(|f| f.invariant)
        };
        let fresh = Some("meta-asset-fresh-incarnation".to_string());
        assert_eq!(judge(local(100, "S-R1-old"), Some(local(110, "C-R1-old"))), None, "the old one, whole");
        assert_eq!(judge(local(200, "S-R1-new"), None), None, "the new one, fresh");
        assert_eq!(judge(local(200, "S-R1-new"), Some(local(110, "C-R1-old"))), fresh, "the old consumer kept");
        assert_eq!(judge(local(200, "S-R1-old"), None), fresh, "the new one in the old group");
        assert_eq!(judge(local(100, "S-R1-new"), None), fresh, "the old one in the new group");
        assert_eq!(judge(local(300, "S-R1-unknown"), None), None, "a group the reference never named");
    }

    #[test]
    fn other_servers_are_passed_over_only_while_nothing_they_read_moved() {
        let ghost = GhostSeen { commits_changed: 7, untainted: true };
        let layers = [LayerSeen::At(10, 1), LayerSeen::Absent, LayerSeen::Uncompared];
        let mut seen = MetaSeen::default();
        assert!(!seen.holds(ghost, 0, layers[0]), "nothing passed yet");
        seen.passed(ghost, layers.into_iter());
        for (id, layer) in layers.into_iter().enumerate() {
            assert!(seen.holds(ghost, id as u32, layer), "n{id} as it was");
        }
        // The ghost's meta commits or tainted disks moved: another server's barrier or
        // projection compare may judge differently.
        assert!(!seen.holds(GhostSeen { commits_changed: 8, ..ghost }, 0, layers[0]));
        assert!(!seen.holds(GhostSeen { untainted: false, ..ghost }, 0, layers[0]));
        // The touched server's projection moved, or it started or stopped comparing.
        assert!(!seen.holds(ghost, 0, LayerSeen::At(11, 1)));
        assert!(!seen.holds(ghost, 0, LayerSeen::At(10, 2)));
        assert!(!seen.holds(ghost, 1, LayerSeen::Uncompared));
        assert!(!seen.holds(ghost, 2, LayerSeen::Absent));
        assert!(!seen.holds(ghost, 3, LayerSeen::Absent), "a server never seen");
        // A pass that failed or was cut short leaves nothing to trust.
        seen.valid = false;
        assert!(!seen.holds(ghost, 0, layers[0]));
    }
}
