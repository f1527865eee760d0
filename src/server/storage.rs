//! A raft group's durable state on the simulated disk, with a checksum on every record.
//!
//! Three kinds of file per group, so disk faults can be aimed at each:
//! - `log/<group>`: the WAL, frames of [`WalRecord`] (entries, conflict truncations);
//! - `state/<group>`: frames of [`StateRecord`] (term, vote, commit; which snapshot is durable);
//! - `snapshot/<group>.<last index>`: one frame holding a [`Snapshot`];
//! - `peers/<group>`: one frame holding the membership the group started with here (NATS keeps
//!   a peer-state file for the same reason). Without it a restart with no snapshot would take
//!   its membership from the *current* assignment, which a re-placement may have changed long
//!   after this log began, and count votes in a group it does not belong to yet.
//!
//! Every file is append-only or written once, because a rewrite in place can be torn by a power
//! loss. A snapshot counts only once a `SnapshotDurable` record names it, which is appended after
//! the snapshot's own fsync, so a half-written snapshot is garbage, never state.
//!
//! Frame: `[len u32][!len u32][crc32 of payload u32][payload]`. A frame cut short at the end of
//! a file is a torn write (cut off); a bad header or checksum anywhere is corruption, and the
//! group refuses to start rather than recover from a partial log.

use serde::{Deserialize, Serialize};
use sim::disk::{DiskError, NodeDisk};
use thiserror::Error;

use crate::raft::{Entry, HardState, Index, PeerId, Snapshot};

const HEADER_BYTES: usize = 12;
/// A frame larger than this is corruption, not data (a flipped length bit must not make the
/// reader skip or wait for gigabytes).
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StorageError {
    #[error("{path}: frame at byte {offset}: {reason}")]
    Corrupt { path: String, offset: usize, reason: String },
    #[error("{path}: named durable by the state file but {reason}")]
    MissingSnapshot { path: String, reason: String },
    #[error(transparent)]
    Disk(#[from] DiskError),
}

/// What the WAL holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WalRecord {
    /// Drop every entry with index >= this (a conflicting suffix).
    TruncateFrom(Index),
    Entries(Vec<Entry>),
}

/// What the state file holds; the last record of each kind wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StateRecord {
    Hard(HardState),
    /// The snapshot with this last index is complete and synced.
    SnapshotDurable(Index),
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frames of a file, and how many bytes at its end are a torn frame.
pub fn read_frames<'a>(path: &str, bytes: &'a [u8]) -> Result<(Vec<&'a [u8]>, usize), StorageError> {
    let corrupt = |offset, reason: String| StorageError::Corrupt { path: path.to_string(), offset, reason };
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < HEADER_BYTES {
            return Ok((frames, rest.len()));
        }
        let word = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
        let (len, len_check, crc) = (word(0), word(4), word(8));
        if len != !len_check {
            return Err(corrupt(offset, "header checksum mismatch".into()));
        }
        let len = len as usize;
        if len > FRAME_BYTES_MAX {
            return Err(corrupt(offset, format!("length {len} over the {FRAME_BYTES_MAX}-byte limit")));
        }
        if rest.len() < HEADER_BYTES + len {
            return Ok((frames, rest.len()));
        }
        let payload = &rest[HEADER_BYTES..HEADER_BYTES + len];
        if crc32fast::hash(payload) != crc {
            return Err(corrupt(offset, "payload checksum mismatch".into()));
        }
        frames.push(payload);
        offset += HEADER_BYTES + len;
    }
    Ok((frames, 0))
}

fn decode<T: for<'de> Deserialize<'de>>(path: &str, payload: &[u8]) -> Result<T, StorageError> {
    bincode::deserialize(payload).map_err(|e| StorageError::Corrupt {
        path: path.to_string(),
        offset: 0,
        reason: format!("checksum holds but the record does not decode: {e}"),
    })
}

/// A file that holds one record, replaced whole: `None` when absent or cut short before its
/// frame was complete; more than one frame is corruption.
fn read_record<T: for<'de> Deserialize<'de>>(disk: &NodeDisk, path: &str) -> Result<Option<T>, StorageError> {
    let Some(bytes) = disk.read(path) else { return Ok(None) };
    let (frames, _torn) = read_frames(path, bytes)?;
    match frames.as_slice() {
        [] => Ok(None),
        [payload] => decode(path, payload).map(Some),
        more => {
            let reason = format!("{} records where one is written", more.len());
            Err(StorageError::Corrupt { path: path.to_string(), offset: 0, reason })
        }
    }
}

/// `value`'s bincode encoding in a frame: the bytes of `frame(&bincode::serialize(value))`,
/// encoded in place behind the header instead of into a buffer of their own that is then
/// copied (for a large meta snapshot, a second buffer of megabytes to fault in and fill).
pub fn encode_framed<T: Serialize>(value: &T) -> Vec<u8> {
    let payload_len = bincode::serialized_size(value).expect("in-memory values encode") as usize;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload_len);
    crate::prefault::prefault_spare(&mut out);
    out.resize(HEADER_BYTES, 0);
    bincode::serialize_into(&mut out, value).expect("in-memory values encode");
    let (header, payload) = out.split_at_mut(HEADER_BYTES);
    let len = payload.len() as u32;
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&(!len).to_le_bytes());
    header[8..12].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out
}

/// What `peers/<group>` holds: the membership a node started with, and whether it joined a
/// group that already ran (it then waits for a leader's data before it campaigns, also
/// after a restart that finds its log still empty; NATS's scale-up observer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitialMembership {
    pub peers: Vec<PeerId>,
    pub joined: bool,
}

/// What `removed/meta` holds: this server applied its own removal from the meta group, and
/// the members the group had left. NATS's `DisableJetStream` deletes the meta group's state
/// on a removal; the record is what stays, so that a restart keeps JetStream off instead of
/// starting a meta group with nothing in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRemoval {
    pub members_left: Vec<PeerId>,
}

impl MetaRemoval {
    pub const PATH: &'static str = "removed/meta";

    /// Write the record, synced. False when the disk lied about the fsync.
    pub fn write(&self, disk: &mut NodeDisk) -> Result<bool, DiskError> {
        disk.replace(Self::PATH, &encode_framed(self))?;
        Ok(disk.fsync(Self::PATH))
    }

    /// The record, if this server was removed. A write cut short by a power loss is as good
    /// as none (the meta state is deleted only after the record is synced); a damaged record
    /// is corruption.
    pub fn read(disk: &NodeDisk) -> Result<Option<Self>, StorageError> {
        read_record::<MetaRemoval>(disk, Self::PATH)
    }
}

/// The file names of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFiles {
    pub wal: String,
    pub state: String,
    pub peers: String,
    /// The cluster size a leader chose and replicated (NRG keeps it with its peer state), once
    /// there is one: the peer-state entry that carried it may sit inside a snapshot by the
    /// time the server restarts.
    pub cluster_size: String,
    group: String,
}

/// What a group finds on disk at start-up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovered {
    pub hard: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, in order, conflicts already resolved.
    pub entries: Vec<Entry>,
    /// Torn frames cut off the end of files: (path, bytes).
    pub torn: Vec<(String, usize)>,
    /// Stale entries after the snapshot that were dropped (see `recover`).
    pub dropped_stale: usize,
}

impl GroupFiles {
    pub fn new(group: &str) -> Self {
        GroupFiles {
            wal: format!("log/{group}"),
            state: format!("state/{group}"),
            peers: format!("peers/{group}"),
            cluster_size: format!("size/{group}"),
            group: group.to_string(),
        }
    }

    pub fn snapshot_path(&self, last_index: Index) -> String {
        format!("snapshot/{}.{last_index:020}", self.group)
    }

    fn snapshot_prefix(&self) -> String {
        format!("snapshot/{}.", self.group)
    }

    /// Record the membership a brand new node starts with, synced at once (it is written once,
    /// before the node can vote). False when the disk lied about the fsync.
    pub fn write_initial_peers(&self, disk: &mut NodeDisk, start: &InitialMembership) -> Result<bool, DiskError> {
        disk.replace(&self.peers, &encode_framed(start))?;
        Ok(disk.fsync(&self.peers))
    }

    /// Rewrite the membership record, leaving its fsync to the caller.
    pub fn replace_initial_peers(&self, disk: &mut NodeDisk, start: &InitialMembership) -> Result<(), DiskError> {
        disk.replace(&self.peers, &encode_framed(start))
    }

    /// The membership this node started with, if it was recorded. A write cut short by a power
    /// loss is as good as none (the node had not voted yet); a damaged record is corruption.
    pub fn read_initial_peers(&self, disk: &NodeDisk) -> Result<Option<InitialMembership>, StorageError> {
        let Some(start) = read_record::<InitialMembership>(disk, &self.peers)? else { return Ok(None) };
        if start.peers.is_empty() {
            let reason = "the recorded membership is empty".to_string();
            return Err(StorageError::Corrupt { path: self.peers.clone(), offset: 0, reason });
        }
        Ok(Some(start))
    }

    /// Record the replicated cluster size (`None`: the membership counts again), synced at
    /// once. False when the disk lied about the fsync.
    pub fn write_cluster_size(&self, disk: &mut NodeDisk, size: Option<u32>) -> Result<bool, DiskError> {
        disk.replace(&self.cluster_size, &encode_framed(&size))?;
        Ok(disk.fsync(&self.cluster_size))
    }

    /// The replicated cluster size on record, if any. A write cut short by a power loss is as
    /// good as none (the peer-state entries in the log still carry it, up to the snapshot); a
    /// damaged record is corruption.
    pub fn read_cluster_size(&self, disk: &NodeDisk) -> Result<Option<u32>, StorageError> {
        let size = read_record::<Option<u32>>(disk, &self.cluster_size)?.flatten();
        if size.is_some_and(|s| s < 2) {
            let reason = format!("cluster size {size:?} below two");
            return Err(StorageError::Corrupt { path: self.cluster_size.clone(), offset: 0, reason });
        }
        Ok(size)
    }

    /// True when the group has never written anything here (the membership record aside: a
    /// node that crashed right after writing it had not voted or logged anything).
    pub fn is_fresh(&self, disk: &NodeDisk) -> bool {
        !disk.exists(&self.wal) && !disk.exists(&self.state) && disk.list(&self.snapshot_prefix()).is_empty()
    }

    /// Read everything back. Torn tails are cut off (and the cut is written, to be synced by
    /// the caller); corruption is an error.
    pub fn recover(&self, disk: &mut NodeDisk) -> Result<Recovered, StorageError> {
        let mut recovered = Recovered::default();
        let durable_snapshot = self.recover_state(disk, &mut recovered)?;
        recovered.snapshot = self.recover_snapshot(disk, durable_snapshot)?;
        let base = recovered.snapshot.as_ref().map_or(0, |s| s.last_index);
        let mut entries = self.recover_wal(disk, &mut recovered)?;
        entries.retain(|e| e.index > base);
        // A crash between naming a snapshot durable and syncing the log truncation that went
        // with it leaves entries from before the install behind it: keep only a contiguous,
        // term-consistent run after the snapshot (uncommitted entries, so dropping is safe).
        let base_term = recovered.snapshot.as_ref().map_or(0, |s| s.last_term);
        let mut expected = base + 1;
        let mut term = base_term;
        let keep = entries
            .iter()
            .take_while(|e| {
                let ok = e.index == expected && e.term >= term;
                expected += 1;
                term = e.term;
                ok
            })
            .count();
        if keep < entries.len() {
            recovered.dropped_stale = entries.len() - keep;
            entries.truncate(keep);
        }
        recovered.entries = entries;
        Ok(recovered)
    }

    /// The state file: the latest hard state and the snapshot named durable, if any.
    fn recover_state(&self, disk: &mut NodeDisk, recovered: &mut Recovered) -> Result<Option<Index>, StorageError> {
        let mut durable_snapshot = None;
        let state_bytes = disk.read(&self.state).unwrap_or_default().to_vec();
        let (frames, torn) = read_frames(&self.state, &state_bytes)?;
        for payload in frames {
            match decode::<StateRecord>(&self.state, payload)? {
                StateRecord::Hard(h) => recovered.hard = h,
                StateRecord::SnapshotDurable(i) => durable_snapshot = Some(i),
            }
        }
        if torn > 0 {
            disk.set_len(&self.state, (state_bytes.len() - torn) as u64)?;
            recovered.torn.push((self.state.clone(), torn));
        }
        Ok(durable_snapshot)
    }

    /// The snapshot named durable, which must be whole; other snapshot files are garbage from
    /// an interrupted write, and go.
    fn recover_snapshot(&self, disk: &mut NodeDisk, durable: Option<Index>) -> Result<Option<Snapshot>, StorageError> {
        let mut found = None;
        if let Some(index) = durable {
            let path = self.snapshot_path(index);
            let missing = |reason: &str| StorageError::MissingSnapshot { path: path.clone(), reason: reason.into() };
            let bytes = disk.read(&path).ok_or_else(|| missing("the file is gone"))?.to_vec();
            let (frames, torn) = read_frames(&path, &bytes)?;
            if frames.len() != 1 || torn != 0 {
                return Err(missing(&format!("it holds {} whole frame(s) and {torn} stray byte(s)", frames.len())));
            }
            let snapshot: Snapshot = decode(&path, frames[0])?;
            if snapshot.last_index != index {
                return Err(missing(&format!("it holds index {}", snapshot.last_index)));
            }
            found = Some(snapshot);
        }
        // Snapshots never named durable (or superseded) are garbage from an interrupted write.
        for path in disk.list(&self.snapshot_prefix()) {
            if durable.is_none_or(|i| path != self.snapshot_path(i)) {
                disk.remove(&path);
            }
        }
        Ok(found)
    }

    /// The log's entries as its records leave them, in strictly increasing index order.
    fn recover_wal(&self, disk: &mut NodeDisk, recovered: &mut Recovered) -> Result<Vec<Entry>, StorageError> {
        let wal_bytes = disk.read(&self.wal).unwrap_or_default().to_vec();
        let (frames, torn) = read_frames(&self.wal, &wal_bytes)?;
        // Kept in strictly increasing index order, so a cut is a binary search, not a scan
        // (a scan per entry made a 100k-entry log take seconds to read).
        let mut entries: Vec<Entry> = Vec::new();
        for payload in frames {
            match decode::<WalRecord>(&self.wal, payload)? {
                WalRecord::TruncateFrom(from) => entries.truncate(entries.partition_point(|e| e.index < from)),
                WalRecord::Entries(batch) => {
                    for e in batch {
                        // A later write of an index replaces what was there from that index on.
                        entries.truncate(entries.partition_point(|x| x.index < e.index));
                        entries.push(e);
                    }
                }
            }
        }
        if torn > 0 {
            disk.set_len(&self.wal, (wal_bytes.len() - torn) as u64)?;
            recovered.torn.push((self.wal.clone(), torn));
        }
        Ok(entries)
    }

    pub fn append_hard_state(&self, disk: &mut NodeDisk, hard: HardState) -> Result<(), DiskError> {
        disk.append(&self.state, &encode_framed(&StateRecord::Hard(hard)))
    }

    pub fn append_wal(&self, disk: &mut NodeDisk, record: &WalRecord) -> Result<(), DiskError> {
        disk.append(&self.wal, &encode_framed(record))
    }

    /// Write a snapshot's file; it counts only after [`Self::mark_snapshot_durable`].
    pub fn write_snapshot(&self, disk: &mut NodeDisk, snapshot: &Snapshot) -> Result<String, DiskError> {
        let path = self.snapshot_path(snapshot.last_index);
        disk.replace(&path, &encode_framed(snapshot))?;
        Ok(path)
    }

    /// Name the snapshot durable (after its fsync) and drop older snapshot files.
    pub fn mark_snapshot_durable(&self, disk: &mut NodeDisk, last_index: Index) -> Result<(), DiskError> {
        disk.append(&self.state, &encode_framed(&StateRecord::SnapshotDurable(last_index)))?;
        Ok(())
    }

    /// Every file of the group that exists.
    pub fn all(&self, disk: &NodeDisk) -> Vec<String> {
        let mut paths: Vec<String> = [&self.wal, &self.state, &self.peers, &self.cluster_size]
            .into_iter()
            .filter(|p| disk.exists(p))
            .cloned()
            .collect();
        paths.extend(disk.list(&self.snapshot_prefix()));
        paths
    }

    /// Delete every file of the group (it no longer runs here).
    pub fn remove_all(&self, disk: &mut NodeDisk) {
        disk.remove(&self.wal);
        disk.remove(&self.state);
        disk.remove(&self.peers);
        disk.remove(&self.cluster_size);
        for path in disk.list(&self.snapshot_prefix()) {
            disk.remove(&path);
        }
    }

    /// Remove snapshot files older than `keep` (only once `keep` is named durable and synced).
    pub fn remove_older_snapshots(&self, disk: &mut NodeDisk, keep: Index) {
        let keep_path = self.snapshot_path(keep);
        for path in disk.list(&self.snapshot_prefix()) {
            if path < keep_path {
                disk.remove(&path);
            }
        }
    }
}

/// An R1 stream's store. R1 streams run without a raft group, so each acknowledged publish is
/// a frame here holding its message count (u32), synced before the acknowledgement.
pub struct MessageFile {
    path: String,
}

impl MessageFile {
    pub const PREFIX: &'static str = "messages/";

    pub fn new(group: &str) -> Self {
        MessageFile { path: format!("{}{group}", Self::PREFIX) }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Messages stored; a torn frame at the end was never acknowledged and does not count.
    pub fn count(&self, disk: &NodeDisk) -> Result<u64, StorageError> {
        let Some(bytes) = disk.read(&self.path) else { return Ok(0) };
        let (frames, _torn) = read_frames(&self.path, bytes)?;
        frames.iter().map(|f| Self::decode_count(&self.path, f)).sum()
    }

    /// Append one publish of `count` messages and sync it. `Ok(false)`: the disk lied about
    /// the sync.
    pub fn store(&self, disk: &mut NodeDisk, count: u32) -> Result<bool, StorageError> {
        let bytes = disk.read(&self.path).unwrap_or_default();
        let (_, torn) = read_frames(&self.path, bytes)?;
        if torn > 0 {
            // Cut the torn frame off first, or the new frame would sit behind garbage.
            let valid = (bytes.len() - torn) as u64;
            disk.set_len(&self.path, valid)?;
        }
        disk.append(&self.path, &frame(&count.to_le_bytes()))?;
        Ok(disk.fsync(&self.path))
    }

    fn decode_count(path: &str, payload: &[u8]) -> Result<u64, StorageError> {
        let bytes: [u8; 4] = payload.try_into().map_err(|_| StorageError::Corrupt {
            path: path.to_string(),
            offset: 0,
            reason: format!("a message record holds {} bytes, not 4", payload.len()),
        })?;
        Ok(u64::from(u32::from_le_bytes(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::EntryData;
    use rand::SeedableRng;

    fn entry(index: Index, term: u64) -> Entry {
        Entry { term, index, data: EntryData::Normal(vec![index as u8]) }
    }

    /// Files keep their bytes: a value framed in place is framed as its encoding was.
    #[test]
    fn encoding_in_place_frames_the_same_bytes() {
        let hard = StateRecord::Hard(HardState { term: 3, voted_for: Some(2), commit: 9 });
        let wal = WalRecord::Entries(vec![entry(1, 1), entry(2, 1)]);
        assert_eq!(encode_framed(&hard), frame(&bincode::serialize(&hard).unwrap()));
        assert_eq!(encode_framed(&wal), frame(&bincode::serialize(&wal).unwrap()));
        assert_eq!(encode_framed(&()), frame(&[]));
    }

    #[test]
    fn round_trip_with_truncation_and_snapshot() {
        let files = GroupFiles::new("meta");
        let mut disk = NodeDisk::default();
        assert!(files.is_fresh(&disk));
        files.append_wal(&mut disk, &WalRecord::Entries(vec![entry(1, 1), entry(2, 1), entry(3, 1)])).unwrap();
        files.append_wal(&mut disk, &WalRecord::TruncateFrom(3)).unwrap();
        files.append_wal(&mut disk, &WalRecord::Entries(vec![entry(3, 2), entry(4, 2)])).unwrap();
        files.append_hard_state(&mut disk, HardState { term: 2, voted_for: Some(1), commit: 3 }).unwrap();
        let snap = Snapshot { last_index: 2, last_term: 1, peers: vec![0, 1, 2], data: b"state".to_vec() };
        files.write_snapshot(&mut disk, &snap).unwrap();
        files.mark_snapshot_durable(&mut disk, 2).unwrap();
        let r = files.recover(&mut disk).unwrap();
        assert_eq!(r.hard, HardState { term: 2, voted_for: Some(1), commit: 3 });
        assert_eq!(r.snapshot, Some(snap));
        assert_eq!(r.entries, vec![entry(3, 2), entry(4, 2)]);
        assert!(r.torn.is_empty());
    }

    #[test]
    fn torn_tail_is_cut_and_corruption_refused() {
        let files = GroupFiles::new("meta");
        let mut disk = NodeDisk::default();
        files.append_wal(&mut disk, &WalRecord::Entries(vec![entry(1, 1)])).unwrap();
        disk.fsync(&files.wal);
        files.append_wal(&mut disk, &WalRecord::Entries(vec![entry(2, 1)])).unwrap();
        disk.power_loss(true, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let r = files.recover(&mut disk).unwrap();
        assert_eq!(r.entries, vec![entry(1, 1)]);
        assert_eq!(r.torn.len(), 1);

        let mut bytes = disk.read(&files.wal).unwrap().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        disk.replace(&files.wal, &bytes).unwrap();
        let err = files.recover(&mut disk).unwrap_err();
        assert!(err.to_string().contains("log/meta: frame at byte 0: payload checksum mismatch"), "{err}");
        // A flipped length bit is caught by the header check, not mistaken for a torn tail.
        bytes[last] ^= 1;
        bytes[1] ^= 0x40;
        disk.replace(&files.wal, &bytes).unwrap();
        assert!(files.recover(&mut disk).unwrap_err().to_string().contains("header checksum"));
    }

    #[test]
    fn a_snapshot_never_named_durable_is_garbage_and_a_named_broken_one_is_an_error() {
        let files = GroupFiles::new("meta");
        let mut disk = NodeDisk::default();
        let snap = Snapshot { last_index: 5, last_term: 1, peers: vec![0], data: vec![1, 2, 3] };
        let path = files.write_snapshot(&mut disk, &snap).unwrap();
        let r = files.recover(&mut disk).unwrap();
        assert_eq!(r.snapshot, None);
        assert!(!disk.exists(&path), "the unnamed snapshot was removed");

        files.write_snapshot(&mut disk, &snap).unwrap();
        files.mark_snapshot_durable(&mut disk, 5).unwrap();
        disk.set_len(&path, 10).unwrap();
        let err = files.recover(&mut disk).unwrap_err();
        assert!(matches!(err, StorageError::MissingSnapshot { .. }), "{err}");
    }

    /// The starting membership survives as written, does not make the group look written
    /// (a node that crashed right after recording it had done nothing else), goes with the
    /// group's files, and a damaged record is refused with the file named, never guessed.
    #[test]
    fn initial_membership_record() {
        let files = GroupFiles::new("S-R3-1");
        let mut disk = NodeDisk::default();
        assert_eq!(files.read_initial_peers(&disk), Ok(None));
        let start = InitialMembership { peers: vec![0, 1, 2], joined: true };
        assert_eq!(files.write_initial_peers(&mut disk, &start), Ok(true));
        assert!(files.is_fresh(&disk));
        assert_eq!(files.read_initial_peers(&disk), Ok(Some(start.clone())));
        assert!(files.all(&disk).contains(&files.peers));

        let bytes = disk.read(&files.peers).unwrap().to_vec();
        disk.replace(&files.peers, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(files.read_initial_peers(&disk), Ok(None), "a write cut short by a power loss");

        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        disk.replace(&files.peers, &flipped).unwrap();
        let err = files.read_initial_peers(&disk).unwrap_err();
        assert!(err.to_string().starts_with("peers/S-R3-1"), "{err}");

        let empty = InitialMembership { peers: vec![], joined: false };
        files.write_initial_peers(&mut disk, &empty).unwrap();
        assert!(files.read_initial_peers(&disk).unwrap_err().to_string().contains("empty"));

        files.remove_all(&mut disk);
        assert!(!disk.exists(&files.peers));
    }

    /// The removal record reads back as written, is absent until written or when its write was
    /// cut short, and a damaged one is refused with its file named.
    #[test]
    fn meta_removal_record() {
        let mut disk = NodeDisk::default();
        assert_eq!(MetaRemoval::read(&disk), Ok(None));
        let record = MetaRemoval { members_left: vec![0, 1] };
        assert_eq!(record.write(&mut disk), Ok(true));
        assert_eq!(MetaRemoval::read(&disk), Ok(Some(record)));

        let bytes = disk.read(MetaRemoval::PATH).unwrap().to_vec();
        disk.replace(MetaRemoval::PATH, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(MetaRemoval::read(&disk), Ok(None), "a write cut short by a power loss");
        let mut flipped = bytes;
        *flipped.last_mut().unwrap() ^= 1;
        disk.replace(MetaRemoval::PATH, &flipped).unwrap();
        let err = MetaRemoval::read(&disk).unwrap_err();
        assert!(err.to_string().starts_with("removed/meta"), "{err}");
    }

    /// The replicated cluster size: absent until written, read back as written (`None` too),
    /// kept with the group's files, and a damaged or impossible record refused with the file
    /// named.
    #[test]
    fn cluster_size_record() {
        let files = GroupFiles::new("meta");
        let mut disk = NodeDisk::default();
        assert_eq!(files.read_cluster_size(&disk), Ok(None));
        assert_eq!(files.write_cluster_size(&mut disk, Some(4)), Ok(true));
        assert_eq!(files.read_cluster_size(&disk), Ok(Some(4)));
        assert!(files.all(&disk).contains(&files.cluster_size));
        assert_eq!(files.write_cluster_size(&mut disk, None), Ok(true));
        assert_eq!(files.read_cluster_size(&disk), Ok(None));

        files.write_cluster_size(&mut disk, Some(3)).unwrap();
        let bytes = disk.read(&files.cluster_size).unwrap().to_vec();
        disk.replace(&files.cluster_size, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(files.read_cluster_size(&disk), Ok(None), "a write cut short by a power loss");
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        disk.replace(&files.cluster_size, &flipped).unwrap();
        let err = files.read_cluster_size(&disk).unwrap_err();
        assert!(err.to_string().starts_with("size/meta"), "{err}");

        files.write_cluster_size(&mut disk, Some(1)).unwrap();
        assert!(files.read_cluster_size(&disk).unwrap_err().to_string().contains("below two"));

        files.remove_all(&mut disk);
        assert!(!disk.exists(&files.cluster_size));
    }
}
