//! Stream info requests, and the answers servers send their clients.
//!
//! A client asks at any server; the request goes to the meta leader, which looks the stream up
//! through its applied-or-inflight view (§5.3). It answers "not found" itself, or "offline"
//! when it judges the stream unsupported, or (500 ms late, as NATS) when no peer of the stream
//! is online; otherwise it asks the stream's members. The member that leads the stream (the host
//! of an R1 stream) answers with its info; a member whose group has had no leader for the
//! lost-quorum interval answers with what it holds and "no leader" (for a consumer: "cluster
//! not available"), as NATS's `isGroupLeaderless` members do; members that judge it unsupported
//! answer "offline" with the reason, 500 ms later, so that a member that runs it answers first
//! (§7). The client keeps the first answer.

use sim::NodeIndex;

use super::env::ServerEnv;
use super::names::CLUSTER_NOT_AVAILABLE;
use super::observe::Observation;
use super::requests::trace_request_dropped;
use super::wire::{Answer, AssetRef, ServerMsg};
use super::Server;
use crate::meta::queries::{self, InfoRoute};
use crate::meta::{ConsumerKey, StreamKey};

/// How long a member that cannot run a stream waits before answering "offline" (NATS).
pub const OFFLINE_ANSWER_DELAY_MS: u64 = 500;
/// Held-back answers per server at most; more are dropped (their clients time out).
pub const DELAYED_ANSWERS_MAX: usize = 1_000;

impl Server {
    /// A client at this server asks for stream `key`'s info.
    pub(super) fn client_info(&mut self, env: &mut ServerEnv<'_>, key: StreamKey) {
        // Not watched for L7: the answer depends on the stream's group having a leader too.
        let Some((request, route)) = self.open_client_request(env, false) else { return };
        env.trace_with("info-request", &(request, &key), || format!("#{request} {key}"));
        self.send_request(env, route, ServerMsg::InfoRequest { request, stream: key });
    }

    /// The meta leader routes a stream info request (a server that is not leader drops it).
    pub(super) fn lead_info(&mut self, env: &mut ServerEnv<'_>, origin: NodeIndex, request: u64, key: StreamKey) {
        self.lead_asset_request(env, origin, request, AssetRef::Stream(key), Ask::Info);
    }

    /// The meta leader routes a consumer info request, as a stream's.
    pub(super) fn lead_consumer_info(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        key: ConsumerKey,
    ) {
        self.lead_asset_request(env, origin, request, AssetRef::Consumer(key), Ask::Info);
    }

    /// The meta leader answers "not found" or "offline" itself, or asks the asset's members
    /// (for its info, or for its leader to step down).
    pub(super) fn lead_asset_request(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        asset: AssetRef,
        ask: Ask,
    ) {
        let Some(group) = self.groups.meta() else { return };
        let Some(meta) = group.meta.as_deref().filter(|m| m.leader_term.is_some()) else {
            trace_request_dropped(env, origin, request);
            return;
        };
        let online = self.online_members(env, group);
        let (state, inflight) = (&meta.state, &meta.inflight);
        let (route, not_found) = match &asset {
            AssetRef::Stream(key) => {
                (queries::route_stream_info(state, inflight, key, &online), format!("stream {key}"))
            }
            AssetRef::Consumer(key) => {
                let stream = key.stream_key();
                let missing = match inflight.stream_or_inflight(state, &stream) {
                    None => format!("stream {stream}"),
                    Some(_) => format!("consumer {key}"),
                };
                (queries::route_consumer_info(state, inflight, key, &online), missing)
            }
        };
        match route {
            InfoRoute::NotFound => self.send_answer(env, origin, request, Err(format!("{not_found} not found"))),
            InfoRoute::Offline(reason) => {
                self.send_answer(env, origin, request, Err(format!("{} is offline: {reason}", asset.label())))
            }
            InfoRoute::PeersOffline => {
                let answer = Err(format!("{} is offline: no peer of the {} is online", asset.label(), asset.kind()));
                self.delay_answer(env, origin, request, answer)
            }
            InfoRoute::Members(group) => {
                if matches!(ask, Ask::Info) {
                    env.observe(Observation::InfoRouted { origin, request, group: &group.name });
                }
                let me = env.node();
                for peer in group.peers {
                    if peer == me {
                        self.on_asset_query(env, origin, request, &asset, &group.name, ask);
                    } else {
                        env.send(peer, ask.query(request, origin, &asset, group.name.clone()));
                    }
                }
            }
        }
    }

    /// This member answers the meta leader's question about `asset` here.
    fn on_asset_query(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        asset: &AssetRef,
        group: &str,
        ask: Ask,
    ) {
        match (ask, asset) {
            (Ask::Info, AssetRef::Stream(key)) => self.on_info_query(env, origin, request, key, group),
            (Ask::Info, AssetRef::Consumer(key)) => self.on_consumer_info_query(env, origin, request, key, group),
            (Ask::Stepdown(preferred), asset) => {
                self.on_group_stepdown_query(env, origin, request, asset, group, preferred)
            }
        }
    }

    /// A member of `group` is asked for `key`'s info on behalf of `origin`'s client.
    pub(super) fn on_info_query(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        key: &StreamKey,
        group: &str,
    ) {
        let Some(meta) = self.groups.meta().and_then(|g| g.meta.as_deref()) else { return };
        // Only the incarnation the meta leader named.
        let Some(sa) = meta.state.stream(key).filter(|sa| sa.group.name == group) else { return };
        if let Some(reason) = meta.state.stream_unsupported(key) {
            self.delay_answer(env, origin, request, Err(format!("stream {key} is offline: {reason}")));
            return;
        }
        // NATS `isGroupLeaderless`: a member whose group has had no leader for long answers with
        // what it holds, so that a stream whose group cannot elect still answers.
        let now = env.monotonic_ms();
        let leads = !sa.replicated() || self.groups.get(group).is_some_and(|g| g.node.leader());
        let leaderless = !leads && self.groups.get(group).is_some_and(|g| g.node.leaderless_for_long(now));
        let Some(messages) = self.stream_messages(key, env.disk()).filter(|_| leads || leaderless) else { return };
        let leader = if leads { format!("leader n{}", env.node()) } else { "no leader".to_string() };
        let answer = match messages {
            Ok(n) => Ok(format!("stream {key}: {n} messages, {} replicas, {leader}", sa.group.peers.len())),
            Err(e) => Err(format!("stream {key}: {e}")),
        };
        self.send_answer(env, origin, request, answer);
    }

    /// A client at this server asks for consumer `key`'s info.
    pub(super) fn client_consumer_info(&mut self, env: &mut ServerEnv<'_>, key: ConsumerKey) {
        // Not watched for L7, as stream info: the answer needs the consumer's group to lead.
        let Some((request, route)) = self.open_client_request(env, false) else { return };
        env.trace_with("consumer-info-request", &(request, &key), || format!("#{request} {key}"));
        self.send_request(env, route, ServerMsg::ConsumerInfoRequest { request, consumer: key });
    }

    /// A member of `group` is asked for consumer `key`'s info on behalf of `origin`'s client:
    /// its leader (the host of an R1 consumer) answers; a member that judges it unsupported
    /// answers "offline" late, as for streams (§7).
    pub(super) fn on_consumer_info_query(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        key: &ConsumerKey,
        group: &str,
    ) {
        let Some(meta) = self.groups.meta().and_then(|g| g.meta.as_deref()) else { return };
        // Only the incarnation the meta leader named.
        let Some(ca) = meta.state.consumer(key).filter(|ca| ca.group.name == group) else { return };
        if let Some(reason) = meta.state.consumer_unsupported(key) {
            self.delay_answer(env, origin, request, Err(format!("consumer {key} is offline: {reason}")));
            return;
        }
        if !ca.group.is_member(env.node()) {
            return;
        }
        // NATS: a member whose group has had no leader for long answers "not available" at once.
        let running = self.groups.get(group);
        if running.is_some_and(|g| g.node.leaderless_for_long(env.monotonic_ms())) {
            self.send_answer(env, origin, request, Err(CLUSTER_NOT_AVAILABLE.into()));
            return;
        }
        let leads = ca.group.peers.len() == 1 || running.is_some_and(|g| g.node.leader());
        if !leads {
            return;
        }
        let answer = Ok(format!("consumer {key}: {} replicas, leader n{}", ca.group.peers.len(), env.node()));
        self.send_answer(env, origin, request, answer);
    }

    /// Hold `answer` back for [`OFFLINE_ANSWER_DELAY_MS`] (dropped beyond the bound: its
    /// client times out).
    fn delay_answer(&mut self, env: &mut ServerEnv<'_>, origin: NodeIndex, request: u64, answer: Answer) {
        if self.delayed_answers.len() < DELAYED_ANSWERS_MAX {
            let due = env.monotonic_ms() + OFFLINE_ANSWER_DELAY_MS;
            self.delayed_answers.push((due, origin, request, answer));
        }
    }

    /// Send the held-back answers whose time has come.
    pub(super) fn send_due_answers(&mut self, env: &mut ServerEnv<'_>) {
        let now = env.monotonic_ms();
        // Every tick asks; mostly nothing waits, or nothing is due yet.
        if self.delayed_answers.iter().all(|a| a.0 > now) {
            return;
        }
        let (due, waiting) = std::mem::take(&mut self.delayed_answers).into_iter().partition(|a| a.0 <= now);
        self.delayed_answers = waiting;
        for (_, origin, request, answer) in due {
            self.send_answer(env, origin, request, answer);
        }
    }

    /// Answer request `request` of `origin`'s client: locally, or over the network.
    pub(super) fn send_answer(&mut self, env: &mut ServerEnv<'_>, origin: NodeIndex, request: u64, answer: Answer) {
        if origin == env.node() {
            self.client_requests_mut().on_answer(env, request, answer);
        } else {
            env.send(origin, ServerMsg::Answer { request, answer });
        }
    }
}

/// What the meta leader asks an asset's members.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ask {
    Info,
    /// Its leader steps down, handing over to the preferred server if given.
    Stepdown(Option<NodeIndex>),
}

impl Ask {
    /// The question as the meta leader sends it to a member of the asset's `group`.
    fn query(self, request: u64, origin: NodeIndex, asset: &AssetRef, group: String) -> ServerMsg {
        match (self, asset) {
            (Ask::Info, AssetRef::Stream(key)) => ServerMsg::InfoQuery { request, origin, stream: key.clone(), group },
            (Ask::Info, AssetRef::Consumer(key)) => {
                ServerMsg::ConsumerInfoQuery { request, origin, consumer: key.clone(), group }
            }
            (Ask::Stepdown(preferred), asset) => {
                ServerMsg::GroupStepdownQuery { request, origin, asset: asset.clone(), group, preferred }
            }
        }
    }
}
