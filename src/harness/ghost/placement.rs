//! Issue 18 item 2: a new stream is placed on servers the leader could know are online. A
//! server that has been down longer than a lost route takes to notice (plus slack for
//! messages still in flight and clock drift), and that the leader has heard nothing from for
//! as long, is offline to it; placement needs a quorum of the chosen peers online: so no new
//! placement may have more such peers than its replicas can spare. The world's view (who is
//! down since when, whose messages reached whom when) judges it; the leader's routes are what
//! it judges. A leader that was itself paused or down within that time is not judged: what
//! waited for it while it was away arrives as it resumes, fresh news from servers long gone
//! (NATS reads its socket buffers the same way). Messages a clog held arrive when it lifts,
//! the same news: they count as heard when they arrive.

use sim::{Cluster, NodeIndex, NodeStatus};

use super::Ghost;
use crate::meta::request::quorum;
use crate::meta::PeerId;
use crate::server::routes::ROUTE_LOST_AFTER_MS;
use crate::server::Server;

/// Beyond [`ROUTE_LOST_AFTER_MS`]: a stopped server's last messages may still arrive, and
/// the leader's clock may run slow.
const DOWN_SLACK_MS: u64 = 5_000;
/// Placements waiting to be judged, at most (one event proposes a handful).
const PLACEMENTS_PENDING_MAX: usize = 64;
/// A delivery noted in the event being handled, before the check after it stamps its time.
const UNSTAMPED: u64 = u64::MAX;

/// Both watches are kept per node index (`None` for a node never seen), not in maps: every
/// server's entry is read and written after every event.
#[derive(Debug, Default)]
pub struct PlacementWatch {
    /// Since when each stopped server has been down, in simulated nanoseconds.
    down_since_ns: Vec<Option<u64>>,
    /// Since when each server runs without a pause or stop (`u64::MAX` while it does not).
    running_since_ns: Vec<Option<u64>>,
    /// New placements proposed by the last event: proposer, stream, peers.
    pending: Vec<(NodeIndex, String, Vec<PeerId>)>,
    /// When each server's inbox last took a message from a server that was down by then, in
    /// simulated nanoseconds, by receiver then sender (`None`: never). Only such messages
    /// matter: what a server sent before it went down is older than the down time the check
    /// asks for.
    heard_ns: Vec<Vec<Option<u64>>>,
    /// Deliveries from down servers since the last check (receiver, sender), each pair once:
    /// the check after the event stamps them with its time.
    heard_now: Vec<(NodeIndex, NodeIndex)>,
    /// Each server's status as the times above last took it in ([`status_code`]): while no
    /// status moved, they hold and are not walked again (this runs after every event).
    statuses_seen: Vec<u8>,
}

/// A server's status, as the down and running times tell it apart.
fn status_code(status: &NodeStatus) -> u8 {
    match status {
        NodeStatus::Down => 0,
        NodeStatus::Running => 1,
        NodeStatus::Paused => 2,
        NodeStatus::Refused(_) => 3,
    }
}

impl PlacementWatch {
    /// Who went down or came back, as of `now_ns`.
    fn note_statuses(&mut self, cluster: &Cluster<'_, Server>, now_ns: u64) {
        for (node, view) in cluster.nodes.iter().enumerate() {
            let down_since = &mut self.down_since_ns[node];
            if matches!(view.status, NodeStatus::Down) {
                down_since.get_or_insert(now_ns);
            } else {
                *down_since = None;
            }
            // u64::MAX: not running now.
            let running = matches!(view.status, NodeStatus::Running);
            let running_since = &mut self.running_since_ns[node];
            match running_since {
                _ if !running => *running_since = Some(u64::MAX),
                None | Some(u64::MAX) => *running_since = Some(now_ns),
                Some(_) => {}
            }
        }
    }
}

impl Ghost {
    /// `node` proposed a new group for `stream` on `peers`: judged at the next check.
    pub fn observe_new_placement(&mut self, node: NodeIndex, stream: String, peers: &[PeerId]) {
        if self.placements.pending.len() < PLACEMENTS_PENDING_MAX {
            self.placements.pending.push((node, stream, peers.to_vec()));
        }
    }

    /// A message from `from` reached `to`'s inbox: `to` has a route to `from` for a while.
    /// Called for every delivery, so it only notes one from a server that is down.
    pub fn observe_delivery(&mut self, from: NodeIndex, to: NodeIndex) {
        let watch = &mut self.placements;
        if !watch.down_since_ns.get(from as usize).is_some_and(Option::is_some) {
            return;
        }
        let servers = watch.down_since_ns.len();
        if watch.heard_ns.len() < servers {
            watch.heard_ns.resize(servers, vec![None; servers]);
        }
        let Some(heard) = watch.heard_ns.get_mut(to as usize).and_then(|row| row.get_mut(from as usize)) else {
            return;
        };
        if *heard != Some(UNSTAMPED) {
            *heard = Some(UNSTAMPED);
            watch.heard_now.push((to, from));
            assert!(watch.heard_now.len() <= servers * servers, "each pair is noted once per check");
        }
    }

    /// After every event: note who went down or came back, and judge new placements.
    pub fn judge_placements(&mut self, cluster: &Cluster<'_, Server>) {
        let now_ns = cluster.sim_ns;
        let watch = &mut self.placements;
        if watch.down_since_ns.len() < cluster.nodes.len() {
            watch.down_since_ns.resize(cluster.nodes.len(), None);
            watch.running_since_ns.resize(cluster.nodes.len(), None);
        }
        for (to, from) in watch.heard_now.drain(..) {
            watch.heard_ns[to as usize][from as usize] = Some(now_ns);
        }
        let statuses = cluster.nodes.iter().map(|view| status_code(view.status));
        if !statuses.clone().eq(watch.statuses_seen.iter().copied()) {
            watch.statuses_seen.clear();
            watch.statuses_seen.extend(statuses);
            watch.note_statuses(cluster, now_ns);
        } else if cfg!(debug_assertions) {
            let times = (watch.down_since_ns.clone(), watch.running_since_ns.clone());
            watch.note_statuses(cluster, now_ns);
            assert!(times == (watch.down_since_ns.clone(), watch.running_since_ns.clone()), "a status moved unseen");
        }
        let window_ns = (ROUTE_LOST_AFTER_MS + DOWN_SLACK_MS) * 1_000_000;
        for (node, stream, peers) in std::mem::take(&mut self.placements.pending) {
            let since = self.placements.running_since_ns.get(node as usize).copied().flatten().unwrap_or(0);
            if now_ns.saturating_sub(since) <= window_ns || since == u64::MAX {
                continue; // back too recently to know who is gone
            }
            let down_since = |p: &PeerId| self.placements.down_since_ns.get(*p as usize).copied().flatten();
            let down_ms = |p: &PeerId| down_since(p).map(|since| (now_ns - since) / 1_000_000);
            let heard = self.placements.heard_ns.get(node as usize);
            let heard_lately = |p: &PeerId| {
                let at = heard.and_then(|row| row.get(*p as usize)).copied().flatten();
                at.is_some_and(|at| now_ns.saturating_sub(at) <= window_ns)
            };
            let long_down: Vec<(PeerId, u64)> = peers
                .iter()
                .filter_map(|p| down_ms(p).map(|ms| (*p, ms)))
                .filter(|&(p, ms)| ms > ROUTE_LOST_AFTER_MS + DOWN_SLACK_MS && !heard_lately(&p))
                .collect();
            if long_down.len() > peers.len() - quorum(peers.len()) {
                let message = format!(
                    "placed new stream {stream} on {peers:?}, but (server, ms down) {long_down:?} leave no online quorum"
                );
                self.flag("meta-placement-online-quorum", node, message);
            }
        }
    }
}
