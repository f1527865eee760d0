//! Scenario files: a cluster, its network and disk profile, and a timeline of steps.
//!
//! ```toml
//! name = "crash and restart"
//! seed = 7
//! duration_ms = 10000
//! expect = "pass"
//! [cluster]
//! servers = 3
//! [[step]]
//! at_ms = 1000
//! action = "crash"
//! node = 2
//! ```
//!
//! Client operations, expectations and the `[system]` table belong to the system under test
//! and are parsed with its types; the rest is generic. Every error names the file, the line
//! and the field.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::disk::Corruption;
use crate::net::{LinkProfile, NodeIndex};

mod builder;
mod checks;
mod locate;
mod parse;
mod source;
mod system_checks;
pub mod words;

pub use builder::{Outcome, RunVerdict, ScenarioBuilder, BUILT_FILE};
pub use checks::first_repeated;
pub use locate::{escape_control, excerpt};
pub use source::{read_source, SCENARIO_BYTES_MAX};
pub use system_checks::{load_for, parse_for, Loaded, CLIENT_MESSAGES_MAX, LIVENESS_HEALED_MS_MIN};

/// Absurd input is refused, not simulated.
pub const SERVERS_MAX: u32 = 15;
pub const STEPS_MAX: usize = 20_000;
pub const DURATION_MS_MAX: u64 = 3_600_000;
pub const LATENCY_US_MAX: u64 = 10_000_000;
pub const CLOCK_JUMP_MS_MAX: i64 = 86_400_000;
pub const SLOW_DISK_MS_MAX: u64 = 60_000;
/// fsync latency at most (it is scaled to nanoseconds, and 10 s is already absurd).
pub const FSYNC_LATENCY_US_MAX: u64 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        })
    }
}

/// Disk behaviour shared by every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskProfile {
    #[serde(default = "default_fsync_latency_us")]
    pub fsync_latency_us: u64,
}

fn default_fsync_latency_us() -> u64 {
    1_000
}

impl Default for DiskProfile {
    fn default() -> Self {
        DiskProfile { fsync_latency_us: default_fsync_latency_us() }
    }
}

/// Crash points (FoundationDB's BUGGIFY): the system marks risky moments with
/// `Env::crash_point`, and at each one the node crashes with probability `rate_ppm` per
/// million, until `until_ms`, coming back `restart_after_ms` later. Random crashes rarely land
/// between a vote and its fsync; these aim there. `power_loss_percent` of those crashes are
/// power losses instead (half of them tearing the last write): a process crash keeps what
/// the node wrote but had not synced, a power loss at the same moment tests the sync order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashPoints {
    pub rate_ppm: u32,
    pub restart_after_ms: u64,
    pub until_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub power_loss_percent: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Crash-point restarts come back within this.
pub const CRASH_POINT_RESTART_MS_MAX: u64 = 60_000;

/// Starting offset and drift of one node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    pub node: NodeIndex,
    #[serde(default)]
    pub offset_ms: i64,
    #[serde(default)]
    pub drift_ppm: i64,
}

/// What a step does. Client operations and expectations carry the system's own types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action<C, E> {
    /// A client request, sent to `node` (or to a node drawn from the seed).
    Client {
        node: Option<NodeIndex>,
        op: C,
    },
    /// A check of the system's state at this moment.
    Expect {
        check: E,
    },
    /// Cut every link between groups, both ways.
    Partition {
        groups: Vec<Vec<NodeIndex>>,
    },
    /// Cut links from `from` to `to` only.
    PartitionOneWay {
        from: Vec<NodeIndex>,
        to: Vec<NodeIndex>,
    },
    Isolate {
        node: NodeIndex,
    },
    /// Remove every partition (clogs stay).
    HealNetwork {},
    /// Hold all traffic to and from a node until unclogged.
    Clog {
        node: NodeIndex,
    },
    Unclog {
        node: NodeIndex,
    },
    ClogLink {
        from: NodeIndex,
        to: NodeIndex,
    },
    UnclogLink {
        from: NodeIndex,
        to: NodeIndex,
    },
    /// Change the default link profile (loss, duplication, latency).
    SetNetwork {
        profile: LinkProfile,
    },
    /// Override one directed link's profile.
    SetLink {
        from: NodeIndex,
        to: NodeIndex,
        profile: LinkProfile,
    },
    /// Process crash: memory gone, OS cache kept.
    Crash {
        node: NodeIndex,
    },
    /// Start a crashed (or running: it is crashed first) node against what its disk holds.
    Restart {
        node: NodeIndex,
    },
    /// Power loss: memory and unsynced writes gone; `torn` tears the last write.
    PowerLoss {
        node: NodeIndex,
        #[serde(default)]
        torn: bool,
    },
    Pause {
        node: NodeIndex,
    },
    Resume {
        node: NodeIndex,
    },
    /// Damage the durable files of `kind` on `node`.
    Corrupt {
        node: NodeIndex,
        kind: String,
        corruption: Corruption,
    },
    /// fsync of files of `kind` reports success but persists nothing (`on = false` ends it).
    LostFsync {
        node: NodeIndex,
        kind: String,
        on: bool,
    },
    /// Writes of files of `kind` fail with ENOSPC.
    NoSpace {
        node: NodeIndex,
        kind: String,
        on: bool,
    },
    /// Every fsync on `node` takes `extra_ms` longer (0 ends it).
    SlowDisk {
        node: NodeIndex,
        extra_ms: u64,
    },
    ClockJump {
        node: NodeIndex,
        by_ms: i64,
    },
    ClockDrift {
        node: NodeIndex,
        ppm: i64,
    },
    /// End every fault: heal and unclog the network, reset link profiles to the scenario's
    /// latencies with no loss or duplication,
    /// clear disk faults, resume paused and restart crashed nodes. Starts the liveness phase.
    HealAll {},
    /// From here on, the world draws from a fresh random stream seeded with `seed` (message
    /// fates and latencies, the nodes' random choices). Everything before is the run as it
    /// was: guided fuzzing branches a run this way, keeping a prefix that reached something
    /// new and exploring what may follow it. Kept last: a variant's index is part of every
    /// step's digest, hence of every trace hash.
    Reseed {
        seed: u64,
    },
    /// Graceful stop (NATS `Shutdown`): the node runs its shutdown handler (hands over what it
    /// leads, flushes its files), its last messages leave, then the process stops. Kept after
    /// `Reseed` for the same reason.
    Shutdown {
        node: NodeIndex,
    },
}

impl<C, E> Action<C, E> {
    /// The action's name as written in a file.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Client { .. } => "client",
            Action::Expect { .. } => "expect",
            Action::Partition { .. } => "partition",
            Action::PartitionOneWay { .. } => "partition-one-way",
            Action::Isolate { .. } => "isolate",
            Action::HealNetwork {} => "heal-network",
            Action::Clog { .. } => "clog",
            Action::Unclog { .. } => "unclog",
            Action::ClogLink { .. } => "clog-link",
            Action::UnclogLink { .. } => "unclog-link",
            Action::SetNetwork { .. } => "set-network",
            Action::SetLink { .. } => "set-link",
            Action::Crash { .. } => "crash",
            Action::Restart { .. } => "restart",
            Action::PowerLoss { .. } => "power-loss",
            Action::Pause { .. } => "pause",
            Action::Resume { .. } => "resume",
            Action::Corrupt { .. } => "corrupt",
            Action::LostFsync { .. } => "lost-fsync",
            Action::NoSpace { .. } => "no-space",
            Action::SlowDisk { .. } => "slow-disk",
            Action::ClockJump { .. } => "clock-jump",
            Action::ClockDrift { .. } => "clock-drift",
            Action::HealAll {} => "heal-all",
            Action::Reseed { .. } => "reseed",
            Action::Shutdown { .. } => "shutdown",
        }
    }

    /// Every node index the action names, with the field that names it.
    pub fn nodes(&self) -> Vec<(&'static str, NodeIndex)> {
        let one = |f, n| vec![(f, n)];
        match self {
            Action::Client { node, .. } => node.map(|n| vec![("node", n)]).unwrap_or_default(),
            Action::Partition { groups } => groups.iter().flatten().map(|&n| ("groups", n)).collect(),
            Action::PartitionOneWay { from, to } => {
                from.iter().map(|&n| ("from", n)).chain(to.iter().map(|&n| ("to", n))).collect()
            }
            Action::ClogLink { from, to } | Action::UnclogLink { from, to } | Action::SetLink { from, to, .. } => {
                vec![("from", *from), ("to", *to)]
            }
            Action::Isolate { node }
            | Action::Clog { node }
            | Action::Unclog { node }
            | Action::Crash { node }
            | Action::Shutdown { node }
            | Action::Restart { node }
            | Action::PowerLoss { node, .. }
            | Action::Pause { node }
            | Action::Resume { node }
            | Action::Corrupt { node, .. }
            | Action::LostFsync { node, .. }
            | Action::NoSpace { node, .. }
            | Action::SlowDisk { node, .. }
            | Action::ClockJump { node, .. }
            | Action::ClockDrift { node, .. } => one("node", *node),
            Action::Expect { .. }
            | Action::HealNetwork {}
            | Action::SetNetwork { .. }
            | Action::HealAll {}
            | Action::Reseed { .. } => vec![],
        }
    }
}

/// A step in words for the event log (`partition [2,3,4] | [0,1]`, `power-loss n4 torn`,
/// `client at n4: ...` with the system's own words for the op); the trace's digest is the
/// step's own, whatever the wording.
impl<C: fmt::Display, E: Serialize> fmt::Display for Action<C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Action::Client { node: Some(node), op } => write!(f, "client at n{node}: {op}"),
            Action::Client { node: None, op } => write!(f, "client: {op}"),
            Action::Expect { check } => write!(f, "expect {}", words::fields(check)),
            Action::Partition { groups } => {
                let groups: Vec<String> = groups.iter().map(|g| words::nodes(g)).collect();
                write!(f, "{name} {}", groups.join(" | "))
            }
            Action::PartitionOneWay { from, to } => {
                write!(f, "{name} {} -> {}", words::nodes(from), words::nodes(to))
            }
            Action::ClogLink { from, to } | Action::UnclogLink { from, to } => write!(f, "{name} n{from} -> n{to}"),
            Action::SetNetwork { profile } => write!(f, "{name} {}", words::link(profile)),
            Action::SetLink { from, to, profile } => write!(f, "{name} n{from} -> n{to} {}", words::link(profile)),
            Action::PowerLoss { node, torn } => write!(f, "{name} n{node}{}", if *torn { " torn" } else { "" }),
            Action::Corrupt { node, kind, corruption } => write!(f, "{name} n{node} {kind} {}", corruption.name()),
            Action::LostFsync { node, kind, on } | Action::NoSpace { node, kind, on } => {
                write!(f, "{name} n{node} {kind} {}", if *on { "on" } else { "off" })
            }
            Action::SlowDisk { node, extra_ms: 0 } => write!(f, "{name} n{node} off"),
            Action::SlowDisk { node, extra_ms } => write!(f, "{name} n{node} +{extra_ms}ms"),
            Action::ClockJump { node, by_ms } => write!(f, "{name} n{node} {by_ms:+}ms"),
            Action::ClockDrift { node, ppm } => write!(f, "{name} n{node} {ppm:+}ppm"),
            Action::Reseed { seed } => write!(f, "{name} {seed}"),
            Action::HealNetwork {} | Action::HealAll {} => write!(f, "{name}"),
            Action::Isolate { node }
            | Action::Clog { node }
            | Action::Unclog { node }
            | Action::Crash { node }
            | Action::Restart { node }
            | Action::Pause { node }
            | Action::Resume { node }
            | Action::Shutdown { node } => write!(f, "{name} n{node}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step<C, E> {
    pub at_ms: u64,
    pub action: Action<C, E>,
}

/// A validated scenario. `C`, `E` and `K` are the system's client operation, expectation and
/// configuration types.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario<C, E, K> {
    pub name: String,
    /// Which system under test the file is for, when the tool drives several.
    pub sut: Option<String>,
    pub description: String,
    pub seed: u64,
    pub servers: u32,
    pub duration_ms: u64,
    pub network: LinkProfile,
    pub disk: DiskProfile,
    pub clocks: Vec<ClockSpec>,
    pub crash_points: Option<CrashPoints>,
    /// Bug switches this scenario runs with (regression scenarios that show a check bites).
    pub bugs: Vec<String>,
    /// Check liveness at the end (the timeline must contain a `heal-all`).
    pub liveness: bool,
    pub expect: Option<Verdict>,
    /// A substring of the violation a failing scenario must report.
    pub expect_violation: Option<String>,
    pub system: K,
    pub steps: Vec<Step<C, E>>,
}

/// A bad scenario file, with the place. It displays as `file:line: field: message`, with
/// control characters escaped: fields and messages quote the file's own text.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}:{line}: {}: {}", escape_control(file), escape_control(field), escape_control(message))]
pub struct ScenarioError {
    pub file: String,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl<C, E, K> Scenario<C, E, K>
where
    C: DeserializeOwned + Serialize,
    E: DeserializeOwned + Serialize,
    K: DeserializeOwned + Serialize + Default,
{
    /// Read and validate a scenario file with the engine's checks only; [`load_for`] adds the
    /// checks of the system under test.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let src = read_source(path)?;
        Self::parse(&path.display().to_string(), &src)
    }

    /// Parse and validate scenario text with the engine's checks only; `file` names it in
    /// errors. [`parse_for`] adds the checks of the system under test.
    pub fn parse(file: &str, text: &str) -> Result<Self, ScenarioError> {
        parse::located(file, text).map(|(scenario, _)| scenario)
    }

    /// The scenario as a TOML document that `parse` reads back to an equal scenario.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let mut doc = toml::Table::new();
        let mut put = |k: &str, v: toml::Value| {
            doc.insert(k.to_string(), v);
        };
        put("name", self.name.clone().into());
        if let Some(sut) = &self.sut {
            put("sut", sut.clone().into());
        }
        if !self.description.is_empty() {
            put("description", self.description.clone().into());
        }
        // TOML integers are i64: seeds above i64::MAX are written as their two's complement.
        put("seed", toml::Value::Integer(self.seed as i64));
        put("duration_ms", toml::Value::Integer(self.duration_ms as i64));
        put("liveness", self.liveness.into());
        if let Some(v) = self.expect {
            put("expect", v.to_string().into());
        }
        if let Some(v) = &self.expect_violation {
            put("expect_violation", v.clone().into());
        }
        if !self.bugs.is_empty() {
            put("bugs", toml::Value::try_from(&self.bugs)?);
        }
        let mut cluster = toml::Table::new();
        cluster.insert("servers".into(), toml::Value::Integer(i64::from(self.servers)));
        put("cluster", cluster.into());
        put("network", toml::Value::try_from(self.network)?);
        put("disk", toml::Value::try_from(self.disk)?);
        if !self.clocks.is_empty() {
            put("clock", toml::Value::try_from(&self.clocks)?);
        }
        if let Some(cp) = &self.crash_points {
            put("crash_points", toml::Value::try_from(cp)?);
        }
        put("system", toml::Value::try_from(&self.system)?);
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let mut table = toml::Table::new();
            table.insert("at_ms".into(), toml::Value::Integer(step.at_ms as i64));
            table.insert("action".into(), step.action.name().into());
            if let toml::Value::Table(tagged) = toml::Value::try_from(&step.action)? {
                for (_, fields) in tagged {
                    if let toml::Value::Table(fields) = fields {
                        table.extend(fields);
                    }
                }
            }
            steps.push(toml::Value::Table(table));
        }
        doc.insert("step".into(), toml::Value::Array(steps));
        toml::to_string(&doc)
    }
}
