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

use xxhash_rust::xxh3::Xxh3Default;

use super::model::{ConsumerAssignment, RaftGroup, StreamAssignment, StreamKey};

/// Tells a stream's term from a consumer's.
const STREAM_TERM: u64 = 1;
const CONSUMER_TERM: u64 = 2;

/// The digest of the projection of `streams`, computed from scratch.
pub fn projection_digest_of(streams: &BTreeMap<StreamKey, StreamAssignment>) -> u64 {
    streams.iter().fold(0, |sum, (key, sa)| sum.wrapping_add(stream_with_consumers_term(key, sa)))
}

/// The terms of a stream and of every consumer under it.
pub(super) fn stream_with_consumers_term(key: &StreamKey, sa: &StreamAssignment) -> u64 {
    let consumers = sa.consumers.iter().fold(0u64, |sum, (name, ca)| sum.wrapping_add(consumer_term(key, name, ca)));
    stream_term(key, sa).wrapping_add(consumers)
}

/// A stream's own term: its map key and every replicated field but its consumers.
pub(super) fn stream_term(key: &StreamKey, sa: &StreamAssignment) -> u64 {
    // Taken apart field by field, so a field added to the assignment fails to compile here
    // until it is hashed or named as left out.
    let StreamAssignment { account, name, created_ms, config_json, group, sync, consumers: _ } = sa;
    let mut h = Term::new(STREAM_TERM);
    write_str(&mut h, &key.account);
    write_str(&mut h, &key.name);
    write_str(&mut h, account);
    write_str(&mut h, name);
    h.write_u64(*created_ms);
    write_bytes(&mut h, config_json);
    write_group(&mut h, group);
    write_str(&mut h, sync);
    h.finish()
}

/// A consumer's term: its parent's map key, its own, and every replicated field.
pub(super) fn consumer_term(parent: &StreamKey, map_name: &str, ca: &ConsumerAssignment) -> u64 {
    let ConsumerAssignment { account, stream, name, created_ms, config_json, group } = ca;
    let mut h = Term::new(CONSUMER_TERM);
    write_str(&mut h, &parent.account);
    write_str(&mut h, &parent.name);
    write_str(&mut h, map_name);
    write_str(&mut h, account);
    write_str(&mut h, stream);
    write_str(&mut h, name);
    h.write_u64(*created_ms);
    write_bytes(&mut h, config_json);
    write_group(&mut h, group);
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

/// One term's hasher; its kind goes in first, so a stream's term and a consumer's differ.
struct Term(Xxh3Default);

impl Term {
    fn new(kind: u64) -> Self {
        let mut h = Term(Xxh3Default::new());
        h.write_u64(kind);
        h
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        self.0.digest()
    }
}
