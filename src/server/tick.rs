//! A server's timed work (the tick) and what follows every input (settling): pipelines
//! pushed, meta leadership signalled, raft groups matched to the local assets, the meta
//! layer's one-shot and periodic duties.

use std::collections::BTreeSet;

use super::bugs::{ACK_BEFORE_FSYNC, BOOT_SIZE_AFTER_RESTART, MESSAGES_DELETED_BEFORE_REPLAY};
use super::env::{forked_rng, ServerEnv};
use super::group::Group;
use super::observe::Observation;
use super::requests::repair_sync_subjects;

use super::storage::{self, GroupFiles};
use super::wire::{ServerMsg, ServerStats};
use super::{assets, Server};
use crate::raft::{Config as RaftConfig, Role};
use sim::NodeIndex;

/// The meta group snapshots every minute, and retries after 15 s when one failed (§3.7).
const SNAPSHOT_INTERVAL_MS: u64 = 60_000;
const SNAPSHOT_RETRY_MS: u64 = 15_000;
/// NRG checks the cluster size every second until a leader was seen.
const COLD_BOOT_CHECK_MS: u64 = 1_000;

impl Server {
    /// The tick's work, in a fixed order, before the raft groups tick.
    pub(super) fn tick(&mut self, env: &mut ServerEnv<'_>) {
        if env.monotonic_ms() >= self.cold_boot_check_at_ms {
            self.cold_boot_check(env);
        }
        self.send_due_answers(env);
        if self.groups.meta().is_none() {
            // The meta layer expires its own book as it signals leadership.
            self.requests_off_meta.expire(env, env.monotonic_ms());
        }
        self.stats_tick(env);
        // Before the orphan check, so a direct consumer it removes is missed from the next
        // mirror health check on, as a mirror misses its heartbeats.
        self.mirror_tick(env);
        if let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) {
            meta.retry_carries(env);
        }
        self.meta_tick(env);
        self.announce_if_outsider(env);
        self.sync_group_peers(env);
        self.evict_removed_peers(env);
        self.report_empty_groups(env);
        let now = env.monotonic_ms();
        let tokens = &mut self.tokens;
        // Most ticks of most groups change nothing a settle or a check looks at (no timer is
        // due): only those that did count as touched, and a group with nothing due that no
        // input reached since the last tick is passed over (its clock is raised later). Every
        // group forks its generator all the same, so the run's RNG moves on as it always has.
        self.groups.tick_walk(now, |group| {
            let mut rng = forked_rng(env);
            let Some(group) = group else { return false };
            let stamp = group.node.stamp();
            group.node.tick(now, &mut rng);
            let retried = group.retry_blocked(env, tokens);
            retried || group.node.stamp() != stamp || group.settle_due()
        });
    }

    /// After every input: push pipelines, signal meta leadership, tell the oracle who leads,
    /// and act on what the input changed.
    pub(super) fn settle(&mut self, env: &mut ServerEnv<'_>) {
        self.now_ms = env.monotonic_ms();
        self.wall_ms = env.now_ms();
        let mut meta_elected = false;
        // A group this input did not touch has no new Ready and no news for the oracle.
        let (tokens, now_ms) = (&mut self.tokens, self.now_ms);
        self.groups.for_each_touched(|group| {
            group.advance(env, tokens);
            if let Some(term) = Self::signal_meta_leadership(env, group, now_ms) {
                repair_sync_subjects(env, group, term);
                // §3.7: a new leader starts from a fresh snapshot.
                group.snapshot(env);
                meta_elected = true;
            }
            group.report_lead(env);
        });
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
        self.groups.assert_changes_touched();
    }

    /// The meta layer follows raft's leadership (past the apply barrier, and not while it
    /// recovers or after an apply error); the term it newly leads, if it just became leader.
    fn signal_meta_leadership(env: &mut ServerEnv<'_>, group: &mut Group, now_ms: u64) -> Option<u64> {
        let meta = group.meta.as_deref_mut()?;
        let node = &mut group.node;
        // The meta layer acts as leader only past the apply barrier (§1.8), unless the bug
        // switch lets it act as soon as raft wins.
        let acting = if meta.bugs.leader_before_barrier { node.role() == Role::Leader } else { node.leader() };
        // §3.5: a recovering meta layer stays quiet, leadership included.
        let acting = acting && meta.state.write_error().is_none() && !meta.recovering();
        let term = acting.then(|| node.term());
        let mut became_leader = None;
        if meta.leader_term != term {
            meta.on_leader_change(env, term);
            became_leader = term;
        }
        if meta.state.write_error().is_some() && !node.is_observer() {
            // §2.8: an apply error is terminal: step down and never campaign again.
            let mut rng = forked_rng(env);
            node.become_observer(now_ms, &mut rng);
            env.trace_with("meta-observer", &meta.state.write_error(), || {
                format!("apply error: {}", meta.state.write_error().unwrap_or_default())
            });
        }
        meta.requests.expire(env, now_ms);
        became_leader
    }

    /// Run exactly the stream and consumer groups the meta layer's local assets call for:
    /// start missing ones (from their files after a restart), stop the rest, and delete the
    /// files of groups no local asset refers to any more. The names of groups started.
    fn reconcile_groups(&mut self, env: &mut ServerEnv<'_>) -> Vec<String> {
        let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) else { return Vec::new() };
        if !meta.assets_changed {
            return Vec::new();
        }
        meta.assets_changed = false;
        let (desired, me) = (meta.desired_groups(), env.node());
        // The groups whose files stay, needed only when there are files or groups to judge by
        // it: built from every local asset and assignment, it was a walk over all of them
        // after every input that changed an asset. Nothing below changes what it is made of.
        let mut kept: Option<BTreeSet<String>> = None;
        if !assets::sync(env.disk(), &mut meta.asset_files, assets::wanted(&meta.local, &meta.carries_pending)) {
            // The disk lied about an fsync (the world tells the oracle).
            env.trace_text("fsync-lost", "assets");
        }
        // An R1 stream's messages go with the last asset that refers to its group, judged once
        // the start-up replay has run: before it, a stream whose asset file was refused (a bad
        // checksum) or never written (a full disk) has no local asset, though the replay runs
        // it again in the same group. NATS leaves such a stream's directory, and the stream
        // finds its messages there (default seed 1707 and disk seed 3127 of generator 15 lost
        // acknowledged messages).
        if !meta.startup_recovering() || env.bug(MESSAGES_DELETED_BEFORE_REPLAY) {
            let files = env.disk().list(storage::MessageFile::PREFIX);
            if !files.is_empty() {
                let kept = kept.get_or_insert_with(|| meta.kept_groups(me));
                for path in files {
                    if !kept.contains(&path[storage::MessageFile::PREFIX.len()..]) {
                        env.disk().remove(&path);
                    }
                }
            }
        }
        // One walk of the running groups beside the desired ones, both in name order: the
        // groups to stop, each with whether this server was re-placed off it (its assignment
        // goes on elsewhere), and the desired groups not running.
        let meta = self.groups.meta().and_then(|g| g.meta.as_deref()).expect("found above");
        let (mut stale, mut missing) = (Vec::new(), Vec::new());
        let mut wanted = desired.iter().peekable();
        for (name, _) in self.groups.assets() {
            missing.extend(std::iter::from_fn(|| wanted.next_if(|g| g.name.as_str() < name)));
            if wanted.next_if(|g| g.name == name).is_none() {
                stale.push((name.to_string(), meta.state.group(name).is_some_and(|g| !g.is_member(me))));
            }
        }
        missing.extend(wanted);
        let kept = if stale.is_empty() { BTreeSet::new() } else { kept.unwrap_or_else(|| meta.kept_groups(me)) };
        let waiting: BTreeSet<String> = meta.carries_pending.keys().cloned().collect();
        self.refused_groups.retain(|name, _| desired.contains_key(name));
        for (name, left) in stale {
            if left {
                self.hand_over_on_leaving(env, &name);
            }
            self.stop_group(env, &name, &kept);
        }
        // Started in name order, and put in the group set together.
        let mut started = Vec::new();
        for group in missing {
            let name = &group.name;
            if waiting.contains(name) {
                continue; // its carry waits for room on the disk
            }
            // Nothing stopped or started since the walk adds a group of another name.
            debug_assert!(!self.groups.contains_key(name), "{name} was not running");
            if let Some(running) = self.start_asset_group(env, name, group.clone()) {
                started.push((name.clone(), running));
            }
        }
        let names = started.iter().map(|(name, _)| name.clone()).collect();
        self.groups.insert_new(started);
        names
    }

    /// NATS `removeStream`/`removeConsumer`: a server re-placed off a group it leads steps
    /// down to a caught-up member before it drops its node, so that the members left elect at
    /// once rather than an election timeout later. Left leaderless meanwhile, the group could
    /// miss its move to the new peers, and the next re-placement would leave its members two
    /// memberships apart, with the one holding its log counting a member that came back empty
    /// and waits for a leader (churn seed 3061 of generator 15: n3 on [1,2,3], n0 and n2 on
    /// [0,2,3], never elected). The hand-over leaves now: the node is dropped next.
    fn hand_over_on_leaving(&mut self, env: &mut ServerEnv<'_>, name: &str) {
        let Some(group) = self.groups.get_mut(name) else { return };
        if group.node.role() != Role::Leader {
            return;
        }
        let (now, term) = (env.monotonic_ms(), group.node.term());
        let mut rng = forked_rng(env);
        let heir = group.node.step_down(now, None, &mut rng);
        let parting = group.node.take_parting_messages();
        env.trace_with("group-left-handed-over", &(name, heir), || match heir {
            Some(heir) => format!("{name} to n{heir}"),
            None => format!("{name}: no member caught up"),
        });
        group.send(env, parting);
        if let Some(heir) = heir {
            env.observe(Observation::HandedOver { group: name, term, heir });
        }
    }

    fn stop_group(&mut self, env: &mut ServerEnv<'_>, name: &str, kept: &BTreeSet<String>) {
        self.groups.remove(name);
        self.tokens.forget_group(name);
        if !kept.contains(name) {
            GroupFiles::new(name).remove_all(env.disk());
            env.observe(Observation::GroupDropped { group: name });
        }
        env.trace_text("group-stopped", name);
    }

    /// Start the raft group of a local asset, for the caller to run; `None` when its files
    /// refused to load.
    fn start_asset_group(
        &mut self,
        env: &mut ServerEnv<'_>,
        name: &str,
        group: crate::meta::RaftGroup,
    ) -> Option<Group> {
        // Asset groups are managed (NRG): the meta layer dictates their members, and the
        // re-add ban guards only the meta group's automatic adds. With it, a leader acting on a
        // stale assignment that dropped a member could not take it back for five minutes (seed
        // 9778 of `churn`).
        let config = RaftConfig { observer: false, peer_readd_ban_ms: 0, ..Self::raft_config(env) };
        // A server added to a running group (§2.2, §8.3) joins one that has data: it must not
        // lead it, nor elect anyone, from an empty log. A founder that starts late need not
        // wait (it counts in the membership from the start, and its group may need its vote:
        // default seed 1203 of v13).
        let joining = group.joiners.contains(&env.node());
        let founded = self
            .groups
            .meta_mut()
            .and_then(|g| g.meta.as_deref_mut())
            .is_some_and(|meta| meta.founded_groups.remove(name));
        // A founder starts as a group of one (see `scale`), also when its membership record
        // could not be written: on the assignment's peers it would need the votes of joiners,
        // which vote for no member, and the group would never elect (default seed 6679 of
        // generator 15).
        let peers = if founded { vec![env.node()] } else { group.peers };
        match Self::start_group_node(env, name, config, peers, joining) {
            Ok(mut node) => {
                // The preferred member of a fresh group campaigns at once rather than waiting
                // out an election timeout (NATS does the same): new assets get a leader
                // quickly, and split votes among late members are rarer.
                if founded || (group.preferred == Some(env.node()) && node.term() == 0) {
                    let mut rng = forked_rng(env);
                    node.campaign(env.monotonic_ms(), &mut rng);
                }
                let snapshot_every = env.config().snapshot_every;
                let ack_early = env.bug(ACK_BEFORE_FSYNC);
                env.trace_text("group-started", name);
                Some(Group::new(name, node, snapshot_every, ack_early))
            }
            // Like the meta group: a damaged group stays down; the asset reports unhealthy.
            Err(e) => {
                if self.refused_groups.insert(name.to_string(), e.clone()).is_none() {
                    env.trace_with("group-refused", &(name, &e), || format!("{name}: {e}"));
                }
                None
            }
        }
    }

    /// NRG's cold-boot check, every second until a leader was seen (here from the first
    /// election timeout on): when every configured server was heard from and fewer of them
    /// run JetStream than the meta group expects, count quorums against the JetStream
    /// servers only.
    fn cold_boot_check(&mut self, env: &mut ServerEnv<'_>) {
        let Some(group) = self.groups.meta_mut() else { return };
        // A leader seen, or one shown by the log: not a cold boot, now or later.
        if group.node.boot_cluster_size_adjustable().is_err() {
            self.cold_boot_check_at_ms = u64::MAX;
            return;
        }
        env.broadcast(ServerMsg::StatszRequest);
        self.cold_boot_check_at_ms = env.monotonic_ms() + COLD_BOOT_CHECK_MS;
        // NATS counts every server it has heard from, and runs this check after any restart
        // (it keeps "had a leader" in memory). A removed peer, which no longer runs JetStream,
        // then stands in for a member that is down and shrinks the quorum of a group that has
        // data (peers seed 391, churn 1568: a leader without a committed entry). Here a log
        // with entries ends the check above, and only meta members are counted; the switch
        // restores both.
        let members = group.node.peers();
        let count_all = env.bug(BOOT_SIZE_AFTER_RESTART);
        // A server whose meta group had a leader says so in its stats: then the cluster is not
        // booting cold, whatever this member's empty log shows (outage seed 890: a member down
        // before the first leader, back after removals it never saw, counted them as servers
        // without JetStream). NATS's check does not look, and the switch restores that. The
        // check keeps its schedule (and its stats requests), so only the adjustment is spared.
        if !count_all && self.known_servers.values().any(|s| s.meta_led) {
            return;
        }
        let counted = |n: &NodeIndex| count_all || members.contains(n);
        let known: Vec<&ServerStats> = self.known_servers.iter().filter(|(n, _)| counted(n)).map(|(_, s)| s).collect();
        let total = known.len();
        let jetstream = known.iter().filter(|s| s.jetstream).count();
        let expected = members.len();
        let target = jetstream.max(2);
        if jetstream < total && total >= expected && jetstream != expected && group.node.quorum_size() != target / 2 + 1
        {
            match group.node.adjust_boot_cluster_size(jetstream) {
                Ok(()) => {
                    let quorum = group.node.quorum_size();
                    env.trace_with("cluster-size-adjusted", &(jetstream, quorum), || {
                        format!("{jetstream} servers, quorum {quorum}")
                    })
                }
                Err(e) => env.trace_text("cluster-size-refused", &e.to_string()),
            }
        }
    }

    /// A message from another server: a route exists, so start-up recovery may end.
    pub(super) fn note_route(&mut self) {
        if let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) {
            meta.route_up = true;
        }
    }

    /// The meta layer's timed work: end start-up recovery once a route is up, the one-shot
    /// orphan check, and the periodic snapshot (every minute, 15 s after a failure, §3.7)
    /// with the leader's cluster size check (§8.4).
    fn meta_tick(&mut self, env: &mut ServerEnv<'_>) {
        // Which groups this server leads, for the oracle's view of direct consumers an orphan
        // check removes; computed only when the check is due.
        let now = env.monotonic_ms();
        let check_due = |g: &Group| g.meta.as_deref().and_then(|m| m.orphan_check_at_ms).is_some_and(|at| at <= now);
        let leading = if self.groups.meta().is_some_and(check_due) { self.led_asset_groups() } else { BTreeSet::new() };
        let Some(group) = self.groups.meta_mut() else { return };
        let Some(meta) = group.meta.as_deref_mut() else { return };
        if let Some(kind) = meta.try_finish_recovery(env) {
            group.snapshot(env);
            if group.stay_out_if_removed(env, kind) {
                return;
            }
        }
        let meta = group.meta.as_deref_mut().expect("still there");
        if meta.orphan_check_at_ms.is_some_and(|at| at <= now) {
            let (leader_known, healthy) = (group.node.group_leader().is_some(), group.node.healthy(now));
            meta.orphan_check(env, leader_known, healthy, &leading);
        }
        if now >= meta.snapshot_at_ms && !meta.recovering() {
            let taken = group.snapshot(env);
            let meta = group.meta.as_deref_mut().expect("still there");
            meta.snapshot_at_ms = now + if taken { SNAPSHOT_INTERVAL_MS } else { SNAPSHOT_RETRY_MS };
            // §8.4: NATS checks the cluster size on the same ticker.
            self.check_cluster_size(env);
        }
    }

    /// The stream and consumer groups this server leads.
    fn led_asset_groups(&self) -> BTreeSet<String> {
        self.groups.assets().filter(|(_, g)| g.node.leader()).map(|(name, _)| name.to_string()).collect()
    }

    /// Mirrors' direct consumers on the origin streams this server leads (§11 #26).
    fn mirror_tick(&mut self, env: &mut ServerEnv<'_>) {
        let Some(meta) = self.groups.meta().and_then(|g| g.meta.as_deref()) else { return };
        // Which groups this server leads matters only when a health check is due.
        let leading = if meta.mirror_check_due(env.monotonic_ms()) { self.led_asset_groups() } else { BTreeSet::new() };
        if let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) {
            meta.mirror_check(env, &leading);
        }
    }
}
