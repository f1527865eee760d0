//! Recovery (spec §3): while a server replays its log at start-up, or catches up from a leader's
//! snapshot, meta operations are staged in [`RecoveryUpdates`] instead of applied, and flushed
//! in a fixed class order when replay ends. Snapshots are applied as a diff against the current
//! assignments (§3.3), staged or not. The result must equal applying the same entries one by
//! one (S6); the checks hold this module to that.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::RngCore;

use super::bugs::MetaBugs;
use super::config_memo::ConsumerConfigs;
use super::entry::MetaEntry;
use super::error::ApplyError;
use super::model::{ConsumerAssignment, ConsumerKey, PeerId, StreamAssignment, StreamKey};
use super::projection::stream_with_consumers_term;
use super::state::{
    consumer_config_refused, run_or_remove_consumer, run_or_remove_stream, validate_consumer_durable,
    validate_consumer_fields, validate_stream_fields, Effect, MetaState,
};

/// Staged operations, at most this many keys in all: a log holds far fewer distinct assets.
pub const STAGED_KEYS_MAX: usize = 1_000_000;

type StagedConsumers = BTreeMap<StreamKey, BTreeMap<String, ConsumerAssignment>>;

/// NATS `recoveryUpdates`: the work a recovery will do once replay ends, by stream key. The
/// staging rules of §3.2 decide what supersedes what; consumer ops are grouped by their stream
/// so a stream removal can drop them (PR #6066).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryUpdates {
    pub remove_streams: BTreeMap<StreamKey, StreamAssignment>,
    pub add_streams: BTreeMap<StreamKey, StreamAssignment>,
    pub update_streams: BTreeMap<StreamKey, StreamAssignment>,
    pub remove_consumers: StagedConsumers,
    pub update_consumers: StagedConsumers,
    bugs: MetaBugs,
}

impl RecoveryUpdates {
    pub fn new(bugs: MetaBugs) -> Self {
        RecoveryUpdates { bugs, ..RecoveryUpdates::default() }
    }

    /// Staged keys in all (streams and consumers).
    pub fn len(&self) -> usize {
        let consumers = |m: &StagedConsumers| m.values().map(BTreeMap::len).sum::<usize>();
        self.remove_streams.len()
            + self.add_streams.len()
            + self.update_streams.len()
            + consumers(&self.remove_consumers)
            + consumers(&self.update_consumers)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bounded(&self) {
        assert!(self.len() <= STAGED_KEYS_MAX, "recovery stages more than {STAGED_KEYS_MAX} keys");
    }

    /// A stream removal subsumes everything staged for the stream and its consumers; the
    /// removal itself stays, so a later add makes a recreate (remove + add).
    pub fn remove_stream(&mut self, sa: StreamAssignment) {
        let key = sa.key();
        self.add_streams.remove(&key);
        self.update_streams.remove(&key);
        if !self.bugs.recovery_keep_consumer_on_stream_remove {
            self.update_consumers.remove(&key);
            self.remove_consumers.remove(&key);
        }
        self.remove_streams.insert(key, sa);
        self.bounded();
    }

    /// A fresh add supersedes staged updates; a staged removal stays (recreate).
    pub fn add_stream(&mut self, sa: StreamAssignment) {
        let key = sa.key();
        self.update_streams.remove(&key);
        self.add_streams.insert(key, sa);
        self.bounded();
    }

    /// An update is staged beside any staged add (flushed after it).
    pub fn update_stream(&mut self, sa: StreamAssignment) {
        self.update_streams.insert(sa.key(), sa);
        self.bounded();
    }

    /// A consumer removal overwrites an earlier staged removal and drops a staged add of the
    /// same incarnation. A removal for another group leaves the staged add alone: applied one
    /// by one it would leave the newer consumer in place (§2.5), and the flush runs removals
    /// before adds, so the staged removal still meets only what came before the recovery.
    pub fn remove_consumer(&mut self, ca: ConsumerAssignment) {
        let skey = ca.stream_key();
        if let Some(staged) = self.update_consumers.get_mut(&skey) {
            let same_incarnation = staged.get(&ca.name).is_some_and(|s| s.group.name == ca.group.name);
            if same_incarnation || self.bugs.recovery_stale_remove_drops_consumer {
                staged.remove(&ca.name);
            }
            if staged.is_empty() {
                self.update_consumers.remove(&skey);
            }
        }
        self.remove_consumers.entry(skey).or_default().insert(ca.name.clone(), ca);
        self.bounded();
    }

    /// A consumer add or update; a staged removal stays (recreate).
    pub fn add_or_update_consumer(&mut self, ca: ConsumerAssignment) {
        self.update_consumers.entry(ca.stream_key()).or_default().insert(ca.name.clone(), ca);
        self.bounded();
    }

    /// §3.3 step 3: a snapshot is newer than everything staged before it, so staged work on
    /// streams and consumers the snapshot lacks would revive deleted assets. Staged removals
    /// are kept.
    pub fn reconcile(&mut self, snapshot: &BTreeMap<StreamKey, StreamAssignment>) {
        let gone: Vec<StreamKey> = self.add_streams.keys().filter(|k| !snapshot.contains_key(k)).cloned().collect();
        for key in gone {
            self.add_streams.remove(&key);
            self.update_streams.remove(&key);
            self.update_consumers.remove(&key);
            self.remove_consumers.remove(&key);
        }
        let gone: Vec<StreamKey> = self.update_streams.keys().filter(|k| !snapshot.contains_key(k)).cloned().collect();
        for key in gone {
            self.update_streams.remove(&key);
            self.update_consumers.remove(&key);
            self.remove_consumers.remove(&key);
        }
        self.update_consumers.retain(|skey, consumers| {
            let present = snapshot.get(skey).map(|sa| &sa.consumers);
            consumers.retain(|name, _| present.is_some_and(|c| c.contains_key(name)));
            !consumers.is_empty()
        });
    }
}

/// How a snapshot's assignments differ from the current ones (§3.3 step 2), in apply order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotDiff {
    /// Streams to remove: gone from the snapshot, or recreated (the old incarnation).
    pub stream_deletes: Vec<StreamAssignment>,
    /// Streams to add with all their consumers: new, or recreated (the new incarnation).
    pub stream_adds: Vec<StreamAssignment>,
    /// Streams in both, updated in place; without their consumers, which are applied
    /// separately below.
    pub stream_checks: Vec<StreamAssignment>,
    /// Consumers of checked streams that are gone or recreated.
    pub consumer_deletes: Vec<ConsumerAssignment>,
    /// Every consumer of every checked stream.
    pub consumer_adds: Vec<ConsumerAssignment>,
}

/// The recreate rule (S13): same-name assets are different incarnations only when the created
/// time differs AND the group differs. Otherwise the local data is kept (an idempotent create
/// keeps its group; a scale or rename keeps its created time).
pub fn recreated(created_old: u64, group_old: &str, created_new: u64, group_new: &str) -> bool {
    created_old != created_new && group_old != group_new
}

impl SnapshotDiff {
    /// The diff from `old` to `new`. Takes `new` by value: its assignments move into the diff
    /// rather than being copied, which is most of the cost of a large snapshot.
    pub fn new(old: &BTreeMap<StreamKey, StreamAssignment>, mut new: BTreeMap<StreamKey, StreamAssignment>) -> Self {
        let mut diff = SnapshotDiff::default();
        for (key, osa) in old {
            match new.remove(key) {
                None => diff.stream_deletes.push(osa.clone()),
                Some(nsa) if recreated(osa.created_ms, &osa.group.name, nsa.created_ms, &nsa.group.name) => {
                    diff.stream_deletes.push(osa.clone());
                    diff.stream_adds.push(nsa);
                }
                Some(mut nsa) => {
                    for oca in osa.consumers.values() {
                        let gone = match nsa.consumers.get(&oca.name) {
                            None => true,
                            Some(nca) => recreated(oca.created_ms, &oca.group.name, nca.created_ms, &nca.group.name),
                        };
                        if gone {
                            diff.consumer_deletes.push(oca.as_ref().clone());
                        }
                    }
                    diff.consumer_adds.extend(std::mem::take(&mut nsa.consumers).into_values().map(|ca| *ca));
                    diff.stream_checks.push(nsa);
                }
            }
        }
        // What is left of `new` is in it only, still in key order.
        diff.stream_adds.extend(new.into_values());
        diff
    }

    /// About one effect per asset the diff touches: room for them at once, rather than a
    /// large list copied each time it grows.
    fn effects_hint(&self) -> usize {
        let added: usize = self.stream_adds.iter().map(|sa| 1 + sa.consumers.len()).sum();
        added
            + self.stream_deletes.len()
            + self.stream_checks.len()
            + self.consumer_deletes.len()
            + self.consumer_adds.len()
    }
}

/// What validating a snapshot learned that applying it needs: the assets this server cannot
/// run, with the reason. Usually empty, so asking costs nothing, and no config is parsed twice.
#[derive(Debug, Default)]
struct SnapshotVerdicts {
    streams: BTreeMap<StreamKey, String>,
    consumers: BTreeMap<ConsumerKey, String>,
    /// Some consumer sits in its stream's map under a name other than its own. Applying one
    /// by one files it under its own name; the snapshot's maps cannot be taken as they are.
    misfiled_consumers: bool,
    /// The snapshot's projection digest, when asked for: summed stream by stream as the
    /// validation passes, while each one's fields are still in cache, so that adopting the
    /// snapshot takes no walk of its own over every assignment for it.
    projection_sum: Option<u64>,
}

impl SnapshotVerdicts {
    /// The snapshot's projection digest, when its maps can become a blank state's as they
    /// are: the digest was asked for, every asset runs here (no marker to set, no parent to
    /// stop) and every consumer is filed under its own name.
    fn adoption(&self) -> Option<u64> {
        let adoptable = self.streams.is_empty() && self.consumers.is_empty() && !self.misfiled_consumers;
        self.projection_sum.filter(|_| adoptable)
    }

    fn stream(&self, sa: &StreamAssignment) -> Option<&str> {
        if self.streams.is_empty() {
            return None;
        }
        self.streams.get(&sa.key()).map(String::as_str)
    }

    fn consumer(&self, ca: &ConsumerAssignment) -> Option<&str> {
        if self.consumers.is_empty() {
            return None;
        }
        self.consumers.get(&ca.key()).map(String::as_str)
    }
}

/// Validate one snapshot stream and its consumers, noting in `verdicts` what is unsupported.
/// Each consumer is checked as [`validate_consumer`](super::state::validate_consumer) checks
/// it, its config parsed through `configs` (once for all consumers with the same bytes).
fn validate_snapshot_stream<'a>(
    key: &StreamKey,
    sa: &'a StreamAssignment,
    configs: &mut ConsumerConfigs<'a>,
    verdicts: &mut SnapshotVerdicts,
) -> Result<(), String> {
    let decoded = validate_stream_fields(sa, configs.api_level())?;
    if sa.account != key.account || sa.name != key.name {
        return Err(format!("snapshot holds stream {} under {key}", sa.key()));
    }
    if let Some(reason) = decoded.unsupported_reason() {
        verdicts.streams.insert(key.clone(), reason.to_string());
    }
    for (name, ca) in &sa.consumers {
        validate_consumer_fields(ca)?;
        let decoded = configs.decode(&ca.config_json).map_err(|e| consumer_config_refused(ca, e))?;
        validate_consumer_durable(ca, decoded.config())?;
        if ca.account != key.account || ca.stream != key.name {
            return Err(format!("snapshot holds consumer {} under stream {key}", ca.key()));
        }
        if let Some(reason) = decoded.unsupported_reason() {
            verdicts.consumers.insert(ca.key(), reason.to_string());
        }
        verdicts.misfiled_consumers |= *name != ca.name;
    }
    Ok(())
}

impl MetaState {
    /// Recovery mode: validate the entry at `index` and stage it (§3.2) instead of applying
    /// it. The applied index moves; the assignments change only at [`MetaState::flush`].
    pub fn stage(&mut self, index: u64, data: &[u8], ru: &mut RecoveryUpdates) -> Result<(), ApplyError> {
        let entry = self.decode_entry(index, data)?;
        match entry {
            MetaEntry::AssignStream { sa, .. } => ru.add_stream(sa),
            MetaEntry::UpdateStream { sa, .. } => ru.update_stream(sa),
            MetaEntry::RemoveStream { sa, .. } => ru.remove_stream(sa),
            MetaEntry::AssignConsumer { ca, .. } => ru.add_or_update_consumer(ca),
            MetaEntry::RemoveConsumer { ca, .. } => ru.remove_consumer(ca),
        }
        self.applied_index = index;
        Ok(())
    }

    /// Validate every assignment of a snapshot before anything changes (no partial apply); a
    /// failure becomes the sticky write error. Every config is parsed here once; what applying
    /// needs from the parse comes back as verdicts, with the projection digest when
    /// `with_digest`.
    fn validate_snapshot(
        &mut self,
        index: u64,
        streams: &BTreeMap<StreamKey, StreamAssignment>,
        with_digest: bool,
    ) -> Result<SnapshotVerdicts, ApplyError> {
        if let Some(e) = &self.write_error {
            return Err(ApplyError::Stopped(e.clone()));
        }
        let mut verdicts = SnapshotVerdicts { projection_sum: with_digest.then_some(0), ..Default::default() };
        let mut configs = ConsumerConfigs::new(self.api_level());
        for (key, sa) in streams {
            if let Err(reason) = validate_snapshot_stream(key, sa, &mut configs, &mut verdicts) {
                return Err(self.fail(index, reason));
            }
            if let Some(sum) = &mut verdicts.projection_sum {
                *sum = sum.wrapping_add(stream_with_consumers_term(key, sa));
            }
        }
        Ok(verdicts)
    }

    /// Apply a meta snapshot at `index` in normal mode (§3.3): deletes, adds with their
    /// consumers, updates in place, then consumer deletes and adds, through the same process
    /// functions as entries. The caller removes local orphans afterwards (step 5).
    pub fn apply_snapshot(
        &mut self,
        index: u64,
        streams: BTreeMap<StreamKey, StreamAssignment>,
        me: PeerId,
    ) -> Result<Vec<Effect>, ApplyError> {
        self.apply_snapshot_adopting(index, streams, None, me, true)
    }

    /// [`Self::apply_snapshot`] of a snapshot whose projection digest the caller has
    /// already computed: `digest` is `projection_digest_of(&streams)`. A blank server that
    /// adopts the snapshot keeps it instead of summing every term again.
    pub fn apply_digested_snapshot(
        &mut self,
        index: u64,
        streams: BTreeMap<StreamKey, StreamAssignment>,
        digest: u64,
        me: PeerId,
    ) -> Result<Vec<Effect>, ApplyError> {
        debug_assert_eq!(digest, super::projection::projection_digest_of(&streams), "the snapshot's digest");
        self.apply_snapshot_adopting(index, streams, Some(digest), me, true)
    }

    /// [`Self::apply_snapshot`] as a diff whatever the state: what adopting must equal.
    #[cfg(test)]
    pub(super) fn apply_snapshot_by_diff(
        &mut self,
        index: u64,
        streams: BTreeMap<StreamKey, StreamAssignment>,
        me: PeerId,
    ) -> Result<Vec<Effect>, ApplyError> {
        self.apply_snapshot_adopting(index, streams, None, me, false)
    }

    /// [`Self::apply_snapshot`], which adopts the snapshot's maps when `may_adopt` and the
    /// state and snapshot allow it; its projection digest is summed as it is validated,
    /// unless the caller knows it (`digest`).
    fn apply_snapshot_adopting(
        &mut self,
        index: u64,
        streams: BTreeMap<StreamKey, StreamAssignment>,
        digest: Option<u64>,
        me: PeerId,
        may_adopt: bool,
    ) -> Result<Vec<Effect>, ApplyError> {
        let may_adopt = may_adopt && self.is_blank();
        let mut verdicts = self.validate_snapshot(index, &streams, may_adopt && digest.is_none())?;
        if may_adopt && digest.is_some() {
            verdicts.projection_sum = digest;
        }
        let effects = match verdicts.adoption() {
            Some(projection_sum) => self.adopt_snapshot(streams, projection_sum, me),
            None => self.apply_snapshot_diff(streams, &verdicts, me),
        };
        self.changed();
        self.applied_index = self.applied_index.max(index);
        Ok(effects)
    }

    /// Nothing assigned and nothing marked unsupported: a snapshot applied now only adds.
    fn is_blank(&self) -> bool {
        self.streams.is_empty() && self.unsupported_streams.is_empty() && self.unsupported_consumers.is_empty()
    }

    /// [`Self::apply_snapshot_diff`] onto a blank state, of a validated snapshot found
    /// adoptable, whose projection digest is `projection_sum`. Every asset is an add, so the
    /// snapshot's maps become the state's as they are, where the diff would take them apart
    /// and insert every stream and consumer again, and the effects are the ones those adds
    /// give, in the same order: on a server that starts from nothing, most of the cost of a
    /// large snapshot was that rebuilding.
    fn adopt_snapshot(
        &mut self,
        streams: BTreeMap<StreamKey, StreamAssignment>,
        projection_sum: u64,
        me: PeerId,
    ) -> Vec<Effect> {
        let assets = streams.values().map(|sa| 1 + sa.consumers.len()).sum();
        let mut effects = Vec::with_capacity(assets);
        crate::prefault::prefault_spare(&mut effects);
        for (key, sa) in &streams {
            effects.push(run_or_remove_stream(key.clone(), sa, me));
            for ca in sa.consumers.values() {
                effects.push(run_or_remove_consumer(ca.key(), ca.created_ms, ca.group.clone(), me));
            }
        }
        self.projection_sum = projection_sum;
        self.group_names = super::group_names::GroupNames::uncounted();
        self.streams = streams;
        effects
    }

    /// A validated snapshot applied as a diff against the current assignments (§3.3).
    fn apply_snapshot_diff(
        &mut self,
        streams: BTreeMap<StreamKey, StreamAssignment>,
        verdicts: &SnapshotVerdicts,
        me: PeerId,
    ) -> Vec<Effect> {
        let diff = SnapshotDiff::new(&self.streams, streams);
        let mut effects = Vec::with_capacity(diff.effects_hint());
        for sa in &diff.stream_deletes {
            self.process_remove_stream(sa, None, &mut effects);
        }
        for mut sa in diff.stream_adds {
            let consumers = std::mem::take(&mut sa.consumers);
            let unsupported = verdicts.stream(&sa);
            self.assign_stream(sa, unsupported, None, me, &mut effects);
            for ca in consumers.into_values() {
                let unsupported = verdicts.consumer(&ca);
                self.assign_consumer(*ca, unsupported, None, me, &mut effects);
            }
        }
        for sa in diff.stream_checks {
            let unsupported = verdicts.stream(&sa);
            self.update_stream(sa, unsupported, None, me, &mut effects);
        }
        for ca in &diff.consumer_deletes {
            self.process_remove_consumer(ca, None, &mut effects);
        }
        for ca in diff.consumer_adds {
            let unsupported = verdicts.consumer(&ca);
            self.assign_consumer(ca, unsupported, None, me, &mut effects);
        }
        effects
    }

    /// Recovery mode: stage a meta snapshot at `index` (§3.3 steps 3–4). The diff is against
    /// the assignments applied before recovery began (empty at start-up).
    pub fn stage_snapshot(
        &mut self,
        index: u64,
        streams: BTreeMap<StreamKey, StreamAssignment>,
        ru: &mut RecoveryUpdates,
    ) -> Result<(), ApplyError> {
        self.validate_snapshot(index, &streams, false)?;
        if !ru.bugs.recovery_snapshot_no_reconcile {
            ru.reconcile(&streams);
        }
        let diff = SnapshotDiff::new(&self.streams, streams);
        for sa in diff.stream_deletes {
            ru.remove_stream(sa);
        }
        for mut sa in diff.stream_adds {
            let consumers = std::mem::take(&mut sa.consumers);
            ru.add_stream(sa);
            for ca in consumers.into_values() {
                ru.add_or_update_consumer(*ca);
            }
        }
        for sa in diff.stream_checks {
            ru.update_stream(sa);
        }
        for ca in diff.consumer_deletes {
            ru.remove_consumer(ca);
        }
        for ca in diff.consumer_adds {
            ru.add_or_update_consumer(ca);
        }
        self.applied_index = self.applied_index.max(index);
        Ok(())
    }

    /// End of recovery (§3.4): apply the staged work in the fixed class order — consumer
    /// removals, stream removals, stream adds, stream updates, consumer adds. Within a class
    /// NATS walks a Go map, so the order is drawn from `order` (the seed). Nothing answers:
    /// recovered assignments count as responded.
    pub fn flush(&mut self, ru: RecoveryUpdates, me: PeerId, order: &mut dyn RngCore) -> Vec<Effect> {
        if self.write_error.is_some() {
            return Vec::new();
        }
        fn shuffled<T>(items: impl IntoIterator<Item = T>, order: &mut dyn RngCore) -> Vec<T> {
            let mut items: Vec<T> = items.into_iter().collect();
            items.shuffle(order);
            items
        }
        let RecoveryUpdates { remove_streams, add_streams, update_streams, remove_consumers, update_consumers, .. } =
            ru;
        let mut effects = Vec::new();
        for ca in shuffled(remove_consumers.into_values().flat_map(BTreeMap::into_values), order) {
            self.process_remove_consumer(&ca, None, &mut effects);
        }
        for sa in shuffled(remove_streams.into_values(), order) {
            self.process_remove_stream(&sa, None, &mut effects);
        }
        for sa in shuffled(add_streams.into_values(), order) {
            self.process_assign_stream(sa, None, me, &mut effects);
        }
        for sa in shuffled(update_streams.into_values(), order) {
            self.process_update_stream(sa, None, me, &mut effects);
        }
        for ca in shuffled(update_consumers.into_values().flat_map(BTreeMap::into_values), order) {
            self.process_assign_consumer(ca, None, me, &mut effects);
        }
        self.changed();
        effects
    }
}
