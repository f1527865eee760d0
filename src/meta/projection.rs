//! The projection digest (§10): a fixed digest of the applied assignments with the local-only
//! field (`preferred`) left out, which the oracle compares between servers, with the reference
//! state machine, and with snapshots (S4, S5, S6, S8).
//!
//! The digest is the wrapping sum of one term per stream and one per consumer, each an xxh3
//! (64-bit) of that assignment's fields under its map keys. A sum can be kept as the state
//! changes: an apply touches one stream or consumer, so [`MetaState`](super::MetaState) adds and takes
//! away that one term instead of digesting every assignment again (issue 16: the full digest
//! of a copy of every assignment, on every apply of every server and the oracle, was a good
//! part of a run with hundreds of streams). Equal projections give equal digests; unequal ones
//! differ unless two 64-bit hashes cancel. The digest never reaches a trace, so its hash
//! function can change without changing a run: xxh3 took over from FNV-1a, whose one dependent
//! multiply per byte made hashing a fifth of applying a 60,000-asset snapshot.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::xxh3_64;

use super::model::{ConsumerAssignment, RaftGroup, StreamAssignment, StreamKey};

/// Tells a stream's term from a consumer's.
const STREAM_TERM: u64 = 1;
const CONSUMER_TERM: u64 = 2;

/// The digest of the projection of `streams`, computed from scratch.
pub fn projection_digest_of(streams: &BTreeMap<StreamKey, StreamAssignment>) -> u64 {
    streams.iter().fold(0, |sum, (key, sa)| sum.wrapping_add(stream_with_consumers_term(key, sa)))
}

/// The terms of a stream and of every consumer under it, gathered in one buffer in turn.
pub(super) fn stream_with_consumers_term(key: &StreamKey, sa: &StreamAssignment) -> u64 {
    let mut h = Term::default();
    let stream = hash_stream(&mut h, key, sa);
    sa.consumers.iter().fold(stream, |sum, (name, ca)| sum.wrapping_add(hash_consumer(&mut h, key, name, ca)))
}

/// A stream's own term: its map key and every replicated field but its consumers.
pub(super) fn stream_term(key: &StreamKey, sa: &StreamAssignment) -> u64 {
    hash_stream(&mut Term::default(), key, sa)
}

/// A consumer's term: its parent's map key, its own, and every replicated field.
pub(super) fn consumer_term(parent: &StreamKey, map_name: &str, ca: &ConsumerAssignment) -> u64 {
    hash_consumer(&mut Term::default(), parent, map_name, ca)
}

fn hash_stream(h: &mut Term, key: &StreamKey, sa: &StreamAssignment) -> u64 {
    // Taken apart field by field, so a field added to the assignment fails to compile here
    // until it is hashed or named as left out.
    let StreamAssignment { account, name, created_ms, config_json, group, sync, consumers: _ } = sa;
    h.start(STREAM_TERM);
    write_str(h, &key.account);
    write_str(h, &key.name);
    write_str(h, account);
    write_str(h, name);
    h.write_u64(*created_ms);
    write_bytes(h, config_json);
    write_group(h, group);
    write_str(h, sync);
    h.finish()
}

fn hash_consumer(h: &mut Term, parent: &StreamKey, map_name: &str, ca: &ConsumerAssignment) -> u64 {
    let ConsumerAssignment { account, stream, name, created_ms, config_json, group } = ca;
    h.start(CONSUMER_TERM);
    write_str(h, &parent.account);
    write_str(h, &parent.name);
    write_str(h, map_name);
    write_str(h, account);
    write_str(h, stream);
    write_str(h, name);
    h.write_u64(*created_ms);
    write_bytes(h, config_json);
    write_group(h, group);
    h.finish()
}

/// A group without `preferred`, the one field a server chooses for itself.
fn write_group(h: &mut Term, group: &RaftGroup) {
    let RaftGroup { name, peers, preferred: _, joiners } = group;
    write_str(h, name);
    h.write_u64(peers.len() as u64);
    peers.iter().for_each(|&p| h.write_u64(u64::from(p)));
    h.write_u64(joiners.len() as u64);
    joiners.iter().for_each(|&p| h.write_u64(u64::from(p)));
}

fn write_str(h: &mut Term, s: &str) {
    write_bytes(h, s.as_bytes());
}

/// Length first, so no two field lists run together into the same bytes.
fn write_bytes(h: &mut Term, bytes: &[u8]) {
    h.write_u64(bytes.len() as u64);
    h.write(bytes);
}

/// Room for a typical term's bytes, so that most never move.
const TERM_BYTES: usize = 256;

/// One term's hasher; its kind goes in first, so a stream's term and a consumer's differ.
///
/// The bytes gather in a buffer and are hashed in one call: xxh3 of a short input at once is
/// several times faster than the same bytes fed piece by piece (a length, then a field) to a
/// streaming state, which was half of adopting a large snapshot; and both give the same
/// digest of the same bytes, so every term keeps its value. A buffer serves one term after
/// another (a stream's, then its consumers').
struct Term(Vec<u8>);

impl Default for Term {
    fn default() -> Self {
        Term(Vec::with_capacity(TERM_BYTES))
    }
}

impl Term {
    /// Begin a term of this kind, forgetting the bytes of any term before.
    fn start(&mut self, kind: u64) {
        self.0.clear();
        self.write_u64(kind);
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        xxh3_64(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use xxhash_rust::xxh3::Xxh3Default;

    use super::*;

    /// The streaming state every term was hashed with before the buffer.
    fn streamed(writes: &[&[u8]]) -> u64 {
        let mut state = Xxh3Default::new();
        writes.iter().for_each(|w| state.update(w));
        state.digest()
    }

    fn buffered(writes: &[&[u8]]) -> u64 {
        let mut term = Term(b"an earlier term".to_vec());
        term.start(u64::from_le_bytes(writes[0].try_into().expect("a kind first")));
        writes[1..].iter().for_each(|w| term.write(w));
        term.finish()
    }

    /// Digests of the oracle's and the servers' states are compared with each other and with
    /// earlier ones: a term keeps its value, short or long.
    #[test]
    fn a_term_hashes_as_the_streaming_state_did() {
        let field = vec![7u8; TERM_BYTES + 100];
        for len in [0, 1, 8, 200, TERM_BYTES - 8, TERM_BYTES, TERM_BYTES + 1, TERM_BYTES + 100] {
            let writes: [&[u8]; 3] = [&1u64.to_le_bytes(), &field[..len], b"sync"];
            assert_eq!(buffered(&writes), streamed(&writes), "a field of {len} bytes");
        }
        let kind = 2u64.to_le_bytes();
        let small: Vec<&[u8]> = std::iter::once(&kind[..]).chain((0..TERM_BYTES).map(|_| &field[..3])).collect();
        assert_eq!(buffered(&small), streamed(&small), "many small writes past the first room");
    }
}
