//! Meta-layer queries (spec §6) that depend only on the meta state, the local assets and facts
//! about this server's raft nodes, which the driver supplies through [`NodeFacts`].

use super::inflight::Inflight;
use super::local::LocalAssets;
use super::model::{ConsumerKey, PeerId, RaftGroup, StreamKey};
use super::state::MetaState;

/// A consumer missing locally is healthy this long after its creation (§6).
pub const CONSUMER_CREATE_GRACE_MS: u64 = 5_000;
/// A node without a leader counts as leaderless only after this long (NATS `lostQuorumInterval`).
pub const LOST_QUORUM_MS: u64 = 10_000;
/// A group node's leaderless flag after a previous leader counts only this long after the
/// layer started (NATS JS startup threshold).
pub const STARTUP_THRESHOLD_MS: u64 = 10_000;

/// Facts about this server's raft node for a group, by group name. `None`: this server has no
/// node for that group (R1 groups, non-members, not created yet).
pub trait NodeFacts {
    /// Leader, and past its post-election apply barrier.
    fn leader(&self, group: &str) -> Option<bool>;
    /// Caught up with a leader it heard from recently.
    fn current(&self, group: &str) -> Option<bool>;
    /// Current, or applying with forward progress.
    fn healthy(&self, group: &str) -> Option<bool>;
    /// No leader known right now.
    fn leaderless(&self, group: &str) -> Option<bool>;
    /// A snapshot catch-up is in progress.
    fn catching_up(&self, group: &str) -> Option<bool>;
    /// Some leader was observed since the node started.
    fn had_previous_leader(&self, group: &str) -> Option<bool>;
    /// When the node started.
    fn created_ms(&self, group: &str) -> Option<u64>;
    /// The node's storage write error, if it has one.
    fn write_error(&self, group: &str) -> Option<String>;
}

/// Inputs to healthz besides state and facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthContext<'a> {
    pub me: PeerId,
    pub now_ms: u64,
    /// The meta group's name in `NodeFacts`.
    pub meta_group: &'a str,
    /// The meta layer has not finished its startup replay.
    pub recovering: bool,
    /// Check the meta layer only, not the assets.
    pub meta_only: bool,
}

/// Where the meta leader sends a stream info request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfoRoute {
    /// Neither applied nor inflight.
    NotFound,
    /// The leader answers itself that the stream is offline: it judges the stream
    /// unsupported (§7), with the reason.
    Offline(String),
    /// None of the stream's peers is online, so no member could answer: the leader answers
    /// "offline" itself (NATS `allPeersOffline`), late, as NATS delays that answer. Applied or
    /// only inflight alike (§5.3: an inflight stream is "offline", never "not found").
    PeersOffline,
    /// The members answer: the stream's leader with its info, members that judge it
    /// unsupported with the offline reason.
    Members(RaftGroup),
}

/// Route a stream info request on the meta leader, through the applied-or-inflight view.
pub fn route_stream_info(state: &MetaState, inflight: &Inflight, key: &StreamKey, online: &[PeerId]) -> InfoRoute {
    if let Some(reason) = state.stream_unsupported(key) {
        return InfoRoute::Offline(reason.to_string());
    }
    match inflight.stream_or_inflight(state, key) {
        None => InfoRoute::NotFound,
        Some(sa) if !sa.group.peers.iter().any(|p| online.contains(p)) => InfoRoute::PeersOffline,
        Some(sa) => InfoRoute::Members(sa.group.clone()),
    }
}

/// Route a consumer info request on the meta leader, as [`route_stream_info`] routes a
/// stream's: "not found" names what is missing, the stream or the consumer.
pub fn route_consumer_info(state: &MetaState, inflight: &Inflight, key: &ConsumerKey, online: &[PeerId]) -> InfoRoute {
    if let Some(reason) = state.consumer_unsupported(key) {
        return InfoRoute::Offline(reason.to_string());
    }
    if inflight.stream_or_inflight(state, &key.stream_key()).is_none() {
        return InfoRoute::NotFound;
    }
    match inflight.consumer_or_inflight(state, key) {
        None => InfoRoute::NotFound,
        Some(ca) if !ca.group.peers.iter().any(|p| online.contains(p)) => InfoRoute::PeersOffline,
        Some(ca) => InfoRoute::Members(ca.group.clone()),
    }
}

/// The names of an account's applied streams, sorted (NATS `STREAM.NAMES` reads the applied
/// assignments only).
pub fn stream_names(state: &MetaState, account: &str) -> Vec<String> {
    state.streams_of(account).map(|sa| sa.name.clone()).collect()
}

/// The names of an applied stream's applied consumers, sorted; `None` when the stream is not
/// applied (NATS `CONSUMER.NAMES` answers "stream not found").
pub fn consumer_names(state: &MetaState, stream: &StreamKey) -> Option<Vec<String>> {
    state.stream(stream).map(|sa| sa.consumers.keys().cloned().collect())
}

/// The applied stream exists and this server is in its group.
pub fn is_stream_assigned(state: &MetaState, key: &StreamKey, me: PeerId) -> bool {
    state.stream(key).is_some_and(|sa| sa.group.is_member(me))
}

/// The applied consumer exists and this server is in its group.
pub fn is_consumer_assigned(state: &MetaState, key: &ConsumerKey, me: PeerId) -> bool {
    state.consumer(key).is_some_and(|ca| ca.group.is_member(me))
}

fn group_leader(group: &RaftGroup, me: PeerId, facts: &dyn NodeFacts) -> bool {
    // A single-peer group has no node: its only peer always leads.
    group.is_member(me) && (group.peers.len() == 1 || facts.leader(&group.name) == Some(true))
}

/// This server leads the stream's group.
pub fn is_stream_leader(state: &MetaState, key: &StreamKey, me: PeerId, facts: &dyn NodeFacts) -> bool {
    state.stream(key).is_some_and(|sa| group_leader(&sa.group, me, facts))
}

/// This server leads the consumer's group.
pub fn is_consumer_leader(state: &MetaState, key: &ConsumerKey, me: PeerId, facts: &dyn NodeFacts) -> bool {
    state.consumer(key).is_some_and(|ca| group_leader(&ca.group, me, facts))
}

/// The assignment exists, its node (if any) is current, and the local stream exists and is not
/// catching up.
pub fn is_stream_current(state: &MetaState, local: &LocalAssets, key: &StreamKey, facts: &dyn NodeFacts) -> bool {
    let Some(sa) = state.stream(key) else {
        return false;
    };
    let group = sa.group.name.as_str();
    facts.current(group).unwrap_or(true) && local.stream(key).is_some() && facts.catching_up(group) != Some(true)
}

/// The meta group has had no leader for longer than [`LOST_QUORUM_MS`] of its node's life:
/// API handlers answer "cluster not available".
pub fn is_meta_leaderless(facts: &dyn NodeFacts, meta_group: &str, now_ms: u64) -> bool {
    facts.leaderless(meta_group) == Some(true)
        && facts.created_ms(meta_group).is_some_and(|c| now_ms.saturating_sub(c) >= LOST_QUORUM_MS)
}

/// This server is in an R>1 group whose node has no leader, past the startup allowances.
pub fn is_group_leaderless(group: &RaftGroup, me: PeerId, facts: &dyn NodeFacts, started_ms: u64, now_ms: u64) -> bool {
    if !group.is_member(me) || facts.leaderless(&group.name) != Some(true) {
        return false;
    }
    let had_leader = facts.had_previous_leader(&group.name) == Some(true);
    let node_old = facts.created_ms(&group.name).is_some_and(|c| now_ms.saturating_sub(c) >= LOST_QUORUM_MS);
    (had_leader && now_ms.saturating_sub(started_ms) >= STARTUP_THRESHOLD_MS) || node_old
}

/// The checks shared by streams and consumers once the local asset exists and R > 1.
fn replicated_health(
    kind: &str,
    group: &RaftGroup,
    local_group: &str,
    running: bool,
    facts: &dyn NodeFacts,
) -> Result<(), String> {
    if facts.leader(&group.name).is_none() {
        return Err("group node missing".into());
    }
    if facts.leader(local_group).is_none() {
        return Err(format!("{kind} node missing"));
    }
    if local_group != group.name {
        return Err("cluster node skew detected".into());
    }
    if let Some(e) = facts.write_error(&group.name) {
        return Err(format!("group node write error: {e}"));
    }
    if !running {
        return Err(format!("{kind} monitor not running"));
    }
    if facts.catching_up(&group.name) == Some(true) {
        return Err(format!("{kind} catching up"));
    }
    if facts.healthy(&group.name) != Some(true) {
        return Err("group node unhealthy".into());
    }
    Ok(())
}

/// Stream health, checks in the order of §6; unsupported streams are healthy.
pub fn stream_health(
    state: &MetaState,
    local: &LocalAssets,
    facts: &dyn NodeFacts,
    key: &StreamKey,
) -> Result<(), String> {
    if state.stream_unsupported(key).is_some() {
        return Ok(());
    }
    let sa = state.stream(key).ok_or("stream assignment missing")?;
    if let Some(e) = local.stream_error(key) {
        return Err(format!("stream assignment error: {e}"));
    }
    let asset = local.stream(key).ok_or("stream not found")?;
    if !sa.replicated() {
        return Ok(());
    }
    replicated_health("stream", &sa.group, &asset.group_name, asset.running, facts)
}

/// Consumer health, checks in the order of §6, with the creation grace for a consumer not
/// (yet) running locally.
pub fn consumer_health(
    state: &MetaState,
    local: &LocalAssets,
    facts: &dyn NodeFacts,
    key: &ConsumerKey,
    now_ms: u64,
) -> Result<(), String> {
    let skey = key.stream_key();
    if state.consumer_unsupported(key).is_some() || state.stream_unsupported(&skey).is_some() {
        return Ok(());
    }
    if local.stream(&skey).is_none() {
        return Err("stream not found".into());
    }
    let ca = state.consumer(key).ok_or("consumer assignment missing")?;
    if let Some(e) = local.consumer_error(key) {
        return Err(format!("consumer assignment error: {e}"));
    }
    let Some(asset) = local.consumer(key) else {
        if now_ms.saturating_sub(ca.created_ms) < CONSUMER_CREATE_GRACE_MS {
            return Ok(());
        }
        return Err("consumer not found".into());
    };
    if ca.group.peers.len() <= 1 {
        return Ok(());
    }
    replicated_health("consumer", &ca.group, &asset.group_name, asset.running, facts)
}

/// The meta part of healthz; the first failing check wins, in the order of §6.
pub fn meta_health(state: &MetaState, facts: &dyn NodeFacts, ctx: &HealthContext<'_>) -> Result<(), String> {
    if let Some(e) = facts.write_error(ctx.meta_group) {
        return Err(format!("meta layer write error: {e}"));
    }
    if let Some(e) = state.write_error() {
        return Err(format!("meta layer apply error: {e}"));
    }
    if facts.leader(ctx.meta_group).is_none() {
        return Err("meta layer not running".into());
    }
    if ctx.recovering {
        return Err("meta layer still recovering".into());
    }
    if facts.leaderless(ctx.meta_group) != Some(false) {
        return Err("meta layer has no contact with a meta leader".into());
    }
    if facts.healthy(ctx.meta_group) != Some(true) {
        return Err("meta layer not current with the meta leader".into());
    }
    Ok(())
}

/// healthz: the meta part, then (unless `meta_only`) every supported applied stream and
/// consumer this server is a member of.
pub fn healthz(
    state: &MetaState,
    local: &LocalAssets,
    facts: &dyn NodeFacts,
    ctx: &HealthContext<'_>,
) -> Result<(), String> {
    meta_health(state, facts, ctx)?;
    if ctx.meta_only {
        return Ok(());
    }
    for sa in state.streams() {
        let key = sa.key();
        if !sa.group.is_member(ctx.me) || state.stream_unsupported(&key).is_some() {
            continue;
        }
        stream_health(state, local, facts, &key).map_err(|e| format!("stream {key}: {e}"))?;
        for ca in sa.consumers.values().filter(|ca| ca.group.is_member(ctx.me)) {
            let ckey = ca.key();
            consumer_health(state, local, facts, &ckey, ctx.now_ms).map_err(|e| format!("consumer {ckey}: {e}"))?;
        }
    }
    Ok(())
}
