//! The streams and consumers this server runs locally, as the driver keeps them: what the
//! [`Effect`]s of `apply` act on, and what orphan detection (§4) compares with the applied
//! state.

use std::collections::BTreeMap;

use super::model::{ConsumerKey, StreamAssignment, StreamKey};
use super::recovery::recreated;
use super::revision::Revision;
use super::state::{Effect, MetaState};

/// One local stream or consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAsset {
    /// Created time of the incarnation it belongs to.
    pub created_ms: u64,
    /// The raft group it runs in.
    pub group_name: String,
    /// Data held (stream messages; consumer deliveries); survives stop and regroup.
    pub messages: u64,
    /// Stopped assets (unsupported) keep their data but do not run.
    pub running: bool,
    /// A direct consumer (consumers only): created on this server for a mirror that reads
    /// the stream, never assigned by the meta layer, held in memory only (no file, no raft
    /// group). Not public: orphan detection never judges it (§4, §11 #26).
    pub direct: bool,
}

/// The name of the direct consumer a mirror reads its origin through. It holds a dot, which
/// no client-chosen name may (`valid_name`), so it never meets an assigned consumer.
pub fn direct_consumer_name(mirror: &str) -> String {
    format!("JS_MIRROR.{mirror}")
}

/// The direct consumers this server should run, by key, with the created time of the mirror
/// each serves: one per applied mirror whose origin (same account) is assigned and runs here
/// in the group its assignment names, where `leads` says this server leads the origin (an R1
/// stream's only member always does). A mirror's stream leader creates it with a request to
/// the origin's leader, outside the meta layer; here the origin's server derives it from the
/// applied mirrors, which every server holds.
pub fn wanted_direct_consumers(
    state: &MetaState,
    local: &LocalAssets,
    leads: impl Fn(&StreamAssignment) -> bool,
) -> BTreeMap<ConsumerKey, u64> {
    let mut wanted = BTreeMap::new();
    for mirror in state.mirrors().iter() {
        let origin_key = StreamKey::new(mirror.key.account.clone(), mirror.source.clone());
        let Some(origin) = state.stream(&origin_key) else { continue };
        let runs = local.stream(&origin_key).is_some_and(|a| a.running && a.group_name == origin.group.name);
        if runs && leads(origin) {
            let name = direct_consumer_name(&mirror.key.name);
            wanted.insert(ConsumerKey::new(mirror.key.account.clone(), origin.name.clone(), name), mirror.created_ms);
        }
    }
    wanted
}

/// What an effect did locally; for traces and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalChange {
    /// The effect changed nothing (absent asset, or already in that state).
    Nothing,
    /// A new local asset was created.
    Created,
    /// An existing local asset was (re)started or updated; `regrouped` when its group name
    /// changed (the old group's node must go).
    Updated {
        regrouped: Option<String>,
    },
    /// An existing local stream became a new incarnation of its name (another created time
    /// and another group: S13's recreate rule), as when this server missed a delete and a
    /// re-create and a snapshot or recovery brought the new one. What the old one held stays
    /// in `old_group`, which must go; the old incarnation's consumers are not the new one's.
    Reincarnated {
        old_group: String,
    },
    Stopped,
    Removed,
    /// A bounded delete found a newer local incarnation and kept it (§2.3 incarnation safety).
    KeptNewer {
        local_created_ms: u64,
    },
    /// A consumer was to run but its stream does not exist locally.
    MissingStream,
    /// The effect is an API answer; not about local assets.
    NotLocal,
}

/// What it did, in words: `created`, `a new incarnation, regrouped from S-R3-ab`.
impl std::fmt::Display for LocalChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalChange::Nothing => write!(f, "nothing"),
            LocalChange::Created => write!(f, "created"),
            LocalChange::Updated { regrouped: Some(old) } => write!(f, "updated, regrouped from {old}"),
            LocalChange::Reincarnated { old_group } => write!(f, "a new incarnation, regrouped from {old_group}"),
            LocalChange::Updated { regrouped: None } => write!(f, "updated"),
            LocalChange::Stopped => write!(f, "stopped"),
            LocalChange::Removed => write!(f, "removed"),
            LocalChange::KeptNewer { local_created_ms } => write!(f, "kept the newer copy created {local_created_ms}"),
            LocalChange::MissingStream => write!(f, "no local stream"),
            LocalChange::NotLocal => write!(f, "not local"),
        }
    }
}

/// Local orphans: assets absent from the applied state (§4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Orphans {
    pub streams: Vec<StreamKey>,
    /// Consumers absent from a stream that is itself assigned.
    pub consumers: Vec<ConsumerKey>,
}

/// This server's local streams and consumers, plus the local errors of assignments (the
/// assignment `err` of NATS, which healthz reports).
#[derive(Clone, Debug, Default)]
pub struct LocalAssets {
    streams: BTreeMap<StreamKey, LocalAsset>,
    consumers: BTreeMap<ConsumerKey, LocalAsset>,
    stream_errors: BTreeMap<StreamKey, String>,
    consumer_errors: BTreeMap<ConsumerKey, String>,
    /// Stamped anew by every method that may change the above.
    revision: Revision,
}

fn run<K: Ord + Clone>(map: &mut BTreeMap<K, LocalAsset>, key: &K, created_ms: u64, group: &str) -> LocalChange {
    match map.get_mut(key) {
        Some(asset) => {
            let regrouped = (asset.group_name != group).then(|| std::mem::replace(&mut asset.group_name, group.into()));
            let changed = regrouped.is_some() || !asset.running || asset.created_ms != created_ms;
            asset.running = true;
            asset.created_ms = created_ms;
            if changed {
                LocalChange::Updated { regrouped }
            } else {
                LocalChange::Nothing
            }
        }
        None => {
            let asset = LocalAsset { created_ms, group_name: group.into(), messages: 0, running: true, direct: false };
            map.insert(key.clone(), asset);
            LocalChange::Created
        }
    }
}

fn stop<K: Ord>(map: &mut BTreeMap<K, LocalAsset>, key: &K) -> LocalChange {
    match map.get_mut(key) {
        Some(asset) if asset.running => {
            asset.running = false;
            LocalChange::Stopped
        }
        _ => LocalChange::Nothing,
    }
}

/// Whether a bounded delete may remove `asset`.
fn removable(asset: &LocalAsset, created_ms_max: Option<u64>) -> Result<(), LocalChange> {
    match created_ms_max {
        Some(max) if asset.created_ms > max => Err(LocalChange::KeptNewer { local_created_ms: asset.created_ms }),
        _ => Ok(()),
    }
}

impl LocalAssets {
    /// Carry out one effect of `MetaState::apply` on the local assets.
    pub fn apply_effect(&mut self, effect: &Effect) -> LocalChange {
        self.revision = Revision::fresh();
        match effect {
            Effect::RunStream { key, created_ms, group } => {
                let new_incarnation = self
                    .streams
                    .get(key)
                    .is_some_and(|a| recreated(a.created_ms, &a.group_name, *created_ms, &group.name));
                match run(&mut self.streams, key, *created_ms, &group.name) {
                    LocalChange::Updated { regrouped: Some(old_group) } if new_incarnation => {
                        LocalChange::Reincarnated { old_group }
                    }
                    change => change,
                }
            }
            Effect::StopStream { key } => {
                let change = stop(&mut self.streams, key);
                // A stopped stream cannot serve its consumers.
                let (from, account, name) =
                    (ConsumerKey::new(key.account.clone(), key.name.clone(), ""), &key.account, &key.name);
                for (_, c) in
                    self.consumers.range_mut(from..).take_while(|(k, _)| k.account == *account && k.stream == *name)
                {
                    c.running = false;
                }
                change
            }
            Effect::RemoveLocalStream { key, created_ms_max } => {
                let Some(asset) = self.streams.get(key) else {
                    // A copy refused for lack of room leaves only its error behind.
                    self.stream_errors.remove(key);
                    return LocalChange::Nothing;
                };
                if let Err(kept) = removable(asset, *created_ms_max) {
                    return kept;
                }
                self.streams.remove(key);
                self.stream_errors.remove(key);
                self.consumers.retain(|k, _| k.account != key.account || k.stream != key.name);
                self.consumer_errors.retain(|k, _| k.account != key.account || k.stream != key.name);
                LocalChange::Removed
            }
            Effect::RunConsumer { key, created_ms, group } => {
                if !self.streams.contains_key(&key.stream_key()) {
                    return LocalChange::MissingStream;
                }
                run(&mut self.consumers, key, *created_ms, &group.name)
            }
            Effect::StopConsumer { key } => stop(&mut self.consumers, key),
            Effect::RemoveLocalConsumer { key, created_ms_max } => {
                // Assignments never name a direct consumer: it is not theirs to remove.
                let Some(asset) = self.consumers.get(key).filter(|a| !a.direct) else {
                    return LocalChange::Nothing;
                };
                if let Err(kept) = removable(asset, *created_ms_max) {
                    return kept;
                }
                self.consumers.remove(key);
                self.consumer_errors.remove(key);
                LocalChange::Removed
            }
            Effect::Respond { .. } => LocalChange::NotLocal,
        }
    }

    /// The public consumers of local stream `key`: after a [`LocalChange::Reincarnated`], those
    /// of the older incarnation, which the caller removes.
    pub fn public_consumers_of(&self, key: &StreamKey) -> Vec<ConsumerKey> {
        let from = ConsumerKey::new(key.account.clone(), key.name.clone(), "");
        self.consumers
            .range(from..)
            .take_while(|(k, _)| k.account == key.account && k.stream == key.name)
            .filter(|(_, a)| !a.direct)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Restore a stream found on this server's disk at start-up. Of two files for one key the
    /// newer incarnation wins.
    pub fn restore_stream(&mut self, key: StreamKey, asset: LocalAsset) {
        self.revision = Revision::fresh();
        if self.streams.get(&key).is_none_or(|old| old.created_ms < asset.created_ms) {
            self.streams.insert(key, asset);
        }
    }

    /// Restore a consumer found on disk; false (and nothing restored) when its stream is not.
    pub fn restore_consumer(&mut self, key: ConsumerKey, asset: LocalAsset) -> bool {
        self.revision = Revision::fresh();
        if !self.streams.contains_key(&key.stream_key()) {
            return false;
        }
        if self.consumers.get(&key).is_none_or(|old| old.created_ms < asset.created_ms) {
            self.consumers.insert(key, asset);
        }
        true
    }

    /// Carry out effects in order.
    pub fn apply_effects(&mut self, effects: &[Effect]) -> Vec<LocalChange> {
        self.revision = Revision::fresh();
        effects.iter().map(|e| self.apply_effect(e)).collect()
    }

    /// The local stream, if this server has one.
    /// Changes whenever the assets or errors may have (see [`Revision`]).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn stream(&self, key: &StreamKey) -> Option<&LocalAsset> {
        self.streams.get(key)
    }

    /// The local consumer, if this server has one.
    pub fn consumer(&self, key: &ConsumerKey) -> Option<&LocalAsset> {
        self.consumers.get(key)
    }

    /// All local streams, by key.
    pub fn streams(&self) -> impl Iterator<Item = (&StreamKey, &LocalAsset)> {
        self.streams.iter()
    }

    /// All local consumers, by key, direct ones included (NATS's consumer list of a stream).
    pub fn consumers(&self) -> impl Iterator<Item = (&ConsumerKey, &LocalAsset)> {
        self.consumers.iter()
    }

    /// The public local consumers: those an assignment creates (NATS `getPublicConsumers`).
    pub fn public_consumers(&self) -> impl Iterator<Item = (&ConsumerKey, &LocalAsset)> {
        self.consumers.iter().filter(|(_, a)| !a.direct)
    }

    /// The local direct consumers (NATS `getDirectConsumers`).
    pub fn direct_consumers(&self) -> impl Iterator<Item = (&ConsumerKey, &LocalAsset)> {
        self.consumers.iter().filter(|(_, a)| a.direct)
    }

    /// Bring the direct consumers in line with `wanted` (key → the created time of the mirror
    /// it serves): remove those not wanted (or for an older incarnation of the mirror), then
    /// create the wanted ones `create` admits, on a local stream that runs. A key taken by a
    /// public consumer is left alone. Returns what changed, in key order.
    pub fn sync_direct_consumers(
        &mut self,
        wanted: &BTreeMap<ConsumerKey, u64>,
        create: impl Fn(&ConsumerKey) -> bool,
    ) -> Vec<(ConsumerKey, LocalChange)> {
        self.revision = Revision::fresh();
        let mut changes = Vec::new();
        let stale: Vec<ConsumerKey> = self
            .direct_consumers()
            .filter(|(k, a)| wanted.get(*k) != Some(&a.created_ms) || !a.running || !self.stream_runs(&k.stream_key()))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.consumers.remove(&key);
            changes.push((key, LocalChange::Removed));
        }
        for (key, &created_ms) in wanted {
            if self.consumers.contains_key(key) || !self.stream_runs(&key.stream_key()) || !create(key) {
                continue;
            }
            let asset = LocalAsset { created_ms, group_name: String::new(), messages: 0, running: true, direct: true };
            self.consumers.insert(key.clone(), asset);
            changes.push((key.clone(), LocalChange::Created));
        }
        changes
    }

    /// Remove a direct consumer (what only the bug switch `orphan-check-deletes-direct-consumers`
    /// does outside [`Self::sync_direct_consumers`]).
    pub fn remove_direct_consumer(&mut self, key: &ConsumerKey) -> LocalChange {
        self.revision = Revision::fresh();
        if self.consumers.get(key).is_some_and(|a| a.direct) {
            self.consumers.remove(key);
            LocalChange::Removed
        } else {
            LocalChange::Nothing
        }
    }

    fn stream_runs(&self, key: &StreamKey) -> bool {
        self.streams.get(key).is_some_and(|a| a.running)
    }

    /// Add data to a local stream or consumer; false when absent.
    pub fn add_stream_messages(&mut self, key: &StreamKey, n: u64) -> bool {
        self.revision = Revision::fresh();
        self.streams.get_mut(key).map(|a| a.messages = a.messages.saturating_add(n)).is_some()
    }

    /// Record (Some) or clear (None) the local error of a stream assignment.
    pub fn set_stream_error(&mut self, key: &StreamKey, error: Option<String>) {
        self.revision = Revision::fresh();
        match error {
            Some(e) => self.stream_errors.insert(key.clone(), e),
            None => self.stream_errors.remove(key),
        };
    }

    /// Record (Some) or clear (None) the local error of a consumer assignment.
    pub fn set_consumer_error(&mut self, key: &ConsumerKey, error: Option<String>) {
        self.revision = Revision::fresh();
        match error {
            Some(e) => self.consumer_errors.insert(key.clone(), e),
            None => self.consumer_errors.remove(key),
        };
    }

    /// The local error recorded for a stream assignment.
    pub fn stream_error(&self, key: &StreamKey) -> Option<&str> {
        self.stream_errors.get(key).map(String::as_str)
    }

    /// The local error recorded for a consumer assignment.
    pub fn consumer_error(&self, key: &ConsumerKey) -> Option<&str> {
        self.consumer_errors.get(key).map(String::as_str)
    }

    /// Local streams with no applied assignment, and local public consumers absent from their
    /// assigned stream (§4, NATS `getOrphans`). Membership is not checked, as in NATS. Direct
    /// consumers are never judged; `with_direct` (a bug switch) judges them too.
    pub fn orphans(&self, state: &MetaState, with_direct: bool) -> Orphans {
        let mut out = Orphans::default();
        for key in self.streams.keys() {
            if state.stream(key).is_none() {
                out.streams.push(key.clone());
            }
        }
        for (key, _) in self.consumers.iter().filter(|(_, a)| with_direct || !a.direct) {
            if let Some(sa) = state.stream(&key.stream_key()) {
                if !sa.consumers.contains_key(&key.name) {
                    out.consumers.push(key.clone());
                }
            }
        }
        out
    }
}
