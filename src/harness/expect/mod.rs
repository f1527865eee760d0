//! Scenario expectations (`action = "expect"`) about the meta system: what a scenario file
//! may ask of a server at a moment, and how each is judged ([`holds`]).

mod holds;

pub use holds::expect_holds;

use serde::{Deserialize, Serialize};
use sim::NodeIndex;

use crate::raft::Index;

fn default_account() -> String {
    "A".to_string()
}

/// Scenario expectations about the meta group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MetaExpect {
    /// `leader()` on `node` (true only past the apply barrier).
    Leader {
        node: NodeIndex,
        is: bool,
    },
    /// The quorum `node`'s meta group counts against (after any cold-boot size adjustment
    /// or rescue).
    Quorum {
        node: NodeIndex,
        equals: usize,
    },
    /// `node`'s meta group counts quorums against a rescued quorum (`Some`), or its own.
    Rescued {
        node: NodeIndex,
        quorum: Option<usize>,
    },
    /// Exactly one running server is leader, and every running member names it.
    OneLeader {},
    /// Since heal, at least `at_least` leaders (of any raft group) handed over and each saw
    /// its next leader within `within_ms` (issue 17 item 6: stepdown availability).
    HandOvers {
        at_least: usize,
        within_ms: u64,
    },
    /// `leaderless()` on `node`.
    Leaderless {
        node: NodeIndex,
        is: bool,
    },
    /// `group_leader()` on `node`.
    GroupLeader {
        node: NodeIndex,
        equals: Option<NodeIndex>,
    },
    /// `current()` on `node`.
    Current {
        node: NodeIndex,
        is: bool,
    },
    /// `healthy()` on `node`.
    Healthy {
        node: NodeIndex,
        is: bool,
    },
    HadPreviousLeader {
        node: NodeIndex,
        is: bool,
    },
    /// `node` has applied at least `index`.
    AppliedAtLeast {
        node: NodeIndex,
        index: Index,
    },
    /// `node` holds this membership.
    Peers {
        node: NodeIndex,
        equals: Vec<NodeIndex>,
    },
    /// `node` refused to start its meta group (e.g. a corrupt snapshot or log).
    MetaRefused {
        node: NodeIndex,
        is: bool,
    },
    /// `node` has installed at least `count` snapshots sent by a leader.
    SnapshotsInstalled {
        node: NodeIndex,
        at_least: u64,
    },
    /// `node` has never been leader in this run.
    NeverLeader {
        node: NodeIndex,
    },
    /// At least `count` entries were applied somewhere (the oracle's committed log).
    CommittedAtLeast {
        count: u64,
    },
    /// Applied stream assignments on `node`.
    Streams {
        node: NodeIndex,
        count: usize,
    },
    /// The applied assignment of stream `name` on `node`: present or not, and with how many
    /// peers when given.
    Stream {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        name: String,
        exists: bool,
        #[serde(default)]
        peers: Option<usize>,
        /// Every peer is in this cluster (`[system] clusters`).
        #[serde(default)]
        in_cluster: Option<String>,
        /// The assignment has a sync subject (false: an old server's, not yet repaired).
        #[serde(default)]
        has_sync: Option<bool>,
        /// Exactly these peers (sorted).
        #[serde(default)]
        on: Option<Vec<NodeIndex>>,
        /// The raft membership of the stream's group as `node` runs it (sorted).
        #[serde(default)]
        group_peers: Option<Vec<NodeIndex>>,
        /// Config fields of the applied assignment.
        #[serde(default)]
        sealed: Option<bool>,
        #[serde(default)]
        subjects: Option<Vec<String>>,
        #[serde(default)]
        max_consumers: Option<u32>,
        /// The created time the assignment carries (the meta leader's wall clock, ms), kept by
        /// updates and remaps, new for a re-created stream.
        #[serde(default)]
        created_ms: Option<u64>,
    },
    /// The applied assignment of consumer `name` of `stream` on `node`: present or not, and
    /// with how many peers, which, and which raft membership when given.
    Consumer {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        name: String,
        exists: bool,
        #[serde(default)]
        peers: Option<usize>,
        /// Exactly these peers (sorted).
        #[serde(default)]
        on: Option<Vec<NodeIndex>>,
        /// The raft membership of the consumer's group as `node` runs it (sorted).
        #[serde(default)]
        group_peers: Option<Vec<NodeIndex>>,
        /// The created time the assignment carries (ms).
        #[serde(default)]
        created_ms: Option<u64>,
    },
    /// Applied consumers of `stream` on `node`.
    Consumers {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        count: usize,
    },
    /// Direct consumers (created for mirrors, never assigned) `node` runs on its local
    /// `stream` (§11 #26).
    DirectConsumers {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        count: usize,
    },
    /// Streams `node` runs locally.
    LocalStreams {
        node: NodeIndex,
        count: usize,
    },
    /// Raft groups `node` runs, the meta group included.
    Groups {
        node: NodeIndex,
        count: usize,
    },
    /// Whether `node` holds stream `name` locally (running or stopped): restored from disk,
    /// created by an assignment, or an orphan not yet removed.
    LocalStream {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        name: String,
        exists: bool,
    },
    /// Answers the clients of `node` received (successes and errors).
    Answers {
        node: NodeIndex,
        #[serde(default)]
        at_least: u64,
        /// And no more than this many.
        #[serde(default)]
        at_most: Option<u64>,
    },
    /// Some successful answer to a client of `node` contained `contains`.
    AnswerOk {
        node: NodeIndex,
        contains: String,
    },
    /// No answer to a client of `node` was an error.
    NoErrorAnswers {
        node: NodeIndex,
    },
    /// Some answer to a client of `node` was an error containing `contains`.
    AnswerError {
        node: NodeIndex,
        contains: String,
    },
    /// `node`'s meta layer stopped on an apply error (sticky write error, §2.8).
    ApplyError {
        node: NodeIndex,
        is: bool,
    },
    /// Requests of `node`'s clients that timed out.
    Timeouts {
        node: NodeIndex,
        at_least: u64,
    },
    /// `node` judges stream `stream` (or its consumer `consumer`) unsupported (§7), with a
    /// reason containing `reason_contains` when given.
    Unsupported {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        stream: String,
        #[serde(default)]
        consumer: Option<String>,
        is: bool,
        #[serde(default)]
        reason_contains: Option<String>,
    },
    /// Messages `node` holds for stream `name` (applied in its group for R>1, stored for R1).
    Messages {
        node: NodeIndex,
        #[serde(default = "default_account")]
        account: String,
        name: String,
        equals: u64,
    },
    /// healthz on `node` (§6): `ok = true`, or `error_contains = "..."`; `meta_only = true`
    /// checks the meta layer only.
    Healthz(HealthzExpect),
    /// The health of stream `name` on `node`, as healthz checks it.
    StreamHealth(StreamHealthExpect),
    /// The health of consumer `name` of `stream` on `node`, as healthz checks it.
    ConsumerHealth(ConsumerHealthExpect),
}

/// What a health check should answer. A scenario gives exactly one of `ok = true` and
/// `error_contains`, checked when the file loads: a check that can pass either way is a typo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthWant {
    Ok,
    ErrorContains(String),
}

impl HealthWant {
    fn from_fields(ok: Option<bool>, error_contains: Option<String>) -> Result<Self, String> {
        match (ok, error_contains) {
            (Some(true), None) => Ok(HealthWant::Ok),
            (None, Some(text)) => Ok(HealthWant::ErrorContains(text)),
            (Some(false), None) => {
                Err("`ok = false` is not a check: say which error with `error_contains = \"...\"`".into())
            }
            (Some(_), Some(_)) => Err("give either `ok = true` or `error_contains`, not both".into()),
            (None, None) => Err("missing `ok = true` or `error_contains = \"...\"`".into()),
        }
    }

    fn fields(&self) -> (Option<bool>, Option<String>) {
        match self {
            HealthWant::Ok => (Some(true), None),
            HealthWant::ErrorContains(text) => (None, Some(text.clone())),
        }
    }

    /// Whether `actual` is what is wanted; the error shows the actual answer.
    pub fn check(&self, actual: &Result<(), String>) -> Result<(), String> {
        match (self, actual) {
            (HealthWant::Ok, Ok(())) => Ok(()),
            (HealthWant::ErrorContains(text), Err(e)) if e.contains(text.as_str()) => Ok(()),
            (HealthWant::Ok, Err(e)) => Err(format!("is error {e:?}, expected ok")),
            (HealthWant::ErrorContains(text), Ok(())) => Err(format!("is ok, expected an error containing {text:?}")),
            (HealthWant::ErrorContains(text), Err(e)) => {
                Err(format!("is error {e:?}, expected an error containing {text:?}"))
            }
        }
    }
}

/// A `healthz` expectation (see [`MetaExpect::Healthz`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HealthzFields", into = "HealthzFields")]
pub struct HealthzExpect {
    pub node: NodeIndex,
    pub meta_only: bool,
    pub want: HealthWant,
}

/// A `stream-health` expectation (see [`MetaExpect::StreamHealth`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StreamHealthFields", into = "StreamHealthFields")]
pub struct StreamHealthExpect {
    pub node: NodeIndex,
    pub account: String,
    pub name: String,
    pub want: HealthWant,
}

/// A `consumer-health` expectation (see [`MetaExpect::ConsumerHealth`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ConsumerHealthFields", into = "ConsumerHealthFields")]
pub struct ConsumerHealthExpect {
    pub node: NodeIndex,
    pub account: String,
    pub stream: String,
    pub name: String,
    pub want: HealthWant,
}

// The tables as scenario files spell them; `try_from` turns `ok`/`error_contains` into a
// `HealthWant` or a load-time error.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthzFields {
    node: NodeIndex,
    #[serde(default)]
    meta_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_contains: Option<String>,
}

impl TryFrom<HealthzFields> for HealthzExpect {
    type Error = String;
    fn try_from(f: HealthzFields) -> Result<Self, String> {
        let want = HealthWant::from_fields(f.ok, f.error_contains)?;
        Ok(HealthzExpect { node: f.node, meta_only: f.meta_only, want })
    }
}

impl From<HealthzExpect> for HealthzFields {
    fn from(e: HealthzExpect) -> Self {
        let (ok, error_contains) = e.want.fields();
        HealthzFields { node: e.node, meta_only: e.meta_only, ok, error_contains }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamHealthFields {
    node: NodeIndex,
    #[serde(default = "default_account")]
    account: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_contains: Option<String>,
}

impl TryFrom<StreamHealthFields> for StreamHealthExpect {
    type Error = String;
    fn try_from(f: StreamHealthFields) -> Result<Self, String> {
        let want = HealthWant::from_fields(f.ok, f.error_contains)?;
        Ok(StreamHealthExpect { node: f.node, account: f.account, name: f.name, want })
    }
}

impl From<StreamHealthExpect> for StreamHealthFields {
    fn from(e: StreamHealthExpect) -> Self {
        let (ok, error_contains) = e.want.fields();
        StreamHealthFields { node: e.node, account: e.account, name: e.name, ok, error_contains }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerHealthFields {
    node: NodeIndex,
    #[serde(default = "default_account")]
    account: String,
    stream: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_contains: Option<String>,
}

impl TryFrom<ConsumerHealthFields> for ConsumerHealthExpect {
    type Error = String;
    fn try_from(f: ConsumerHealthFields) -> Result<Self, String> {
        let want = HealthWant::from_fields(f.ok, f.error_contains)?;
        Ok(ConsumerHealthExpect { node: f.node, account: f.account, stream: f.stream, name: f.name, want })
    }
}

impl From<ConsumerHealthExpect> for ConsumerHealthFields {
    fn from(e: ConsumerHealthExpect) -> Self {
        let (ok, error_contains) = e.want.fields();
        ConsumerHealthFields { node: e.node, account: e.account, stream: e.stream, name: e.name, ok, error_contains }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MetaExpect, String> {
        toml::from_str::<MetaExpect>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn health_expectations_round_trip_through_toml() {
        for text in [
            "kind = \"healthz\"\nnode = 1\nmeta_only = true\nok = true\n",
            "kind = \"stream-health\"\nnode = 0\naccount = \"A\"\nname = \"S\"\nerror_contains = \"unhealthy\"\n",
            "kind = \"consumer-health\"\nnode = 2\naccount = \"B\"\nstream = \"S\"\nname = \"C\"\nok = true\n",
        ] {
            let expect = parse(text).unwrap();
            let again = parse(&toml::to_string(&expect).unwrap()).unwrap();
            assert_eq!(expect, again, "{text}");
        }
    }

    #[test]
    fn health_expectations_need_exactly_one_answer() {
        let both = parse("kind = \"healthz\"\nnode = 0\nok = true\nerror_contains = \"x\"\n").unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let neither = parse("kind = \"healthz\"\nnode = 0\n").unwrap_err();
        assert!(neither.contains("missing `ok = true`"), "{neither}");
        let not_ok = parse("kind = \"healthz\"\nnode = 0\nok = false\n").unwrap_err();
        assert!(not_ok.contains("not a check"), "{not_ok}");
    }

    #[test]
    fn a_failed_health_check_shows_the_actual_answer() {
        let want = HealthWant::ErrorContains("not running".into());
        assert_eq!(want.check(&Err("meta layer not running".into())), Ok(()));
        assert_eq!(want.check(&Ok(())), Err("is ok, expected an error containing \"not running\"".into()));
        let got = HealthWant::Ok.check(&Err("meta layer still recovering".into())).unwrap_err();
        assert!(got.contains("meta layer still recovering"), "{got}");
    }
}
