//! The meta leader's cluster size check (spec §8.4, NATS `checkClusterSize`). In a mixed
//! cluster some configured servers run without JetStream and never join the meta group, yet
//! the group counts quorums against every configured member. The cold-boot check
//! ([`Server::cold_boot_check`]) lowers the size before any leader exists; this one covers a
//! group that elected a leader anyway (enough JetStream servers for the configured quorum)
//! and would lose it with one more server down: the leader brings the size down to the
//! JetStream servers it sees, and its peer-state entry tells the followers (L10).
//!
//! It runs on election and with every periodic meta snapshot, as NATS runs it on its
//! compaction ticker. It only reads, unless it adjusts: a cluster whose size needs nothing
//! draws no randomness, sends nothing and traces nothing, so runs without mixed mode replay
//! exactly as before.

use super::env::ServerEnv;
use super::Server;

/// What `checkClusterSize` decides, from the current cluster `size`, the members `known` to
/// run the group, the servers heard from at all (`active`) and how many of those run
/// JetStream: the size to adjust to, or `None`.
pub fn cluster_size_target(size: usize, known: usize, active: usize, jetstream: usize) -> Option<usize> {
    if known >= size {
        return None; // every member the size counts runs the group
    }
    if active < size {
        return None; // too few servers heard from to tell who lacks JetStream; next time
    }
    // `AdjustClusterSize` never goes below two.
    let target = jetstream.max(2);
    (target < size).then_some(target)
}

impl Server {
    /// NATS `checkClusterSize` on the acting meta leader: adjust the raft cluster size to the
    /// JetStream servers heard from when fewer of them than the size exist.
    pub(super) fn check_cluster_size(&mut self, env: &mut ServerEnv<'_>) {
        let Some(group) = self.groups.meta_mut() else { return };
        let Some(meta) = group.meta.as_deref_mut() else { return };
        let Some(term) = meta.leader_term else { return };
        // NRG's known peers are the members that ever joined the group, up or down; a server
        // without JetStream never joins. Here every configured server starts as a member, so
        // a member counts as known unless its stats say it runs no JetStream.
        let known = group.node.peers().iter().filter(|p| self.known_servers.get(p).is_none_or(|s| s.jetstream)).count();
        let active = self.known_servers.len();
        let jetstream = self.known_servers.values().filter(|s| s.jetstream).count();
        let size = group.node.cluster_size();
        // Judged only once enough servers were heard from: before a server's stats arrive it
        // counts as known, so "every member runs the group" alone may be ignorance.
        if active >= size {
            meta.cluster_size_judged_term = Some(term);
        }
        let Some(target) = cluster_size_target(size, known, active, jetstream) else { return };
        match group.node.adjust_cluster_size(env.monotonic_ms(), term, target) {
            Ok(_) => {
                let quorum = group.node.quorum_size();
                env.trace_with("cluster-size-adjusted", &(target, quorum), || {
                    format!("{target} servers, quorum {quorum}")
                })
            }
            Err(e) => env.trace_text("cluster-size-refused", &e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_size_target;

    #[test]
    fn adjusts_only_short_of_jetstream_servers_once_enough_servers_were_heard() {
        // Three JetStream servers of five, all heard from; two members run no JetStream.
        assert_eq!(cluster_size_target(5, 3, 5, 3), Some(3));
        // Every member runs the group: nothing to do.
        assert_eq!(cluster_size_target(5, 5, 5, 3), None);
        // Not every server heard from yet: no judgement.
        assert_eq!(cluster_size_target(5, 3, 4, 3), None);
        // Enough JetStream servers (one member merely down): the size stays.
        assert_eq!(cluster_size_target(5, 4, 5, 5), None);
        // Already adjusted: stable.
        assert_eq!(cluster_size_target(3, 3, 5, 3), None);
        // The floor of two, and no repeated adjustment to it.
        assert_eq!(cluster_size_target(3, 1, 3, 1), Some(2));
        assert_eq!(cluster_size_target(2, 1, 3, 1), None);
    }
}
