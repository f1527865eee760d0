//! The meta log's operations and their wire form (spec §2): `[version][op code][bincode body]`.
//! Op codes follow NATS's shared numbering so traces read the same; only the ones the meta log
//! uses exist here.

use bincode::Options;
use serde::{Deserialize, Serialize};

use super::model::{ConsumerAssignment, ConsumerKey, StreamAssignment, StreamKey};

/// Envelope version written by this build.
pub const ENTRY_VERSION: u8 = 1;
/// Largest body the codec accepts, so a corrupt length prefix cannot ask for a huge allocation.
pub const MAX_ENTRY_BYTES: u64 = 4 * 1024 * 1024;

/// Op codes of the meta log (§2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum OpCode {
    AssignStream = 0,
    AssignConsumer = 1,
    RemoveStream = 2,
    RemoveConsumer = 3,
    UpdateStream = 11,
}

impl OpCode {
    /// The op for a wire byte; `None` for codes the meta log does not use.
    pub fn from_u8(b: u8) -> Option<OpCode> {
        match b {
            0 => Some(OpCode::AssignStream),
            1 => Some(OpCode::AssignConsumer),
            2 => Some(OpCode::RemoveStream),
            3 => Some(OpCode::RemoveConsumer),
            11 => Some(OpCode::UpdateStream),
            _ => None,
        }
    }
}

/// Where the API answer goes: the requesting client and its request number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reply {
    pub client: u64,
    pub request: u64,
}

/// One meta log operation. `reply` routes the API answer; it is not part of the projection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaEntry {
    /// Create, re-place or idempotently re-create a stream (§2.1).
    AssignStream { sa: StreamAssignment, reply: Option<Reply> },
    /// Update an existing stream; ignored when the stream is absent (§2.2).
    UpdateStream { sa: StreamAssignment, reply: Option<Reply> },
    /// Delete a stream; `sa.created_ms` bounds which local incarnation may be deleted (§2.3).
    RemoveStream { sa: StreamAssignment, reply: Option<Reply> },
    /// Create or update a consumer; dropped when the parent is absent (§2.4).
    AssignConsumer { ca: ConsumerAssignment, reply: Option<Reply> },
    /// Delete a consumer when its group name matches (§2.5).
    RemoveConsumer { ca: ConsumerAssignment, reply: Option<Reply> },
}

/// Why bytes are not a meta entry. Any of these is an apply error (§2.8).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty meta entry")]
    Empty,
    #[error("meta entry has a version byte but no op code")]
    Truncated,
    #[error("unknown meta entry version {0}")]
    UnknownVersion(u8),
    #[error("unknown meta op code {0}")]
    UnknownOp(u8),
    #[error("meta op {op:?}: body does not decode: {reason}")]
    Body { op: OpCode, reason: String },
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_limit(MAX_ENTRY_BYTES).reject_trailing_bytes()
}

impl MetaEntry {
    /// The entry's op code.
    pub fn op(&self) -> OpCode {
        match self {
            MetaEntry::AssignStream { .. } => OpCode::AssignStream,
            MetaEntry::UpdateStream { .. } => OpCode::UpdateStream,
            MetaEntry::RemoveStream { .. } => OpCode::RemoveStream,
            MetaEntry::AssignConsumer { .. } => OpCode::AssignConsumer,
            MetaEntry::RemoveConsumer { .. } => OpCode::RemoveConsumer,
        }
    }

    /// Where the answer goes, if anyone waits for one.
    pub fn reply(&self) -> Option<Reply> {
        match self {
            MetaEntry::AssignStream { reply, .. }
            | MetaEntry::UpdateStream { reply, .. }
            | MetaEntry::RemoveStream { reply, .. }
            | MetaEntry::AssignConsumer { reply, .. }
            | MetaEntry::RemoveConsumer { reply, .. } => *reply,
        }
    }

    /// The stream the entry is about (the parent, for consumer ops).
    pub fn stream_key(&self) -> StreamKey {
        match self {
            MetaEntry::AssignStream { sa, .. }
            | MetaEntry::UpdateStream { sa, .. }
            | MetaEntry::RemoveStream { sa, .. } => sa.key(),
            MetaEntry::AssignConsumer { ca, .. } | MetaEntry::RemoveConsumer { ca, .. } => ca.stream_key(),
        }
    }

    /// The consumer the entry is about, for consumer ops.
    pub fn consumer_key(&self) -> Option<ConsumerKey> {
        match self {
            MetaEntry::AssignConsumer { ca, .. } | MetaEntry::RemoveConsumer { ca, .. } => Some(ca.key()),
            _ => None,
        }
    }

    /// The entry in words, for trace details and logs: op, key, group and peers, the reply's
    /// request id and the config as JSON text
    /// (`AssignStream A:S3 -> S-R3-eb93 [0,2,4] created 1200 reply n2#5 {"name":"S3",...}`).
    pub fn describe(&self) -> String {
        let (what, created, config) = match self {
            MetaEntry::AssignStream { sa, .. }
            | MetaEntry::UpdateStream { sa, .. }
            | MetaEntry::RemoveStream { sa, .. } => {
                (format!("{} -> {}", sa.key(), sa.group), sa.created_ms, &sa.config_json)
            }
            MetaEntry::AssignConsumer { ca, .. } | MetaEntry::RemoveConsumer { ca, .. } => {
                (format!("{} -> {}", ca.key(), ca.group), ca.created_ms, &ca.config_json)
            }
        };
        let mut text = format!("{:?} {what} created {created}", self.op());
        if let Some(r) = self.reply() {
            text.push_str(&format!(" reply n{}#{}", r.client, r.request));
        }
        if !config.is_empty() {
            text.push(' ');
            text.push_str(&String::from_utf8_lossy(config));
        }
        text
    }

    /// Wire form. Panics only if the entry exceeds [`MAX_ENTRY_BYTES`], which the request handler
    /// rules out by bounding config sizes.
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            MetaEntry::AssignStream { sa, reply }
            | MetaEntry::UpdateStream { sa, reply }
            | MetaEntry::RemoveStream { sa, reply } => codec().serialize(&(sa, reply)),
            MetaEntry::AssignConsumer { ca, reply } | MetaEntry::RemoveConsumer { ca, reply } => {
                codec().serialize(&(ca, reply))
            }
        }
        .expect("meta entry within MAX_ENTRY_BYTES");
        let mut out = Vec::with_capacity(2 + body.len());
        out.push(ENTRY_VERSION);
        out.push(self.op() as u8);
        out.extend_from_slice(&body);
        out
    }

    /// The op of an encoded entry without decoding its body; `None` when it is not one.
    pub fn peek_op(data: &[u8]) -> Option<OpCode> {
        match data {
            [ENTRY_VERSION, op, ..] => OpCode::from_u8(*op),
            _ => None,
        }
    }

    /// Inverse of [`MetaEntry::encode`]; every malformed input is a typed error, never a panic.
    pub fn decode(data: &[u8]) -> Result<MetaEntry, DecodeError> {
        let (&version, rest) = data.split_first().ok_or(DecodeError::Empty)?;
        if version != ENTRY_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let (&op_byte, body) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let op = OpCode::from_u8(op_byte).ok_or(DecodeError::UnknownOp(op_byte))?;
        let bad = |e: bincode::Error| DecodeError::Body { op, reason: e.to_string() };
        Ok(match op {
            OpCode::AssignStream | OpCode::UpdateStream | OpCode::RemoveStream => {
                let (sa, reply): (StreamAssignment, Option<Reply>) = codec().deserialize(body).map_err(bad)?;
                match op {
                    OpCode::AssignStream => MetaEntry::AssignStream { sa, reply },
                    OpCode::UpdateStream => MetaEntry::UpdateStream { sa, reply },
                    _ => MetaEntry::RemoveStream { sa, reply },
                }
            }
            OpCode::AssignConsumer | OpCode::RemoveConsumer => {
                let (ca, reply): (ConsumerAssignment, Option<Reply>) = codec().deserialize(body).map_err(bad)?;
                match op {
                    OpCode::AssignConsumer => MetaEntry::AssignConsumer { ca, reply },
                    _ => MetaEntry::RemoveConsumer { ca, reply },
                }
            }
        })
    }
}
