//! A server (re)starting from what its disk holds: the meta group and its local assets, and
//! any raft group started from its files or fresh.

use std::collections::{BTreeMap, BTreeSet};

use super::bugs::{self, ACK_BEFORE_FSYNC, OS_TIME};
use super::client_requests::ClientRequests;
use super::env::{forked_rng, ServerEnv};
use super::group::{Group, Tokens};
use super::group_set::GroupSet;
use super::jetstream::MetaLayer;
use super::routes::Routes;
use super::storage::{GroupFiles, InitialMembership, MetaRemoval, Recovered};
use super::wire::META;
use super::{assets, Server};
use crate::raft::{Config as RaftConfig, HardState, PeerId, RaftNode};

impl Server {
    /// A server with nothing started yet, knowing only itself.
    pub(super) fn new(env: &mut ServerEnv<'_>) -> Self {
        let mut server = Server {
            me: env.node(),
            groups: GroupSet::default(),
            meta_error: None,
            tokens: Tokens::default(),
            now_ms: env.monotonic_ms(),
            wall_ms: env.now_ms(),
            proposals: 0,
            known_servers: BTreeMap::new(),
            named_servers: BTreeSet::from([env.node()]),
            statsz_at_ms: 0,
            announce_at_ms: 0,
            refused_groups: BTreeMap::new(),
            assignments: Default::default(),
            cold_boot_check_at_ms: u64::MAX,
            jetstream_removed: false,
            delayed_answers: Vec::new(),
            requests_off_meta: ClientRequests::default(),
            routes: Routes::default(),
        };
        let own = server.own_stats(env);
        server.known_servers.insert(env.node(), own);
        server
    }

    /// Start JetStream unless this server runs without it: the meta group from its files,
    /// with the local assets restored before its replay (§4).
    pub(super) fn start_jetstream(&mut self, env: &mut ServerEnv<'_>) {
        if env.config().jetstream_disabled.contains(&env.node()) {
            env.trace_with("jetstream-disabled", &(), || "off in this server's config".to_string());
            return;
        }
        // A server that applied its own removal deleted its meta state and keeps JetStream
        // off (`peers::forget_meta_state`); a damaged record refuses the meta group, as any
        // damaged group file does.
        let removed = MetaRemoval::read(env.disk()).map_err(|e| format!("meta group refuses to start: {e}"));
        if let Ok(Some(_)) = removed {
            env.trace_text("jetstream-disabled", "removed from the meta group (on record)");
            self.jetstream_removed = true;
            return;
        }
        match removed.and_then(|_| Self::start_meta(env)) {
            Ok(node) => {
                let snapshot_every = env.config().snapshot_every;
                let ack_early = env.bug(ACK_BEFORE_FSYNC);
                let mut group = Group::new(META, node, snapshot_every, ack_early);
                let (api_level, capacity) =
                    (env.config().api_level(env.node()), env.config().stream_capacity(env.node()));
                let mut meta = Box::new(MetaLayer::new(bugs::meta_bugs(env), api_level, capacity));
                Self::restore_assets(env, &mut meta);
                // A one-server meta group needs no route to end its replay.
                meta.route_up = group.node.peers().len() <= 1;
                group.meta = Some(meta);
                self.groups.insert(META.to_string(), group);
            }
            Err(reason) => {
                env.trace_text("meta-refused", &reason);
                self.meta_error = Some(reason);
            }
        }
        // A healthy cluster elects within one election timeout; ask for stats only after
        // that, so the check costs nothing (no messages) when it is not needed.
        self.cold_boot_check_at_ms = env.monotonic_ms() + env.config().election_timeout_ms_max;
    }

    pub(super) fn raft_config(env: &ServerEnv<'_>) -> RaftConfig {
        let c = env.config();
        RaftConfig {
            id: env.node(),
            heartbeat_ms: c.heartbeat_ms,
            election_timeout_ms_min: c.election_timeout_ms_min,
            election_timeout_ms_max: c.election_timeout_ms_max,
            observer: c.observers.contains(&env.node()),
            max_entries_per_append: c.max_entries_per_append,
            bugs: bugs::raft_bugs(env),
            ..RaftConfig::default()
        }
    }

    /// The meta group's first members: every server unless the scenario names them.
    pub(super) fn initial_peers(env: &ServerEnv<'_>) -> Vec<PeerId> {
        let c = env.config();
        if c.initial_peers.is_empty() {
            (0..env.servers()).collect()
        } else {
            c.initial_peers.clone()
        }
    }

    /// Start the meta group from disk, or fresh. `Err` is the reason to refuse.
    fn start_meta(env: &mut ServerEnv<'_>) -> Result<RaftNode, String> {
        let (config, peers) = (Self::raft_config(env), Self::initial_peers(env));
        Self::start_group_node(env, META, config, peers, false).map_err(|e| format!("meta group refuses to start: {e}"))
    }

    /// Start group `name` from its files, or fresh with `peers` when it has none.
    pub(super) fn start_group_node(
        env: &mut ServerEnv<'_>,
        name: &str,
        config: RaftConfig,
        peers: Vec<PeerId>,
        joining: bool,
    ) -> Result<RaftNode, String> {
        let files = GroupFiles::new(name);
        if files.is_fresh(env.disk()) {
            return Ok(Self::fresh_group_node(env, &files, config, peers, joining));
        }
        // Without a snapshot the log runs from index 1, so replaying it over the membership
        // this node started with gives its membership; the assignment's peers are only a
        // fallback for files written before the record existed.
        let start = files.read_initial_peers(env.disk()).map_err(|e| e.to_string())?;
        let joined = start.as_ref().is_some_and(|s| s.joined);
        let peers = start.map_or(peers, |s| s.peers);
        let mut recovered = files.recover(env.disk()).map_err(|e| e.to_string())?;
        for (path, bytes) in &recovered.torn {
            env.trace_with("torn-tail", &(path.clone(), *bytes), || {
                format!("{path}: {bytes} bytes of a torn frame cut")
            });
        }
        Self::sync_recovered_files(env, &files);
        Self::settle_recovered_state(env, &mut recovered);
        let mut rng = forked_rng(env);
        let now = env.monotonic_ms();
        let mut node =
            RaftNode::restore(config, peers, recovered.hard, recovered.snapshot, recovered.entries, now, &mut rng)
                .map_err(|e| e.to_string())?;
        // A joiner that restarts before a leader brought it up to its commit (the record says
        // so until then) waits again, whatever part of the log reached it.
        if joined {
            node.wait_for_leader();
        }
        if let Some(size) = files.read_cluster_size(env.disk()).map_err(|e| e.to_string())? {
            node.restore_replicated_cluster_size(size as usize);
        }
        Ok(node)
    }

    /// A group with no files: record the membership it starts with, synced at once.
    fn fresh_group_node(
        env: &mut ServerEnv<'_>,
        files: &GroupFiles,
        config: RaftConfig,
        peers: Vec<PeerId>,
        joining: bool,
    ) -> RaftNode {
        let now = env.monotonic_ms();
        let start = InitialMembership { peers: peers.clone(), joined: joining };
        match files.write_initial_peers(env.disk(), &start) {
            Ok(true) => {}
            Ok(false) => env.trace_text("fsync-lost", &files.peers),
            // Not fatal: a restart then falls back to the assignment's peers.
            Err(e) => trace_file_error(env, "peers-record-failed", &files.peers, &e.to_string()),
        }
        let mut node = RaftNode::new(config, peers, now, env.rng());
        if joining {
            node.wait_for_leader();
        }
        node
    }

    /// After a process crash the files still hold writes that only reached the OS cache.
    /// Raft treats everything it recovers as durable (it acknowledges it), so make it so
    /// before the node starts: a blocking fsync in the start path. Without it a power loss
    /// after the restart can take an entry this server acknowledged (found on a stream group,
    /// seed 6229).
    fn sync_recovered_files(env: &mut ServerEnv<'_>, files: &GroupFiles) {
        for path in files.all(env.disk()) {
            if !env.disk().fsync(&path) {
                // The disk lies about this fsync (the world tells the oracle).
                env.trace_text("fsync-lost-at-start", &path);
            }
        }
    }

    /// Make what was read back consistent before raft sees it.
    fn settle_recovered_state(env: &mut ServerEnv<'_>, recovered: &mut Recovered) {
        // Entries of a term reach the log only after that term's hard state was written, but a
        // power loss can keep later writes and drop earlier unsynced ones. No vote or ack left
        // for such a term, so adopting it with no vote is safe.
        let last_term = recovered.entries.last().map(|e| e.term).or(recovered.snapshot.as_ref().map(|s| s.last_term));
        if let Some(t) = last_term.filter(|&t| t > recovered.hard.term) {
            let hard = recovered.hard.term;
            env.trace_with("term-from-log", &(hard, t), || format!("term {hard} -> {t}"));
            recovered.hard = HardState { term: t, voted_for: None, commit: recovered.hard.commit };
        }
        if recovered.dropped_stale > 0 {
            env.trace("stale-entries-dropped", &recovered.dropped_stale);
        }
        let base = recovered.snapshot.as_ref().map_or(0, |s| s.last_index);
        let last_index = recovered.entries.last().map_or(base, |e| e.index);
        if recovered.hard.commit > last_index {
            // Only a disk that lied about an fsync gets here (the pipeline syncs what a commit
            // covers before the commit). The log past the snapshot may not be what was
            // committed, so trust only the snapshot; raft re-learns commit from the leader.
            let commit = recovered.hard.commit;
            env.trace_with("commit-beyond-log", &(commit, last_index), || {
                format!("commit {commit} beyond the last index {last_index}")
            });
            recovered.hard.commit = base;
        }
    }

    pub(super) fn tick_delay_ns(env: &ServerEnv<'_>) -> u64 {
        let tick = env.config().tick_ms * 1_000_000;
        if env.bug(OS_TIME) {
            tick + sim::fixture::os_clock_ns() % 7_000_000
        } else {
            tick
        }
    }

    /// Restore the local streams and consumers from this server's disk, before the meta
    /// group replays: whatever the replay does not assign is an orphan (§4).
    fn restore_assets(env: &mut ServerEnv<'_>, meta: &mut MetaLayer) {
        let (records, refused) = assets::restore(env.disk());
        for error in refused {
            env.trace_text("asset-refused", &error.to_string());
        }
        let (local, homeless) = assets::rebuild(&records);
        for key in homeless {
            env.trace_with("asset-without-stream", &key, || key.to_string());
        }
        if !records.is_empty() {
            env.trace("assets-restored", &records.len());
        }
        meta.local = local;
        meta.asset_files = records.into_iter().collect();
        meta.assets_changed = true;
    }
}

/// Writing `path` (or a group's files) failed: `path: error`.
pub(super) fn trace_file_error(env: &mut ServerEnv<'_>, kind: &'static str, path: &str, error: &str) {
    env.trace_with(kind, &(path, error), || format!("{path}: {error}"));
}
