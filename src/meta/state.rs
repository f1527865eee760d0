//! The applied meta state and its state machine (spec §2.1–2.5, §2.8, normal mode). Applying
//! an entry changes only this replicated state plus the leader's inflight counts, and returns
//! [`Effect`]s: what the driver must do to this server's local assets and groups.

use std::cell::{Cell, Ref, RefCell};
use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use super::config_memo::StreamSubjects;
use super::entry::{MetaEntry, Reply};
use super::error::ApiError;
use super::group_names::GroupNames;
use super::inflight::Inflight;
use super::model::{
    ConfigError, ConsumerAssignment, ConsumerConfig, ConsumerKey, Decoded, PeerId, Projection, RaftGroup,
    StreamAssignment, StreamConfig, StreamKey, API_LEVEL,
};
use super::projection::{self, consumer_term, stream_term, stream_with_consumers_term};
use super::revision::Revision;

// Defined with the meta layer's other errors; `meta::state::ApplyError` still names it.
pub use super::error::ApplyError;

/// What an applied operation achieved, for the API answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    StreamCreated(StreamKey),
    StreamUpdated(StreamKey),
    StreamDeleted(StreamKey),
    ConsumerCreated(ConsumerKey),
    ConsumerDeleted(ConsumerKey),
}

/// An instruction to the driver about this server's local assets, produced by `apply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// This server is a member: create or update the local stream; start its raft group when
    /// it is replicated ([`StreamAssignment::replicated`]); a local copy with another group name switches to this group.
    RunStream { key: StreamKey, created_ms: u64, group: RaftGroup },
    /// Unsupported here: stop the local stream if running, keep its data.
    StopStream { key: StreamKey },
    /// Delete the local stream (and its consumers) if present, but only if its local created
    /// time is ≤ `created_ms_max` when set: a delete never destroys a newer incarnation (§2.3).
    RemoveLocalStream { key: StreamKey, created_ms_max: Option<u64> },
    /// As `RunStream`, for a consumer.
    RunConsumer { key: ConsumerKey, created_ms: u64, group: RaftGroup },
    /// Stop the local consumer if running, keep its state.
    StopConsumer { key: ConsumerKey },
    /// As `RemoveLocalStream`, for a consumer (§2.5).
    RemoveLocalConsumer { key: ConsumerKey, created_ms_max: Option<u64> },
    /// The entry carried a reply. Handed back on every server; the driver decides which one
    /// answers. `apply` answers `Err` only for a consumer delete that found nothing to delete.
    Respond { reply: Reply, result: Result<Outcome, ApiError> },
}

/// An applied stream that mirrors another of its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub key: StreamKey,
    /// The name of the stream it mirrors.
    pub source: String,
    pub created_ms: u64,
}

/// The applied meta state of one server: replicated assignments plus this process's local
/// judgements about them (unsupported markers, the sticky apply error).
#[derive(Clone, Debug)]
pub struct MetaState {
    /// This server's API level: assets that require a higher one are unsupported here (§7).
    api_level: i64,
    pub(super) streams: BTreeMap<StreamKey, StreamAssignment>,
    /// Streams this process judged unsupported, with the reason. Sticky across later
    /// assignments of the same stream; dropped only when the stream is removed (§7).
    pub(super) unsupported_streams: BTreeMap<StreamKey, String>,
    /// Same for consumers.
    pub(super) unsupported_consumers: BTreeMap<ConsumerKey, String>,
    /// The first apply error (NATS `werr`). Once set, `apply` refuses everything and healthz
    /// reports it as the meta apply error.
    pub(super) write_error: Option<String>,
    /// Highest log index handed to `apply` or `note_applied`.
    pub(super) applied_index: u64,
    /// [`MetaState::projection_digest`], kept as `streams` changes: the sum of the terms of
    /// every stream and consumer (see [`projection`]).
    pub(super) projection_sum: u64,
    /// The group names `streams` uses, kept as it changes.
    pub(super) group_names: GroupNames,
    /// Debug builds: whether `projection_sum` was checked against a digest from scratch since
    /// the last change.
    digest_checked: Cell<bool>,
    /// [`MetaState::check_structure`]'s verdict, kept the same way.
    structure_cache: RefCell<Option<Result<(), String>>>,
    /// [`MetaState::with_stream_subjects`]'s memo.
    stream_subjects: StreamSubjects,
    /// [`MetaState::mirrors`], kept until the state changes.
    mirrors: RefCell<Option<Vec<Mirror>>>,
    /// Stamped anew on every change, with the caches above.
    revision: Revision,
}

pub(super) fn validate_stream(sa: &StreamAssignment, api_level: i64) -> Result<Decoded<StreamConfig>, String> {
    if sa.name.is_empty() {
        return Err("stream assignment without a name".into());
    }
    if !sa.consumers.is_empty() {
        return Err(format!("stream entry {} carries consumers", sa.key()));
    }
    validate_stream_fields(sa, api_level)
}

/// [`validate_stream`] minus the rule that an entry carries no consumers: a snapshot's
/// streams carry theirs, which are validated one by one.
pub(super) fn validate_stream_fields(sa: &StreamAssignment, api_level: i64) -> Result<Decoded<StreamConfig>, String> {
    if sa.name.is_empty() {
        return Err("stream assignment without a name".into());
    }
    sa.group.check().map_err(|e| format!("stream {}: {e}", sa.key()))?;
    let decoded = sa.config_at(api_level).map_err(|e| format!("stream {}: {e}", sa.key()))?;
    if decoded.config().name != sa.name {
        return Err(format!("stream {}: config names stream {:?}", sa.key(), decoded.config().name));
    }
    Ok(decoded)
}

pub(super) fn validate_consumer(ca: &ConsumerAssignment, api_level: i64) -> Result<Decoded<ConsumerConfig>, String> {
    validate_consumer_fields(ca)?;
    let decoded = ca.config_at(api_level).map_err(|e| consumer_config_refused(ca, e))?;
    validate_consumer_durable(ca, decoded.config())?;
    Ok(decoded)
}

/// The checks of [`validate_consumer`] before its config is parsed.
pub(super) fn validate_consumer_fields(ca: &ConsumerAssignment) -> Result<(), String> {
    if ca.name.is_empty() || ca.stream.is_empty() {
        return Err(format!("consumer assignment {} without a name or stream", ca.key()));
    }
    ca.group.check().map_err(|e| format!("consumer {}: {e}", ca.key()))
}

/// Why [`validate_consumer`] refuses `ca`, whose config does not decode.
pub(super) fn consumer_config_refused(ca: &ConsumerAssignment, e: ConfigError) -> String {
    format!("consumer {}: {e}", ca.key())
}

/// The check of [`validate_consumer`] after its config is parsed: the config names no other
/// durable than the consumer.
pub(super) fn validate_consumer_durable(ca: &ConsumerAssignment, config: &ConsumerConfig) -> Result<(), String> {
    match &config.durable_name {
        Some(durable) if *durable != ca.name => Err(format!("consumer {}: config names durable {durable:?}", ca.key())),
        _ => Ok(()),
    }
}

fn created_bound(created_ms: u64) -> Option<u64> {
    // Created 0 means "unknown" in NATS; the leader never proposes it.
    (created_ms != 0).then_some(created_ms)
}

impl Default for MetaState {
    fn default() -> Self {
        MetaState::new(API_LEVEL)
    }
}

impl MetaState {
    /// An empty state for a server of API level `api_level`.
    pub fn new(api_level: i64) -> Self {
        MetaState {
            api_level,
            streams: BTreeMap::new(),
            unsupported_streams: BTreeMap::new(),
            unsupported_consumers: BTreeMap::new(),
            write_error: None,
            applied_index: 0,
            projection_sum: 0,
            group_names: GroupNames::default(),
            digest_checked: Cell::new(false),
            structure_cache: RefCell::new(None),
            stream_subjects: StreamSubjects::default(),
            mirrors: RefCell::new(None),
            revision: Revision::fresh(),
        }
    }

    /// This server's API level.
    pub fn api_level(&self) -> i64 {
        self.api_level
    }

    /// Apply the meta entry at `index` in normal mode (§2.1–2.5). `me` decides membership;
    /// `inflight` loses one op for the entry's key (no-op on followers).
    /// `index` must exceed every index applied before (gaps are fine); otherwise it panics, as
    /// that is a driver bug.
    ///
    /// Any decode or validation failure becomes the sticky write error (§2.8): it and every
    /// later call return `Err` and change nothing. Validation happens before any mutation, so a
    /// refused entry never half-applies.
    ///
    /// Recovery mode stages instead ([`MetaState::stage`], in `recovery`) and flushes through
    /// the same per-op process functions.
    pub fn apply(
        &mut self,
        index: u64,
        data: &[u8],
        me: PeerId,
        inflight: &mut Inflight,
    ) -> Result<Vec<Effect>, ApplyError> {
        let entry = self.decode_entry(index, data)?;
        self.changed();
        let effects = self.process_entry(entry, me, inflight);
        self.applied_index = index;
        Ok(effects)
    }

    /// Record that a log entry carrying no meta op (leader no-op, membership) was applied.
    pub fn note_applied(&mut self, index: u64) {
        assert!(index > self.applied_index, "meta entries apply in log order: {index} after {}", self.applied_index);
        self.applied_index = index;
    }

    /// Carry out a decoded, validated entry (normal mode).
    fn process_entry(&mut self, entry: MetaEntry, me: PeerId, inflight: &mut Inflight) -> Vec<Effect> {
        let mut effects = Vec::new();
        match entry {
            MetaEntry::AssignStream { sa, reply } => {
                inflight.remove_stream(&sa.key());
                self.process_assign_stream(sa, reply, me, &mut effects);
            }
            MetaEntry::UpdateStream { sa, reply } => {
                inflight.remove_stream(&sa.key());
                self.process_update_stream(sa, reply, me, &mut effects);
            }
            MetaEntry::RemoveStream { sa, reply } => {
                inflight.remove_stream(&sa.key());
                self.process_remove_stream(&sa, reply, &mut effects);
            }
            MetaEntry::AssignConsumer { ca, reply } => {
                // Decrement before the parent check: the §5.5 leak fix.
                inflight.remove_consumer(&ca.key());
                self.process_assign_consumer(ca, reply, me, &mut effects);
            }
            MetaEntry::RemoveConsumer { ca, reply } => {
                inflight.remove_consumer(&ca.key());
                self.process_remove_consumer(&ca, reply, &mut effects);
            }
        }
        effects
    }

    /// Decode and validate the meta entry at `index` without applying it: `apply` and recovery
    /// staging (§3.2) both start here. Failures become the sticky write error.
    pub fn decode_entry(&mut self, index: u64, data: &[u8]) -> Result<MetaEntry, ApplyError> {
        if let Some(e) = &self.write_error {
            return Err(ApplyError::Stopped(e.clone()));
        }
        assert!(index > self.applied_index, "meta entries apply in log order: {index} after {}", self.applied_index);
        let entry = MetaEntry::decode(data).map_err(|source| ApplyError::Decode { index, source });
        let checked = entry.and_then(|entry| {
            let reason = match &entry {
                MetaEntry::AssignStream { sa, .. }
                | MetaEntry::UpdateStream { sa, .. }
                | MetaEntry::RemoveStream { sa, .. } => validate_stream(sa, self.api_level).err(),
                MetaEntry::AssignConsumer { ca, .. } | MetaEntry::RemoveConsumer { ca, .. } => {
                    validate_consumer(ca, self.api_level).err()
                }
            };
            match reason {
                Some(reason) => Err(ApplyError::Invalid { index, reason }),
                None => Ok(entry),
            }
        });
        if let Err(e) = &checked {
            self.write_error = Some(e.to_string());
        }
        checked
    }

    /// processStreamAssignment: store a (validated) stream assignment and run it locally.
    pub(super) fn process_assign_stream(
        &mut self,
        sa: StreamAssignment,
        reply: Option<Reply>,
        me: PeerId,
        effects: &mut Vec<Effect>,
    ) {
        let decoded = validate_stream(&sa, self.api_level).expect("validated before processing");
        self.assign_stream(sa, decoded.unsupported_reason(), reply, me, effects);
    }

    /// [`Self::process_assign_stream`] of an assignment already validated, which found it
    /// `unsupported` here (or not).
    pub(super) fn assign_stream(
        &mut self,
        sa: StreamAssignment,
        unsupported: Option<&str>,
        reply: Option<Reply>,
        me: PeerId,
        effects: &mut Vec<Effect>,
    ) {
        self.changed();
        let key = sa.key();
        self.store_stream(key.clone(), sa, unsupported);
        self.stream_effects(key, me, reply, Outcome::StreamCreated, effects);
    }

    /// processUpdateStreamAssignment: as an assignment, but only of a stream already there.
    pub(super) fn process_update_stream(
        &mut self,
        sa: StreamAssignment,
        reply: Option<Reply>,
        me: PeerId,
        effects: &mut Vec<Effect>,
    ) {
        let decoded = validate_stream(&sa, self.api_level).expect("validated before processing");
        self.update_stream(sa, decoded.unsupported_reason(), reply, me, effects);
    }

    /// [`Self::process_update_stream`] of an assignment already validated.
    pub(super) fn update_stream(
        &mut self,
        sa: StreamAssignment,
        unsupported: Option<&str>,
        reply: Option<Reply>,
        me: PeerId,
        effects: &mut Vec<Effect>,
    ) {
        let key = sa.key();
        if !self.streams.contains_key(&key) {
            // §2.2: an update of a stream that is not there is ignored.
            return;
        }
        self.changed();
        self.store_stream(key.clone(), sa, unsupported);
        self.stream_effects(key, me, reply, Outcome::StreamUpdated, effects);
    }

    /// processStreamRemoval: drop the assignment; the local copy goes only if it is not a
    /// newer incarnation than the entry's (§2.3).
    pub(super) fn process_remove_stream(
        &mut self,
        sa: &StreamAssignment,
        reply: Option<Reply>,
        effects: &mut Vec<Effect>,
    ) {
        self.changed();
        let key = sa.key();
        let bound = created_bound(sa.created_ms);
        if let Some(old) = self.streams.remove(&key) {
            self.projection_sum = self.projection_sum.wrapping_sub(stream_with_consumers_term(&key, &old));
            self.group_names.remove_stream(&old);
            self.unsupported_streams.remove(&key);
            self.unsupported_consumers.retain(|k, _| k.account != key.account || k.stream != key.name);
            effects.push(Effect::RemoveLocalStream { key: key.clone(), created_ms_max: bound });
            respond(effects, reply, Outcome::StreamDeleted(key));
        } else if bound.is_some() {
            effects.push(Effect::RemoveLocalStream { key, created_ms_max: bound });
        }
    }

    /// processConsumerAssignment: store a (validated) consumer under its applied parent and
    /// run it locally; a consumer whose parent is absent is dropped.
    pub(super) fn process_assign_consumer(
        &mut self,
        ca: ConsumerAssignment,
        reply: Option<Reply>,
        me: PeerId,
        effects: &mut Vec<Effect>,
    ) {
        let decoded = validate_consumer(&ca, self.api_level).expect("validated before processing");
        self.assign_consumer(ca, decoded.unsupported_reason(), reply, me, effects);
    }

    /// [`Self::process_assign_consumer`] of an assignment already validated.
    pub(super) fn assign_consumer(
        &mut self,
        ca: ConsumerAssignment,
        unsupported: Option<&str>,
        reply: Option<Reply>,
        me: PeerId,
        effects: &mut Vec<Effect>,
    ) {
        let key = ca.key();
        let skey = ca.stream_key();
        let Some(sa) = self.streams.get_mut(&skey) else {
            return;
        };
        assert_eq!(ca.stream, sa.name, "a consumer's stream names its parent");
        let (created_ms, group) = (ca.created_ms, ca.group.clone());
        let replaced = sa.consumers.get(&ca.name).map_or(0, |old| consumer_term(&skey, &ca.name, old));
        let added = consumer_term(&skey, &ca.name, &ca);
        if let Some(old) = sa.consumers.insert(ca.name.clone(), Box::new(ca)) {
            self.group_names.remove(&old.group.name);
        }
        self.group_names.add(&group.name);
        self.projection_sum = self.projection_sum.wrapping_sub(replaced).wrapping_add(added);
        self.changed();
        if let Some(reason) = unsupported {
            self.unsupported_consumers.entry(key.clone()).or_insert_with(|| reason.to_string());
        }
        if self.unsupported_consumers.contains_key(&key) {
            // Stop the parent too, so its retention cannot drop messages the consumer
            // this server cannot run would have needed.
            let reason = format!("stopped - unsupported consumer \"{}\"", key.name);
            self.unsupported_streams.entry(skey.clone()).or_insert(reason);
            effects.push(Effect::StopConsumer { key });
            effects.push(Effect::StopStream { key: skey });
        } else if self.unsupported_streams.contains_key(&skey) {
            effects.push(Effect::StopConsumer { key });
        } else {
            // The key is copied only when an answer needs it too.
            let answer = reply.map(|reply| (reply, Outcome::ConsumerCreated(key.clone())));
            effects.push(run_or_remove_consumer(key, created_ms, group, me));
            if let Some((reply, outcome)) = answer {
                effects.push(Effect::Respond { reply, result: Ok(outcome) });
            }
        }
    }

    /// processConsumerRemoval: drop the consumer if the entry names its current group (§2.5).
    pub(super) fn process_remove_consumer(
        &mut self,
        ca: &ConsumerAssignment,
        reply: Option<Reply>,
        effects: &mut Vec<Effect>,
    ) {
        self.changed();
        let key = ca.key();
        let bound = created_bound(ca.created_ms);
        let skey = ca.stream_key();
        let parent = self.streams.get_mut(&skey);
        let had_parent = parent.is_some();
        let kept = parent.as_ref().is_some_and(|sa| sa.consumers.contains_key(&ca.name));
        let matched = parent.and_then(|sa| match sa.consumers.get(&ca.name) {
            // §2.5: a remove for another incarnation (other group) leaves it alone.
            Some(old) if old.group.name == ca.group.name => sa.consumers.remove(&ca.name),
            _ => None,
        });
        if let Some(old) = matched {
            self.projection_sum = self.projection_sum.wrapping_sub(consumer_term(&skey, &ca.name, &old));
            self.group_names.remove(&old.group.name);
            self.unsupported_consumers.remove(&key);
            effects.push(Effect::RemoveLocalConsumer { key: key.clone(), created_ms_max: bound });
            respond(effects, reply, Outcome::ConsumerDeleted(key));
        } else {
            // A local copy of an older incarnation goes; none while the state keeps a consumer
            // of that name, whose assignment the local copy follows (default seed 3664 of v13:
            // a delete proposed before a regroup of the same incarnation took its local copy,
            // created at the same time, while the assignment stayed).
            if bound.is_some() && !kept {
                effects.push(Effect::RemoveLocalConsumer { key, created_ms_max: bound });
            }
            // The leader checked the delete against applied state only (§2.7), so a
            // stream delete proposed just before can take the consumer first. NATS
            // answers nobody then and the client times out (L7, seeds 3415 and 4195 of
            // generator 7); we answer that there is nothing to delete.
            let error = if had_parent { ApiError::ConsumerNotFound } else { ApiError::StreamNotFound };
            if let Some(reply) = reply {
                effects.push(Effect::Respond { reply, result: Err(error) });
            }
        }
    }

    /// Store `sa` in place of any previous assignment, carrying its consumers over; mark it
    /// unsupported when validation found it so (the marker is kept if already set).
    fn store_stream(&mut self, key: StreamKey, mut sa: StreamAssignment, unsupported: Option<&str>) {
        if let Some(reason) = unsupported {
            self.unsupported_streams.entry(key.clone()).or_insert_with(|| reason.to_string());
        }
        // The consumers carried over keep their terms; only the stream's own changes.
        self.projection_sum = match self.streams.remove(&key) {
            Some(old) => {
                let sum =
                    self.projection_sum.wrapping_sub(stream_term(&key, &old)).wrapping_add(stream_term(&key, &sa));
                sa.consumers = old.consumers;
                self.group_names.remove(&old.group.name);
                self.group_names.add(&sa.group.name);
                sum
            }
            None => {
                self.group_names.add_stream(&sa);
                self.projection_sum.wrapping_add(stream_with_consumers_term(&key, &sa))
            }
        };
        self.streams.insert(key, sa);
    }

    /// Local effects of the stream assignment now stored under `key`, and the answer (built by
    /// `outcome`) when it is supported here.
    fn stream_effects(
        &self,
        key: StreamKey,
        me: PeerId,
        reply: Option<Reply>,
        outcome: fn(StreamKey) -> Outcome,
        effects: &mut Vec<Effect>,
    ) {
        let sa = &self.streams[&key];
        if self.unsupported_streams.contains_key(&key) {
            effects.push(Effect::StopStream { key });
            return;
        }
        // The key is copied only when an answer needs it too.
        let answer = reply.map(|reply| (reply, outcome(key.clone())));
        effects.push(run_or_remove_stream(key, sa, me));
        if let Some((reply, outcome)) = answer {
            effects.push(Effect::Respond { reply, result: Ok(outcome) });
        }
    }

    /// The assignments as a meta snapshot carries them (applied state only, never inflight).
    pub fn snapshot_streams(&self) -> &BTreeMap<StreamKey, StreamAssignment> {
        &self.streams
    }

    pub(super) fn fail(&mut self, index: u64, reason: String) -> ApplyError {
        let error = ApplyError::Invalid { index, reason };
        self.write_error.get_or_insert_with(|| error.to_string());
        error
    }

    /// `f` of the normalized subjects of `sa`'s config, applied or not (`None` when the
    /// config does not decode), parsed once per config met (see [`StreamSubjects`]).
    /// `walked`: how many configs the caller looks at in all, inflight ones included.
    pub fn with_stream_subjects<R>(
        &self,
        sa: &StreamAssignment,
        walked: usize,
        f: impl FnOnce(Option<&[String]>) -> R,
    ) -> R {
        // Room for every config the walk meets and as many more (replaced or deleted since):
        // a create burst holds hundreds inflight while few are applied yet.
        let held_max = 2 * (self.streams.len() + walked) + 64;
        self.stream_subjects.with(&sa.config_json, held_max, f)
    }

    /// Configs [`Self::with_stream_subjects`] holds.
    #[cfg(test)]
    pub(super) fn stream_subjects_held(&self) -> usize {
        self.stream_subjects.len()
    }

    /// The applied stream assignment.
    pub fn stream(&self, key: &StreamKey) -> Option<&StreamAssignment> {
        self.streams.get(key)
    }

    /// All applied stream assignments, by key.
    pub fn streams(&self) -> impl Iterator<Item = &StreamAssignment> {
        self.streams.values()
    }

    /// All applied stream assignments with their keys, in key order.
    pub fn streams_by_key(&self) -> impl Iterator<Item = (&StreamKey, &StreamAssignment)> {
        self.streams.iter()
    }

    /// One account's applied streams, by name.
    pub fn streams_of<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a StreamAssignment> + 'a {
        self.streams
            .range(StreamKey::new(account, "")..)
            .take_while(move |(k, _)| k.account == account)
            .map(|(_, sa)| sa)
    }

    /// The applied consumer assignment (under its applied parent).
    pub fn consumer(&self, key: &ConsumerKey) -> Option<&ConsumerAssignment> {
        self.streams.get(&key.stream_key()).and_then(|sa| sa.consumers.get(&key.name)).map(Box::as_ref)
    }

    /// The offline reason when this process judged the stream unsupported.
    /// Every stream this process judges unsupported, with the reason.
    pub fn unsupported_streams(&self) -> impl Iterator<Item = (&StreamKey, &str)> {
        self.unsupported_streams.iter().map(|(k, r)| (k, r.as_str()))
    }

    /// Every consumer this process judges unsupported, with the reason.
    pub fn unsupported_consumers(&self) -> impl Iterator<Item = (&ConsumerKey, &str)> {
        self.unsupported_consumers.iter().map(|(k, r)| (k, r.as_str()))
    }

    pub fn stream_unsupported(&self, key: &StreamKey) -> Option<&str> {
        self.unsupported_streams.get(key).map(String::as_str)
    }

    /// The offline reason when this process judged the consumer unsupported.
    pub fn consumer_unsupported(&self, key: &ConsumerKey) -> Option<&str> {
        self.unsupported_consumers.get(key).map(String::as_str)
    }

    /// The sticky apply error, if any.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }

    /// Highest log index applied (or noted) so far.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Streams whose sync subject is empty: a new leader re-proposes them with one (§2.1).
    pub fn streams_missing_sync(&self) -> Vec<StreamKey> {
        self.streams.values().filter(|sa| sa.sync.is_empty()).map(StreamAssignment::key).collect()
    }

    /// The applied group named `name`, a stream's or a consumer's. A name no assignment uses
    /// (a leader's fresh name, nearly always) is told from the kept names; one in use is
    /// found by a walk, for rare events only (a server re-placed off a group).
    pub fn group(&self, name: &str) -> Option<&RaftGroup> {
        let walk = || self.streams.values().flat_map(StreamAssignment::groups).find(|g| g.name == name);
        if !self.group_names.contains(name, &self.streams) {
            debug_assert!(walk().is_none(), "{name} is used but not kept");
            return None;
        }
        walk()
    }

    /// Whether any applied assignment uses group name `name`.
    pub fn group_name_used(&self, name: &str) -> bool {
        self.group_names.contains(name, &self.streams)
    }

    /// The replicated projection (§10): local-only fields (`preferred`) cleared.
    pub fn projection(&self) -> Projection {
        project(&self.streams)
    }

    /// A fixed digest of [`MetaState::projection`], for "same applied index ⇒ same projection"
    /// (see [`projection`]). Kept as the state changes; debug builds check it against a digest
    /// from scratch once after every change, and the group names with it.
    pub fn projection_digest(&self) -> u64 {
        if cfg!(debug_assertions) && !self.digest_checked.replace(true) {
            let full = projection::projection_digest_of(&self.streams);
            assert_eq!(self.projection_sum, full, "the kept projection digest drifted from the assignments");
            assert!(self.group_names.kept_for(&self.streams), "group names drifted from the assignments");
        }
        self.projection_sum
    }

    /// Spec S10: one stream per key and keyed by its own identity; consumers keyed by name with
    /// `stream`/`account` naming the parent; every group valid; group names unique across all
    /// assignments; unsupported markers only for present assets.
    pub fn check_structure(&self) -> Result<(), String> {
        if let Some(verdict) = self.structure_cache.borrow().as_ref() {
            return verdict.clone();
        }
        let verdict = self.check_structure_now();
        *self.structure_cache.borrow_mut() = Some(verdict.clone());
        verdict
    }

    /// Forget the cached digest and verdict: the state is about to change.
    pub(super) fn changed(&mut self) {
        self.digest_checked.set(false);
        *self.structure_cache.get_mut() = None;
        *self.mirrors.get_mut() = None;
        self.revision = Revision::fresh();
    }

    /// The applied streams whose config (at [`API_LEVEL`]) mirrors another stream, in key
    /// order. Every server's mirror check asks every ten seconds, and finding them parses every
    /// stream's config: they are found again only after the state changed.
    pub fn mirrors(&self) -> Ref<'_, [Mirror]> {
        if self.mirrors.borrow().is_none() {
            let found = self.streams.iter().filter_map(|(key, sa)| {
                let source = sa.config().ok()?.into_config().mirror?.name;
                Some(Mirror { key: key.clone(), source, created_ms: sa.created_ms })
            });
            *self.mirrors.borrow_mut() = Some(found.collect());
        }
        Ref::map(self.mirrors.borrow(), |mirrors| mirrors.as_deref().expect("found above"))
    }

    /// Changes whenever the state does (see [`Revision`]).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    fn check_structure_now(&self) -> Result<(), String> {
        // Runs after every simulated event: format only on failure.
        // Every group name with its owner, in walk order, up to the first failure of another
        // kind, which ends the walk; names are compared after it.
        let mut names: Vec<(&str, &StreamKey, Option<&str>)> = Vec::new();
        let mut failure = None;
        'walk: for (key, sa) in &self.streams {
            if sa.account != key.account || sa.name != key.name {
                failure = Some(format!("stream {} stored under {key}", sa.key()));
                break;
            }
            let groups = std::iter::once((&sa.group, None))
                .chain(sa.consumers.iter().map(|(name, ca)| (&ca.group, Some((name.as_str(), ca)))));
            for (group, consumer) in groups {
                if let Some((name, ca)) = consumer {
                    if ca.name != name || ca.stream != key.name || ca.account != key.account {
                        failure = Some(format!("consumer {} stored under {key} as {name}", ca.key()));
                        break 'walk;
                    }
                }
                let consumer = consumer.map(|(name, _)| name);
                if let Err(e) = group.check() {
                    failure = Some(format!("{}: {e}", owner(key, consumer)));
                    break 'walk;
                }
                names.push((group.name.as_str(), key, consumer));
            }
        }
        // A name used twice. A set finds whether there is one in a pass; only then are the
        // names sorted, for the use the message names (this runs after every change).
        let mut seen = FxHashSet::default();
        seen.reserve(names.len());
        if !names.iter().all(|(name, _, _)| seen.insert(*name)) {
            return Err(first_name_used_twice(&names));
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        if let Some(key) = self.unsupported_streams.keys().find(|k| !self.streams.contains_key(k)) {
            return Err(format!("unsupported marker for absent stream {key}"));
        }
        if let Some(key) = self.unsupported_consumers.keys().find(|k| self.consumer(k).is_none()) {
            return Err(format!("unsupported marker for absent consumer {key}"));
        }
        Ok(())
    }
}

/// A group's owner, for a message: the stream, or its consumer `consumer`.
fn owner(key: &StreamKey, consumer: Option<&str>) -> String {
    match consumer {
        None => format!("stream {key}"),
        Some(name) => format!("consumer {key}:{name}"),
    }
}

/// The message for the first second use of a group name among `names` (group name, stream,
/// consumer, in walk order), which holds one: the walk stopped at that use, which came before
/// any failure it met later, and the message names the use before it.
fn first_name_used_twice(names: &[(&str, &StreamKey, Option<&str>)]) -> String {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_unstable_by(|&a, &b| names[a].0.cmp(names[b].0).then(a.cmp(&b)));
    let twice = order.windows(2).filter(|w| names[w[0]].0 == names[w[1]].0).min_by_key(|w| w[1]);
    let w = twice.expect("a name is used twice");
    let ((name, other_key, other), (_, key, consumer)) = (names[w[0]], names[w[1]]);
    format!("raft group {name} used by {} and {}", owner(other_key, other), owner(key, consumer))
}

/// The projection (§10) of a set of assignments: local-only fields (`preferred`) cleared.
pub fn project(streams: &BTreeMap<StreamKey, StreamAssignment>) -> Projection {
    let mut p = streams.clone();
    for sa in p.values_mut() {
        sa.group.preferred = None;
        for ca in sa.consumers.values_mut() {
            ca.group.preferred = None;
        }
    }
    p
}

/// What this server does with a supported stream it was just assigned: run it as a member of
/// its group, or remove any local copy when it is not one.
pub(super) fn run_or_remove_stream(key: StreamKey, sa: &StreamAssignment, me: PeerId) -> Effect {
    if sa.group.is_member(me) {
        Effect::RunStream { key, created_ms: sa.created_ms, group: sa.group.clone() }
    } else {
        Effect::RemoveLocalStream { key, created_ms_max: None }
    }
}

/// [`run_or_remove_stream`] for a consumer, whose group the caller hands over.
pub(super) fn run_or_remove_consumer(key: ConsumerKey, created_ms: u64, group: RaftGroup, me: PeerId) -> Effect {
    if group.is_member(me) {
        Effect::RunConsumer { key, created_ms, group }
    } else {
        Effect::RemoveLocalConsumer { key, created_ms_max: None }
    }
}

fn respond(effects: &mut Vec<Effect>, reply: Option<Reply>, outcome: Outcome) {
    if let Some(reply) = reply {
        effects.push(Effect::Respond { reply, result: Ok(outcome) });
    }
}
