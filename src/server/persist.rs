//! The persist pipeline of one raft group: each `Ready` goes to disk in stages, each ending in
//! fsyncs, and only once every stage is durable is it handed back to be let out.
//!
//! The stages: snapshot file, the record naming the snapshot durable, hard state, then the
//! log. The snapshot goes first because the hard state's commit may point at it: a crash
//! between the two must not leave a commit with nothing under it. This file knows disks and
//! fsync tokens, nothing of what the entries mean.

use std::collections::{BTreeMap, BTreeSet};

use super::crash_points::{self, CrashPoint};
use super::env::ServerEnv;
use super::storage::{GroupFiles, InitialMembership, WalRecord};
use crate::raft::{Applied, Index, Ready};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Snapshot,
    SnapshotMark,
    HardState,
    Log,
    Release,
}

impl Stage {
    fn next(self) -> Stage {
        match self {
            Stage::Snapshot => Stage::SnapshotMark,
            Stage::SnapshotMark => Stage::HardState,
            Stage::HardState => Stage::Log,
            Stage::Log | Stage::Release => Stage::Release,
        }
    }
}

/// A `Ready` on its way to disk.
#[derive(Debug)]
struct InFlight {
    ready: Ready,
    stage: Stage,
    waiting: BTreeSet<u64>,
    /// The last write failed (ENOSPC); the stage is retried on the next tick.
    blocked: bool,
}

/// One group's files and the `Ready` being made durable, if any.
#[derive(Debug)]
pub struct Pipeline {
    files: GroupFiles,
    current: Option<InFlight>,
    /// The last storage write that failed (e.g. a full disk), while the pipeline waits to retry
    /// it. Unlike NRG's sticky write error it clears once a write succeeds again: here a blocked
    /// stage is retried, so the error says "stuck now", which is what health reports need.
    pub write_error: Option<String>,
}

impl Pipeline {
    pub fn new(files: GroupFiles) -> Self {
        Pipeline { files, current: None, write_error: None }
    }

    pub fn files(&self) -> &GroupFiles {
        &self.files
    }

    /// Whether a `Ready` is on its way to disk.
    pub fn busy(&self) -> bool {
        self.current.is_some()
    }

    /// The first log index the `Ready` on its way to disk writes or truncates, if any: raft
    /// counts its entries durable as soon as it hands them out, so a commit at or past this
    /// index is not yet one (a crash before the log stage loses the entries).
    pub fn writing_from(&self) -> Option<Index> {
        let ready = &self.current.as_ref()?.ready;
        let first_entry = ready.entries.first().map(|e| e.index);
        match (ready.truncate_from, first_entry) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (t, e) => t.or(e),
        }
    }

    /// Whether a snapshot of the current `Ready` is being written or waits for its durable
    /// mark.
    pub fn writing_snapshot(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|p| p.ready.snapshot.is_some() && matches!(p.stage, Stage::Snapshot | Stage::SnapshotMark))
    }

    /// Whether a full disk stopped the current stage until the next retry.
    pub fn blocked(&self) -> bool {
        self.current.as_ref().is_some_and(|p| p.blocked)
    }

    /// The current stage and whether it is blocked, for reports.
    pub fn describe(&self) -> String {
        self.current
            .as_ref()
            .map_or("no".to_string(), |p| format!("{:?}{}", p.stage, if p.blocked { " blocked" } else { "" }))
    }

    /// Take a `Ready` to make durable; the pipeline must be idle.
    pub fn start(&mut self, ready: Ready) {
        assert!(self.current.is_none(), "one Ready at a time");
        self.current = Some(InFlight { ready, stage: Stage::Snapshot, waiting: BTreeSet::new(), blocked: false });
    }

    /// Whether `ready` has nothing to write, as most heartbeats and their answers have (only
    /// messages to send and entries to apply): every stage would pass it with no write and no
    /// fsync, and clear the write error as a write that succeeds does. The caller lets it out
    /// at once, with the same effect and none of the stages' work. The pipeline must be idle.
    pub fn passes_unwritten(&mut self, ready: &Ready) -> bool {
        assert!(self.current.is_none(), "one Ready at a time");
        let unwritten = ready.snapshot.is_none()
            && ready.base_peers.is_none()
            && ready.hard_state.is_none()
            && ready.truncate_from.is_none()
            && ready.entries.is_empty();
        if unwritten {
            self.write_error = None;
        }
        unwritten
    }

    /// An fsync completed: true when it was the last the current stage waited for.
    pub fn fsync_done(&mut self, token: u64) -> bool {
        self.current.as_mut().is_some_and(|p| p.waiting.remove(&token) && p.waiting.is_empty())
    }

    /// Lift a block so the stage is tried again; false when nothing was blocked.
    pub fn unblock(&mut self) -> bool {
        match self.current.as_mut().filter(|p| p.blocked) {
            Some(p) => {
                p.blocked = false;
                true
            }
            None => false,
        }
    }

    /// Run stages until one waits on fsyncs or a write fails (`None`), or the `Ready` is
    /// durable: then it is handed back, to be let out.
    pub fn drive(&mut self, env: &mut ServerEnv<'_>, tokens: &mut Tokens, group: &str) -> Option<Ready> {
        loop {
            let p = self.current.as_mut().expect("driving a Ready");
            if !p.waiting.is_empty() {
                return None;
            }
            p.blocked = false;
            if p.stage == Stage::Release {
                return self.current.take().map(|p| p.ready);
            }
            let written = Self::write_stage(&self.files, env, &p.ready, p.stage);
            let p = self.current.as_mut().expect("still persisting");
            match written {
                Ok(paths) => {
                    self.write_error = None;
                    if let Some(point) = crash_point_after(p.stage, &p.ready).filter(|_| !paths.is_empty()) {
                        crash_points::reach(env, point);
                    }
                    for path in paths {
                        let token = tokens.next(group);
                        p.waiting.insert(token);
                        env.fsync(&path, token);
                    }
                    p.stage = p.stage.next();
                }
                Err(e) => {
                    p.blocked = true;
                    env.trace_text("write-error", &e.to_string());
                    self.write_error = Some(e.to_string());
                    return None;
                }
            }
        }
    }

    /// Write what `stage` of `ready` holds; the paths to sync.
    fn write_stage(
        files: &GroupFiles,
        env: &mut ServerEnv<'_>,
        ready: &Ready,
        stage: Stage,
    ) -> Result<Vec<String>, sim::disk::DiskError> {
        match stage {
            Stage::Snapshot => match &ready.snapshot {
                Some(snap) => files.write_snapshot(env.disk(), snap).map(|path| vec![path]),
                None => Ok(vec![]),
            },
            Stage::SnapshotMark => match &ready.snapshot {
                Some(snap) => {
                    files.mark_snapshot_durable(env.disk(), snap.last_index).map(|()| vec![files.state.clone()])
                }
                None => Ok(vec![]),
            },
            Stage::HardState => {
                let mut synced = Vec::new();
                if let Some(peers) = &ready.base_peers {
                    // The node took its leader's base membership: a restart counts from it.
                    // A joiner's record keeps saying "joined" until it caught up (a lost or
                    // damaged record counts as one: a restart then waits for a leader again).
                    let joined = files.read_initial_peers(env.disk()).ok().flatten().is_none_or(|s| s.joined);
                    let start = InitialMembership { peers: peers.clone(), joined };
                    files.replace_initial_peers(env.disk(), &start)?;
                    synced.push(files.peers.clone());
                }
                if let Some(hard) = ready.hard_state {
                    files.append_hard_state(env.disk(), hard)?;
                    synced.push(files.state.clone());
                }
                Ok(synced)
            }
            Stage::Log => {
                let mut result = Ok(());
                if let Some(from) = ready.truncate_from {
                    result = result.and_then(|()| files.append_wal(env.disk(), &WalRecord::TruncateFrom(from)));
                }
                if !ready.entries.is_empty() {
                    let record = WalRecord::Entries(ready.entries.clone());
                    result = result.and_then(|()| files.append_wal(env.disk(), &record));
                }
                let touched = ready.truncate_from.is_some() || !ready.entries.is_empty();
                result.map(|()| if touched { vec![files.wal.clone()] } else { vec![] })
            }
            Stage::Release => unreachable!("the release stage writes nothing"),
        }
    }
}

/// The risky moment a stage of `ready` leaves behind once written, its fsyncs still pending.
fn crash_point_after(stage: Stage, ready: &Ready) -> Option<CrashPoint> {
    // A leader's snapshot comes with the truncation of the log it replaces, and is applied
    // on release; a compaction's is the node's own.
    let install = ready.applied.iter().any(|a| matches!(a, Applied::Snapshot(_)));
    match stage {
        Stage::Snapshot => Some(CrashPoint::SnapshotWritten),
        Stage::SnapshotMark if install => Some(CrashPoint::InstallMarked),
        Stage::SnapshotMark => Some(CrashPoint::SnapshotMarked),
        Stage::Log if ready.truncate_from.is_some() && install => Some(CrashPoint::InstallTruncated),
        Stage::Log if ready.truncate_from.is_some() => Some(CrashPoint::LogTruncated),
        Stage::HardState | Stage::Log | Stage::Release => None,
    }
}

/// fsync tokens, each remembering the group that asked.
#[derive(Debug, Default)]
pub struct Tokens {
    next: u64,
    owners: BTreeMap<u64, String>,
}

/// Outstanding fsyncs per server are bounded by the pipeline (a few per group); this guards
/// against a leak.
const TOKENS_OUTSTANDING_MAX: usize = 10_000;

impl Tokens {
    pub fn next(&mut self, group: &str) -> u64 {
        assert!(self.owners.len() < TOKENS_OUTSTANDING_MAX, "fsync tokens leak");
        self.next += 1;
        self.owners.insert(self.next, group.to_string());
        self.next
    }

    pub fn owner(&mut self, token: u64) -> Option<String> {
        self.owners.remove(&token)
    }

    /// A group stopped: its outstanding fsyncs must not reach a later group of that name.
    pub fn forget_group(&mut self, group: &str) {
        self.owners.retain(|_, owner| owner != group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Snapshot;

    fn snapshot() -> Snapshot {
        Snapshot { last_index: 9, last_term: 2, peers: vec![0, 1, 2], data: vec![] }
    }

    /// Only a `Ready` with nothing for any stage to write skips the stages, and it clears the
    /// write error as the stages' empty writes would.
    #[test]
    fn only_a_ready_with_nothing_to_write_passes_unwritten() {
        use crate::raft::{Entry, EntryData, HardState, Message};
        let mut pipeline = Pipeline::new(GroupFiles::new("g"));
        let heartbeat_answer = Ready {
            messages: vec![(1, Message::TimeoutNow { term: 3 })],
            applied: vec![Applied::Snapshot(snapshot())],
            ..Ready::default()
        };
        pipeline.write_error = Some("disk full".into());
        assert!(pipeline.passes_unwritten(&heartbeat_answer));
        assert_eq!(pipeline.write_error, None, "as a write that succeeds clears it");
        let written = [
            Ready { hard_state: Some(HardState { term: 3, voted_for: None, commit: 0 }), ..Ready::default() },
            Ready { truncate_from: Some(4), ..Ready::default() },
            Ready { entries: vec![Entry { index: 1, term: 1, data: EntryData::Normal(vec![]) }], ..Ready::default() },
            Ready { snapshot: Some(snapshot()), ..Ready::default() },
            Ready { base_peers: Some(vec![0, 1, 2]), ..Ready::default() },
        ];
        for ready in written {
            pipeline.write_error = Some("disk full".into());
            assert!(!pipeline.passes_unwritten(&ready), "{ready:?}");
            assert!(pipeline.write_error.is_some(), "kept until a write succeeds");
            assert!(!pipeline.busy(), "the caller starts it");
        }
    }

    #[test]
    fn each_stage_of_an_install_leaves_its_own_crash_point() {
        let install = Ready {
            snapshot: Some(snapshot()),
            truncate_from: Some(10),
            applied: vec![Applied::Snapshot(snapshot())],
            ..Ready::default()
        };
        let after = |stage| crash_point_after(stage, &install);
        assert_eq!(after(Stage::Snapshot), Some(CrashPoint::SnapshotWritten));
        assert_eq!(after(Stage::SnapshotMark), Some(CrashPoint::InstallMarked));
        assert_eq!(after(Stage::HardState), None);
        assert_eq!(after(Stage::Log), Some(CrashPoint::InstallTruncated));
    }

    #[test]
    fn a_compaction_and_a_conflict_truncation_are_told_apart_from_an_install() {
        let compaction = Ready { snapshot: Some(snapshot()), ..Ready::default() };
        assert_eq!(crash_point_after(Stage::SnapshotMark, &compaction), Some(CrashPoint::SnapshotMarked));
        assert_eq!(crash_point_after(Stage::Log, &compaction), None);
        let conflict = Ready { truncate_from: Some(4), ..Ready::default() };
        assert_eq!(crash_point_after(Stage::Log, &conflict), Some(CrashPoint::LogTruncated));
    }
}
