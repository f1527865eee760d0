//! The meta layer's errors: why the leader refused a request ([`ApiError`], also the answer
//! an applied entry can carry) and why `apply` refused an entry ([`ApplyError`]). They sit in
//! a file of their own so the state machine and the request handler share them without
//! importing each other. Why bytes do not decode ([`DecodeError`]) stays with the entry codec,
//! whose op codes it names.

use serde::{Deserialize, Serialize};

use super::entry::DecodeError;

/// Why a request was refused. Messages are short and stable: checks and traces compare them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ApiError {
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("required API level not supported: {0}")]
    RequiredApiLevel(String),
    #[error("stream name already in use with a different config")]
    StreamNameInUse,
    #[error("stream is sealed")]
    StreamSealed,
    #[error("subjects overlap with an existing stream")]
    SubjectOverlap,
    #[error("maximum number of streams reached")]
    MaxStreams,
    #[error("maximum number of consumers reached")]
    MaxConsumers,
    #[error("insufficient resources")]
    InsufficientResources,
    #[error("stream not found")]
    StreamNotFound,
    #[error("consumer not found")]
    ConsumerNotFound,
    #[error("asset is offline: {0}")]
    Offline(String),
    #[error("no unique name available")]
    NoUniqueName,
    /// `STREAM.PEER.REMOVE` named a server that is not one of the stream's peers.
    #[error("peer not a member")]
    PeerNotMember,
    /// `STREAM.PEER.REMOVE` found no server to take the removed peer's place.
    #[error("peer remap failed")]
    PeerRemapFailed,
}

impl ApiError {
    /// A stable numeric code per variant (our own numbering, not NATS's).
    pub fn code(&self) -> u16 {
        match self {
            ApiError::InvalidConfig(_) => 1001,
            ApiError::RequiredApiLevel(_) => 1002,
            ApiError::StreamNameInUse => 1003,
            ApiError::StreamSealed => 1004,
            ApiError::SubjectOverlap => 1005,
            ApiError::MaxStreams => 1006,
            ApiError::MaxConsumers => 1007,
            ApiError::InsufficientResources => 1008,
            ApiError::StreamNotFound => 1009,
            ApiError::ConsumerNotFound => 1010,
            ApiError::Offline(_) => 1011,
            ApiError::NoUniqueName => 1012,
            ApiError::PeerNotMember => 1013,
            ApiError::PeerRemapFailed => 1014,
        }
    }
}

/// Why `apply` refused an entry. The first one becomes the sticky write error (§2.8).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("meta layer stopped by an earlier apply error: {0}")]
    Stopped(String),
    #[error("meta entry {index}: {source}")]
    Decode {
        index: u64,
        #[source]
        source: DecodeError,
    },
    #[error("meta entry {index}: {reason}")]
    Invalid { index: u64, reason: String },
}
