//! The bug switches a server reads, by name. Each re-opens a historic hazard so the oracle can
//! show it finds it; the table of what each does lives with the harness.

use super::env::ServerEnv;
use crate::meta::MetaBugs;
use crate::raft::RaftBugs;

pub const COMMIT_OLD_TERM: &str = "raft-commit-old-term";
pub const ACK_BEFORE_FSYNC: &str = "raft-ack-before-fsync";
pub const VOTE_NOT_PERSISTED: &str = "raft-vote-not-persisted";
pub const OS_TIME: &str = "fixture-os-time";
pub const META_NO_INFLIGHT: &str = "meta-no-inflight";
pub const META_LIMITS_IGNORE_INFLIGHT: &str = "meta-limits-ignore-inflight";
pub const META_LEADER_BEFORE_BARRIER: &str = "meta-leader-before-barrier";
pub const PUBLISH_ACK_BEFORE_COMMIT: &str = "publish-ack-before-commit";
pub const META_REASSIGN_REPEATED: &str = "meta-reassign-repeated";
pub const ORPHAN_CHECK_BEFORE_SYNC: &str = "orphan-check-before-sync";
pub const ORPHAN_CHECK_DELETES_DIRECT: &str = "orphan-check-deletes-direct-consumers";
pub const PEER_REMOVE_REPLY_EARLY: &str = "peer-remove-reply-early";
pub const BOOT_SIZE_AFTER_RESTART: &str = "boot-size-after-restart";
pub const RECOVERY_KEEP_CONSUMER: &str = "recovery-keep-consumer-on-stream-remove";
pub const RECOVERY_STALE_REMOVE: &str = "recovery-stale-remove-drops-consumer";
pub const RECOVERY_SNAPSHOT_NO_RECONCILE: &str = "recovery-snapshot-no-reconcile";
pub const SNAPSHOT_INCLUDES_INFLIGHT: &str = "snapshot-includes-inflight";
pub const PLACEMENT_IGNORES_JETSTREAM: &str = "placement-ignores-jetstream";
pub const CONSUMER_NOT_TOPPED_UP: &str = "consumer-not-topped-up";
pub const ONLINE_FROM_RAFT_CONTACT: &str = "online-from-raft-contact";
pub const SCALE_UP_DROPS_STORE: &str = "scale-up-drops-store";
pub const UNKNOWN_SERVERS_NOT_ADDED: &str = "unknown-servers-not-added";
pub const RECREATE_KEEPS_LOCAL_STATE: &str = "recreate-keeps-local-state";
pub const SHRINK_KEEPS_SILENT_MEMBER: &str = "shrink-keeps-silent-member";
pub const MESSAGES_DELETED_BEFORE_REPLAY: &str = "messages-deleted-before-replay";

/// The raft core's switches for this run.
pub fn raft_bugs(env: &ServerEnv<'_>) -> RaftBugs {
    RaftBugs {
        commit_old_term: env.bug(COMMIT_OLD_TERM),
        ack_before_fsync: env.bug(ACK_BEFORE_FSYNC),
        vote_not_persisted: env.bug(VOTE_NOT_PERSISTED),
        boot_size_after_restart: env.bug(BOOT_SIZE_AFTER_RESTART),
    }
}

/// The meta layer's switches for this run.
pub fn meta_bugs(env: &ServerEnv<'_>) -> MetaBugs {
    MetaBugs {
        no_inflight: env.bug(META_NO_INFLIGHT),
        limits_ignore_inflight: env.bug(META_LIMITS_IGNORE_INFLIGHT),
        leader_before_barrier: env.bug(META_LEADER_BEFORE_BARRIER),
        reassign_repeated: env.bug(META_REASSIGN_REPEATED),
        recovery_keep_consumer_on_stream_remove: env.bug(RECOVERY_KEEP_CONSUMER),
        recovery_stale_remove_drops_consumer: env.bug(RECOVERY_STALE_REMOVE),
        recovery_snapshot_no_reconcile: env.bug(RECOVERY_SNAPSHOT_NO_RECONCILE),
        snapshot_includes_inflight: env.bug(SNAPSHOT_INCLUDES_INFLIGHT),
        orphan_check_before_sync: env.bug(ORPHAN_CHECK_BEFORE_SYNC),
        orphan_check_deletes_direct_consumers: env.bug(ORPHAN_CHECK_DELETES_DIRECT),
        peer_remove_reply_early: env.bug(PEER_REMOVE_REPLY_EARLY),
        consumer_not_topped_up: env.bug(CONSUMER_NOT_TOPPED_UP),
    }
}
