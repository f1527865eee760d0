//! The JetStream-style meta layer, sans-IO: the replicated assignments of streams and
//! consumers, the state machine that applies meta log entries, the leader's inflight
//! bookkeeping and request handling, and the health queries. Time arrives as `now_ms`
//! arguments and randomness as `&mut dyn RngCore`; all maps are ordered, so the same inputs
//! give the same outputs. The driver (`server`) owns raft, the network and the local files.
//!
//! - [`model`]: keys, groups, assignments, configs and the supported/unsupported decode (§1, §7).
//! - [`entry`]: meta log operations and their versioned wire form (§2).
//! - [`state`]: the applied state and `apply` (§2.1–2.5, §2.8), with the effects it asks for.
//! - [`error`]: why a request or an apply was refused.
//! - [`bugs`]: the meta layer's bug switches (historic hazards the simulator re-opens).
//! - [`inflight`]: the leader's proposed-but-unapplied assignments (§5).
//! - [`view`]: the "applied or inflight" views over state and inflight (§5.3).
//! - [`request`]: the leader's request validation and placement (§2.7, §9.1).
//! - [`peers`]: the leader's re-placement of streams on removed or missing peers (§8).
//! - [`empty`]: members' reports of groups they hold nothing of, and the leader's start-over (§8.3).
//! - [`results`]: the leader's answer to a member's failed create: re-place or remove (§2.7).
//! - [`recovery`]: staged recovery, snapshot diffs and the end-of-recovery flush (§3).
//! - [`local`]: this server's local streams and consumers, and orphans (§4).
//! - [`queries`]: leadership, currentness and health queries (§6).
//! - [`revision`]: change stamps, so the oracle re-checks only what changed.

pub mod bugs;
mod config_memo;
pub mod empty;
pub mod entry;
pub mod error;
mod group_names;
pub mod inflight;
pub mod local;
pub mod model;
pub mod peers;
pub mod projection;
pub mod queries;
pub mod recovery;
pub mod request;
pub mod results;
pub mod revision;
pub mod scale;
pub mod state;
pub mod view;

#[cfg(test)]
mod empty_tests;
#[cfg(test)]
mod peers_tests;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;

pub use bugs::MetaBugs;
pub use empty::{on_empty_report, EmptyGroupReport, EmptyPlan, EmptyReports, GroupAsset};
pub use entry::{DecodeError, MetaEntry, OpCode, Reply};
pub use error::{ApiError, ApplyError};
pub use inflight::{Inflight, InflightOp};
pub use local::{direct_consumer_name, wanted_direct_consumers, LocalAsset, LocalAssets, LocalChange, Orphans};
pub use model::{
    replicas_at_birth, ConsumerAssignment, ConsumerConfig, ConsumerKey, Decoded, PeerId, Placement, Projection,
    RaftGroup, StreamAssignment, StreamConfig, StreamKey, StreamSource, API_LEVEL, REQUIRED_LEVEL_KEY,
};
pub use peers::{consumer_peers_wanted, peers_need_reconcile, reconcile_peers, stale_peers, PeerRemap};
pub use queries::{HealthContext, NodeFacts};
pub use recovery::{RecoveryUpdates, SnapshotDiff};
pub use request::{handle, sync_repairs, ClusterPeers, LeaderContext, MetaRequest};
pub use results::{on_stream_result, ResultPlan, StreamResult, RESULT_WINDOW_MS};
pub use revision::Revision;
pub use scale::{shrink_removal, shrink_to_group, ShrinkMember, HEARD_LATELY_HEARTBEATS};
pub use state::{Effect, MetaState, Mirror, Outcome};
