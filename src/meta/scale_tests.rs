//! Replica changes (§2.2) as the meta leader proposes them.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::bugs::MetaBugs;
use super::entry::MetaEntry;
use super::inflight::Inflight;
use super::model::{ConsumerConfig, PeerId, RaftGroup, StreamAssignment, StreamConfig, StreamKey};
use super::request::{handle, ApiError, LeaderContext, MetaRequest};
use super::scale::{shrink_removal, shrink_to_group, ShrinkMember};
use super::state::MetaState;
use crate::meta::{API_LEVEL, REQUIRED_LEVEL_KEY};

const ACC: &str = "A";

fn ctx(online: &[PeerId]) -> LeaderContext {
    LeaderContext {
        api_level: API_LEVEL,
        me: 1,
        meta_peers: vec![1, 2, 3, 4, 5],
        online_peers: online.to_vec(),
        now_ms: 50_000,
        max_streams_per_account: None,
        clusters: vec![],
        client_cluster: None,
        unplaceable_peers: vec![],
        lagging_peers: vec![],
        bugs: MetaBugs::default(),
    }
}

fn config(replicas: u8) -> Vec<u8> {
    StreamConfig { name: "S".into(), subjects: vec!["s.>".into()], replicas, ..Default::default() }.to_json()
}

/// A state holding stream S created at 7 ms in `group` on `peers`, with durable C on `consumer`.
fn state(group: &str, peers: &[PeerId], replicas: u8, consumer: &[PeerId]) -> MetaState {
    let mut state = MetaState::default();
    let sa = StreamAssignment {
        account: ACC.into(),
        name: "S".into(),
        created_ms: 7,
        config_json: config(replicas),
        group: RaftGroup { name: group.into(), peers: peers.to_vec(), preferred: None, joiners: vec![] },
        sync: "sync".into(),
        consumers: Default::default(),
    };
    let entry = MetaEntry::AssignStream { sa, reply: None };
    state.apply(1, &entry.encode(), 9, &mut Inflight::default()).unwrap();
    let ca = super::model::ConsumerAssignment {
        account: ACC.into(),
        stream: "S".into(),
        name: "C".into(),
        created_ms: 8,
        config_json: ConsumerConfig { durable_name: Some("C".into()), ..Default::default() }.to_json(),
        group: RaftGroup { name: "C-R1-x".into(), peers: consumer.to_vec(), preferred: None, joiners: vec![] },
    };
    let entry = MetaEntry::AssignConsumer { ca, reply: None };
    state.apply(2, &entry.encode(), 9, &mut Inflight::default()).unwrap();
    state
}

fn update(state: &MetaState, replicas: u8, online: &[PeerId]) -> Result<StreamAssignment, ApiError> {
    let request = MetaRequest::UpdateStream { account: ACC.into(), config_json: config(replicas) };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    match handle(&request, None, state, &Inflight::default(), &ctx(online), &mut rng)? {
        MetaEntry::UpdateStream { sa, .. } => Ok(sa),
        other => panic!("not an update: {other:?}"),
    }
}

#[test]
fn an_r1_stream_scaled_up_gets_a_new_group_with_its_server_and_keeps_its_incarnation() {
    let state = state("S-R1-a", &[4], 1, &[4]);
    let sa = update(&state, 3, &[1, 2, 3, 4, 5]).unwrap();
    assert_eq!(sa.created_ms, 7, "a scale keeps the created time");
    assert_eq!(sa.group.peers.len(), 3);
    assert!(sa.group.is_member(4), "the store's server stays");
    assert_ne!(sa.group.name, "S-R1-a", "an R1 stream runs no raft node: its new group is new");
    assert!(sa.group.name.starts_with("S-R3-"));
    assert_eq!(sa.group.preferred, None, "the new members join the store's server");
    assert!(sa.replicated());
}

#[test]
fn a_replicated_stream_keeps_its_group_both_ways() {
    let state = state("S-R3-a", &[1, 2, 3], 3, &[1, 2, 3]);
    let up = update(&state, 5, &[1, 2, 3, 4, 5]).unwrap();
    assert_eq!((up.group.name.as_str(), up.group.peers.as_slice()), ("S-R3-a", &[1, 2, 3, 4, 5][..]));
    // Down to one: the assignment keeps its peers until the group leader has shrunk the
    // group, and the group (born R3) keeps its node.
    let down = update(&state, 1, &[3, 4, 5]).unwrap();
    assert_eq!((down.group.name.as_str(), down.group.peers.as_slice()), ("S-R3-a", &[1, 2, 3][..]));
    assert!(down.replicated(), "its messages are in its raft log");
}

#[test]
fn a_shrunk_group_drops_the_other_peers_from_its_scaled_down_stream() {
    let mut state = state("S-R3-a", &[1, 2, 3], 3, &[1, 2, 3]);
    let key = StreamKey::new(ACC, "S");
    let none = Inflight::default();
    // Not scaled down yet: a report changes nothing.
    assert_eq!(shrink_to_group(&state, &none, &key, "S-R3-a", &[2]), None);
    let sa = update(&state, 1, &[1, 2, 3]).unwrap();
    let entry = MetaEntry::UpdateStream { sa, reply: None };
    state.apply(3, &entry.encode(), 9, &mut Inflight::default()).unwrap();
    let Some(MetaEntry::UpdateStream { sa, .. }) = shrink_to_group(&state, &none, &key, "S-R3-a", &[2]) else {
        panic!("the report of a shrunk group drops the others")
    };
    assert_eq!((sa.group.name.as_str(), sa.group.peers.as_slice(), sa.created_ms), ("S-R3-a", &[2][..], 7));
    assert_eq!(shrink_to_group(&state, &none, &key, "S-R3-b", &[2]), None, "another group");
    assert_eq!(shrink_to_group(&state, &none, &key, "S-R3-a", &[2, 3]), None, "more than its replicas");
    assert_eq!(shrink_to_group(&state, &none, &key, "S-R3-a", &[4]), None, "not one of its peers");

    // A stream of a newer API level is left alone, as the peer reconcile leaves it (its
    // consumers could not follow): default seed 16826 of v13.
    let mut sa = update(&state_before_shrink(), 1, &[1, 2, 3]).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&sa.config_json).unwrap();
    config["metadata"] = serde_json::json!({ REQUIRED_LEVEL_KEY: (API_LEVEL + 1).to_string() });
    sa.config_json = serde_json::to_vec(&config).unwrap();
    let mut state = state_before_shrink();
    state.apply(3, &MetaEntry::UpdateStream { sa, reply: None }.encode(), 9, &mut Inflight::default()).unwrap();
    assert!(state.stream_unsupported(&key).is_some());
    assert_eq!(shrink_to_group(&state, &none, &key, "S-R3-a", &[2]), None, "unsupported here");
}

/// A member of a group being shrunk, at `match_index`, last heard from at `heard_ms`.
fn member(peer: PeerId, match_index: u64, heard_ms: Option<u64>) -> ShrinkMember {
    ShrinkMember { peer, match_index, heard_ms }
}

/// `shrink_removal` as a group with 200 ms heartbeats (a lost-quorum window of 2 s) led by
/// n2 calls it at 38,020 ms.
fn removal(members: &[ShrinkMember], keeps_silent: bool) -> Option<PeerId> {
    shrink_removal(2, members, 38_020, 200, 2_000, keeps_silent)
}

#[test]
fn a_shrink_removes_the_laggard_heard_from_lately_unless_that_leaves_the_smaller_group_no_quorum() {
    // Both heard from lately: the one least caught up (a tie: the higher id) learns its removal.
    let fresh = [member(0, 5, Some(37_910)), member(1, 4, Some(37_950)), member(2, 5, Some(38_020))];
    assert_eq!(removal(&fresh, false), Some(1));
    let tied = [member(0, 5, Some(37_910)), member(1, 5, Some(37_950)), member(2, 5, Some(38_020))];
    assert_eq!(removal(&tied, false), Some(1));
    // A member not heard from in the leader's term is silent, whatever its grace (default
    // seed 3554): removing the other would leave one of the two heard from.
    let unheard = [member(0, 5, None), member(1, 4, Some(37_950)), member(2, 5, Some(38_020))];
    assert_eq!(removal(&unheard, false), Some(0));
    // Neither heard from lately: any removal leaves the group of two one member heard from.
    let both = [member(0, 5, Some(37_505)), member(1, 5, Some(37_500)), member(2, 5, Some(38_020))];
    assert_eq!(removal(&both, false), None, "it waits");
    // Down to one, the leader alone is the quorum: a silent member goes too.
    assert_eq!(removal(&[member(0, 5, None), member(2, 5, Some(38_020))], false), Some(0));
}

#[test]
fn a_shrink_takes_a_member_silent_for_two_heartbeats_for_silent() {
    // Elections seed 2471 of v15: n0 stopped the group (a consumer it judged unsupported
    // stopped its stream) after its answer at 37,505 ms; n1 answered every heartbeat since.
    // Both answered within the lost-quorum window and are tied on match: removing n1 kept n0
    // and the group of two never elected again. n0 missed two heartbeats: it is silent, and
    // removing it keeps the quorum of the smaller group heard from.
    let members = [member(0, 1, Some(37_505)), member(1, 1, Some(37_910)), member(2, 1, Some(38_020))];
    assert_eq!(removal(&members, false), Some(0));
    // Heard from within two heartbeats it is no silent member: n1, the laggard, goes.
    let lately = [member(0, 1, Some(37_830)), member(1, 0, Some(37_910)), member(2, 1, Some(38_020))];
    assert_eq!(removal(&lately, false), Some(1));
    // The bug switch `shrink-keeps-silent-member`: the old rule removes the laggard heard from
    // within the lost-quorum window whatever it leaves.
    assert_eq!(removal(&members, true), Some(1));
    assert_eq!(removal(&[member(0, 1, Some(35_000)), member(1, 1, None), member(2, 1, Some(38_020))], true), None);
}

fn state_before_shrink() -> MetaState {
    state("S-R3-a", &[1, 2, 3], 3, &[1, 2, 3])
}

#[test]
fn a_scale_up_adds_only_online_current_servers_with_room() {
    let state = state("S-R1-a", &[4], 1, &[4]);
    let mut ctx_full = ctx(&[1, 2, 3, 4, 5]);
    ctx_full.unplaceable_peers = vec![1, 2, 3, 5];
    let request = MetaRequest::UpdateStream { account: ACC.into(), config_json: config(3) };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let refused = handle(&request, None, &state, &Inflight::default(), &ctx_full, &mut rng);
    assert_eq!(refused, Err(ApiError::InsufficientResources), "no room left on enough servers");
    assert_eq!(update(&state, 3, &[2, 4]), Err(ApiError::InsufficientResources), "a new member must be online");
    assert!(update(&state, 3, &[2, 3, 4]).is_ok());
    // A peer well behind the meta log is not added: one that missed leaving the stream's
    // group could outvote the new members from its stale log.
    let mut lagging = ctx(&[1, 2, 3, 4, 5]);
    lagging.lagging_peers = vec![1, 2, 3];
    let request = MetaRequest::UpdateStream { account: ACC.into(), config_json: config(2) };
    let added = handle(&request, None, &state, &Inflight::default(), &lagging, &mut rng);
    let Ok(MetaEntry::UpdateStream { sa, .. }) = added else { panic!("{added:?}") };
    assert_eq!(sa.group.peers, vec![4, 5]);
}

#[test]
fn a_consumer_scales_within_its_streams_peers() {
    let state = state("S-R3-a", &[1, 2, 3], 3, &[2]);
    let request = |replicas: u8| MetaRequest::CreateConsumer {
        account: ACC.into(),
        stream: "S".into(),
        config_json: ConsumerConfig { durable_name: Some("C".into()), replicas, ..Default::default() }.to_json(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let online = [1, 2, 3, 4, 5];
    let Ok(MetaEntry::AssignConsumer { ca, .. }) =
        handle(&request(3), None, &state, &Inflight::default(), &ctx(&online), &mut rng)
    else {
        panic!("a consumer scale-up is proposed")
    };
    assert_eq!((ca.created_ms, ca.group.peers.as_slice()), (8, &[1, 2, 3][..]));
    assert_ne!(ca.group.name, "C-R1-x", "from one replica: a fresh group");
    assert_eq!(ca.group.preferred, Some(2), "led first by its old server");
    let too_many = handle(&request(4), None, &state, &Inflight::default(), &ctx(&online), &mut rng);
    assert!(matches!(too_many, Err(ApiError::InvalidConfig(_))), "no more replicas than the stream: {too_many:?}");
}
