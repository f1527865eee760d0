//! Servers that join the meta group by themselves (§8.1). In NATS every server that runs the
//! meta group receives its leader's appends (they go to a subject all of them listen on) and
//! answers them, and the leader adds a server it hears from that is no member (NRG
//! `trackPeer`), unless that server's removal committed within the last five minutes (the
//! re-add ban). Here raft messages go to members only, so a server that runs JetStream
//! outside the meta group says so itself: it announces itself to every server once a
//! heartbeat, and the meta leader adds it.

use sim::NodeIndex;

use super::bugs::UNKNOWN_SERVERS_NOT_ADDED;
use super::env::ServerEnv;
use super::jetstream::MetaLayer;
use super::wire::{ServerMsg, ServerStats};
use super::Server;
use crate::meta::model::peer_list;
use crate::raft::ProposeError;

impl Server {
    /// From the tick: a server outside the meta group that was never in it by its own log
    /// (a removed one knows it was removed and stays out) announces itself, once its meta
    /// layer has recovered, every heartbeat.
    pub(super) fn announce_if_outsider(&mut self, env: &mut ServerEnv<'_>) {
        let now = env.monotonic_ms();
        if now < self.announce_at_ms {
            return;
        }
        let Some(group) = self.groups.meta() else { return };
        let me = env.node();
        // A removal this server has just applied stops JetStream as the input settles.
        let leaving = |m: &MetaLayer| m.peers_removed.iter().any(|&(p, _)| p == me);
        let recovered = group.meta.as_deref().is_some_and(|m| !m.recovering() && !leaving(m));
        if !recovered || group.node.peers().contains(&me) || group.node.was_member(me) {
            return;
        }
        self.announce_at_ms = now + env.config().heartbeat_ms;
        env.trace_with("announce", &group.node.peers(), || {
            format!("outside the meta group {}", peer_list(group.node.peers()))
        });
        let stats = self.own_stats(env);
        env.broadcast(ServerMsg::Announce { streams: stats.streams, streams_max: stats.streams_max });
    }

    /// Every server hears that `from` runs JetStream outside the meta group, with its stats
    /// (placement reads them once it is a member: a server removed earlier said it had
    /// stopped JetStream). The meta leader adds it, unless its removal is too recent (a
    /// refusal is traced once per announcement; the next one asks again).
    pub(super) fn on_announce(&mut self, env: &mut ServerEnv<'_>, from: NodeIndex, stats: ServerStats) {
        self.note_stats(from, stats);
        let Some(group) = self.groups.meta_mut() else { return };
        let leading = group.meta.as_deref().is_some_and(|m| m.leader_term.is_some());
        if !leading || env.bug(UNKNOWN_SERVERS_NOT_ADDED) {
            return;
        }
        match group.node.add_unknown_peer(env.monotonic_ms(), from) {
            Ok(None) => {}
            Ok(Some(index)) => {
                env.trace_with("peer-add-proposed", &(index, from), || format!("add n{from} at index {index}"));
            }
            Err(ProposeError::PeerBanned { allowed_at_ms, .. }) => {
                env.trace_with("peer-add-banned", &(from, allowed_at_ms), || {
                    format!("n{from} until {allowed_at_ms} ms")
                });
            }
            // Another membership change first, or a full pipeline: the next announcement asks again.
            Err(e) => {
                let e = e.to_string();
                env.trace_with("peer-add-refused", &(from, &e), || format!("n{from}: {e}"))
            }
        }
    }
}
