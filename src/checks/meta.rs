//! Meta-layer invariants (spec §10) over every running server's meta layer.

use std::collections::BTreeMap;

use sim::{CheckFailure, Cluster};

use crate::server::jetstream::MetaLayer;
use crate::server::{Server, META};

fn fail(invariant: &str, node: u32, message: String) -> Result<(), CheckFailure> {
    Err(CheckFailure::new(invariant, Some(node), message))
}

fn layers<'a>(cluster: &'a Cluster<'_, Server>) -> impl Iterator<Item = (u32, &'a Server, &'a MetaLayer)> + 'a {
    cluster.running().filter_map(|(id, s)| s.group(META).and_then(|g| g.meta.as_deref()).map(|m| (id, s, m)))
}

/// After every event: S2 for the meta layer, S4, S9, S10, S16, S19, S20. (S18 is reported
/// by the servers as they apply.)
pub fn safety(cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
    let mut projections: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
    let max_streams = cluster.config.max_streams_per_account;
    for (id, server, meta) in layers(cluster) {
        let state = &meta.state;
        if let Some(term) = meta.leader_term {
            if state.write_error().is_some() {
                return fail("meta-write-error-terminal", id, "acts as meta leader after an apply error".into());
            }
            let needed = cluster.ghost.last_committed_before(term);
            let node = &server.group(META).expect("layer lives in the meta group").node;
            if node.applied_index() < needed && cluster.ghost.tainted.is_empty() {
                return fail(
                    "meta-leader-apply-barrier",
                    id,
                    format!("acts as meta leader of term {term} having applied {} < {needed}", node.applied_index()),
                );
            }
        } else if !meta.inflight.is_empty() {
            return fail("meta-inflight-leader-only", id, "holds inflight proposals while not meta leader".into());
        }
        if let Err(e) = meta.inflight.check() {
            return fail("meta-inflight-structure", id, e);
        }
        if let Err(e) = state.check_structure() {
            return fail("meta-structure", id, e);
        }
        let mut per_account: BTreeMap<&str, u32> = BTreeMap::new();
        for sa in state.streams() {
            if sa.sync.is_empty() {
                return fail("meta-sync-subject", id, format!("stream {} has no sync subject", sa.key()));
            }
            *per_account.entry(sa.account.as_str()).or_default() += 1;
        }
        if let Some(limit) = max_streams {
            if let Some((account, n)) = per_account.iter().find(|(_, &n)| n > limit) {
                return fail("meta-max-streams", id, format!("account {account} has {n} streams, limit {limit}"));
            }
        }
        if state.write_error().is_none() {
            let digest = state.projection_digest();
            match projections.get(&state.applied_index()) {
                Some(&(other, d)) if d != digest && cluster.ghost.tainted.is_empty() => {
                    return fail(
                        "meta-same-index-same-projection",
                        id,
                        format!("projection at index {} differs from n{other}'s", state.applied_index()),
                    );
                }
                _ => {
                    projections.insert(state.applied_index(), (id, digest));
                }
            }
        }
    }
    Ok(())
}

/// After heal, once raft liveness holds: the leader's inflight maps drained (L4) and every
/// member holds the leader's projection (L2).
pub fn liveness(cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
    let Some((leader, _, leader_meta)) = layers(cluster).find(|(_, _, m)| m.leader_term.is_some()) else {
        return Ok(()); // raft liveness reports a missing leader
    };
    let waiting = leader_meta.inflight.streams().count() + leader_meta.inflight.consumers().count();
    if waiting > 0 {
        return fail("meta-inflight-drains", leader, format!("{waiting} inflight proposals never applied"));
    }
    let digest = leader_meta.state.projection_digest();
    for (id, server, meta) in layers(cluster) {
        let member = server.group(META).is_some_and(|g| g.node.peers().contains(&id));
        if member && meta.state.write_error().is_none() && meta.state.projection_digest() != digest {
            return fail("meta-projection-converges", id, "projection differs from the meta leader's".into());
        }
    }
    Ok(())
}
