//! The meta layer's bug switches: each re-opens a historic NATS hazard so the simulator can
//! show that it finds it. Plain data that the request handler, the inflight maps and recovery
//! read; it has a file of its own so that none of them imports another just for the switches.

/// Bug switches of the meta layer, each re-opening a historic hazard for the simulator to find.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaBugs {
    /// `meta-no-inflight`: nothing is tracked, so concurrent creates each get a group (#3679).
    pub no_inflight: bool,
    /// `meta-limits-ignore-inflight`: limit checks count applied assets only (#3615).
    pub limits_ignore_inflight: bool,
    /// The driver signals meta leadership before the apply barrier; carried, not used here.
    pub leader_before_barrier: bool,
    /// `meta-reassign-repeated`: every assignment result re-places the stream, even while an
    /// earlier re-placement is inflight (PR #6121: one stream hopping from group to group).
    pub reassign_repeated: bool,
    /// `recovery-keep-consumer-on-stream-remove`: a staged stream removal leaves that stream's
    /// staged consumer ops in place, so a recreated stream gets the old consumer (PR #6066).
    pub recovery_keep_consumer_on_stream_remove: bool,
    /// `recovery-stale-remove-drops-consumer`: a consumer removal staged in recovery drops the
    /// staged add of that name whatever its incarnation, as NATS's `removeConsumer` does (§3.2),
    /// while applying the same entries one by one ignores a removal for another group (§2.5):
    /// a stale removal after a re-create loses the new consumer.
    pub recovery_stale_remove_drops_consumer: bool,
    /// `recovery-snapshot-no-reconcile`: a snapshot staged during recovery does not drop the
    /// staged ops it supersedes, so deleted assets come back (PR #8324).
    pub recovery_snapshot_no_reconcile: bool,
    /// `snapshot-includes-inflight`: the leader's meta snapshot carries its inflight streams.
    pub snapshot_includes_inflight: bool,
    /// `orphan-check-before-sync`: the orphan check runs without its preconditions (a known
    /// leader, healthy), judging orphans against a stale state (PR #5767).
    pub orphan_check_before_sync: bool,
    /// `orphan-check-deletes-direct-consumers`: orphans are judged among all of a stream's
    /// consumers, so the direct consumer a mirror created on its origin (never assigned by
    /// the meta layer) is deleted as one (NATS judges public consumers only, §11 #26).
    pub orphan_check_deletes_direct_consumers: bool,
    /// `peer-remove-reply-early`: the leader answers a peer removal as soon as it proposes
    /// it, before any quorum applied it (S17; NATS test MetaPeerRemoveResponseAfterQuorum).
    pub peer_remove_reply_early: bool,
    /// `consumer-not-topped-up`: the leader's reconcile sizes a consumer by its current peer
    /// count, not its replicas, so a consumer a peer removal shrank never grows back once its
    /// stream has its peers again (NATS tops it up, `remapConsumerAssignments`).
    pub consumer_not_topped_up: bool,
}
