//! Server stats and assignment results: what placement knows about room on each server, and
//! the failed-create reports members send the meta leader (§2.7).
//!
//! Every server broadcasts its stats (NATS STATSZ) every [`STATSZ_INTERVAL_MS`] when the
//! scenario bounds some server's streams (or runs some without JetStream), so placement works
//! from figures up to ten seconds old: two creates close together can both land on a server
//! with room for one. The member that is out of room refuses its copy and reports it; the
//! leader re-places the stream in another cluster, or removes it, and counts the reporting
//! server as full until its next stats arrive.

use sim::NodeIndex;

use super::bugs::PLACEMENT_IGNORES_JETSTREAM;
use super::config::ServerConfig;
use super::env::{forked_rng, ServerEnv};
use super::group::Group;
use super::observe::Observation;
use super::requests::propose_meta;
use super::wire::{ServerMsg, ServerStats, STATSZ_INTERVAL_MS};
use super::Server;
use crate::meta::{self, ClusterPeers, LeaderContext, MetaEntry, PeerId, ResultPlan, StreamResult};

/// The clusters of `config` as placement sees them (empty without clusters).
pub fn cluster_peers(config: &ServerConfig) -> Vec<ClusterPeers> {
    config.clusters.iter().map(|c| ClusterPeers { name: c.name.clone(), peers: c.nodes.clone() }).collect()
}

impl Server {
    /// This server's stats now.
    pub(super) fn own_stats(&self, env: &ServerEnv<'_>) -> ServerStats {
        let meta = self.groups.meta().and_then(|g| g.meta.as_deref());
        let streams = meta.map_or(0, |m| m.local.streams().count());
        ServerStats {
            jetstream: !env.config().jetstream_disabled.contains(&env.node()) && !self.jetstream_removed,
            streams: u32::try_from(streams).expect("streams bounded by capacity and names"),
            streams_max: env.config().stream_capacity(env.node()),
            // Its memory or its log shows a leader: every entry was written by one.
            meta_led: self.groups.meta().is_some_and(|g| g.node.had_previous_leader() || g.node.last_index() > 0),
        }
    }

    pub(super) fn stats_msg(&self, env: &ServerEnv<'_>) -> ServerMsg {
        let stats = self.own_stats(env);
        ServerMsg::Statsz {
            jetstream: stats.jetstream,
            streams: stats.streams,
            streams_max: stats.streams_max,
            meta_led: stats.meta_led,
        }
    }

    /// From the tick: broadcast stats when they are due. Only scenarios that bound some
    /// server's streams (placement) or run servers without JetStream (the meta leader's
    /// cluster size check, §8.4, counts JetStream servers) need them; the others send nothing.
    pub(super) fn stats_tick(&mut self, env: &mut ServerEnv<'_>) {
        if !stats_broadcast(env) || env.monotonic_ms() < self.statsz_at_ms {
            return;
        }
        self.statsz_at_ms = env.monotonic_ms() + STATSZ_INTERVAL_MS;
        let own = self.own_stats(env);
        self.note_stats(env.node(), own);
        let msg = self.stats_msg(env);
        env.broadcast(msg);
    }

    /// Record `node`'s latest stats (this server's own among them). A server that became
    /// selectable may top up a short stream: NATS's `processPeerStatsz` signals the leader's
    /// reconcile, and the leader's own room counts as well (seed 7653 of `churn`).
    pub(super) fn note_stats(&mut self, node: NodeIndex, stats: ServerStats) {
        let had_room = self.known_servers.get(&node).is_some_and(|s| s.jetstream && !s.full());
        let selectable = stats.jetstream && !stats.full();
        self.known_servers.insert(node, stats);
        if selectable && !had_room {
            if let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) {
                meta.peer_reconcile_due |= meta.leader_term.is_some();
            }
        }
    }

    /// Peers placement should skip: full by their latest stats.
    pub fn full_peers(&self) -> Vec<PeerId> {
        self.known_servers.iter().filter(|(_, s)| s.full()).map(|(&n, _)| n).collect()
    }

    /// Peers placement must not pick: full, running without JetStream by their latest stats,
    /// or, where servers broadcast stats, never heard from (NATS selects only servers whose
    /// stats carry a JetStream config). `meta_peers` are the candidates.
    fn unplaceable_peers(&self, env: &ServerEnv<'_>, meta_peers: &[PeerId]) -> Vec<PeerId> {
        let mut unplaceable = self.full_peers();
        if env.bug(PLACEMENT_IGNORES_JETSTREAM) {
            return unplaceable;
        }
        let stats_heard = stats_broadcast(env);
        unplaceable.extend(meta_peers.iter().copied().filter(|p| match self.known_servers.get(p) {
            Some(stats) => !stats.jetstream,
            None => stats_heard,
        }));
        unplaceable.sort_unstable();
        unplaceable.dedup();
        unplaceable
    }

    /// What the meta leader knows besides the meta state, for a request from `client`'s
    /// server (`None`: the leader acts on its own, as for a result).
    pub(super) fn leader_context(&self, env: &ServerEnv<'_>, client: Option<NodeIndex>) -> Option<LeaderContext> {
        let group = self.groups.meta()?;
        let meta = group.meta.as_deref()?;
        meta.leader_term?;
        let config = env.config();
        let meta_peers = group.node.peers().to_vec();
        Some(LeaderContext {
            me: env.node(),
            unplaceable_peers: self.unplaceable_peers(env, &meta_peers),
            lagging_peers: lagging_peers(group),
            meta_peers,
            online_peers: self.online_members(env, group),
            now_ms: env.now_ms(),
            max_streams_per_account: config.max_streams_per_account,
            api_level: meta.state.api_level(),
            clusters: cluster_peers(config),
            client_cluster: client.and_then(|c| config.cluster_of(c)).map(String::from),
            bugs: meta.bugs,
        })
    }

    /// After each input: send this server's failed creates to the meta leader it knows. With
    /// none known they are lost, as a NATS publish with no subscriber is.
    pub(super) fn send_results(&mut self, env: &mut ServerEnv<'_>) {
        let Some(group) = self.groups.meta_mut() else { return };
        let Some(meta) = group.meta.as_deref_mut() else { return };
        if meta.results_out.is_empty() {
            return;
        }
        let results = std::mem::take(&mut meta.results_out);
        let leading = meta.leader_term.is_some();
        // A raft leader whose meta layer is not acting yet (before its apply barrier) has no
        // one to give them to, as NATS's leader-only subscription does not exist yet.
        let leader = group.node.group_leader().filter(|&l| l != env.node());
        for result in results {
            match leader {
                _ if leading => self.lead_result(env, env.node(), result),
                Some(leader) => env.send(leader, ServerMsg::StreamResult(result)),
                None => env.trace_with("result-lost", &result, || result.to_string()),
            }
        }
    }

    /// The meta leader acts on a member's failed create (a server that is not leader drops it).
    pub(super) fn lead_result(&mut self, env: &mut ServerEnv<'_>, from: NodeIndex, result: StreamResult) {
        if result.error == meta::ApiError::InsufficientResources {
            // The report is fresher than the reporter's stats: count it full until they come.
            if let Some(stats) = self.known_servers.get_mut(&from) {
                stats.streams = stats.streams.max(stats.streams_max.unwrap_or(0));
            }
        }
        let Some(ctx) = self.leader_context(env, None) else {
            env.trace_with("result-dropped", &result, || result.to_string());
            return;
        };
        let mut rng = forked_rng(env);
        let group = self.groups.meta_mut().expect("leader_context found the meta group");
        let meta = group.meta.as_deref().expect("the meta group carries the meta layer");
        let term = meta.leader_term.expect("leader_context requires a leader term");
        let plan = meta::on_stream_result(&result, &meta.state, &meta.inflight, &ctx, &mut rng);
        let plan_words = plan.describe();
        env.trace_with("result", &(&result, &plan_words), || format!("{result} -> {plan_words}"));
        let proposals = match plan {
            ResultPlan::Ignore(_) | ResultPlan::Keep => return,
            ResultPlan::Replace { delete, add } => vec![*delete, *add],
            ResultPlan::Remove { delete } => vec![*delete],
        };
        // The leader removes a stream on a report about that very group, never about another
        // (PR #6121: one stream hopping from group to group on repeated reports).
        if let Some(removed) = proposals.first().map(removed_group) {
            env.observe(Observation::ResultRemoves { stream: &result.stream, reported: &result.group, removed });
        }
        let replacing = proposals.len() == 2;
        for entry in proposals {
            if let Err(e) = propose_meta(env, group, term, &entry, &ctx.meta_peers) {
                env.trace_text("propose-refused", &e);
                return;
            }
        }
        let meta = group.meta.as_deref_mut().expect("the meta group carries the meta layer");
        if replacing {
            meta.inflight.mark_reassigning(&result.stream);
        }
    }
}

fn removed_group(entry: &MetaEntry) -> &str {
    match entry {
        MetaEntry::RemoveStream { sa, .. } => &sa.group.name,
        other => unreachable!("a result plan starts with a stream delete, not {other:?}"),
    }
}

/// Meta log entries a peer may lag behind the leader's commit and still count as current.
const META_LAG_MAX: u64 = 8;

/// Meta peers whose log lags the leader's commit by more than [`META_LAG_MAX`] entries.
fn lagging_peers(group: &Group) -> Vec<PeerId> {
    let (me, commit) = (group.node.id(), group.node.commit_index());
    let lagging = |p: &PeerId| *p != me && group.node.match_index(*p) + META_LAG_MAX < commit;
    group.node.peers().iter().copied().filter(lagging).collect()
}

/// Whether servers broadcast their stats: only where some server's streams are bounded
/// (placement) or some server runs without JetStream (placement and the meta leader's cluster
/// size check, §8.4); elsewhere they send none.
fn stats_broadcast(env: &ServerEnv<'_>) -> bool {
    let config = env.config();
    !config.stream_capacity.is_empty() || !config.jetstream_disabled.is_empty()
}
