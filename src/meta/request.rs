//! Leader-side request handling (spec §2.7) as a pure function: validate an API request
//! against the applied-or-inflight view and build the meta entry to propose. The driver
//! proposes it and, only if the propose succeeded, calls [`Inflight::track_entry`].

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::bugs::MetaBugs;
use super::entry::{MetaEntry, Reply};
use super::inflight::Inflight;
use super::model::{
    check_required_level, ConsumerAssignment, ConsumerConfig, ConsumerKey, PeerId, RaftGroup, StreamAssignment,
    StreamConfig, StreamKey, MAX_CONFIG_BYTES,
};
use super::state::MetaState;

// Defined with the meta layer's other errors; `meta::request::ApiError` still names it.
pub use super::error::ApiError;

/// Most replicas a stream may ask for.
pub const MAX_REPLICAS: u8 = 5;
/// Longest account, stream, consumer name or subject accepted.
pub const MAX_NAME_LEN: usize = 255;
/// Attempts at drawing a name no other assignment uses; collisions of 64 random bits are
/// astronomically rare, so hitting the bound means the RNG is broken.
const NAME_ATTEMPTS: usize = 16;

/// An API request the meta leader turns into a proposal. Configs are encoded as bytes (the
/// same bytes in bincode as a sequence of `u8`, and in one write to a digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaRequest {
    CreateStream {
        account: String,
        #[serde(with = "serde_bytes")]
        config_json: Vec<u8>,
    },
    UpdateStream {
        account: String,
        #[serde(with = "serde_bytes")]
        config_json: Vec<u8>,
    },
    DeleteStream {
        account: String,
        name: String,
    },
    CreateConsumer {
        account: String,
        stream: String,
        #[serde(with = "serde_bytes")]
        config_json: Vec<u8>,
    },
    DeleteConsumer {
        account: String,
        stream: String,
        name: String,
    },
    /// NATS `STREAM.PEER.REMOVE`: `peer` leaves stream `name`'s group for a replacement.
    RemoveStreamPeer {
        account: String,
        name: String,
        peer: PeerId,
    },
}

/// The request in words, with its config as JSON text: `create stream A:S2 {"name":"S2",...}`,
/// `delete consumer A:S3:C1`, `remove peer n2 from stream A:S1`. The name a create or update
/// carries only in its config is read from there (`A:?` when it has none).
impl std::fmt::Display for MetaRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = |config: &[u8], field: &str| -> String {
            serde_json::from_slice::<serde_json::Value>(config)
                .ok()
                .and_then(|v| v.get(field).and_then(|n| n.as_str()).map(str::to_string))
                .unwrap_or_else(|| "?".to_string())
        };
        let text = |config: &[u8]| String::from_utf8_lossy(config).into_owned();
        match self {
            MetaRequest::CreateStream { account, config_json } => {
                write!(f, "create stream {account}:{} {}", named(config_json, "name"), text(config_json))
            }
            MetaRequest::UpdateStream { account, config_json } => {
                write!(f, "update stream {account}:{} {}", named(config_json, "name"), text(config_json))
            }
            MetaRequest::DeleteStream { account, name } => write!(f, "delete stream {account}:{name}"),
            MetaRequest::CreateConsumer { account, stream, config_json } => {
                let name = named(config_json, "durable_name");
                write!(f, "create consumer {account}:{stream}:{name} {}", text(config_json))
            }
            MetaRequest::DeleteConsumer { account, stream, name } => {
                write!(f, "delete consumer {account}:{stream}:{name}")
            }
            MetaRequest::RemoveStreamPeer { account, name, peer } => {
                write!(f, "remove peer n{peer} from stream {account}:{name}")
            }
        }
    }
}

/// What the leader knows besides the meta state when handling a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderContext {
    /// The leader itself.
    pub me: PeerId,
    /// The meta group's membership: the only peers placement may pick (S11).
    pub meta_peers: Vec<PeerId>,
    /// Peers the leader currently hears from.
    pub online_peers: Vec<PeerId>,
    /// The leader's clock; becomes `created_ms` of new assets.
    pub now_ms: u64,
    /// Per-account stream limit, when set.
    pub max_streams_per_account: Option<u32>,
    /// The leader's API level: it refuses configs that require a higher one (§7).
    pub api_level: i64,
    /// The clusters of a super-cluster, in the order placement tries them after the client's
    /// own. Empty: one cluster of all meta peers.
    pub clusters: Vec<ClusterPeers>,
    /// The cluster of the server the client's request came through (NATS `ClientInfo.Cluster`).
    pub client_cluster: Option<String>,
    /// Peers placement skips: full by their latest stats (or a failed create), or not
    /// running JetStream, or (where servers broadcast stats) never heard from.
    pub unplaceable_peers: Vec<PeerId>,
    /// Peers well behind the leader's meta log: a replica change adds none of them, as one
    /// that missed leaving a stream's group could outvote its new members from a stale log.
    pub lagging_peers: Vec<PeerId>,
    pub bugs: MetaBugs,
}

/// One cluster's servers, for placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterPeers {
    pub name: String,
    pub peers: Vec<PeerId>,
}

/// Validate `request` and build the entry to propose (§2.7). `reply` is copied into the entry.
pub fn handle(
    request: &MetaRequest,
    reply: Option<Reply>,
    state: &MetaState,
    inflight: &Inflight,
    ctx: &LeaderContext,
    rng: &mut dyn RngCore,
) -> Result<MetaEntry, ApiError> {
    let empty = Inflight::default();
    // Under the bugs, validation reads applied state only, as before the inflight maps existed.
    let view = if ctx.bugs.no_inflight { &empty } else { inflight };
    let limits = if ctx.bugs.limits_ignore_inflight { &empty } else { view };
    let h = Handler { state, view, limits, ctx };
    match request {
        MetaRequest::CreateStream { account, config_json } => h.create_stream(account, config_json, reply, rng),
        MetaRequest::UpdateStream { account, config_json } => h.update_stream(account, config_json, reply, rng),
        MetaRequest::DeleteStream { account, name } => {
            let existing =
                view.stream_or_inflight(state, &StreamKey::new(account, name)).ok_or(ApiError::StreamNotFound)?;
            Ok(MetaEntry::RemoveStream { sa: existing.without_consumers(), reply })
        }
        MetaRequest::CreateConsumer { account, stream, config_json } => {
            h.create_consumer(account, stream, config_json, reply, rng)
        }
        MetaRequest::DeleteConsumer { account, stream, name } => {
            // Applied state only (§2.7): an inflight-only consumer cannot be deleted yet.
            let sa = state.stream(&StreamKey::new(account, stream)).ok_or(ApiError::StreamNotFound)?;
            let ca = sa.consumers.get(name).ok_or(ApiError::ConsumerNotFound)?;
            Ok(MetaEntry::RemoveConsumer { ca: ca.as_ref().clone(), reply })
        }
        MetaRequest::RemoveStreamPeer { account, name, peer } => {
            h.remove_stream_peer(&StreamKey::new(account, name), *peer, reply, rng)
        }
    }
}

pub(super) struct Handler<'a> {
    pub(super) state: &'a MetaState,
    /// Applied-or-inflight view for existence, idempotency and overlap.
    pub(super) view: &'a Inflight,
    /// View used for counting against limits.
    pub(super) limits: &'a Inflight,
    pub(super) ctx: &'a LeaderContext,
}

impl Handler<'_> {
    /// Peers for a new stream group (§9.1): in the config's placement cluster, or else the
    /// first cluster that fits, trying `first` (the client's cluster, or the one a failed
    /// create was in) and then the others in order. Peers known to be full are skipped.
    pub(super) fn place_stream(
        &self,
        config: &StreamConfig,
        first: Option<&str>,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<PeerId>, ApiError> {
        let replicas = usize::from(config.replicas);
        let has_room = |p: &PeerId| !self.ctx.unplaceable_peers.contains(p);
        if self.ctx.clusters.is_empty() {
            let candidates: Vec<PeerId> = self.ctx.meta_peers.iter().copied().filter(has_room).collect();
            return place(replicas, &candidates, &self.ctx.online_peers, rng);
        }
        let mut order: Vec<&str> = match &config.placement {
            Some(p) => vec![p.cluster.as_str()],
            None => {
                let first = first.or(self.ctx.client_cluster.as_deref());
                first.into_iter().chain(self.ctx.clusters.iter().map(|c| c.name.as_str())).collect()
            }
        };
        // Each cluster once, in first-seen order.
        let mut seen = BTreeSet::new();
        order.retain(|name| seen.insert(*name));
        for name in order {
            let Some(cluster) = self.ctx.clusters.iter().find(|c| c.name == name) else { continue };
            let candidates: Vec<PeerId> =
                self.ctx.meta_peers.iter().copied().filter(|p| cluster.peers.contains(p) && has_room(p)).collect();
            if let Ok(peers) = place(replicas, &candidates, &self.ctx.online_peers, rng) {
                return Ok(peers);
            }
        }
        Err(ApiError::InsufficientResources)
    }

    fn create_stream(
        &self,
        account: &str,
        bytes: &[u8],
        reply: Option<Reply>,
        rng: &mut dyn RngCore,
    ) -> Result<MetaEntry, ApiError> {
        let config = parse_stream_request(account, bytes, self.ctx.api_level)?;
        if config.sealed {
            return Err(ApiError::InvalidConfig("a stream cannot be created sealed".into()));
        }
        let key = StreamKey::new(account, &config.name);
        if let Some(existing) = self.view.stream_or_inflight(self.state, &key) {
            if let Some(reason) = self.state.stream_unsupported(&key) {
                return Err(ApiError::Offline(reason.into()));
            }
            if existing_stream_config(existing)? != config {
                return Err(ApiError::StreamNameInUse);
            }
            // Idempotent: the same group, sync subject and incarnation as the existing one.
            let sa = StreamAssignment { config_json: config.to_json(), ..existing.without_consumers() };
            return Ok(MetaEntry::AssignStream { sa, reply });
        }
        self.check_overlap(&key, &config)?;
        if let Some(max) = self.ctx.max_streams_per_account {
            if self.limits.streams_or_inflight(self.state, account).len() >= max as usize {
                return Err(ApiError::MaxStreams);
            }
        }
        let peers = self.place_stream(&config, None, rng)?;
        let group = self.new_group("S", peers, rng)?;
        let sa = StreamAssignment {
            account: account.into(),
            name: config.name.clone(),
            created_ms: self.ctx.now_ms.max(1),
            config_json: config.to_json(),
            group,
            sync: new_sync_subject(rng),
            consumers: Default::default(),
        };
        Ok(MetaEntry::AssignStream { sa, reply })
    }

    fn update_stream(
        &self,
        account: &str,
        bytes: &[u8],
        reply: Option<Reply>,
        rng: &mut dyn RngCore,
    ) -> Result<MetaEntry, ApiError> {
        let config = parse_stream_request(account, bytes, self.ctx.api_level)?;
        let key = StreamKey::new(account, &config.name);
        let existing = self.view.stream_or_inflight(self.state, &key).ok_or(ApiError::StreamNotFound)?;
        if let Some(reason) = self.state.stream_unsupported(&key) {
            return Err(ApiError::Offline(reason.into()));
        }
        // Validated against the latest proposal, so an unseal racing a seal is refused (§5.4).
        let old = existing_stream_config(existing)?;
        if old.sealed && !config.sealed {
            return Err(ApiError::StreamSealed);
        }
        if old.placement != config.placement {
            return Err(ApiError::InvalidConfig("changing placement is not supported".into()));
        }
        if old.mirror != config.mirror {
            return Err(ApiError::InvalidConfig("a stream's mirror configuration cannot be updated".into()));
        }
        self.check_overlap(&key, &config)?;
        let mut sa = StreamAssignment { config_json: config.to_json(), ..existing.without_consumers() };
        if old.replicas.max(1) != config.replicas.max(1) {
            // §2.2: a scale keeps the incarnation; its consumers follow once it applied.
            sa.group = self.rescale_stream_group(existing, usize::from(config.replicas.max(1)), rng)?;
        }
        Ok(MetaEntry::UpdateStream { sa, reply })
    }

    fn create_consumer(
        &self,
        account: &str,
        stream: &str,
        bytes: &[u8],
        reply: Option<Reply>,
        rng: &mut dyn RngCore,
    ) -> Result<MetaEntry, ApiError> {
        let config = parse_consumer_request(bytes, self.ctx.api_level)?;
        let skey = StreamKey::new(account, stream);
        let sa = self.view.stream_or_inflight(self.state, &skey).ok_or(ApiError::StreamNotFound)?;
        if let Some(reason) = self.state.stream_unsupported(&skey) {
            return Err(ApiError::Offline(reason.into()));
        }
        let stream_config = existing_stream_config(sa)?;
        let stream_replicas = sa.group.peers.len();
        let replicas = if config.replicas == 0 { stream_replicas } else { usize::from(config.replicas) };
        if replicas > stream_replicas {
            return Err(ApiError::InvalidConfig(format!("{replicas} replicas on a stream with {stream_replicas}")));
        }
        let name = match &config.durable_name {
            Some(d) => d.clone(),
            None => self.ephemeral_name(&skey, rng)?,
        };
        let key = ConsumerKey::new(account, stream, &name);
        let online: BTreeSet<PeerId> = self.ctx.online_peers.iter().copied().collect();
        if let Some(existing) = self.view.consumer_or_inflight(self.state, &key) {
            // Same name: the update path keeps group and incarnation.
            if let Some(reason) = self.state.consumer_unsupported(&key) {
                return Err(ApiError::Offline(reason.into()));
            }
            if !existing.group.peers.iter().any(|p| online.contains(p)) {
                return Err(ApiError::Offline("all consumer peers offline".into()));
            }
            let mut ca = ConsumerAssignment { config_json: config.to_json(), ..existing.clone() };
            if existing.group.peers.len() != replicas {
                // §2.2: a scale keeps the incarnation.
                ca.group = self.rescale_consumer_group(existing, &sa.group.peers, replicas, rng)?;
            }
            return Ok(MetaEntry::AssignConsumer { ca, reply });
        }
        if let Some(max) = stream_config.max_consumers {
            let counted = self.limits.consumers_or_inflight(self.state, &skey);
            let counted = counted.iter().filter(|ca| self.state.consumer_unsupported(&ca.key()).is_none()).count();
            if counted >= max as usize {
                return Err(ApiError::MaxConsumers);
            }
        }
        // The consumer lives on its stream's peers: all of them, or a placed subset.
        let peers = place(replicas, &sa.group.peers, &self.ctx.online_peers, rng)?;
        let group = self.new_group("C", peers, rng)?;
        let ca = ConsumerAssignment {
            account: account.into(),
            stream: stream.into(),
            name,
            created_ms: self.ctx.now_ms.max(1),
            config_json: config.to_json(),
            group,
        };
        debug_assert!(ca.group.peers.iter().all(|p| sa.group.is_member(*p)), "consumer peers ⊆ stream peers");
        Ok(MetaEntry::AssignConsumer { ca, reply })
    }

    /// Reject subjects overlapping any other applied-or-inflight stream of the account.
    fn check_overlap(&self, key: &StreamKey, config: &StreamConfig) -> Result<(), ApiError> {
        let others = self.view.streams_or_inflight(self.state, &key.account);
        for other in &others {
            if other.name == key.name {
                continue;
            }
            // A config that does not decode overlaps nothing.
            let overlaps = self.state.with_stream_subjects(other, others.len(), |theirs| {
                let theirs = theirs.unwrap_or_default();
                config.subjects.iter().any(|a| theirs.iter().any(|b| subjects_overlap(a, b)))
            });
            if overlaps {
                return Err(ApiError::SubjectOverlap);
            }
        }
        Ok(())
    }

    /// Whether any applied or inflight assignment uses group name `name`.
    fn group_name_taken(&self, name: &str) -> bool {
        self.state.group_name_used(name) || self.view.names_group(name)
    }

    /// A fresh group on `peers`: a name no assignment uses, a preferred leader among the online
    /// peers (placement guaranteed a quorum of them).
    pub(super) fn new_group(
        &self,
        prefix: &str,
        peers: Vec<PeerId>,
        rng: &mut dyn RngCore,
    ) -> Result<RaftGroup, ApiError> {
        let name = self.fresh_group_name(prefix, peers.len(), rng)?;
        let up: Vec<PeerId> = peers.iter().copied().filter(|p| self.ctx.online_peers.contains(p)).collect();
        let preferred = up.choose(rng).copied();
        assert!(preferred.is_some(), "placement guarantees an online quorum");
        let group = RaftGroup::founded(name, peers, preferred);
        assert_eq!(group.check(), Ok(()), "placement builds valid groups");
        Ok(group)
    }

    /// A group name (`S-R3-<hex>`) no applied or inflight assignment uses.
    pub(super) fn fresh_group_name(
        &self,
        prefix: &str,
        replicas: usize,
        rng: &mut dyn RngCore,
    ) -> Result<String, ApiError> {
        (0..NAME_ATTEMPTS)
            .map(|_| format!("{prefix}-R{replicas}-{:016x}", rng.next_u64()))
            .find(|n| !self.group_name_taken(n))
            .ok_or(ApiError::NoUniqueName)
    }

    /// A consumer name unused by applied and inflight consumers of the stream.
    fn ephemeral_name(&self, stream: &StreamKey, rng: &mut dyn RngCore) -> Result<String, ApiError> {
        (0..NAME_ATTEMPTS)
            .map(|_| format!("{:016x}", rng.next_u64()))
            .find(|n| {
                let key = ConsumerKey::new(stream.account.clone(), stream.name.clone(), n.clone());
                self.state.consumer(&key).is_none() && self.view.consumer(&key).is_none()
            })
            .ok_or(ApiError::NoUniqueName)
    }
}

/// A new leader's repair of streams applied without a sync subject (written by old servers,
/// §2.1 `streamsCheck`): an update of each with a fresh one. Unsupported streams are left
/// alone (§7: the leader proposes nothing but deletes for them).
pub fn sync_repairs(state: &MetaState, rng: &mut dyn RngCore) -> Vec<MetaEntry> {
    let mut out = Vec::new();
    for key in state.streams_missing_sync() {
        if state.stream_unsupported(&key).is_some() {
            continue;
        }
        let sa = state.stream(&key).expect("listed by the state");
        let sync = new_sync_subject(rng);
        out.push(MetaEntry::UpdateStream { sa: StreamAssignment { sync, ..sa.without_consumers() }, reply: None });
    }
    out
}

/// The subject a stream's replicas catch up on; unique per stream incarnation.
fn new_sync_subject(rng: &mut dyn RngCore) -> String {
    format!("$SYS.JSC.SYNC.{:016x}", rng.next_u64())
}

/// The existing assignment's config as the leader compares it: leniently decoded, normalized.
fn existing_stream_config(sa: &StreamAssignment) -> Result<StreamConfig, ApiError> {
    sa.config()
        .map(|d| d.into_config().normalized())
        .map_err(|e| ApiError::Offline(format!("existing config does not decode: {e}")))
}

fn parse_stream_request(account: &str, bytes: &[u8], api_level: i64) -> Result<StreamConfig, ApiError> {
    if !valid_name(account) {
        return Err(ApiError::InvalidConfig(format!("invalid account name {account:?}")));
    }
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ApiError::InvalidConfig("config too large".into()));
    }
    let config: StreamConfig = serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidConfig(e.to_string()))?;
    check_required_level(&config.metadata, api_level).map_err(ApiError::RequiredApiLevel)?;
    if let Some(mirror) = &config.mirror {
        if !valid_name(&mirror.name) {
            return Err(ApiError::InvalidConfig(format!("invalid mirror name {:?}", mirror.name)));
        }
        if mirror.name == config.name {
            return Err(ApiError::InvalidConfig("a stream cannot mirror itself".into()));
        }
        if !config.subjects.is_empty() {
            return Err(ApiError::InvalidConfig("a stream mirror cannot have subjects".into()));
        }
    }
    let config = config.normalized();
    if !valid_name(&config.name) {
        return Err(ApiError::InvalidConfig(format!("invalid stream name {:?}", config.name)));
    }
    if config.replicas > MAX_REPLICAS {
        return Err(ApiError::InvalidConfig(format!("replicas {} above {MAX_REPLICAS}", config.replicas)));
    }
    if let Some(bad) = config.subjects.iter().find(|s| !valid_subject(s)) {
        return Err(ApiError::InvalidConfig(format!("invalid subject {bad:?}")));
    }
    for (i, a) in config.subjects.iter().enumerate() {
        if config.subjects[i + 1..].iter().any(|b| subjects_overlap(a, b)) {
            return Err(ApiError::InvalidConfig(format!("subject {a:?} overlaps another of the stream")));
        }
    }
    Ok(config)
}

fn parse_consumer_request(bytes: &[u8], api_level: i64) -> Result<ConsumerConfig, ApiError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ApiError::InvalidConfig("config too large".into()));
    }
    let config: ConsumerConfig = serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidConfig(e.to_string()))?;
    check_required_level(&config.metadata, api_level).map_err(ApiError::RequiredApiLevel)?;
    if let Some(d) = config.durable_name.as_deref().filter(|d| !valid_name(d)) {
        return Err(ApiError::InvalidConfig(format!("invalid durable name {d:?}")));
    }
    if let Some(f) = config.filter_subject.as_deref().filter(|f| !valid_subject(f)) {
        return Err(ApiError::InvalidConfig(format!("invalid filter subject {f:?}")));
    }
    if config.replicas > MAX_REPLICAS {
        return Err(ApiError::InvalidConfig(format!("replicas {} above {MAX_REPLICAS}", config.replicas)));
    }
    Ok(config)
}

/// Account, stream and consumer names: non-empty, bounded, no whitespace, dots or wildcards.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>'))
}

/// A subject: non-empty dot-separated tokens without whitespace; `*` and `>` only as whole
/// tokens, `>` only last.
pub fn valid_subject(subject: &str) -> bool {
    if subject.is_empty()
        || subject.len() > MAX_NAME_LEN
        || subject.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| match *t {
        "" => false,
        "*" => true,
        ">" => i + 1 == tokens.len(),
        t => !t.contains(['*', '>']),
    })
}

/// True when some subject matches both patterns (`*` one token, `>` one or more trailing).
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    // Token by token over the bytes: a create compares its subjects with those of every
    // other stream of its account, and `str::split`'s searcher cost more than the compare.
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        let ((x, rest_a), (y, rest_b)) = (first_token(a), first_token(b));
        if x == b">" || y == b">" {
            return true;
        }
        if x != y && x != b"*" && y != b"*" {
            return false;
        }
        match (rest_a, rest_b) {
            (Some(rest_a), Some(rest_b)) => (a, b) = (rest_a, rest_b),
            (None, None) => return true,
            // One subject has more tokens and no `>` came first.
            _ => return false,
        }
    }
}

/// A subject's first token, and what follows its dot (`None`: it was the last token).
fn first_token(subject: &[u8]) -> (&[u8], Option<&[u8]>) {
    match subject.iter().position(|&c| c == b'.') {
        Some(dot) => (&subject[..dot], Some(&subject[dot + 1..])),
        None => (subject, None),
    }
}

/// Quorum of `n` voters.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// Seeded placement (§9.1, simplified): `replicas` distinct peers from `candidates`, online ones
/// first, requiring a quorum of the chosen to be online. Returned sorted.
pub fn place(
    replicas: usize,
    candidates: &[PeerId],
    online: &[PeerId],
    rng: &mut dyn RngCore,
) -> Result<Vec<PeerId>, ApiError> {
    assert!(replicas >= 1, "an asset has at least one replica");
    let mut chosen: Vec<PeerId> = candidates.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if chosen.len() < replicas {
        return Err(ApiError::InsufficientResources);
    }
    chosen.shuffle(rng);
    // Stable: shuffled order within the online and offline classes.
    chosen.sort_by_key(|p| !online.contains(p));
    chosen.truncate(replicas);
    if chosen.iter().filter(|p| online.contains(p)).count() < quorum(replicas) {
        return Err(ApiError::InsufficientResources);
    }
    chosen.sort_unstable();
    assert!(chosen.windows(2).all(|w| w[0] < w[1]), "placement picks distinct peers");
    assert!(chosen.iter().all(|p| candidates.contains(p)), "placement picks only candidates");
    Ok(chosen)
}
