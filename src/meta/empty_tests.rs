//! Unit tests of the start-over of groups whose members hold nothing of them (§8.3, see
//! [`super::empty`]).

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::empty::{on_empty_report, EmptyGroupReport, EmptyPlan, EmptyReports, GroupAsset};
use super::entry::MetaEntry;
use super::inflight::Inflight;
use super::model::*;
use super::peers_tests::ctx;
use super::request::LeaderContext;
use super::state::MetaState;

/// Reports count for this long.
const FRESH_MS: u64 = 6_000;

fn group(name: &str, peers: &[PeerId], joiners: &[PeerId]) -> RaftGroup {
    RaftGroup { name: name.into(), peers: peers.to_vec(), preferred: None, joiners: joiners.to_vec() }
}

/// Stream S with `replicas` in `group`, and durable consumer C in `consumer`.
fn state_with(replicas: u8, group: RaftGroup, consumer: RaftGroup) -> MetaState {
    let config = StreamConfig { name: "S".into(), subjects: vec!["s.>".into()], replicas, ..Default::default() };
    let sa = StreamAssignment {
        account: "acc".into(),
        name: "S".into(),
        created_ms: 100,
        config_json: config.to_json(),
        group,
        sync: "$SYS.JSC.SYNC.S".into(),
        consumers: BTreeMap::new(),
    };
    let config = ConsumerConfig { durable_name: Some("C".into()), ..Default::default() };
    let ca = ConsumerAssignment {
        account: "acc".into(),
        stream: "S".into(),
        name: "C".into(),
        created_ms: 200,
        config_json: config.to_json(),
        group: consumer,
    };
    let mut state = MetaState::default();
    let mut inflight = Inflight::default();
    let entries = [MetaEntry::AssignStream { sa, reply: None }, MetaEntry::AssignConsumer { ca, reply: None }];
    for (index, entry) in (1..).zip(entries) {
        state.apply(index, &entry.encode(), 99, &mut inflight).expect("applies");
    }
    state
}

fn stream_key() -> StreamKey {
    StreamKey::new("acc", "S")
}

fn report(group: &str, peer: PeerId, members: &[PeerId]) -> EmptyGroupReport {
    EmptyGroupReport { asset: GroupAsset::Stream(stream_key()), group: group.into(), peer, members: members.to_vec() }
}

/// The leader's answer to each report in turn, heard at the times given.
fn answers(
    state: &MetaState,
    ctx: &LeaderContext,
    book: &mut EmptyReports,
    reports: &[(u64, EmptyGroupReport)],
) -> Vec<EmptyPlan> {
    let inflight = Inflight::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    reports.iter().map(|(at, r)| on_empty_report(r, book, state, &inflight, ctx, *at, FRESH_MS, &mut rng)).collect()
}

/// Churn seed 27476 of v15: S scaled up from R1 on n0 to [0,2,4] (n2, n4 joiners), n0
/// removed before it added anyone, S re-placed onto [1,2,4] under the same name (n1 a joiner
/// too). n2 and n4 count [0,2,4] and n1 counts [1,2,4]: none can be elected. Once all three
/// reported, the leader starts the group over, founded by the same peers under a fresh name.
#[test]
fn a_group_of_empty_joiners_that_cannot_elect_starts_over_once_every_peer_reported() {
    let old = group("S-R3-old", &[1, 2, 4], &[1, 2, 4]);
    let state = state_with(3, old, group("C-R3-c", &[1, 2, 4], &[]));
    let ctx = ctx(&[1, 2, 3, 4]);
    let mut book = EmptyReports::default();
    let plans = answers(
        &state,
        &ctx,
        &mut book,
        &[(1_000, report("S-R3-old", 2, &[0, 2, 4])), (2_000, report("S-R3-old", 4, &[0, 2, 4]))],
    );
    assert!(plans.iter().all(|p| matches!(p, EmptyPlan::Wait(_))), "n1 has not reported: {plans:?}");
    let plans = answers(&state, &ctx, &mut book, &[(3_000, report("S-R3-old", 1, &[1, 2, 4]))]);
    let EmptyPlan::StartOver { entry, emptied } = &plans[0] else { panic!("starts over: {plans:?}") };
    assert_eq!(emptied, "S-R3-old");
    let MetaEntry::UpdateStream { sa, reply: None } = entry.as_ref() else { panic!("a stream update: {entry:?}") };
    assert_ne!(sa.group.name, "S-R3-old", "a fresh name");
    assert!(sa.group.name.starts_with("S-R3-"), "named for the members it is born with: {}", sa.group.name);
    assert_eq!(sa.group.peers, vec![1, 2, 4], "the same peers");
    assert!(sa.group.joiners.is_empty(), "every peer founds it");
    assert_eq!(sa.group.preferred, Some(1), "the first online peer campaigns at once");
    assert_eq!((sa.created_ms, &sa.config_json), (100, &state.stream(&stream_key()).unwrap().config_json));
    assert!(book.is_empty(), "the group's reports go with it");
}

/// The fresh group is named for as many replicas as the old one was born with, so that a
/// stream whose group was born replicated keeps its raft node (and the messages in its log)
/// when it is scaled down to one replica, or runs on one peer (churn seed 3327: S-R3 re-placed
/// down to [3], its one empty joiner counting [0,3,4]; started over as S-R1, the scale-down to
/// R1 that followed made it an R1 store and the messages of its log were lost).
#[test]
fn a_group_started_over_keeps_the_replica_count_it_was_born_with() {
    let state = state_with(1, group("S-R3-old", &[1, 2, 4], &[1, 2, 4]), group("C-R1-c", &[1], &[]));
    let mut book = EmptyReports::default();
    let reports = [
        (1_000, report("S-R3-old", 2, &[0, 2, 4])),
        (1_000, report("S-R3-old", 4, &[0, 2, 4])),
        (1_000, report("S-R3-old", 1, &[1, 2, 4])),
    ];
    let plans = answers(&state, &ctx(&[1, 2, 3, 4]), &mut book, &reports);
    let Some(EmptyPlan::StartOver { entry, .. }) = plans.last() else { panic!("starts over: {plans:?}") };
    let MetaEntry::UpdateStream { sa, .. } = entry.as_ref() else { panic!("a stream update") };
    assert_eq!(sa.group.replicas_at_birth(), Some(3));
    assert!(sa.replicated());
    // One peer left, an empty joiner counting two removed servers: it starts over alone, as
    // a replicated group still.
    let state = state_with(3, group("S-R3-old", &[3], &[3]), group("C-R1-c", &[3], &[]));
    let mut book = EmptyReports::default();
    let plans = answers(&state, &ctx(&[1, 2, 3]), &mut book, &[(1_000, report("S-R3-old", 3, &[0, 3, 4]))]);
    let Some(EmptyPlan::StartOver { entry, .. }) = plans.last() else { panic!("starts over: {plans:?}") };
    let MetaEntry::UpdateStream { sa, .. } = entry.as_ref() else { panic!("a stream update") };
    assert_eq!((sa.group.peers.as_slice(), sa.group.replicas_at_birth()), (&[3][..], Some(3)));
    let scaled_down = StreamConfig { replicas: 1, ..sa.config().unwrap().into_config() };
    let sa = StreamAssignment { config_json: scaled_down.to_json(), ..sa.clone() };
    assert!(sa.replicated(), "scaled down to R1, it keeps its raft node");
}

/// Empty joiners that all count one another can elect one of them (with every vote): they
/// will, so the group is left alone.
#[test]
fn no_start_over_while_a_member_can_be_elected() {
    let state = state_with(3, group("S-R3-old", &[1, 2, 4], &[1, 2, 4]), group("C-R3-c", &[1, 2, 4], &[]));
    let mut book = EmptyReports::default();
    let reports = [
        (1_000, report("S-R3-old", 1, &[1, 2, 4])),
        (1_000, report("S-R3-old", 2, &[1, 2, 4])),
        (1_000, report("S-R3-old", 4, &[1, 2, 4])),
    ];
    let plans = answers(&state, &ctx(&[1, 2, 3, 4]), &mut book, &reports);
    assert_eq!(plans.last(), Some(&EmptyPlan::Wait("a member can be elected")));
    // n1 alone cannot be elected by n2 and n4 counting [0,2,4], but n2 can, by n4 and itself
    // (n0 removed), if the group is [2,4] only: a peer whose members all count it and vote.
    let state = state_with(2, group("S-R2-old", &[2, 4], &[2, 4]), group("C-R2-c", &[2, 4], &[]));
    let mut book = EmptyReports::default();
    let reports = [(1_000, report("S-R2-old", 2, &[2, 4])), (1_000, report("S-R2-old", 4, &[0, 2, 4]))];
    let plans = answers(&state, &ctx(&[1, 2, 3, 4]), &mut book, &reports);
    assert_eq!(plans.last(), Some(&EmptyPlan::Wait("a member can be elected")));
}

/// A member that counts a live server outside the group may yet get the data from it (a
/// peer removal of the founder, applied before the founder added anyone: the founder still
/// runs the group until it applies its own removal).
#[test]
fn no_start_over_while_a_member_counts_a_live_server_outside_the_group() {
    let state = state_with(3, group("S-R3-old", &[1, 2, 4], &[1, 2, 4]), group("C-R3-c", &[1, 2, 4], &[]));
    let mut book = EmptyReports::default();
    let reports = [
        (1_000, report("S-R3-old", 2, &[0, 2, 4])),
        (1_000, report("S-R3-old", 4, &[0, 2, 4])),
        (1_000, report("S-R3-old", 1, &[1, 2, 4])),
    ];
    let plans = answers(&state, &ctx(&[0, 1, 2, 3, 4]), &mut book, &reports);
    assert_eq!(plans.last(), Some(&EmptyPlan::Wait("a member counts a live server outside the group")));
}

/// A founder still in the group holds the group's log, or elects with its founders: a report
/// about such a group is dropped. So is one about a group the asset no longer runs, or from a
/// server that is no peer of it.
#[test]
fn only_groups_all_of_whose_peers_joined_may_start_over() {
    let state = state_with(3, group("S-R3-old", &[0, 2, 4], &[2, 4]), group("C-R3-c", &[0, 2, 4], &[]));
    let mut book = EmptyReports::default();
    let ctx = ctx(&[0, 1, 2, 3, 4]);
    let plans = answers(&state, &ctx, &mut book, &[(1_000, report("S-R3-old", 2, &[0, 2, 4]))]);
    assert_eq!(plans, vec![EmptyPlan::Ignore("a founder is still a peer")]);
    let plans = answers(&state, &ctx, &mut book, &[(1_000, report("S-R3-older", 2, &[0, 2, 4]))]);
    assert_eq!(plans, vec![EmptyPlan::Ignore("about another group")]);
    let state = state_with(3, group("S-R3-old", &[1, 2, 4], &[1, 2, 4]), group("C-R3-c", &[1, 2, 4], &[]));
    let plans = answers(&state, &ctx, &mut book, &[(1_000, report("S-R3-old", 3, &[1, 3, 4]))]);
    assert_eq!(plans, vec![EmptyPlan::Ignore("not from a peer")]);
    let plans = answers(&state, &ctx, &mut book, &[(1_000, report("S-R3-old", 2, &[1, 4]))]);
    assert_eq!(plans, vec![EmptyPlan::Ignore("not from a peer")], "a member counts itself");
    assert!(book.is_empty());
}

/// A report counts only while its member keeps repeating it: one older than the freshness
/// window is dropped, and the group waits for it again.
#[test]
fn stale_reports_do_not_count() {
    let state = state_with(3, group("S-R3-old", &[1, 2, 4], &[1, 2, 4]), group("C-R3-c", &[1, 2, 4], &[]));
    let ctx = ctx(&[1, 2, 3, 4]);
    let mut book = EmptyReports::default();
    let reports = [
        (1_000, report("S-R3-old", 2, &[0, 2, 4])),
        (2_000, report("S-R3-old", 4, &[0, 2, 4])),
        (2_000 + FRESH_MS, report("S-R3-old", 1, &[1, 2, 4])),
    ];
    let plans = answers(&state, &ctx, &mut book, &reports);
    assert_eq!(plans.last(), Some(&EmptyPlan::Wait("not every peer reported")), "n2's report is stale");
    let plans = answers(&state, &ctx, &mut book, &[(2_000 + FRESH_MS, report("S-R3-old", 2, &[0, 2, 4]))]);
    assert!(matches!(plans[0], EmptyPlan::StartOver { .. }), "{plans:?}");
}

/// A consumer's group starts over the same way, as an assignment of the consumer.
#[test]
fn a_consumer_group_starts_over_too() {
    let state = state_with(3, group("S-R3-s", &[1, 2, 4], &[]), group("C-R3-old", &[1, 2, 4], &[1, 2, 4]));
    let key = ConsumerKey::new("acc", "S", "C");
    let report = |peer, members: &[PeerId]| EmptyGroupReport {
        asset: GroupAsset::Consumer(key.clone()),
        group: "C-R3-old".into(),
        peer,
        members: members.to_vec(),
    };
    let mut book = EmptyReports::default();
    let reports = [(1_000, report(2, &[0, 2, 4])), (1_000, report(4, &[0, 2, 4])), (1_000, report(1, &[1, 2, 4]))];
    let plans = answers(&state, &ctx(&[1, 2, 3, 4]), &mut book, &reports);
    let Some(EmptyPlan::StartOver { entry, emptied }) = plans.last() else { panic!("starts over: {plans:?}") };
    assert_eq!(emptied, "C-R3-old");
    let MetaEntry::AssignConsumer { ca, reply: None } = entry.as_ref() else { panic!("a consumer assignment") };
    assert!(ca.group.name.starts_with("C-R3-") && ca.group.name != "C-R3-old");
    assert_eq!((ca.group.peers.as_slice(), ca.group.joiners.is_empty(), ca.created_ms), (&[1, 2, 4][..], true, 200));
}
