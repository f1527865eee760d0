//! The "applied or inflight" views (spec §5.3): what the meta leader validates requests,
//! limits and peer re-placement against, so that concurrent requests see each other before
//! their entries apply. A live proposal wins over the applied state; a pending delete hides it.
//!
//! They read both the inflight maps and the applied state, so they live apart from both:
//! `state` imports `inflight` (applying an entry drains its count), and views kept in
//! `inflight` would import `state` back.

use super::inflight::Inflight;
use super::model::{ConsumerAssignment, ConsumerKey, StreamAssignment, StreamKey};
use super::state::MetaState;

impl Inflight {
    /// Inflight wins: a live proposal's assignment, `None` for a pending delete, else applied.
    pub fn stream_or_inflight<'a>(&'a self, state: &'a MetaState, key: &StreamKey) -> Option<&'a StreamAssignment> {
        match self.stream(key) {
            Some(op) if op.deleted => None,
            Some(op) => Some(&op.assignment),
            None => state.stream(key),
        }
    }

    /// An account's streams: live inflight ones, then applied ones no inflight entry shadows.
    pub fn streams_or_inflight<'a>(&'a self, state: &'a MetaState, account: &'a str) -> Vec<&'a StreamAssignment> {
        // Tracked names come in name order, so an applied stream is looked up among them
        // without building its key (a create walks every stream of its account).
        let tracked: Vec<(&str, _)> = self.streams_of(account).map(|(key, op)| (key.name.as_str(), op)).collect();
        let mut out: Vec<&StreamAssignment> =
            tracked.iter().filter(|(_, op)| !op.deleted).map(|(_, op)| &op.assignment).collect();
        let shadowed = |name: &str| tracked.binary_search_by(|(other, _)| (*other).cmp(name)).is_ok();
        out.extend(state.streams_of(account).filter(|sa| !shadowed(&sa.name)));
        out
    }

    /// Inflight wins, as for streams.
    pub fn consumer_or_inflight<'a>(
        &'a self,
        state: &'a MetaState,
        key: &ConsumerKey,
    ) -> Option<&'a ConsumerAssignment> {
        match self.consumer(key) {
            Some(op) if op.deleted => None,
            Some(op) => Some(&op.assignment),
            None if self.hides_applied_consumers(state, &key.stream_key()) => None,
            None => state.consumer(key),
        }
    }

    /// An inflight delete or re-create of a stream hides the applied consumers of the old
    /// incarnation: a consumer made for the new one must not reuse their groups, whose files
    /// the delete removes (found by seeds 666 and 3033; NATS reads them, see the notes).
    fn hides_applied_consumers(&self, state: &MetaState, stream: &StreamKey) -> bool {
        let Some(op) = self.stream(stream) else { return false };
        op.deleted || state.stream(stream).is_some_and(|sa| sa.group.name != op.assignment.group.name)
    }

    /// A stream's consumers: live inflight ones (even when the stream itself is only inflight),
    /// then the applied stream's consumers no inflight entry shadows.
    pub fn consumers_or_inflight<'a>(
        &'a self,
        state: &'a MetaState,
        stream: &StreamKey,
    ) -> Vec<&'a ConsumerAssignment> {
        let inflight = self.consumers_of(stream);
        let mut out: Vec<&ConsumerAssignment> =
            inflight.filter(|(_, op)| !op.deleted).map(|(_, op)| &op.assignment).collect();
        if let Some(sa) = state.stream(stream).filter(|_| !self.hides_applied_consumers(state, stream)) {
            out.extend(sa.consumers.values().map(Box::as_ref).filter(|ca| self.consumer(&ca.key()).is_none()));
        }
        out
    }
}
