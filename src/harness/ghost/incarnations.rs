//! Which incarnation each asset group was committed for (issue 17 item 5). Group names are
//! unique per creation, so a group belongs to the incarnation whose assignment first named it,
//! and to no other: a local stream or consumer that runs in a group of another incarnation, a
//! consumer of an older stream incarnation kept under a re-created stream, or a store carried
//! across incarnations is old state that a new incarnation must not start with.

use std::collections::BTreeMap;

use crate::meta::{ConsumerKey, MetaState, StreamAssignment, StreamKey};

/// How many created times one group may be committed with: an idempotent re-create keeps its
/// group under a new created time (S13), and each does so once per create request.
const CREATED_PER_GROUP_MAX: usize = 64;

/// A consumer incarnation, with the created time of the stream incarnation it was created in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerIncarnation {
    pub key: ConsumerKey,
    pub created_ms: u64,
    pub stream_created_ms: u64,
}

/// Every asset group the committed meta state ever named, with the incarnations it named it
/// for (usually one).
#[derive(Debug, Default)]
pub struct IncarnationBook {
    streams: BTreeMap<String, (StreamKey, Vec<u64>)>,
    consumers: BTreeMap<String, Vec<ConsumerIncarnation>>,
}

/// What the book says of a local asset's group.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The group was committed for this incarnation.
    Same,
    /// No committed assignment named the group (the oracle may have stopped following).
    Unknown,
    /// The group belongs to another incarnation, described.
    Other(String),
}

impl IncarnationBook {
    /// Note the groups `sa` and its consumers name, as committed.
    pub fn note_stream(&mut self, sa: &StreamAssignment) {
        let (key, created) = self.streams.entry(sa.group.name.clone()).or_insert_with(|| (sa.key(), Vec::new()));
        // A group is never reused for another stream (its name is unique per creation).
        if *key == sa.key() && !created.contains(&sa.created_ms) && created.len() < CREATED_PER_GROUP_MAX {
            created.push(sa.created_ms);
        }
        for ca in sa.consumers.values() {
            let incarnation =
                ConsumerIncarnation { key: ca.key(), created_ms: ca.created_ms, stream_created_ms: sa.created_ms };
            let known = self.consumers.entry(ca.group.name.clone()).or_default();
            if !known.contains(&incarnation) && known.len() < CREATED_PER_GROUP_MAX {
                known.push(incarnation);
            }
        }
    }

    /// Note every group of `key`'s assignment in `state`, if it has one.
    pub fn note_key(&mut self, state: &MetaState, key: &StreamKey) {
        if let Some(sa) = state.stream(key) {
            self.note_stream(sa);
        }
    }

    /// Whether `group` was committed for incarnation `created_ms` of stream `key`.
    pub fn stream_group(&self, group: &str, key: &StreamKey, created_ms: u64) -> Verdict {
        match self.streams.get(group) {
            None => Verdict::Unknown,
            Some((k, created)) if k == key && created.contains(&created_ms) => Verdict::Same,
            Some((k, created)) => Verdict::Other(format!("stream {k} created {created:?}")),
        }
    }

    /// Whether `group` was committed for incarnation `created_ms` of consumer `key`, created in
    /// the stream incarnation `stream_created_ms`.
    pub fn consumer_group(&self, group: &str, key: &ConsumerKey, created_ms: u64, stream_created_ms: u64) -> Verdict {
        let Some(known) = self.consumers.get(group) else { return Verdict::Unknown };
        let same = |c: &ConsumerIncarnation| {
            c.key == *key && c.created_ms == created_ms && c.stream_created_ms == stream_created_ms
        };
        if known.iter().any(same) {
            return Verdict::Same;
        }
        let named: Vec<String> = known
            .iter()
            .map(|c| format!("consumer {} created {} in stream created {}", c.key, c.created_ms, c.stream_created_ms))
            .collect();
        Verdict::Other(named.join(", "))
    }

    /// Whether a carry from group `from` into group `to` stays within one incarnation of `key`:
    /// [`Verdict::Unknown`] when the book lacks either group.
    pub fn carry(&self, key: &StreamKey, from: &str, to: &str) -> Verdict {
        match (self.streams.get(from), self.streams.get(to)) {
            (Some((k1, c1)), Some((k2, c2))) if k1 == key && k2 == key && c1.iter().any(|c| c2.contains(c)) => {
                Verdict::Same
            }
            (Some((k1, c1)), Some(_)) => Verdict::Other(format!("stream {k1} created {c1:?}")),
            _ => Verdict::Unknown,
        }
    }
}

/// Stream A:S created at `created_ms` in group `group_name`, with consumer C (created, group) if
/// given: the fixture of this book's tests and of the check that reads it.
#[cfg(test)]
pub fn test_stream(created_ms: u64, group_name: &str, consumer: Option<(u64, &str)>) -> StreamAssignment {
    use crate::meta::{ConsumerAssignment, RaftGroup};
    let group = |name: &str| RaftGroup { name: name.into(), peers: vec![0], preferred: None, joiners: vec![] };
    let mut consumers = BTreeMap::new();
    if let Some((c_created, c_group)) = consumer {
        let ca = ConsumerAssignment {
            account: "A".into(),
            stream: "S".into(),
            name: "C".into(),
            created_ms: c_created,
            config_json: b"{}".to_vec(),
            group: group(c_group),
        };
        consumers.insert("C".to_string(), Box::new(ca));
    }
    StreamAssignment {
        account: "A".into(),
        name: "S".into(),
        created_ms,
        config_json: br#"{"name":"S"}"#.to_vec(),
        group: group(group_name),
        sync: String::new(),
        consumers,
    }
}

#[cfg(test)]
mod tests {
    use super::{test_stream as stream, IncarnationBook, Verdict};
    use crate::meta::StreamKey;

    /// A group answers for the incarnation it was committed for and no other; a consumer also
    /// for the stream incarnation it was created in.
    #[test]
    fn a_group_belongs_to_the_incarnation_that_named_it() {
        let mut book = IncarnationBook::default();
        let key = StreamKey::new("A", "S");
        book.note_stream(&stream(100, "S-R1-old", Some((110, "C-R1-old"))));
        book.note_stream(&stream(200, "S-R3-new", Some((210, "C-R1-new"))));
        assert_eq!(book.stream_group("S-R1-old", &key, 100), Verdict::Same);
        assert_eq!(book.stream_group("S-R3-new", &key, 200), Verdict::Same);
        assert!(matches!(book.stream_group("S-R1-old", &key, 200), Verdict::Other(_)), "the new one in an old group");
        assert!(matches!(book.stream_group("S-R3-new", &StreamKey::new("A", "T"), 200), Verdict::Other(_)));
        assert_eq!(book.stream_group("S-R1-none", &key, 100), Verdict::Unknown);

        let consumer = crate::meta::ConsumerKey::new("A", "S", "C");
        assert_eq!(book.consumer_group("C-R1-old", &consumer, 110, 100), Verdict::Same);
        assert!(matches!(book.consumer_group("C-R1-old", &consumer, 110, 200), Verdict::Other(_)), "under the new S");
        assert!(matches!(book.consumer_group("C-R1-old", &consumer, 210, 200), Verdict::Other(_)));

        // An idempotent re-create keeps its group under a new created time; a scale keeps the
        // created time under a new group: both stay one incarnation's.
        book.note_stream(&stream(300, "S-R3-new", None));
        assert_eq!(book.stream_group("S-R3-new", &key, 300), Verdict::Same);
        book.note_stream(&stream(300, "S-R1-scaled", None));
        assert_eq!(book.carry(&key, "S-R3-new", "S-R1-scaled"), Verdict::Same);
        assert!(matches!(book.carry(&key, "S-R1-old", "S-R3-new"), Verdict::Other(_)), "100 and 200/300 never met");
        assert_eq!(book.carry(&key, "S-R1-old", "S-R1-none"), Verdict::Unknown);
    }
}
