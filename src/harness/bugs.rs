//! The bug switches of the meta system, each re-opening a historic hazard (most from NATS's
//! own history) so that a fuzz campaign or a scenario can show the checks find it. The
//! servers read them by name ([`crate::server::bugs`]).

use sim::BugSwitch;

use crate::server::bugs::*;

pub const TABLE: &[BugSwitch] = &[
    BugSwitch {
        name: COMMIT_OLD_TERM,
        what: "advance commit by counting replicas of an old-term entry (Raft Figure 8)",
    },
    BugSwitch { name: ACK_BEFORE_FSYNC, what: "followers acknowledge appends before their fsync completes" },
    BugSwitch { name: VOTE_NOT_PERSISTED, what: "votes are not persisted before they are answered" },
    BugSwitch {
        name: META_NO_INFLIGHT,
        what: "the meta leader validates requests against applied state only (PR #3679: two groups for one stream)",
    },
    BugSwitch {
        name: META_LIMITS_IGNORE_INFLIGHT,
        what: "stream and consumer limits count applied assets only, not inflight ones (PR #3615)",
    },
    BugSwitch {
        name: META_LEADER_BEFORE_BARRIER,
        what: "the meta layer acts as leader before applying the entries of earlier terms",
    },
    BugSwitch {
        name: PUBLISH_ACK_BEFORE_COMMIT,
        what: "a stream leader acknowledges a publish once proposed, before a quorum stored it",
    },
    BugSwitch {
        name: META_REASSIGN_REPEATED,
        what: "every failed-create report re-places the stream, even one already being re-placed (PR #6121)",
    },
    BugSwitch {
        name: ORPHAN_CHECK_BEFORE_SYNC,
        what: "the orphan check after start-up runs without a known leader or a healthy meta group (PR #5767)",
    },
    BugSwitch {
        name: ORPHAN_CHECK_DELETES_DIRECT,
        what: "orphans are judged among all of a stream's consumers, so a mirror's direct consumer is deleted as one",
    },
    BugSwitch {
        name: RECOVERY_KEEP_CONSUMER,
        what: "a stream removal staged in recovery keeps the stream's staged consumer ops (PR #6066)",
    },
    BugSwitch {
        name: RECOVERY_STALE_REMOVE,
        what: "a consumer removal staged in recovery drops a staged re-create of another incarnation (as NATS does)",
    },
    BugSwitch {
        name: RECOVERY_SNAPSHOT_NO_RECONCILE,
        what: "a snapshot staged in recovery does not drop the staged ops it supersedes (PR #8324)",
    },
    BugSwitch {
        name: SNAPSHOT_INCLUDES_INFLIGHT,
        what: "the meta leader's snapshot includes its inflight (proposed, unapplied) streams",
    },
    BugSwitch {
        name: PEER_REMOVE_REPLY_EARLY,
        what: "the meta leader answers a peer removal when it proposes it, before a quorum applied it",
    },
    BugSwitch {
        name: BOOT_SIZE_AFTER_RESTART,
        what: "the cold-boot size check runs on a restarted member whose log shows a leader existed, and counts every server heard from, removed peers too (as NATS does)",
    },
    BugSwitch {
        name: PLACEMENT_IGNORES_JETSTREAM,
        what: "placement picks servers that run without JetStream (or whose stats were never heard), which never run the asset",
    },
    BugSwitch {
        name: CONSUMER_NOT_TOPPED_UP,
        what: "the leader's reconcile sizes a consumer by its current peers, so one a peer removal shrank never gets its replicas back",
    },
    BugSwitch {
        name: ONLINE_FROM_RAFT_CONTACT,
        what: "the meta leader counts a peer online from raft contact, so a new leader takes every peer it has not heard from yet for online (servers down for a minute get placed)",
    },
    BugSwitch {
        name: SCALE_UP_DROPS_STORE,
        what: "an R1 stream scaled up starts its new raft group empty: its store goes with the old group and its acknowledged messages are lost",
    },
    BugSwitch {
        name: UNKNOWN_SERVERS_NOT_ADDED,
        what: "the meta leader never adds a server that runs JetStream outside the meta group (NRG's trackPeer does, §8.1), so only an operator's add-peer brings a new server in",
    },
    BugSwitch {
        name: RECREATE_KEEPS_LOCAL_STATE,
        what: "a server that missed a stream's delete and re-create updates its old copy in place when the new one reaches it (NATS processClusterCreateStream): the old incarnation's consumers and R1 store stay with the new one",
    },
    BugSwitch {
        name: SHRINK_KEEPS_SILENT_MEMBER,
        what: "a scaled-down stream's leader always removes a member it heard from lately, even when that leaves a silent one (which may not run the stream) holding the smaller group's quorum",
    },
    BugSwitch {
        name: MESSAGES_DELETED_BEFORE_REPLAY,
        what: "a restarted server deletes the message files of R1 streams it has no asset file for (refused for a bad checksum, or never written on a full disk) before its meta replay runs them again: acknowledged messages are lost (NATS leaves the stream's directory)",
    },
    BugSwitch { name: OS_TIME, what: "jitter raft ticks with the OS clock (a deliberate nondeterminism fixture)" },
];
