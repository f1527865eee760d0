//! Coverage probes of a server (see `sim::coverage`): the names the server hits beyond its
//! trace kinds, the catalogue of everything it can hit, and the states a fault may strike it
//! in. Nothing here changes what a server does.

use sim::coverage::{ProbeInfo, Reach};

use super::Server;
use crate::meta::{ApiError, LocalChange, OpCode};
use crate::raft::{Probe, Role};

/// What became of a meta entry on a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    Applied,
    /// Held back while a recovery replays the log (§3).
    Staged,
    /// Refused by `apply` (the sticky write error).
    Refused,
}

macro_rules! op_outcomes {
    ($($op:ident => $slug:literal;)*) => {
        /// The probe for meta entry `op` (`None`: no op code decoded) ending as `outcome`.
        pub fn meta_op(op: Option<OpCode>, outcome: OpOutcome) -> &'static str {
            match (op, outcome) {
                $(
                    (Some(OpCode::$op), OpOutcome::Applied) => concat!("meta.op.", $slug, ".applied"),
                    (Some(OpCode::$op), OpOutcome::Staged) => concat!("meta.op.", $slug, ".staged"),
                )*
                (Some(_), OpOutcome::Refused) => "meta.op.refused",
                (None, _) => "meta.op.undecodable",
            }
        }

        fn meta_op_probes() -> Vec<ProbeInfo> {
            let mut probes = vec![
                ProbeInfo::new("meta.op.undecodable", "a meta entry with no op code this server knows"),
                ProbeInfo::new("meta.op.refused", "a meta entry of a known op whose body does not decode or validate, refused by apply"),
            ];
            $(
                probes.push(ProbeInfo::new(concat!("meta.op.", $slug, ".applied"), concat!("a ", $slug, " entry applied")));
                probes.push(ProbeInfo::new(concat!("meta.op.", $slug, ".staged"), concat!("a ", $slug, " entry staged by a recovery")));
            )*
            probes
        }
    };
}

op_outcomes! {
    AssignStream => "assign-stream";
    UpdateStream => "update-stream";
    RemoveStream => "remove-stream";
    AssignConsumer => "assign-consumer";
    RemoveConsumer => "remove-consumer";
}

/// The probe for an error answer of an applied entry. Apply answers only "not found" (a delete
/// that a delete proposed just before beat); the leader refuses every other error before it
/// proposes (`refusal`), so any other error answered after apply is unexpected.
pub fn answer_error(error: &ApiError) -> &'static str {
    match error {
        ApiError::StreamNotFound => "meta.answer.stream-not-found",
        ApiError::ConsumerNotFound => "meta.answer.consumer-not-found",
        _ => ANSWER_OTHER_ERROR,
    }
}

const ANSWER_OTHER_ERROR: &str = "meta.answer.other-error";

/// The probe for a request the meta leader refused before proposing anything.
pub fn refusal(error: &ApiError) -> &'static str {
    match error {
        ApiError::InvalidConfig(_) => "meta.refused.invalid-config",
        ApiError::RequiredApiLevel(_) => "meta.refused.required-api-level",
        ApiError::StreamNameInUse => "meta.refused.stream-name-in-use",
        ApiError::StreamSealed => "meta.refused.stream-sealed",
        ApiError::SubjectOverlap => "meta.refused.subject-overlap",
        ApiError::MaxStreams => "meta.refused.max-streams",
        ApiError::MaxConsumers => "meta.refused.max-consumers",
        ApiError::InsufficientResources => "meta.refused.insufficient-resources",
        ApiError::StreamNotFound => "meta.refused.stream-not-found",
        ApiError::ConsumerNotFound => "meta.refused.consumer-not-found",
        ApiError::Offline(_) => "meta.refused.offline",
        ApiError::NoUniqueName => "meta.refused.no-unique-name",
        ApiError::PeerNotMember => "meta.refused.peer-not-member",
        ApiError::PeerRemapFailed => "meta.refused.peer-remap-failed",
    }
}

const REFUSAL_PROBES: &[(&str, &str)] = &[
    ("meta.refused.invalid-config", "the leader refused a request: invalid config"),
    ("meta.refused.required-api-level", "the leader refused a request: API level not supported"),
    ("meta.refused.stream-name-in-use", "the leader refused a create: the name is in use with another config"),
    ("meta.refused.stream-sealed", "the leader refused an update: stream sealed"),
    ("meta.refused.subject-overlap", "the leader refused a request: subjects overlap"),
    ("meta.refused.max-streams", "the leader refused a create: stream limit reached (inflight counted)"),
    ("meta.refused.max-consumers", "the leader refused a create: consumer limit reached"),
    ("meta.refused.insufficient-resources", "the leader could not place an asset: not enough servers"),
    ("meta.refused.stream-not-found", "the leader refused a request: stream not found"),
    ("meta.refused.consumer-not-found", "the leader refused a request: consumer not found"),
    ("meta.refused.offline", "the leader refused a request: asset offline"),
    ("meta.refused.no-unique-name", "the leader found no unique group name"),
    ("meta.refused.peer-not-member", "the leader refused a stream peer removal: not one of its peers"),
    ("meta.refused.peer-remap-failed", "the leader refused a stream peer removal: no replacement"),
];

const ANSWER_PROBES: &[(&str, &str)] = &[
    ("meta.answer.ok", "an applied entry answered its client with success"),
    ("meta.answer.stream-not-found", "an answer: stream not found"),
    ("meta.answer.consumer-not-found", "an answer: consumer not found"),
];

/// The probe for what a local effect did to a stream's (`stream`) or consumer's local copy.
pub fn local_change(stream: bool, change: &LocalChange) -> Option<&'static str> {
    let name = match (stream, change) {
        (_, LocalChange::NotLocal) => return None,
        (true, LocalChange::Nothing) => "meta.local.stream.unchanged",
        (true, LocalChange::Created) => "meta.local.stream.created",
        (true, LocalChange::Updated { regrouped: None }) => "meta.local.stream.updated",
        (true, LocalChange::Updated { regrouped: Some(_) }) => "meta.local.stream.regrouped",
        (true, LocalChange::Reincarnated { .. }) => "meta.local.stream.reincarnated",
        (true, LocalChange::Stopped) => "meta.local.stream.stopped",
        (true, LocalChange::Removed) => "meta.local.stream.removed",
        (true, LocalChange::KeptNewer { .. }) => "meta.local.stream.kept-newer",
        (true, LocalChange::MissingStream) => "meta.local.stream.missing-stream",
        (false, LocalChange::Nothing) => "meta.local.consumer.unchanged",
        (false, LocalChange::Created) => "meta.local.consumer.created",
        (false, LocalChange::Updated { regrouped: None }) => "meta.local.consumer.updated",
        (false, LocalChange::Updated { regrouped: Some(_) } | LocalChange::Reincarnated { .. }) => {
            "meta.local.consumer.regrouped"
        }
        (false, LocalChange::Stopped) => "meta.local.consumer.stopped",
        (false, LocalChange::Removed) => "meta.local.consumer.removed",
        (false, LocalChange::KeptNewer { .. }) => "meta.local.consumer.kept-newer",
        (false, LocalChange::MissingStream) => "meta.local.consumer.missing-stream",
    };
    Some(name)
}

const LOCAL_PROBES: &[(&str, &str)] = &[
    ("meta.local.stream.unchanged", "a stream effect found nothing to change locally"),
    ("meta.local.stream.created", "a local stream was created"),
    ("meta.local.stream.updated", "a local stream was updated or restarted"),
    ("meta.local.stream.regrouped", "a local stream moved to a new raft group"),
    (
        "meta.local.stream.reincarnated",
        "a local stream's old copy met a new incarnation of its name (a missed delete and re-create)",
    ),
    ("meta.local.stream.stopped", "a local stream was stopped (unsupported)"),
    ("meta.local.stream.removed", "a local stream was removed"),
    ("meta.local.stream.kept-newer", "a bounded delete kept a newer local stream incarnation"),
    ("meta.local.stream.missing-stream", "a stream effect with no local stream (never expected)"),
    ("meta.local.consumer.unchanged", "a consumer effect found nothing to change locally"),
    ("meta.local.consumer.created", "a local consumer was created"),
    ("meta.local.consumer.updated", "a local consumer was updated or restarted"),
    ("meta.local.consumer.regrouped", "a local consumer moved to a new raft group"),
    ("meta.local.consumer.stopped", "a local consumer was stopped (unsupported)"),
    ("meta.local.consumer.removed", "a local consumer was removed"),
    ("meta.local.consumer.kept-newer", "a bounded delete kept a newer local consumer incarnation"),
    ("meta.local.consumer.missing-stream", "a consumer was to run with no local stream"),
];

/// The probe for what a mirror's health check did to a direct consumer.
pub fn direct_consumer(change: &LocalChange) -> &'static str {
    match change {
        LocalChange::Created => "meta.local.direct-consumer.created",
        LocalChange::Removed => "meta.local.direct-consumer.removed",
        _ => "meta.local.direct-consumer.other",
    }
}

/// Orphans were judged while a mirror's direct consumer ran here: the moment the bug switch
/// `orphan-check-deletes-direct-consumers` needs.
pub const ORPHANS_JUDGED_WITH_DIRECT_CONSUMER: &str = "meta.orphans.direct-consumer-present";
/// A direct consumer was removed as an orphan (only with that bug switch).
pub const DIRECT_CONSUMER_REMOVED_AS_ORPHAN: &str = "meta.orphans.direct-consumer-removed";
/// A start-up recovery ended with local assets the recovered meta state lacks (a meta log
/// rolled back behind them): the orphan check, 30 s on, will judge them, and removes them on
/// a stale view if it runs out of sync (`orphan-check-before-sync`'s window).
pub const ORPHANS_PENDING_AFTER_STARTUP: &str = "meta.orphans.pending-after-startup";

const DIRECT_CONSUMER_PROBES: &[(&str, &str)] = &[
    ("meta.local.direct-consumer.created", "a mirror's health check set up a direct consumer on its origin"),
    ("meta.local.direct-consumer.removed", "a mirror's health check removed a direct consumer no longer wanted"),
    (
        "meta.local.direct-consumer.other",
        "a mirror's health check changed a direct consumer otherwise (never expected)",
    ),
    (ORPHANS_JUDGED_WITH_DIRECT_CONSUMER, "orphans were judged while a mirror's direct consumer ran here"),
    (DIRECT_CONSUMER_REMOVED_AS_ORPHAN, "a direct consumer was removed as an orphan (bug switch)"),
    (ORPHANS_PENDING_AFTER_STARTUP, "a start-up recovery ended holding local assets its meta state lacks"),
];

/// Every trace kind a server records, each a probe of its own.
const TRACE_KINDS: &[(&str, &str)] = &[
    ("announce", "a server outside the meta group announced itself"),
    ("answer", "a client got an answer"),
    ("apply", "a group applied a committed entry"),
    ("asset-refused", "a local asset's files were refused at start"),
    ("asset-without-stream", "a consumer's files found with no stream at start"),
    ("assets-restored", "local assets were restored from disk at start"),
    ("carry-failed", "founding a scaled-up stream's group with its store failed"),
    ("cluster-size-adjusted", "the meta leader lowered the cluster size"),
    ("cluster-size-record-failed", "writing the replicated cluster size failed"),
    ("cluster-size-refused", "a cluster size adjustment was refused"),
    ("commit-beyond-log", "a group's stored commit points past its log"),
    ("consumer-info-request", "a consumer info request was handled"),
    ("direct-consumer", "a mirror's direct consumer was handled"),
    ("fsync-lost", "the server learned an fsync was lost"),
    ("fsync-lost-at-start", "a start found what a lost fsync dropped"),
    ("group-data-lost", "a group's data was found lost"),
    ("group-empty", "the meta leader weighed a member's report that it holds none of its group"),
    ("group-empty-reported", "a member of a group of joiners reported that it holds none of it"),
    ("group-left-handed-over", "a server re-placed off a group it led stepped down before stopping it"),
    ("group-peer-change", "a group's peers changed"),
    ("group-peers-evicted", "removed peers were evicted from a group"),
    ("group-refused", "a group's files were refused at start"),
    ("group-shrunk", "a stream group's leader shrank it to its replicas and told the meta leader"),
    ("group-shrunk-applied", "the meta leader dropped the peers a stream group shrank away"),
    ("group-start-over", "the meta leader started a group its members held none of over"),
    ("group-started", "a raft group started on this server"),
    ("group-stepdown", "a stream's or consumer's group leader stepped down on a client's request"),
    ("group-stepdown-request", "a client asked for a stream's or consumer's group stepdown"),
    ("group-stopped", "a raft group stopped on this server"),
    ("inflight-injected", "a scenario injected an inflight stream"),
    ("info-request", "a stream info request was handled"),
    ("jetstream-disabled", "JetStream is off on this server"),
    ("joiner-caught-up", "a joiner's record says it caught up with a leader"),
    ("local", "a local asset effect ran"),
    ("meta-apply-error", "applying a meta entry failed"),
    ("meta-apply-paused", "a server's meta applies were paused on request"),
    ("meta-apply-resumed", "a server's meta applies were resumed on request"),
    ("meta-leader", "the meta layer's leadership changed"),
    ("meta-observer", "the meta group became an observer after an apply error"),
    ("meta-recovered", "a meta recovery finished"),
    ("meta-recovery", "a meta recovery started"),
    ("meta-refused", "the meta group refused to start"),
    ("meta-rescued", "a meta quorum rescue took effect"),
    ("meta-snapshot-staged", "a meta snapshot was staged by a recovery"),
    ("meta-state-deleted", "a removed server deleted its meta state"),
    ("names-request", "a stream or consumer names request was handled"),
    ("op-refused", "a scenario op was refused"),
    ("orphan-check-skipped", "the orphan check was skipped (view not in sync)"),
    ("orphan-removed", "an orphan was removed"),
    ("peer-add-banned", "the meta leader did not add an announced server removed lately"),
    ("peer-add-proposed", "the meta leader proposed adding an announced server"),
    ("peer-add-refused", "the meta leader could not propose adding an announced server yet"),
    ("peer-reconcile", "the meta leader reconciled stale or missing peers"),
    ("peer-remove-answer-dropped", "a peer remove's answer was dropped with the leadership"),
    ("peer-remove-proposed", "a peer removal was proposed"),
    ("peers-record-failed", "recording the meta peers failed"),
    ("propose-refused", "the raft group refused a proposal"),
    ("proposed", "the meta leader proposed an entry"),
    ("publish", "a publish was proposed"),
    ("publish-dropped", "a publish was dropped"),
    ("request", "a client request was opened or forwarded"),
    ("request-dropped", "a request was dropped"),
    ("request-timeout", "a client request timed out"),
    ("rescue-refused", "a meta rescue was refused"),
    ("result", "a stream result was reported"),
    ("result-dropped", "a stream result was dropped"),
    ("result-lost", "a stream result was lost"),
    ("shutdown", "a server shut down gracefully"),
    ("signal", "a raft signal reached the upper layer"),
    ("snapshot-applied", "a leader's snapshot was applied"),
    ("snapshot-refused", "a snapshot was refused"),
    ("snapshot-taken", "a group took a snapshot"),
    ("stale-entries-dropped", "a recovery dropped stale staged entries"),
    ("stepdown", "the meta leader stepped down on a client's request"),
    ("stepdown-refused", "the meta leader refused a stepdown request"),
    ("stepdown-request", "a client asked for a meta leader stepdown"),
    ("store-carried", "an R1 store was carried into a scaled-up stream's new group"),
    ("store-unreadable", "a scaled-up stream's R1 store could not be read"),
    ("stream-refused", "a stream was refused locally (no room)"),
    ("sync-repair", "the meta leader repaired missing sync subjects"),
    ("term-from-log", "the term was taken from the log at start"),
    ("torn-tail", "a torn log tail was cut at start"),
    ("write-error", "a storage write failed"),
];

/// Probes only an action the swarm never draws reaches: a meta rescue (an operator's
/// disaster tool that may lose data by design), the test hook that injects an inflight stream,
/// and an entry no server can apply (a faulty or newer leader's, `propose-raw`), which stops
/// the meta layer for good (apply errors, refused entries, observer mode).
const SCENARIO_ONLY: &[&str] = &[
    "inflight-injected",
    "meta-rescued",
    "rescue-refused",
    "meta-apply-error",
    "meta-observer",
    "meta.op.undecodable",
    "meta.op.refused",
    // Only a stream applied without a sync subject, as an older server's entry may be.
    "sync-repair",
    // Operator actions the swarm does not draw: pausing a server's meta applies, a graceful
    // shutdown.
    "meta-apply-paused",
    "meta-apply-resumed",
    "shutdown",
];

/// Probes only a bug switch reaches (besides the raft core's, see `Probe::bug_switch_only`).
const BUG_SWITCH_ONLY: &[&str] = &[DIRECT_CONSUMER_REMOVED_AS_ORPHAN];

/// Probes of defensive branches a correct build does not take: errors apply never answers, a
/// publish count the client's server already refused, a 64-bit random group name that
/// collides with a taken one every time it is drawn, local effects the meta layer never sends.
const UNEXPECTED: &[&str] = &[
    ANSWER_OTHER_ERROR,
    "publish-dropped",
    "meta.refused.no-unique-name",
    "meta.local.stream.missing-stream",
    "meta.local.direct-consumer.other",
];

/// Every probe a server can hit, with what reaches it.
pub fn catalogue() -> Vec<ProbeInfo> {
    let mut probes = Vec::new();
    for probe in Probe::ALL {
        let reach = if probe.bug_switch_only() { Reach::BugSwitch } else { Reach::Fuzz };
        for meta in [true, false].into_iter().filter(|&meta| probe.reachable_in(meta)) {
            probes.push(ProbeInfo::new(probe.name(meta), probe.what()).reached_by(reach));
        }
    }
    probes.extend(meta_op_probes());
    probes.push(ProbeInfo::new(ANSWER_OTHER_ERROR, "an applied entry answered with an error other than not found"));
    let listed =
        ANSWER_PROBES.iter().chain(REFUSAL_PROBES).chain(LOCAL_PROBES).chain(DIRECT_CONSUMER_PROBES).chain(TRACE_KINDS);
    probes.extend(listed.map(|(name, what)| ProbeInfo::new(name, what)));
    probes.extend(super::crash_points::probes());
    for probe in &mut probes {
        let name = probe.name.as_ref();
        if SCENARIO_ONLY.contains(&name) {
            probe.reach = Reach::Scenario;
        } else if BUG_SWITCH_ONLY.contains(&name) {
            probe.reach = Reach::BugSwitch;
        } else if UNEXPECTED.contains(&name) {
            probe.reach = Reach::Unexpected;
        }
    }
    probes
}

/// The states a fault may strike a server in, with what each means.
pub const NODE_STATES: &[(&str, &str)] = &[
    (sim::coverage::DOWN, "down (not running)"),
    ("meta-leader", "the meta leader"),
    ("meta-candidate", "a meta candidate"),
    ("meta-leaderless", "without a known meta leader"),
    ("meta-recovering", "recovering its meta state"),
    ("meta-applying-behind", "behind in applying committed meta entries"),
    ("asset-leader", "the leader of an asset group"),
    ("catching-up", "catching up from a leader's snapshot"),
    ("writing-snapshot", "writing a snapshot not yet marked durable"),
    ("persisting", "persisting entries not yet synced"),
];

/// The states `server` is in now (`None`: it is down), from [`NODE_STATES`].
pub fn node_states(server: Option<&Server>, states: &mut Vec<&'static str>) {
    let Some(server) = server else {
        states.push(sim::coverage::DOWN);
        return;
    };
    if let Some(meta) = server.group(super::wire::META) {
        match meta.node.role() {
            Role::Leader => states.push("meta-leader"),
            Role::Candidate => states.push("meta-candidate"),
            Role::Follower => {}
        }
        if meta.node.group_leader().is_none() {
            states.push("meta-leaderless");
        }
        if meta.meta.as_deref().is_some_and(|m| m.recovering()) {
            states.push("meta-recovering");
        }
        if meta.node.commit_index() > meta.node.applied_index() {
            states.push("meta-applying-behind");
        }
    }
    let groups = || server.groups();
    if groups().any(|g| g.meta.is_none() && g.node.role() == Role::Leader) {
        states.push("asset-leader");
    }
    if groups().any(|g| g.node.catching_up()) {
        states.push("catching-up");
    }
    if groups().any(|g| g.writing_snapshot()) {
        states.push("writing-snapshot");
    }
    if groups().any(|g| g.persisting()) {
        states.push("persisting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name in a reach list that the catalogue does not hold (a typo, a renamed probe) would
    /// leave its probe counted as one fuzzing should reach.
    #[test]
    fn every_probe_a_reach_list_names_is_listed_with_that_reach() {
        let catalogue = catalogue();
        let reach_of = |name: &str| catalogue.iter().find(|p| p.name == name).map(|p| p.reach);
        for (names, reach) in
            [(SCENARIO_ONLY, Reach::Scenario), (BUG_SWITCH_ONLY, Reach::BugSwitch), (UNEXPECTED, Reach::Unexpected)]
        {
            for name in names {
                assert_eq!(reach_of(name), Some(reach), "{name}");
            }
        }
        assert_eq!(reach_of("raft.meta.commit.old-term"), Some(Reach::BugSwitch));
        assert_eq!(reach_of("raft.meta.joiner.caught-up"), None, "the meta group has no joiners");
        assert_eq!(reach_of("raft.asset.joiner.caught-up"), Some(Reach::Fuzz));
        let mut names: Vec<&str> = catalogue.iter().map(|p| p.name.as_ref()).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "every probe is listed once");
    }
}
