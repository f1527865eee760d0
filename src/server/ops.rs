//! What crosses a server's boundary: messages between servers, client operations, scenario
//! expectations and the scenario's `[system]` settings.

use serde::{Deserialize, Serialize};
use sim::NodeIndex;

use super::jetstream::Answer;
use std::collections::BTreeMap;

use crate::meta::{
    ConsumerConfig, MetaRequest, Placement, StreamConfig, StreamKey, StreamResult, API_LEVEL, REQUIRED_LEVEL_KEY,
};

/// API levels a scenario may give a server (NATS levels are small integers).
pub const API_LEVEL_MAX: i64 = 1_000;
use crate::raft::{Index, Message};

/// Messages between servers. Every raft message names its group, so one server can run many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    Raft {
        group: String,
        msg: Message,
    },
    /// A client operation a non-leader passes to the leader it knows (one hop at most).
    Forward {
        op: MetaOp,
    },
    /// A client request a server passes to the meta leader it knows (one hop at most).
    Request {
        request: u64,
        body: MetaRequest,
    },
    /// The meta leader's answer to request `request` of the receiving server's client.
    Answer {
        request: u64,
        answer: Answer,
    },
    /// A client's publish, routed to every member of the stream's group (subject interest):
    /// the one that leads it stores the messages and acknowledges once they are committed.
    Publish {
        request: u64,
        stream: StreamKey,
        group: String,
        count: u32,
    },
    /// A client's stream info request, on its way to the meta leader (one hop at most).
    InfoRequest {
        request: u64,
        stream: StreamKey,
    },
    /// The meta leader asks the members of `group` to answer `origin`'s info request.
    InfoQuery {
        request: u64,
        origin: NodeIndex,
        stream: StreamKey,
        group: String,
    },
    /// "Who is out there?": the cold-boot check asks every server for its stats (NATS STATSZ).
    StatszRequest,
    /// A server's stats (NATS STATSZ): whether it runs JetStream, how many streams it holds
    /// and how many it may hold. Sent on request and every [`STATSZ_INTERVAL_MS`]; placement
    /// reads the latest it heard, so it can be stale.
    Statsz {
        jetstream: bool,
        streams: u32,
        streams_max: Option<u32>,
    },
    /// A member could not create or update its copy of a stream (NATS's assignment result):
    /// sent to the meta leader, which may re-place or remove the stream (§2.7).
    StreamResult(StreamResult),
    /// A client's peer removal a server passes to the meta leader it knows.
    RemovePeer {
        request: u64,
        target: super::peers::PeerTarget,
    },
}

/// Servers send their stats this often (NATS backs off to a 10 s heartbeat).
pub const STATSZ_INTERVAL_MS: u64 = 10_000;

/// Client operations on the meta group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MetaOp {
    /// Propose `count` entries through the meta leader.
    Propose {
        count: u32,
    },
    /// Leader steps down, optionally handing over to `preferred`.
    Stepdown {
        #[serde(default)]
        preferred: Option<NodeIndex>,
    },
    AddPeer {
        peer: NodeIndex,
    },
    /// `$JS.API.SERVER.REMOVE`: remove a server from the meta group, by peer id or by server
    /// name (`n<id>`, known only for servers heard from since start). Answered once applied.
    RemovePeer {
        #[serde(default)]
        peer: Option<NodeIndex>,
        #[serde(default)]
        name: Option<String>,
    },
    /// Meta rescue (disaster recovery), handled by the server it is sent to: count meta
    /// quorums against `quorum` for at most 5 minutes. Refused while a leader is known.
    Rescue {
        quorum: usize,
    },
    /// Take a meta snapshot now and compact the log.
    Snapshot {},
    /// Propose these bytes (hex) as one meta entry, as a faulty or newer leader might: the way
    /// to put an unknown op or an undecodable entry in the log.
    ProposeRaw {
        hex: String,
    },
    /// Track a stream assignment on `peers` as inflight on the meta leader without proposing
    /// it, as NATS's TestJetStreamClusterMetaLeaderRespectsInflight does: the way to hold an
    /// inflight stream whose peers are all offline. A leader change wipes it (§5.2).
    InjectInflightStream {
        #[serde(default = "default_account")]
        account: String,
        name: String,
        peers: Vec<NodeIndex>,
    },
    /// Create a stream (or idempotently re-create it) through the meta leader.
    CreateStream {
        #[serde(default = "default_account")]
        account: String,
        name: String,
        #[serde(default)]
        subjects: Vec<String>,
        #[serde(default)]
        replicas: u8,
        #[serde(default)]
        max_consumers: Option<u32>,
        /// Metadata `_nats.req.level`: the API level a server needs to run the stream.
        #[serde(default)]
        required_api_level: Option<i64>,
        /// Raw config JSON sent as is instead of the fields above (for configs this server
        /// does not know, e.g. from a newer server).
        #[serde(default)]
        config_json: Option<String>,
        /// Placement: the cluster every replica must be in.
        #[serde(default)]
        cluster: Option<String>,
    },
    /// Update a stream's config (same fields as create).
    UpdateStream {
        #[serde(default = "default_account")]
        account: String,
        name: String,
        #[serde(default)]
        subjects: Vec<String>,
        #[serde(default)]
        replicas: u8,
        #[serde(default)]
        sealed: bool,
        #[serde(default)]
        required_api_level: Option<i64>,
        #[serde(default)]
        cluster: Option<String>,
    },
    DeleteStream {
        #[serde(default = "default_account")]
        account: String,
        name: String,
    },
    /// Create a durable consumer `name` on `stream`.
    CreateConsumer {
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        name: String,
        /// 0: as many as the stream.
        #[serde(default)]
        replicas: u8,
        #[serde(default)]
        required_api_level: Option<i64>,
        #[serde(default)]
        config_json: Option<String>,
    },
    DeleteConsumer {
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        name: String,
    },
    /// Stream info: answered by the stream's leader, "offline" with the reason by members that
    /// cannot run it, "not found" by the meta leader.
    StreamInfo {
        #[serde(default = "default_account")]
        account: String,
        name: String,
    },
    /// Publish `count` messages to `stream`; acknowledged once stored (R1) or committed (R>1).
    Publish {
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        count: u32,
    },
}

fn default_account() -> String {
    "A".to_string()
}

impl MetaOp {
    /// The meta-layer request this operation makes, if it is one.
    pub fn request(&self) -> Option<MetaRequest> {
        let metadata = |level: &Option<i64>| {
            level.iter().map(|l| (REQUIRED_LEVEL_KEY.to_string(), l.to_string())).collect::<BTreeMap<_, _>>()
        };
        let stream_json = |name: &str,
                           subjects: &[String],
                           replicas: u8,
                           sealed: bool,
                           max_consumers: Option<u32>,
                           level: &Option<i64>,
                           cluster: &Option<String>| {
            StreamConfig {
                name: name.to_string(),
                subjects: subjects.to_vec(),
                replicas,
                sealed,
                max_consumers,
                metadata: metadata(level),
                placement: cluster.as_ref().map(|c| Placement { cluster: c.clone() }),
                mirror: None,
            }
            .to_json()
        };
        Some(match self {
            MetaOp::CreateStream {
                account,
                name,
                subjects,
                replicas,
                max_consumers,
                required_api_level,
                config_json,
                cluster,
            } => {
                let config_json = match config_json {
                    Some(raw) => raw.as_bytes().to_vec(),
                    None => stream_json(name, subjects, *replicas, false, *max_consumers, required_api_level, cluster),
                };
                MetaRequest::CreateStream { account: account.clone(), config_json }
            }
            MetaOp::UpdateStream { account, name, subjects, replicas, sealed, required_api_level, cluster } => {
                MetaRequest::UpdateStream {
                    account: account.clone(),
                    config_json: stream_json(name, subjects, *replicas, *sealed, None, required_api_level, cluster),
                }
            }
            MetaOp::DeleteStream { account, name } => {
                MetaRequest::DeleteStream { account: account.clone(), name: name.clone() }
            }
            MetaOp::CreateConsumer { account, stream, name, replicas, required_api_level, config_json } => {
                let config_json = match config_json {
                    Some(raw) => raw.as_bytes().to_vec(),
                    None => ConsumerConfig {
                        durable_name: Some(name.clone()),
                        replicas: *replicas,
                        metadata: metadata(required_api_level),
                        ..Default::default()
                    }
                    .to_json(),
                };
                MetaRequest::CreateConsumer { account: account.clone(), stream: stream.clone(), config_json }
            }
            MetaOp::DeleteConsumer { account, stream, name } => {
                MetaRequest::DeleteConsumer { account: account.clone(), stream: stream.clone(), name: name.clone() }
            }
            _ => return None,
        })
    }
}

/// Proposals per client operation are bounded.
pub const PROPOSE_COUNT_MAX: u32 = 1_000;
/// Messages per publish operation are bounded (each is one raft entry in an R>1 stream).
pub const PUBLISH_COUNT_MAX: u32 = 1_000;

/// Scenario expectations about the meta group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MetaExpect {
    /// `leader()` on `node` (true only past the apply barrier).
    Leader {
        node: NodeIndex,
        is: bool,
    },
    /// The quorum `node`'s meta group counts against (after any cold-boot size adjustment
    /// or rescue).
    Quorum {
        node: NodeIndex,
        equals: usize,
    },
    /// `node`'s meta group counts quorums against a rescued quorum (`Some`), or its own.
    Rescued {
        node: NodeIndex,
        quorum: Option<usize>,
    },
    /// Exactly one running server is leader, and every running member names it.
    OneLeader {},
    /// `leaderless()` on `node`.
    Leaderless {
        node: NodeIndex,
        is: bool,
    },
    /// `group_leader()` on `node`.
    GroupLeader {
        node: NodeIndex,
        equals: Option<NodeIndex>,
    },
    /// `current()` on `node`.
    Current {
        node: NodeIndex,
        is: bool,
    },
    /// `healthy()` on `node`.
    Healthy {
        node: NodeIndex,
        is: bool,
    },
    HadPreviousLeader {
        node: NodeIndex,
        is: bool,
    },
    /// `node` has applied at least `index`.
    AppliedAtLeast {
        node: NodeIndex,
        index: Index,
    },
    /// `node` holds this membership.
    Peers {
        node: NodeIndex,
        equals: Vec<NodeIndex>,
    },
    /// `node` refused to start its meta group (e.g. a corrupt snapshot or log).
    MetaRefused {
        node: NodeIndex,
        is: bool,
    },
    /// `node` has installed at least `count` snapshots sent by a leader.
    SnapshotsInstalled {
        node: NodeIndex,
        at_least: u64,
    },
    /// `node` has never been leader in this run.
    NeverLeader {
        node: NodeIndex,
    },
    /// At least `count` entries were applied somewhere (the oracle's committed log).
    CommittedAtLeast {
        count: u64,
    },
    /// Applied stream assignments on `node`.
    Streams {
        node: NodeIndex,
        count: usize,
    },
    /// The applied assignment of stream `name` on `node`: present or not, and with how many
    /// peers when given.
    Stream {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        name: String,
        exists: bool,
        #[serde(default)]
        peers: Option<usize>,
        /// Every peer is in this cluster (`[system] clusters`).
        #[serde(default)]
        in_cluster: Option<String>,
        /// The assignment has a sync subject (false: an old server's, not yet repaired).
        #[serde(default)]
        has_sync: Option<bool>,
        /// Exactly these peers (sorted).
        #[serde(default)]
        on: Option<Vec<NodeIndex>>,
    },
    /// Applied consumers of `stream` on `node`.
    Consumers {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        count: usize,
    },
    /// Direct consumers (created for mirrors, never assigned) `node` runs on its local
    /// `stream` (§11 #26).
    DirectConsumers {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        count: usize,
    },
    /// Streams `node` runs locally.
    LocalStreams {
        node: NodeIndex,
        count: usize,
    },
    /// Raft groups `node` runs, the meta group included.
    Groups {
        node: NodeIndex,
        count: usize,
    },
    /// Whether `node` holds stream `name` locally (running or stopped): restored from disk,
    /// created by an assignment, or an orphan not yet removed.
    LocalStream {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        name: String,
        exists: bool,
    },
    /// Answers the clients of `node` received (successes and errors).
    Answers {
        node: NodeIndex,
        #[serde(default)]
        at_least: u64,
        /// And no more than this many.
        #[serde(default)]
        at_most: Option<u64>,
    },
    /// Some successful answer to a client of `node` contained `contains`.
    AnswerOk {
        node: NodeIndex,
        contains: String,
    },
    /// Some answer to a client of `node` was an error containing `contains`.
    AnswerError {
        node: NodeIndex,
        contains: String,
    },
    /// `node`'s meta layer stopped on an apply error (sticky write error, §2.8).
    ApplyError {
        node: NodeIndex,
        is: bool,
    },
    /// Requests of `node`'s clients that timed out.
    Timeouts {
        node: NodeIndex,
        at_least: u64,
    },
    /// `node` judges stream `stream` (or its consumer `consumer`) unsupported (§7), with a
    /// reason containing `reason_contains` when given.
    Unsupported {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        #[serde(default)]
        consumer: Option<String>,
        is: bool,
        #[serde(default)]
        reason_contains: Option<String>,
    },
    /// Messages `node` holds for stream `name` (applied in its group for R>1, stored for R1).
    Messages {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        name: String,
        equals: u64,
    },
    /// healthz on `node` (§6): `ok = true`, or `error_contains = "..."`; `meta_only = true`
    /// checks the meta layer only.
    Healthz(HealthzExpect),
    /// The health of stream `name` on `node`, as healthz checks it.
    StreamHealth(StreamHealthExpect),
    /// The health of consumer `name` of `stream` on `node`, as healthz checks it.
    ConsumerHealth(ConsumerHealthExpect),
}

/// What a health check should answer. A scenario gives exactly one of `ok = true` and
/// `error_contains`, checked when the file loads: a check that can pass either way is a typo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthWant {
    Ok,
    ErrorContains(String),
}

impl HealthWant {
    fn from_fields(ok: Option<bool>, error_contains: Option<String>) -> Result<Self, String> {
        match (ok, error_contains) {
            (Some(true), None) => Ok(HealthWant::Ok),
            (None, Some(text)) => Ok(HealthWant::ErrorContains(text)),
            (Some(false), None) => {
                Err("`ok = false` is not a check: say which error with `error_contains = \"...\"`".into())
            }
            (Some(_), Some(_)) => Err("give either `ok = true` or `error_contains`, not both".into()),
            (None, None) => Err("missing `ok = true` or `error_contains = \"...\"`".into()),
        }
    }

    fn fields(&self) -> (Option<bool>, Option<String>) {
        match self {
            HealthWant::Ok => (Some(true), None),
            HealthWant::ErrorContains(text) => (None, Some(text.clone())),
        }
    }

    /// Whether `actual` is what is wanted; the error shows the actual answer.
    pub fn check(&self, actual: &Result<(), String>) -> Result<(), String> {
        match (self, actual) {
            (HealthWant::Ok, Ok(())) => Ok(()),
            (HealthWant::ErrorContains(text), Err(e)) if e.contains(text.as_str()) => Ok(()),
            (HealthWant::Ok, Err(e)) => Err(format!("is error {e:?}, expected ok")),
            (HealthWant::ErrorContains(text), Ok(())) => Err(format!("is ok, expected an error containing {text:?}")),
            (HealthWant::ErrorContains(text), Err(e)) => {
                Err(format!("is error {e:?}, expected an error containing {text:?}"))
            }
        }
    }
}

/// A `healthz` expectation (see [`MetaExpect::Healthz`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HealthzFields", into = "HealthzFields")]
pub struct HealthzExpect {
    pub node: NodeIndex,
    pub meta_only: bool,
    pub want: HealthWant,
}

/// A `stream-health` expectation (see [`MetaExpect::StreamHealth`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StreamHealthFields", into = "StreamHealthFields")]
pub struct StreamHealthExpect {
    pub node: NodeIndex,
    pub account: String,
    pub name: String,
    pub want: HealthWant,
}

/// A `consumer-health` expectation (see [`MetaExpect::ConsumerHealth`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ConsumerHealthFields", into = "ConsumerHealthFields")]
pub struct ConsumerHealthExpect {
    pub node: NodeIndex,
    pub account: String,
    pub stream: String,
    pub name: String,
    pub want: HealthWant,
}

// The tables as scenario files spell them; `try_from` turns `ok`/`error_contains` into a
// `HealthWant` or a load-time error.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthzFields {
    node: NodeIndex,
    #[serde(default)]
    meta_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_contains: Option<String>,
}

impl TryFrom<HealthzFields> for HealthzExpect {
    type Error = String;
    fn try_from(f: HealthzFields) -> Result<Self, String> {
        let want = HealthWant::from_fields(f.ok, f.error_contains)?;
        Ok(HealthzExpect { node: f.node, meta_only: f.meta_only, want })
    }
}

impl From<HealthzExpect> for HealthzFields {
    fn from(e: HealthzExpect) -> Self {
        let (ok, error_contains) = e.want.fields();
        HealthzFields { node: e.node, meta_only: e.meta_only, ok, error_contains }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamHealthFields {
    node: NodeIndex,
    #[serde(default = "default_account")]
    account: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_contains: Option<String>,
}

impl TryFrom<StreamHealthFields> for StreamHealthExpect {
    type Error = String;
    fn try_from(f: StreamHealthFields) -> Result<Self, String> {
        let want = HealthWant::from_fields(f.ok, f.error_contains)?;
        Ok(StreamHealthExpect { node: f.node, account: f.account, name: f.name, want })
    }
}

impl From<StreamHealthExpect> for StreamHealthFields {
    fn from(e: StreamHealthExpect) -> Self {
        let (ok, error_contains) = e.want.fields();
        StreamHealthFields { node: e.node, account: e.account, name: e.name, ok, error_contains }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerHealthFields {
    node: NodeIndex,
    #[serde(default = "default_account")]
    account: String,
    stream: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_contains: Option<String>,
}

impl TryFrom<ConsumerHealthFields> for ConsumerHealthExpect {
    type Error = String;
    fn try_from(f: ConsumerHealthFields) -> Result<Self, String> {
        let want = HealthWant::from_fields(f.ok, f.error_contains)?;
        Ok(ConsumerHealthExpect { node: f.node, account: f.account, stream: f.stream, name: f.name, want })
    }
}

impl From<ConsumerHealthExpect> for ConsumerHealthFields {
    fn from(e: ConsumerHealthExpect) -> Self {
        let (ok, error_contains) = e.want.fields();
        ConsumerHealthFields { node: e.node, account: e.account, stream: e.stream, name: e.name, ok, error_contains }
    }
}

/// The scenario's `[system]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub heartbeat_ms: u64,
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    /// How often each server ticks its raft groups, in its own clock.
    pub tick_ms: u64,
    /// Take a snapshot and compact once this many entries were applied since the last one.
    pub snapshot_every: u64,
    /// Entries in one Append at most (1 splits every batch, for hand-built histories).
    pub max_entries_per_append: usize,
    /// Servers that never campaign.
    pub observers: Vec<NodeIndex>,
    /// The meta group's first members; every server when empty. Others join by add-peer.
    pub initial_peers: Vec<NodeIndex>,
    /// Servers running without JetStream: they route and answer server-stats requests but
    /// run no meta group (NATS mixed mode). The cold-boot check shrinks the cluster size to
    /// the JetStream servers so the others can elect a leader.
    pub jetstream_disabled: Vec<NodeIndex>,
    /// Streams per account at most (NATS MaxStreams); none when absent.
    pub max_streams_per_account: Option<u32>,
    /// Servers running another version, with its API level (a mixed-version cluster during
    /// an upgrade or downgrade); the rest run [`API_LEVEL`]. Assets that require a higher
    /// level than a server's are unsupported there (§7).
    pub api_levels: Vec<ServerApiLevel>,
    /// Clusters of a super-cluster, each a list of servers. Empty: one cluster of them all.
    /// A stream without a placement cluster goes to its client's cluster first, then to the
    /// others in this order (NATS client "alternates").
    pub clusters: Vec<ClusterSpec>,
    /// Servers that hold a bounded number of streams; a member at its bound refuses a new
    /// one with "insufficient resources" (§2.7 assignment results).
    pub stream_capacity: Vec<ServerCapacity>,
}

/// Streams one server may hold at most.
pub const STREAM_CAPACITY_MAX: u32 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    pub nodes: Vec<NodeIndex>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCapacity {
    pub node: NodeIndex,
    pub streams: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerApiLevel {
    pub node: NodeIndex,
    pub level: i64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            heartbeat_ms: 1_000,
            election_timeout_ms_min: 4_000,
            election_timeout_ms_max: 9_000,
            tick_ms: 100,
            snapshot_every: 256,
            max_entries_per_append: 64,
            observers: vec![],
            initial_peers: vec![],
            jetstream_disabled: vec![],
            max_streams_per_account: None,
            api_levels: vec![],
            clusters: vec![],
            stream_capacity: vec![],
        }
    }
}

impl ServerConfig {
    /// The API level server `node` runs.
    pub fn api_level(&self, node: NodeIndex) -> i64 {
        self.api_levels.iter().find(|l| l.node == node).map_or(API_LEVEL, |l| l.level)
    }

    /// The cluster server `node` is in: its name, or `None` without clusters.
    pub fn cluster_of(&self, node: NodeIndex) -> Option<&str> {
        self.clusters.iter().find(|c| c.nodes.contains(&node)).map(|c| c.name.as_str())
    }

    /// Streams server `node` may hold, if bounded.
    pub fn stream_capacity(&self, node: NodeIndex) -> Option<u32> {
        self.stream_capacity.iter().find(|c| c.node == node).map(|c| c.streams)
    }

    fn validate_clusters(&self, servers: u32) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        for (i, cluster) in self.clusters.iter().enumerate() {
            if !crate::meta::request::valid_name(&cluster.name) {
                return Err(format!("clusters: {:?} is not a valid cluster name", cluster.name));
            }
            if self.clusters[..i].iter().any(|c| c.name == cluster.name) {
                return Err(format!("clusters: cluster {:?} is listed twice", cluster.name));
            }
            if cluster.nodes.is_empty() {
                return Err(format!("clusters: cluster {:?} has no servers", cluster.name));
            }
            for &node in &cluster.nodes {
                if node >= servers {
                    return Err(format!("clusters: no server {node} in a cluster of {servers}"));
                }
                if let Some(other) = seen.insert(node, &cluster.name) {
                    return Err(format!("clusters: server {node} is in both {other:?} and {:?}", cluster.name));
                }
            }
        }
        if !self.clusters.is_empty() && seen.len() != servers as usize {
            let missing = (0..servers).find(|n| !seen.contains_key(n)).expect("fewer seen than servers");
            return Err(format!("clusters: server {missing} is in no cluster"));
        }
        for (i, entry) in self.stream_capacity.iter().enumerate() {
            if entry.node >= servers {
                return Err(format!("stream_capacity: no server {} in a cluster of {servers}", entry.node));
            }
            if entry.streams > STREAM_CAPACITY_MAX {
                return Err(format!(
                    "stream_capacity: {} streams on server {} is above {STREAM_CAPACITY_MAX}",
                    entry.streams, entry.node
                ));
            }
            if self.stream_capacity[..i].iter().any(|e| e.node == entry.node) {
                return Err(format!("stream_capacity: server {} is listed twice", entry.node));
            }
        }
        Ok(())
    }

    pub fn validate(&self, servers: u32) -> Result<(), String> {
        self.validate_clusters(servers)?;
        for (i, entry) in self.api_levels.iter().enumerate() {
            if entry.node >= servers {
                return Err(format!("api_levels: no server {} in a cluster of {servers}", entry.node));
            }
            if !(0..=API_LEVEL_MAX).contains(&entry.level) {
                return Err(format!(
                    "api_levels: level {} of server {} is outside 0..={API_LEVEL_MAX}",
                    entry.level, entry.node
                ));
            }
            if self.api_levels[..i].iter().any(|e| e.node == entry.node) {
                return Err(format!("api_levels: server {} is listed twice", entry.node));
            }
        }
        for (field, list) in [
            ("observers", &self.observers),
            ("initial_peers", &self.initial_peers),
            ("jetstream_disabled", &self.jetstream_disabled),
        ] {
            if let Some(bad) = list.iter().find(|&&n| n >= servers) {
                return Err(format!("{field}: no server {bad} in a cluster of {servers}"));
            }
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms > 60_000 {
            return Err(format!("heartbeat_ms must be between 1 and 60000, got {}", self.heartbeat_ms));
        }
        if self.election_timeout_ms_min <= self.heartbeat_ms {
            return Err(format!(
                "election_timeout_ms_min ({}) must exceed heartbeat_ms ({})",
                self.election_timeout_ms_min, self.heartbeat_ms
            ));
        }
        if self.election_timeout_ms_max < self.election_timeout_ms_min || self.election_timeout_ms_max > 600_000 {
            return Err(format!(
                "election_timeout_ms_max ({}) must be between election_timeout_ms_min ({}) and 600000",
                self.election_timeout_ms_max, self.election_timeout_ms_min
            ));
        }
        if self.tick_ms == 0 || self.tick_ms > self.heartbeat_ms {
            return Err(format!("tick_ms must be between 1 and heartbeat_ms, got {}", self.tick_ms));
        }
        if self.max_entries_per_append == 0 || self.max_entries_per_append > 10_000 {
            return Err(format!(
                "max_entries_per_append must be between 1 and 10000, got {}",
                self.max_entries_per_append
            ));
        }
        if self.snapshot_every == 0 {
            return Err("snapshot_every must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MetaExpect, String> {
        toml::from_str::<MetaExpect>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn health_expectations_round_trip_through_toml() {
        for text in [
            "kind = \"healthz\"\nnode = 1\nmeta_only = true\nok = true\n",
            "kind = \"stream-health\"\nnode = 0\naccount = \"A\"\nname = \"S\"\nerror_contains = \"unhealthy\"\n",
            "kind = \"consumer-health\"\nnode = 2\naccount = \"B\"\nstream = \"S\"\nname = \"C\"\nok = true\n",
        ] {
            let expect = parse(text).unwrap();
            let again = parse(&toml::to_string(&expect).unwrap()).unwrap();
            assert_eq!(expect, again, "{text}");
        }
    }

    #[test]
    fn health_expectations_need_exactly_one_answer() {
        let both = parse("kind = \"healthz\"\nnode = 0\nok = true\nerror_contains = \"x\"\n").unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let neither = parse("kind = \"healthz\"\nnode = 0\n").unwrap_err();
        assert!(neither.contains("missing `ok = true`"), "{neither}");
        let not_ok = parse("kind = \"healthz\"\nnode = 0\nok = false\n").unwrap_err();
        assert!(not_ok.contains("not a check"), "{not_ok}");
    }

    #[test]
    fn a_failed_health_check_shows_the_actual_answer() {
        let want = HealthWant::ErrorContains("not running".into());
        assert_eq!(want.check(&Err("meta layer not running".into())), Ok(()));
        assert_eq!(want.check(&Ok(())), Err("is ok, expected an error containing \"not running\"".into()));
        let got = HealthWant::Ok.check(&Err("meta layer still recovering".into())).unwrap_err();
        assert!(got.contains("meta layer still recovering"), "{got}");
    }
}
