//! Liveness of the assets' own raft groups after heal (L8), and the messages acknowledged to
//! their clients.

use sim::{CheckFailure, Cluster};

use super::meta_members;
use crate::harness::ghost::Ghost;
use crate::meta::{ConsumerKey, RaftGroup, StreamKey};
use crate::server::jetstream::MetaLayer;
use crate::server::wire::META;
use crate::server::Server;

fn fail(invariant: &str, node: u32, message: String) -> Result<(), CheckFailure> {
    Err(CheckFailure::new(invariant, Some(node), message))
}

/// One replicated asset's group, with the stream it belongs to and, for a consumer's group,
/// the consumer.
struct AssetGroup<'a> {
    group: &'a RaftGroup,
    stream: StreamKey,
    consumer: Option<ConsumerKey>,
}

/// L8: every assigned stream and consumer of more than one replica runs its group on every
/// running member, with one leader that all of them follow and whose commit they applied.
pub fn asset_groups_live(
    ghost: &Ghost,
    cluster: &Cluster<'_, Server>,
    leader_meta: &MetaLayer,
) -> Result<(), CheckFailure> {
    let state = &leader_meta.state;
    let meta_peers = meta_members(cluster.running());
    let groups = state.streams().flat_map(|sa| {
        let consumers = sa.consumers.values().filter(|ca| ca.group.peers.len() > 1).map(|ca| AssetGroup {
            group: &ca.group,
            stream: sa.key(),
            consumer: Some(ca.key()),
        });
        let stream = sa.replicated().then(|| AssetGroup { group: &sa.group, stream: sa.key(), consumer: None });
        stream.into_iter().chain(consumers)
    });
    for asset in groups {
        let members = members_able(cluster, &asset);
        if members.len() < asset.group.peers.len() / 2 + 1 {
            continue; // raft liveness reports missing servers; without a quorum nothing is owed
        }
        if !stuck(&asset, &members, meta_peers) {
            group_live(&asset, &members)?;
        }
    }
    acked_messages_kept(ghost, cluster, leader_meta)
}

/// The asset's members that can run its group. A server whose meta layer is down (refused
/// files, apply error) cannot know its assignments; it is excused here and reported by the
/// meta checks. So is a server that judges the asset unsupported (a lower API level): it
/// keeps it stopped (§7). And one out of room, which refused its copy and reported it (§2.7;
/// its health says so). Members whose copy of the group refused to load (damaged files)
/// cannot help either.
fn members_able<'a>(cluster: &Cluster<'a, Server>, asset: &AssetGroup<'_>) -> Vec<(u32, &'a Server)> {
    let runs_it = |s: &Server| {
        s.group(META).and_then(|g| g.meta.as_deref()).is_some_and(|m| {
            m.state.write_error().is_none()
                && m.local.stream_error(&asset.stream).is_none()
                && m.state.stream_unsupported(&asset.stream).is_none()
                && asset.consumer.as_ref().is_none_or(|c| m.state.consumer_unsupported(c).is_none())
        })
    };
    let name = asset.group.name.as_str();
    asset
        .group
        .peers
        .iter()
        .filter_map(|&p| cluster.server(p).filter(|s| runs_it(s) && s.group_refused(name).is_none()).map(|s| (p, s)))
        .collect()
}

/// Raft elects within its own membership, which may still hold servers removed from the meta
/// group or dropped from the assignment (its leader lacked the quorum to move it along;
/// members evict removed ones only when that is safe, checkEvictedPeers), or servers that
/// cannot run the group (no room, damaged files). When a member's membership has too few
/// peers running the group for it to win, nothing is owed, provided each peer missing from
/// it is excused that way: a peer that should run the group and does not is still reported.
fn stuck(asset: &AssetGroup<'_>, members: &[(u32, &Server)], meta_peers: &[u32]) -> bool {
    let name = asset.group.name.as_str();
    let runs_group = |p: &u32| members.iter().any(|(id, s)| id == p && s.group(name).is_some());
    let excused =
        |p: &u32| !meta_peers.contains(p) || !asset.group.peers.contains(p) || !members.iter().any(|(id, _)| id == p);
    members.iter().filter_map(|(_, s)| s.group(name)).any(|g| {
        let config = g.node.peers();
        let able: Vec<u32> = config.iter().copied().filter(|p| meta_peers.contains(p) && runs_group(p)).collect();
        !g.node.wins_with_votes_of(&able) && config.iter().filter(|p| !runs_group(p)).all(excused)
    })
}

/// Every able member runs the group, one of them leads, and all applied its commit and
/// report the asset healthy.
fn group_live(asset: &AssetGroup<'_>, members: &[(u32, &Server)]) -> Result<(), CheckFailure> {
    let name = asset.group.name.as_str();
    let mut leaders = Vec::new();
    for (id, server) in members {
        let Some(g) = server.group(name) else {
            return fail("meta-asset-group-runs", *id, format!("assigned to group {name} but does not run it"));
        };
        if g.node.leader() {
            leaders.push((*id, g.node.commit_index()));
        }
    }
    let [(leader, commit)] = leaders[..] else {
        let states: Vec<String> = members
            .iter()
            .filter_map(|(id, s)| s.group(name).map(|g| format!("n{id}: {}", g.describe(s.now_ms()))))
            .collect();
        let ids: Vec<u32> = leaders.iter().map(|l| l.0).collect();
        let message = format!("group {name} has leaders {ids:?} after heal; members: {}", states.join("; "));
        return Err(CheckFailure::new("meta-asset-group-leader", None, message));
    };
    for (id, server) in members {
        let Some(g) = server.group(name) else { continue };
        if g.node.applied_index() < commit {
            let message = format!("{name}: applied {} of leader n{leader}'s commit {commit}", g.node.applied_index());
            return fail("meta-asset-group-applied", *id, message);
        }
        // L8 as the spec states it: the member's own health check passes.
        let health = match &asset.consumer {
            Some(c) => server.consumer_health(c).map_err(|e| format!("consumer {c}: {e}")),
            None => server.stream_health(&asset.stream).map_err(|e| format!("stream {}: {e}", asset.stream)),
        };
        if let Err(e) = health {
            return fail("meta-asset-healthy", *id, format!("{e}; {name} here: {}", g.describe(server.now_ms())));
        }
    }
    Ok(())
}

/// Whether every committed entry of `group` past what `leader` applied was applied only by
/// servers since removed from the meta group. Removals can leave a group on members that never
/// received its data: re-placed onto a joiner, then the last member that held the data removed
/// too (churn seed 11,703: [1,2] became [0,2], then [0]); NATS starts such a group over on its
/// desired peers and the data is gone by the operator's decision, as when every peer is removed
/// at once.
fn lost_to_removals(ghost: &Ghost, cluster: &Cluster<'_, Server>, leader: u32, group: &str) -> bool {
    let Some(applied) = cluster.server(leader).and_then(|s| s.group(group)).map(|g| g.node.applied_index()) else {
        return false;
    };
    let mut missing = ghost.group(group).committed.range(applied + 1..).peekable();
    missing.peek().is_some() && missing.all(|(&index, _)| ghost.applied_only_by_removed(group, index))
}

/// Every message acknowledged to a client is still held by its stream's current incarnation,
/// whatever group took it (a replica change moves an R1 store into a raft group): by the
/// leader of an R>1 group (which every member follows, L8), or in an R1 stream's store.
/// Unless a disk lied or lost data, which the fault model allows to lose anything, or peer
/// removals took the last copies of some of them.
fn acked_messages_kept(
    ghost: &Ghost,
    cluster: &Cluster<'_, Server>,
    leader_meta: &MetaLayer,
) -> Result<(), CheckFailure> {
    if !ghost.tainted.is_empty() {
        return Ok(());
    }
    for sa in leader_meta.state.streams() {
        let acked = ghost.acked_messages(&sa.key(), sa.created_ms, &sa.group.name);
        if acked == 0 || ghost.forked_by_removals.contains(&sa.group.name) {
            continue;
        }
        let key = sa.key();
        let holders = sa.group.peers.iter().filter_map(|&p| {
            let held = cluster.server(p)?.stream_messages(&key, cluster.nodes[p as usize].disk)?;
            let leads = !sa.replicated() || cluster.server(p)?.group(&sa.group.name)?.node.leader();
            leads.then_some((p, held))
        });
        for (id, held) in holders {
            match held {
                Ok(n) if n >= acked => {}
                // The leader lacks only entries that servers since removed alone applied.
                Ok(_) if sa.replicated() && lost_to_removals(ghost, cluster, id, &sa.group.name) => {}
                Ok(n) => {
                    let what =
                        format!("stream {key} ({}) holds {n} messages but {acked} were acknowledged", sa.group.name);
                    return fail("meta-acked-messages-kept", id, what);
                }
                Err(e) => return fail("meta-acked-messages-kept", id, format!("stream {key}: {e}")),
            }
        }
    }
    Ok(())
}
