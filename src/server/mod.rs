//! One server: its raft groups (the meta group for now), their files, and the driver that runs
//! them on the simulator's network, disk and clock. This is the thin, effectful shell around the
//! sans-IO core in [`crate::raft`].

pub mod applied;
pub mod assets;
mod cluster_size;
pub mod group;
pub mod health;
mod info;
pub mod jetstream;
pub mod ops;
mod peers;
mod publish;
mod results;
pub mod storage;

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use sim::{BugSwitch, CheckFailure, Cluster, Env, Fault, NodeIndex, NodeStatus, System};

use crate::checks::{self, Ghost};
use crate::meta::{self, MetaBugs, MetaRequest, Reply};
use crate::raft::{Config as RaftConfig, EntryData, HardState, PeerId, RaftBugs, RaftNode, Role};
use group::{Group, Tokens};
use jetstream::{Answer, MetaLayer, FILLER_TAG};
use ops::{
    ClusterSpec, MetaExpect, MetaOp, ServerApiLevel, ServerCapacity, ServerConfig, ServerMsg, PROPOSE_COUNT_MAX,
};
use storage::{GroupFiles, InitialMembership};

/// The meta group's name.
pub const META: &str = "meta";

pub const BUG_COMMIT_OLD_TERM: &str = "raft-commit-old-term";
pub const BUG_ACK_BEFORE_FSYNC: &str = "raft-ack-before-fsync";
pub const BUG_VOTE_NOT_PERSISTED: &str = "raft-vote-not-persisted";
pub const BUG_OS_TIME: &str = "fixture-os-time";
pub const BUG_META_NO_INFLIGHT: &str = "meta-no-inflight";
pub const BUG_META_LIMITS_IGNORE_INFLIGHT: &str = "meta-limits-ignore-inflight";
pub const BUG_META_LEADER_BEFORE_BARRIER: &str = "meta-leader-before-barrier";
pub const BUG_PUBLISH_ACK_BEFORE_COMMIT: &str = "publish-ack-before-commit";
pub const BUG_META_REASSIGN_REPEATED: &str = "meta-reassign-repeated";
pub const BUG_ORPHAN_CHECK_BEFORE_SYNC: &str = "orphan-check-before-sync";
pub const BUG_ORPHAN_CHECK_DELETES_DIRECT: &str = "orphan-check-deletes-direct-consumers";
pub const BUG_PEER_REMOVE_REPLY_EARLY: &str = "peer-remove-reply-early";
pub const BUG_BOOT_SIZE_COUNTS_NON_MEMBERS: &str = "boot-size-counts-non-members";
pub const BUG_RECOVERY_KEEP_CONSUMER: &str = "recovery-keep-consumer-on-stream-remove";
pub const BUG_RECOVERY_SNAPSHOT_NO_RECONCILE: &str = "recovery-snapshot-no-reconcile";
pub const BUG_SNAPSHOT_INCLUDES_INFLIGHT: &str = "snapshot-includes-inflight";

const TICK_TIMER: u64 = 0;
/// The meta group snapshots every minute, and retries after 15 s when one failed (§3.7).
const SNAPSHOT_INTERVAL_MS: u64 = 60_000;
const SNAPSHOT_RETRY_MS: u64 = 15_000;
/// NRG checks the cluster size every second until a leader was seen.
const COLD_BOOT_CHECK_MS: u64 = 1_000;

/// Where a client's request goes first.
enum RequestRoute {
    /// This server's meta layer leads.
    Here,
    /// The meta leader this server knows.
    Leader(NodeIndex),
    /// No leader known: the request times out.
    Nowhere,
}

pub struct Server {
    /// This server's index, which is also its peer id in every group.
    me: NodeIndex,
    groups: BTreeMap<String, Group>,
    /// Why the meta group refused to start, if it did.
    meta_error: Option<String>,
    tokens: Tokens,
    now_ms: u64,
    /// This server's wall clock at its last input: assignment created times are the leader's
    /// wall clock, and health compares them with ours (the consumer creation grace, §6).
    wall_ms: u64,
    proposals: u64,
    /// Stream and consumer groups whose files refused to load, with the reason.
    refused_groups: BTreeMap<String, String>,
    /// Servers heard from (including this one) and their latest stats.
    known_servers: BTreeMap<NodeIndex, results::ServerStats>,
    /// When this server next broadcasts its stats, on its monotonic clock.
    statsz_at_ms: u64,
    /// Answers held back until their time (offline info answers wait, so that a server that
    /// runs the asset answers first, §7): due time on the monotonic clock, client's server,
    /// request, answer. Bounded by [`info::DELAYED_ANSWERS_MAX`].
    delayed_answers: Vec<(u64, NodeIndex, u64, Answer)>,
    /// The next cold-boot cluster size check, on this server's monotonic clock (run from the
    /// tick rather than its own timer: a timer is a task, and tasks reorder simultaneous events).
    cold_boot_check_at_ms: u64,
    /// This server applied its own removal from the meta group: JetStream is off until a
    /// restart (§8.2).
    jetstream_removed: bool,
}

impl Server {
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Why group `name`'s files refused to load here, if they did.
    pub fn group_refused(&self, name: &str) -> Option<&str> {
        self.refused_groups.get(name).map(String::as_str)
    }

    /// Every raft group this server runs, the meta group among them.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn meta_error(&self) -> Option<&str> {
        self.meta_error.as_deref()
    }

    /// This server's clock at its last input.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn raft_config(env: &Env<'_, Self>) -> RaftConfig {
        let c = env.config();
        RaftConfig {
            id: env.node(),
            heartbeat_ms: c.heartbeat_ms,
            election_timeout_ms_min: c.election_timeout_ms_min,
            election_timeout_ms_max: c.election_timeout_ms_max,
            observer: c.observers.contains(&env.node()),
            max_entries_per_append: c.max_entries_per_append,
            bugs: RaftBugs {
                commit_old_term: env.bug(BUG_COMMIT_OLD_TERM),
                ack_before_fsync: env.bug(BUG_ACK_BEFORE_FSYNC),
                vote_not_persisted: env.bug(BUG_VOTE_NOT_PERSISTED),
            },
            ..RaftConfig::default()
        }
    }

    fn initial_peers(env: &Env<'_, Self>) -> Vec<PeerId> {
        let c = env.config();
        if c.initial_peers.is_empty() {
            (0..env.servers()).collect()
        } else {
            c.initial_peers.clone()
        }
    }

    /// Start the meta group from disk, or fresh. `Err` is the reason to refuse.
    fn start_meta(env: &mut Env<'_, Self>) -> Result<RaftNode, String> {
        let (config, peers) = (Self::raft_config(env), Self::initial_peers(env));
        Self::start_group_node(env, META, config, peers, false).map_err(|e| format!("meta group refuses to start: {e}"))
    }

    /// Start group `name` from its files, or fresh with `peers` when it has none.
    fn start_group_node(
        env: &mut Env<'_, Self>,
        name: &str,
        config: RaftConfig,
        peers: Vec<PeerId>,
        joining: bool,
    ) -> Result<RaftNode, String> {
        let files = GroupFiles::new(name);
        let now = env.monotonic_ms();
        if files.is_fresh(env.disk()) {
            let start = InitialMembership { peers: peers.clone(), joined: joining };
            match files.write_initial_peers(env.disk(), &start) {
                Ok(true) => {}
                Ok(false) => {
                    env.trace("fsync-lost", &files.peers);
                    let me = env.node();
                    env.ghost().tainted.insert(me);
                }
                // Not fatal: a restart then falls back to the assignment's peers.
                Err(e) => env.trace("peers-record-failed", &(files.peers.clone(), e.to_string())),
            }
            let mut node = RaftNode::new(config, peers, now, env.rng());
            if joining {
                node.wait_for_leader();
            }
            return Ok(node);
        }
        // Without a snapshot the log runs from index 1, so replaying it over the membership
        // this node started with gives its membership; the assignment's peers are only a
        // fallback for files written before the record existed.
        let start = files.read_initial_peers(env.disk()).map_err(|e| e.to_string())?;
        let joined = start.as_ref().is_some_and(|s| s.joined);
        let peers = start.map_or(peers, |s| s.peers);
        let mut recovered = files.recover(env.disk()).map_err(|e| e.to_string())?;
        for (path, bytes) in &recovered.torn {
            env.trace("torn-tail", &(path.clone(), *bytes));
        }
        // After a process crash the files still hold writes that only reached the OS cache.
        // Raft treats everything it recovers as durable (it acknowledges it), so make it so
        // before the node starts: a blocking fsync in the start path. Without it a power loss
        // after the restart can take an entry this server acknowledged (found on a stream
        // group, seed 6229).
        for path in files.all(env.disk()) {
            if !env.disk().fsync(&path) {
                // The disk lies about this fsync: its promises are void from here on.
                env.trace("fsync-lost-at-start", &path);
                let me = env.node();
                env.ghost().tainted.insert(me);
            }
        }
        // Entries of a term reach the log only after that term's hard state was written, but a
        // power loss can keep later writes and drop earlier unsynced ones. No vote or ack left
        // for such a term, so adopting it with no vote is safe.
        let last_term = recovered.entries.last().map(|e| e.term).or(recovered.snapshot.as_ref().map(|s| s.last_term));
        if let Some(t) = last_term.filter(|&t| t > recovered.hard.term) {
            env.trace("term-from-log", &(recovered.hard.term, t));
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
            env.trace("commit-beyond-log", &(recovered.hard.commit, last_index));
            recovered.hard.commit = base;
        }
        let rng = env.rng().next_u64();
        let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(rng);
        let mut node =
            RaftNode::restore(config, peers, recovered.hard, recovered.snapshot, recovered.entries, now, &mut rng)
                .map_err(|e| e.to_string())?;
        // A joiner that restarts before any data reached it still has nothing to offer.
        if joined && node.last_index() == 0 {
            node.wait_for_leader();
        }
        Ok(node)
    }

    fn tick_delay_ns(env: &Env<'_, Self>) -> u64 {
        let tick = env.config().tick_ms * 1_000_000;
        if env.bug(BUG_OS_TIME) {
            tick + sim::fixture::os_clock_ns() % 7_000_000
        } else {
            tick
        }
    }

    /// Run exactly the stream and consumer groups the meta layer's local assets call for:
    /// start missing ones (from their files after a restart), stop the rest, and delete the
    /// files of groups no local asset refers to any more.
    fn reconcile_groups(&mut self, env: &mut Env<'_, Self>) -> Vec<String> {
        let mut started = Vec::new();
        let Some(meta) = self.groups.get_mut(META).and_then(|g| g.meta.as_deref_mut()) else { return started };
        if !meta.assets_changed {
            return started;
        }
        meta.assets_changed = false;
        let (desired, kept) = (meta.desired_groups(), meta.kept_groups());
        if !assets::sync(env.disk(), &mut meta.asset_files, assets::wanted(&meta.local)) {
            env.trace("fsync-lost", &"assets");
            let me = env.node();
            env.ghost().tainted.insert(me);
        }
        // An R1 stream's messages go with the last asset that refers to its group.
        for path in env.disk().list(storage::MessageFile::PREFIX) {
            if !kept.contains(&path[storage::MessageFile::PREFIX.len()..]) {
                env.disk().remove(&path);
            }
        }
        let stale: Vec<String> =
            self.groups.keys().filter(|n| *n != META && !desired.contains_key(*n)).cloned().collect();
        self.refused_groups.retain(|name, _| desired.contains_key(name));
        for name in stale {
            self.groups.remove(&name);
            self.tokens.forget_group(&name);
            if !kept.contains(&name) {
                GroupFiles::new(&name).remove_all(env.disk());
            }
            env.trace("group-stopped", &name);
        }
        for (name, group) in desired {
            if self.groups.contains_key(&name) {
                continue;
            }
            // Asset groups are managed (NRG): the meta layer dictates their members, and the
            // re-add ban guards only the meta group's automatic adds. With it, a leader acting
            // on a stale assignment that dropped a member could not take it back for five
            // minutes (seed 9778 of `churn`).
            let config = RaftConfig { observer: false, peer_readd_ban_ms: 0, ..Self::raft_config(env) };
            // A group with no preferred member is a re-placement (§8.3): a node new to it
            // joins one that has data and must not lead it from an empty log.
            let joining = group.preferred.is_none();
            match Self::start_group_node(env, &name, config, group.peers, joining) {
                Ok(mut node) => {
                    // The preferred member of a fresh group campaigns at once rather than
                    // waiting out an election timeout (NATS does the same): new assets get a
                    // leader quickly, and split votes among late members are rarer.
                    if group.preferred == Some(env.node()) && node.term() == 0 {
                        let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(env.rng().next_u64());
                        node.campaign(env.monotonic_ms(), &mut rng);
                    }
                    let snapshot_every = env.config().snapshot_every;
                    let ack_early = env.bug(BUG_ACK_BEFORE_FSYNC);
                    env.trace("group-started", &name);
                    self.groups.insert(name.clone(), Group::new(&name, node, snapshot_every, ack_early));
                    started.push(name);
                }
                // Like the meta group: a damaged group stays down; the asset reports unhealthy.
                Err(e) => {
                    if self.refused_groups.insert(name.clone(), e.clone()).is_none() {
                        env.trace("group-refused", &(name, e));
                    }
                }
            }
        }
        started
    }

    /// After every input: push pipelines, and tell the oracle who leads.
    fn settle(&mut self, env: &mut Env<'_, Self>) {
        self.now_ms = env.monotonic_ms();
        self.wall_ms = env.now_ms();
        let mut meta_elected = false;
        for group in self.groups.values_mut() {
            group.advance(env, &mut self.tokens);
            let mut became_leader = None;
            if let Some(meta) = group.meta.as_deref_mut() {
                let node = &mut group.node;
                // The meta layer acts as leader only past the apply barrier (§1.8), unless
                // the bug switch lets it act as soon as raft wins.
                let acting = if meta.bugs.leader_before_barrier { node.role() == Role::Leader } else { node.leader() };
                // §3.5: a recovering meta layer stays quiet, leadership included.
                let acting = acting && meta.state.write_error().is_none() && !meta.recovering();
                let term = acting.then(|| node.term());
                if meta.leader_term != term {
                    meta.on_leader_change(env, term);
                    became_leader = term;
                }
                if meta.state.write_error().is_some() && !node.is_observer() {
                    // §2.8: an apply error is terminal: step down and never campaign again.
                    let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(env.rng().next_u64());
                    node.become_observer(self.now_ms, &mut rng);
                    env.trace("meta-observer", &meta.state.write_error());
                }
                meta.expire(env, self.now_ms);
            }
            if let Some(term) = became_leader {
                repair_sync_subjects(env, group, term);
                // §3.7: a new leader starts from a fresh snapshot.
                group.snapshot(env);
                meta_elected = true;
            }
            if group.node.role() == Role::Leader {
                let (me, term, commit) = (env.node(), group.node.term(), group.node.commit_index());
                env.ghost().observe_leader(&group.name, me, term, commit);
            }
        }
        if meta_elected {
            self.check_cluster_size(env); // §8.4: on election
        }
        self.after_membership_changes(env);
        for name in self.reconcile_groups(env) {
            let group = self.groups.get_mut(&name).expect("just started");
            group.advance(env, &mut self.tokens);
        }
        self.route_publish_acks(env);
        self.send_results(env);
    }

    /// NRG's cold-boot check, every second until a leader was seen (here from the first
    /// election timeout on): when every configured
    /// server was heard from and fewer of them run JetStream than the meta group expects,
    /// count quorums against the JetStream servers only.
    fn cold_boot_check(&mut self, env: &mut Env<'_, Self>) {
        let Some(group) = self.groups.get_mut(META) else { return };
        if group.node.had_previous_leader() {
            self.cold_boot_check_at_ms = u64::MAX;
            return;
        }
        env.broadcast(ServerMsg::StatszRequest);
        self.cold_boot_check_at_ms = env.monotonic_ms() + COLD_BOOT_CHECK_MS;
        // NATS counts every server it has heard from. After a restart (NRG forgets it had a
        // leader) a removed peer, which no longer runs JetStream, then stands in for a member
        // that is down: "everyone heard, fewer run JetStream" shrinks the quorum of a group
        // that has data (peers seed 391: a leader without a committed entry). Counting meta
        // members only keeps the mixed-mode case (non-JetStream members) and closes that.
        let members = group.node.peers();
        let count_all = env.bug(BUG_BOOT_SIZE_COUNTS_NON_MEMBERS);
        let counted = |n: &NodeIndex| count_all || members.contains(n);
        let known: Vec<&results::ServerStats> =
            self.known_servers.iter().filter(|(n, _)| counted(n)).map(|(_, s)| s).collect();
        let total = known.len();
        let jetstream = known.iter().filter(|s| s.jetstream).count();
        let expected = members.len();
        let target = jetstream.max(2);
        if jetstream < total && total >= expected && jetstream != expected && group.node.quorum_size() != target / 2 + 1
        {
            match group.node.adjust_boot_cluster_size(jetstream) {
                Ok(()) => env.trace("cluster-size-adjusted", &(jetstream, group.node.quorum_size())),
                Err(e) => env.trace("cluster-size-refused", &e.to_string()),
            }
        }
    }

    /// Restore the local streams and consumers from this server's disk, before the meta
    /// group replays: whatever the replay does not assign is an orphan (§4).
    fn restore_assets(env: &mut Env<'_, Self>, meta: &mut MetaLayer) {
        let (records, refused) = assets::restore(env.disk());
        for error in refused {
            env.trace("asset-refused", &error.to_string());
        }
        let (local, homeless) = assets::rebuild(&records);
        for key in homeless {
            env.trace("asset-without-stream", &key);
        }
        if !records.is_empty() {
            env.trace("assets-restored", &records.len());
        }
        meta.local = local;
        meta.asset_files = records.into_iter().collect();
        meta.assets_changed = true;
    }

    /// A message from another server: a route exists, so start-up recovery may end.
    fn note_route(&mut self) {
        if let Some(meta) = self.groups.get_mut(META).and_then(|g| g.meta.as_deref_mut()) {
            meta.route_up = true;
        }
    }

    /// The meta layer's timed work: end start-up recovery once a route is up, the one-shot
    /// orphan check, and the periodic snapshot (every minute, 15 s after a failure, §3.7)
    /// with the leader's cluster size check (§8.4).
    fn meta_tick(&mut self, env: &mut Env<'_, Self>) {
        let Some(group) = self.groups.get_mut(META) else { return };
        let now = env.monotonic_ms();
        let Some(meta) = group.meta.as_deref_mut() else { return };
        if meta.try_finish_recovery(env) {
            group.snapshot(env);
            // A server its own log removed from the meta group (it applied the removal, or a
            // snapshot without it, in recovery, where JetStream ignores removals) stays out
            // once recovered, as if it had applied the removal then (§8.2).
            let me = env.node();
            if !group.node.peers().contains(&me) && Self::initial_peers(env).contains(&me) {
                let meta = group.meta.as_deref_mut().expect("still there");
                env.ghost().observe_peer_removal_applied(me, me, None);
                meta.peers_removed.push((me, None));
                return;
            }
        }
        let meta = group.meta.as_deref_mut().expect("still there");
        if meta.orphan_check_at_ms.is_some_and(|at| at <= now) {
            let (leader_known, healthy) = (group.node.group_leader().is_some(), group.node.healthy(now));
            meta.orphan_check(env, leader_known, healthy);
        }
        if now >= meta.snapshot_at_ms && !meta.recovering() {
            let taken = group.snapshot(env);
            let meta = group.meta.as_deref_mut().expect("still there");
            meta.snapshot_at_ms = now + if taken { SNAPSHOT_INTERVAL_MS } else { SNAPSHOT_RETRY_MS };
            // §8.4: NATS checks the cluster size on the same ticker.
            self.check_cluster_size(env);
        }
    }

    /// Mirrors' direct consumers on the origin streams this server leads (§11 #26).
    fn mirror_tick(&mut self, env: &mut Env<'_, Self>) {
        let Some(meta) = self.groups.get(META).and_then(|g| g.meta.as_deref()) else { return };
        // Which groups this server leads matters only when a health check is due.
        let leading: BTreeSet<String> = if meta.mirror_check_due(env.monotonic_ms()) {
            self.groups.values().filter(|g| g.name != META && g.node.leader()).map(|g| g.name.clone()).collect()
        } else {
            BTreeSet::new()
        };
        if let Some(meta) = self.groups.get_mut(META).and_then(|g| g.meta.as_deref_mut()) {
            meta.mirror_check(env, &leading);
        }
    }

    fn meta_bugs(env: &Env<'_, Self>) -> MetaBugs {
        MetaBugs {
            no_inflight: env.bug(BUG_META_NO_INFLIGHT),
            limits_ignore_inflight: env.bug(BUG_META_LIMITS_IGNORE_INFLIGHT),
            leader_before_barrier: env.bug(BUG_META_LEADER_BEFORE_BARRIER),
            reassign_repeated: env.bug(BUG_META_REASSIGN_REPEATED),
            recovery_keep_consumer_on_stream_remove: env.bug(BUG_RECOVERY_KEEP_CONSUMER),
            recovery_snapshot_no_reconcile: env.bug(BUG_RECOVERY_SNAPSHOT_NO_RECONCILE),
            snapshot_includes_inflight: env.bug(BUG_SNAPSHOT_INCLUDES_INFLIGHT),
            orphan_check_before_sync: env.bug(BUG_ORPHAN_CHECK_BEFORE_SYNC),
            orphan_check_deletes_direct_consumers: env.bug(BUG_ORPHAN_CHECK_DELETES_DIRECT),
            peer_remove_reply_early: env.bug(BUG_PEER_REMOVE_REPLY_EARLY),
        }
    }

    /// Open a request for a client of this server, and say where it goes: the meta layer here
    /// if it leads, else the leader this server knows. With none known the request waits for
    /// its timeout, as a NATS client's would.
    fn open_client_request(&mut self, env: &mut Env<'_, Self>, watch: bool) -> Option<(u64, RequestRoute)> {
        let now = env.monotonic_ms();
        let Some(group) = self.groups.get_mut(META) else {
            env.trace("op-refused", &"meta group not running");
            return None;
        };
        let meta = group.meta.as_deref_mut().expect("the meta group carries the meta layer");
        let route = match group.node.group_leader().filter(|&l| l != env.node()) {
            _ if meta.leader_term.is_some() => RequestRoute::Here,
            Some(leader) => RequestRoute::Leader(leader),
            None => RequestRoute::Nowhere,
        };
        // L7: once faults healed, a request that reaches the acting meta leader gets an answer
        // unless the leadership changes first. Watch it from here.
        let target = match route {
            RequestRoute::Here => Some(env.node()),
            RequestRoute::Leader(leader) => Some(leader),
            RequestRoute::Nowhere => None,
        };
        let ghost = env.ghost();
        let watch = (watch && ghost.healed && target.is_some() && target == ghost.acting_meta_leader)
            .then_some(ghost.meta_leader_changes);
        let Some(request) = meta.open_request(now, watch) else {
            env.trace("op-refused", &"too many requests waiting");
            return None;
        };
        Some((request, route))
    }

    /// A client request made at this server: the meta leader handles it, here or one hop away.
    fn client_request(&mut self, env: &mut Env<'_, Self>, body: MetaRequest) {
        let Some((request, route)) = self.open_client_request(env, true) else { return };
        env.trace("request", &(request, &body));
        match route {
            RequestRoute::Here => self.lead_request(env, env.node(), request, body),
            RequestRoute::Leader(leader) => env.send(leader, ServerMsg::Request { request, body }),
            RequestRoute::Nowhere => {}
        }
    }

    /// The meta leader validates a request and proposes its entry; validation errors are
    /// answered at once, a refused proposal gets no answer (the client times out, §2.7).
    fn lead_request(&mut self, env: &mut Env<'_, Self>, origin: NodeIndex, request: u64, body: MetaRequest) {
        // A request can reach a server whose meta group refused to start, or that lost the
        // lead on the way: drop it, the client times out.
        let Some(ctx) = self.leader_context(env, Some(origin)) else {
            env.trace("request-dropped", &(origin, request));
            return;
        };
        let group = self.groups.get_mut(META).expect("leader_context found the meta group");
        let meta = group.meta.as_deref().expect("the meta group carries the meta layer");
        let term = meta.leader_term.expect("leader_context requires a leader term");
        let reply = Reply { client: u64::from(origin), request };
        let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(env.rng().next_u64());
        match meta::handle(&body, Some(reply), &meta.state, &meta.inflight, &ctx, &mut rng) {
            Ok(entry) => match propose_meta(env, group, term, &entry, &ctx.meta_peers) {
                Ok(index) => env.trace("proposed", &(index, origin, request)),
                Err(e) => env.trace("propose-refused", &e),
            },
            Err(e) => self.send_answer(env, origin, request, Err(e.to_string())),
        }
    }

    fn handle_op(&mut self, env: &mut Env<'_, Self>, op: MetaOp, forwarded: bool) {
        match op {
            MetaOp::Publish { account, stream, count } => {
                return self.client_publish(env, meta::StreamKey::new(&account, &stream), count)
            }
            MetaOp::StreamInfo { account, name } => {
                return self.client_info(env, meta::StreamKey::new(&account, &name))
            }
            MetaOp::Rescue { quorum } => return self.rescue(env, quorum),
            MetaOp::RemovePeer { peer, name } => return self.client_remove_peer(env, peers::PeerTarget { peer, name }),
            _ => {}
        }
        if let Some(body) = op.request() {
            self.client_request(env, body);
            return;
        }
        let now = env.monotonic_ms();
        let Some(group) = self.groups.get_mut(META) else {
            env.trace("op-refused", &"meta group not running");
            return;
        };
        let node = &mut group.node;
        if !node.leader() {
            match node.group_leader() {
                Some(leader) if !forwarded && leader != env.node() => env.send(leader, ServerMsg::Forward { op }),
                _ => env.trace("op-refused", &"no meta leader"),
            }
            return;
        }
        let term = node.term();
        match op {
            MetaOp::Propose { count } => {
                for _ in 0..count.min(PROPOSE_COUNT_MAX) {
                    self.proposals += 1;
                    let mut payload = vec![FILLER_TAG];
                    payload.extend(bincode::serialize(&(env.node(), self.proposals)).expect("plain data"));
                    match node.propose(now, term, EntryData::Normal(payload)) {
                        Ok(index) => {
                            let (me, entry_term) = (env.node(), node.entry_term(index));
                            env.ghost().observe_append(me, term, entry_term);
                        }
                        Err(e) => {
                            env.trace("propose-refused", &e.to_string());
                            break;
                        }
                    }
                }
            }
            MetaOp::Stepdown { preferred } => {
                let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(env.rng().next_u64());
                node.step_down(now, preferred, &mut rng);
            }
            MetaOp::AddPeer { peer } if peer >= env.servers() => {
                env.trace("op-refused", &format!("no server {peer}"));
            }
            MetaOp::AddPeer { peer } => {
                if let Err(e) = node.propose(now, term, EntryData::AddPeer(peer)) {
                    env.trace("op-refused", &e.to_string());
                }
            }
            MetaOp::Snapshot {} => {
                group.snapshot(env);
            }
            MetaOp::InjectInflightStream { account, name, peers } => {
                let meta = group.meta.as_deref_mut().expect("the meta group carries the meta layer");
                match injected_stream(&account, &name, &peers, env.servers(), env.now_ms()) {
                    Ok(sa) if meta.leader_term.is_some() => {
                        env.trace("inflight-injected", &sa.key());
                        meta.inflight.track_stream(&sa, false);
                    }
                    Ok(_) => env.trace("op-refused", &"the meta layer does not act as leader yet"),
                    Err(e) => env.trace("op-refused", &e),
                }
            }
            MetaOp::ProposeRaw { hex } => match decode_hex(&hex) {
                Some(bytes) => {
                    if let Err(e) = node.propose(now, term, EntryData::Normal(bytes)) {
                        env.trace("propose-refused", &e.to_string());
                    }
                }
                None => env.trace("op-refused", &"propose-raw: not hex"),
            },
            _ => unreachable!("requests are handled above"),
        }
    }
}

/// A ChaCha8 seeded from one draw of the world's RNG: the raft core takes `&mut dyn RngCore`,
/// and the env's RNG is borrowed mutably together with the disk, so hand it a derived one.
trait FromSeedU64 {
    fn from_seed_u64(seed: u64) -> Self;
}

impl FromSeedU64 for rand_chacha::ChaCha8Rng {
    fn from_seed_u64(seed: u64) -> Self {
        rand::SeedableRng::seed_from_u64(seed)
    }
}

impl System for Server {
    type Msg = ServerMsg;
    type ClientOp = MetaOp;
    type Expect = MetaExpect;
    type Config = ServerConfig;
    type Ghost = Ghost;
    const NAME: &'static str = "meta";
    const FILE_KINDS: &'static [&'static str] = &["log", "state", "snapshot"];
    const KNOWN_FILE_KINDS: &'static [&'static str] = crate::validate::FILE_KINDS_WRITTEN;

    fn start(env: &mut Env<'_, Self>) -> Result<Self, String> {
        let mut server = Server {
            me: env.node(),
            groups: BTreeMap::new(),
            meta_error: None,
            tokens: Tokens::default(),
            now_ms: env.monotonic_ms(),
            wall_ms: env.now_ms(),
            proposals: 0,
            known_servers: BTreeMap::new(),
            statsz_at_ms: 0,
            refused_groups: BTreeMap::new(),
            cold_boot_check_at_ms: u64::MAX,
            jetstream_removed: false,
            delayed_answers: Vec::new(),
        };
        let jetstream = !env.config().jetstream_disabled.contains(&env.node());
        let own = server.own_stats(env);
        server.known_servers.insert(env.node(), own);
        if !jetstream {
            env.trace("jetstream-disabled", &());
        } else {
            match Self::start_meta(env) {
                Ok(node) => {
                    let snapshot_every = env.config().snapshot_every;
                    let ack_early = env.bug(BUG_ACK_BEFORE_FSYNC);
                    let mut group = Group::new(META, node, snapshot_every, ack_early);
                    let (api_level, capacity) =
                        (env.config().api_level(env.node()), env.config().stream_capacity(env.node()));
                    let mut meta = Box::new(MetaLayer::new(Self::meta_bugs(env), api_level, capacity));
                    Self::restore_assets(env, &mut meta);
                    // A one-server meta group needs no route to end its replay.
                    meta.route_up = group.node.peers().len() <= 1;
                    group.meta = Some(meta);
                    server.groups.insert(META.to_string(), group);
                }
                Err(reason) => {
                    env.trace("meta-refused", &reason);
                    server.meta_error = Some(reason);
                }
            }
            // A healthy cluster elects within one election timeout; ask for stats only after
            // that, so the check costs nothing (no messages) when it is not needed.
            server.cold_boot_check_at_ms = env.monotonic_ms() + env.config().election_timeout_ms_max;
        }
        let delay = Self::tick_delay_ns(env);
        env.set_timer(delay, TICK_TIMER);
        server.settle(env);
        Ok(server)
    }

    fn on_message(&mut self, env: &mut Env<'_, Self>, from: NodeIndex, msg: ServerMsg) {
        if from != env.node() {
            self.note_route();
        }
        match msg {
            ServerMsg::Raft { group, msg } => {
                // A server removed from the meta group takes no part in asset groups (NRG
                // ignores removed peers). One that was down during its removal runs on a
                // stale view and would otherwise lead old members of a group that moved on
                // (peers seed 1049).
                if group != META && !self.hears_in_asset_groups(from) {
                    return;
                }
                if let Some(g) = self.groups.get_mut(&group) {
                    let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(env.rng().next_u64());
                    g.node.step(env.monotonic_ms(), from, msg, &mut rng);
                }
            }
            ServerMsg::Forward { op } => self.handle_op(env, op, true),
            msg @ ServerMsg::Publish { .. } => self.on_publish(env, from, msg),
            ServerMsg::InfoRequest { request, stream } => self.lead_info(env, from, request, stream),
            ServerMsg::InfoQuery { request, origin, stream, group } => {
                self.on_info_query(env, origin, request, &stream, &group)
            }
            ServerMsg::Request { request, body } => self.lead_request(env, from, request, body),
            ServerMsg::Answer { request, answer } => {
                if let Some(meta) = self.groups.get_mut(META).and_then(|g| g.meta.as_deref_mut()) {
                    meta.on_answer(env, request, answer);
                }
            }
            ServerMsg::StatszRequest => {
                let msg = self.stats_msg(env);
                env.send(from, msg);
            }
            ServerMsg::Statsz { jetstream, streams, streams_max } => {
                self.note_stats(from, results::ServerStats { jetstream, streams, streams_max });
            }
            ServerMsg::StreamResult(result) => self.lead_result(env, from, result),
            ServerMsg::RemovePeer { request, target } => self.lead_remove_peer(env, from, request, target),
        }
        self.settle(env);
    }

    fn on_timer(&mut self, env: &mut Env<'_, Self>, token: u64) {
        assert_eq!(token, TICK_TIMER, "the server sets one timer");
        if env.monotonic_ms() >= self.cold_boot_check_at_ms {
            self.cold_boot_check(env);
        }
        self.send_due_answers(env);
        self.stats_tick(env);
        // Before the orphan check, so a direct consumer it removes is missed from the next
        // mirror health check on, as a mirror misses its heartbeats.
        self.mirror_tick(env);
        self.meta_tick(env);
        self.sync_group_peers(env);
        self.evict_removed_peers(env);
        let now = env.monotonic_ms();
        for group in self.groups.values_mut() {
            let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(env.rng().next_u64());
            group.node.tick(now, &mut rng);
            group.retry_blocked(env, &mut self.tokens);
        }
        let delay = Self::tick_delay_ns(env);
        env.set_timer(delay, TICK_TIMER);
        self.settle(env);
    }

    fn on_fsync(&mut self, env: &mut Env<'_, Self>, token: u64) {
        if let Some(owner) = self.tokens.owner(token) {
            if let Some(group) = self.groups.get_mut(&owner) {
                group.on_fsync(env, &mut self.tokens, token);
            }
        }
        self.settle(env);
    }

    fn on_client(&mut self, env: &mut Env<'_, Self>, op: MetaOp) {
        self.handle_op(env, op, false);
        self.settle(env);
    }

    fn check_safety(cluster: &Cluster<'_, Self>) -> Result<(), CheckFailure> {
        checks::raft::safety(cluster)?;
        checks::meta::safety(cluster)
    }

    fn check_liveness(cluster: &Cluster<'_, Self>) -> Result<(), CheckFailure> {
        checks::raft::liveness(cluster)?;
        checks::meta::liveness(cluster)
    }

    fn check_expect(cluster: &Cluster<'_, Self>, expect: &MetaExpect) -> Result<(), CheckFailure> {
        expect_holds(cluster, expect)
    }

    fn on_heal(ghost: &mut Ghost) {
        ghost.healed = true;
    }

    fn on_fault(ghost: &mut Ghost, node: NodeIndex, fault: Fault<'_>) {
        if matches!(fault, Fault::Crash | Fault::PowerLoss) {
            ghost.observe_meta_acting(node, false);
            // A restart turns JetStream back on (NATS does not persist the removal's effect).
            ghost.removed_servers.remove(&node);
            ghost.peer_removes_pending.remove(&node);
        }
        match fault {
            Fault::Corruption(report)
                if !report.paths.is_empty() && report.corruption != sim::disk::Corruption::BitFlip =>
            {
                ghost.tainted.insert(node);
            }
            Fault::LostFsync(_) => {
                ghost.tainted.insert(node);
            }
            _ => {}
        }
    }

    fn excuse(ghost: &Ghost) -> Option<String> {
        (!ghost.tainted.is_empty()).then(|| format!("the disks of {:?} lost synced data", ghost.tainted))
    }

    fn generate_churn_op(rng: &mut dyn RngCore, _config: &ServerConfig) -> Option<MetaOp> {
        Some(match rng.gen_range(0..4) {
            0 | 1 => MetaOp::Stepdown { preferred: None },
            2 => MetaOp::Stepdown { preferred: Some(rng.gen_range(0..5)) },
            _ => MetaOp::Snapshot {},
        })
    }

    fn generate_membership_op(rng: &mut dyn RngCore, _config: &ServerConfig) -> Option<MetaOp> {
        // By id or by name (names are known only for servers heard from since start).
        let peer = rng.gen_range(0..5);
        Some(if rng.gen_bool(0.5) {
            MetaOp::RemovePeer { peer: Some(peer), name: None }
        } else {
            MetaOp::RemovePeer { peer: None, name: Some(format!("n{peer}")) }
        })
    }

    fn generate_client_op(rng: &mut dyn RngCore, config: &ServerConfig) -> MetaOp {
        // A few names, so creates collide (idempotent or conflicting), deletes find their
        // target, and consumers find their stream.
        let stream = format!("S{}", rng.gen_range(0..4));
        let consumer = format!("C{}", rng.gen_range(0..3));
        let account = "A".to_string();
        match rng.gen_range(0..100) {
            0..=3 => MetaOp::Stepdown { preferred: None },
            4..=5 => MetaOp::Stepdown { preferred: Some(rng.gen_range(0..5)) },
            6..=8 => MetaOp::Snapshot {},
            9..=14 => MetaOp::Propose { count: rng.gen_range(1..=4) },
            15..=19 => MetaOp::StreamInfo { account, name: stream },
            20..=29 => MetaOp::Publish { account, stream, count: rng.gen_range(1..=4) },
            30..=64 => {
                // Replicas vary now and then: the same name with another config is refused, and
                // an R2 stream fits the smaller cluster when the other is full.
                let replicas = [3, 3, 3, 3, 3, 3, 3, 1, 1, 2][rng.gen_range(0..10)];
                let subjects = vec![format!("{}.>", stream.to_lowercase())];
                MetaOp::CreateStream {
                    account,
                    name: stream,
                    subjects,
                    replicas,
                    max_consumers: None,
                    required_api_level: generate_required_level(rng),
                    config_json: None,
                    // Now and then pinned to a cluster: such a stream cannot be re-placed.
                    cluster: if !config.clusters.is_empty() && rng.gen_bool(0.2) {
                        Some(config.clusters[rng.gen_range(0..config.clusters.len())].name.clone())
                    } else {
                        None
                    },
                }
            }
            65..=74 => MetaOp::DeleteStream { account, name: stream },
            75..=92 => MetaOp::CreateConsumer {
                account,
                stream,
                name: consumer,
                replicas: 0,
                required_api_level: generate_required_level(rng),
                config_json: None,
            },
            _ => MetaOp::DeleteConsumer { account, stream, name: consumer },
        }
    }

    /// A group created by the last operation may need several election rounds: its members
    /// start it as they apply the assignment, seconds apart, and split votes. Three of the
    /// slowest election timeouts (27 s at NRG's defaults) let it settle.
    fn quiet_tail_ms(config: &ServerConfig) -> u64 {
        3 * config.election_timeout_ms_max
    }

    fn generate_config(rng: &mut dyn RngCore, servers: u32) -> ServerConfig {
        // Half the seeds run raft ten times faster than NRG's defaults, so a 60 s run sees many
        // more elections, stepdowns and catch-ups (swarm knobs, as FoundationDB randomises its).
        let fast = rng.gen_bool(0.5);
        let heartbeat_ms = if fast { [100, 200][rng.gen_range(0..2)] } else { 1_000 };
        ServerConfig {
            heartbeat_ms,
            election_timeout_ms_min: heartbeat_ms * 4,
            election_timeout_ms_max: heartbeat_ms * 9,
            tick_ms: heartbeat_ms / 10,
            snapshot_every: [16, 64, 256][rng.gen_range(0..3)],
            // Small batches let a follower acknowledge old-term entries before the new leader's
            // first entry, the window in which Raft's Figure 8 rule matters.
            max_entries_per_append: [64, 64, 4, 1][rng.gen_range(0..4)],
            max_streams_per_account: [None, Some(2), Some(3)][rng.gen_range(0..3)],
            // A quarter of the seeds run a mixed-version cluster: one server a level behind,
            // so assets that need the current level are unsupported there (§7).
            api_levels: if rng.gen_bool(0.25) {
                vec![ServerApiLevel { node: rng.gen_range(0..3), level: meta::API_LEVEL - 1 }]
            } else {
                vec![]
            },
            // A quarter of the seeds run two clusters (placement tries the client's first), and
            // some bound a few servers' streams, so placement from stale stats makes members
            // refuse streams and the leader re-place or remove them (§2.7).
            clusters: if servers >= 2 && rng.gen_bool(0.25) {
                let east = servers.div_ceil(2);
                vec![
                    ClusterSpec { name: "east".into(), nodes: (0..east).collect() },
                    ClusterSpec { name: "west".into(), nodes: (east..servers).collect() },
                ]
            } else {
                vec![]
            },
            stream_capacity: if rng.gen_bool(0.3) {
                let bounded = rng.gen_range(1..=servers.div_ceil(2));
                let mut nodes: Vec<NodeIndex> = (0..servers).collect();
                nodes.shuffle(rng);
                nodes.truncate(bounded as usize);
                nodes.sort_unstable();
                nodes.into_iter().map(|node| ServerCapacity { node, streams: rng.gen_range(1..=2) }).collect()
            } else {
                vec![]
            },
            ..ServerConfig::default()
        }
    }

    fn validate_config(config: &ServerConfig, servers: u32) -> Result<(), String> {
        config.validate(servers)?;
        crate::validate::config(config, servers)
    }

    fn validate_client_op(op: &MetaOp, servers: u32, config: &ServerConfig) -> Result<(), (String, String)> {
        crate::validate::op(op, servers, config)
    }

    fn client_op_warning(op: &MetaOp, servers: u32) -> Option<(String, String)> {
        crate::validate::op_warning(op, servers)
    }

    fn validate_expect(expect: &MetaExpect, servers: u32, config: &ServerConfig) -> Result<(), (String, String)> {
        crate::validate::expect(expect, servers, config)
    }

    fn client_op_messages(op: &MetaOp) -> u64 {
        crate::validate::op_messages(op)
    }

    /// One slowest election timeout: a cluster that `heal-all` restarted whole can have a
    /// leader by then.
    fn liveness_settle_ms(config: &ServerConfig) -> u64 {
        config.election_timeout_ms_max
    }

    fn bugs() -> &'static [BugSwitch] {
        &[
            BugSwitch {
                name: BUG_COMMIT_OLD_TERM,
                what: "advance commit by counting replicas of an old-term entry (Raft Figure 8)",
            },
            BugSwitch {
                name: BUG_ACK_BEFORE_FSYNC,
                what: "followers acknowledge appends before their fsync completes",
            },
            BugSwitch { name: BUG_VOTE_NOT_PERSISTED, what: "votes are not persisted before they are answered" },
            BugSwitch {
                name: BUG_META_NO_INFLIGHT,
                what: "the meta leader validates requests against applied state only (PR #3679: two groups for one stream)",
            },
            BugSwitch {
                name: BUG_META_LIMITS_IGNORE_INFLIGHT,
                what: "stream and consumer limits count applied assets only, not inflight ones (PR #3615)",
            },
            BugSwitch {
                name: BUG_META_LEADER_BEFORE_BARRIER,
                what: "the meta layer acts as leader before applying the entries of earlier terms",
            },
            BugSwitch {
                name: BUG_PUBLISH_ACK_BEFORE_COMMIT,
                what: "a stream leader acknowledges a publish once proposed, before a quorum stored it",
            },
            BugSwitch {
                name: BUG_META_REASSIGN_REPEATED,
                what: "every failed-create report re-places the stream, even one already being re-placed (PR #6121)",
            },
            BugSwitch {
                name: BUG_ORPHAN_CHECK_BEFORE_SYNC,
                what: "the orphan check after start-up runs without a known leader or a healthy meta group (PR #5767)",
            },
            BugSwitch {
                name: BUG_ORPHAN_CHECK_DELETES_DIRECT,
                what: "orphans are judged among all of a stream's consumers, so a mirror's direct consumer is deleted as one",
            },
            BugSwitch {
                name: BUG_RECOVERY_KEEP_CONSUMER,
                what: "a stream removal staged in recovery keeps the stream's staged consumer ops (PR #6066)",
            },
            BugSwitch {
                name: BUG_RECOVERY_SNAPSHOT_NO_RECONCILE,
                what: "a snapshot staged in recovery does not drop the staged ops it supersedes (PR #8324)",
            },
            BugSwitch {
                name: BUG_SNAPSHOT_INCLUDES_INFLIGHT,
                what: "the meta leader's snapshot includes its inflight (proposed, unapplied) streams",
            },
            BugSwitch {
                name: BUG_PEER_REMOVE_REPLY_EARLY,
                what: "the meta leader answers a peer removal when it proposes it, before a quorum applied it",
            },
            BugSwitch {
                name: BUG_BOOT_SIZE_COUNTS_NON_MEMBERS,
                what: "the cold-boot size check counts every server heard from, removed peers too (as NATS does)",
            },
            BugSwitch {
                name: BUG_OS_TIME,
                what: "jitter raft ticks with the OS clock (a deliberate nondeterminism fixture)",
            },
        ]
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// Whether every group a create entry places lies within `meta_peers` (S11). A group the
/// applied state already holds may keep its peers.
/// The assignment `inject-inflight-stream` tracks: an R`peers.len()` stream on `peers`.
fn injected_stream(
    account: &str,
    name: &str,
    peers: &[NodeIndex],
    servers: u32,
    now_ms: u64,
) -> Result<meta::StreamAssignment, String> {
    if let Some(bad) = peers.iter().find(|&&p| p >= servers) {
        return Err(format!("inject-inflight-stream: no server {bad}"));
    }
    let replicas = u8::try_from(peers.len()).map_err(|_| "inject-inflight-stream: too many peers".to_string())?;
    let config = meta::StreamConfig { name: name.into(), replicas, ..Default::default() };
    let group = meta::RaftGroup {
        name: format!("S-R{replicas}-injected-{name}"),
        peers: peers.to_vec(),
        preferred: peers.first().copied(),
    };
    group.check().map_err(|e| format!("inject-inflight-stream: {e}"))?;
    Ok(meta::StreamAssignment {
        account: account.into(),
        name: name.into(),
        created_ms: now_ms.max(1),
        config_json: config.to_json(),
        group,
        sync: format!("$SYS.JSC.SYNC.injected-{name}"),
        consumers: Default::default(),
    })
}

/// A new meta leader gives every stream applied without a sync subject a fresh one (§2.1).
fn repair_sync_subjects(env: &mut Env<'_, Server>, group: &mut Group, term: crate::raft::Term) {
    let meta = group.meta.as_deref().expect("the meta group carries the meta layer");
    if meta.state.streams_missing_sync().is_empty() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::from_seed_u64(env.rng().next_u64());
    let peers = group.node.peers().to_vec();
    for entry in meta::sync_repairs(&meta.state, &mut rng) {
        env.trace("sync-repair", &entry.stream_key());
        if let Err(e) = propose_meta(env, group, term, &entry, &peers) {
            env.trace("propose-refused", &e);
            return;
        }
    }
}

/// Propose a meta entry as the acting leader of `term`, and track it inflight once it is in
/// the log (§5.1). Checked first against S11 (placement on known meta peers) and S20 (a sync
/// subject on every stream assignment): a violation is flagged, as a found bug.
fn propose_meta(
    env: &mut Env<'_, Server>,
    group: &mut Group,
    term: crate::raft::Term,
    entry: &meta::MetaEntry,
    meta_peers: &[PeerId],
) -> Result<crate::raft::Index, String> {
    let me = env.node();
    let meta = group.meta.as_deref_mut().expect("the meta group carries the meta layer");
    if !placed_on_known_peers(entry, meta_peers, &meta.state, &meta.inflight) {
        let message = format!("proposed {entry:?} on peers outside the meta group {meta_peers:?}");
        env.ghost().flag("meta-placement-known-peers", me, message);
    }
    if let meta::MetaEntry::AssignStream { sa, .. } | meta::MetaEntry::UpdateStream { sa, .. } = entry {
        if sa.sync.is_empty() {
            env.ghost().flag("meta-sync-subject", me, format!("proposed stream {} without a sync subject", sa.key()));
        }
    }
    let index =
        group.node.propose(env.monotonic_ms(), term, EntryData::Normal(entry.encode())).map_err(|e| e.to_string())?;
    meta.proposed(entry);
    let entry_term = group.node.entry_term(index);
    env.ghost().observe_append(me, term, entry_term);
    Ok(index)
}

/// S11: every peer a proposal places an asset on is a meta peer, except peers the asset's
/// group already had (a re-placement keeps the members it can).
/// S11: a proposal places only on meta peers, except for members a group already has, and a
/// consumer's members taken from its stream's group (NATS copies the stream's peers, stale
/// ones included until the stream is re-placed; the stream's re-placement then moves it).
fn placed_on_known_peers(
    entry: &meta::MetaEntry,
    meta_peers: &[u32],
    state: &meta::MetaState,
    inflight: &meta::Inflight,
) -> bool {
    let (group, existing, stream) = match entry {
        meta::MetaEntry::AssignStream { sa, .. } | meta::MetaEntry::UpdateStream { sa, .. } => {
            (&sa.group, state.stream(&sa.key()).map(|e| &e.group), None)
        }
        meta::MetaEntry::AssignConsumer { ca, .. } => {
            let stream = inflight.stream_or_inflight(state, &ca.stream_key()).map(|sa| &sa.group);
            (&ca.group, state.consumer(&ca.key()).map(|e| &e.group), stream)
        }
        _ => return true,
    };
    let kept = |p: &u32| existing.is_some_and(|e| e.name == group.name && e.peers.contains(p));
    let inherited = |p: &u32| stream.is_some_and(|s| s.peers.contains(p));
    group.peers.iter().all(|p| kept(p) || inherited(p) || meta_peers.contains(p))
}

/// One generated asset in ten needs the current API level (§7), which older servers lack.
fn generate_required_level(rng: &mut dyn RngCore) -> Option<i64> {
    rng.gen_bool(0.1).then_some(meta::API_LEVEL)
}

fn expect_holds(cluster: &Cluster<'_, Server>, expect: &MetaExpect) -> Result<(), CheckFailure> {
    let fail = |node: Option<NodeIndex>, what: String| Err(CheckFailure::new("meta", node, what));
    let server = |node: NodeIndex| cluster.nodes.get(node as usize).and_then(|n| n.state);
    let group = |node: NodeIndex| server(node).and_then(|s| s.group(META));
    let layer = |node: NodeIndex| group(node).and_then(|g| g.meta.as_deref());
    let check_bool = |node: NodeIndex, what: &str, actual: Option<bool>, want: bool| match actual {
        Some(a) if a == want => Ok(()),
        Some(a) => fail(Some(node), format!("{what} is {a}, expected {want}")),
        None => fail(Some(node), "has no running meta group".into()),
    };
    match expect {
        MetaExpect::Leader { node, is } => check_bool(*node, "leader()", group(*node).map(|g| g.node.leader()), *is),
        MetaExpect::Leaderless { node, is } => {
            check_bool(*node, "leaderless()", group(*node).map(|g| g.node.leaderless()), *is)
        }
        MetaExpect::Current { node, is } => check_bool(
            *node,
            "current()",
            server(*node).and_then(|s| s.group(META).map(|g| g.node.current(s.now_ms()))),
            *is,
        ),
        MetaExpect::Healthy { node, is } => check_bool(
            *node,
            "healthy()",
            server(*node).and_then(|s| s.group(META).map(|g| g.node.healthy(s.now_ms()))),
            *is,
        ),
        MetaExpect::HadPreviousLeader { node, is } => {
            check_bool(*node, "had_previous_leader()", group(*node).map(|g| g.node.had_previous_leader()), *is)
        }
        MetaExpect::GroupLeader { node, equals } => match group(*node) {
            Some(g) if g.node.group_leader() == *equals => Ok(()),
            Some(g) => fail(Some(*node), format!("group_leader() is {:?}, expected {equals:?}", g.node.group_leader())),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::OneLeader {} => {
            let leaders: Vec<NodeIndex> = cluster
                .running()
                .filter(|(_, s)| s.group(META).is_some_and(|g| g.node.leader()))
                .map(|(i, _)| i)
                .collect();
            let [leader] = leaders[..] else { return fail(None, format!("leaders: {leaders:?}")) };
            for (i, s) in cluster.running() {
                if let Some(g) = s.group(META) {
                    if g.node.peers().contains(&i) && g.node.group_leader() != Some(leader) {
                        return fail(Some(i), format!("names {:?} as leader, not n{leader}", g.node.group_leader()));
                    }
                }
            }
            Ok(())
        }
        MetaExpect::AppliedAtLeast { node, index } => match group(*node) {
            Some(g) if g.applied.index >= *index => Ok(()),
            Some(g) => fail(Some(*node), format!("applied {}, expected at least {index}", g.applied.index)),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::Peers { node, equals } => match group(*node) {
            Some(g) if g.node.peers() == equals.as_slice() => Ok(()),
            Some(g) => fail(Some(*node), format!("peers are {:?}, expected {equals:?}", g.node.peers())),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::MetaRefused { node, is } => {
            let refused = match server(*node) {
                Some(s) => s.meta_error().is_some(),
                None => cluster.nodes.get(*node as usize).is_some_and(|n| matches!(n.status, NodeStatus::Refused(_))),
            };
            if refused == *is {
                Ok(())
            } else {
                fail(Some(*node), format!("meta refused is {refused}, expected {is}"))
            }
        }
        MetaExpect::SnapshotsInstalled { node, at_least } => match group(*node) {
            Some(g) if g.snapshots_installed >= *at_least => Ok(()),
            Some(g) => fail(
                Some(*node),
                format!("installed {} snapshots, expected at least {at_least}", g.snapshots_installed),
            ),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::Streams { node, count } => match layer(*node) {
            Some(m) if m.state.streams().count() == *count => Ok(()),
            Some(m) => fail(Some(*node), format!("{} streams applied, expected {count}", m.state.streams().count())),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::Stream { node, account, name, exists, peers, in_cluster, has_sync, on } => {
            let Some(m) = layer(*node) else { return fail(Some(*node), "has no running meta group".into()) };
            let sa = m.state.stream(&meta::StreamKey::new(account, name));
            let outside = |sa: &meta::StreamAssignment, in_cluster: &str| {
                sa.group.peers.iter().any(|&p| cluster.config.cluster_of(p) != Some(in_cluster))
            };
            match (sa, exists, peers, in_cluster) {
                (Some(_), false, _, _) => fail(Some(*node), format!("stream {name} exists")),
                (None, true, _, _) => fail(Some(*node), format!("stream {name} does not exist")),
                (Some(sa), true, Some(n), _) if sa.group.peers.len() != *n => {
                    fail(Some(*node), format!("stream {name} has peers {:?}, expected {n}", sa.group.peers))
                }
                (Some(sa), true, _, Some(want)) if outside(sa, want) => fail(
                    Some(*node),
                    format!("stream {name} has peers {:?}, not all in cluster {want}", sa.group.peers),
                ),
                (Some(sa), true, _, _) if on.as_ref().is_some_and(|on| *on != sa.group.peers) => {
                    fail(Some(*node), format!("stream {name} has peers {:?}, expected {on:?}", sa.group.peers))
                }
                (Some(sa), true, _, _) if has_sync.is_some_and(|want| want == sa.sync.is_empty()) => fail(
                    Some(*node),
                    format!("stream {name} has sync subject {:?}, expected has_sync = {has_sync:?}", sa.sync),
                ),
                _ => Ok(()),
            }
        }
        MetaExpect::Consumers { node, account, stream, count } => {
            let Some(m) = layer(*node) else { return fail(Some(*node), "has no running meta group".into()) };
            let n = m.state.stream(&meta::StreamKey::new(account, stream)).map_or(0, |sa| sa.consumers.len());
            if n == *count {
                Ok(())
            } else {
                fail(Some(*node), format!("{n} consumers on {stream}, expected {count}"))
            }
        }
        MetaExpect::DirectConsumers { node, account, stream, count } => {
            let Some(m) = layer(*node) else { return fail(Some(*node), "has no running meta group".into()) };
            let names: Vec<&str> = m
                .local
                .direct_consumers()
                .filter(|(k, a)| a.running && k.account == *account && k.stream == *stream)
                .map(|(k, _)| k.name.as_str())
                .collect();
            if names.len() == *count {
                Ok(())
            } else {
                fail(Some(*node), format!("runs direct consumers {names:?} on {account}:{stream}, expected {count}"))
            }
        }
        MetaExpect::LocalStreams { node, count } => match layer(*node) {
            Some(m) if m.local.streams().filter(|(_, a)| a.running).count() == *count => Ok(()),
            Some(m) => {
                let running: Vec<String> =
                    m.local.streams().filter(|(_, a)| a.running).map(|(k, _)| k.to_string()).collect();
                fail(Some(*node), format!("runs {running:?}, expected {count} streams"))
            }
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::Groups { node, count } => match cluster.server(*node) {
            Some(s) if s.groups().count() == *count => Ok(()),
            Some(s) => {
                let names: Vec<&str> = s.groups().map(|g| g.name.as_str()).collect();
                fail(Some(*node), format!("runs groups {names:?}, expected {count}"))
            }
            None => fail(Some(*node), "is down".into()),
        },
        MetaExpect::Quorum { node, equals } => match server(*node).and_then(|s| s.group(META)) {
            Some(g) if g.node.quorum_size() == *equals => Ok(()),
            Some(g) => fail(Some(*node), format!("meta quorum {}, expected {equals}", g.node.quorum_size())),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::Rescued { node, quorum } => match server(*node).and_then(|s| s.group(META)) {
            Some(g) if g.node.rescued_quorum() == *quorum => Ok(()),
            Some(g) => fail(Some(*node), format!("rescued quorum {:?}, expected {quorum:?}", g.node.rescued_quorum())),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::LocalStream { node, account, name, exists } => match layer(*node) {
            Some(m) if m.local.stream(&meta::StreamKey::new(account, name)).is_some() == *exists => Ok(()),
            Some(_) if *exists => fail(Some(*node), format!("holds no local stream {account}:{name}")),
            Some(_) => fail(Some(*node), format!("holds local stream {account}:{name}")),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::Answers { node, at_least, at_most } => match layer(*node) {
            Some(m) if m.answered >= *at_least && at_most.is_none_or(|most| m.answered <= most) => Ok(()),
            Some(m) => fail(Some(*node), format!("{} answers, expected {at_least} to {at_most:?}", m.answered)),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::AnswerError { node, contains } => match layer(*node) {
            Some(m) if m.errors.iter().any(|e| e.contains(contains.as_str())) => Ok(()),
            Some(m) => fail(Some(*node), format!("no error answer contains {contains:?}: {:?}", m.errors)),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::ApplyError { node, is } => {
            check_bool(*node, "meta apply error", layer(*node).map(|m| m.state.write_error().is_some()), *is)
        }
        MetaExpect::Unsupported { node, account, stream, consumer, is, reason_contains } => {
            let Some(m) = layer(*node) else { return fail(Some(*node), "has no running meta group".into()) };
            let key = meta::StreamKey::new(account, stream);
            let (what, reason) = match consumer {
                Some(c) => {
                    let ckey = meta::ConsumerKey::new(account.clone(), stream.clone(), c.clone());
                    (ckey.to_string(), m.state.consumer_unsupported(&ckey))
                }
                None => (key.to_string(), m.state.stream_unsupported(&key)),
            };
            match (reason, is, reason_contains) {
                (Some(r), true, Some(want)) if !r.contains(want.as_str()) => fail(
                    Some(*node),
                    format!("{what} is unsupported because {r:?}, expected a reason containing {want:?}"),
                ),
                (Some(_), true, _) | (None, false, _) => Ok(()),
                (Some(r), false, _) => fail(Some(*node), format!("{what} is unsupported ({r}), expected supported")),
                (None, true, _) => fail(Some(*node), format!("{what} is supported, expected unsupported")),
            }
        }
        MetaExpect::Messages { node, account, name, equals } => {
            let key = meta::StreamKey::new(account, name);
            let Some(s) = server(*node) else { return fail(Some(*node), "is not running".into()) };
            let disk = cluster.nodes[*node as usize].disk;
            match s.stream_messages(&key, disk) {
                Some(Ok(n)) if n == *equals => Ok(()),
                Some(Ok(n)) => fail(Some(*node), format!("holds {n} messages of stream {key}, expected {equals}")),
                Some(Err(e)) => fail(Some(*node), format!("cannot count the messages of stream {key}: {e}")),
                None => fail(Some(*node), format!("does not run stream {key}")),
            }
        }
        MetaExpect::AnswerOk { node, contains } => match layer(*node) {
            Some(m) if m.oks.iter().any(|a| a.contains(contains.as_str())) => Ok(()),
            Some(m) => fail(Some(*node), format!("no answer contains {contains:?}; answers: {:?}", m.oks)),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::Timeouts { node, at_least } => match layer(*node) {
            Some(m) if m.timed_out >= *at_least => Ok(()),
            Some(m) => fail(Some(*node), format!("{} timeouts, expected at least {at_least}", m.timed_out)),
            None => fail(Some(*node), "has no running meta group".into()),
        },
        MetaExpect::NeverLeader { node } => {
            if cluster.ghost.ever_leader.contains(node) {
                fail(Some(*node), "was leader".into())
            } else {
                Ok(())
            }
        }
        MetaExpect::Healthz(h) => health_holds(cluster, h.node, "healthz", &h.want, |s| s.healthz(h.meta_only)),
        MetaExpect::StreamHealth(h) => {
            let key = meta::StreamKey::new(&h.account, &h.name);
            health_holds(cluster, h.node, &format!("stream {key} health"), &h.want, |s| s.stream_health(&key))
        }
        MetaExpect::ConsumerHealth(h) => {
            let key = meta::ConsumerKey::new(&h.account, &h.stream, &h.name);
            health_holds(cluster, h.node, &format!("consumer {key} health"), &h.want, |s| s.consumer_health(&key))
        }
        MetaExpect::CommittedAtLeast { count } => {
            let n = cluster.ghost.group(META).committed.len() as u64;
            if n >= *count {
                Ok(())
            } else {
                fail(None, format!("{n} entries applied, expected at least {count}"))
            }
        }
    }
}

/// A health expectation on `node`, which must be running: the failure shows the actual answer.
fn health_holds(
    cluster: &Cluster<'_, Server>,
    node: NodeIndex,
    what: &str,
    want: &ops::HealthWant,
    check: impl FnOnce(&Server) -> Result<(), String>,
) -> Result<(), CheckFailure> {
    let Some(server) = cluster.server(node) else {
        return Err(CheckFailure::new("meta", Some(node), format!("{what}: server is not running")));
    };
    want.check(&check(server)).map_err(|m| CheckFailure::new("meta", Some(node), format!("{what} {m}")))
}
