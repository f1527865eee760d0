//! The projection digest (§10): a fixed digest of the applied assignments with the local-only
//! field (`preferred`) left out, which the oracle compares between servers, with the reference
//! state machine, and with snapshots (S4, S5, S6, S8).
//!
//! The digest is the wrapping sum of one term per stream and one per consumer, each a mixed
//! FNV-1a of that assignment under its map keys. A sum can be kept as the state changes: an
//! apply touches one stream or consumer, so [`MetaState`](super::MetaState) adds and takes
//! away that one term instead of digesting every assignment again (issue 16: the full digest
//! of a copy of every assignment, on every apply of every server and the oracle, was a good
//! part of a run with hundreds of streams). Equal projections give equal digests; unequal ones
//! differ unless two 64-bit mixed hashes cancel. The digest never reaches a trace.

use std::collections::BTreeMap;

use sim::hash::Fnv64;

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
    let mut h = Fnv64::default();
    h.write_u64(STREAM_TERM);
    write_str(&mut h, &key.account);
    write_str(&mut h, &key.name);
    write_str(&mut h, account);
    write_str(&mut h, name);
    h.write_u64(*created_ms);
    write_bytes(&mut h, config_json);
    write_group(&mut h, group);
    write_str(&mut h, sync);
    mix(h.finish())
}

/// A consumer's term: its parent's map key, its own, and every replicated field.
pub(super) fn consumer_term(parent: &StreamKey, map_name: &str, ca: &ConsumerAssignment) -> u64 {
    let ConsumerAssignment { account, stream, name, created_ms, config_json, group } = ca;
    let mut h = Fnv64::default();
    h.write_u64(CONSUMER_TERM);
    write_str(&mut h, &parent.account);
    write_str(&mut h, &parent.name);
    write_str(&mut h, map_name);
    write_str(&mut h, account);
    write_str(&mut h, stream);
    write_str(&mut h, name);
    h.write_u64(*created_ms);
    write_bytes(&mut h, config_json);
    write_group(&mut h, group);
    mix(h.finish())
}

/// A group without `preferred`, the one field a server chooses for itself.
fn write_group(h: &mut Fnv64, group: &RaftGroup) {
    let RaftGroup { name, peers, preferred: _, joiners } = group;
    write_str(h, name);
    h.write_u64(peers.len() as u64);
    peers.iter().for_each(|&p| h.write_u64(u64::from(p)));
    h.write_u64(joiners.len() as u64);
    joiners.iter().for_each(|&p| h.write_u64(u64::from(p)));
}

fn write_str(h: &mut Fnv64, s: &str) {
    write_bytes(h, s.as_bytes());
}

/// Length first, so no two field lists run together into the same bytes.
fn write_bytes(h: &mut Fnv64, bytes: &[u8]) {
    h.write_u64(bytes.len() as u64);
    h.write(bytes);
}

/// MurmurHash3's 64-bit finalizer: spreads FNV's output over every bit, so that terms summed
/// do not cancel by structure.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
