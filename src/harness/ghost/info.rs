//! Issue 18 item 3, L7 for info: once faults healed, a stream or consumer info request asked
//! after the heal, which the acting meta leader sent to the members of a group that had a
//! leader, must be answered (by that leader) unless the group's leadership or the meta
//! leadership changes first. A request asked before the heal may have spent its client's wait
//! in a partition and reach the meta leader just before it times out (default seed 27922 of
//! v15: routed 60 µs before), so it is not watched. A request routed to a group without a
//! leader is not watched either: its answer waits for an election, or for the lost-quorum
//! interval after which members answer "no leader", longer than a client waits.

use std::collections::BTreeMap;

use sim::{Cluster, NodeIndex};

use super::Ghost;
use crate::raft::Term;
use crate::server::client_requests::{PENDING_REQUESTS_MAX, REQUEST_TIMEOUT_MS};
use crate::server::Server;

/// Requests routed or timed out within one event, at most (the rest are not judged).
const JUDGED_PER_EVENT_MAX: usize = 256;

#[derive(Debug, Default)]
pub struct InfoWatch {
    /// Requests open at each client's server, of any kind, and whether each was asked after
    /// the heal: a routed request is watched only while its client still waits (request ids
    /// start over when a server restarts), and only if its whole wait is in the healed world.
    open: BTreeMap<(NodeIndex, u64), bool>,
    /// Routed by the meta leader during the last event: client's server, request, group.
    routed: Vec<(NodeIndex, u64, String)>,
    /// Watched requests: the group, its leader and that leader's term when routed, and the
    /// count of meta leader changes then.
    watched: BTreeMap<(NodeIndex, u64), (String, NodeIndex, Term, u64)>,
    /// Watched requests that timed out during the last event.
    timed_out: Vec<(NodeIndex, u64)>,
}

impl Ghost {
    pub(super) fn info_request_opened(&mut self, node: NodeIndex, request: u64) {
        // Bounded like the servers' own books: one entry per request a client waits on.
        if self.info.open.len() < PENDING_REQUESTS_MAX * 64 {
            self.info.open.insert((node, request), self.healed);
        }
    }

    pub(super) fn info_request_closed(&mut self, node: NodeIndex, request: u64, timed_out: bool) {
        self.info.open.remove(&(node, request));
        if timed_out && self.info.watched.contains_key(&(node, request)) {
            if self.info.timed_out.len() < JUDGED_PER_EVENT_MAX {
                self.info.timed_out.push((node, request));
            }
        } else {
            self.info.watched.remove(&(node, request));
        }
    }

    pub(super) fn forget_info_requests_of(&mut self, node: NodeIndex) {
        self.info.open.retain(|(n, _), _| *n != node);
        self.info.watched.retain(|(n, _), _| *n != node);
        self.info.timed_out.retain(|(n, _)| *n != node);
    }

    /// The acting meta leader sent `origin`'s info request to the members of `group`.
    pub fn observe_info_routed(&mut self, origin: NodeIndex, request: u64, group: &str) {
        let asked_since_heal = self.info.open.get(&(origin, request)) == Some(&true);
        if self.healed && asked_since_heal && self.info.routed.len() < JUDGED_PER_EVENT_MAX {
            self.info.routed.push((origin, request, group.to_string()));
        }
    }

    /// After every event: watch what was routed to a group with a leader, and judge what
    /// timed out. A leader that still leads in the term it had when the request was routed
    /// has led all along (a term has one leader, and a leader that steps down never leads
    /// that term again), and after heal no message is lost.
    pub fn judge_info_requests(&mut self, cluster: &Cluster<'_, Server>) {
        if self.info.routed.is_empty() && self.info.timed_out.is_empty() {
            return;
        }
        for (origin, request, group) in std::mem::take(&mut self.info.routed) {
            if let Some((leader, term)) = group_leader(cluster, &group) {
                let watched = (group, leader, term, self.meta_leader_changes);
                self.info.watched.insert((origin, request), watched);
            }
        }
        for key in std::mem::take(&mut self.info.timed_out) {
            let Some((group, leader, term, changes)) = self.info.watched.remove(&key) else { continue };
            let still_leads = group_leader(cluster, &group) == Some((leader, term));
            if still_leads && changes == self.meta_leader_changes {
                let message = format!(
                    "info request {} of n{} went to group {group}, led by n{leader} in term {term} all along, and got no answer in {REQUEST_TIMEOUT_MS} ms",
                    key.1, key.0
                );
                self.flag("meta-info-answered", key.0, message);
            }
        }
    }
}

/// The running server that leads raft group `group`, with its term (the highest term when
/// a deposed leader has not heard of its successor yet).
fn group_leader(cluster: &Cluster<'_, Server>, group: &str) -> Option<(NodeIndex, Term)> {
    cluster
        .running()
        .filter_map(|(n, s)| s.group(group).filter(|g| g.node.leader()).map(|g| (n, g.node.term())))
        .max_by_key(|&(_, term)| term)
}
