//! Names requests (NATS `STREAM.NAMES`, `CONSUMER.NAMES`): the meta leader answers from its
//! applied assignments, sorted, with no member involved. A server that has known no meta
//! leader for longer than the lost-quorum interval answers at once that the cluster is not
//! available, as NATS does, instead of leaving its client to time out.

use sim::NodeIndex;

use super::env::ServerEnv;
use super::requests::{trace_request_dropped, RequestRoute};
use super::wire::{Answer, NamesQuery, ServerMsg};
use super::Server;
use crate::meta::queries;
use crate::meta::MetaState;

/// NATS's answer when the meta group has had no leader for a while.
pub const CLUSTER_NOT_AVAILABLE: &str = "JetStream cluster not available";

impl Server {
    /// A client at this server asks for names.
    pub(super) fn client_names(&mut self, env: &mut ServerEnv<'_>, query: NamesQuery) {
        let now = env.monotonic_ms();
        let leaderless = self.groups.meta().is_some_and(|g| g.node.leaderless_for_long(now));
        // Watched for L7: the acting meta leader answers on its own.
        let Some((request, route)) = self.open_client_request(env, true) else { return };
        env.trace_with("names-request", &(request, &query), || format!("#{request} {query}"));
        if leaderless && matches!(route, RequestRoute::Nowhere) {
            let me = env.node();
            self.send_answer(env, me, request, Err(CLUSTER_NOT_AVAILABLE.into()));
            return;
        }
        self.send_request(env, route, ServerMsg::NamesRequest { request, query });
    }

    /// The meta leader answers a names request (a server that does not act as leader drops it).
    pub(super) fn lead_names(&mut self, env: &mut ServerEnv<'_>, origin: NodeIndex, request: u64, query: NamesQuery) {
        let Some(meta) = self.groups.meta().and_then(|g| g.meta.as_deref()).filter(|m| m.leader_term.is_some()) else {
            trace_request_dropped(env, origin, request);
            return;
        };
        let answer = names_answer(&meta.state, &query);
        self.send_answer(env, origin, request, answer);
    }
}

/// The answer to `query` from `state`.
fn names_answer(state: &MetaState, query: &NamesQuery) -> Answer {
    let list = |names: Vec<String>| if names.is_empty() { "none".to_string() } else { names.join(", ") };
    match query {
        NamesQuery::Streams { account } => Ok(format!("streams: {}", list(queries::stream_names(state, account)))),
        NamesQuery::Consumers { stream } => match queries::consumer_names(state, stream) {
            Some(names) => Ok(format!("consumers of {stream}: {}", list(names))),
            None => Err(format!("stream {stream} not found")),
        },
    }
}
