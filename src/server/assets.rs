//! This server's local streams and consumers on disk: one small file per asset, so a restarted
//! server restores its assets before the meta group replays (NATS restores accounts, streams
//! and consumers from disk first). That is what makes orphans possible (§4): an asset whose
//! assignment the recovered meta state lacks.
//!
//! `assets/<group>`: one checksummed frame holding an [`AssetRecord`]. Group names are unique
//! per incarnation, so a regrouped asset gets a new file and the old one is removed. Each write
//! is synced at once (the asset is created before the server reports it running).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sim::disk::NodeDisk;

use super::jetstream::CarriesPending;
use super::storage::{encode_framed, read_frames, StorageError};
use crate::meta::{ConsumerKey, LocalAsset, LocalAssets, StreamKey};

pub const PREFIX: &str = "assets/";

/// Which asset a file holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AssetKey {
    Stream(StreamKey),
    Consumer(ConsumerKey),
}

/// One asset's file content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRecord {
    pub key: AssetKey,
    pub created_ms: u64,
}

fn path(group: &str) -> String {
    format!("{PREFIX}{group}")
}

/// What the local assets should have on disk, in group-name order, each name once (the last
/// asset of a name, as a map by name would keep it): borrowed, as this runs after every input
/// that changed an asset, over every asset. Direct consumers live
/// in memory only (NATS keeps a mirror's consumer in memory), so a restart loses them.
///
/// A stream whose scale-up carry waits (`carries_pending`: new group → its stream and the R1
/// group whose store it carries) stays on disk under its R1 group until the carry is written.
/// After a restart it is then restored where its messages are, and the replay or snapshot
/// that runs it in the new group regroups it and asks for the carry again. Recorded under the
/// new group, it came back already regrouped, and the group started empty (a shrink of the
/// guided `disk` run 171 from 2300000, stop 52).
pub fn wanted<'a>(local: &'a LocalAssets, carries_pending: &'a CarriesPending) -> Vec<Wanted<'a>> {
    let waiting_in = |key: &StreamKey, group: &'a str| -> &'a str {
        match carries_pending.get(group) {
            Some((waiting, store)) if waiting == key => store,
            _ => group,
        }
    };
    let streams = local.streams().map(|(k, a)| Wanted {
        group: waiting_in(k, &a.group_name),
        key: WantedKey::Stream(k),
        created_ms: a.created_ms,
    });
    let consumers = local.public_consumers().map(|(k, a)| Wanted {
        group: &a.group_name,
        key: WantedKey::Consumer(k),
        created_ms: a.created_ms,
    });
    // Of the assets of one name, the last one stays.
    super::by_name::last_by_name(streams.chain(consumers).collect(), |w| w.group)
}

/// One asset's file as [`wanted`] gives it: the group that names the file, and what the file
/// holds, borrowed.
#[derive(Debug)]
pub struct Wanted<'a> {
    group: &'a str,
    key: WantedKey<'a>,
    created_ms: u64,
}

#[derive(Debug)]
enum WantedKey<'a> {
    Stream(&'a StreamKey),
    Consumer(&'a ConsumerKey),
}

impl Wanted<'_> {
    /// Whether `record` is what this file holds.
    fn is_in(&self, record: &AssetRecord) -> bool {
        let same_key = match (&self.key, &record.key) {
            (WantedKey::Stream(a), AssetKey::Stream(b)) => *a == b,
            (WantedKey::Consumer(a), AssetKey::Consumer(b)) => *a == b,
            _ => false,
        };
        same_key && self.created_ms == record.created_ms
    }

    fn record(&self) -> AssetRecord {
        let key = match self.key {
            WantedKey::Stream(key) => AssetKey::Stream(key.clone()),
            WantedKey::Consumer(key) => AssetKey::Consumer(key.clone()),
        };
        AssetRecord { key, created_ms: self.created_ms }
    }
}

/// Bring the files in line with `wanted` (from [`wanted`]), given what `written` says is on
/// disk; `written` becomes what is wanted. The files no asset wants go first, then the
/// records that changed are written, each in name order; only those are copied into
/// `written`. Returns false when the disk lied about an fsync.
pub fn sync(disk: &mut NodeDisk, written: &mut BTreeMap<String, AssetRecord>, wanted: Vec<Wanted<'_>>) -> bool {
    assert!(wanted.windows(2).all(|w| w[0].group < w[1].group), "wanted in name order, each name once");
    let mut synced = true;
    let mut ahead = wanted.iter().peekable();
    let gone: Vec<String> = written
        .keys()
        .filter(|group| {
            while ahead.next_if(|w| w.group < group.as_str()).is_some() {}
            ahead.peek().is_none_or(|w| w.group != group.as_str())
        })
        .cloned()
        .collect();
    for group in gone {
        disk.remove(&path(&group));
        written.remove(&group);
    }
    // What is written is now a part of what is wanted, both in name order: walked side by
    // side, the records that changed are found with no lookup by name (a reconcile of a
    // create burst looked up thousands).
    let mut on_record = written.iter().peekable();
    let changed: Vec<&Wanted<'_>> = wanted
        .iter()
        .filter(|asset| {
            let record = on_record.next_if(|(group, _)| group.as_str() == asset.group).map(|(_, record)| record);
            debug_assert!(
                on_record.peek().is_none_or(|(group, _)| group.as_str() > asset.group),
                "every record is a wanted asset's"
            );
            !record.is_some_and(|record| asset.is_in(record))
        })
        .collect();
    for asset in changed {
        let record = asset.record();
        let bytes = encode_framed(&record);
        // A full disk leaves the asset without a file: after a restart it is not restored,
        // and the meta layer creates it again if it is still assigned here.
        if disk.replace(&path(asset.group), &bytes).is_ok() {
            synced &= disk.fsync(&path(asset.group));
        }
        written.insert(asset.group.to_string(), record);
    }
    debug_assert_eq!(written.len(), wanted.len(), "written holds what is wanted");
    synced
}

/// The assets found on disk, and the files that could not be read (kept, never deleted, so
/// no data is lost: the error names the file).
pub fn restore(disk: &NodeDisk) -> (Vec<(String, AssetRecord)>, Vec<StorageError>) {
    let mut found = Vec::new();
    let mut refused = Vec::new();
    for file in disk.list(PREFIX) {
        let group = file[PREFIX.len()..].to_string();
        let bytes = disk.read(&file).unwrap_or_default();
        let record = read_frames(&file, bytes).and_then(|(frames, torn)| match frames.as_slice() {
            [one] if torn == 0 => bincode::deserialize::<AssetRecord>(one).map_err(|e| StorageError::Corrupt {
                path: file.clone(),
                offset: 0,
                reason: format!("checksum holds but the record does not decode: {e}"),
            }),
            _ => Err(StorageError::Corrupt {
                path: file.clone(),
                offset: 0,
                reason: format!("{} whole frames and {torn} torn bytes, expected one frame", frames.len()),
            }),
        });
        match record {
            Ok(record) => found.push((group, record)),
            Err(e) => refused.push(e),
        }
    }
    (found, refused)
}

/// Local assets from restored records: streams first, then consumers of restored streams
/// (a consumer without its stream cannot run and is reported back).
pub fn rebuild(records: &[(String, AssetRecord)]) -> (LocalAssets, Vec<ConsumerKey>) {
    let mut local = LocalAssets::default();
    let mut homeless = Vec::new();
    let asset = |group: &str, created_ms| LocalAsset {
        created_ms,
        group_name: group.to_string(),
        messages: 0,
        running: true,
        direct: false,
    };
    for (group, record) in records {
        if let AssetKey::Stream(key) = &record.key {
            local.restore_stream(key.clone(), asset(group, record.created_ms));
        }
    }
    for (group, record) in records {
        if let AssetKey::Consumer(key) = &record.key {
            if !local.restore_consumer(key.clone(), asset(group, record.created_ms)) {
                homeless.push(key.clone());
            }
        }
    }
    (local, homeless)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_survive_a_restart_and_a_corrupt_file_is_named_and_kept() {
        let mut disk = NodeDisk::default();
        let mut local = LocalAssets::default();
        let key = StreamKey::new("A", "S");
        local.restore_stream(
            key.clone(),
            LocalAsset { created_ms: 7, group_name: "g1".into(), messages: 0, running: true, direct: false },
        );
        let ckey = ConsumerKey::new("A", "S", "C");
        local.restore_consumer(
            ckey.clone(),
            LocalAsset { created_ms: 8, group_name: "g2".into(), messages: 0, running: true, direct: false },
        );
        // A mirror's direct consumer lives in memory only: no file, gone after a restart.
        let direct = ConsumerKey::new("A", "S", crate::meta::direct_consumer_name("M"));
        local.sync_direct_consumers(&BTreeMap::from([(direct.clone(), 9)]), |_| true);
        assert!(local.consumer(&direct).is_some());
        let mut written = BTreeMap::new();
        assert!(sync(&mut disk, &mut written, wanted(&local, &BTreeMap::new())));
        assert_eq!(written.len(), 2, "{written:?}");
        let (records, refused) = restore(&disk);
        assert!(refused.is_empty());
        let (back, homeless) = rebuild(&records);
        assert!(homeless.is_empty());
        assert_eq!(back.stream(&key).map(|a| (a.created_ms, a.group_name.as_str())), Some((7, "g1")));
        assert_eq!(back.consumer(&ckey).map(|a| a.created_ms), Some(8));
        assert!(back.consumer(&direct).is_none(), "a direct consumer is not restored");

        let mut bytes = disk.read("assets/g1").unwrap().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        disk.replace("assets/g1", &bytes).unwrap();
        let (records, refused) = restore(&disk);
        assert_eq!(records.len(), 1);
        assert!(refused[0].to_string().contains("assets/g1"), "{}", refused[0]);
        assert!(disk.exists("assets/g1"), "a file that cannot be read is kept");
        let (back, homeless) = rebuild(&records);
        assert_eq!(homeless, vec![ckey], "a consumer without its stream is reported");
        assert!(back.stream(&key).is_none());

        // Removing the stream removes its file; the consumer's goes with it.
        let mut written = BTreeMap::new();
        written.insert("g1".to_string(), AssetRecord { key: AssetKey::Stream(key), created_ms: 7 });
        assert!(sync(&mut disk, &mut written, Vec::new()));
        assert!(!disk.exists("assets/g1"));
    }

    /// Only what changed is written again; of two assets naming one group, the last (the
    /// consumer, as consumers follow streams) holds the file, as a map by name kept it.
    #[test]
    fn a_sync_writes_what_changed_and_the_last_asset_of_a_name() {
        let asset = |created_ms, group: &str| LocalAsset {
            created_ms,
            group_name: group.into(),
            messages: 0,
            running: true,
            direct: false,
        };
        let mut local = LocalAssets::default();
        local.restore_stream(StreamKey::new("A", "S"), asset(1, "g"));
        local.restore_stream(StreamKey::new("A", "T"), asset(2, "h"));
        local.restore_consumer(ConsumerKey::new("A", "S", "C"), asset(3, "g"));
        let (mut disk, mut written) = (NodeDisk::default(), BTreeMap::new());
        assert!(sync(&mut disk, &mut written, wanted(&local, &BTreeMap::new())));
        let consumer = AssetRecord { key: AssetKey::Consumer(ConsumerKey::new("A", "S", "C")), created_ms: 3 };
        assert_eq!(written.get("g"), Some(&consumer));
        assert_eq!((written.len(), disk.fsyncs), (2, 2));
        assert!(sync(&mut disk, &mut written, wanted(&local, &BTreeMap::new())));
        assert_eq!(disk.fsyncs, 2, "nothing changed, nothing written");
        local.restore_stream(StreamKey::new("A", "T"), asset(4, "h"));
        assert!(sync(&mut disk, &mut written, wanted(&local, &BTreeMap::new())));
        assert_eq!((written["h"].created_ms, disk.fsyncs), (4, 3), "one record changed");
        let (records, refused) = restore(&disk);
        assert!(refused.is_empty());
        assert_eq!(records, written.into_iter().collect::<Vec<_>>(), "the disk holds what written says");
    }

    #[test]
    fn a_stream_whose_carry_waits_stays_on_disk_under_its_store_until_the_carry_is_written() {
        let mut disk = NodeDisk::default();
        let mut local = LocalAssets::default();
        let key = StreamKey::new("A", "S");
        let other = StreamKey::new("A", "T");
        let asset = |group: &str| LocalAsset {
            created_ms: 7,
            group_name: group.into(),
            messages: 0,
            running: true,
            direct: false,
        };
        local.restore_stream(key.clone(), asset("S-R3-new"));
        local.restore_stream(other.clone(), asset("T-R3-new"));
        // Only the stream whose carry waits is held back.
        let pending = BTreeMap::from([("S-R3-new".to_string(), (key.clone(), "S-R1-old".to_string()))]);
        let mut written = BTreeMap::new();
        assert!(sync(&mut disk, &mut written, wanted(&local, &pending)));
        assert!(disk.exists("assets/S-R1-old") && !disk.exists("assets/S-R3-new"));
        assert!(disk.exists("assets/T-R3-new"));
        let (records, _) = restore(&disk);
        let (back, _) = rebuild(&records);
        assert_eq!(
            back.stream(&key).map(|a| a.group_name.as_str()),
            Some("S-R1-old"),
            "restored where its messages are"
        );

        // Once the carry is written, the record moves to the new group.
        assert!(sync(&mut disk, &mut written, wanted(&local, &BTreeMap::new())));
        assert!(disk.exists("assets/S-R3-new") && !disk.exists("assets/S-R1-old"));
    }
}
