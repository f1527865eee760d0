//! Assignment results (spec §2.7): a member that cannot create its copy of a new stream
//! reports it to the meta leader, which either re-places the stream in another cluster
//! (delete, then add on new peers) or removes it. Pure: the driver proposes what comes out
//! and, only if both proposals succeed, marks the stream `reassigning` in the inflight maps.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::entry::MetaEntry;
use super::error::ApiError;
use super::inflight::Inflight;
use super::model::{PeerId, StreamAssignment, StreamKey};
use super::request::{Handler, LeaderContext};
use super::state::MetaState;

/// A failed create or update is acted on only this soon after the stream was created: later
/// the stream may hold data, and a member's failure is for health to report, not a reason to
/// delete (NATS uses the same 5 s).
pub const RESULT_WINDOW_MS: u64 = 5_000;

/// A member's report that it could not run its copy of a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResult {
    pub stream: StreamKey,
    /// The group the member was asked to run: results about an older group are stale.
    pub group: String,
    /// The member that failed.
    pub peer: PeerId,
    /// It failed applying an update rather than a create.
    pub update: bool,
    pub error: ApiError,
}

/// `A:S2 in S-R3-ab on n1 (create): insufficient resources`.
impl std::fmt::Display for StreamResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.update { "update" } else { "create" };
        write!(f, "{} in {} on n{} ({what}): {}", self.stream, self.group, self.peer, self.error)
    }
}

/// What the leader does about a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultPlan {
    /// Nothing: the stream is gone, being re-placed, or the result is about another group.
    Ignore(&'static str),
    /// Too late or an update: the stream stays where it is; its health reports the member.
    Keep,
    /// Re-place the stream: propose `delete`, then `add` (a new group in another cluster),
    /// and ignore further results until `add` applies.
    Replace { delete: Box<MetaEntry>, add: Box<MetaEntry> },
    /// The assigned member rejected a new stream: remove it.
    Remove { delete: Box<MetaEntry> },
}

impl ResultPlan {
    /// One word for traces (the entries themselves are traced when proposed).
    pub fn describe(&self) -> String {
        match self {
            ResultPlan::Ignore(why) => format!("ignored: {why}"),
            ResultPlan::Keep => "kept".into(),
            ResultPlan::Replace { add, .. } => match add.as_ref() {
                MetaEntry::AssignStream { sa, .. } => format!("re-placed on {} {:?}", sa.group.name, sa.group.peers),
                _ => "re-placed".into(),
            },
            ResultPlan::Remove { .. } => "removed".into(),
        }
    }
}

/// The leader's answer to `result` (NATS `processStreamAssignmentResults`), against the
/// applied-or-inflight view.
pub fn on_stream_result(
    result: &StreamResult,
    state: &MetaState,
    inflight: &Inflight,
    ctx: &LeaderContext,
    rng: &mut dyn RngCore,
) -> ResultPlan {
    let repeat_replacements = ctx.bugs.reassign_repeated;
    let Some(sa) = inflight.stream_or_inflight(state, &result.stream) else {
        return ResultPlan::Ignore("no such stream");
    };
    if inflight.stream(&result.stream).is_some_and(|op| op.reassigning) && !repeat_replacements {
        return ResultPlan::Ignore("already being re-placed");
    }
    // NATS compares no group here and relies on `reassigning` alone, which a leader change
    // wipes; a late result from the old group could then re-place a healthy new one.
    if sa.group.name != result.group && !repeat_replacements {
        return ResultPlan::Ignore("about another group");
    }
    let fresh = ctx.now_ms.saturating_sub(sa.created_ms) < RESULT_WINDOW_MS;
    if result.update || !fresh {
        return ResultPlan::Keep;
    }
    let delete = MetaEntry::RemoveStream { sa: sa.without_consumers(), reply: None };
    if result.error == ApiError::InsufficientResources && ctx.clusters.len() > 1 {
        if let Some(add) = replaced(sa, state, inflight, ctx, rng) {
            return ResultPlan::Replace { delete: Box::new(delete), add: Box::new(add) };
        }
    }
    ResultPlan::Remove { delete: Box::new(delete) }
}

/// A copy of `sa` on a new group, if the config lets it move and some cluster has room.
fn replaced(
    sa: &StreamAssignment,
    state: &MetaState,
    inflight: &Inflight,
    ctx: &LeaderContext,
    rng: &mut dyn RngCore,
) -> Option<MetaEntry> {
    let config = sa.config().ok()?.into_config().normalized();
    // A stream pinned to a cluster has nowhere else to go.
    if config.placement.is_some() {
        return None;
    }
    let handler = Handler { state, view: inflight, limits: inflight, ctx };
    // NATS tries the client's cluster first again; with the failed peers known to be full,
    // that is where the stream was.
    let was_in = ctx.clusters.iter().find(|c| sa.group.peers.iter().any(|p| c.peers.contains(p)));
    let peers = handler.place_stream(&config, was_in.map(|c| c.name.as_str()), rng).ok()?;
    let group = handler.new_group("S", peers, rng).ok()?;
    let moved = StreamAssignment { group, ..sa.without_consumers() };
    Some(MetaEntry::AssignStream { sa: moved, reply: None })
}
