//! `bench` figures of the meta layer: a meta snapshot's encode and decode at scale, and
//! start-up recovery (read the WAL, stage every entry, flush) for logs of growing length.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use metasim::meta::{
    ConsumerAssignment, ConsumerConfig, MetaEntry, MetaState, RaftGroup, RecoveryUpdates, StreamAssignment,
    StreamConfig, StreamKey,
};
use metasim::raft::{Entry, EntryData, HardState};
use metasim::server::jetstream::MetaSnapshot;
use metasim::server::storage::{encode_framed, read_frames, GroupFiles, WalRecord};
use rand::SeedableRng;
use sim::disk::NodeDisk;

fn stream(name: &str, created_ms: u64) -> StreamAssignment {
    let config =
        StreamConfig { name: name.into(), subjects: vec![format!("{name}.>")], replicas: 3, ..Default::default() };
    StreamAssignment {
        account: "A".into(),
        name: name.into(),
        created_ms,
        config_json: config.to_json(),
        group: RaftGroup {
            name: format!("S-{name}-{created_ms}"),
            peers: vec![0, 1, 2],
            preferred: Some(0),
            joiners: vec![],
        },
        sync: format!("$SYS.JSC.SYNC.{name}.{created_ms}"),
        consumers: BTreeMap::new(),
    }
}

fn consumer(stream: &str, name: &str, created_ms: u64) -> ConsumerAssignment {
    ConsumerAssignment {
        account: "A".into(),
        stream: stream.into(),
        name: name.into(),
        created_ms,
        config_json: ConsumerConfig { durable_name: Some(name.into()), ..Default::default() }.to_json(),
        group: RaftGroup {
            name: format!("C-{stream}-{name}-{created_ms}"),
            peers: vec![0, 1, 2],
            preferred: None,
            joiners: vec![],
        },
    }
}

/// Decodes timed after the first, into memory the allocator has held before: the steady
/// cost, without the first touch of fresh pages (some 2 µs a page on the VMs we run on).
const SNAPSHOT_DECODES_WARM: usize = 4;

/// Encode (bincode + checksummed frame, as the snapshot file holds it) and decode (check the
/// frame, deserialize, validate and apply as a diff onto an empty state) of a meta snapshot of
/// `streams` streams with `consumers` consumers each. The first decode is the row's figure;
/// the median of [`SNAPSHOT_DECODES_WARM`] more, and the page faults of the first, say how
/// much of it was fresh memory.
pub fn snapshot(streams: usize, consumers: usize) {
    let mut state: BTreeMap<StreamKey, StreamAssignment> = BTreeMap::new();
    for s in 0..streams {
        let name = format!("S{s}");
        let mut sa = stream(&name, 1_000 + s as u64);
        for c in 0..consumers {
            let ca = consumer(&name, &format!("C{c}"), 2_000 + c as u64);
            sa.consumers.insert(ca.name.clone(), Box::new(ca));
        }
        state.insert(sa.key(), sa);
    }
    let snapshot = MetaSnapshot { streams: state };
    let started = Instant::now();
    let bytes = encode_framed(&snapshot);
    let encode = started.elapsed();
    let faults_before = metasim::prefault::thread_page_faults();
    let (first, applied) = decode_and_apply(&bytes);
    let faults = metasim::prefault::thread_page_faults() - faults_before;
    assert_eq!(applied.streams().count(), streams);
    drop(applied);
    let mut warm: Vec<Duration> = (0..SNAPSHOT_DECODES_WARM).map(|_| decode_and_apply(&bytes).0).collect();
    warm.sort();
    println!(
        "meta snapshot, {streams} streams x {consumers} consumers: {:.1} MB, encode {:.1} ms, decode+apply {:.1} ms \
         ({faults} page faults; warm: {:.1} ms, median of {SNAPSHOT_DECODES_WARM})",
        bytes.len() as f64 / 1e6,
        ms(encode),
        ms(first),
        ms(warm[SNAPSHOT_DECODES_WARM / 2])
    );
}

/// One decode of a framed snapshot onto an empty state, timed; the state is dropped by the
/// caller, outside the time.
fn decode_and_apply(bytes: &[u8]) -> (Duration, MetaState) {
    let started = Instant::now();
    let (frames, torn) = read_frames("snapshot/meta", bytes).expect("a fresh frame reads back");
    assert!(frames.len() == 1 && torn == 0, "one whole frame");
    let decoded: MetaSnapshot = bincode::deserialize(frames[0]).expect("decodes");
    let mut applied = MetaState::default();
    applied.apply_snapshot(1, decoded.streams, 0).expect("a valid snapshot applies");
    (started.elapsed(), applied)
}

/// A log of `n` meta entries cycling over 1,000 stream names: create, consumer create, update,
/// consumer delete, delete.
fn log(n: usize) -> Vec<Entry> {
    let mut live: BTreeMap<usize, StreamAssignment> = BTreeMap::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let slot = i % 1_000;
        let name = format!("S{slot}");
        let entry = match (i / 1_000) % 5 {
            0 => {
                let sa = stream(&name, i as u64 + 1);
                live.insert(slot, sa.clone());
                MetaEntry::AssignStream { sa, reply: None }
            }
            1 => MetaEntry::AssignConsumer { ca: consumer(&name, "C", i as u64 + 1), reply: None },
            2 => {
                let mut sa = live[&slot].clone();
                sa.config_json = StreamConfig {
                    name: name.clone(),
                    subjects: vec![format!("{name}.{i}")],
                    replicas: 3,
                    ..Default::default()
                }
                .to_json();
                MetaEntry::UpdateStream { sa, reply: None }
            }
            3 => {
                let created = (i - 2_000) as u64 + 1;
                MetaEntry::RemoveConsumer { ca: consumer(&name, "C", created), reply: None }
            }
            _ => MetaEntry::RemoveStream { sa: live[&slot].clone(), reply: None },
        };
        out.push(Entry { term: 1, index: i as u64 + 1, data: EntryData::Normal(entry.encode()) });
    }
    out
}

/// Start-up recovery of a meta log of `n` entries: read and check the WAL, stage every entry
/// (§3.2), flush (§3.4).
pub fn recovery(n: usize) {
    let files = GroupFiles::new("meta");
    let mut disk = NodeDisk::default();
    for chunk in log(n).chunks(100) {
        files.append_wal(&mut disk, &WalRecord::Entries(chunk.to_vec())).expect("in-memory disk");
    }
    files.append_hard_state(&mut disk, HardState { term: 1, voted_for: Some(0), commit: n as u64 }).expect("disk");
    let started = Instant::now();
    let recovered = files.recover(&mut disk).expect("a clean WAL recovers");
    let read = started.elapsed();
    let mut state = MetaState::default();
    let mut staged = RecoveryUpdates::default();
    for entry in &recovered.entries {
        if let EntryData::Normal(data) = &entry.data {
            state.stage(entry.index, data, &mut staged).expect("valid entries stage");
        }
    }
    let staged_keys = staged.len();
    state.flush(staged, 0, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let total = started.elapsed();
    println!(
        "start-up recovery, {n:>6} entries: {:>8.1} ms ({:.1} ms reading the WAL, {staged_keys} keys staged), {:.2} us/entry",
        ms(total),
        ms(read),
        total.as_secs_f64() * 1e6 / n as f64
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
