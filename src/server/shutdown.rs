//! A graceful stop (NATS `Server.Shutdown`): what a server does before its process ends.

use super::env::{forked_rng, ServerEnv};
use super::observe::Observation;
use super::wire::ServerMsg;
use super::Server;

impl Server {
    /// NATS `Shutdown`: every raft group this server leads hands over to a caught-up peer
    /// (`stepdownRaftNodes`: step down, then observer, so nothing here campaigns again), the
    /// hand-overs leave, and the stores flush their files before the process stops.
    pub(super) fn shut_down(&mut self, env: &mut ServerEnv<'_>) {
        let now = env.monotonic_ms();
        let mut rng = forked_rng(env);
        let mut handed_over = Vec::new();
        self.groups.for_each_mut(|name, group| {
            let term = group.node.term();
            let heir = group.node.step_down(now, None, &mut rng);
            group.node.become_observer(now, &mut rng);
            if let Some(heir) = heir {
                env.observe(Observation::HandedOver { group: name, term, heir });
                handed_over.push((name.to_string(), heir));
            }
        });
        env.trace_with("shutdown", &handed_over, || {
            let handed: Vec<String> = handed_over.iter().map(|(name, heir)| format!("{name} to n{heir}")).collect();
            if handed.is_empty() {
                "nothing to hand over".to_string()
            } else {
                format!("handed over {}", handed.join(", "))
            }
        });
        self.settle(env);
        // Last: the routes close once everything else has left, and every server knows at
        // once that this one is offline.
        env.broadcast(ServerMsg::RouteClosed);
        // A swallowed fsync (a disk fault) is reported by the engine.
        for path in env.disk().list("") {
            if env.disk().has_pending(&path) {
                env.disk().fsync(&path);
            }
        }
    }
}
