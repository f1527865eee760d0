//! Unit tests of the leader's peer reconcile (§8.3): stale peers dropped, short groups topped
//! up from meta peers only, consumers remapped onto their stream's peers.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::bugs::MetaBugs;
use super::entry::MetaEntry;
use super::inflight::Inflight;
use super::model::*;
use super::peers::{peers_need_reconcile, reconcile_peers};
use super::request::{handle, ApiError, LeaderContext, MetaRequest};
use super::state::MetaState;

/// A leader's context on `meta_peers`, all online, led by the first (shared with `empty_tests`).
pub(super) fn ctx(meta_peers: &[PeerId]) -> LeaderContext {
    LeaderContext {
        api_level: API_LEVEL,
        me: meta_peers[0],
        meta_peers: meta_peers.to_vec(),
        online_peers: meta_peers.to_vec(),
        now_ms: 1_000,
        max_streams_per_account: None,
        clusters: vec![],
        client_cluster: None,
        unplaceable_peers: vec![],
        lagging_peers: vec![],
        bugs: MetaBugs::default(),
    }
}

fn stream(name: &str, replicas: u8, peers: &[PeerId]) -> StreamAssignment {
    let config =
        StreamConfig { name: name.into(), subjects: vec![format!("{name}.>")], replicas, ..Default::default() };
    StreamAssignment {
        account: "acc".into(),
        name: name.into(),
        created_ms: 100,
        config_json: config.to_json(),
        group: RaftGroup { name: format!("S-{name}"), peers: peers.to_vec(), preferred: None, joiners: vec![] },
        sync: format!("$SYS.JSC.SYNC.{name}"),
        consumers: BTreeMap::new(),
    }
}

/// A consumer configured with as many replicas as it has peers.
fn consumer(stream: &str, name: &str, durable: bool, peers: &[PeerId]) -> ConsumerAssignment {
    let replicas = u8::try_from(peers.len()).expect("a few peers");
    consumer_of(stream, name, durable, replicas, peers)
}

fn consumer_of(stream: &str, name: &str, durable: bool, replicas: u8, peers: &[PeerId]) -> ConsumerAssignment {
    let config = ConsumerConfig { durable_name: durable.then(|| name.to_string()), replicas, ..Default::default() };
    ConsumerAssignment {
        account: "acc".into(),
        stream: stream.into(),
        name: name.into(),
        created_ms: 200,
        config_json: config.to_json(),
        group: RaftGroup { name: format!("C-{name}"), peers: peers.to_vec(), preferred: None, joiners: vec![] },
    }
}

/// A state holding `streams` (with their consumers), applied in order.
fn state_with(streams: &[StreamAssignment]) -> MetaState {
    let mut state = MetaState::default();
    let mut inflight = Inflight::default();
    let mut index = 0;
    for sa in streams {
        let mut entries = vec![MetaEntry::AssignStream { sa: sa.without_consumers(), reply: None }];
        entries
            .extend(sa.consumers.values().map(|ca| MetaEntry::AssignConsumer { ca: ca.as_ref().clone(), reply: None }));
        for entry in entries {
            index += 1;
            state.apply(index, &entry.encode(), 99, &mut inflight).expect("applies");
        }
    }
    state
}

fn placed(entry: &MetaEntry) -> (&str, &[PeerId]) {
    match entry {
        MetaEntry::UpdateStream { sa, .. } => (&sa.group.name, &sa.group.peers),
        MetaEntry::AssignConsumer { ca, .. } => (&ca.group.name, &ca.group.peers),
        MetaEntry::RemoveConsumer { ca, .. } => (&ca.group.name, &[]),
        other => panic!("unexpected entry {other:?}"),
    }
}

#[test]
fn stale_peer_is_replaced_in_the_same_group_and_consumers_follow() {
    let mut x = stream("X", 3, &[1, 2, 3]);
    x.consumers.insert("C".into(), Box::new(consumer("X", "C", true, &[2, 3])));
    x.consumers.insert("D".into(), Box::new(consumer("X", "D", true, &[1])));
    let state = state_with(&[x]);
    let inflight = Inflight::default();
    // Server 3 left the meta group; 4 and 5 remain candidates.
    let ctx = ctx(&[1, 2, 4, 5]);
    assert!(peers_need_reconcile(&state, &inflight, &ctx));
    for seed in 0..20 {
        let remap = reconcile_peers(&state, &inflight, &ctx, &mut ChaCha8Rng::seed_from_u64(seed));
        assert!(remap.emptied_groups.is_empty(), "1 and 2 keep the data");
        let (name, peers) = placed(&remap.entries[0]);
        assert_eq!(name, "S-X", "the group keeps its name");
        assert_eq!(peers.len(), 3);
        assert!(peers.contains(&1) && peers.contains(&2) && !peers.contains(&3));
        assert!(peers.iter().all(|p| ctx.meta_peers.contains(p)), "only meta peers (S11)");
        // Only C lost a peer: it keeps 2 and is backfilled from the stream's new peers.
        assert_eq!(remap.entries.len(), 2, "D keeps its peer: {:?}", remap.entries);
        let (cname, cpeers) = placed(&remap.entries[1]);
        assert_eq!(cname, "C-C");
        assert_eq!(cpeers.len(), 2);
        assert!(cpeers.contains(&2) && cpeers.iter().all(|p| peers.contains(p)));
    }
}

#[test]
fn short_group_is_topped_up_only_while_a_peer_has_room() {
    let state = state_with(&[stream("X", 3, &[1, 2])]);
    let inflight = Inflight::default();
    let mut full = ctx(&[1, 2, 3]);
    full.unplaceable_peers = vec![3];
    let remap = reconcile_peers(&state, &inflight, &full, &mut ChaCha8Rng::seed_from_u64(1));
    assert!(remap.entries.is_empty(), "3 is full: nowhere to grow, keep what it has");
    let remap = reconcile_peers(&state, &inflight, &ctx(&[1, 2, 3]), &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(placed(&remap.entries[0]).1, &[1, 2, 3]);
    // Nothing to heal: no entries and no draw needed.
    let healed = state_with(&[stream("X", 3, &[1, 2, 3])]);
    assert!(!peers_need_reconcile(&healed, &inflight, &ctx(&[1, 2, 3])));
    assert!(reconcile_peers(&healed, &inflight, &ctx(&[1, 2, 3]), &mut ChaCha8Rng::seed_from_u64(1))
        .entries
        .is_empty());
    // Fewer meta peers than replicas: the group shrinks to what is left rather than waits.
    let remap = reconcile_peers(&healed, &inflight, &ctx(&[1, 2]), &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(placed(&remap.entries[0]).1, &[1, 2]);
}

#[test]
fn group_with_every_peer_removed_moves_and_reports_its_data_lost() {
    let mut x = stream("X", 1, &[3]);
    x.consumers.insert("E".into(), Box::new(consumer("X", "E", false, &[3])));
    x.consumers.insert("D".into(), Box::new(consumer("X", "D", true, &[3])));
    let state = state_with(&[x]);
    let remap = reconcile_peers(&state, &Inflight::default(), &ctx(&[1, 2]), &mut ChaCha8Rng::seed_from_u64(7));
    assert!(remap.emptied_groups.contains(&"S-X".to_string()));
    let new_peers = placed(&remap.entries[0]).1.to_vec();
    assert_eq!(new_peers.len(), 1);
    // The durable jumps to the new peer; the ephemeral is deleted (§8.3).
    let durable = remap.entries.iter().find(|e| matches!(e, MetaEntry::AssignConsumer { ca, .. } if ca.name == "D"));
    assert_eq!(durable.map(|e| placed(e).1.to_vec()), Some(new_peers));
    assert!(remap.entries.iter().any(|e| matches!(e, MetaEntry::RemoveConsumer { ca, .. } if ca.name == "E")));
}

#[test]
fn inflight_streams_are_reconciled_and_unsupported_ones_left_alone() {
    let state = MetaState::default();
    let mut inflight = Inflight::default();
    inflight.track_stream(&stream("Y", 3, &[1, 2, 3]), false);
    let remap = reconcile_peers(&state, &inflight, &ctx(&[1, 2, 4]), &mut ChaCha8Rng::seed_from_u64(3));
    assert_eq!(placed(&remap.entries[0]).1, &[1, 2, 4], "the applied-or-inflight view, as NATS");
    // A stream this server cannot run (a newer API level) is never re-placed (S15).
    let mut z = stream("Z", 3, &[1, 2, 3]);
    let mut config: serde_json::Value = serde_json::from_slice(&z.config_json).unwrap();
    config["metadata"] = serde_json::json!({ REQUIRED_LEVEL_KEY: (API_LEVEL + 1).to_string() });
    z.config_json = serde_json::to_vec(&config).unwrap();
    let state = state_with(&[z]);
    assert!(!peers_need_reconcile(&state, &Inflight::default(), &ctx(&[1, 2, 4])));
}

/// A consumer left outside its stream's peers (its remap was lost with a leader change) is
/// remapped even when the stream itself needs nothing, and only then does the leader act.
#[test]
fn stray_consumers_follow_their_stream() {
    let mut sa = stream("S", 3, &[0, 1, 2]);
    let state = state_with(std::slice::from_ref(&sa));
    let inflight = Inflight::default();
    assert!(!peers_need_reconcile(&state, &inflight, &ctx(&[0, 1, 2, 3])), "nothing to heal");

    let stray = consumer("S", "C", true, &[1, 3]);
    sa.consumers.insert(stray.name.clone(), Box::new(stray));
    let state = state_with(&[sa]);
    assert!(peers_need_reconcile(&state, &inflight, &ctx(&[0, 1, 2, 3])));
    let remap = reconcile_peers(&state, &inflight, &ctx(&[0, 1, 2, 3]), &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(remap.entries.len(), 1, "{:?}", remap.entries);
    let group = consumer_group(&remap.entries, "C").expect("C follows its stream");
    // n3 is still a meta peer: dropped, it wipes its copy, so the consumer gets a fresh group
    // (re-added under the old one it would start empty while the membership counted it).
    assert!(group.name.starts_with("C-R2-") && group.preferred == Some(1), "{group:?}");
    assert_eq!(group.peers.len(), 2);
    assert!(group.peers.contains(&1) && group.peers.iter().all(|p| [0, 1, 2].contains(p)), "{group:?}");
    // A peer no longer in the meta group is dropped without a new group (its copy is gone).
    let remap = reconcile_peers(&state, &inflight, &ctx(&[0, 1, 2]), &mut ChaCha8Rng::seed_from_u64(1));
    let kept = consumer_group(&remap.entries, "C").expect("C follows its stream");
    assert_eq!(kept.name, "C-C");
}

/// A group re-placed with survivors keeps its name and has no preferred member (new members
/// join it); one none of whose members survived starts over under a new name (churn seed 3667
/// of v13: a server shrunk out of the old group kept a copy of its history) with a preferred
/// member that campaigns.
#[test]
fn only_emptied_groups_start_over() {
    let state = state_with(&[stream("A", 3, &[0, 1, 4]), stream("B", 2, &[4, 5])]);
    let remap = reconcile_peers(&state, &Inflight::default(), &ctx(&[0, 1, 2, 3]), &mut ChaCha8Rng::seed_from_u64(2));
    let group = |name: &str| {
        remap.entries.iter().find_map(|e| match e {
            MetaEntry::UpdateStream { sa, .. } if sa.name == name => Some(sa.group.clone()),
            _ => None,
        })
    };
    let a = group("A").expect("A re-placed");
    assert_eq!((a.name.as_str(), a.preferred), ("S-A", None));
    let b = group("B").expect("B re-placed");
    assert!(b.name.starts_with("S-R2-"), "a new name: {b:?}");
    assert!(b.preferred.is_some_and(|p| [0, 1, 2, 3].contains(&p)), "{b:?}");
    assert_eq!(remap.emptied_groups, vec!["S-B".to_string()]);
}

/// The group an entry of `entries` gives consumer `name`.
fn consumer_group<'e>(entries: &'e [MetaEntry], name: &str) -> Option<&'e RaftGroup> {
    entries.iter().find_map(|e| match e {
        MetaEntry::AssignConsumer { ca, .. } if ca.name == name => Some(&ca.group),
        _ => None,
    })
}

/// A consumer a removal shrank is topped up to its replicas once its stream has the peers
/// (NATS `remapConsumerAssignments`): replicas 0 means the stream's, an explicit count is kept,
/// and the stream's peers bound it. Under `consumer-not-topped-up` it keeps its shrunk size.
#[test]
fn shrunk_consumers_are_topped_up_to_their_replicas() {
    let mut x = stream("X", 3, &[0, 1, 2]);
    x.consumers.insert("C".into(), Box::new(consumer_of("X", "C", true, 0, &[1, 2])));
    x.consumers.insert("D".into(), Box::new(consumer_of("X", "D", true, 2, &[1])));
    x.consumers.insert("E".into(), Box::new(consumer_of("X", "E", true, 1, &[2])));
    let state = state_with(&[x]);
    let inflight = Inflight::default();
    let ctx = ctx(&[0, 1, 2, 3]);
    assert!(peers_need_reconcile(&state, &inflight, &ctx));
    for seed in 0..20 {
        let remap = reconcile_peers(&state, &inflight, &ctx, &mut ChaCha8Rng::seed_from_u64(seed));
        let sized: BTreeMap<&str, &[PeerId]> = remap.entries.iter().map(placed).collect();
        assert_eq!(sized.get("C-C"), Some(&&[0, 1, 2][..]), "replicas 0: the stream's three");
        // From one replica: a fresh group (its one member's files are of its old group),
        // first led by the server it keeps.
        let d = consumer_group(&remap.entries, "D").expect("D grows to its two");
        assert!(d.name.starts_with("C-R2-") && d.preferred == Some(1), "{d:?}");
        assert!(d.peers.len() == 2 && d.peers.contains(&1) && d.peers.iter().all(|p| [0, 1, 2].contains(p)), "{d:?}");
        assert!(!sized.contains_key("C-E"), "E has its one: {:?}", remap.entries);
        assert!(remap.emptied_groups.is_empty());
    }

    // A stream short of its replicas with nowhere to grow bounds its consumers: C has both.
    let mut y = stream("Y", 3, &[1, 2]);
    y.consumers.insert("C".into(), Box::new(consumer_of("Y", "C", true, 0, &[1])));
    let short = state_with(&[y]);
    let mut no_room = ctx.clone();
    no_room.unplaceable_peers = vec![0, 3];
    let remap = reconcile_peers(&short, &inflight, &no_room, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(remap.entries.len(), 1);
    assert_eq!(consumer_group(&remap.entries, "C").map(|g| g.peers.clone()), Some(vec![1, 2]));

    let bugs = MetaBugs { consumer_not_topped_up: true, ..MetaBugs::default() };
    let buggy = LeaderContext { bugs, ..ctx };
    assert!(!peers_need_reconcile(&state, &inflight, &buggy), "the switch sees nothing short");
    assert!(reconcile_peers(&state, &inflight, &buggy, &mut ChaCha8Rng::seed_from_u64(1)).entries.is_empty());
}

// ---------------------------------------------------------------------------------------------
// STREAM.PEER.REMOVE (§8.2)

fn remove_peer(state: &MetaState, ctx: &LeaderContext, stream: &str, peer: PeerId) -> Result<RaftGroup, ApiError> {
    let request = MetaRequest::RemoveStreamPeer { account: "acc".into(), name: stream.into(), peer };
    match handle(&request, None, state, &Inflight::default(), ctx, &mut ChaCha8Rng::seed_from_u64(7))? {
        MetaEntry::UpdateStream { sa, .. } => Ok(sa.group),
        other => panic!("a peer removal proposes a stream update, not {other:?}"),
    }
}

#[test]
fn stream_peer_remove_replaces_the_peer_in_the_same_group() {
    let state = state_with(&[stream("S", 3, &[0, 1, 2])]);
    let group = remove_peer(&state, &ctx(&[0, 1, 2, 3, 4]), "S", 1).expect("a replacement exists");
    assert_eq!(group.name, "S-S", "a replicated group keeps its name and its members' data");
    assert_eq!(group.peers.len(), 3, "the group is not left short");
    assert!(!group.is_member(1), "the removed peer is out: {:?}", group.peers);
    assert!(group.is_member(0) && group.is_member(2), "the others stay: {:?}", group.peers);
    let new: Vec<PeerId> = group.peers.iter().copied().filter(|p| ![0, 2].contains(p)).collect();
    assert_eq!(group.joiners, new, "the replacement joins the running group");
}

#[test]
fn stream_peer_remove_takes_only_online_current_servers_with_room() {
    let state = state_with(&[stream("S", 3, &[0, 1, 2])]);
    let mut c = ctx(&[0, 1, 2, 3, 4, 5]);
    c.online_peers = vec![0, 1, 2, 3, 4];
    c.unplaceable_peers = vec![3];
    c.lagging_peers = vec![4];
    assert_eq!(remove_peer(&state, &c, "S", 1), Err(ApiError::PeerRemapFailed), "3 is full, 4 lags, 5 is offline");
    c.lagging_peers.clear();
    assert_eq!(remove_peer(&state, &c, "S", 1).map(|g| g.peers), Ok(vec![0, 2, 4]));
}

#[test]
fn stream_peer_remove_refusals() {
    let state = state_with(&[stream("S", 3, &[0, 1, 2])]);
    assert_eq!(remove_peer(&state, &ctx(&[0, 1, 2]), "S", 1), Err(ApiError::PeerRemapFailed), "no spare server");
    assert_eq!(remove_peer(&state, &ctx(&[0, 1, 2, 3]), "S", 3), Err(ApiError::PeerNotMember));
    assert_eq!(remove_peer(&state, &ctx(&[0, 1, 2, 3]), "T", 1), Err(ApiError::StreamNotFound));
}

#[test]
fn stream_peer_remove_of_an_r1_stream_moves_it_to_a_fresh_group() {
    let state = state_with(&[stream("S", 1, &[2])]);
    let group = remove_peer(&state, &ctx(&[0, 1, 2]), "S", 2).expect("a replacement exists");
    assert_ne!(group.name, "S-S", "nothing of the old group stays");
    assert_eq!(group.peers.len(), 1);
    assert!(!group.is_member(2));
}

#[test]
fn stream_peer_remove_during_a_scale_down_needs_no_replacement() {
    // An R3 stream scaled to R1 whose group has not shrunk yet keeps its three peers.
    let state = state_with(&[stream("S", 1, &[0, 1, 2])]);
    assert_eq!(remove_peer(&state, &ctx(&[0, 1, 2]), "S", 0).map(|g| g.peers), Ok(vec![1, 2]));
}
