//! One server: its raft groups (the meta group, and a group per replicated stream and
//! consumer), their files, and the driver that runs them on the simulator's network, disk and
//! clock. This is the thin, effectful shell around the sans-IO cores in [`crate::raft`] and
//! [`crate::meta`]; it implements the engine's [`Node`] and nothing else. What the oracle
//! needs it tells through [`observe::Observation`]s; it never reads the oracle.
//!
//! - [`wire`]: messages, client operations and answers; [`config`]: the `[system]` table;
//!   [`env`]: the server's types as the engine sees them; [`observe`]: what it tells the
//!   oracle; [`bugs`]: the bug switches it reads.
//! - [`start`]: a server (re)starting from its disk; [`tick`]: timed work and the settling
//!   after every input; [`requests`]: client requests and the meta leader's proposals.
//! - [`group`] (with [`persist`], [`apply`] and [`applied`]): one raft group and its persist
//!   pipeline; [`storage`] and [`assets`]: its files.
//! - [`jetstream`]: the meta layer's driver; [`publish`], [`info`], [`results`], [`peers`],
//!   [`cluster_size`], [`health`]: what the server does with it; [`shutdown`]: a graceful stop.

pub mod applied;
mod apply;
pub mod assets;
mod assignments;
pub mod bugs;
mod by_name;
pub mod client_requests;
mod cluster_size;
pub mod config;
mod crash_points;
pub mod env;
pub mod group;
pub mod group_set;
mod group_stepdown;
pub mod health;
mod info;
pub mod jetstream;
mod joins;
mod names;
pub mod observe;
mod peers;
mod persist;
mod probes;
mod publish;
mod requests;
mod results;
pub mod routes;
mod scale;
mod shutdown;
mod start;
pub mod storage;
mod tick;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};

use sim::{Node, NodeIndex};

use client_requests::ClientRequests;
use env::{forked_rng, ServerEnv, ServerTypes};
use group::{Group, Tokens};
use group_set::GroupSet;
use jetstream::Answer;
use routes::Routes;
use wire::{MetaOp, ServerMsg, ServerStats, META};

pub use config::ServerConfig;
pub use observe::Observation;
pub use probes::{catalogue as probe_catalogue, node_states, NODE_STATES};

/// The one timer a server sets: its tick.
const TICK_TIMER: u64 = 0;

pub struct Server {
    /// This server's index, which is also its peer id in every group.
    me: NodeIndex,
    groups: GroupSet,
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
    known_servers: BTreeMap<NodeIndex, ServerStats>,
    /// Servers this one has heard anything from since it started, itself included: NATS knows
    /// the name of every server it has a route to, and forgets them all on a restart. A
    /// `SERVER.REMOVE` by name resolves among these.
    named_servers: BTreeSet<NodeIndex>,
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
    /// Client requests made while this server runs no meta group (started without JetStream,
    /// its meta group refused to start, or removed from it): they go to every server, as NATS
    /// routes API subjects to every server with interest, and the meta leader answers them.
    /// With a meta group running, its layer holds the book (its leader answers its own
    /// clients inline while it applies).
    requests_off_meta: ClientRequests,
    /// The servers this one has a live route to: who is online, for placement and answers.
    routes: Routes,
    /// When this server next announces itself while it runs outside the meta group
    /// ([`joins`]), on its monotonic clock.
    announce_at_ms: u64,
    /// The learner sync's index of each asset group's assignment, by slot.
    assignments: assignments::AssignmentsBySlot,
}

impl Server {
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// The meta group, if this server runs one (found without a name lookup).
    pub fn meta_group(&self) -> Option<&Group> {
        self.groups.meta()
    }

    /// Why group `name`'s files refused to load here, if they did.
    pub fn group_refused(&self, name: &str) -> Option<&str> {
        self.refused_groups.get(name).map(String::as_str)
    }

    /// Every raft group this server runs, the meta group among them.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Changes whenever a group starts or stops here.
    pub fn groups_revision(&self) -> crate::meta::Revision {
        self.groups.revision()
    }

    /// The groups the last input may have changed, in name order (`None`: any of them).
    pub fn groups_touched(&self) -> Option<impl Iterator<Item = &Group>> {
        self.groups.touched()
    }

    /// This server's client requests and what came back: the meta layer's book while a meta
    /// group runs here, else the server's own.
    pub fn client_requests(&self) -> &ClientRequests {
        match self.groups.meta().and_then(|g| g.meta.as_deref()) {
            Some(meta) => &meta.requests,
            None => &self.requests_off_meta,
        }
    }

    pub(super) fn client_requests_mut(&mut self) -> &mut ClientRequests {
        match self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) {
            Some(meta) => &mut meta.requests,
            None => &mut self.requests_off_meta,
        }
    }

    pub fn meta_error(&self) -> Option<&str> {
        self.meta_error.as_deref()
    }

    /// This server's clock at its last input.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// One line of state of one of this server's groups, for failure reports.
    pub fn describe_group(&self, group: &Group) -> String {
        group.describe(self.now_ms, self.groups.clock_floor_ms())
    }
}

impl Node for Server {
    type Types = ServerTypes;
    // Fuzzing damages the raft files and the peers and assets records. Not the R1 message
    // files: a caught bit flip there loses acknowledged messages no replica holds, which the
    // acked-messages check would need to excuse per stream.
    const FILE_KINDS: &'static [&'static str] = &["log", "state", "snapshot", "peers", "assets"];
    const KNOWN_FILE_KINDS: &'static [&'static str] =
        &["log", "state", "snapshot", "peers", "assets", "messages", "removed"];

    fn start(env: &mut ServerEnv<'_>) -> Result<Self, String> {
        let mut server = Server::new(env);
        server.start_jetstream(env);
        let delay = Self::tick_delay_ns(env);
        env.set_timer(delay, TICK_TIMER);
        server.settle(env);
        Ok(server)
    }

    fn on_message(&mut self, env: &mut ServerEnv<'_>, from: NodeIndex, msg: ServerMsg) {
        self.groups.begin_input();
        if from != env.node() {
            self.note_route();
            self.named_servers.insert(from);
            self.routes.heard(from, env.monotonic_ms());
        }
        match msg {
            ServerMsg::Raft { group, msg } => {
                // A server removed from the meta group takes no part in asset groups (NRG
                // ignores removed peers). One that was down during its removal runs on a
                // stale view and would otherwise lead old members of a group that moved on
                // (peers seed 1049).
                if &*group != META && !self.hears_in_asset_groups(from) {
                    return;
                }
                if let Some(g) = self.groups.get_mut(&group) {
                    let mut rng = forked_rng(env);
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
            ServerMsg::StepdownRequest { request, preferred } => self.lead_stepdown(env, from, request, preferred),
            ServerMsg::Answer { request, answer } => self.client_requests_mut().on_answer(env, request, answer),
            ServerMsg::StatszRequest => {
                let msg = self.stats_msg(env);
                env.send(from, msg);
            }
            ServerMsg::Statsz { jetstream, streams, streams_max, meta_led } => {
                self.note_stats(from, ServerStats { jetstream, streams, streams_max, meta_led });
            }
            ServerMsg::StreamResult(result) => self.lead_result(env, from, result),
            ServerMsg::RemovePeer { request, target } => self.lead_remove_peer(env, from, request, target),
            ServerMsg::NamesRequest { request, query } => self.lead_names(env, from, request, query),
            ServerMsg::ConsumerInfoRequest { request, consumer } => {
                self.lead_consumer_info(env, from, request, consumer)
            }
            ServerMsg::ConsumerInfoQuery { request, origin, consumer, group } => {
                self.on_consumer_info_query(env, origin, request, &consumer, &group)
            }
            ServerMsg::GroupStepdownRequest { request, asset, preferred } => {
                self.lead_group_stepdown(env, from, request, asset, preferred)
            }
            ServerMsg::GroupStepdownQuery { request, origin, asset, group, preferred } => {
                self.on_group_stepdown_query(env, origin, request, &asset, &group, preferred)
            }
            ServerMsg::RouteClosed => self.on_route_closed(from),
            ServerMsg::Announce { streams, streams_max } => {
                self.on_announce(env, from, ServerStats { jetstream: true, streams, streams_max, meta_led: false })
            }
            ServerMsg::GroupShrunk { stream, group, peers } => self.lead_group_shrunk(env, stream, group, peers),
            ServerMsg::GroupEmpty(report) => self.lead_empty_group(env, report),
        }
        self.settle(env);
    }

    fn on_timer(&mut self, env: &mut ServerEnv<'_>, token: u64) {
        self.groups.begin_input();
        assert_eq!(token, TICK_TIMER, "the server sets one timer");
        self.tick(env);
        let delay = Self::tick_delay_ns(env);
        env.set_timer(delay, TICK_TIMER);
        self.settle(env);
    }

    fn on_fsync(&mut self, env: &mut ServerEnv<'_>, token: u64) {
        self.groups.begin_input();
        if let Some(owner) = self.tokens.owner(token) {
            if let Some(group) = self.groups.get_mut(&owner) {
                group.on_fsync(env, &mut self.tokens, token);
            }
        }
        self.settle(env);
    }

    fn on_client(&mut self, env: &mut ServerEnv<'_>, op: MetaOp) {
        self.groups.begin_input();
        self.handle_op(env, op, false);
        self.settle(env);
    }

    fn on_shutdown(&mut self, env: &mut ServerEnv<'_>) {
        self.groups.begin_input();
        self.shut_down(env);
    }
}
