//! L7's bookkeeping: the requests the acting meta leader owes an answer. A request made once
//! faults healed and routed to the server acting as meta leader must be answered unless that
//! leadership changes first; one that times out with no change in between was lost.

use std::collections::BTreeMap;

use sim::NodeIndex;

use super::Ghost;
use crate::server::client_requests::REQUEST_TIMEOUT_MS;
use crate::server::observe::RequestTarget;

#[derive(Debug, Default)]
pub struct RequestWatch {
    /// Watched requests, by the client's server and request id: the count of acting-leader
    /// changes when each was made.
    open: BTreeMap<(NodeIndex, u64), u64>,
}

impl Ghost {
    /// A client of `node` opened `request`, sent to `target`: watched when it reaches the
    /// acting meta leader (sent to every server, it does).
    pub fn observe_request_opened(&mut self, node: NodeIndex, request: u64, target: RequestTarget, watched: bool) {
        let reaches_leader = match target {
            RequestTarget::Server(server) => Some(server) == self.acting_meta_leader,
            RequestTarget::Everyone => self.acting_meta_leader.is_some_and(|leader| leader != node),
            RequestTarget::Nowhere => false,
        };
        self.info_request_opened(node, request);
        if watched && self.healed && reaches_leader {
            self.requests.open.insert((node, request), self.meta_leader_changes);
        }
    }

    pub fn observe_request_answered(&mut self, node: NodeIndex, request: u64) {
        self.info_request_closed(node, request, false);
        self.requests.open.remove(&(node, request));
    }

    pub fn observe_request_timed_out(&mut self, node: NodeIndex, request: u64) {
        self.info_request_closed(node, request, true);
        let Some(changes) = self.requests.open.remove(&(node, request)) else { return };
        if changes == self.meta_leader_changes {
            let message = format!(
                "request {request} reached the acting meta leader and got no answer in {REQUEST_TIMEOUT_MS} ms, with no leader change"
            );
            self.flag("meta-request-answered", node, message);
        }
    }

    /// `node` stopped: its clients' requests went with it, and its request ids start over.
    pub fn forget_requests_of(&mut self, node: NodeIndex) {
        self.requests.open.retain(|(n, _), _| *n != node);
        self.forget_info_requests_of(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healed_with_leader(leader: NodeIndex) -> Ghost {
        Ghost { healed: true, acting_meta_leader: Some(leader), ..Ghost::default() }
    }

    fn flagged(ghost: &Ghost) -> Option<&str> {
        ghost.violation.as_ref().map(|v| v.invariant.as_str())
    }

    #[test]
    fn a_request_sent_to_everyone_is_owed_by_the_acting_leader() {
        let mut ghost = healed_with_leader(0);
        ghost.observe_request_opened(3, 1, RequestTarget::Everyone, true);
        ghost.observe_request_timed_out(3, 1);
        assert_eq!(flagged(&ghost), Some("meta-request-answered"));
    }

    #[test]
    fn answered_requests_and_leader_changes_owe_nothing() {
        let mut ghost = healed_with_leader(0);
        ghost.observe_request_opened(3, 1, RequestTarget::Everyone, true);
        ghost.observe_request_answered(3, 1);
        ghost.observe_request_timed_out(3, 1);
        ghost.observe_request_opened(1, 1, RequestTarget::Server(0), true);
        ghost.meta_leader_changes += 1;
        ghost.observe_request_timed_out(1, 1);
        assert_eq!(flagged(&ghost), None);
    }

    #[test]
    fn requests_that_cannot_reach_the_leader_owe_nothing() {
        let mut ghost = healed_with_leader(0);
        // Sent to a server that does not lead, to nowhere, or broadcast by the leader itself.
        ghost.observe_request_opened(2, 1, RequestTarget::Server(1), true);
        ghost.observe_request_opened(2, 2, RequestTarget::Nowhere, true);
        ghost.observe_request_opened(0, 3, RequestTarget::Everyone, true);
        ghost.observe_request_opened(2, 4, RequestTarget::Server(0), false);
        for (node, request) in [(2, 1), (2, 2), (0, 3), (2, 4)] {
            ghost.observe_request_timed_out(node, request);
        }
        assert_eq!(flagged(&ghost), None);
    }
}
