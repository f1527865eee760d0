//! The replicated data model of the meta layer: keys, raft groups, stream and consumer
//! assignments, and the parsed configs with the strict/lenient decoding that decides whether
//! this server supports an asset (spec §1.2–1.4, §7).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::raft::PeerId;

/// The API level this server implements. A config requiring more is unsupported here (§7).
pub const API_LEVEL: i64 = 5;
/// Metadata key carrying the API level a config requires.
pub const REQUIRED_LEVEL_KEY: &str = "_nats.req.level";
/// Upper bound on a config's JSON size; the request handler rejects larger ones so every
/// entry fits the codec's limit.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Identity of a stream: `(account, name)`. Ordered by account first, so one account's
/// streams form a contiguous range of a `BTreeMap`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamKey {
    pub account: String,
    pub name: String,
}

impl StreamKey {
    /// Key from its parts.
    pub fn new(account: impl Into<String>, name: impl Into<String>) -> Self {
        StreamKey { account: account.into(), name: name.into() }
    }
}

/// A forward-only walk over pairs in stream-key order (the applied assignments, or the local
/// streams) that finds each of a rising sequence of streams with one comparison per step, no
/// lookup and no key built: what the walks over every local asset beside its assignment do.
pub struct StreamCursor<'a, V, I: Iterator<Item = (&'a StreamKey, V)>>(std::iter::Peekable<I>);

impl<'a, V, I: Iterator<Item = (&'a StreamKey, V)>> StreamCursor<'a, V, I> {
    pub fn new(pairs: I) -> Self {
        StreamCursor(pairs.peekable())
    }

    /// The value of stream `account`:`name`, if there is one. A later call may not ask for an
    /// earlier stream (the walk has passed it).
    pub fn seek(&mut self, account: &str, name: &str) -> Option<&V> {
        let target = (account, name);
        while self.0.next_if(|(k, _)| (k.account.as_str(), k.name.as_str()) < target).is_some() {}
        self.0.peek().filter(|(k, _)| (k.account.as_str(), k.name.as_str()) == target).map(|(_, v)| v)
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.account, self.name)
    }
}

/// Identity of a consumer: `(account, stream, name)`. Ordered so one stream's consumers form a
/// contiguous range.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConsumerKey {
    pub account: String,
    pub stream: String,
    pub name: String,
}

impl ConsumerKey {
    /// Key from its parts.
    pub fn new(account: impl Into<String>, stream: impl Into<String>, name: impl Into<String>) -> Self {
        ConsumerKey { account: account.into(), stream: stream.into(), name: name.into() }
    }

    /// The parent stream's key.
    pub fn stream_key(&self) -> StreamKey {
        StreamKey::new(self.account.clone(), self.stream.clone())
    }
}

impl fmt::Display for ConsumerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.account, self.stream, self.name)
    }
}

/// Peers in words: `[0,1,4]`.
pub fn peer_list(peers: &[PeerId]) -> String {
    let peers: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
    format!("[{}]", peers.join(","))
}

/// A stream's or consumer's raft group as the meta layer assigns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftGroup {
    /// Unique per creation (`S-R3-<hex>` / `C-R1-<hex>`): a re-created asset gets a new name,
    /// which is how replicas tell incarnations apart.
    pub name: String,
    /// Members, as meta peer ids. No duplicates, at least one.
    pub peers: Vec<PeerId>,
    /// Preferred first leader; not part of the projection (recovery clears it in NATS).
    pub preferred: Option<PeerId>,
    /// Peers added to the group while it ran (a scale-up, a re-placement), as opposed to its
    /// founders: one that starts the group without files for it waits for a leader's log,
    /// and votes for no member before (Raft's learners). Not part of the projection, like
    /// `preferred` (NATS has no such field: its new peers catch up before they count).
    #[serde(default)]
    pub joiners: Vec<PeerId>,
}

/// `S-R3-eb93 [0,2,4]`: the name and the peers.
impl fmt::Display for RaftGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, peer_list(&self.peers))
    }
}

impl RaftGroup {
    /// A new group: every peer founds it.
    pub fn founded(name: String, peers: Vec<PeerId>, preferred: Option<PeerId>) -> RaftGroup {
        RaftGroup { name, peers, preferred, joiners: Vec::new() }
    }

    /// This group moved onto `peers` under the same name: the peers it did not have join it,
    /// and the joiners it keeps still join.
    pub fn moved_to(&self, peers: Vec<PeerId>, preferred: Option<PeerId>) -> RaftGroup {
        let joiners = peers.iter().copied().filter(|p| !self.is_member(*p) || self.joiners.contains(p)).collect();
        RaftGroup { name: self.name.clone(), peers, preferred, joiners }
    }

    /// The replica count the group was named for (`S-R3-<hex>` says 3), when its name says.
    /// A stream scaled down to one replica keeps a group born replicated, and with it its raft
    /// node: here a replicated stream's messages live in its raft log (NATS keeps them in the
    /// stream's store and drops the node).
    pub fn replicas_at_birth(&self) -> Option<usize> {
        replicas_at_birth(&self.name)
    }

    /// Membership is decided by `peers` only.
    pub fn is_member(&self, id: PeerId) -> bool {
        self.peers.contains(&id)
    }

    /// Structural validity (spec S10): a name, at least one peer, no duplicates, preferred is a
    /// member when set.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("raft group without a name".into());
        }
        if self.peers.is_empty() {
            return Err(format!("raft group {} has no peers", self.name));
        }
        // Groups are small (a replica count): a quadratic scan allocates nothing.
        for (i, p) in self.peers.iter().enumerate() {
            if self.peers[..i].contains(p) {
                return Err(format!("raft group {} lists peer {p} twice", self.name));
            }
        }
        if let Some(p) = self.preferred {
            if !self.is_member(p) {
                return Err(format!("raft group {} prefers non-member {p}", self.name));
            }
        }
        Ok(())
    }
}

/// A consumer's replicated assignment (§1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerAssignment {
    pub account: String,
    /// The parent stream's name; equals the parent's key name.
    pub stream: String,
    pub name: String,
    /// Creation time: the identity of this incarnation.
    pub created_ms: u64,
    /// Config bytes exactly as proposed; never re-encoded by the apply path.
    #[serde(with = "config_bytes")]
    pub config_json: Vec<u8>,
    pub group: RaftGroup,
}

impl ConsumerAssignment {
    /// This consumer's key.
    pub fn key(&self) -> ConsumerKey {
        ConsumerKey::new(self.account.clone(), self.stream.clone(), self.name.clone())
    }

    /// The parent stream's key.
    pub fn stream_key(&self) -> StreamKey {
        StreamKey::new(self.account.clone(), self.stream.clone())
    }

    /// Strict-then-lenient decode of the config (§7), judged at [`API_LEVEL`].
    pub fn config(&self) -> Result<Decoded<ConsumerConfig>, ConfigError> {
        self.config_at(API_LEVEL)
    }

    /// As [`Self::config`], judged by a server of API level `api_level`.
    pub fn config_at(&self, api_level: i64) -> Result<Decoded<ConsumerConfig>, ConfigError> {
        ConsumerConfig::decode_at(&self.config_json, api_level)
    }
}

/// A stream's replicated assignment (§1.2), plus the consumers applied under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAssignment {
    pub account: String,
    /// Equals the config's name (checked on apply); kept explicit so the key never depends on
    /// parsing a config this server may not support.
    pub name: String,
    /// Creation time: the identity of this incarnation.
    pub created_ms: u64,
    /// Config bytes exactly as received; kept byte-exact so unknown fields survive (§7).
    #[serde(with = "config_bytes")]
    pub config_json: Vec<u8>,
    pub group: RaftGroup,
    /// Subject used for stream catch-up; the leader never proposes an empty one (S20).
    pub sync: String,
    /// Applied consumers by name. Always empty inside log entries: applying a stream entry
    /// carries the consumers over from the assignment it replaces.
    ///
    /// Boxed: a map's node has room for 11 entries however few it holds, so with assignments
    /// inline every stream's consumer map took some 2.5 KB, most of a large snapshot's
    /// memory and of the page faults of decoding it; boxed, a node is under 400 bytes and
    /// each consumer takes its own size. A box encodes as what it holds: same bytes.
    #[serde(deserialize_with = "sorted_map::deserialize")]
    pub consumers: BTreeMap<String, Box<ConsumerAssignment>>,
}

impl StreamAssignment {
    /// The stream's group, then its consumers' groups, by consumer name.
    pub fn groups(&self) -> impl Iterator<Item = &RaftGroup> {
        std::iter::once(&self.group).chain(self.consumers.values().map(|ca| &ca.group))
    }

    /// Whether the stream runs a raft group here. An R1 stream does not; an R>1 stream does
    /// even when a peer removal left its group with a single member (NATS: a group with
    /// `Desired` set keeps its node), so its messages stay in the group it had, and so does a
    /// stream scaled down to one replica from a group born replicated.
    pub fn replicated(&self) -> bool {
        self.group.peers.len() > 1
            || self.group.replicas_at_birth().is_some_and(|r| r > 1)
            || self.config().ok().is_some_and(|c| c.into_config().normalized().replicas > 1)
    }

    /// This stream's key.
    pub fn key(&self) -> StreamKey {
        StreamKey::new(self.account.clone(), self.name.clone())
    }

    /// Strict-then-lenient decode of the config (§7), judged at [`API_LEVEL`].
    pub fn config(&self) -> Result<Decoded<StreamConfig>, ConfigError> {
        self.config_at(API_LEVEL)
    }

    /// As [`Self::config`], judged by a server of API level `api_level`.
    pub fn config_at(&self, api_level: i64) -> Result<Decoded<StreamConfig>, ConfigError> {
        StreamConfig::decode_at(&self.config_json, api_level)
    }

    /// A copy without consumers: the shape that goes into log entries.
    pub fn without_consumers(&self) -> StreamAssignment {
        StreamAssignment { consumers: BTreeMap::new(), ..self.clone() }
    }
}

/// Config bytes as one byte string rather than a sequence of `u8`s. bincode lays both out the
/// same way (a length, then the bytes), so nothing stored on disk or hashed into a trace
/// changes; but it copies a byte string at once where it visited a sequence byte by byte,
/// which was most of the cost of encoding and decoding a large meta snapshot.
mod config_bytes {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("config bytes")
        }

        fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        /// Self-describing formats (JSON) write bytes as an array of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(super::MAX_CONFIG_BYTES));
            while let Some(b) = seq.next_element()? {
                bytes.push(b);
            }
            Ok(bytes)
        }
    }
}

/// Maps read back as the encoder wrote them, in key order: collected, then built in one pass,
/// rather than inserted one by one with a search each. Entries out of order or repeated give
/// the map insertion would have given (the last value of a key wins).
pub mod sorted_map {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    /// Room reserved up front at most, in bytes: a corrupt length must not ask for a huge
    /// allocation. Up to it, a map's entries go where its length says, at once: grown
    /// instead, a snapshot's map of streams filled and copied buffers of twice its size
    /// (reserved room that is never written costs nothing: its pages are never touched).
    const RESERVED_BYTES_MAX: usize = 16 << 20;

    pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        deserializer.deserialize_map(SortedMapVisitor(PhantomData))
    }

    struct SortedMapVisitor<K, V>(PhantomData<(K, V)>);

    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for SortedMapVisitor<K, V> {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BTreeMap<K, V>, A::Error> {
            let room = RESERVED_BYTES_MAX / std::mem::size_of::<(K, V)>().max(1);
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(room));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries.into_iter().collect())
        }
    }
}

/// Result of decoding a config: supported, or readable but not runnable here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<T> {
    Supported(T),
    /// Decoded leniently (or requires a newer API level); `reason` is the offline reason.
    Unsupported {
        config: T,
        reason: String,
    },
}

impl<T> Decoded<T> {
    /// The decoded config, supported or not.
    pub fn config(&self) -> &T {
        match self {
            Decoded::Supported(c) | Decoded::Unsupported { config: c, .. } => c,
        }
    }

    /// The decoded config, supported or not, by value.
    pub fn into_config(self) -> T {
        match self {
            Decoded::Supported(c) | Decoded::Unsupported { config: c, .. } => c,
        }
    }

    /// The offline reason, when unsupported.
    pub fn unsupported_reason(&self) -> Option<&str> {
        match self {
            Decoded::Supported(_) => None,
            Decoded::Unsupported { reason, .. } => Some(reason),
        }
    }
}

/// Neither the strict nor the lenient decode accepted a config: an apply error (§2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("config does not decode: {0}")]
pub struct ConfigError(pub String);

fn is_false(b: &bool) -> bool {
    !*b
}

/// The stream config fields this model knows. Unknown fields make it unsupported (§7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// 0 means 1 (normalized by the leader).
    #[serde(default)]
    pub replicas: u8,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sealed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumers: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Where the stream must be placed; none lets the leader try the client's cluster first,
    /// then the others (§2.7: only such streams may be re-placed after a failed create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The stream this one mirrors (same account). A mirror has no subjects of its own; its
    /// leader reads the origin through a direct consumer on the origin's leader, which no meta
    /// entry assigns (§4, §11 #26).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
}

/// The origin of a mirror (NATS `StreamSource`, by name only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSource {
    pub name: String,
}

/// Twin of [`StreamSource`] for the lenient decode.
#[derive(Deserialize)]
struct LenientStreamSource {
    name: String,
}

/// A stream's placement constraint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The cluster every replica must be in.
    pub cluster: String,
}

/// Twin of [`Placement`] for the lenient decode.
#[derive(Deserialize)]
struct LenientPlacement {
    cluster: String,
}

/// Twin of [`StreamConfig`] that ignores unknown fields: the lenient decode.
#[derive(Deserialize)]
struct LenientStreamConfig {
    name: String,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    replicas: u8,
    #[serde(default)]
    sealed: bool,
    #[serde(default)]
    max_consumers: Option<u32>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    placement: Option<LenientPlacement>,
    #[serde(default)]
    mirror: Option<LenientStreamSource>,
}

impl From<LenientStreamConfig> for StreamConfig {
    fn from(c: LenientStreamConfig) -> Self {
        StreamConfig {
            name: c.name,
            subjects: c.subjects,
            replicas: c.replicas,
            sealed: c.sealed,
            max_consumers: c.max_consumers,
            metadata: c.metadata,
            placement: c.placement.map(|p| Placement { cluster: p.cluster }),
            mirror: c.mirror.map(|m| StreamSource { name: m.name }),
        }
    }
}

impl StreamConfig {
    /// Strict decode, then lenient; then the required API level (§7), against ours.
    pub fn decode(bytes: &[u8]) -> Result<Decoded<StreamConfig>, ConfigError> {
        Self::decode_at(bytes, API_LEVEL)
    }

    /// As [`Self::decode`], for a server of API level `api_level`.
    pub fn decode_at(bytes: &[u8], api_level: i64) -> Result<Decoded<StreamConfig>, ConfigError> {
        match serde_json::from_slice::<StreamConfig>(bytes) {
            Ok(config) => Ok(classify_level(config, |c| &c.metadata, api_level)),
            Err(strict) => match serde_json::from_slice::<LenientStreamConfig>(bytes) {
                Ok(lenient) => Ok(Decoded::Unsupported {
                    config: lenient.into(),
                    reason: format!("unsupported - config error: {strict}"),
                }),
                Err(lenient) => Err(ConfigError(lenient.to_string())),
            },
        }
    }

    /// Defaults made explicit, so equal intents compare equal: replicas 0 ⇒ 1, no subjects ⇒
    /// the stream's name (not for a mirror, which takes no subjects).
    pub fn normalized(mut self) -> StreamConfig {
        if self.replicas == 0 {
            self.replicas = 1;
        }
        if self.subjects.is_empty() && self.mirror.is_none() {
            self.subjects.push(self.name.clone());
        }
        self
    }

    /// Encoding used for proposals: re-marshalled from the parsed config (§2).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a plain struct encodes")
    }
}

/// The consumer config fields this model knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    /// 0 inherits the stream's replica count.
    #[serde(default)]
    pub replicas: u8,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// Twin of [`ConsumerConfig`] that ignores unknown fields.
#[derive(Deserialize)]
struct LenientConsumerConfig {
    #[serde(default)]
    durable_name: Option<String>,
    #[serde(default)]
    filter_subject: Option<String>,
    #[serde(default)]
    replicas: u8,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl From<LenientConsumerConfig> for ConsumerConfig {
    fn from(c: LenientConsumerConfig) -> Self {
        ConsumerConfig {
            durable_name: c.durable_name,
            filter_subject: c.filter_subject,
            replicas: c.replicas,
            metadata: c.metadata,
        }
    }
}

impl ConsumerConfig {
    /// Strict decode, then lenient; then the required API level (§7), against ours.
    pub fn decode(bytes: &[u8]) -> Result<Decoded<ConsumerConfig>, ConfigError> {
        Self::decode_at(bytes, API_LEVEL)
    }

    /// As [`Self::decode`], for a server of API level `api_level`.
    pub fn decode_at(bytes: &[u8], api_level: i64) -> Result<Decoded<ConsumerConfig>, ConfigError> {
        match serde_json::from_slice::<ConsumerConfig>(bytes) {
            Ok(config) => Ok(classify_level(config, |c| &c.metadata, api_level)),
            Err(strict) => match serde_json::from_slice::<LenientConsumerConfig>(bytes) {
                Ok(lenient) => Ok(Decoded::Unsupported {
                    config: lenient.into(),
                    reason: format!("unsupported - config error: {strict}"),
                }),
                Err(lenient) => Err(ConfigError(lenient.to_string())),
            },
        }
    }

    /// Encoding used for proposals.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a plain struct encodes")
    }
}

/// `Err(reason)` when the metadata requires an API level a server of level `api_level` lacks:
/// a non-integer level, or a higher one.
pub fn check_required_level(metadata: &BTreeMap<String, String>, api_level: i64) -> Result<(), String> {
    let Some(level) = metadata.get(REQUIRED_LEVEL_KEY) else {
        return Ok(());
    };
    match level.trim().parse::<i64>() {
        Ok(n) if n <= api_level => Ok(()),
        Ok(n) => Err(format!("unsupported - required API level: {n}, current API level: {api_level}")),
        Err(_) => Err(format!("unsupported - required API level: {level}, current API level: {api_level}")),
    }
}

fn classify_level<T>(config: T, metadata: impl Fn(&T) -> &BTreeMap<String, String>, api_level: i64) -> Decoded<T> {
    match check_required_level(metadata(&config), api_level) {
        Ok(()) => Decoded::Supported(config),
        Err(reason) => Decoded::Unsupported { config, reason },
    }
}

/// The replicated projection P of the applied state (§10): every stream assignment with its
/// consumers, minus local-only fields (`preferred`). Equal applied index ⇒ equal projection.
pub type Projection = BTreeMap<StreamKey, StreamAssignment>;

/// The replica count a group name was born with (`S-R3-…` says 3), if it says one.
pub fn replicas_at_birth(group_name: &str) -> Option<usize> {
    let mut parts = group_name.splitn(3, '-');
    let (_prefix, replicas) = (parts.next()?, parts.next()?);
    replicas.strip_prefix('R')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`StreamAssignment`] as it was with config bytes as a plain `Vec<u8>` field.
    #[derive(Serialize, Deserialize)]
    struct PlainStream {
        account: String,
        name: String,
        created_ms: u64,
        config_json: Vec<u8>,
        group: RaftGroup,
        sync: String,
        consumers: BTreeMap<String, PlainConsumer>,
    }

    #[derive(Serialize, Deserialize)]
    struct PlainConsumer {
        account: String,
        stream: String,
        name: String,
        created_ms: u64,
        config_json: Vec<u8>,
        group: RaftGroup,
    }

    fn assignment() -> (StreamAssignment, PlainStream) {
        let group = RaftGroup { name: "g".into(), peers: vec![1, 2], preferred: Some(2), joiners: vec![] };
        let config = StreamConfig { name: "S".into(), ..Default::default() }.to_json();
        let consumer_config = br#"{"durable_name":"C"}"#.to_vec();
        let ca = ConsumerAssignment {
            account: "A".into(),
            stream: "S".into(),
            name: "C".into(),
            created_ms: 7,
            config_json: consumer_config.clone(),
            group: group.clone(),
        };
        let sa = StreamAssignment {
            account: "A".into(),
            name: "S".into(),
            created_ms: 5,
            config_json: config.clone(),
            group: group.clone(),
            sync: "sync".into(),
            consumers: BTreeMap::from([("C".to_string(), Box::new(ca))]),
        };
        let plain = PlainStream {
            account: "A".into(),
            name: "S".into(),
            created_ms: 5,
            config_json: config,
            group: group.clone(),
            sync: "sync".into(),
            consumers: BTreeMap::from([(
                "C".to_string(),
                PlainConsumer {
                    account: "A".into(),
                    stream: "S".into(),
                    name: "C".into(),
                    created_ms: 7,
                    config_json: consumer_config,
                    group,
                },
            )]),
        };
        (sa, plain)
    }

    /// Out of order and repeated keys read back as insertion one by one would give them.
    #[test]
    fn sorted_map_reads_any_order_as_insertion_would() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "sorted_map::deserialize")]
            map: BTreeMap<String, u32>,
        }
        let json = r#"{"map":{"b":1,"a":2,"c":3,"a":4}}"#;
        let read: Holder = serde_json::from_str(json).unwrap();
        let inserted = BTreeMap::from([("a".to_string(), 4), ("b".to_string(), 1), ("c".to_string(), 3)]);
        assert_eq!(read.map, inserted);
    }

    /// Snapshots on the simulated disk and trace digests hold these bytes: config bytes must
    /// encode exactly as the plain byte vector they were, and read back in every format.
    #[test]
    fn config_bytes_encode_as_a_plain_byte_vector() {
        let (sa, plain) = assignment();
        let bytes = bincode::serialize(&sa).unwrap();
        assert_eq!(bytes, bincode::serialize(&plain).unwrap());
        assert_eq!(bincode::deserialize::<StreamAssignment>(&bytes).unwrap(), sa);
        let json = serde_json::to_string(&sa).unwrap();
        assert_eq!(json, serde_json::to_string(&plain).unwrap());
        assert_eq!(serde_json::from_str::<StreamAssignment>(&json).unwrap(), sa);
    }
}
