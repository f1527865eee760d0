//! The simulated disk: per-node files with a durable image and an OS-cache view.
//!
//! Writes land in the cache (what reads see) and are remembered as pending until `fsync`
//! makes the cache durable. A process crash keeps the cache (the OS survives); a power loss
//! throws it away and may tear the last pending write. Injected faults damage the durable
//! image: bit flips, truncation, rollback to a stale copy, lost fsyncs, ENOSPC, slow I/O and
//! wiping every file of a kind.
//!
//! A file's *kind* is the first segment of its path (`log/0001` has kind `log`), so faults can
//! be aimed at "every log file" without the disk knowing what a log is.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DiskError {
    #[error("no space left on device (writing {path})")]
    NoSpace { path: String },
    #[error("file {path} is larger than the {limit_bytes}-byte limit of the simulated disk")]
    TooLarge { path: String, limit_bytes: u64 },
}

/// One file is capped so a runaway writer becomes a clear error, not an exhausted host.
pub const FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// The kind of a path: its first segment.
pub fn kind_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

#[derive(Clone, Debug, Default)]
struct SimFile {
    /// What survives a power loss.
    durable: Vec<u8>,
    /// What reads see: durable plus pending writes.
    cache: Vec<u8>,
    /// Writes since the last fsync, in order: (offset, bytes). A truncation is recorded as an
    /// empty write at the new length so power loss can replay the prefix exactly.
    pending: Vec<PendingOp>,
    /// The durable image before the last fsync, for stale-copy restores.
    previous_durable: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
enum PendingOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen { len: u64 },
}

fn apply(image: &mut Vec<u8>, op: &PendingOp) {
    match op {
        PendingOp::Write { offset, bytes } => {
            let end = *offset as usize + bytes.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[*offset as usize..end].copy_from_slice(bytes);
        }
        PendingOp::SetLen { len } => image.resize(*len as usize, 0),
    }
}

/// A fault that damages what is on the platter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corruption {
    /// Flip one bit of one file of the kind.
    BitFlip,
    /// Cut one file of the kind to a shorter length.
    Truncate,
    /// Put back one file's image from before its last fsync (a stale chunk restored).
    Rollback,
    /// Delete every file of the kind, as an operator removing a data folder would.
    Wipe,
}

impl Corruption {
    /// As a scenario file names it (`bit-flip`).
    pub fn name(self) -> &'static str {
        match self {
            Corruption::BitFlip => "bit-flip",
            Corruption::Truncate => "truncate",
            Corruption::Rollback => "rollback",
            Corruption::Wipe => "wipe",
        }
    }
}

/// What a corruption actually did, for the trace and for oracles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptionReport {
    pub corruption: Corruption,
    /// Files touched; empty when there was nothing of that kind to damage.
    pub paths: Vec<String>,
    pub detail: String,
}

/// Switchable misbehaviour of one node's disk, aimed at file kinds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// Kinds whose fsync reports success but persists nothing.
    pub lost_fsync: BTreeSet<String>,
    /// Kinds whose writes fail with ENOSPC.
    pub no_space: BTreeSet<String>,
    /// Extra latency added to every fsync, in nanoseconds.
    pub slow_ns: u64,
}

/// One node's disk.
#[derive(Clone, Debug, Default)]
pub struct NodeDisk {
    files: BTreeMap<String, SimFile>,
    pub faults: DiskFaults,
    /// Totals for tests and reports.
    pub fsyncs: u64,
    pub fsyncs_lost: u64,
    /// Paths of blocking fsyncs the disk swallowed since the engine last looked: the world
    /// tells the oracle, which the node itself never can.
    lies: Vec<String>,
}

impl NodeDisk {
    /// The current (cached) contents of a file.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|f| f.cache.as_slice())
    }

    /// What a power loss right now would leave of this file.
    pub fn durable(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|f| f.durable.as_slice())
    }

    pub fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Paths starting with `prefix`, in order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.files
            .range(prefix.to_string()..)
            .take_while(|(p, _)| p.starts_with(prefix))
            .map(|(p, _)| p.clone())
            .collect()
    }

    pub fn has_pending(&self, path: &str) -> bool {
        self.files.get(path).is_some_and(|f| !f.pending.is_empty())
    }

    fn check_space(&self, path: &str, new_len: u64) -> Result<(), DiskError> {
        if self.faults.no_space.contains(kind_of(path)) {
            return Err(DiskError::NoSpace { path: path.to_string() });
        }
        if new_len > FILE_BYTES_MAX {
            return Err(DiskError::TooLarge { path: path.to_string(), limit_bytes: FILE_BYTES_MAX });
        }
        Ok(())
    }

    /// Write `bytes` at `offset`, creating the file if needed. Not durable until fsync.
    pub fn write_at(&mut self, path: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        self.check_space(path, offset + bytes.len() as u64)?;
        let file = self.files.entry(path.to_string()).or_default();
        let op = PendingOp::Write { offset, bytes: bytes.to_vec() };
        apply(&mut file.cache, &op);
        file.pending.push(op);
        Ok(())
    }

    /// Append `bytes` to the end of the file.
    pub fn append(&mut self, path: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let offset = self.files.get(path).map_or(0, |f| f.cache.len() as u64);
        self.write_at(path, offset, bytes)
    }

    /// Set the file's length (truncate or zero-extend). Not durable until fsync.
    pub fn set_len(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.check_space(path, len)?;
        let file = self.files.entry(path.to_string()).or_default();
        let op = PendingOp::SetLen { len };
        apply(&mut file.cache, &op);
        file.pending.push(op);
        Ok(())
    }

    /// Replace a file's whole contents. Not durable until fsync.
    pub fn replace(&mut self, path: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.set_len(path, 0)?;
        self.write_at(path, 0, bytes)
    }

    /// Remove a file. Directory operations are modelled as immediately durable.
    pub fn remove(&mut self, path: &str) {
        self.files.remove(path);
    }

    /// Make the file's pending writes durable, unless a lost-fsync fault swallows it.
    /// Returns whether the data really reached the platter. A swallowed fsync is remembered
    /// for the engine to report.
    pub fn fsync(&mut self, path: &str) -> bool {
        let durable = self.sync(path);
        if !durable {
            self.lies.push(path.to_string());
        }
        durable
    }

    /// Whether fsyncs were swallowed since [`Self::take_lies`] last ran.
    pub(crate) fn has_lies(&self) -> bool {
        !self.lies.is_empty()
    }

    /// The paths of fsyncs swallowed since the last call, oldest first.
    pub(crate) fn take_lies(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lies)
    }

    /// An fsync as the engine carries it out for an asynchronous request: the engine reports
    /// a lie itself, so none is remembered.
    pub(crate) fn sync(&mut self, path: &str) -> bool {
        self.fsyncs += 1;
        if self.faults.lost_fsync.contains(kind_of(path)) {
            self.fsyncs_lost += 1;
            return false;
        }
        if let Some(file) = self.files.get_mut(path) {
            if !file.pending.is_empty() {
                file.previous_durable = Some(std::mem::replace(&mut file.durable, file.cache.clone()));
                file.pending.clear();
            }
        }
        true
    }

    /// A process crash: the OS cache survives, so nothing changes on disk.
    pub fn process_crash(&mut self) {}

    /// A power loss: every pending write is dropped. With `torn`, all pending writes but the
    /// last reach the platter and the last one only partly (a proper, non-empty prefix).
    /// Returns the number of bytes of the torn write that survived, if one was torn.
    pub fn power_loss(&mut self, torn: bool, rng: &mut impl Rng) -> Option<(String, usize)> {
        let mut torn_report = None;
        for (path, file) in self.files.iter_mut() {
            let mut image = file.durable.clone();
            if torn && torn_report.is_none() {
                if let Some((last, earlier)) = file.pending.split_last() {
                    for op in earlier {
                        apply(&mut image, op);
                    }
                    if let PendingOp::Write { offset, bytes } = last {
                        if bytes.len() > 1 {
                            let kept = rng.gen_range(1..bytes.len());
                            apply(&mut image, &PendingOp::Write { offset: *offset, bytes: bytes[..kept].to_vec() });
                            torn_report = Some((path.clone(), kept));
                        }
                    }
                }
            }
            file.durable = image.clone();
            file.cache = image;
            file.pending.clear();
        }
        torn_report
    }

    /// Damage the durable image of a file of `kind` (or all of them, for `Wipe`).
    pub fn corrupt(&mut self, kind: &str, corruption: Corruption, rng: &mut impl Rng) -> CorruptionReport {
        let candidates: Vec<String> = self.files.keys().filter(|p| kind_of(p) == kind).cloned().collect();
        let mut report = CorruptionReport { corruption, paths: vec![], detail: String::new() };
        if corruption == Corruption::Wipe {
            for p in &candidates {
                self.files.remove(p);
            }
            report.detail = format!("removed {} file(s)", candidates.len());
            report.paths = candidates;
            return report;
        }
        let damageable: Vec<&String> = candidates
            .iter()
            .filter(|p| {
                let f = &self.files[*p];
                match corruption {
                    Corruption::Rollback => f.previous_durable.is_some(),
                    _ => !f.durable.is_empty(),
                }
            })
            .collect();
        if damageable.is_empty() {
            report.detail = "nothing to damage".into();
            return report;
        }
        let path = damageable[rng.gen_range(0..damageable.len())].clone();
        let file = self.files.get_mut(&path).expect("chosen from the map");
        match corruption {
            Corruption::BitFlip => {
                let byte = rng.gen_range(0..file.durable.len());
                let bit = rng.gen_range(0..8u8);
                file.durable[byte] ^= 1 << bit;
                if byte < file.cache.len() {
                    file.cache[byte] ^= 1 << bit;
                }
                report.detail = format!("flipped bit {bit} of byte {byte}");
            }
            Corruption::Truncate => {
                let len = rng.gen_range(0..file.durable.len());
                file.durable.truncate(len);
                file.cache = file.durable.clone();
                file.pending.clear();
                report.detail = format!("truncated to {len} bytes");
            }
            Corruption::Rollback => {
                let stale = file.previous_durable.clone().expect("filtered above");
                report.detail =
                    format!("restored a stale copy of {} bytes over {} bytes", stale.len(), file.durable.len());
                file.durable = stale.clone();
                file.cache = stale;
                file.pending.clear();
            }
            Corruption::Wipe => unreachable!("handled above"),
        }
        report.paths.push(path);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(3)
    }

    #[test]
    fn power_loss_drops_exactly_the_unsynced_writes() {
        let mut d = NodeDisk::default();
        d.append("log/a", b"synced").unwrap();
        assert!(d.fsync("log/a"));
        d.append("log/a", b"+unsynced").unwrap();
        assert_eq!(d.read("log/a").unwrap(), b"synced+unsynced");
        d.power_loss(false, &mut rng());
        assert_eq!(d.read("log/a").unwrap(), b"synced");
    }

    #[test]
    fn process_crash_keeps_unsynced_writes() {
        let mut d = NodeDisk::default();
        d.append("log/a", b"x").unwrap();
        d.process_crash();
        assert_eq!(d.read("log/a").unwrap(), b"x");
        assert!(d.has_pending("log/a"));
    }

    #[test]
    fn torn_write_leaves_a_proper_prefix() {
        let mut d = NodeDisk::default();
        d.append("log/a", b"head").unwrap();
        d.fsync("log/a");
        d.append("log/a", b"0123456789").unwrap();
        let (path, kept) = d.power_loss(true, &mut rng()).expect("a write was torn");
        assert_eq!(path, "log/a");
        assert!((1..10).contains(&kept));
        let got = d.read("log/a").unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &b"0123456789"[..kept]);
    }

    #[test]
    fn lost_fsync_reports_success_but_power_loss_still_drops() {
        let mut d = NodeDisk::default();
        d.faults.lost_fsync.insert("log".into());
        d.append("log/a", b"x").unwrap();
        assert!(!d.fsync("log/a"));
        d.power_loss(false, &mut rng());
        assert_eq!(d.read("log/a").unwrap(), b"");
    }

    #[test]
    fn enospc_fails_writes_of_that_kind_only() {
        let mut d = NodeDisk::default();
        d.faults.no_space.insert("log".into());
        assert!(matches!(d.append("log/a", b"x"), Err(DiskError::NoSpace { .. })));
        assert!(d.append("snap/a", b"x").is_ok());
    }

    #[test]
    fn corruptions_change_the_durable_image() {
        let mut d = NodeDisk::default();
        d.append("log/a", b"version one").unwrap();
        d.fsync("log/a");
        d.replace("log/a", b"version two!").unwrap();
        d.fsync("log/a");
        let r = d.corrupt("log", Corruption::Rollback, &mut rng());
        assert_eq!(r.paths, vec!["log/a".to_string()]);
        assert_eq!(d.durable("log/a").unwrap(), b"version one");

        let before = d.durable("log/a").unwrap().to_vec();
        d.corrupt("log", Corruption::BitFlip, &mut rng());
        let after = d.durable("log/a").unwrap();
        let differing_bits: u32 = before.iter().zip(after).map(|(a, b)| (a ^ b).count_ones()).sum();
        assert_eq!(differing_bits, 1);

        d.corrupt("log", Corruption::Truncate, &mut rng());
        assert!(d.durable("log/a").unwrap().len() < before.len());

        d.append("snap/x", b"s").unwrap();
        let r = d.corrupt("log", Corruption::Wipe, &mut rng());
        assert_eq!(r.paths.len(), 1);
        assert!(!d.exists("log/a") && d.exists("snap/x"));
    }

    #[test]
    fn list_is_ordered_and_prefix_bounded() {
        let mut d = NodeDisk::default();
        for p in ["log/2", "log/1", "logx", "snap/1"] {
            d.append(p, b"x").unwrap();
        }
        assert_eq!(d.list("log/"), vec!["log/1", "log/2"]);
    }
}
