//! Invariants of the system under test: safety after every event, liveness once faults have
//! healed. Each reads the servers through pure queries and the ghost's memory of the run.
//! (Some invariants are judged as servers observe things, in [`super::observe`].)

pub mod assets;
pub mod meta;
pub mod raft;
pub mod scope;

use sim::{CheckFailure, Cluster, NodeIndex, Touched};

use super::ghost::Ghost;
use crate::meta::PeerId;
use crate::raft::Index;
use crate::server::Server;

/// After every event, where it `touched` (see [`scope`]).
pub fn safety(
    ghost: &Ghost,
    memo: &mut scope::CheckMemo,
    cluster: &Cluster<'_, Server>,
    touched: Touched,
) -> Result<(), CheckFailure> {
    let scope = memo.scope(ghost, cluster, touched);
    raft::safety(ghost, cluster, &scope)?;
    meta::safety(ghost, memo, cluster, touched)
}

/// Once faults healed, until it holds or the run ends.
pub fn liveness(ghost: &Ghost, cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
    raft::liveness(ghost, cluster)?;
    meta::liveness(ghost, cluster)
}

/// The meta group's members as the most advanced running server (highest applied meta index,
/// then lowest id) knows them. A server removed while it was down never learns it and still
/// counts itself in; nobody else does, so liveness owes it nothing.
pub fn meta_members<'a>(running: impl Iterator<Item = (NodeIndex, &'a Server)>) -> &'a [PeerId] {
    let mut best: Option<(Index, &[PeerId])> = None;
    for (_, server) in running {
        let Some(group) = server.meta_group() else { continue };
        let applied = group.node.applied_index();
        if best.is_none_or(|(a, _)| applied > a) {
            best = Some((applied, group.node.peers()));
        }
    }
    best.map(|(_, peers)| peers).unwrap_or_default()
}
