//! Consumer configs a snapshot shares, parsed once: the validation of a large meta snapshot
//! parses every config, and JSON parsing was most of that validation (some 150 ns a config,
//! 50,000 consumers in the bench's snapshot). A snapshot's consumers often share their config
//! bytes: a config names its durable, and the same consumer names and settings recur across
//! streams. A config's verdict (parsed, unsupported and why, or refused) depends on its bytes
//! and the API level alone, so bytes met before, and still held, take the verdict they had;
//! what depends on the consumer (its name against the config's durable) is still checked for
//! each one.

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_64;

use super::model::{ConfigError, ConsumerConfig, Decoded, StreamConfig, API_LEVEL};

/// Configs remembered at most, each in the slot its bytes hash to, where it stays until a
/// config hashed to the same slot replaces it. A lookup is a hash and one comparison of
/// bytes, so a snapshot whose configs all differ pays next to nothing for the memo (a search
/// tree of them cost as much as parsing), and one with a few shared configs parses each once.
pub(super) const SLOTS: usize = 256;

/// The configs parsed last, by slot, with their bytes.
pub(super) struct ConsumerConfigs<'a> {
    api_level: i64,
    slots: Vec<Option<(&'a [u8], Decoded<ConsumerConfig>)>>,
}

impl<'a> ConsumerConfigs<'a> {
    pub(super) fn new(api_level: i64) -> Self {
        ConsumerConfigs { api_level, slots: (0..SLOTS).map(|_| None).collect() }
    }

    /// The API level configs are judged at.
    pub(super) fn api_level(&self) -> i64 {
        self.api_level
    }

    /// `bytes` decoded as [`ConsumerConfig::decode_at`] decodes them at this API level,
    /// parsed unless they are the bytes their slot holds. A refusal is not remembered: the
    /// first one ends the validation.
    pub(super) fn decode(&mut self, bytes: &'a [u8]) -> Result<&Decoded<ConsumerConfig>, ConfigError> {
        let slot = &mut self.slots[xxh3_64(bytes) as usize % SLOTS];
        if !matches!(slot, Some((held, _)) if *held == bytes) {
            *slot = Some((bytes, ConsumerConfig::decode_at(bytes, self.api_level)?));
        }
        Ok(&slot.as_ref().expect("filled above").1)
    }

    /// Configs remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

/// Streams' subjects (normalized, as [`StreamConfig::normalized`] gives them; `None` for a
/// config that does not decode), by the hash of their config bytes and checked against the
/// bytes. A leader checks a new stream's subjects against every other stream of the account,
/// and parsed every other config's JSON to do it: a create cost a parse per stream there was
/// (most of a thousand-stream burst's instructions went to it). A config's subjects depend on
/// its bytes alone, so bytes met before take the subjects they had. Held by the applied state
/// as its other caches are; a clone starts empty.
/// A hash map (a lookup per stream walked, where a search tree took a dozen compares): it is
/// never walked, so the hasher's order cannot reach a run.
#[derive(Default)]
pub(crate) struct StreamSubjects(RefCell<FxHashMap<u64, HeldSubjects>>);

/// A config's bytes and its subjects (`None`: it does not decode).
type HeldSubjects = (Vec<u8>, Option<Vec<String>>);

impl StreamSubjects {
    /// `f` of the subjects of the config `bytes`. When `held_max` configs are held, they are
    /// all forgotten first: a bound for the configs of streams deleted or changed since.
    pub(crate) fn with<R>(&self, bytes: &[u8], held_max: usize, f: impl FnOnce(Option<&[String]>) -> R) -> R {
        let mut held = self.0.borrow_mut();
        if held.len() >= held_max {
            held.clear();
        }
        let parse = || StreamConfig::decode_at(bytes, API_LEVEL).ok().map(|d| d.into_config().normalized().subjects);
        let entry = held.entry(xxh3_64(bytes)).or_insert_with(|| (bytes.to_vec(), parse()));
        // Another config of the same hash: it takes the place.
        if entry.0 != bytes {
            *entry = (bytes.to_vec(), parse());
        }
        f(entry.1.as_deref())
    }

    /// Configs held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

impl Clone for StreamSubjects {
    fn clone(&self) -> Self {
        StreamSubjects::default()
    }
}

impl std::fmt::Debug for StreamSubjects {
    // What a cache holds depends on which checks ran, never on the state: left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSubjects")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::model::API_LEVEL;

    /// Configs of every verdict: supported, unsupported (an unknown field, a higher API
    /// level), refused; some byte-equal to others, some equal in meaning but not in bytes.
    fn configs() -> Vec<Vec<u8>> {
        let texts = [
            r#"{"durable_name":"C","replicas":0}"#,
            r#"{"durable_name":"D","replicas":3}"#,
            r#"{"durable_name":"C", "replicas":0}"#,
            r#"{"durable_name":"C","future":1}"#,
            r#"{"durable_name":"C","metadata":{"_nats.req.level":"3"}}"#,
            r#"{"durable_name":"C","metadata":{"_nats.req.level":"9"}}"#,
            r#"{"filter_subject":"a.>"}"#,
            r#"{"durable_name":"C","replicas":300}"#,
            r#"{"durable_name":"#,
            "",
        ];
        texts.iter().map(|t| t.as_bytes().to_vec()).collect()
    }

    /// Every config, met once or again and in any order, decodes as a parse of its own
    /// bytes at the memo's API level does; byte-equal configs are remembered once.
    #[test]
    fn a_remembered_config_decodes_as_its_own_parse() {
        let configs = configs();
        let visits: Vec<&[u8]> =
            configs.iter().chain(configs.iter().rev()).chain(&configs).map(Vec::as_slice).collect();
        for api_level in [0, 3, API_LEVEL] {
            let mut memo = ConsumerConfigs::new(api_level);
            for bytes in &visits {
                let parsed = ConsumerConfig::decode_at(bytes, api_level);
                let remembered = memo.decode(bytes).cloned();
                assert_eq!(remembered, parsed, "level {api_level}: {}", String::from_utf8_lossy(bytes));
            }
            let accepted = configs.iter().filter(|c| ConsumerConfig::decode_at(c, api_level).is_ok()).count();
            assert!(memo.len() <= accepted, "level {api_level}: byte-equal configs are remembered once");
        }
    }

    /// More distinct configs than slots replace each other and still decode as their own
    /// parse; the memo holds at most [`SLOTS`].
    #[test]
    fn the_memo_is_bounded() {
        let configs: Vec<Vec<u8>> =
            (0..4 * SLOTS).map(|i| format!(r#"{{"durable_name":"C{i}"}}"#).into_bytes()).collect();
        let mut memo = ConsumerConfigs::new(API_LEVEL);
        for bytes in configs.iter().chain(configs.iter().rev()) {
            let decoded = memo.decode(bytes).expect("a valid config").clone();
            assert_eq!(Ok(decoded), ConsumerConfig::decode_at(bytes, API_LEVEL));
        }
        assert!(memo.len() > SLOTS / 2 && memo.len() <= SLOTS, "{} configs held", memo.len());
    }

    /// Every stream config, met once or again, gives the subjects a parse of its own bytes
    /// gives, including one that does not decode; past the bound the memo starts over.
    #[test]
    fn remembered_subjects_are_those_of_the_bytes() {
        let texts = [
            r#"{"name":"S","subjects":["a.>","b"]}"#,
            r#"{"name":"S","subjects":["a.>","c"]}"#,
            r#"{"name":"T"}"#,
            r#"{"name":"M","mirror":{"name":"S"}}"#,
            r#"{"name":"U","subjects":["u"],"future":1}"#,
            r#"{"name":"#,
        ];
        let memo = StreamSubjects::default();
        let visits = texts.iter().chain(texts.iter().rev()).chain(&texts);
        for text in visits {
            let parsed =
                StreamConfig::decode_at(text.as_bytes(), API_LEVEL).ok().map(|d| d.into_config().normalized().subjects);
            let remembered = memo.with(text.as_bytes(), 100, |s| s.map(<[String]>::to_vec));
            assert_eq!(remembered, parsed, "{text}");
        }
        assert_eq!(memo.len(), texts.len(), "each config parsed once");
        assert_eq!(memo.clone().len(), 0, "a clone starts empty");
        memo.with(b"{}", texts.len(), |_| ());
        assert_eq!(memo.len(), 1, "at the bound, the memo starts over");
    }
}
