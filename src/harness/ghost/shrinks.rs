//! Who a scale-down's shrink could hear when it chose (`meta-shrink-keeps-able-members`).
//! A stream group's leader shrinks its membership one removal at a time; the check judges,
//! after heal, a group the shrink left without a quorum of able members. Whether a member it
//! kept was silent *when it chose* is what makes the choice wrong, so the oracle notes it
//! then, from the cluster as the proposing event left it: a member that was down or paused,
//! or ran no copy of the group (its meta layer refused damaged files, or it judged the stream
//! unsupported), could not be heard. A member that was heard then and broke later (a disk
//! fault after the removal) was no choice of the shrink's; nor was keeping one silent member
//! while removing another that was silent too; nor keeping one that fell silent so lately
//! that the leader had heard from it within the rule's window of two heartbeats (disk seed
//! 5821 of v15: a member stopped the stream 0.2 ms before the removal, on a consumer it could
//! not support), which no leader can tell from a live one.

use std::collections::{BTreeMap, BTreeSet};

use sim::{Cluster, NodeIndex, NodeStatus};

use super::Ghost;
use crate::meta::PeerId;
use crate::raft::Index;
use crate::server::Server;

/// Removals observed within one event, judged against the cluster after it: a handful.
const PENDING_MAX: usize = 64;
/// Shrink decisions remembered per run; later ones are not judged (a scale-down makes a few).
const DECISIONS_MAX: usize = 4_096;

/// One removal a scale-down's shrink proposed.
#[derive(Clone, Debug)]
struct Proposed {
    group: String,
    index: Index,
    leader: NodeIndex,
    removed: PeerId,
    /// The leader's monotonic clock when it proposed.
    now_ms: u64,
}

#[derive(Debug, Default)]
pub struct ShrinkDecisions {
    pending: Vec<Proposed>,
    /// For each shrink removal, by group and index: the members it chose among (the ones it
    /// kept and the one it removed) that could not be heard when the leader proposed it.
    unheard: BTreeMap<String, BTreeMap<Index, BTreeSet<PeerId>>>,
    /// Removals noted, across groups.
    noted: usize,
}

impl ShrinkDecisions {
    /// Whether the shrink removal at `index` of `group` was proposed while `member` could not
    /// be heard. `None` for a removal the oracle did not see proposed (not judged).
    pub fn unheard_at(&self, group: &str, index: Index, member: PeerId) -> Option<bool> {
        self.unheard.get(group)?.get(&index).map(|unheard| unheard.contains(&member))
    }
}

impl Ghost {
    /// `leader` proposed removing `removed` from `group` at `index` to shrink it.
    pub fn observe_shrink_removing(
        &mut self,
        leader: NodeIndex,
        group: &str,
        index: Index,
        removed: PeerId,
        now_ms: u64,
    ) {
        let shrinks = &mut self.shrinks;
        if shrinks.pending.len() < PENDING_MAX {
            shrinks.pending.push(Proposed { group: group.to_string(), index, leader, removed, now_ms });
        }
    }

    /// After the event: note, for each removal it proposed, which members of the membership
    /// it left could not be heard.
    pub fn note_shrink_decisions(&mut self, cluster: &Cluster<'_, Server>) {
        for Proposed { group, index, leader, removed, now_ms } in std::mem::take(&mut self.shrinks.pending) {
            let Some(node) = cluster.server(leader).and_then(|s| s.group(&group)).map(|g| &g.node) else { continue };
            // A paused server's state is still there to read, but it answers nothing.
            let paused = |p: PeerId| cluster.view(p).is_some_and(|v| matches!(v.status, NodeStatus::Paused));
            // Heard within the rule's window: what the leader knew of a member that fell silent
            // a moment ago.
            let window_ms = crate::meta::HEARD_LATELY_HEARTBEATS * node.heartbeat_ms();
            let heard_lately = |p: PeerId| node.heard_at(p).is_some_and(|at| now_ms < at.saturating_add(window_ms));
            let silent = |p: PeerId| {
                (paused(p)
                    || cluster.server(p).is_none_or(|s| s.group(&group).is_none() || s.group_refused(&group).is_some()))
                    && !heard_lately(p)
            };
            let chosen_among = node.peers().iter().copied().chain([removed]);
            let unheard: BTreeSet<PeerId> = chosen_among.filter(|&p| p != leader && silent(p)).collect();
            let shrinks = &mut self.shrinks;
            if shrinks.noted < DECISIONS_MAX {
                shrinks.noted += 1;
                shrinks.unheard.entry(group).or_default().insert(index, unheard);
            }
        }
    }
}
