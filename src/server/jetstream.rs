//! The meta layer on a server: the sans-IO [`crate::meta`] state fed by the meta group's
//! applied entries, the leader's inflight proposals, this server's local assets, and its
//! clients' requests ([`ClientRequests`]). The server drives it; it never touches raft itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sim::NodeIndex;

use super::assets::AssetRecord;
use super::bugs;
use super::client_requests::ClientRequests;
use super::crash_points::{self, CrashPoint};
use super::env::ServerEnv;
use super::observe::Observation;
use super::probes::{self, OpOutcome};
use super::scale;
use super::storage::GroupFiles;
use super::wire::ServerMsg;
use crate::meta::model::StreamCursor;
use crate::meta::{
    ApiError, ConsumerKey, Effect, EmptyReports, Inflight, LocalAssets, LocalChange, MetaBugs, MetaEntry, MetaState,
    OpCode, Outcome, PeerId, RaftGroup, RecoveryUpdates, Revision, StreamAssignment, StreamKey, StreamResult,
};
use crate::raft::{EntryData, Index, Term};

/// The raft groups a server should run, in name order, shared between ticks (see
/// [`MetaLayer::desired_groups`]). A group keeps its index until the next map is built, so
/// a walk can find it again without comparing names.
#[derive(Debug, Default, PartialEq)]
pub struct DesiredGroups(Vec<RaftGroup>);

impl DesiredGroups {
    pub fn position(&self, name: &str) -> Option<usize> {
        self.0.binary_search_by(|group| group.name.as_str().cmp(name)).ok()
    }

    pub fn get(&self, name: &str) -> Option<&RaftGroup> {
        self.position(name).map(|at| &self.0[at])
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The group at `at`, a [`Self::position`] of this map.
    pub fn at(&self, at: usize) -> &RaftGroup {
        &self.0[at]
    }

    /// In name order.
    pub fn iter(&self) -> impl Iterator<Item = &RaftGroup> {
        self.0.iter()
    }
}

/// Put in name order; of a name given twice, the last group stays. The groups are rebuilt on
/// every change of a server's assets, thousands of them at a time.
impl FromIterator<RaftGroup> for DesiredGroups {
    fn from_iter<I: IntoIterator<Item = RaftGroup>>(groups: I) -> Self {
        DesiredGroups(super::by_name::last_by_name(groups.into_iter().collect(), |g| g.name.as_str()))
    }
}

/// First byte of a raft-load entry (the scenario op `propose`): not a meta operation, so the
/// meta layer skips it. Meta entries start with their codec version, which is never this.
pub const FILLER_TAG: u8 = 0xF0;

/// Assignment results waiting to go to the meta leader; more are dropped (and traced), as a
/// publish with no subscriber would be.
pub const RESULTS_OUT_MAX: usize = 1_000;
/// The orphan check runs once, this long after start-up recovery ends (§4).
pub const ORPHAN_CHECK_DELAY_MS: u64 = 30_000;
/// A mirror checks its direct consumer this often, and sets up a new one when it heard
/// nothing from the old for longer than this (NATS `sourceHealthCheckInterval`).
pub const MIRROR_HEALTH_CHECK_MS: u64 = 10_000;

/// Which recovery the meta layer is in (§3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RecoveryKind {
    /// Replaying its own snapshot and log after a start (NATS `metaRecovering`).
    Startup,
    /// Catching up from a leader's snapshot during normal operation.
    Catchup,
}

/// `startup` or `catch-up`.
impl std::fmt::Display for RecoveryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecoveryKind::Startup => "startup",
            RecoveryKind::Catchup => "catch-up",
        })
    }
}

/// A recovery in progress: what it staged, and whether raft's replay-done signal came.
pub struct Recovery {
    pub kind: RecoveryKind,
    pub staged: RecoveryUpdates,
    pub replay_done: bool,
    /// Streams whose replayed adds a leader's snapshot, staged into start-up recovery, dropped:
    /// the recovery's end owes their local copies the delete NATS would have made
    /// ([`MetaLayer::install`]).
    pub dropped_adds: BTreeSet<StreamKey>,
}

pub use super::wire::Answer;

/// The removal the meta leader proposed and owes an answer for (NATS keeps one reply
/// subject; a second request meanwhile is refused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingPeerRemove {
    pub peer: PeerId,
    pub term: Term,
    pub origin: NodeIndex,
    pub request: u64,
}

/// The meta group's snapshot payload: the applied state only, never inflight (spec S8).
#[derive(Serialize, Deserialize)]
pub struct MetaSnapshot {
    #[serde(deserialize_with = "crate::meta::model::sorted_map::deserialize")]
    pub streams: BTreeMap<StreamKey, StreamAssignment>,
}

/// Scaled-up groups whose carry waits, by name: each with its stream and the R1 group whose
/// store it carries.
pub type CarriesPending = BTreeMap<String, (StreamKey, String)>;

pub struct MetaLayer {
    pub state: MetaState,
    pub inflight: Inflight,
    pub local: LocalAssets,
    pub bugs: MetaBugs,
    /// The term in which the meta layer acts as leader, set on the lead-change signal.
    pub leader_term: Option<Term>,
    /// This server's client requests and what came back. Here, not on the server, because
    /// the acting leader answers its own clients as it applies their entries, in order.
    pub requests: ClientRequests,
    /// Local assets changed since the server last reconciled its stream and consumer groups.
    pub assets_changed: bool,
    /// Streams this server may hold at most (`[system] stream_capacity`).
    pub stream_capacity: Option<u32>,
    /// Failed creates to report to the meta leader; the server sends them after the input.
    pub results_out: Vec<StreamResult>,
    /// The recovery in progress, if any (§3): entries and snapshots are staged meanwhile.
    pub recovery: Option<Recovery>,
    /// A route to another server exists: start-up recovery may end (NATS pushes the
    /// replay-done signal only then).
    pub route_up: bool,
    /// When the one-shot orphan check runs, on the monotonic clock (§4).
    pub orphan_check_at_ms: Option<u64>,
    /// The orphan check came and its preconditions failed: NATS never retries it.
    pub orphan_check_skipped: bool,
    /// When mirrors next check their direct consumers here, on the monotonic clock.
    pub mirror_check_at_ms: u64,
    /// Each wanted direct consumer, and when its mirror last heard from it (every tick while
    /// it runs): one silent for longer than [`MIRROR_HEALTH_CHECK_MS`] is set up again. In
    /// memory only.
    direct_seen: BTreeMap<ConsumerKey, u64>,
    /// The asset files on disk, as last written (see [`super::assets`]).
    pub asset_files: BTreeMap<String, AssetRecord>,
    /// When the next periodic meta snapshot is due, on the monotonic clock.
    pub snapshot_at_ms: u64,
    /// The leader's one peer removal awaiting its apply (§8.2).
    pub peer_remove: Option<PendingPeerRemove>,
    /// Peer removals applied in normal mode since the server last looked, with the term
    /// this layer acted as leader in then.
    pub peers_removed: Vec<(PeerId, Option<Term>)>,
    /// The leader should re-place streams on stale or missing peers (§8.3).
    pub peer_reconcile_due: bool,
    /// Groups this server just founded with an R1 store carried over (§2.2): it campaigns at
    /// once when it starts them, as the preferred member of a new group does.
    pub founded_groups: BTreeSet<String>,
    /// Scaled-up groups whose carry could not be written (a full disk), each with its stream
    /// and the R1 group whose store it waits to carry: the group is not started and the store
    /// is kept until a retry, every tick, founds it ([`scale::carry_store`]).
    pub carries_pending: CarriesPending,
    /// [`Self::over_placed_streams`] as of a revision of the applied state.
    over_placed: (Option<Revision>, BTreeMap<String, (StreamKey, usize)>),
    /// [`Self::desired_groups`] as of revisions of the applied state and the local assets.
    desired: (Option<(Revision, Revision)>, Arc<DesiredGroups>),
    /// The last leader term in which `checkClusterSize` could judge (it had heard from as
    /// many servers as the cluster size counts). Until then NATS leaves the size for its next
    /// periodic check, a minute on, and L10 owes nothing yet.
    pub cluster_size_judged_term: Option<Term>,
    /// The leader's reports from members that hold nothing of groups every peer of which
    /// joined them (§8.3); a new leader starts with none.
    pub empty_reports: EmptyReports,
}

impl MetaLayer {
    pub fn new(bugs: MetaBugs, api_level: i64, stream_capacity: Option<u32>) -> Self {
        MetaLayer {
            state: MetaState::new(api_level),
            inflight: Inflight::new(bugs),
            local: LocalAssets::default(),
            bugs,
            leader_term: None,
            requests: ClientRequests::default(),
            assets_changed: false,
            stream_capacity,
            results_out: Vec::new(),
            recovery: Some(Recovery {
                kind: RecoveryKind::Startup,
                staged: RecoveryUpdates::new(bugs),
                replay_done: false,
                dropped_adds: BTreeSet::new(),
            }),
            route_up: false,
            orphan_check_at_ms: None,
            orphan_check_skipped: false,
            mirror_check_at_ms: 0,
            direct_seen: BTreeMap::new(),
            asset_files: BTreeMap::new(),
            snapshot_at_ms: 60_000,
            peer_remove: None,
            peers_removed: Vec::new(),
            peer_reconcile_due: false,
            founded_groups: BTreeSet::new(),
            carries_pending: BTreeMap::new(),
            over_placed: (None, BTreeMap::new()),
            desired: (None, Arc::default()),
            cluster_size_judged_term: None,
            empty_reports: EmptyReports::default(),
        }
    }

    /// Staging instead of applying (§3): start-up or catch-up recovery.
    pub fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// NATS `metaRecovering`: the replay after a start has not ended (healthz says so, and the
    /// layer stays quiet, §3.5).
    pub fn startup_recovering(&self) -> bool {
        self.recovery.as_ref().is_some_and(|r| r.kind == RecoveryKind::Startup)
    }

    /// One committed entry of the meta group, in order. `answer` is true on the acting leader:
    /// it answers the requests the entry carries.
    pub fn on_entry(&mut self, env: &mut ServerEnv<'_>, index: Index, data: &[u8], answer: bool) {
        if data.first() == Some(&FILLER_TAG) || self.state.write_error().is_some() {
            return self.on_other_entry(env, index, &EntryData::LeaderNoop);
        }
        env.observe(Observation::MetaEntry { index, data: Some(data) });
        let op = MetaEntry::peek_op(data);
        if let Some(recovery) = self.recovery.as_mut() {
            match self.state.stage(index, data, &mut recovery.staged) {
                Ok(()) => env.probe(probes::meta_op(op, OpOutcome::Staged)),
                Err(e) => {
                    env.probe(probes::meta_op(op, OpOutcome::Refused));
                    env.trace_text("meta-apply-error", &e.to_string());
                }
            }
            return;
        }
        self.observe_stream_assignment(env, data);
        let update = op == Some(OpCode::UpdateStream);
        let refit = update && self.refits_consumers(data);
        match self.state.apply(index, data, env.node(), &mut self.inflight) {
            Ok(effects) => {
                env.probe(probes::meta_op(op, OpOutcome::Applied));
                self.observe_projection(env);
                self.run_effects(env, effects, answer, update);
                // §2.2, §8.2: the consumers of a stream on other peers follow it (NATS remaps
                // them with the update); the leader's reconcile fits them to the new peers.
                if refit && self.leader_term.is_some() {
                    self.peer_reconcile_due = true;
                }
            }
            Err(e) => {
                env.probe(probes::meta_op(op, OpOutcome::Refused));
                env.trace_text("meta-apply-error", &e.to_string());
            }
        }
    }

    /// Whether a stream update puts the stream on other peers (a scale, a re-placement), or
    /// asks for another replica count: its consumers are fitted to the stream again. A scale
    /// down and back up before the group shrank keeps the peers, while the leader's reconcile
    /// in between shrank the consumers (default seed 8931 of generator 15: a consumer left on
    /// two of its stream's three peers for good).
    fn refits_consumers(&self, data: &[u8]) -> bool {
        let Ok(MetaEntry::UpdateStream { sa, .. }) = MetaEntry::decode(data) else { return false };
        let replicas = |sa: &crate::meta::StreamAssignment| sa.config().ok().map(|c| c.config().replicas.max(1));
        // Any other peer set: a scale, or a peer removal's replacement (§8.2).
        self.state
            .stream(&sa.key())
            .is_some_and(|old| old.group.peers != sa.group.peers || replicas(old) != replicas(&sa))
    }

    /// Tell the oracle what this server's projection is at its applied index (S4 over time).
    fn observe_projection(&self, env: &mut ServerEnv<'_>) {
        let (index, digest) = (self.state.applied_index(), self.state.projection_digest());
        env.observe(Observation::Projection { index, digest });
    }

    /// Show the oracle a stream assignment against the one this server holds (S18: a
    /// stream is re-assigned only with the group and created time it already has; two groups
    /// for one stream, #3679, show up there on every server).
    fn observe_stream_assignment(&self, env: &mut ServerEnv<'_>, data: &[u8]) {
        let Ok(MetaEntry::AssignStream { sa, .. }) = MetaEntry::decode(data) else { return };
        let applied = self.state.stream(&sa.key());
        if applied.is_some() {
            env.observe(Observation::StreamAssigned { assignment: &sa, applied });
        }
    }

    /// A membership change or leader no-op: nothing for the meta state, but it counts. A
    /// membership change applied in normal operation is JetStream's business (§8.1, §8.2):
    /// the server acts on it after this input.
    pub fn on_other_entry(&mut self, env: &mut ServerEnv<'_>, index: Index, data: &EntryData) {
        if self.state.write_error().is_some() {
            return;
        }
        env.observe(Observation::MetaEntry { index, data: None });
        self.state.note_applied(index);
        if !self.recovering() {
            self.observe_projection(env);
        }
        // The raft membership changed whatever the meta layer does with it: NRG bans a removed
        // server's re-add from the entry's commit on, also where only a replay applied it. Told
        // in startup recovery too, or the oracle misses a removal that the only server left to
        // apply it applied while it recovered (churn seed 11167 of generator 15: n1 committed
        // the removal of n2, down at the time, right after its restart, and the oracle expected
        // it to add n2 back).
        match *data {
            EntryData::RemovePeer(peer) => env.observe(Observation::Membership { index, peer, member: false }),
            EntryData::AddPeer(peer) => env.observe(Observation::Membership { index, peer, member: true }),
            _ => {}
        }
        if self.startup_recovering() {
            return;
        }
        match *data {
            EntryData::RemovePeer(peer) => {
                env.observe(Observation::RemovalApplied { peer, leader_term: self.leader_term });
                self.peers_removed.push((peer, self.leader_term));
                self.peer_reconcile_due |= self.leader_term.is_some();
            }
            EntryData::AddPeer(_) => {
                self.peer_reconcile_due |= self.leader_term.is_some();
            }
            EntryData::Normal(_) | EntryData::LeaderNoop | EntryData::PeerState { .. } | EntryData::Members(_) => {}
        }
    }

    /// The meta snapshot: the applied assignments only (S8). The bug switch adds the leader's
    /// inflight streams.
    pub fn snapshot(&self) -> MetaSnapshot {
        let mut streams = self.state.snapshot_streams().clone();
        if self.bugs.snapshot_includes_inflight {
            for (key, op) in self.inflight.streams().filter(|(_, op)| !op.deleted) {
                streams.entry(key.clone()).or_insert_with(|| op.assignment.clone());
            }
        }
        MetaSnapshot { streams }
    }

    /// A meta snapshot at `index`: staged while recovering, else applied as a diff, after
    /// which local orphans are removed silently (§3.3 step 5).
    pub fn install(&mut self, env: &mut ServerEnv<'_>, index: Index, snapshot: MetaSnapshot) {
        let digest = crate::meta::projection::projection_digest_of(&snapshot.streams);
        let me = env.node();
        env.observe(Observation::MetaSnapshotInstalled { index, digest, streams: &snapshot.streams });
        if let Some(recovery) = self.recovery.as_mut() {
            // Here start-up recovery ends at the tick after a route came up, and a leader's
            // snapshot arriving first is staged on top of the replay (§3.3's reconcile, on
            // purpose; see the README). NRG pushes its replay-done `nil` before anything from
            // its peers: NATS ends the recovery first, holding the replayed streams, and then
            // applies the leader's snapshot in normal mode, deleting those it lacks. Staged,
            // the snapshot drops their adds, and their local copies were left as orphans to the
            // one-shot check alone, which may be skipped and is never retried (disk seed 2011).
            // So the recovery's end owes them that delete.
            if recovery.kind == RecoveryKind::Startup
                && recovery.replay_done
                && !self.bugs.recovery_snapshot_no_reconcile
            {
                let dropped = recovery.staged.add_streams.keys().filter(|k| !snapshot.streams.contains_key(*k));
                recovery.dropped_adds.extend(dropped.cloned());
            }
            if let Err(e) = self.state.stage_snapshot(index, snapshot.streams, &mut recovery.staged) {
                env.trace_text("meta-apply-error", &e.to_string());
            }
            env.trace_with("meta-snapshot-staged", &index, || format!("meta#{index}"));
            return;
        }
        match self.state.apply_digested_snapshot(index, snapshot.streams, digest, me) {
            Ok(effects) => {
                self.observe_projection(env);
                self.run_effects(env, effects, false, false);
                // The leader's snapshot, just applied in normal mode, is a view in sync.
                self.remove_orphans(env, "snapshot", true, None, None);
            }
            Err(e) => env.trace_text("meta-apply-error", &e.to_string()),
        }
    }

    /// Raft hands up a snapshot install: catch-up recovery begins unless one is running.
    pub fn on_catchup_started(&mut self, env: &mut ServerEnv<'_>) {
        if self.recovery.is_none() && self.state.write_error().is_none() {
            let staged = RecoveryUpdates::new(self.bugs);
            let kind = RecoveryKind::Catchup;
            self.recovery = Some(Recovery { kind, staged, replay_done: false, dropped_adds: BTreeSet::new() });
            env.trace_with("meta-recovery", &RecoveryKind::Catchup, || RecoveryKind::Catchup.to_string());
        }
    }

    /// Raft's replay-done signal (NRG's `nil` entry). Start-up recovery ends only once a route
    /// is up; true when the recovery ended here.
    pub fn on_replay_done(&mut self, env: &mut ServerEnv<'_>) -> Option<RecoveryKind> {
        let recovery = self.recovery.as_mut()?;
        recovery.replay_done = true;
        self.try_finish_recovery(env)
    }

    /// End the recovery if raft's replay is done and (at start-up) a route exists: flush the
    /// staged work in the fixed order (§3.4). True when it ended; the caller then snapshots.
    pub fn try_finish_recovery(&mut self, env: &mut ServerEnv<'_>) -> Option<RecoveryKind> {
        let recovery = self.recovery.as_ref()?;
        if !recovery.replay_done || (recovery.kind == RecoveryKind::Startup && !self.route_up) {
            return None;
        }
        let Recovery { kind, staged, dropped_adds, .. } = self.recovery.take().expect("checked above");
        let applied = self.state.applied_index();
        env.trace_with("meta-recovered", &(kind, applied, staged.len()), || {
            format!("{kind} at meta#{applied}, {} staged", staged.len())
        });
        // The order within a class is drawn from the seed; an empty recovery draws nothing.
        let seed = if staged.is_empty() { 0 } else { env.rng().next_u64() };
        let mut order = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let effects = self.state.flush(staged, env.node(), &mut order);
        self.observe_recovered(env);
        self.run_effects(env, effects, false, false);
        if !dropped_adds.is_empty() && self.state.write_error().is_none() {
            self.remove_orphans(env, "snapshot", true, None, Some(&dropped_adds));
        }
        if kind == RecoveryKind::Startup {
            self.orphan_check_at_ms = Some(env.monotonic_ms() + ORPHAN_CHECK_DELAY_MS);
            let orphans = self.local.orphans(&self.state, false);
            if !orphans.streams.is_empty() || !orphans.consumers.is_empty() {
                env.probe(probes::ORPHANS_PENDING_AFTER_STARTUP);
            }
            env.observe(Observation::StartupOrphans { local: &self.local, state: &self.state });
        }
        Some(kind)
    }

    /// S6: a recovery ends with exactly the projection of applying the same entries one by one
    /// (the oracle's reference state machine at this index).
    fn observe_recovered(&self, env: &mut ServerEnv<'_>) {
        if self.state.write_error().is_some() {
            return;
        }
        let (index, digest) = (self.state.applied_index(), self.state.projection_digest());
        env.observe(Observation::Recovered { index, digest });
    }

    /// The one-shot orphan check (§4), when due: only with a known meta leader and a healthy
    /// meta group, else skipped for good. `leader_known` and `healthy` describe the meta node
    /// now; `leading` names the stream and consumer groups this server leads.
    pub fn orphan_check(
        &mut self,
        env: &mut ServerEnv<'_>,
        leader_known: bool,
        healthy: bool,
        leading: &BTreeSet<String>,
    ) {
        let Some(at) = self.orphan_check_at_ms else { return };
        if env.monotonic_ms() < at {
            return;
        }
        self.orphan_check_at_ms = None;
        let in_sync = leader_known && healthy;
        if !self.bugs.orphan_check_before_sync && !in_sync {
            self.orphan_check_skipped = true;
            env.trace_with("orphan-check-skipped", &(leader_known, healthy), || {
                let leader = if leader_known { "leader known" } else { "no leader known" };
                format!("{leader}, {}", if healthy { "healthy" } else { "not healthy" })
            });
            return;
        }
        self.remove_orphans(env, "check", in_sync, Some(leading), None);
    }

    /// Delete every local stream the applied state lacks and every local consumer its
    /// assigned stream lacks (§4). Each deletion is shown to the oracle (S12), with whether
    /// this server's view was in sync with the leader's. `leading` names the groups this
    /// server leads, when the caller knows them.
    fn remove_orphans(
        &mut self,
        env: &mut ServerEnv<'_>,
        why: &str,
        in_sync: bool,
        leading: Option<&BTreeSet<String>>,
        only: Option<&BTreeSet<StreamKey>>,
    ) {
        // S14: never while the start-up replay is staged.
        assert!(!self.startup_recovering(), "orphans are judged only after recovery");
        if only.is_none() && self.local.direct_consumers().any(|(_, a)| a.running) {
            env.probe(probes::ORPHANS_JUDGED_WITH_DIRECT_CONSUMER);
        }
        let mut orphans = self.local.orphans(&self.state, self.bugs.orphan_check_deletes_direct_consumers);
        if let Some(only) = only {
            // Those streams only (their consumers go with them).
            orphans.streams.retain(|k| only.contains(k));
            orphans.consumers.clear();
        }
        let (streams, consumers) = (orphans.streams.len(), orphans.consumers.len());
        if streams + consumers > 0 {
            env.observe(Observation::OrphansRemoving { in_sync, streams, consumers });
        }
        for key in orphans.streams {
            let created_ms = self.local.stream(&key).map(|a| a.created_ms).expect("an orphan is local");
            env.observe(Observation::OrphanRemoved { stream: &key, consumer: None, created_ms });
            let change = self.local.apply_effect(&Effect::RemoveLocalStream { key: key.clone(), created_ms_max: None });
            env.trace_with("orphan-removed", &(why, &key, format!("{change:?}")), || {
                format!("stream {key} ({why}) -> {change}")
            });
            self.assets_changed = true;
        }
        for key in orphans.consumers {
            let (created_ms, direct, running) =
                self.local.consumer(&key).map(|a| (a.created_ms, a.direct, a.running)).expect("an orphan is local");
            let stream = key.stream_key();
            env.observe(Observation::OrphanRemoved { stream: &stream, consumer: Some(&key.name), created_ms });
            let change = if direct {
                // Only with the bug switch: a direct consumer is never an orphan.
                self.observe_direct_consumer_removed(env, &key, (created_ms, running), leading);
                env.probe(probes::DIRECT_CONSUMER_REMOVED_AS_ORPHAN);
                self.local.remove_direct_consumer(&key)
            } else {
                self.local.apply_effect(&Effect::RemoveLocalConsumer { key: key.clone(), created_ms_max: None })
            };
            env.trace_with("orphan-removed", &(why, &key, format!("{change:?}")), || {
                format!("consumer {key} ({why}) -> {change}")
            });
            self.assets_changed = true;
        }
        if streams + consumers > 0 {
            crash_points::reach(env, CrashPoint::OrphansRemoved);
        }
    }

    /// Gaining or losing leadership wipes the inflight maps (§5.2).
    pub fn on_leader_change(&mut self, env: &mut ServerEnv<'_>, leader_term: Option<Term>) {
        env.observe(Observation::MetaActing { acting: leader_term.is_some() });
        self.inflight.clear();
        self.empty_reports = EmptyReports::default();
        if let Some(pending) = self.peer_remove.take() {
            // NATS drops the reply with the leadership: the client times out.
            env.trace_with("peer-remove-answer-dropped", &pending, || {
                format!("remove n{} t{} for n{}#{}", pending.peer, pending.term, pending.origin, pending.request)
            });
            env.observe(Observation::PeerRemoveDropped);
        }
        // §8.3: a new leader heals stale and missing peers.
        self.peer_reconcile_due = leader_term.is_some();
        self.leader_term = leader_term;
        env.trace_with("meta-leader", &leader_term, || match leader_term {
            Some(term) => format!("leads t{term}"),
            None => "does not lead".to_string(),
        });
    }

    fn run_effects(&mut self, env: &mut ServerEnv<'_>, effects: Vec<Effect>, answer: bool, update: bool) {
        for effect in effects {
            if let Effect::RunStream { key, group, .. } = &effect {
                if self.refuse_stream(env, key, group, update) {
                    continue;
                }
            }
            if let Effect::Respond { reply, result } = &effect {
                if answer {
                    env.probe(result.as_ref().map_or_else(probes::answer_error, |_| "meta.answer.ok"));
                    let answer: Answer = result.as_ref().map(describe).map_err(|e| e.to_string());
                    let to = NodeIndex::try_from(reply.client).expect("replies name a server");
                    if to == env.node() {
                        self.requests.on_answer(env, reply.request, answer);
                    } else {
                        env.send(to, ServerMsg::Answer { request: reply.request, answer });
                    }
                }
                continue;
            }
            self.assets_changed = true;
            let change = self.local.apply_effect(&effect);
            if let Some(probe) = probes::local_change(effect_on_stream(&effect), &change) {
                env.probe(probe);
            }
            // The digest stays the debug form's (trace hashes do not depend on the wording).
            env.trace_with("local", &format!("{effect:?} -> {change:?}"), || describe_local(&effect, &change));
            match (&effect, change) {
                (Effect::RunStream { key, .. }, LocalChange::Created) => self.run_waiting_consumers(env, key),
                // §2.2: an R1 store scaled up goes into the stream's new raft group.
                (Effect::RunStream { key, group, .. }, LocalChange::Updated { regrouped: Some(old) })
                    if !env.bug(bugs::SCALE_UP_DROPS_STORE) =>
                {
                    self.carry_r1_store(env, key, &old, group)
                }
                (Effect::RunStream { key, group, .. }, LocalChange::Reincarnated { old_group }) => {
                    if env.bug(bugs::RECREATE_KEEPS_LOCAL_STATE) {
                        // NATS's create of a stream it already holds updates it in place
                        // (processClusterCreateStream): the store and consumers stay.
                        self.carry_r1_store(env, key, &old_group, group);
                    } else {
                        self.remove_older_consumers(env, key);
                    }
                }
                _ => {}
            }
        }
    }

    /// Found `key`'s new raft group `group` on the R1 store this server held in group `old`.
    /// Only an R1 group's store: a replicated group that starts over under a new name (its
    /// peers all removed) has nothing here to carry. Only the server the assignment names as
    /// the group's founder (a peer that is no joiner) carries: a restart's recovery can run an
    /// R1 assignment the log had already moved to another server, and a stale store founded
    /// here too made two leaders of one term (churn seed 6668 of generator 17).
    fn carry_r1_store(&mut self, env: &mut ServerEnv<'_>, key: &StreamKey, old: &str, group: &RaftGroup) {
        let replicated = self.state.stream(key).is_some_and(|sa| sa.replicated());
        let from_store = crate::meta::replicas_at_birth(old).is_none_or(|r| r == 1);
        let founder = !group.joiners.contains(&env.node());
        if replicated && from_store && founder && GroupFiles::new(old).is_fresh(env.disk()) {
            match scale::carry_store(env, key, old, &group.name) {
                Ok(()) => {
                    self.founded_groups.insert(group.name.clone());
                }
                Err(e) => {
                    super::start::trace_file_error(env, "carry-failed", &group.name, &e);
                    self.carries_pending.insert(group.name.clone(), (key.clone(), old.to_string()));
                }
            }
        }
    }

    /// Try again the carries a full disk held back (see [`Self::carries_pending`]), without
    /// tracing a write that fails again; a group founded now starts at the next reconcile. A
    /// carry whose stream no longer runs here in that group is dropped (the stream went on
    /// without it). The local assets judge that, not the applied state, which lags them while
    /// a restart replays the meta log.
    pub fn retry_carries(&mut self, env: &mut ServerEnv<'_>) {
        let pending = std::mem::take(&mut self.carries_pending);
        for (name, (key, old)) in pending {
            if self.local.stream(&key).is_none_or(|a| a.group_name != name) {
                continue;
            }
            match scale::carry_store(env, &key, &old, &name) {
                Ok(()) => {
                    self.founded_groups.insert(name);
                    self.assets_changed = true;
                }
                Err(_) => {
                    self.carries_pending.insert(name, (key, old));
                }
            }
        }
    }

    /// A re-created stream starts with none of the older incarnation's consumers here (issue
    /// 17 item 5); the new one's follow in their own assignments.
    fn remove_older_consumers(&mut self, env: &mut ServerEnv<'_>, key: &StreamKey) {
        for consumer in self.local.public_consumers_of(key) {
            let effect = Effect::RemoveLocalConsumer { key: consumer, created_ms_max: None };
            let change = self.local.apply_effect(&effect);
            env.trace_with("local", &format!("{effect:?} -> {change:?}"), || describe_local(&effect, &change));
        }
    }

    /// A stream created here after its consumers were assigned (its first copy was refused for
    /// lack of room) starts the consumers this server is a member of. NATS leaves them until
    /// their next assignment, and healthz reports them meanwhile.
    fn run_waiting_consumers(&mut self, env: &mut ServerEnv<'_>, key: &StreamKey) {
        let Some(sa) = self.state.stream(key) else { return };
        let me = env.node();
        let waiting: Vec<Effect> = sa
            .consumers
            .values()
            .filter(|ca| ca.group.is_member(me) && self.state.consumer_unsupported(&ca.key()).is_none())
            .filter(|ca| self.local.consumer(&ca.key()).is_none())
            .map(|ca| Effect::RunConsumer { key: ca.key(), created_ms: ca.created_ms, group: ca.group.clone() })
            .collect();
        for effect in waiting {
            let change = self.local.apply_effect(&effect);
            // The digest stays the debug form's (trace hashes do not depend on the wording).
            env.trace_with("local", &format!("{effect:?} -> {change:?}"), || describe_local(&effect, &change));
        }
    }

    /// A new local stream beyond this server's capacity is refused: the assignment keeps its
    /// error (healthz reports it) and the meta leader hears about it (§2.7).
    fn refuse_stream(&mut self, env: &mut ServerEnv<'_>, key: &StreamKey, group: &RaftGroup, update: bool) -> bool {
        let full = self.stream_capacity.is_some_and(|max| self.local.streams().count() >= max as usize);
        if !full || self.local.stream(key).is_some() {
            if self.local.stream_error(key).is_some() {
                self.local.set_stream_error(key, None);
            }
            return false;
        }
        let error = ApiError::InsufficientResources;
        self.local.set_stream_error(key, Some(error.to_string()));
        env.trace_with("stream-refused", &(key, &group.name, &error), || format!("{key} in {}: {error}", group.name));
        let result = StreamResult { stream: key.clone(), group: group.name.clone(), peer: env.node(), update, error };
        if self.results_out.len() < RESULTS_OUT_MAX {
            self.results_out.push(result);
        } else {
            env.trace_with("result-dropped", &result, || result.to_string());
        }
        true
    }

    /// The raft groups this server should run: one per running local stream or consumer of
    /// more than one replica, with the peers its assignment names. Recomputed only when the
    /// applied state or the local assets changed: every tick of a server leading a group asks
    /// (the map of a 400-stream run was a fifth of its time, rebuilt on every tick).
    pub fn desired_groups(&mut self) -> Arc<DesiredGroups> {
        let revisions = (self.state.revision(), self.local.revision());
        if self.desired.0 != Some(revisions) {
            self.desired = (Some(revisions), Arc::new(self.build_desired_groups()));
            #[cfg(debug_assertions)]
            assert!(*self.desired.1 == self.desired_groups_by_lookup(), "the side-by-side walk missed a group");
        }
        debug_assert!(*self.desired.1 == self.build_desired_groups(), "a change without a new revision");
        Arc::clone(&self.desired.1)
    }

    fn build_desired_groups(&self) -> DesiredGroups {
        // The local assets and the assignments are both in key order (a consumer's key begins
        // with its stream's): walked side by side, with no lookup (nor key built) per asset.
        let mut groups = Vec::new();
        let mut applied = StreamCursor::new(self.state.streams_by_key());
        for (key, asset) in self.local.streams().filter(|(_, a)| a.running) {
            let Some(sa) = applied.seek(&key.account, &key.name) else { continue };
            if sa.group.name == asset.group_name && sa.replicated() {
                groups.push(sa.group.clone());
            }
        }
        let mut applied = StreamCursor::new(self.state.streams_by_key());
        for (key, asset) in self.local.public_consumers().filter(|(_, a)| a.running) {
            let parent = applied.seek(&key.account, &key.stream);
            let Some(ca) = parent.and_then(|sa| sa.consumers.get(&key.name)) else { continue };
            if ca.group.name == asset.group_name && ca.group.peers.len() > 1 {
                groups.push(ca.group.clone());
            }
        }
        groups.into_iter().collect()
    }

    /// Debug builds: the desired groups found by looking each running asset's assignment up,
    /// what [`Self::build_desired_groups`] finds by walking.
    #[cfg(debug_assertions)]
    fn desired_groups_by_lookup(&self) -> DesiredGroups {
        let streams = self.local.streams().filter(|(_, a)| a.running).filter_map(|(key, asset)| {
            let sa = self.state.stream(key)?;
            (sa.group.name == asset.group_name && sa.replicated()).then(|| sa.group.clone())
        });
        let consumers = self.local.public_consumers().filter(|(_, a)| a.running).filter_map(|(key, asset)| {
            let ca = self.state.consumer(key)?;
            (ca.group.name == asset.group_name && ca.group.peers.len() > 1).then(|| ca.group.clone())
        });
        streams.chain(consumers).collect()
    }

    /// Applied streams scaled down whose groups have not shrunk yet (more peers than their
    /// replicas, §2.2), by group name: the stream and its replicas. Recomputed only when the
    /// applied state changed, as the tick asks on every server.
    pub fn over_placed_streams(&mut self) -> &BTreeMap<String, (StreamKey, usize)> {
        let revision = self.state.revision();
        if self.over_placed.0 != Some(revision) {
            let over = self.state.streams().filter_map(|sa| {
                let replicas = usize::from(sa.config().ok()?.into_config().normalized().replicas);
                (replicas < sa.group.peers.len()).then(|| (sa.group.name.clone(), (sa.key(), replicas)))
            });
            self.over_placed = (Some(revision), over.collect());
        }
        &self.over_placed.1
    }

    /// Group names some local asset still refers to (running or stopped), and the groups of
    /// consumers whose assignment lists `me`: their files stay. A consumer goes with its
    /// stream's local copy when the stream leaves this server, while its own assignment
    /// still lists it until the remap that follows; its files stay, or the stream coming
    /// back first would restart the consumer's group empty, as a founder that counts in its
    /// membership (default seed 9600 of v13). A remap off a live server gives a fresh group,
    /// so files kept this way are never started under a later assignment of the old name.
    pub fn kept_groups(&self, me: PeerId) -> BTreeSet<String> {
        let streams = self.local.streams().map(|(_, a)| a.group_name.clone());
        let consumers = self.local.public_consumers().map(|(_, a)| a.group_name.clone());
        let assigned = self
            .state
            .snapshot_streams()
            .values()
            .flat_map(|sa| sa.consumers.values())
            .filter(|ca| ca.group.is_member(me))
            .map(|ca| ca.group.name.clone());
        let waiting = self.carries_pending.values().map(|(_, old)| old.clone());
        streams.chain(consumers).chain(assigned).chain(waiting).collect()
    }

    /// A mirror health check is due (not while recovering or after an apply error).
    pub fn mirror_check_due(&self, now_ms: u64) -> bool {
        now_ms >= self.mirror_check_at_ms && !self.recovering() && self.state.write_error().is_none()
    }

    /// Mirrors and their direct consumers on this server's origin streams (§11 #26), every
    /// tick: a running direct consumer heartbeats to its mirror. When a health check is due
    /// (every [`MIRROR_HEALTH_CHECK_MS`]), one no longer wanted (its mirror deleted, or this
    /// server no longer leads the origin) goes, as its inactivity threshold would remove it,
    /// and a missing one is set up: at once the first time, else once its mirror has heard
    /// nothing from it for longer than [`MIRROR_HEALTH_CHECK_MS`] (a stalled mirror).
    /// Never through the meta log. `leading` names the raft groups this server leads.
    /// Without mirrors nothing happens and nothing is traced.
    pub fn mirror_check(&mut self, env: &mut ServerEnv<'_>, leading: &BTreeSet<String>) {
        let now = env.monotonic_ms();
        for (key, heard) in self.direct_seen.iter_mut() {
            if self.local.consumer(key).is_some_and(|a| a.direct && a.running) {
                *heard = now;
            }
        }
        if !self.mirror_check_due(now) {
            return;
        }
        self.mirror_check_at_ms = now + MIRROR_HEALTH_CHECK_MS;
        let wanted = crate::meta::wanted_direct_consumers(&self.state, &self.local, |origin| {
            !origin.replicated() || leading.contains(&origin.group.name)
        });
        // The oracle hears of each direct consumer that goes as it was before (usually none).
        let before: BTreeMap<ConsumerKey, (u64, bool)> =
            self.local.direct_consumers().map(|(k, a)| (k.clone(), (a.created_ms, a.running))).collect();
        let heard = &self.direct_seen;
        let stalled =
            |key: &ConsumerKey| heard.get(key).is_none_or(|&at| now.saturating_sub(at) > MIRROR_HEALTH_CHECK_MS);
        for (key, change) in self.local.sync_direct_consumers(&wanted, stalled) {
            if let (LocalChange::Removed, Some(&(created_ms, running))) = (&change, before.get(&key)) {
                self.observe_direct_consumer_removed(env, &key, (created_ms, running), Some(leading));
            }
            env.probe(probes::direct_consumer(&change));
            env.trace_with("direct-consumer", &(&key, format!("{change:?}")), || format!("{key} -> {change}"));
        }
        self.direct_seen.retain(|key, _| wanted.contains_key(key));
        for key in wanted.keys() {
            if self.local.consumer(key).is_some_and(|a| a.direct) {
                self.direct_seen.insert(key.clone(), now);
            }
        }
    }

    /// Tell the oracle that the direct consumer `key` (created at, running) goes, with the
    /// facts it judges the removal by: whether its origin stream runs here and in which group,
    /// and whether this server leads that stream (`leading`: the groups it leads, `None` when
    /// the caller cannot tell).
    fn observe_direct_consumer_removed(
        &self,
        env: &mut ServerEnv<'_>,
        key: &ConsumerKey,
        (created_ms, running): (u64, bool),
        leading: Option<&BTreeSet<String>>,
    ) {
        let origin = key.stream_key();
        let origin_group = self.local.stream(&origin).filter(|a| a.running).map(|a| a.group_name.as_str());
        let leads_origin = self.state.stream(&origin).and_then(|sa| {
            // An R1 stream's only member always leads it.
            leading.map(|leading| !sa.replicated() || leading.contains(&sa.group.name))
        });
        env.observe(Observation::DirectConsumerRemoved {
            consumer: key,
            created_ms,
            running,
            origin_group,
            leads_origin,
        });
    }

    /// Leader: a proposal went into the log; it is inflight until applied (§5.1).
    pub fn proposed(&mut self, entry: &MetaEntry) {
        if !self.bugs.no_inflight {
            self.inflight.track_entry(entry);
        }
    }
}

/// A local effect and what it did, in words: `run stream A:S created 7 in S-R3-ab [0,1,2] ->
/// created`.
fn describe_local(effect: &Effect, change: &LocalChange) -> String {
    let bound = |max: &Option<u64>| max.map_or(String::new(), |m| format!(" created at most {m}"));
    let what = match effect {
        Effect::RunStream { key, created_ms, group: g } => {
            format!("run stream {key} created {created_ms} in {g}")
        }
        Effect::StopStream { key } => format!("stop stream {key}"),
        Effect::RemoveLocalStream { key, created_ms_max } => format!("remove stream {key}{}", bound(created_ms_max)),
        Effect::RunConsumer { key, created_ms, group: g } => {
            format!("run consumer {key} created {created_ms} in {g}")
        }
        Effect::StopConsumer { key } => format!("stop consumer {key}"),
        Effect::RemoveLocalConsumer { key, created_ms_max } => {
            format!("remove consumer {key}{}", bound(created_ms_max))
        }
        Effect::Respond { .. } => "answer".to_string(),
    };
    format!("{what} -> {change}")
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::StreamCreated(k) => format!("stream {k} created"),
        Outcome::StreamUpdated(k) => format!("stream {k} updated"),
        Outcome::StreamDeleted(k) => format!("stream {k} deleted"),
        Outcome::ConsumerCreated(k) => format!("consumer {k} created"),
        Outcome::ConsumerDeleted(k) => format!("consumer {k} deleted"),
    }
}

/// Whether a local effect is about a stream (else a consumer).
fn effect_on_stream(effect: &Effect) -> bool {
    matches!(effect, Effect::RunStream { .. } | Effect::StopStream { .. } | Effect::RemoveLocalStream { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_groups_are_in_name_order_and_the_last_of_a_name_stays() {
        let group = |name: &str, peer: PeerId| RaftGroup {
            name: name.into(),
            peers: vec![peer],
            preferred: None,
            joiners: vec![],
        };
        let desired: DesiredGroups =
            [group("b", 1), group("a", 1), group("c", 1), group("a", 2), group("a", 3)].into_iter().collect();
        let found: Vec<(&str, PeerId)> = desired.iter().map(|g| (g.name.as_str(), g.peers[0])).collect();
        assert_eq!(found, [("a", 3), ("b", 1), ("c", 1)]);
        assert_eq!(desired.get("a").map(|g| g.peers[0]), Some(3));
        assert!(!desired.contains_key("d"));
    }
}
