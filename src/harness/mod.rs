//! The oracle and the workload of the meta system: everything that judges a run or drives
//! one, apart from the servers it judges.
//!
//! - [`ghost`]: the oracle's memory of the run, written only by what servers observe
//!   ([`observe`]) and by the faults the world injects.
//! - [`checks`]: safety after every event and liveness after heal, through pure queries.
//! - [`expect`]: the expectations scenario files may state.
//! - [`workload`]: what fuzz runs ask of the system; [`bugs`]: the switches that prove the
//!   checks bite.
//!
//! The harness reads servers; servers never read it.

pub mod bugs;
pub mod checks;
pub mod expect;
pub mod ghost;
mod observe;
pub mod validate;
pub mod workload;

use sim::{BugSwitch, CheckFailure, Cluster, Fault, NodeIndex, Touched};

use crate::server::wire::MetaOp;
use crate::server::{Observation, Server, ServerConfig};
use expect::MetaExpect;
use ghost::Ghost;

pub use workload::MetaWorkload;

/// The meta system's harness: the ghost, and the checks that read it.
#[derive(Debug, Default)]
pub struct MetaHarness {
    pub ghost: Ghost,
    /// What the safety checks saw last, so the next looks only where an event touched.
    memo: checks::scope::CheckMemo,
}

impl sim::Harness for MetaHarness {
    type Node = Server;
    type Expect = MetaExpect;

    fn observe(&mut self, node: NodeIndex, observation: Observation<'_>) {
        observe::observe(&mut self.ghost, node, observation);
    }

    fn probes() -> Vec<sim::coverage::ProbeInfo> {
        crate::server::probe_catalogue()
    }

    fn coverage_state_names() -> &'static [(&'static str, &'static str)] {
        crate::server::NODE_STATES
    }

    fn coverage_states(cluster: &Cluster<'_, Server>, node: NodeIndex, states: &mut Vec<&'static str>) {
        crate::server::node_states(cluster.server(node), states);
    }

    fn on_fault(&mut self, node: NodeIndex, fault: Fault<'_>) {
        let ghost = &mut self.ghost;
        if matches!(fault, Fault::Crash | Fault::Shutdown | Fault::PowerLoss) {
            ghost.observe_meta_acting(node, false);
            ghost.forget_requests_of(node);
            // A restart turns JetStream back on (NATS does not persist the removal's effect).
            ghost.removed_servers.remove(&node);
            ghost.peer_removes_pending.remove(&node);
        }
        match fault {
            // Bit flips are caught by checksums; the rest lose or roll back synced data.
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

    fn on_heal(&mut self) {
        self.ghost.healed = true;
    }

    fn on_delivery(&mut self, from: NodeIndex, to: NodeIndex) {
        self.ghost.observe_delivery(from, to);
    }

    fn excuse(&self) -> Option<String> {
        let tainted = &self.ghost.tainted;
        (!tainted.is_empty()).then(|| format!("the disks of {tainted:?} lost synced data"))
    }

    fn check_safety(&mut self, cluster: &Cluster<'_, Server>, touched: Touched) -> Result<(), CheckFailure> {
        if self.ghost.jetstream_disabled.is_none() {
            self.ghost.jetstream_disabled = Some(cluster.config.jetstream_disabled.clone());
        }
        self.ghost.judge_placements(cluster);
        self.ghost.judge_info_requests(cluster);
        self.ghost.judge_handovers(cluster);
        self.ghost.note_shrink_decisions(cluster);
        checks::safety(&self.ghost, &mut self.memo, cluster, touched)
    }

    fn check_liveness(&self, cluster: &Cluster<'_, Server>) -> Result<(), CheckFailure> {
        checks::liveness(&self.ghost, cluster)
    }

    fn check_expect(&self, cluster: &Cluster<'_, Server>, expect: &MetaExpect) -> Result<(), CheckFailure> {
        expect::expect_holds(&self.ghost, cluster, expect)
    }

    fn validate_config(config: &ServerConfig, servers: u32) -> Result<(), String> {
        config.validate(servers)?;
        validate::config(config, servers)
    }

    fn validate_client_op(op: &MetaOp, servers: u32, config: &ServerConfig) -> Result<(), (String, String)> {
        validate::op(op, servers, config)
    }

    fn client_op_warning(op: &MetaOp, servers: u32) -> Option<(String, String)> {
        validate::op_warning(op, servers)
    }

    fn validate_expect(expect: &MetaExpect, servers: u32, config: &ServerConfig) -> Result<(), (String, String)> {
        validate::expect(expect, servers, config)
    }

    fn client_op_messages(op: &MetaOp) -> u64 {
        validate::op_messages(op)
    }

    /// One slowest election timeout: a cluster that `heal-all` restarted whole can have a
    /// leader by then.
    fn liveness_settle_ms(config: &ServerConfig) -> u64 {
        config.election_timeout_ms_max
    }

    fn bugs() -> &'static [BugSwitch] {
        bugs::TABLE
    }
}
