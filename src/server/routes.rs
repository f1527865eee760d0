//! The servers this one has a route to. NATS connects every pair of servers by a route, pings
//! over it, and learns at once when a peer closes it (a graceful shutdown) or after pings go
//! unanswered (a crash, a partition). Here any message keeps a route up and silence loses it:
//! the meta leader, the one server that asks, hears from every live member at least once per
//! heartbeat, so separate pings would only add traffic. Placement and the offline answers ask
//! this, not raft's contact times: a new meta leader has heard nothing as leader from its peers
//! yet, and raft would take servers that have been down for a minute for online ones.

use std::collections::BTreeMap;

use sim::NodeIndex;

use super::bugs::ONLINE_FROM_RAFT_CONTACT;
use super::env::ServerEnv;
use super::group::Group;
use super::Server;
use crate::raft::PeerId;

/// A route over which nothing came for this long is lost: three raft heartbeats (NATS: pings
/// outstanding past the limit close the connection).
pub const ROUTE_LOST_AFTER_MS: u64 = 3_000;

#[derive(Debug, Default)]
pub struct Routes {
    /// When each server was last heard from, on this server's monotonic clock. Absent: not
    /// heard since this server started, or its route was closed since.
    heard_ms: BTreeMap<NodeIndex, u64>,
}

impl Routes {
    /// Anything from `server` shows its route is up.
    pub fn heard(&mut self, server: NodeIndex, now_ms: u64) {
        self.heard_ms.insert(server, now_ms);
    }

    /// `server` closed its route (it is shutting down).
    pub fn closed(&mut self, server: NodeIndex) {
        self.heard_ms.remove(&server);
    }

    /// Whether this server has a live route to `server`.
    pub fn up(&self, server: NodeIndex, now_ms: u64) -> bool {
        self.heard_ms.get(&server).is_some_and(|&at| now_ms < at.saturating_add(ROUTE_LOST_AFTER_MS))
    }
}

impl Server {
    /// The members of `group` this server counts as online: itself and those it has a live
    /// route to. (Under the bug switch, the raft leader's contact times instead, where a peer
    /// not heard from since the election counts as online for the lost-quorum window.)
    pub(super) fn online_members(&self, env: &ServerEnv<'_>, group: &Group) -> Vec<PeerId> {
        let now = env.monotonic_ms();
        if env.bug(ONLINE_FROM_RAFT_CONTACT) {
            return group.node.peers_in_contact(now);
        }
        let me = env.node();
        group.node.peers().iter().copied().filter(|&p| p == me || self.routes.up(p, now)).collect()
    }

    /// `from` closed its routes: it shuts down.
    pub(super) fn on_route_closed(&mut self, from: NodeIndex) {
        self.routes.closed(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_is_up_from_contact_until_lost_or_closed() {
        let mut routes = Routes::default();
        assert!(!routes.up(1, 0), "never heard: no route");
        routes.heard(1, 1_000);
        assert!(routes.up(1, 1_000));
        assert!(routes.up(1, 1_000 + ROUTE_LOST_AFTER_MS - 1));
        assert!(!routes.up(1, 1_000 + ROUTE_LOST_AFTER_MS), "silent too long: lost");
        routes.heard(1, 5_000);
        assert!(routes.up(1, 5_000));
        routes.closed(1);
        assert!(!routes.up(1, 5_000), "closed: down at once");
        assert!(!routes.up(2, 5_000), "other servers are unaffected and unknown");
    }
}
