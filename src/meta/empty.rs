//! Empty groups (§8.3): a group every one of whose peers joined it, and none of whose members
//! holds any of its log, starts over when its members cannot elect. Pure: the driver sends the
//! members' reports to the meta leader, and proposes what comes out.
//!
//! A re-placement keeps a group's name when some of its peers stay, so that the members kept
//! keep the data ([`super::peers::reconcile_peers`]). But a member the assignment lists as a
//! joiner may never have received anything: a group scaled up from one replica whose founder
//! was removed before it added anyone (churn seed 27476 of generator 15: S0 scaled up from R1
//! on n0 to [0,2,4], n0 removed, the re-placement moved it to [1,2,4]). Its members are
//! learners that wait for a leader's log and vote for no member before (see
//! `RaftGroup::joiners`); n2 and n4, on [0,2,4], count n0, whose vote never comes, and refuse
//! n1, which is no member of theirs. Nobody is ever elected. The data went with n0 either way;
//! the members left must start the group over empty, as the re-placement does for a group none
//! of whose peers is left.
//!
//! The meta leader cannot tell an empty joiner from one that caught up (the assignment lists a
//! peer as a joiner for good), and a member must not change its membership on its own (each
//! would count another one). So each such member reports to the meta leader that it holds
//! nothing and which members it counts (NATS's members report their assignment results the
//! same way), and the leader starts the group over through a meta entry, which every member
//! applies alike: a fresh name, founded by the same peers. Only when it is safe and needed:
//!
//! - every peer of the current assignment reported, lately, for the current group name, and
//!   each is a joiner: none holds anything, and none founded the group;
//! - every member a peer counts is a peer of the assignment or no meta peer any more: a live
//!   server outside the group that each counts might hold the data and bring it to them;
//! - none of them can be elected: each counts a member whose vote never comes (a removed
//!   server) or that does not count it. Members that could elect one of them (with every vote,
//!   as joiners do) will, and hold what that leader commits.
//!
//! An empty log stays empty until some leader gives it entries, and no leader can come from
//! those members, nor from outside them (a server that is no member of theirs and not in the
//! group is refused, and one that left the meta group is not heard in asset groups), so the
//! reports stay true until the start-over applies.

use std::collections::BTreeMap;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::entry::MetaEntry;
use super::inflight::Inflight;
use super::model::{peer_list, ConsumerAssignment, ConsumerKey, PeerId, RaftGroup, StreamAssignment, StreamKey};
use super::request::{Handler, LeaderContext};
use super::state::MetaState;

/// Groups the leader keeps reports for, at most: more are dropped (the members repeat theirs).
pub const EMPTY_REPORTS_MAX: usize = 1_000;
/// Members a report may name, at most (a group's members are a replica count).
pub const REPORTED_MEMBERS_MAX: usize = 64;

/// The asset whose raft group a report is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupAsset {
    Stream(StreamKey),
    Consumer(ConsumerKey),
}

impl std::fmt::Display for GroupAsset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupAsset::Stream(key) => write!(f, "stream {key}"),
            GroupAsset::Consumer(key) => write!(f, "consumer {key}"),
        }
    }
}

/// A member's report: it joined `group` and holds none of its log, it has waited long for a
/// leader without hearing of one, and its node counts `members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyGroupReport {
    pub asset: GroupAsset,
    pub group: String,
    pub peer: PeerId,
    /// The membership the reporter's node counts: with an empty log, the one it started with.
    pub members: Vec<PeerId>,
}

/// `stream A:S0 S-R3-ab on n2, counting [0,2,4]`.
impl std::fmt::Display for EmptyGroupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} on n{}, counting {}", self.asset, self.group, self.peer, peer_list(&self.members))
    }
}

/// The leader's reports, by group name and peer: the members each counts, and when the leader
/// heard it (its monotonic clock). In memory only; a new leader starts with none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmptyReports {
    groups: BTreeMap<String, BTreeMap<PeerId, (Vec<PeerId>, u64)>>,
}

impl EmptyReports {
    /// Groups with reports.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Keep `report`, heard at `now_ms`, after dropping every report older than `fresh_ms`.
    /// False when the book is full.
    fn record(&mut self, report: &EmptyGroupReport, now_ms: u64, fresh_ms: u64) -> bool {
        // Bounded by EMPTY_REPORTS_MAX groups of a few members each.
        for reports in self.groups.values_mut() {
            reports.retain(|_, (_, at)| now_ms.saturating_sub(*at) <= fresh_ms);
        }
        self.groups.retain(|_, reports| !reports.is_empty());
        if !self.groups.contains_key(&report.group) && self.groups.len() >= EMPTY_REPORTS_MAX {
            return false;
        }
        let reports = self.groups.entry(report.group.clone()).or_default();
        reports.insert(report.peer, (report.members.clone(), now_ms));
        assert!(self.groups.len() <= EMPTY_REPORTS_MAX, "the report book is bounded");
        true
    }

    fn forget(&mut self, group: &str) {
        self.groups.remove(group);
    }

    /// The members `peer` counts, by its report on `group`, if it reported.
    fn members(&self, group: &str, peer: PeerId) -> Option<&[PeerId]> {
        self.groups.get(group)?.get(&peer).map(|(members, _)| members.as_slice())
    }
}

/// What the leader does about a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmptyPlan {
    /// Nothing, and the report is not kept: the group is not (or no longer) one that may start
    /// over.
    Ignore(&'static str),
    /// Nothing yet: the report is kept until the group's other reports come, or for good.
    Wait(&'static str),
    /// Propose `entry`, the asset on a fresh group founded by the same peers; `emptied` is the
    /// old group's name, whose data is gone.
    StartOver { entry: Box<MetaEntry>, emptied: String },
}

impl EmptyPlan {
    /// In words, for traces.
    pub fn describe(&self) -> String {
        match self {
            EmptyPlan::Ignore(why) => format!("ignored: {why}"),
            EmptyPlan::Wait(why) => format!("waits: {why}"),
            EmptyPlan::StartOver { entry, emptied } => {
                let (name, peers) = match entry.as_ref() {
                    MetaEntry::UpdateStream { sa, .. } => (&sa.group.name, &sa.group.peers),
                    MetaEntry::AssignConsumer { ca, .. } => (&ca.group.name, &ca.group.peers),
                    other => unreachable!("a start-over places an asset, not {other:?}"),
                };
                format!("{emptied} starts over as {name} {}", peer_list(peers))
            }
        }
    }
}

/// The leader's answer to `report`, heard at `now_ms` (monotonic), against the
/// applied-or-inflight view. Reports older than `fresh_ms` no longer count.
#[allow(clippy::too_many_arguments)]
pub fn on_empty_report(
    report: &EmptyGroupReport,
    book: &mut EmptyReports,
    state: &MetaState,
    inflight: &Inflight,
    ctx: &LeaderContext,
    now_ms: u64,
    fresh_ms: u64,
    rng: &mut dyn RngCore,
) -> EmptyPlan {
    let group = match &report.asset {
        GroupAsset::Stream(key) if state.stream_unsupported(key).is_some() => None,
        GroupAsset::Stream(key) => inflight.stream_or_inflight(state, key).map(|sa| &sa.group),
        GroupAsset::Consumer(key) if state.consumer_unsupported(key).is_some() => None,
        GroupAsset::Consumer(key) => inflight.consumer_or_inflight(state, key).map(|ca| &ca.group),
    };
    let Some(group) = group else {
        book.forget(&report.group);
        return EmptyPlan::Ignore("no such asset");
    };
    if group.name != report.group {
        book.forget(&report.group);
        return EmptyPlan::Ignore("about another group");
    }
    if !group.peers.iter().all(|p| group.joiners.contains(p)) {
        book.forget(&report.group);
        return EmptyPlan::Ignore("a founder is still a peer");
    }
    let members = &report.members;
    if !group.is_member(report.peer) || !members.contains(&report.peer) || members.len() > REPORTED_MEMBERS_MAX {
        return EmptyPlan::Ignore("not from a peer");
    }
    if !book.record(report, now_ms, fresh_ms) {
        return EmptyPlan::Ignore("too many groups reported");
    }
    match start_over_verdict(group, book, &ctx.meta_peers) {
        Ok(()) => {}
        Err(why) => return EmptyPlan::Wait(why),
    }
    let Some(entry) = started_over(&report.asset, state, inflight, ctx, rng) else {
        return EmptyPlan::Wait("no fresh group name");
    };
    book.forget(&report.group);
    EmptyPlan::StartOver { entry: Box::new(entry), emptied: report.group.clone() }
}

/// Whether `group` may start over, by the reports in `book` (see the module doc).
fn start_over_verdict(group: &RaftGroup, book: &EmptyReports, meta_peers: &[PeerId]) -> Result<(), &'static str> {
    let mut counted = Vec::with_capacity(group.peers.len());
    for &peer in &group.peers {
        if !meta_peers.contains(&peer) {
            return Err("a peer left the meta group (the re-placement moves it first)");
        }
        let Some(members) = book.members(&group.name, peer) else {
            return Err("not every peer reported");
        };
        counted.push((peer, members));
    }
    // Groups are small (a replica count): quadratic scans allocate nothing.
    let live_outsider = |m: &PeerId| !group.is_member(*m) && meta_peers.contains(m);
    if counted.iter().any(|(_, members)| members.iter().any(live_outsider)) {
        return Err("a member counts a live server outside the group");
    }
    let counts = |voter: PeerId, candidate: PeerId| {
        counted.iter().find(|(p, _)| *p == voter).is_some_and(|(_, members)| members.contains(&candidate))
    };
    // A peer's candidacy needs every member it counts: one that left the meta group never
    // votes, and a peer (a joiner, as every one here is) refuses a candidate it does not count.
    let electable = |peer: PeerId, members: &[PeerId]| {
        members.iter().filter(|&&m| m != peer).all(|&m| meta_peers.contains(&m) && counts(m, peer))
    };
    if counted.iter().any(|(peer, members)| electable(*peer, members)) {
        return Err("a member can be elected");
    }
    Ok(())
}

/// The asset on a fresh group founded by its peers, the first of them online preferred.
fn started_over(
    asset: &GroupAsset,
    state: &MetaState,
    inflight: &Inflight,
    ctx: &LeaderContext,
    rng: &mut dyn RngCore,
) -> Option<MetaEntry> {
    let handler = Handler { state, view: inflight, limits: inflight, ctx };
    let founded = |old: &RaftGroup, prefix: &str, rng: &mut dyn RngCore| {
        // Named for as many replicas as the old group was born with (or has): a stream whose
        // group was born replicated keeps a raft node, and its messages in it, also on one
        // peer and once scaled down to one replica (churn seed 3327: a group re-placed down to
        // one empty joiner, started over as `S-R1-…`, dropped the messages of its log when a
        // scale-down to R1 made the stream an R1 store).
        let replicas = old.replicas_at_birth().unwrap_or(0).max(old.peers.len());
        let name = handler.fresh_group_name(prefix, replicas, rng).ok()?;
        let preferred = old.peers.iter().copied().find(|p| ctx.online_peers.contains(p)).or(old.peers.first().copied());
        let group = RaftGroup::founded(name, old.peers.clone(), preferred);
        assert_eq!(group.check(), Ok(()), "a group started over is valid");
        assert!(group.joiners.is_empty() && group.name != old.name, "a fresh group, founded by every peer");
        Some(group)
    };
    match asset {
        GroupAsset::Stream(key) => {
            let sa = inflight.stream_or_inflight(state, key)?;
            let group = founded(&sa.group, "S", rng)?;
            Some(MetaEntry::UpdateStream { sa: StreamAssignment { group, ..sa.without_consumers() }, reply: None })
        }
        GroupAsset::Consumer(key) => {
            let ca = inflight.consumer_or_inflight(state, key)?;
            let group = founded(&ca.group, "C", rng)?;
            Some(MetaEntry::AssignConsumer { ca: ConsumerAssignment { group, ..ca.clone() }, reply: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(group: String, peer: PeerId) -> EmptyGroupReport {
        let asset = GroupAsset::Stream(StreamKey::new("A", "S"));
        EmptyGroupReport { asset, group, peer, members: vec![peer] }
    }

    /// The book keeps reports of at most [`EMPTY_REPORTS_MAX`] groups; stale ones make room.
    #[test]
    fn the_report_book_is_bounded() {
        let mut book = EmptyReports::default();
        for i in 0..EMPTY_REPORTS_MAX {
            assert!(book.record(&report(format!("g{i}"), 1), 1_000, 500));
        }
        assert!(!book.record(&report("one more".into(), 1), 1_000, 500), "full");
        assert!(book.record(&report("g7".into(), 2), 1_000, 500), "a group already kept takes more");
        assert_eq!(book.len(), EMPTY_REPORTS_MAX);
        assert!(book.record(&report("one more".into(), 1), 1_501, 500), "the stale ones went");
        assert_eq!(book.len(), 1);
        assert_eq!(book.members("one more", 1), Some(&[1][..]));
    }
}
