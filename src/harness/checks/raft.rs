//! Raft safety over every raft group of every server (the meta group and each stream's and
//! consumer's group), and the meta group's liveness.

use std::collections::BTreeMap;

use sim::disk::NodeDisk;
use sim::{CheckFailure, Cluster, NodeStatus};

use super::meta_members;
use super::scope::Scope;
use crate::harness::ghost::{Ghost, GroupHistory};
use crate::raft::Role;
use crate::server::group::Group;
use crate::server::storage::GroupFiles;
use crate::server::wire::META;
use crate::server::Server;

fn fail(invariant: &str, node: u32, message: String) -> Result<(), CheckFailure> {
    Err(CheckFailure::new(invariant, Some(node), message))
}

/// After every event: at most one leader per term and agreeing committed prefixes (reported
/// by servers as they happen), applied <= commit, equal states at equal indexes, and no leader
/// acting before its apply barrier.
/// `scope` narrows it to the groups an event touched (see [`super::scope`]); servers are
/// walked in the same order either way, so the first violation is the same.
pub fn safety(ghost: &Ghost, cluster: &Cluster<'_, Server>, scope: &Scope) -> Result<(), CheckFailure> {
    if let Some(v) = &ghost.violation {
        return Err(v.clone());
    }
    if matches!(scope, Scope::Groups(names) if names.is_empty()) {
        return Ok(()); // most events: a heartbeat moved no group's mark
    }
    let mut chains: BTreeMap<(&str, u64), (u32, u64)> = BTreeMap::new();
    for (id, server) in cluster.running() {
        match scope {
            Scope::All => {
                for group in server.groups() {
                    group_safety(ghost, cluster, id, group, &mut chains)?;
                }
            }
            Scope::Groups(names) => {
                for group in names.iter().filter_map(|name| server.group(name)) {
                    group_safety(ghost, cluster, id, group, &mut chains)?;
                }
            }
        }
    }
    Ok(())
}

fn group_safety<'a>(
    ghost: &Ghost,
    cluster: &Cluster<'_, Server>,
    id: u32,
    group: &'a Group,
    chains: &mut BTreeMap<(&'a str, u64), (u32, u64)>,
) -> Result<(), CheckFailure> {
    let name = group.name.as_str();
    // Looked up once: the ghost keeps every group's history by name.
    let history = ghost.group(name);
    {
        let node = &group.node;
        if node.applied_index() > node.commit_index() {
            return fail(
                "raft-applied-le-commit",
                id,
                format!("{name}: applied {} > commit {}", node.applied_index(), node.commit_index()),
            );
        }
        let applied = &group.applied;
        if let Some(&(other, chain)) = chains.get(&(name, applied.index)) {
            // A removed server's copy of an asset group may be one the group went on without.
            let removed = ghost.stale_copy(name, id) || ghost.stale_copy(name, other);
            if chain != applied.chain && ghost.tainted.is_empty() && !removed {
                return fail(
                    "raft-same-index-same-state",
                    id,
                    format!("{name}: state at index {} differs from n{other}'s", applied.index),
                );
            }
        }
        chains.insert((name, applied.index), (id, applied.chain));
        leader_completeness(ghost, history, cluster, id, group)?;
        // A removed server's stale copy of an asset group may elect itself with another
        // removed server's vote; the members went on without both (churn seed 2314).
        if node.leader() && !ghost.stale_copy(name, id) {
            let needed = history.last_committed_before(node.term());
            let lost = ghost.applied_only_by_removed_in(name, history, needed);
            if applied.index < needed && ghost.tainted.is_empty() && !lost {
                return fail(
                    "raft-leader-apply-barrier",
                    id,
                    format!(
                        "{name}: acts as leader of term {} having applied {} < {needed} committed before its term",
                        node.term(),
                        applied.index
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Leader completeness (Raft §5.4), checked as a possibility rather than waiting for the loss:
/// a running server that lacks the newest applied entry must not be able to win an election
/// with the votes of running members, whose logs as they stand would all grant it. Under
/// correct Raft a commit puts a current-term entry on a quorum, which then refuses such a
/// candidate; counting replicas of an old-term entry (Figure 8) does not.
fn leader_completeness(
    ghost: &Ghost,
    history: &GroupHistory,
    cluster: &Cluster<'_, Server>,
    id: u32,
    group: &Group,
) -> Result<(), CheckFailure> {
    let candidate = cluster.server(id).expect("checked servers run");
    let name = group.name.as_str();
    let Some((&index, entry)) = history.committed.iter().next_back() else { return Ok(()) };
    let node = &group.node;
    let holds = node.snapshot_index() >= index || node.entry_term(index) == Some(entry.term);
    if holds || !ghost.tainted.is_empty() || !node.may_campaign() {
        return Ok(());
    }
    if ghost.stale_copy(name, id) {
        return Ok(()); // members ignore a removed server's raft traffic for asset groups
    }
    let last = (node.last_term(), node.last_index());
    let voters: Vec<u32> = node
        .peers()
        .iter()
        .copied()
        .filter(|&peer| name == META || candidate.hears_in_asset_groups(peer))
        .filter(|&peer| {
            // A voter grants only a member of its own membership, itself included, or a
            // candidate whose log is strictly newer than its own; a joiner waiting for a leader
            // grants only a candidate that needs every vote.
            cluster.server(peer).and_then(|s| s.group(name)).is_some_and(|g| {
                let learner = g.node.waits_for_leader() && !node.needs_every_vote();
                let voter_last = (g.node.last_term(), g.node.last_index());
                let member = g.node.peers().contains(&id) || voter_last < last;
                voter_last <= last && (peer == id || (member && !learner))
            })
        })
        .collect();
    if node.wins_with_votes_of(&voters) && !held_only_by_removed(cluster, name, index, entry.term) {
        return fail(
            "raft-leader-completeness",
            id,
            format!(
                "{name}: lacks committed entry {index} (term {}; holds {:?}, log ends at term {} index {}) yet could be elected by {voters:?}, whose logs are no newer",
                entry.term,
                node.entry_term(index),
                last.0,
                last.1
            ),
        );
    }
    Ok(())
}

/// An asset group's committed entry held only by servers removed from the meta group: peer
/// removals took the last copies (re-placements moved the group onto members that never
/// received it), which no consensus can undo. NATS loses it the same way. A meta member that
/// is down (or refused to start) counts as a holder if its disk holds the entry.
fn held_only_by_removed(cluster: &Cluster<'_, Server>, name: &str, index: u64, term: u64) -> bool {
    if name == META {
        return false;
    }
    let members = meta_members(cluster.running());
    !members.iter().any(|&p| {
        // A member that is down holds what its disk will give back on restart; a paused one's
        // state is in sight.
        let Some(server) = cluster.server(p) else {
            return cluster.nodes.get(p as usize).is_some_and(|n| disk_holds(n.disk, name, index, term));
        };
        server.group(name).is_some_and(|g| g.node.snapshot_index() >= index || g.node.entry_term(index) == Some(term))
    })
}

/// Whether a stopped server's files for `group` hold entry `index` of `term`. A copy of the
/// disk is read the way a restart would; files that do not read back cleanly might hold it.
fn disk_holds(disk: &NodeDisk, group: &str, index: u64, term: u64) -> bool {
    let mut copy = disk.clone();
    match GroupFiles::new(group).recover(&mut copy) {
        Ok(found) => {
            found.snapshot.is_some_and(|s| s.last_index >= index)
                || found.entries.iter().any(|e| e.index == index && e.term == term)
        }
        Err(_) => true,
    }
}

/// L9: after heal every running server's groups keep their logs compacted: a group snapshots
/// (and drops its log) every `snapshot_every` applied entries, so no more than that many
/// applied entries stay in any log once things are quiet. Not on a server removed from the
/// meta group, which nothing is promised of: it drops its groups when it applies its removal
/// (a compaction not yet persisted goes with them), and restarted, its start-up recovery waits
/// for a route that nobody opens, since no member sends it anything (churn seeds 4381 and
/// 5887; routes of their own are issue 18's).
fn log_compacted(ghost: &Ghost, cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
    for (id, server) in cluster.running().filter(|(id, _)| !ghost.was_removed(*id)) {
        for group in server.groups() {
            let kept = group.node.applied_index().saturating_sub(group.node.snapshot_index());
            if kept > group.snapshot_every {
                let message = format!(
                    "{}: {kept} applied entries still in the log (snapshot at {}, compacts every {})",
                    group.name,
                    group.node.snapshot_index(),
                    group.snapshot_every
                );
                return fail("raft-log-compacted", id, message);
            }
        }
    }
    Ok(())
}

/// After faults heal with a quorum up: one leader, known to every running member; every
/// member applied everything committed and reports `current()`.
pub fn liveness(ghost: &Ghost, cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
    log_compacted(ghost, cluster)?;
    let reference = meta_members(cluster.running());
    let members: Vec<(u32, &Server)> = cluster
        .running()
        .filter(|(id, s)| reference.contains(id) && s.meta_group().is_some_and(|g| g.node.peers().contains(id)))
        .collect();
    // Members may disagree on a cold-boot cluster size; the smallest quorum is the promise.
    let quorum = members.iter().filter_map(|(_, s)| s.meta_group()).map(|g| g.node.quorum_size()).min().unwrap_or(1);
    if members.len() < quorum {
        // Heal-all restarted everything, so only servers that refused to start (corrupt files)
        // can explain a missing quorum; then nothing can be promised.
        let refused = cluster.nodes.iter().any(|n| matches!(n.status, NodeStatus::Refused(_)));
        if refused {
            return Ok(());
        }
        let message = format!("only {} of {} members running", members.len(), reference.len());
        return Err(CheckFailure::new("raft-liveness-quorum", None, message));
    }
    let leader = one_meta_leader(&members)?;
    let leader_group =
        members.iter().find(|(i, _)| *i == leader).and_then(|(_, s)| s.meta_group()).expect("leader is a member");
    let commit = leader_group.node.commit_index();
    let committed_max = ghost.group(META).committed.keys().next_back().copied().unwrap_or(0);
    if commit < committed_max && ghost.tainted.is_empty() {
        return fail(
            "raft-liveness-lost-commit",
            leader,
            format!("leader commit {commit} is behind index {committed_max}, applied before"),
        );
    }
    members.iter().try_for_each(|(id, server)| member_follows(*id, server, leader, commit))
}

/// The one member that leads the meta group.
fn one_meta_leader(members: &[(u32, &Server)]) -> Result<u32, CheckFailure> {
    let leaders: Vec<u32> =
        members.iter().filter(|(_, s)| s.meta_group().is_some_and(|g| g.node.leader())).map(|(i, _)| *i).collect();
    if let [leader] = leaders[..] {
        return Ok(leader);
    }
    let states: Vec<String> =
        members.iter().map(|(i, s)| format!("n{i}: {}", s.describe_group(s.meta_group().expect("member")))).collect();
    let message = format!("{} leaders after heal: {leaders:?}; {}", leaders.len(), states.join("; "));
    Err(CheckFailure::new("raft-liveness-leader", None, message))
}

/// A member names the leader, applied its commit and reports `current()`.
fn member_follows(id: u32, server: &Server, leader: u32, commit: u64) -> Result<(), CheckFailure> {
    let group = server.meta_group().expect("members run the group");
    if group.node.role() != Role::Leader && group.node.group_leader() != Some(leader) {
        return fail(
            "raft-liveness-leader",
            id,
            format!("names {:?} as leader, not n{leader}", group.node.group_leader()),
        );
    }
    if group.applied.index < commit {
        return fail(
            "raft-liveness-applied",
            id,
            format!("applied {} of the leader's commit {commit}", group.applied.index),
        );
    }
    if !group.node.current(server.now_ms()) {
        return fail(
            "raft-liveness-current",
            id,
            format!("does not report current(): {}", server.describe_group(group)),
        );
    }
    Ok(())
}
