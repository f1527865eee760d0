//! What crosses a server's boundary: messages between servers, the client operations a
//! server takes, and the answers clients get back. Plain data: this file names nothing else
//! of the server, so both the node and the oracle can speak it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sim::NodeIndex;

use crate::meta::model::peer_list;
use crate::meta::{
    ConsumerConfig, ConsumerKey, EmptyGroupReport, MetaRequest, PeerId, Placement, StreamConfig, StreamKey,
    StreamResult, REQUIRED_LEVEL_KEY,
};
use crate::raft::Message;

/// The meta group's name.
pub const META: &str = "meta";

/// What a client gets back: the outcome or the API error, as text for the trace.
pub type Answer = Result<String, String>;

/// How a client names the server to remove: by peer id, or by server name (`n<id>`), which
/// only servers heard from since this one started know (NATS does not persist names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerTarget {
    pub peer: Option<NodeIndex>,
    pub name: Option<String>,
}

/// Messages between servers. Every raft message names its group, so one server can run many;
/// the name is shared with the group, not copied, and serializes as the name itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    Raft {
        group: Arc<str>,
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
        /// The group of the incarnation the client's server has applied; empty from a server
        /// without a meta group, which sends it to every server: whichever runs the stream's
        /// applied incarnation takes it.
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
        /// Its meta group had a leader, as its memory or its log shows (NATS's statsz carries
        /// the meta group's leader): a cluster with one is not booting cold.
        meta_led: bool,
    },
    /// A member could not create or update its copy of a stream (NATS's assignment result):
    /// sent to the meta leader, which may re-place or remove the stream (§2.7).
    StreamResult(StreamResult),
    /// A client's meta leader stepdown a server passes to the meta leader it knows.
    StepdownRequest {
        request: u64,
        preferred: Option<NodeIndex>,
    },
    /// A client's peer removal a server passes to the meta leader it knows.
    RemovePeer {
        request: u64,
        target: PeerTarget,
    },
    /// A client's names request, on its way to the meta leader (one hop at most).
    NamesRequest {
        request: u64,
        query: NamesQuery,
    },
    /// A client's consumer info request, on its way to the meta leader (one hop at most).
    ConsumerInfoRequest {
        request: u64,
        consumer: ConsumerKey,
    },
    /// The meta leader asks the members of `group` to answer `origin`'s consumer info request.
    ConsumerInfoQuery {
        request: u64,
        origin: NodeIndex,
        consumer: ConsumerKey,
        group: String,
    },
    /// A client's stepdown of a stream's or consumer's group, on its way to the meta leader.
    GroupStepdownRequest {
        request: u64,
        asset: AssetRef,
        preferred: Option<NodeIndex>,
    },
    /// The meta leader asks the members of `group`: its leader answers and steps down.
    GroupStepdownQuery {
        request: u64,
        origin: NodeIndex,
        asset: AssetRef,
        group: String,
        preferred: Option<NodeIndex>,
    },
    /// The sender is shutting down and closes its routes ([`super::routes`]): it is offline
    /// from now on.
    RouteClosed,
    /// A scaled-down stream's group leader shrank the group's raft membership to `peers`
    /// (§2.2): sent to the meta leader, which drops the others from the assignment.
    GroupShrunk {
        stream: StreamKey,
        group: String,
        peers: Vec<PeerId>,
    },
    /// The sender runs JetStream outside the meta group, and says so every heartbeat with its
    /// stats: the meta leader adds it (NRG `trackPeer`, §8.1; see [`super::joins`]).
    Announce {
        streams: u32,
        streams_max: Option<u32>,
    },
    /// A member of a group every peer of which joined it holds none of its log and has waited
    /// long for a leader: sent to the meta leader, which may start the group over (§8.3, see
    /// [`crate::meta::empty`]).
    GroupEmpty(EmptyGroupReport),
}

/// The asset a client request names: a stream, or one of its consumers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssetRef {
    Stream(StreamKey),
    Consumer(ConsumerKey),
}

impl AssetRef {
    /// `stream` or `consumer`.
    pub fn kind(&self) -> &'static str {
        match self {
            AssetRef::Stream(_) => "stream",
            AssetRef::Consumer(_) => "consumer",
        }
    }

    /// `stream A:S` or `consumer A:S:C`, as answers name it.
    pub fn label(&self) -> String {
        match self {
            AssetRef::Stream(key) => format!("stream {key}"),
            AssetRef::Consumer(key) => format!("consumer {key}"),
        }
    }
}

/// What a names request lists (NATS `STREAM.NAMES`, `CONSUMER.NAMES`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamesQuery {
    Streams { account: String },
    Consumers { stream: StreamKey },
}

/// The latest stats heard from one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerStats {
    pub jetstream: bool,
    /// Streams it holds.
    pub streams: u32,
    /// Streams it may hold, if bounded.
    pub streams_max: Option<u32>,
    /// Its meta group had a leader (see [`ServerMsg::Statsz`]).
    pub meta_led: bool,
}

impl ServerStats {
    /// No room for another stream, as far as these stats tell.
    pub fn full(&self) -> bool {
        self.streams_max.is_some_and(|max| self.streams >= max)
    }
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
    /// `$JS.API.STREAM.PEER.REMOVE`: `peer` leaves stream `name`'s group and the meta leader
    /// puts a replacement in its place; refused ("peer remap failed") when there is none.
    /// Answered once the update applies.
    StreamPeerRemove {
        #[serde(default = "default_account")]
        account: String,
        name: String,
        peer: NodeIndex,
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
    /// The names of an account's streams (NATS `STREAM.NAMES`), answered by the meta leader
    /// from its applied assignments: `streams: S0, S1` (sorted), `streams: none`.
    StreamList {
        #[serde(default = "default_account")]
        account: String,
    },
    /// The names of a stream's consumers (NATS `CONSUMER.NAMES`), answered by the meta leader:
    /// `consumers of A:S: C0, C1`, or "stream A:S not found".
    ConsumerList {
        #[serde(default = "default_account")]
        account: String,
        stream: String,
    },
    /// The leader of a stream's group steps down (NATS `STREAM.LEADER.STEPDOWN`), handing over
    /// to `preferred` if given; answered by that leader, refused as a meta stepdown is.
    StreamStepdown {
        #[serde(default = "default_account")]
        account: String,
        name: String,
        #[serde(default)]
        preferred: Option<NodeIndex>,
    },
    /// The leader of a consumer's group steps down (NATS `CONSUMER.LEADER.STEPDOWN`).
    ConsumerStepdown {
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        name: String,
        #[serde(default)]
        preferred: Option<NodeIndex>,
    },
    /// Consumer info: answered by the consumer's leader (`consumer A:S:C: 3 replicas, leader
    /// n2`), "offline" by members that cannot run it, "not found" by the meta leader.
    ConsumerInfo {
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        name: String,
    },
    /// NATS `PauseApply` on the meta group of the server it is sent to: committed meta entries
    /// wait, and the server does not campaign, until `resume-apply` (or a restart). Refused on
    /// the meta leader.
    PauseApply {},
    /// NATS `ResumeApply`: apply what committed meanwhile; campaign at once if a leader handed
    /// over while paused.
    ResumeApply {},
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
            MetaOp::StreamPeerRemove { account, name, peer } => {
                MetaRequest::RemoveStreamPeer { account: account.clone(), name: name.clone(), peer: *peer }
            }
            _ => return None,
        })
    }
}

/// ` to n2` for a preferred server, nothing without one.
pub(crate) fn to_preferred(preferred: &Option<NodeIndex>) -> String {
    preferred.map(|p| format!(" to n{p}")).unwrap_or_default()
}

/// ` api level 3` when a level is required.
fn api_level(level: &Option<i64>) -> String {
    level.map(|l| format!(" api level {l}")).unwrap_or_default()
}

/// A client operation in words, as the event log names it: `update stream A:S2 subjects s2.>
/// R1`, `create consumer A:S0:C2`, `publish 3 to A:S0`, `meta stepdown to n2`. A raw config
/// shows as its JSON text.
impl fmt::Display for MetaOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stream_fields = |subjects: &[String], replicas: &u8| {
            let subjects = if subjects.is_empty() { "no subjects".to_string() } else { subjects.join(",") };
            format!("subjects {subjects} R{replicas}")
        };
        let cluster = |c: &Option<String>| c.as_ref().map(|c| format!(" in cluster {c}")).unwrap_or_default();
        match self {
            MetaOp::Propose { count: 1 } => write!(f, "propose 1 entry"),
            MetaOp::Propose { count } => write!(f, "propose {count} entries"),
            MetaOp::Stepdown { preferred } => write!(f, "meta stepdown{}", to_preferred(preferred)),
            MetaOp::AddPeer { peer } => write!(f, "add peer n{peer}"),
            MetaOp::RemovePeer { peer, name } => {
                write!(f, "remove peer")?;
                if let Some(peer) = peer {
                    write!(f, " n{peer}")?;
                }
                match name {
                    Some(name) => write!(f, " named {name}"),
                    None if peer.is_none() => write!(f, " (none named)"),
                    None => Ok(()),
                }
            }
            MetaOp::Rescue { quorum } => write!(f, "rescue with quorum {quorum}"),
            MetaOp::Snapshot {} => write!(f, "meta snapshot"),
            MetaOp::ProposeRaw { hex } => write!(f, "propose raw {hex}"),
            MetaOp::InjectInflightStream { account, name, peers } => {
                write!(f, "inject inflight stream {account}:{name} on {}", peer_list(peers))
            }
            MetaOp::CreateStream { account, name, config_json: Some(raw), .. } => {
                write!(f, "create stream {account}:{name} {raw}")
            }
            MetaOp::CreateStream {
                account,
                name,
                subjects,
                replicas,
                max_consumers,
                required_api_level,
                config_json: None,
                cluster: c,
            } => {
                write!(f, "create stream {account}:{name} {}", stream_fields(subjects, replicas))?;
                if let Some(max) = max_consumers {
                    write!(f, " max consumers {max}")?;
                }
                write!(f, "{}{}", api_level(required_api_level), cluster(c))
            }
            MetaOp::UpdateStream { account, name, subjects, replicas, sealed, required_api_level, cluster: c } => {
                write!(f, "update stream {account}:{name} {}", stream_fields(subjects, replicas))?;
                if *sealed {
                    write!(f, " sealed")?;
                }
                write!(f, "{}{}", api_level(required_api_level), cluster(c))
            }
            MetaOp::DeleteStream { account, name } => write!(f, "delete stream {account}:{name}"),
            MetaOp::CreateConsumer { account, stream, name, replicas, required_api_level, config_json } => {
                write!(f, "create consumer {account}:{stream}:{name}")?;
                if *replicas > 0 {
                    write!(f, " R{replicas}")?;
                }
                write!(f, "{}", api_level(required_api_level))?;
                match config_json {
                    Some(raw) => write!(f, " {raw}"),
                    None => Ok(()),
                }
            }
            MetaOp::DeleteConsumer { account, stream, name } => write!(f, "delete consumer {account}:{stream}:{name}"),
            MetaOp::StreamPeerRemove { account, name, peer } => {
                write!(f, "remove peer n{peer} from stream {account}:{name}")
            }
            MetaOp::StreamInfo { account, name } => write!(f, "stream info {account}:{name}"),
            MetaOp::Publish { account, stream, count } => {
                write!(f, "publish {} to {account}:{stream}", messages(*count))
            }
            MetaOp::StreamList { account } => write!(f, "list streams of {account}"),
            MetaOp::ConsumerList { account, stream } => write!(f, "list consumers of {account}:{stream}"),
            MetaOp::StreamStepdown { account, name, preferred } => {
                write!(f, "stepdown stream {account}:{name}{}", to_preferred(preferred))
            }
            MetaOp::ConsumerStepdown { account, stream, name, preferred } => {
                write!(f, "stepdown consumer {account}:{stream}:{name}{}", to_preferred(preferred))
            }
            MetaOp::ConsumerInfo { account, stream, name } => write!(f, "consumer info {account}:{stream}:{name}"),
            MetaOp::PauseApply {} => write!(f, "pause apply"),
            MetaOp::ResumeApply {} => write!(f, "resume apply"),
        }
    }
}

/// `stream A:S` or `consumer A:S:C`.
impl fmt::Display for AssetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// `streams of A` or `consumers of A:S`.
impl fmt::Display for NamesQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamesQuery::Streams { account } => write!(f, "streams of {account}"),
            NamesQuery::Consumers { stream } => write!(f, "consumers of {stream}"),
        }
    }
}

/// `n3`, `named n3`, or both.
impl fmt::Display for PeerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.peer, &self.name) {
            (Some(peer), Some(name)) => write!(f, "n{peer} named {name}"),
            (Some(peer), None) => write!(f, "n{peer}"),
            (None, Some(name)) => write!(f, "named {name}"),
            (None, None) => write!(f, "(none named)"),
        }
    }
}

/// An answer in words, as the event log shows it: `#3: ok stream A:S3 created`,
/// `#3: error stream not found`.
pub fn describe_answer(request: u64, answer: &Answer) -> String {
    match answer {
        Ok(ok) => format!("#{request}: ok {ok}"),
        Err(e) => format!("#{request}: error {e}"),
    }
}

/// `1 message`, `3 messages`.
pub(crate) fn messages(count: u32) -> String {
    if count == 1 {
        "1 message".to_string()
    } else {
        format!("{count} messages")
    }
}

/// `2 streams of at most 4`, `2 streams`.
fn stream_counts(streams: u32, streams_max: Option<u32>) -> String {
    let max = streams_max.map(|m| format!(" of at most {m}")).unwrap_or_default();
    format!("{streams} streams{max}")
}

/// Proposals per client operation are bounded.
pub const PROPOSE_COUNT_MAX: u32 = 1_000;
/// Messages per publish operation are bounded (each is one raft entry in an R>1 stream).
pub const PUBLISH_COUNT_MAX: u32 = 1_000;

/// Entries of an append named one by one in the event log; more are counted.
const ENTRIES_NAMED_MAX: usize = 3;

impl ServerMsg {
    /// In words for the event log: a raft message with its group, term, log position and
    /// entries (meta ops as the apply lines name them); a client request passed on with its
    /// id and what it asks; an answer with its request's id.
    pub fn describe(&self) -> String {
        let ServerMsg::Raft { group, msg } = self else { return self.describe_server_msg() };
        let meta = &**group == META;
        let words = match msg {
            Message::RequestVote { term, last_log_index, last_log_term, transfer, needs_every_vote } => format!(
                "RequestVote t{term} log {last_log_index}@t{last_log_term}{}{}",
                if *transfer { " (hand-over)" } else { "" },
                if *needs_every_vote { " (needs every vote)" } else { "" }
            ),
            Message::Vote { term, granted } => {
                format!("Vote t{term} {}", if *granted { "granted" } else { "refused" })
            }
            Message::Append { term, prev_index, prev_term, entries, commit, base } => {
                let base = base.as_ref().map(|b| format!(" base {}", peer_list(b))).unwrap_or_default();
                if entries.is_empty() {
                    format!("heartbeat t{term} after {prev_index}@t{prev_term} commit {commit}{base}")
                } else {
                    let named: Vec<String> = entries
                        .iter()
                        .take(ENTRIES_NAMED_MAX)
                        .map(|e| format!("#{} t{} {}", e.index, e.term, super::apply::describe_entry(meta, &e.data)))
                        .collect();
                    let more = entries.len().saturating_sub(ENTRIES_NAMED_MAX);
                    let more = if more > 0 { format!("; {more} more") } else { String::new() };
                    format!(
                        "Append t{term} after {prev_index}@t{prev_term} commit {commit}{base}: {}{more}",
                        named.join("; ")
                    )
                }
            }
            Message::AppendResponse { term, success: true, match_index, .. } => {
                format!("AppendResponse t{term} ok, holds {match_index}")
            }
            Message::AppendResponse { term, success: false, match_index, hint } => {
                format!("AppendResponse t{term} rejected after {match_index} (hint {hint})")
            }
            Message::InstallSnapshot { term, snapshot } => format!(
                "InstallSnapshot t{term} at {}@t{} peers {} ({} bytes)",
                snapshot.last_index,
                snapshot.last_term,
                peer_list(&snapshot.peers),
                snapshot.data.len()
            ),
            Message::TimeoutNow { term } => format!("TimeoutNow t{term}"),
        };
        format!("{group} {words}")
    }

    /// A message other than raft's in words (`request #3 delete consumer A:S3:C1`,
    /// `answer #3: error stream not found`).
    fn describe_server_msg(&self) -> String {
        match self {
            ServerMsg::Raft { .. } => self.describe(),
            ServerMsg::Forward { op } => format!("forward {op}"),
            ServerMsg::Request { request, body } => format!("request #{request} {body}"),
            ServerMsg::Answer { request, answer } => format!("answer {}", describe_answer(*request, answer)),
            ServerMsg::Publish { request, stream, group, count } => {
                let group = if group.is_empty() { "any group".to_string() } else { group.clone() };
                format!("publish #{request} {} to {stream} in {group}", messages(*count))
            }
            ServerMsg::InfoRequest { request, stream } => format!("stream info #{request} {stream}"),
            ServerMsg::InfoQuery { request, origin, stream, group } => {
                format!("stream info #{request} for n{origin}: {stream} in {group}")
            }
            ServerMsg::StatszRequest => "statsz request".to_string(),
            ServerMsg::Statsz { jetstream, streams, streams_max, meta_led } => format!(
                "statsz {}, {}{}",
                if *jetstream { "jetstream" } else { "no jetstream" },
                stream_counts(*streams, *streams_max),
                if *meta_led { ", meta led" } else { "" }
            ),
            ServerMsg::StreamResult(result) => format!("stream result: {result}"),
            ServerMsg::StepdownRequest { request, preferred } => {
                format!("meta stepdown #{request}{}", to_preferred(preferred))
            }
            ServerMsg::RemovePeer { request, target } => format!("remove peer #{request} {target}"),
            ServerMsg::NamesRequest { request, query } => format!("list #{request} {query}"),
            ServerMsg::ConsumerInfoRequest { request, consumer } => format!("consumer info #{request} {consumer}"),
            ServerMsg::ConsumerInfoQuery { request, origin, consumer, group } => {
                format!("consumer info #{request} for n{origin}: {consumer} in {group}")
            }
            ServerMsg::GroupStepdownRequest { request, asset, preferred } => {
                format!("stepdown #{request} {asset}{}", to_preferred(preferred))
            }
            ServerMsg::GroupStepdownQuery { request, origin, asset, group, preferred } => {
                format!("stepdown #{request} for n{origin}: {asset} in {group}{}", to_preferred(preferred))
            }
            ServerMsg::RouteClosed => "route closed".to_string(),
            ServerMsg::GroupShrunk { stream, group, peers } => {
                format!("group shrunk {stream} {group} to {}", peer_list(peers))
            }
            ServerMsg::Announce { streams, streams_max } => {
                format!("announce {}", stream_counts(*streams, *streams_max))
            }
            ServerMsg::GroupEmpty(report) => format!("group empty: {report}"),
        }
    }
}
