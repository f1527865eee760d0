//! The risky moments a server marks (FoundationDB's BUGGIFY): with crash points on, the world
//! may crash the server, or cut its power, right after the input that reached one. Each is
//! also a coverage probe (`crash-point.<name>`), hit whenever the moment is reached, so a
//! campaign shows which moments it ever put a crash at.

use sim::coverage::ProbeInfo;

use super::env::ServerEnv;

macro_rules! crash_points {
    ($($variant:ident => $slug:literal, $what:literal;)*) => {
        /// A moment after which a crash tests what the server made durable first.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum CrashPoint {
            $($variant,)*
        }

        impl CrashPoint {
            pub const ALL: &'static [CrashPoint] = &[$(CrashPoint::$variant,)*];

            /// The name in the trace's `crash-point` event (its digest is the name's).
            pub fn name(self) -> &'static str {
                match self {
                    $(CrashPoint::$variant => $slug,)*
                }
            }

            /// The coverage probe for reaching it.
            pub fn probe(self) -> &'static str {
                match self {
                    $(CrashPoint::$variant => concat!("crash-point.", $slug),)*
                }
            }

            pub fn what(self) -> &'static str {
                match self {
                    $(CrashPoint::$variant => $what,)*
                }
            }
        }
    };
}

crash_points! {
    VoteSent => "vote-sent", "a granted vote was sent (its term and vote synced first)";
    AppendAcknowledged => "append-acknowledged", "a follower acknowledged entries (synced first)";
    LeaderCommitted => "leader-committed", "a leader's commit index advanced";
    BecameLeader => "became-leader", "a candidate became leader";
    SnapshotWritten => "snapshot-written", "a snapshot file was written, before it is named durable";
    SnapshotMarked => "snapshot-marked", "a compaction's snapshot was named durable, before the log and hard state that follow it are written";
    InstallMarked => "install-marked", "a leader's snapshot was named durable, before the log it replaces is truncated";
    InstallTruncated => "install-truncated", "the log a leader's snapshot replaces was truncated, before the snapshot is applied";
    LogTruncated => "log-truncated", "a follower truncated conflicting entries, before it acknowledges the leader's";
    RecoveryFlushed => "recovery-flushed", "a meta recovery flushed its staged changes, before its snapshot is durable";
    OrphansRemoved => "orphans-removed", "the orphan check removed local assets, before the asset records are rewritten";
    StepdownHandedOver => "stepdown-handed-over", "a leader stepped down and sent its chosen peer the hand-over";
}

/// Reach `point`: count it, and let the world crash the server right after this input.
pub fn reach(env: &mut ServerEnv<'_>, point: CrashPoint) {
    env.probe(point.probe());
    env.crash_point(point.name());
}

/// The catalogue's entries for every crash point.
pub fn probes() -> impl Iterator<Item = ProbeInfo> {
    CrashPoint::ALL.iter().map(|p| ProbeInfo::new(p.probe(), p.what()))
}
