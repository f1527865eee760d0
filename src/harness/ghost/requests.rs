//! L7's bookkeeping: the requests the acting meta leader owes an answer. A request made once
//! faults healed and routed to the server acting as meta leader must be answered unless that
//! leadership changes first; one that times out with no change in between was lost.

use std::collections::BTreeMap;

use sim::NodeIndex;

use super::Ghost;
use crate::server::client_requests::REQUEST_TIMEOUT_MS;

#[derive(Debug, Default)]
pub struct RequestWatch {
    /// Watched requests, by the client's server and request id: the count of acting-leader
    /// changes when each was made.
    open: BTreeMap<(NodeIndex, u64), u64>,
}

impl Ghost {
    /// A client of `node` opened `request`, routed to `target`.
    pub fn observe_request_opened(&mut self, node: NodeIndex, request: u64, target: Option<NodeIndex>, watched: bool) {
        if watched && self.healed && target.is_some() && target == self.acting_meta_leader {
            self.requests.open.insert((node, request), self.meta_leader_changes);
        }
    }

    pub fn observe_request_answered(&mut self, node: NodeIndex, request: u64) {
        self.requests.open.remove(&(node, request));
    }

    pub fn observe_request_timed_out(&mut self, node: NodeIndex, request: u64) {
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
    }
}
