//! A stream scaled up from one replica (§2.2) carries its store into its new raft group.
//!
//! An R1 stream keeps its messages in its store (`messages/<group>`) and runs no raft node; a
//! replicated one keeps them in its group's log. When an update gives an R1 stream a group of
//! more peers, its server founds that group with one entry, written before the node starts,
//! that carries the store's message count. It starts as a group of one, elects itself and
//! adds the new peers, which join and wait for its data (a joiner votes for no member that is
//! no joiner, and cannot win against a member whose log is longer), so whoever leads the group
//! holds the carried messages. The store goes once the entry is durable.

use super::env::ServerEnv;
use super::observe::Observation;
use super::storage::{GroupFiles, InitialMembership, MessageFile, WalRecord};
use crate::meta::StreamKey;
use crate::raft::{Entry, EntryData, HardState};

/// First byte of a carry entry's payload. A publish's payload is 16 bytes; a carry's is 9.
const CARRY_TAG: u8 = 0xCA;

/// The payload of an entry carrying `messages` messages from an R1 stream's store.
pub fn carry_payload(messages: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(9);
    payload.push(CARRY_TAG);
    payload.extend_from_slice(&messages.to_le_bytes());
    payload
}

/// The messages a carry entry's payload carries; `None` for any other payload.
pub fn carried(payload: &[u8]) -> Option<u64> {
    match payload {
        [CARRY_TAG, count @ ..] => count.try_into().ok().map(u64::from_le_bytes),
        _ => None,
    }
}

/// The messages an asset group's entry stands for: a carry entry its count, any other one.
pub fn messages_in(payload: &[u8]) -> u64 {
    carried(payload).unwrap_or(1)
}

/// This server held `key`'s R1 store in group `old` and now runs it in `group`: found that
/// group with the store carried over, unless it was founded already (a replay of the update),
/// then drop the store. An error when the group's files could not be written (a full disk):
/// the store stays, the group's files are gone again, and the caller holds the group back and
/// tries again. NATS keeps an R1 stream's store where it is when it scales up, so a failed
/// regroup loses no message; starting the group empty here lost acknowledged ones (a guided
/// `disk` campaign from 2300000, run 171, stop 52).
pub(super) fn carry_store(env: &mut ServerEnv<'_>, stream: &StreamKey, old: &str, group: &str) -> Result<(), String> {
    let store = MessageFile::new(old);
    let files = GroupFiles::new(group);
    if files.is_fresh(env.disk()) {
        let messages = match store.count(env.disk()) {
            Ok(n) => n,
            Err(e) => {
                // A damaged store carries nothing (a damaged disk voids the promise anyway).
                env.trace_text("store-unreadable", &e.to_string());
                0
            }
        };
        // The founder starts alone, as a group of one, and adds the new peers as its leader:
        // they wait for a leader and vote for no member before one brought them its log.
        let start = InitialMembership { peers: vec![env.node()], joined: false };
        let entry = Entry { term: 1, index: 1, data: EntryData::Normal(carry_payload(messages)) };
        let hard = HardState { term: 1, voted_for: None, commit: 0 };
        // Not fatal, as for any new group: a restart falls back to the assignment's peers and
        // replays the log over them. Giving up here dropped the carried messages (default seed
        // 6679 of generator 15: a full disk for the peers record only).
        // (Its sync is checked with the other files' below.)
        if let Err(e) = files.write_initial_peers(env.disk(), &start) {
            super::start::trace_file_error(env, "peers-record-failed", &files.peers, &e.to_string());
        }
        let written = files
            .append_hard_state(env.disk(), hard)
            .and_then(|()| files.append_wal(env.disk(), &WalRecord::Entries(vec![entry])));
        if let Err(e) = written {
            files.remove_all(env.disk());
            return Err(e.to_string());
        }
        for path in files.all(env.disk()) {
            if !env.disk().fsync(&path) {
                env.trace_text("fsync-lost", &path);
            }
        }
        env.trace_with("store-carried", &(old, group, messages), || {
            format!("{messages} messages from {old} to {group}")
        });
        env.observe(Observation::StoreCarried { stream, from: old, to: group, messages });
    }
    env.disk().remove(store.path());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carry_entry_counts_its_messages_and_a_publish_counts_one() {
        assert_eq!(messages_in(&carry_payload(0)), 0);
        assert_eq!(messages_in(&carry_payload(41)), 41);
        let publish = bincode::serialize(&(3u32, 7u64, 0u32)).unwrap();
        assert_eq!(publish.len(), 16);
        assert_eq!(messages_in(&publish), 1);
        assert_eq!(messages_in(&[CARRY_TAG, 1, 2]), 1, "a short payload is not a carry");
    }
}
