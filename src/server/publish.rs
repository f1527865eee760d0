//! Publishing to streams, and the message counts it leaves behind.
//!
//! A client publishes at any server. That server looks the stream up in its applied meta state
//! and sends the publish to every member of the stream's group, as subject interest would
//! route it in NATS. Only the member that can store it acts: the host of an R1 stream appends
//! and syncs a record to the stream's message file; the leader of an R>1 group proposes one
//! entry per message. The acknowledgement comes after the sync, or once the last entry applies
//! on that leader (committed), and the oracle counts it: acknowledged messages must not be
//! lost while their stream incarnation lives.

use sim::disk::NodeDisk;
use sim::NodeIndex;

use super::bugs::PUBLISH_ACK_BEFORE_COMMIT;
use super::env::ServerEnv;
use super::group::PublishAck;
use super::observe::Observation;
use super::storage::MessageFile;
use super::wire::{messages, ServerMsg, PUBLISH_COUNT_MAX};
use super::Server;
use crate::meta::StreamKey;

impl Server {
    /// A client at this server publishes `count` messages to `key`.
    pub(super) fn client_publish(&mut self, env: &mut ServerEnv<'_>, key: StreamKey, count: u32) {
        if count == 0 || count > PUBLISH_COUNT_MAX {
            env.trace_text("op-refused", &format!("publish: count must be between 1 and {PUBLISH_COUNT_MAX}"));
            return;
        }
        let now = env.monotonic_ms();
        let Some(meta) = self.groups.meta_mut().and_then(|g| g.meta.as_deref_mut()) else {
            self.publish_off_meta(env, key, count, now);
            return;
        };
        let Some(request) = meta.requests.open(now) else {
            env.trace_text("op-refused", "too many requests waiting");
            return;
        };
        env.trace_with("publish", &(request, &key, count), || format!("#{request} {} to {key}", messages(count)));
        let Some(group) = meta.state.stream(&key).map(|sa| sa.group.clone()) else {
            meta.requests.on_answer(env, request, Err(format!("stream {key} not found")));
            return;
        };
        let me = env.node();
        for &peer in &group.peers {
            let msg = ServerMsg::Publish { request, stream: key.clone(), group: group.name.clone(), count };
            if peer == me {
                self.on_publish(env, me, msg);
            } else {
                env.send(peer, msg);
            }
        }
    }

    /// A client publishes at a server without a meta group: it knows no stream's peers, so the
    /// publish goes to every server, as subject interest across routes would carry it. With
    /// no stream there, nothing answers and the client times out.
    fn publish_off_meta(&mut self, env: &mut ServerEnv<'_>, key: StreamKey, count: u32, now: u64) {
        let Some(request) = self.requests_off_meta.open(now) else {
            env.trace_text("op-refused", "too many requests waiting");
            return;
        };
        env.trace_with("publish", &(request, &key, count), || format!("#{request} {} to {key}", messages(count)));
        env.broadcast(ServerMsg::Publish { request, stream: key, group: String::new(), count });
    }

    /// A publish reached this member of the stream's group: store it if this server can.
    pub(super) fn on_publish(&mut self, env: &mut ServerEnv<'_>, origin: NodeIndex, msg: ServerMsg) {
        let ServerMsg::Publish { request, stream, group, count } = msg else {
            unreachable!("on_publish takes publishes")
        };
        if count == 0 || count > PUBLISH_COUNT_MAX {
            env.trace_text("publish-dropped", "count out of range");
            return;
        }
        let Some(meta) = self.groups.meta().and_then(|g| g.meta.as_deref()) else { return };
        // Act only on the incarnation the client saw (any, for a client that saw none), and
        // only where it runs.
        let Some(sa) = meta.state.stream(&stream).filter(|sa| group.is_empty() || sa.group.name == group) else {
            return;
        };
        let group = if group.is_empty() { sa.group.name.clone() } else { group };
        let runs = meta.local.stream(&stream).is_some_and(|a| a.running && a.group_name == group);
        if !runs {
            return;
        }
        let replicated = sa.replicated();
        // The member that would store it (the R1 host, the group's leader) refuses a sealed
        // stream's messages, as NATS answers "invalid operation on sealed stream".
        let stores = !replicated || self.groups.get(&group).is_some_and(|g| g.node.leader());
        if stores && sa.config().is_ok_and(|c| c.config().sealed) {
            self.send_answer(env, origin, request, Err(format!("stream {stream} is sealed")));
            return;
        }
        let ack = PublishAck { origin, request, count, stream: stream.clone(), created_ms: sa.created_ms };
        if !replicated {
            self.store_r1(env, &group, ack);
        } else if let Some(g) = self.groups.get_mut(&group).filter(|g| g.node.leader()) {
            let early = env.bug(PUBLISH_ACK_BEFORE_COMMIT);
            if let Err(e) = g.propose_publish(env, ack, early) {
                env.trace_text("propose-refused", &e.to_string());
            }
        }
    }

    fn store_r1(&mut self, env: &mut ServerEnv<'_>, group: &str, ack: PublishAck) {
        let file = MessageFile::new(group);
        match file.store(env.disk(), ack.count) {
            Ok(synced) => {
                if !synced {
                    // The disk lies about this sync (the world tells the oracle, which then
                    // no longer holds this server to what it acknowledges).
                    env.trace_text("fsync-lost", file.path());
                }
                let (stream, created_ms, count) = (&ack.stream, ack.created_ms, ack.count);
                env.observe(Observation::MessagesAcked { group, stream, created_ms, count });
                self.answer_publish(env, ack);
            }
            // No ack: the client times out, as it would against a failing store.
            Err(e) => env.trace_text("write-error", &e.to_string()),
        }
    }

    /// Route acknowledgements of committed publishes from every group to their clients.
    pub(super) fn route_publish_acks(&mut self, env: &mut ServerEnv<'_>) {
        // Acks come from groups this input advanced, which are touched: every other group's
        // list was emptied after an earlier input. Walking only those leaves the rest untouched.
        let mut acks: Vec<PublishAck> = Vec::new();
        self.groups.for_each_touched(|g| acks.append(&mut g.publish_acks));
        for ack in acks {
            self.answer_publish(env, ack);
        }
    }

    fn answer_publish(&mut self, env: &mut ServerEnv<'_>, ack: PublishAck) {
        self.send_answer(env, ack.origin, ack.request, Ok(format!("published {}", ack.count)));
    }

    /// Messages this server holds for `key`'s applied incarnation: applied in its group for
    /// R>1, stored in its message file for R1. `None` when it does not run the stream.
    pub fn stream_messages(&self, key: &StreamKey, disk: &NodeDisk) -> Option<Result<u64, String>> {
        let meta = self.groups.meta()?.meta.as_deref()?;
        let sa = meta.state.stream(key)?;
        let asset = meta.local.stream(key).filter(|a| a.group_name == sa.group.name)?;
        if sa.replicated() {
            return self.groups.get(&asset.group_name).map(|g| Ok(g.applied.normal_entries));
        }
        Some(MessageFile::new(&asset.group_name).count(disk).map_err(|e| e.to_string()))
    }
}
