//! Recovery (§3): the staging rules, snapshot diffs and reconcile, the flush, and the property
//! behind them all (S6): staging then flushing gives what applying one by one gives. Ports
//! §11 #3–#8 and #13–#16, which are unit tests in NATS too (#8 at the meta layer: a catch-up
//! stages against the state a follower had applied).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::bugs::MetaBugs;
use super::entry::MetaEntry;
use super::inflight::Inflight;
use super::local::{LocalAsset, LocalAssets};
use super::model::*;
use super::recovery::{recreated, RecoveryUpdates, SnapshotDiff};
use super::state::MetaState;

const ACC: &str = "acc";
const ME: PeerId = 1;

fn config(name: &str, subjects: &[&str], replicas: u8) -> Vec<u8> {
    let subjects = subjects.iter().map(|s| s.to_string()).collect();
    StreamConfig { name: name.into(), subjects, replicas, ..Default::default() }.to_json()
}

fn stream(name: &str, created_ms: u64, group: &str, peers: &[PeerId]) -> StreamAssignment {
    StreamAssignment {
        account: ACC.into(),
        name: name.into(),
        created_ms,
        config_json: config(name, &[&format!("{name}.>")], peers.len() as u8),
        group: RaftGroup { name: group.into(), peers: peers.to_vec(), preferred: None, joiners: vec![] },
        sync: format!("sync.{name}"),
        consumers: BTreeMap::new(),
    }
}

fn consumer(stream: &str, name: &str, created_ms: u64, group: &str, peers: &[PeerId]) -> ConsumerAssignment {
    ConsumerAssignment {
        account: ACC.into(),
        stream: stream.into(),
        name: name.into(),
        created_ms,
        config_json: ConsumerConfig { durable_name: Some(name.into()), ..Default::default() }.to_json(),
        group: RaftGroup { name: group.into(), peers: peers.to_vec(), preferred: None, joiners: vec![] },
    }
}

fn with_consumers(mut sa: StreamAssignment, cas: Vec<ConsumerAssignment>) -> StreamAssignment {
    sa.consumers = cas.into_iter().map(|ca| (ca.name.clone(), Box::new(ca))).collect();
    sa
}

fn snapshot_of(streams: Vec<StreamAssignment>) -> BTreeMap<StreamKey, StreamAssignment> {
    streams.into_iter().map(|sa| (sa.key(), sa)).collect()
}

fn key(name: &str) -> StreamKey {
    StreamKey::new(ACC, name)
}

fn staged_consumers(m: &BTreeMap<StreamKey, BTreeMap<String, ConsumerAssignment>>) -> usize {
    m.values().map(BTreeMap::len).sum()
}

fn ru() -> RecoveryUpdates {
    RecoveryUpdates::new(MetaBugs::default())
}

/// §11 #3: a stream delete drops the stream's staged add and its consumers' staged adds.
#[test]
fn staged_stream_delete_drops_its_consumer_ops() {
    let mut ru = ru();
    ru.add_stream(stream("S", 1, "g", &[1]));
    ru.add_or_update_consumer(consumer("S", "C", 2, "gc", &[1]));
    ru.remove_stream(stream("S", 1, "g", &[1]));
    assert_eq!(ru.remove_streams.len(), 1);
    assert!(ru.add_streams.is_empty());
    assert!(ru.update_consumers.is_empty());

    // PR #6066: with the bug the consumer op survives the stream's removal.
    let mut bugged =
        RecoveryUpdates::new(MetaBugs { recovery_keep_consumer_on_stream_remove: true, ..MetaBugs::default() });
    bugged.add_or_update_consumer(consumer("S", "C", 2, "gc", &[1]));
    bugged.remove_stream(stream("S", 1, "g", &[1]));
    assert_eq!(staged_consumers(&bugged.update_consumers), 1);
}

/// §11 #5: add(file), remove, add(memory), consumer add: recreate keeps both the remove and
/// the add, and the consumer.
#[test]
fn recreate_is_a_staged_remove_plus_add() {
    let mut ru = ru();
    ru.add_stream(stream("S", 1, "g1", &[1]));
    ru.remove_stream(stream("S", 1, "g1", &[1]));
    ru.add_stream(stream("S", 2, "g2", &[1]));
    ru.add_or_update_consumer(consumer("S", "C", 3, "gc", &[1]));
    assert_eq!((ru.add_streams.len(), ru.remove_streams.len()), (1, 1));
    assert_eq!(ru.add_streams[&key("S")].created_ms, 2);
    assert_eq!(staged_consumers(&ru.update_consumers), 1);
}

/// §2.5 against §3.2: a stale removal (another incarnation's group) staged after a re-create
/// leaves the new consumer's staged add, as applying it one by one leaves the consumer; NATS's
/// staging drops it (the bug switch).
#[test]
fn a_stale_consumer_removal_keeps_the_staged_recreate() {
    let old = consumer("S", "C", 3, "gc-old", &[1]);
    let new = consumer("S", "C", 5, "gc-new", &[1]);
    let mut ru = ru();
    ru.remove_consumer(old.clone());
    ru.add_or_update_consumer(new.clone());
    ru.remove_consumer(old.clone());
    assert_eq!(ru.update_consumers[&key("S")]["C"], new, "the re-create stays staged");
    assert_eq!(ru.remove_consumers[&key("S")]["C"], old);
    ru.remove_consumer(new);
    assert!(ru.update_consumers.is_empty(), "a removal of the same incarnation drops it");

    let mut bugged =
        RecoveryUpdates::new(MetaBugs { recovery_stale_remove_drops_consumer: true, ..MetaBugs::default() });
    bugged.add_or_update_consumer(consumer("S", "C", 5, "gc-new", &[1]));
    bugged.remove_consumer(old);
    assert!(bugged.update_consumers.is_empty(), "NATS drops the re-create");
}

/// §11 #6: add ⇒ update map; remove ⇒ remove map, update cleared; re-add ⇒ both.
#[test]
fn consumer_create_remove_and_recreate() {
    let mut ru = ru();
    let c = consumer("S", "C", 3, "gc", &[1]);
    ru.add_or_update_consumer(c.clone());
    assert_eq!((staged_consumers(&ru.update_consumers), staged_consumers(&ru.remove_consumers)), (1, 0));
    ru.remove_consumer(c.clone());
    assert_eq!((staged_consumers(&ru.update_consumers), staged_consumers(&ru.remove_consumers)), (0, 1));
    ru.add_or_update_consumer(c);
    assert_eq!((staged_consumers(&ru.update_consumers), staged_consumers(&ru.remove_consumers)), (1, 1));
}

/// §11 #7: add then update of one stream are both kept; the flush applies adds before
/// updates, so the update's config wins.
#[test]
fn add_then_update_flushes_to_the_update() {
    let mut state = MetaState::default();
    let mut ru = ru();
    let add = stream("S", 1, "g", &[1]);
    let mut update = add.clone();
    update.config_json = config("S", &["foo"], 1);
    ru.add_stream(add);
    ru.update_stream(update.clone());
    assert_eq!((ru.add_streams.len(), ru.update_streams.len()), (1, 1));
    state.flush(ru, ME, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(state.stream(&key("S")).unwrap().config_json, update.config_json);
}

/// What a catch-up hands a follower: the entries it missed, as NATS's test feeds them through
/// the apply queue, or the leader's snapshot holding their result, as our raft catches a
/// follower up (CatchupStarted, Snapshot, CatchupDone).
enum Missed {
    Entries(Vec<MetaEntry>),
    Snapshot(Vec<StreamAssignment>),
}

impl Missed {
    fn name(&self) -> &'static str {
        match self {
            Missed::Entries(_) => "entries",
            Missed::Snapshot(_) => "snapshot",
        }
    }

    /// Stage what was missed, from log index `from` on, as a catch-up recovery does.
    fn stage(&self, state: &mut MetaState, ru: &mut RecoveryUpdates, from: u64) {
        match self {
            Missed::Entries(entries) => {
                for (i, e) in entries.iter().enumerate() {
                    state.stage(from + i as u64, &e.encode(), ru).unwrap();
                }
            }
            Missed::Snapshot(streams) => state.stage_snapshot(from, snapshot_of(streams.clone()), ru).unwrap(),
        }
    }
}

/// Messages the follower's replica of S holds, and deliveries its replica of C has made.
const STORED: u64 = 10;
const DELIVERED: u64 = 4;

/// A follower in normal mode, unlike a start-up: it has applied (log indexes 1 and 2) an R3
/// stream S and its R3 durable C, and runs both with data. A catch-up recovery stages against
/// this applied state.
fn follower() -> (MetaState, LocalAssets, StreamAssignment, ConsumerAssignment) {
    let sa = stream("S", 1, "g", &[1, 2, 3]);
    let ca = consumer("S", "C", 2, "gc", &[1, 2, 3]);
    let mut local = LocalAssets::default();
    let asset = |created_ms, group: &str, messages| LocalAsset {
        created_ms,
        group_name: group.into(),
        messages,
        running: true,
        direct: false,
    };
    local.restore_stream(key("S"), asset(1, "g", STORED));
    assert!(local.restore_consumer(ca.key(), asset(2, "gc", DELIVERED)));
    let mut state = MetaState::default();
    let mut inflight = Inflight::default();
    let entries = [
        MetaEntry::AssignStream { sa: sa.clone(), reply: None },
        MetaEntry::AssignConsumer { ca: ca.clone(), reply: None },
    ];
    for (i, e) in entries.iter().enumerate() {
        let effects = state.apply(i as u64 + 1, &e.encode(), ME, &mut inflight).unwrap();
        local.apply_effects(&effects);
    }
    assert_eq!(local.stream(&key("S")).map(|a| a.messages), Some(STORED));
    assert_eq!(local.consumer(&ca.key()).map(|a| a.messages), Some(DELIVERED));
    (state, local, sa, ca)
}

/// §11 #8 (TestJetStreamClusterRaftCatchupSignalsMetaRecovery): a follower of an R3 stream. A
/// stray replay-done signal outside any recovery changes nothing. During a catch-up the
/// stream's delete is staged: still assigned, still run here. The end of the catch-up applies
/// it, and the local replica goes with its consumer.
#[test]
fn catchup_stages_a_stream_delete_until_it_ends() {
    let (_, _, sa, _) = follower();
    for missed in [Missed::Entries(vec![MetaEntry::RemoveStream { sa, reply: None }]), Missed::Snapshot(vec![])] {
        let (mut state, mut local, _, ca) = follower();
        let before = state.projection();

        // The stray nil: nothing is staged, so the flush does nothing.
        assert!(state.flush(ru(), ME, &mut ChaCha8Rng::seed_from_u64(1)).is_empty(), "{}", missed.name());
        assert_eq!(state.projection(), before);

        let mut ru = ru();
        missed.stage(&mut state, &mut ru, 3);
        assert_eq!(state.projection(), before, "{}: still assigned while catching up", missed.name());
        assert_eq!(ru.remove_streams.len(), 1, "{}", missed.name());
        assert_eq!(state.applied_index(), 3);
        assert!(local.stream(&key("S")).is_some());

        let effects = state.flush(ru, ME, &mut ChaCha8Rng::seed_from_u64(1));
        local.apply_effects(&effects);
        assert!(state.stream(&key("S")).is_none(), "{}: the catch-up's end applies the delete", missed.name());
        assert!(local.stream(&key("S")).is_none(), "{}", missed.name());
        assert!(local.consumer(&ca.key()).is_none(), "{}", missed.name());
    }
}

/// §11 #8, RecreateStream: during a catch-up the stream is deleted, added again as a memory
/// stream (a new incarnation: created time and group) and updated. Until the catch-up ends
/// the old one stays; then the follower holds the updated memory stream, without the old
/// incarnation's consumer, and a fresh local replica.
#[test]
fn catchup_recreates_a_stream_as_memory() {
    let (_, _, sa, _) = follower();
    let memory = |subjects: Vec<String>| {
        let metadata = BTreeMap::from([("storage".to_string(), "memory".to_string())]);
        StreamConfig { name: "S".into(), subjects, replicas: 3, metadata, ..Default::default() }.to_json()
    };
    let mut added = stream("S", 5, "g2", &[1, 2, 3]);
    added.config_json = memory(vec!["s.>".into()]);
    let mut updated = added.clone();
    updated.config_json = memory(vec!["s.>".into(), "t.>".into()]);
    let entries = vec![
        MetaEntry::RemoveStream { sa, reply: None },
        MetaEntry::AssignStream { sa: added, reply: None },
        MetaEntry::UpdateStream { sa: updated.clone(), reply: None },
    ];
    for missed in [Missed::Entries(entries), Missed::Snapshot(vec![updated.clone()])] {
        let (mut state, mut local, _, ca) = follower();
        let before = state.projection();
        let mut ru = ru();
        missed.stage(&mut state, &mut ru, 3);
        assert_eq!(state.projection(), before, "{}: the old stream until the catch-up ends", missed.name());
        assert_eq!((ru.remove_streams.len(), ru.add_streams.len()), (1, 1), "{}", missed.name());

        let effects = state.flush(ru, ME, &mut ChaCha8Rng::seed_from_u64(1));
        local.apply_effects(&effects);
        let got = state.stream(&key("S")).expect("recreated");
        assert_eq!(*got, updated, "{}: the updated new incarnation, no consumers", missed.name());
        let config = got.config().unwrap().into_config();
        assert_eq!(config.metadata.get("storage").map(String::as_str), Some("memory"));
        assert_eq!(config.subjects, ["s.>", "t.>"]);
        let replica = local.stream(&key("S")).expect("run here");
        assert_eq!(
            (replica.created_ms, replica.group_name.as_str(), replica.messages),
            (5, "g2", 0),
            "{}",
            missed.name()
        );
        assert!(local.consumer(&ca.key()).is_none(), "{}: the old incarnation's consumer is gone", missed.name());
    }
}

/// §11 #8, RecreateConsumer: during a catch-up the durable is deleted and added again on a new
/// single-peer group (this server). Until the catch-up ends the old consumer stays with its
/// deliveries; then the follower runs the new one from fresh state (no deliveries), and the
/// stream's data is untouched.
#[test]
fn catchup_recreates_a_consumer_with_fresh_state() {
    let (_, _, sa, old) = follower();
    let new = consumer("S", "C", 6, "gc2", &[ME]);
    let entries = vec![
        MetaEntry::RemoveConsumer { ca: old.clone(), reply: None },
        MetaEntry::AssignConsumer { ca: new.clone(), reply: None },
    ];
    let snapshot = vec![with_consumers(sa, vec![new.clone()])];
    for missed in [Missed::Entries(entries), Missed::Snapshot(snapshot)] {
        let (mut state, mut local, _, _) = follower();
        let before = state.projection();
        let mut ru = ru();
        missed.stage(&mut state, &mut ru, 3);
        assert_eq!(state.projection(), before, "{}: the old consumer until the catch-up ends", missed.name());
        assert_eq!(local.consumer(&old.key()).map(|a| a.messages), Some(DELIVERED));
        assert_eq!(
            (staged_consumers(&ru.remove_consumers), staged_consumers(&ru.update_consumers)),
            (1, 1),
            "{}",
            missed.name()
        );

        let effects = state.flush(ru, ME, &mut ChaCha8Rng::seed_from_u64(1));
        local.apply_effects(&effects);
        assert_eq!(state.consumer(&old.key()), Some(&new), "{}: on the new group", missed.name());
        let replica = local.consumer(&old.key()).expect("run here");
        assert_eq!(
            (replica.created_ms, replica.group_name.as_str(), replica.messages, replica.running),
            (6, "gc2", 0, true),
            "{}: fresh consumer state",
            missed.name()
        );
        assert_eq!(local.stream(&key("S")).map(|a| a.messages), Some(STORED), "{}", missed.name());
    }
}

/// §11 #4: a snapshot staged during recovery drops the staged work it supersedes.
#[test]
fn recovery_snapshot_reconciles_staged_work() {
    let kept = with_consumers(stream("K", 1, "gk", &[1]), vec![consumer("K", "C1", 2, "gk1", &[1])]);
    let snapshot = snapshot_of(vec![kept.clone()]);
    struct Case {
        name: &'static str,
        stage: fn(&mut RecoveryUpdates),
        // (adds, updates, consumer adds, consumer removes) after staging the snapshot.
        want: (usize, usize, usize, usize),
    }
    let cases = [
        Case {
            name: "add of a stream the snapshot lacks",
            stage: |ru| ru.add_stream(stream("X", 5, "gx", &[1])),
            want: (1, 0, 1, 0),
        },
        Case {
            name: "add plus consumers of a stream the snapshot lacks",
            stage: |ru| {
                ru.add_stream(stream("X", 5, "gx", &[1]));
                ru.add_or_update_consumer(consumer("X", "C", 6, "gxc", &[1]));
                ru.remove_consumer(consumer("X", "D", 6, "gxd", &[1]));
            },
            want: (1, 0, 1, 0),
        },
        Case {
            name: "update of a stream the snapshot lacks",
            stage: |ru| ru.update_stream(stream("X", 5, "gx", &[1])),
            want: (1, 0, 1, 0),
        },
        Case {
            name: "stale update of a kept stream is superseded by the snapshot's add",
            stage: |ru| ru.update_stream(stream("K", 1, "gk", &[1])),
            want: (1, 0, 1, 0),
        },
        Case {
            name: "consumer add the snapshot lacks",
            stage: |ru| ru.add_or_update_consumer(consumer("K", "GONE", 3, "gg", &[1])),
            want: (1, 0, 1, 0),
        },
        Case {
            name: "consumer add the snapshot has",
            stage: |ru| ru.add_or_update_consumer(consumer("K", "C1", 2, "gk1", &[1])),
            want: (1, 0, 1, 0),
        },
        Case {
            name: "consumer remove of a kept stream stays",
            stage: |ru| ru.remove_consumer(consumer("K", "OLD", 1, "go", &[1])),
            want: (1, 0, 1, 1),
        },
        Case {
            name: "stream remove stays",
            stage: |ru| ru.remove_stream(stream("X", 5, "gx", &[1])),
            want: (1, 0, 1, 0),
        },
        Case { name: "nothing staged", stage: |_| {}, want: (1, 0, 1, 0) },
    ];
    for case in cases {
        let mut ru = ru();
        (case.stage)(&mut ru);
        let removes_before = ru.remove_streams.len();
        let mut state = MetaState::default();
        state.stage_snapshot(10, snapshot.clone(), &mut ru).unwrap();
        let got = (
            ru.add_streams.len(),
            ru.update_streams.len(),
            staged_consumers(&ru.update_consumers),
            staged_consumers(&ru.remove_consumers),
        );
        assert_eq!(got, case.want, "{}", case.name);
        assert_eq!(ru.remove_streams.len(), removes_before, "{}: staged removals are kept", case.name);
        assert_eq!(ru.add_streams[&key("K")], kept.without_consumers(), "{}", case.name);
    }

    // PR #8324: without the reconcile the deleted stream X comes back at the flush.
    let mut bugged = RecoveryUpdates::new(MetaBugs { recovery_snapshot_no_reconcile: true, ..MetaBugs::default() });
    bugged.add_stream(stream("X", 5, "gx", &[1]));
    let mut state = MetaState::default();
    state.stage_snapshot(10, snapshot, &mut bugged).unwrap();
    state.flush(bugged, ME, &mut ChaCha8Rng::seed_from_u64(1));
    assert!(state.stream(&key("X")).is_some(), "the bug revives X");
}

/// §11 #13: recreate only when created differs AND the group differs; a snapshot's consumers
/// are always staged again.
#[test]
fn snapshot_recreate_detection_matrix() {
    for (created_new, group_new, recreate) in [(1, "g", false), (1, "h", false), (2, "g", false), (2, "h", true)] {
        assert_eq!(recreated(1, "g", created_new, group_new), recreate);
        let old = with_consumers(stream("S", 1, "g", &[1]), vec![consumer("S", "C", 1, "gc", &[1])]);
        let new = with_consumers(
            stream("S", created_new, group_new, &[1]),
            vec![consumer("S", "C", created_new, &format!("{group_new}c"), &[1])],
        );
        let diff = SnapshotDiff::new(&snapshot_of(vec![old]), snapshot_of(vec![new.clone()]));
        if recreate {
            assert_eq!((diff.stream_deletes.len(), diff.stream_adds.len(), diff.stream_checks.len()), (1, 1, 0));
            assert_eq!(diff.stream_adds[0].consumers.len(), 1, "a recreated stream brings its consumers");
        } else {
            assert_eq!((diff.stream_deletes.len(), diff.stream_adds.len(), diff.stream_checks.len()), (0, 0, 1));
            assert_eq!(diff.consumer_adds.len(), 1, "consumers are staged again");
            // The consumer is recreated by the same rule as streams.
            let consumer_recreated = created_new != 1 && group_new != "g";
            assert_eq!(diff.consumer_deletes.len(), usize::from(consumer_recreated));
        }
    }
}

/// §11 #14: snapshot with stream+consumer, then delete, then re-add under a new R1 group with
/// a consumer: one stream and one consumer staged, and the flush never runs the old groups.
#[test]
fn snapshot_recreate_consistency() {
    let old = with_consumers(stream("S", 1, "old", &[1, 2, 3]), vec![consumer("S", "C", 1, "oldc", &[1, 2, 3])]);
    let mut state = MetaState::default();
    let mut ru = ru();
    state.stage_snapshot(5, snapshot_of(vec![old.clone()]), &mut ru).unwrap();
    state.stage(6, &MetaEntry::RemoveStream { sa: old.without_consumers(), reply: None }.encode(), &mut ru).unwrap();
    let new = stream("S", 2, "new", &[1]);
    state.stage(7, &MetaEntry::AssignStream { sa: new, reply: None }.encode(), &mut ru).unwrap();
    let c = consumer("S", "C", 2, "newc", &[1]);
    state.stage(8, &MetaEntry::AssignConsumer { ca: c, reply: None }.encode(), &mut ru).unwrap();
    assert_eq!((ru.add_streams.len(), staged_consumers(&ru.update_consumers)), (1, 1));
    let effects = state.flush(ru, ME, &mut ChaCha8Rng::seed_from_u64(1));
    let groups: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            super::state::Effect::RunStream { group, .. } | super::state::Effect::RunConsumer { group, .. } => {
                Some(group.name.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(groups, ["new", "newc"]);
    assert_eq!(state.applied_index(), 8);
}

/// §11 #15: snapshot with an R1 stream and consumer (consumer created time zero), then the
/// consumer's delete: staged stream add and consumer remove, no consumer add; after the flush
/// the consumer is gone.
#[test]
fn snapshot_consumer_delete_consistency() {
    let c = consumer("S", "C", 0, "gc", &[1]);
    let sa = with_consumers(stream("S", 1, "g", &[1]), vec![c.clone()]);
    let mut state = MetaState::default();
    let mut ru = ru();
    state.stage_snapshot(5, snapshot_of(vec![sa]), &mut ru).unwrap();
    state.stage(6, &MetaEntry::RemoveConsumer { ca: c, reply: None }.encode(), &mut ru).unwrap();
    assert_eq!(ru.add_streams.len(), 1);
    assert_eq!(staged_consumers(&ru.remove_consumers), 1);
    assert_eq!(staged_consumers(&ru.update_consumers), 0);
    state.flush(ru, ME, &mut ChaCha8Rng::seed_from_u64(1));
    assert!(state.consumer(&ConsumerKey::new(ACC, "S", "C")).is_none());
    assert!(state.stream(&key("S")).is_some());
}

/// §11 #16: a snapshot that fails validation is an apply error, nothing half-applied, in
/// both modes.
#[test]
fn bad_snapshot_is_an_apply_error_with_nothing_applied() {
    let mut bad = stream("S", 1, "g", &[1]);
    bad.config_json = b"{not json".to_vec();
    for recovering in [false, true] {
        let mut state = MetaState::default();
        let good = stream("A", 1, "ga", &[1]);
        let result = if recovering {
            state.stage_snapshot(5, snapshot_of(vec![good, bad.clone()]), &mut ru()).map(|_| ())
        } else {
            state.apply_snapshot(5, snapshot_of(vec![good, bad.clone()]), ME).map(|_| ())
        };
        assert!(result.is_err());
        assert!(state.write_error().is_some(), "recovering {recovering}");
        assert_eq!(state.streams().count(), 0, "nothing applied (recovering {recovering})");
        assert_eq!(state.applied_index(), 0);
    }
}

/// A snapshot whose frame checksum and encoding are whole but whose config bytes are not a
/// config (a stream's, or a consumer's): the checksum cannot catch that, validation must. It
/// is refused with an error naming the asset, and nothing is applied, in both modes.
#[test]
fn snapshot_with_corrupt_config_bytes_in_a_valid_frame_is_refused() {
    use crate::server::jetstream::MetaSnapshot;
    use crate::server::storage::{frame, read_frames};

    let whole = with_consumers(stream("S", 1, "g", &[1]), vec![consumer("S", "C", 1, "gc", &[1])]);
    let mut bad_stream = whole.clone();
    bad_stream.config_json = b"{\"name\":\"S\",".to_vec();
    let mut bad_consumer = whole.clone();
    bad_consumer.consumers.get_mut("C").expect("one consumer").config_json = b"\x00\xff".to_vec();
    for (bad, named) in [(bad_stream, "stream acc:S:"), (bad_consumer, "consumer acc:S:C:")] {
        let snapshot = MetaSnapshot { streams: snapshot_of(vec![stream("A", 1, "ga", &[1]), bad]) };
        let bytes = frame(&bincode::serialize(&snapshot).expect("encodes"));
        let (frames, torn) = read_frames("snapshot/meta.5", &bytes).expect("the frame is whole");
        assert_eq!((frames.len(), torn), (1, 0));
        let decoded: MetaSnapshot = bincode::deserialize(frames[0]).expect("the encoding is whole");
        for recovering in [false, true] {
            let mut state = MetaState::default();
            let result = if recovering {
                state.stage_snapshot(5, decoded.streams.clone(), &mut ru()).map(|_| ())
            } else {
                state.apply_snapshot(5, decoded.streams.clone(), ME).map(|_| ())
            };
            let error = result.expect_err("corrupt config bytes are refused").to_string();
            assert!(error.contains(named) && error.contains("config does not decode"), "{error}");
            assert_eq!(state.write_error(), Some(error.as_str()), "the error is sticky");
            assert_eq!(state.streams().count(), 0, "nothing applied (recovering {recovering})");
        }
    }
}

/// A snapshot a blank server can adopt as it is: two accounts, streams and consumers with
/// and without this server in their groups, a joiner, a stream without consumers.
fn adoptable_snapshot() -> BTreeMap<StreamKey, StreamAssignment> {
    let mut other_account = stream("O", 4, "go", &[1, 2]);
    other_account.account = "other".into();
    let mut joined = consumer("A", "J", 3, "gj", &[1, 2]);
    joined.group.joiners = vec![2];
    snapshot_of(vec![
        with_consumers(
            stream("A", 1, "ga", &[1, 2, 3]),
            vec![consumer("A", "C", 2, "gc", &[1]), consumer("A", "D", 2, "gd", &[2, 3]), joined],
        ),
        with_consumers(stream("B", 1, "gb", &[2, 3]), vec![consumer("B", "C", 5, "gbc", &[1, 3])]),
        stream("E", 6, "ge", &[1]),
        other_account,
    ])
}

/// Everything of a state that applying a snapshot decides.
fn applied(state: &MetaState) -> impl PartialEq + std::fmt::Debug {
    let unsupported_streams: Vec<(StreamKey, String)> =
        state.unsupported_streams().map(|(k, r)| (k.clone(), r.to_string())).collect();
    let unsupported_consumers: Vec<(ConsumerKey, String)> =
        state.unsupported_consumers().map(|(k, r)| (k.clone(), r.to_string())).collect();
    (
        state.snapshot_streams().clone(),
        state.projection_digest(),
        unsupported_streams,
        unsupported_consumers,
        state.applied_index(),
        state.write_error().map(str::to_string),
        state.check_structure(),
    )
}

/// A blank server adopts a snapshot's maps instead of applying it as a diff: the state, its
/// kept digest and the effects (in order) are the diff's. Snapshots it cannot adopt (an
/// asset unsupported here, a consumer filed under another name) take the diff, with the
/// same result.
#[test]
fn adopting_a_snapshot_equals_applying_it_as_a_diff() {
    let adoptable = adoptable_snapshot();
    let mut unsupported_stream = adoptable.clone();
    unsupported_stream.get_mut(&key("B")).expect("B").config_json = br#"{"name":"B","future":1}"#.to_vec();
    let mut unsupported_consumer = adoptable.clone();
    let c = unsupported_consumer.get_mut(&key("A")).expect("A").consumers.get_mut("D").expect("D");
    c.config_json = br#"{"durable_name":"D","future":1}"#.to_vec();
    let mut misfiled = adoptable.clone();
    let a = misfiled.get_mut(&key("A")).expect("A");
    let c = a.consumers.remove("C").expect("C");
    a.consumers.insert("Z".into(), c);
    for (name, snapshot) in [
        ("adoptable", adoptable),
        ("unsupported stream", unsupported_stream),
        ("unsupported consumer", unsupported_consumer),
        ("misfiled consumer", misfiled),
    ] {
        let (mut adopting, mut diffing) = (MetaState::default(), MetaState::default());
        let adopted = adopting.apply_snapshot(7, snapshot.clone(), ME).expect("valid");
        let diffed = diffing.apply_snapshot_by_diff(7, snapshot.clone(), ME).expect("valid");
        assert_eq!(adopted, diffed, "{name}: effects");
        assert_eq!(applied(&adopting), applied(&diffing), "{name}: state");
        let full = super::projection::projection_digest_of(adopting.snapshot_streams());
        assert_eq!(adopting.projection_digest(), full, "{name}: the kept digest");
        assert!(adopting.revision() != MetaState::default().revision());
    }
}

/// A snapshot applied with the digest its installer computed gives what applying it alone
/// gives: on a blank server (adopted, keeping that digest) and on one that holds a stream
/// (a diff, which keeps its own sum).
#[test]
fn a_digested_snapshot_applies_as_the_snapshot_alone() {
    use super::projection::projection_digest_of;

    let snapshot = adoptable_snapshot();
    let digest = projection_digest_of(&snapshot);
    let mut holding = MetaState::default();
    holding.apply_snapshot(3, snapshot_of(vec![stream("X", 1, "gx", &[1])]), ME).expect("valid");
    for (name, start) in [("blank", MetaState::default()), ("holding", holding)] {
        let (mut plain, mut digested) = (start.clone(), start);
        let by_plain = plain.apply_snapshot(7, snapshot.clone(), ME).expect("valid");
        let by_digested = digested.apply_digested_snapshot(7, snapshot.clone(), digest, ME).expect("valid");
        assert_eq!(by_digested, by_plain, "{name}: effects");
        assert_eq!(applied(&digested), applied(&plain), "{name}: state");
        let full = projection_digest_of(digested.snapshot_streams());
        assert_eq!(digested.projection_digest(), full, "{name}: the kept digest");
    }
}

/// Adopting skips no check: a snapshot with a defect anywhere is refused on a blank server
/// with an error naming the place, and nothing is applied.
#[test]
fn a_blank_server_refuses_a_defective_snapshot() {
    type Defect = fn(&mut BTreeMap<StreamKey, StreamAssignment>);
    let defects: [(&str, Defect, &str); 6] = [
        (
            "stream under another key",
            |s| s.get_mut(&key("B")).expect("B").account = "other".into(),
            "snapshot holds stream other:B under acc:B",
        ),
        (
            "consumer under another stream",
            |s| s.get_mut(&key("A")).expect("A").consumers.get_mut("C").expect("C").stream = "B".into(),
            "consumer acc:B:C under stream acc:A",
        ),
        (
            "consumer group with a peer twice",
            |s| s.get_mut(&key("B")).expect("B").consumers.get_mut("C").expect("C").group.peers = vec![3, 3],
            "consumer acc:B:C: raft group gbc lists peer 3 twice",
        ),
        (
            "stream config naming another stream",
            |s| s.get_mut(&key("E")).expect("E").config_json = config("F", &[], 1),
            "stream acc:E: config names stream \"F\"",
        ),
        (
            "consumer config that is not JSON",
            |s| s.get_mut(&key("A")).expect("A").consumers.get_mut("D").expect("D").config_json = b"{".to_vec(),
            "consumer acc:A:D: config does not decode",
        ),
        (
            // The same bytes as A:D's config, which was valid there: a config parsed once
            // for all consumers that share it is still checked against each one's name.
            "consumer config naming another consumer's durable",
            |s| {
                let config = s[&key("A")].consumers["D"].config_json.clone();
                s.get_mut(&key("B")).expect("B").consumers.get_mut("C").expect("C").config_json = config;
            },
            "consumer acc:B:C: config names durable \"D\"",
        ),
    ];
    for (name, defect, place) in defects {
        let mut snapshot = adoptable_snapshot();
        defect(&mut snapshot);
        let mut state = MetaState::default();
        let error = state.apply_snapshot(7, snapshot, ME).expect_err(name).to_string();
        assert!(error.contains(place), "{name}: {error}");
        assert_eq!(state.write_error(), Some(error.as_str()), "{name}: the error is sticky");
        assert_eq!(state.streams().count(), 0, "{name}: nothing applied");
        assert_eq!(state.projection_digest(), 0, "{name}: nothing counted");
    }
}

/// A random history of meta entries over a few names: creates (new incarnations), updates,
/// stale and current deletes, consumer creates and deletes (stale ones too: a removal of an
/// incarnation already removed, which may land after the name was re-created).
fn history(seed: u64, len: usize) -> Vec<MetaEntry> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut live: BTreeMap<String, StreamAssignment> = BTreeMap::new();
    let mut dead: Vec<StreamAssignment> = Vec::new();
    let mut dead_consumers: Vec<ConsumerAssignment> = Vec::new();
    let mut out = Vec::new();
    let mut clock = 1;
    for _ in 0..len {
        clock += 1;
        let name = ["A", "B", "C"][rng.gen_range(0..3)].to_string();
        let peers: &[PeerId] = if rng.gen_bool(0.5) { &[1] } else { &[2, 3] };
        match (rng.gen_range(0..7), live.get(&name).cloned()) {
            (0 | 1, None) | (0, Some(_)) if !live.contains_key(&name) => {
                let sa = stream(&name, clock, &format!("g{clock}"), peers);
                live.insert(name, sa.clone());
                out.push(MetaEntry::AssignStream { sa, reply: None });
            }
            (1, Some(mut sa)) => {
                // Scale/rename: same created time, new group; or a config update.
                if rng.gen_bool(0.5) {
                    sa.group = RaftGroup {
                        name: format!("g{clock}"),
                        peers: peers.to_vec(),
                        preferred: None,
                        joiners: vec![],
                    };
                } else {
                    sa.config_json = config(&name, &[&format!("{name}.{clock}")], sa.group.peers.len() as u8);
                }
                live.insert(name, sa.clone());
                out.push(MetaEntry::UpdateStream { sa: sa.without_consumers(), reply: None });
            }
            (2, Some(sa)) => {
                live.remove(&name);
                dead.push(sa.clone());
                out.push(MetaEntry::RemoveStream { sa: sa.without_consumers(), reply: None });
            }
            (3, _) if !dead.is_empty() => {
                let stale = dead[rng.gen_range(0..dead.len())].clone();
                out.push(MetaEntry::RemoveStream { sa: stale.without_consumers(), reply: None });
            }
            (4, Some(mut sa)) => {
                let cname = ["X", "Y"][rng.gen_range(0..2)];
                let ca = consumer(&name, cname, clock, &format!("c{clock}"), &sa.group.peers);
                sa.consumers.insert(cname.into(), Box::new(ca.clone()));
                live.insert(name, sa);
                out.push(MetaEntry::AssignConsumer { ca, reply: None });
            }
            (5, Some(mut sa)) if !sa.consumers.is_empty() => {
                let cname = sa.consumers.keys().next().cloned().expect("non-empty");
                let ca = *sa.consumers.remove(&cname).expect("present");
                live.insert(name, sa);
                dead_consumers.push(ca.clone());
                out.push(MetaEntry::RemoveConsumer { ca, reply: None });
            }
            (6, _) if !dead_consumers.is_empty() => {
                let stale = dead_consumers[rng.gen_range(0..dead_consumers.len())].clone();
                out.push(MetaEntry::RemoveConsumer { ca: stale, reply: None });
            }
            _ => {}
        }
    }
    out
}

/// Apply entries one by one; the state after each index.
fn sequential(entries: &[MetaEntry]) -> Vec<MetaState> {
    let mut state = MetaState::default();
    let mut states = vec![state.clone()];
    for (i, e) in entries.iter().enumerate() {
        state.apply(i as u64 + 1, &e.encode(), ME, &mut Inflight::default()).expect("history applies");
        states.push(state.clone());
    }
    states
}

/// How a recovery sees a history: a start-up with its own snapshot at `own` then entries,
/// interrupted by a leader's snapshot at `leader` (> own) and the entries after it.
fn recover(
    entries: &[MetaEntry],
    states: &[MetaState],
    own: usize,
    leader: usize,
    bugs: MetaBugs,
    order: u64,
) -> MetaState {
    let mut state = MetaState::default();
    let mut ru = RecoveryUpdates::new(bugs);
    let streams = |i: usize| states[i].snapshot_streams().clone();
    if own > 0 {
        state.stage_snapshot(own as u64, streams(own), &mut ru).unwrap();
    }
    let upto = |state: &mut MetaState, ru: &mut RecoveryUpdates, from: usize, to: usize| {
        for (i, e) in entries.iter().enumerate().take(to).skip(from) {
            state.stage(i as u64 + 1, &e.encode(), ru).unwrap();
        }
    };
    let mid = (own + leader) / 2;
    upto(&mut state, &mut ru, own, mid);
    state.stage_snapshot(leader as u64, streams(leader), &mut ru).unwrap();
    upto(&mut state, &mut ru, leader, entries.len());
    state.flush(ru, ME, &mut ChaCha8Rng::seed_from_u64(order));
    state
}

/// S6 over random histories: staging (own snapshot, entries, a newer snapshot, entries) then
/// flushing gives the projection of applying every entry one by one, whatever the flush order.
#[test]
fn recovery_equals_sequential_application() {
    for seed in 0..300 {
        let entries = history(seed, 40);
        let states = sequential(&entries);
        let n = entries.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let own = rng.gen_range(0..=n / 2);
        let leader = rng.gen_range(own..=n);
        let got = recover(&entries, &states, own, leader, MetaBugs::default(), seed);
        assert_eq!(
            got.projection(),
            states[n].projection(),
            "seed {seed}: own snapshot {own}, leader snapshot {leader}"
        );
        assert_eq!(got.applied_index(), n as u64);
    }
}

/// The property fails with each recovery bug: it is what catches them.
#[test]
fn recovery_bugs_break_equivalence() {
    for bugs in [
        MetaBugs { recovery_keep_consumer_on_stream_remove: true, ..MetaBugs::default() },
        MetaBugs { recovery_snapshot_no_reconcile: true, ..MetaBugs::default() },
        MetaBugs { recovery_stale_remove_drops_consumer: true, ..MetaBugs::default() },
    ] {
        let broken = (0..300).any(|seed| {
            let entries = history(seed, 40);
            let states = sequential(&entries);
            let n = entries.len();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let own = rng.gen_range(0..=n / 2);
            let leader = rng.gen_range(own..=n);
            recover(&entries, &states, own, leader, bugs, seed).projection() != states[n].projection()
        });
        assert!(broken, "{bugs:?} never broke recovery equivalence");
    }
}

/// Applying a snapshot in normal mode equals the sequential state, from any earlier state.
#[test]
fn snapshot_apply_in_normal_mode_equals_sequential() {
    for seed in 0..200 {
        let entries = history(seed, 40);
        let states = sequential(&entries);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let from = rng.gen_range(0..=entries.len());
        let to = rng.gen_range(from..=entries.len());
        let mut state = states[from].clone();
        let mut local = LocalAssets::default();
        let effects = state.apply_snapshot(to as u64, states[to].snapshot_streams().clone(), ME).unwrap();
        local.apply_effects(&effects);
        assert_eq!(state.projection(), states[to].projection(), "seed {seed}: {from} → {to}");
    }
}
