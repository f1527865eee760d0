//! Peer management, the driver's half (spec §8.2, §8.3): the `SERVER.REMOVE` request (one
//! at a time, answered only once the removal applies on the leader that proposed it), the
//! removed server disabling JetStream, the leader re-placing streams off removed and onto
//! missing peers, and asset groups whose raft membership follows their assignment.

use sim::NodeIndex;

use super::env::{forked_rng, ServerEnv};
use super::group::Group;
use super::group_set::LeaderVisit;
use super::jetstream::{Answer, PendingPeerRemove};
use super::observe::Observation;
use super::requests::{propose_meta, trace_request_dropped};
use super::storage::{GroupFiles, MetaRemoval};
use super::wire::{ServerMsg, META};
use super::Server;
use crate::meta::model::peer_list;
use crate::meta::{self, EmptyGroupReport, EmptyPlan, GroupAsset, PeerId, StreamKey};
use crate::raft::{EntryData, ProposeError};

pub use super::wire::PeerTarget;

/// A member reports a group it holds nothing of this often, in heartbeats (NRG's lost-quorum
/// interval, which is also how long it must have waited for a leader first).
const EMPTY_REPORT_HEARTBEATS: u64 = 10;
/// The meta leader counts a report for this many report intervals: a member that stopped
/// reporting (it got entries, or left) stops counting soon.
const EMPTY_REPORT_FRESH_INTERVALS: u64 = 3;

impl Server {
    /// Whether raft traffic of asset groups from `peer` is taken: not from a server outside
    /// this server's meta membership.
    pub fn hears_in_asset_groups(&self, peer: PeerId) -> bool {
        self.groups.meta().is_none_or(|m| m.node.peers().contains(&peer))
    }

    /// Meta rescue as this server receives the operator's broadcast (§8.4): NRG refuses it
    /// while a leader is known, or with a quorum above the current one.
    pub(super) fn rescue(&mut self, env: &mut ServerEnv<'_>, quorum: usize) {
        let Some(group) = self.groups.meta_mut() else {
            env.trace_text("op-refused", "meta group not running");
            return;
        };
        match group.node.rescue(env.monotonic_ms(), quorum) {
            Ok(()) => env.trace_with("meta-rescued", &quorum, || format!("quorum {quorum}")),
            Err(e) => env.trace_text("rescue-refused", &e.to_string()),
        }
    }

    /// A client's `SERVER.REMOVE` at this server: goes to the meta leader like any request.
    pub(super) fn client_remove_peer(&mut self, env: &mut ServerEnv<'_>, target: PeerTarget) {
        let Some((request, route)) = self.open_client_request(env, true) else { return };
        let at = env.node();
        env.trace_with("request", &(request, "remove-peer", &target), || {
            format!("#{request} at n{at}: remove peer {target}")
        });
        self.send_request(env, route, ServerMsg::RemovePeer { request, target });
    }

    /// The meta leader proposes the removal; errors are answered at once. The answer for a
    /// proposed removal waits for its apply ([`Self::on_peer_removed`]).
    pub(super) fn lead_remove_peer(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        target: PeerTarget,
    ) {
        let now = env.monotonic_ms();
        let known_names = self.named_servers.iter().map(|&n| (n, format!("n{n}"))).collect::<Vec<_>>();
        let Some(group) = self.groups.meta_mut() else {
            trace_request_dropped(env, origin, request);
            return;
        };
        let meta = group.meta.as_deref_mut().expect("the meta group carries the meta layer");
        let Some(term) = meta.leader_term else {
            trace_request_dropped(env, origin, request);
            return;
        };
        let resolved = match (&target.peer, &target.name) {
            (Some(peer), _) => Some(*peer),
            (None, Some(name)) => known_names.iter().find(|(_, n)| n == name).map(|(id, _)| *id),
            (None, None) => None,
        };
        let answer: Result<PeerId, String> = match resolved {
            _ if meta.peer_remove.is_some() => Err("membership change inflight".into()),
            Some(peer) if group.node.peers().contains(&peer) => {
                if group.node.peers().len() == 1 {
                    Err("cannot remove the last peer".into())
                } else {
                    Ok(peer)
                }
            }
            _ => Err("peer not a member".into()),
        };
        let peer = match answer {
            Ok(peer) => peer,
            Err(e) => return self.send_answer(env, origin, request, Err(e)),
        };
        match group.node.propose(now, term, EntryData::RemovePeer(peer)) {
            Ok(index) => {
                env.observe(Observation::PeerRemoveProposed { term, peer });
                env.trace_with("peer-remove-proposed", &(index, peer, origin, request), || {
                    format!("remove n{peer} for n{origin}#{request} at index {index}")
                });
                let pending = PendingPeerRemove { peer, term, origin, request };
                if meta.bugs.peer_remove_reply_early {
                    self.answer_peer_remove(env, pending);
                } else {
                    meta.peer_remove = Some(pending);
                }
            }
            Err(ProposeError::MembershipChangePending) => {
                self.send_answer(env, origin, request, Err("membership change in progress".into()))
            }
            Err(e) => env.trace_text("propose-refused", &e.to_string()),
        }
    }

    /// The removal answer, as the leader sends it (S17: only after its apply, same term).
    fn answer_peer_remove(&mut self, env: &mut ServerEnv<'_>, pending: PendingPeerRemove) {
        env.observe(Observation::PeerRemoveAnswered { term: pending.term, peer: pending.peer });
        let answer: Answer = Ok(format!("peer n{} removed", pending.peer));
        self.send_answer(env, pending.origin, pending.request, answer);
    }

    /// After a meta input: act on membership entries the meta layer applied (§8.2).
    pub(super) fn after_membership_changes(&mut self, env: &mut ServerEnv<'_>) {
        let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) else { return };
        let removed = std::mem::take(&mut meta.peers_removed);
        let answered =
            meta.peer_remove.take_if(|p| removed.iter().any(|&(peer, term)| peer == p.peer && term == Some(p.term)));
        if let Some(pending) = answered {
            self.answer_peer_remove(env, pending);
        }
        let me = env.node();
        if removed.iter().any(|&(peer, _)| peer == me) {
            self.disable_jetstream(env);
            return;
        }
        self.lead_peer_reconcile(env);
    }

    /// This server applied its own removal: JetStream stops here (the meta group and every
    /// asset group). The streams' files stay on disk; the meta group's state goes.
    fn disable_jetstream(&mut self, env: &mut ServerEnv<'_>) {
        for name in self.groups.keys() {
            self.tokens.forget_group(name);
        }
        if let Some(group) = self.groups.meta() {
            forget_meta_state(env, group.node.peers());
        }
        // Requests still waiting keep waiting, for an answer from the meta leader or a timeout.
        if let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) {
            self.requests_off_meta = std::mem::take(&mut meta.requests);
        }
        self.groups.clear();
        self.jetstream_removed = true;
        env.trace_text("jetstream-disabled", "removed from the meta group");
        let own = self.own_stats(env);
        self.known_servers.insert(env.node(), own);
        let msg = self.stats_msg(env);
        env.broadcast(msg);
    }

    /// The acting meta leader re-places streams whose peers left the meta group or fall short
    /// of their replicas (§8.3), when asked: on election and after a membership change.
    fn lead_peer_reconcile(&mut self, env: &mut ServerEnv<'_>) {
        let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) else { return };
        if !std::mem::take(&mut meta.peer_reconcile_due) {
            return;
        }
        let Some(ctx) = self.leader_context(env, None) else { return };
        let group = self.groups.meta_mut().expect("leader_context found the meta group");
        let meta = group.meta.as_deref().expect("the meta group carries the meta layer");
        if !meta::peers_need_reconcile(&meta.state, &meta.inflight, &ctx) {
            return;
        }
        let term = meta.leader_term.expect("leader_context requires a leader term");
        let mut rng = forked_rng(env);
        let remap = meta::reconcile_peers(&meta.state, &meta.inflight, &ctx, &mut rng);
        for name in &remap.emptied_groups {
            // Its only copies were on removed servers: what they held is gone, as in NATS.
            env.trace_text("group-data-lost", name);
            env.observe(Observation::GroupEmptied { group: name });
        }
        for entry in remap.entries {
            trace_placement(env, "peer-reconcile", &entry);
            if let Err(e) = propose_meta(env, group, term, &entry, &ctx.meta_peers) {
                env.trace_text("propose-refused", &e);
                return;
            }
        }
    }

    /// From the tick: the leader of an asset group moves its raft membership toward the
    /// assignment's peers, one change at a time (adds first, so the group never shrinks below
    /// what it has while it grows). A stream scaled down (§2.2) keeps its peers in the
    /// assignment until its group has shrunk: the leader removes the members least caught up,
    /// never itself (NATS keeps the stream leader), then tells the meta leader which peers are
    /// left, and the assignment drops the others. So no member leaves a raft membership that
    /// still needs its vote, and the peers kept hold everything the group committed.
    pub(super) fn sync_group_peers(&mut self, env: &mut ServerEnv<'_>) {
        // Every tick on every server: build the assignment map only where there is a group to lead.
        if !self.groups.any_asset(|g| g.node.leader()) {
            return;
        }
        let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) else { return };
        let over_placed = meta.over_placed_streams().clone();
        let desired = meta.desired_groups();
        self.assignments.refresh(&desired, &over_placed, &self.groups);
        let now = env.monotonic_ms();
        let me = env.node();
        let shrink_keeps_silent = env.bug(super::bugs::SHRINK_KEEPS_SILENT_MEMBER);
        let mut shrunk = Vec::new();
        let assignments = &self.assignments;
        // Only the groups whose learners or members this changes count as touched.
        // A leader found with nothing to do is passed over on later ticks while nothing reaches
        // it and the assignments stay: what it decides on is its own raft state and its
        // assignment, except a scale-down's, which also goes by the time.
        self.groups.maybe_leaders_marking(assignments.generation(), |name, group| {
            if !group.node.leader() {
                return LeaderVisit::Quiet;
            }
            let Some((want, over_placed)) = assignments.get(&desired, group.slot()) else { return LeaderVisit::Quiet };
            debug_assert!(desired.get(name) == Some(want), "{name}'s assignment found by slot");
            // A removal still uncommitted may yet commit: a report now would keep a member
            // on the assignment that the group drops (default seed 6944 of v13).
            if group.node.membership_change_pending() {
                return LeaderVisit::Quiet;
            }
            // Servers about to join learn the log first; each is added once it holds it.
            let learners: Vec<PeerId> =
                want.peers.iter().copied().filter(|p| !group.node.peers().contains(p)).collect();
            let learners_changed = group.node.set_learners(&learners);
            let commit = group.node.commit_index();
            let have = group.node.peers();
            let scaled_to = over_placed.map(|(_, r)| *r).filter(|&r| r < want.peers.len());
            let added = learners.iter().copied().find(|&p| group.node.match_index(p) >= commit);
            let stray = have.iter().find(|p| !want.peers.contains(p)).copied();
            // Set when the change is a scale-down's shrink removal, which the oracle is told of.
            let mut shrinking = false;
            let change = match (scaled_to, added, stray) {
                (None, Some(add), _) => EntryData::AddPeer(add),
                (_, _, Some(remove)) => EntryData::RemovePeer(remove),
                (None, None, None) if over_placed.is_none() => return LeaderVisit::after(learners_changed),
                (None, None, None) => return LeaderVisit::again(learners_changed),
                // Scaling down: shrink to the replicas, then report (an add only to reach them).
                (Some(r), Some(add), None) if have.len() < r => EntryData::AddPeer(add),
                (Some(r), None, None) if have.len() < r => return LeaderVisit::again(learners_changed), // a learner catching up
                (Some(r), _, None) if have.len() > r => {
                    shrinking = true;
                    // The rule is `meta::shrink_removal`'s: a member heard from lately, or a
                    // silent one when that keeps a quorum of the smaller group heard from.
                    let node = &group.node;
                    let members: Vec<meta::ShrinkMember> = have
                        .iter()
                        .map(|&peer| meta::ShrinkMember {
                            peer,
                            match_index: node.match_index(peer),
                            heard_ms: node.heard_at(peer),
                        })
                        .collect();
                    let (heartbeat, lost_quorum) = (node.heartbeat_ms(), node.lost_quorum_ms());
                    match meta::shrink_removal(me, &members, now, heartbeat, lost_quorum, shrink_keeps_silent) {
                        Some(p) => EntryData::RemovePeer(p),
                        None => return LeaderVisit::again(learners_changed),
                    }
                }
                (Some(_), _, None) => {
                    let stream = over_placed.expect("scaled_to comes from it").0.clone();
                    shrunk.push((stream, name.to_string(), have.to_vec()));
                    return LeaderVisit::again(learners_changed);
                }
            };
            let term = group.node.term();
            // Refusals (a change still uncommitted, a re-add ban) are retried next tick.
            let proposed = group.node.propose(now, term, change.clone()).is_ok();
            if proposed {
                env.trace_with("group-peer-change", &(name, format!("{change:?}")), || {
                    format!("{name}: {}", super::apply::describe_entry(false, &change))
                });
                if let (true, EntryData::RemovePeer(removed)) = (shrinking, &change) {
                    let index = group.node.last_index();
                    env.observe(Observation::ShrinkRemoving { group: name, index, removed: *removed, now_ms: now });
                }
            }
            // A refused proposal is tried again next tick.
            LeaderVisit::again(learners_changed || proposed)
        });
        for (stream, group, peers) in shrunk {
            self.report_group_shrunk(env, stream, group, peers);
        }
    }

    /// A stream group's leader shrank its raft membership to the replicas its stream asks for:
    /// tell the meta leader (or act, being it), every tick until the assignment follows.
    fn report_group_shrunk(&mut self, env: &mut ServerEnv<'_>, stream: StreamKey, group: String, peers: Vec<PeerId>) {
        let Some(meta_group) = self.groups.meta() else { return };
        let leading = meta_group.meta.as_deref().is_some_and(|m| m.leader_term.is_some());
        env.trace_with("group-shrunk", &(&stream, &group, &peers), || {
            format!("{stream} {group} to {}", peer_list(&peers))
        });
        if leading {
            self.lead_group_shrunk(env, stream, group, peers);
        } else if let Some(leader) = meta_group.node.group_leader().filter(|&l| l != env.node()) {
            env.send(leader, ServerMsg::GroupShrunk { stream, group, peers });
        }
    }

    /// The meta leader drops from a scaled-down stream's assignment the peers its group no
    /// longer counts (a server that is not leader ignores the report).
    pub(super) fn lead_group_shrunk(
        &mut self,
        env: &mut ServerEnv<'_>,
        stream: StreamKey,
        group: String,
        peers: Vec<PeerId>,
    ) {
        let Some(ctx) = self.leader_context(env, None) else { return };
        let meta_group = self.groups.meta_mut().expect("leader_context found the meta group");
        let meta = meta_group.meta.as_deref().expect("the meta group carries the meta layer");
        let term = meta.leader_term.expect("leader_context requires a leader term");
        let Some(entry) = meta::shrink_to_group(&meta.state, &meta.inflight, &stream, &group, &peers) else { return };
        trace_placement(env, "group-shrunk-applied", &entry);
        if let Err(e) = propose_meta(env, meta_group, term, &entry, &ctx.meta_peers) {
            env.trace_text("propose-refused", &e);
        }
    }
}

impl Server {
    /// NATS `checkEvictedPeers`, every tick: a member of a leaderless asset group whose raft
    /// membership still names servers the meta layer removed for good (not meta peers, not in
    /// the assignment any more) evicts them when the rest could not elect without it. Without
    /// this a group whose removed members held its quorum never elects again (peers seed 172:
    /// a removal left an R2 group on one old member that still counted the removed one).
    pub(super) fn evict_removed_peers(&mut self, env: &mut ServerEnv<'_>) {
        let Some(meta_group) = self.groups.meta() else { return };
        let Some(meta) = meta_group.meta.as_deref() else { return };
        if meta.recovering() || meta_group.node.leaderless() {
            return;
        }
        // Cheap test first: this runs on every tick of every server.
        let meta_peers = meta_group.node.peers();
        let stuck = |g: &&Group| g.node.leaderless() && g.node.peers().iter().any(|p| !meta_peers.contains(p));
        if !self.groups.any_asset(|g| stuck(&g)) {
            return;
        }
        let meta_peers = meta_peers.to_vec();
        let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) else { return };
        let desired = meta.desired_groups();
        self.groups.assets_marking(|name, group| {
            let Some(want) = desired.get(name) else { return false };
            let removed: Vec<PeerId> = group
                .node
                .peers()
                .iter()
                .copied()
                .filter(|p| !meta_peers.contains(p) && !want.peers.contains(p))
                .collect();
            if removed.is_empty() || !group.node.leaderless() {
                return false;
            }
            let members = group.node.peers();
            let learners: Vec<PeerId> =
                want.peers.iter().copied().filter(|p| meta_peers.contains(p) && !members.contains(p)).collect();
            let stamp = group.node.stamp();
            if let Ok(evicted) = group.node.evict_peers(&removed, &learners) {
                if !evicted.is_empty() {
                    env.trace_with("group-peers-evicted", &(name, &evicted), || {
                        format!("{name}: {}", peer_list(&evicted))
                    });
                }
            }
            group.node.stamp() != stamp || group.settle_due()
        });
    }
}

impl Server {
    /// Every tick (§8.3, [`crate::meta::empty`]): a member of an asset group every peer of which
    /// joined it (no founder is left in the assignment) that holds none of the group's log, and
    /// has waited longer than the lost-quorum interval without hearing of any leader, tells the
    /// meta leader, and again every such interval while that lasts. The leader starts the group
    /// over once every peer did and none of them can be elected. A group with a founder left
    /// never reports, nor does a member that ever heard of a leader or holds anything.
    pub(super) fn report_empty_groups(&mut self, env: &mut ServerEnv<'_>) {
        let now = env.monotonic_ms();
        let waiting = |g: &Group| {
            g.empty_report_at_ms <= now
                && g.node.waits_for_leader()
                && g.node.last_index() == 0
                && !g.node.had_previous_leader()
                && g.node.leaderless_for_long(now)
        };
        // Cheap test first: this runs on every tick of every server.
        if !self.groups.any_asset(waiting) {
            return;
        }
        let names: Vec<String> = self.groups.assets().filter(|(_, g)| waiting(g)).map(|(n, _)| n.to_string()).collect();
        let Some(meta_group) = self.groups.meta_mut() else { return };
        let meta_leader = meta_group.node.group_leader();
        let Some(meta) = meta_group.meta.as_deref_mut() else { return };
        if meta.recovering() || meta.state.write_error().is_some() {
            return;
        }
        let leading = meta.leader_term.is_some();
        let desired = meta.desired_groups();
        let joined = |name: &String| desired.get(name).is_some_and(|g| g.peers.iter().all(|p| g.joiners.contains(p)));
        let assets: Vec<(String, GroupAsset)> = names
            .into_iter()
            .filter(joined)
            .filter_map(|name| {
                let stream = meta.local.streams().find(|(_, a)| a.group_name == name).map(|(k, _)| k.clone());
                let asset = match stream {
                    Some(key) => GroupAsset::Stream(key),
                    None => {
                        let consumer = meta.local.public_consumers().find(|(_, a)| a.group_name == name);
                        GroupAsset::Consumer(consumer.map(|(k, _)| k.clone())?)
                    }
                };
                Some((name, asset))
            })
            .collect();
        let (me, every_ms) = (env.node(), env.config().heartbeat_ms.saturating_mul(EMPTY_REPORT_HEARTBEATS));
        for (name, asset) in assets {
            let Some(group) = self.groups.get_mut(&name) else { continue };
            group.empty_report_at_ms = now.saturating_add(every_ms);
            let report = EmptyGroupReport { asset, group: name, peer: me, members: group.node.peers().to_vec() };
            env.trace_with("group-empty-reported", &report, || report.to_string());
            match meta_leader {
                _ if leading => self.lead_empty_group(env, report),
                Some(leader) if leader != me => env.send(leader, ServerMsg::GroupEmpty(report)),
                // No meta leader known (or one not acting yet): the next interval's report may
                // find one.
                _ => {}
            }
        }
    }

    /// The meta leader acts on a member's report of a group it holds nothing of (a server that
    /// is not leader ignores it): it keeps the report, and once every peer of the group did
    /// and none can be elected, proposes the asset on a fresh group founded by the same peers.
    pub(super) fn lead_empty_group(&mut self, env: &mut ServerEnv<'_>, report: EmptyGroupReport) {
        let Some(ctx) = self.leader_context(env, None) else { return };
        let now = env.monotonic_ms();
        let every_ms = env.config().heartbeat_ms.saturating_mul(EMPTY_REPORT_HEARTBEATS);
        let fresh_ms = every_ms.saturating_mul(EMPTY_REPORT_FRESH_INTERVALS);
        let mut rng = forked_rng(env);
        let group = self.groups.meta_mut().expect("leader_context found the meta group");
        let meta = group.meta.as_deref_mut().expect("the meta group carries the meta layer");
        let term = meta.leader_term.expect("leader_context requires a leader term");
        let book = &mut meta.empty_reports;
        let plan = meta::on_empty_report(&report, book, &meta.state, &meta.inflight, &ctx, now, fresh_ms, &mut rng);
        let words = plan.describe();
        env.trace_with("group-empty", &(&report, &words), || format!("{report} -> {words}"));
        let EmptyPlan::StartOver { entry, emptied } = plan else { return };
        // Its peers hold nothing of it, and whoever held its data left the meta group.
        env.trace_text("group-data-lost", &emptied);
        env.observe(Observation::GroupEmptied { group: &emptied });
        trace_placement(env, "group-start-over", &entry);
        if let Err(e) = propose_meta(env, group, term, &entry, &ctx.meta_peers) {
            env.trace_text("propose-refused", &e);
        }
    }
}

/// An entry that places an asset, traced as what it places where (`A:S1 on [1,2]`).
fn trace_placement(env: &mut ServerEnv<'_>, kind: &'static str, entry: &meta::MetaEntry) {
    let placed = placement(entry);
    env.trace_with(kind, &placed, || format!("{} on {}", placed.0, peer_list(&placed.1)));
}

/// What an entry places where, for the trace.
fn placement(entry: &meta::MetaEntry) -> (String, Vec<PeerId>) {
    match entry {
        meta::MetaEntry::AssignStream { sa, .. } | meta::MetaEntry::UpdateStream { sa, .. } => {
            (sa.key().to_string(), sa.group.peers.clone())
        }
        meta::MetaEntry::AssignConsumer { ca, .. } => (ca.key().to_string(), ca.group.peers.clone()),
        meta::MetaEntry::RemoveConsumer { ca, .. } => (format!("{} (deleted)", ca.key()), Vec::new()),
        other => (format!("{other:?}"), Vec::new()),
    }
}

/// On this server's own removal, record it and delete the meta group's files, as NATS's
/// `DisableJetStream` does (`meta.Delete()`). A restart then finds the record and keeps
/// JetStream off: it replays no stale assignment and starts no asset group from one (churn
/// seeds 1612 and 19046: a server that had joined by itself restarted from a snapshot that no
/// longer named it, announced itself, was added back, and its stale copy of a deleted
/// stream's group helped fork that group's history). NATS restarts it with a fresh meta
/// group that rejoins; see the README's differences for why we do not, yet.
fn forget_meta_state(env: &mut ServerEnv<'_>, members: &[PeerId]) {
    let me = env.node();
    let record = MetaRemoval { members_left: members.iter().copied().filter(|&p| p != me).collect() };
    // The record first, synced: a power loss must not leave the meta state gone unrecorded.
    match record.write(env.disk()) {
        Ok(true) => {}
        Ok(false) => env.trace_text("fsync-lost", MetaRemoval::PATH),
        Err(e) => {
            // The state stays: a restart replays the removal and stops again.
            env.trace_text("removal-record-failed", &e.to_string());
            return;
        }
    }
    GroupFiles::new(META).remove_all(env.disk());
    let left = &record.members_left;
    env.trace_with("meta-state-deleted", left, || format!("members left {}", peer_list(left)));
}
