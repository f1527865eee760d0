//! Stepdowns of a stream's or a consumer's raft group (NATS `STREAM.LEADER.STEPDOWN`,
//! `CONSUMER.LEADER.STEPDOWN`). The client's request goes to the meta leader, which answers
//! "not found" or "offline" itself as for info, or asks the asset's members: the group's
//! leader answers, then steps down, handing over to the preferred server if one is given; it
//! refuses as the meta leader does (a preferred server that already leads or is no member, no
//! other member in contact). An R1 asset has no group to step down: its host answers OK and
//! nothing changes, as NATS does. A member that has known no leader of the group for longer
//! than the lost-quorum interval answers that the cluster is not available.

use sim::NodeIndex;

use super::crash_points::{self, CrashPoint};
use super::env::{forked_rng, ServerEnv};
use super::info::Ask;
use super::names::CLUSTER_NOT_AVAILABLE;
use super::observe::Observation;
use super::requests::{stepdown_refusal, trace_stepdown_refused};
use super::wire::{to_preferred, AssetRef, ServerMsg};
use super::Server;

impl Server {
    /// A client at this server asks the leader of `asset`'s group to step down.
    pub(super) fn client_group_stepdown(
        &mut self,
        env: &mut ServerEnv<'_>,
        asset: AssetRef,
        preferred: Option<NodeIndex>,
    ) {
        // Not watched for L7: the answer needs the asset's group to have a leader.
        let Some((request, route)) = self.open_client_request(env, false) else { return };
        env.trace_with("group-stepdown-request", &(request, &asset, preferred), || {
            format!("#{request} {asset}{}", to_preferred(&preferred))
        });
        self.send_request(env, route, ServerMsg::GroupStepdownRequest { request, asset, preferred });
    }

    /// The meta leader routes a group stepdown request as an info request.
    pub(super) fn lead_group_stepdown(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        asset: AssetRef,
        preferred: Option<NodeIndex>,
    ) {
        self.lead_asset_request(env, origin, request, asset, Ask::Stepdown(preferred));
    }

    /// A member of `group` is asked on behalf of `origin`'s client to step down as its leader.
    pub(super) fn on_group_stepdown_query(
        &mut self,
        env: &mut ServerEnv<'_>,
        origin: NodeIndex,
        request: u64,
        asset: &AssetRef,
        group: &str,
        preferred: Option<NodeIndex>,
    ) {
        let now = env.monotonic_ms();
        let me = env.node();
        let Some(meta) = self.groups.meta().and_then(|g| g.meta.as_deref()) else { return };
        // Only the incarnation the meta leader named, and only its members.
        let assigned = match asset {
            AssetRef::Stream(key) => meta.state.stream(key).map(|sa| &sa.group),
            AssetRef::Consumer(key) => meta.state.consumer(key).map(|ca| &ca.group),
        };
        let Some(assigned) = assigned.filter(|g| g.name == group && g.is_member(me)) else { return };
        if assigned.peers.len() == 1 {
            let answer = Ok(format!("{} is not replicated: nothing to step down", asset.label()));
            self.send_answer(env, origin, request, answer);
            return;
        }
        let Some(running) = self.groups.get(group) else { return };
        if running.node.leaderless_for_long(now) {
            self.send_answer(env, origin, request, Err(CLUSTER_NOT_AVAILABLE.into()));
            return;
        }
        if !running.node.leader() {
            return; // its leader answers
        }
        if let Some(refusal) = stepdown_refusal(&running.node, me, preferred, now) {
            trace_stepdown_refused(env, origin, request, &refusal);
            self.send_answer(env, origin, request, Err(refusal));
            return;
        }
        env.trace_with("group-stepdown", &(origin, request, group, preferred), || {
            format!("{group} for n{origin}#{request}{}", to_preferred(&preferred))
        });
        self.send_answer(env, origin, request, Ok(format!("{} leader stepped down", asset.label())));
        let running = self.groups.get_mut(group).expect("found above");
        let mut rng = forked_rng(env);
        let term = running.node.term();
        if let Some(heir) = running.node.step_down(now, preferred, &mut rng) {
            env.observe(Observation::HandedOver { group, term, heir });
            crash_points::reach(env, CrashPoint::StepdownHandedOver);
        }
    }
}
