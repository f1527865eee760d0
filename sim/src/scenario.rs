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
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::disk::Corruption;
use crate::net::{LinkProfile, NodeIndex};

/// Absurd input is refused, not simulated.
pub const SERVERS_MAX: u32 = 15;
pub const STEPS_MAX: usize = 20_000;
pub const DURATION_MS_MAX: u64 = 3_600_000;
pub const LATENCY_US_MAX: u64 = 10_000_000;
pub const CLOCK_JUMP_MS_MAX: i64 = 86_400_000;
pub const SLOW_DISK_MS_MAX: u64 = 60_000;

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
/// between a vote and its fsync; these aim there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashPoints {
    pub rate_ppm: u32,
    pub restart_after_ms: u64,
    pub until_ms: u64,
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
        }
    }

    /// Every node index the action names, with the field that names it.
    fn nodes(&self) -> Vec<(&'static str, NodeIndex)> {
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
            Action::Expect { .. } | Action::HealNetwork {} | Action::SetNetwork { .. } | Action::HealAll {} => vec![],
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

/// A bad scenario file, with the place.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ScenarioError {
    pub file: String,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    pub field: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    servers: toml::Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario<K> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    sut: Option<String>,
    #[serde(default)]
    description: String,
    /// TOML integers are signed; seeds of 2^63 and above are written as negative numbers.
    #[serde(default)]
    seed: i64,
    duration_ms: toml::Spanned<u64>,
    cluster: RawCluster,
    #[serde(default)]
    network: Option<toml::Spanned<LinkProfile>>,
    #[serde(default)]
    disk: DiskProfile,
    #[serde(default)]
    crash_points: Option<toml::Spanned<CrashPoints>>,
    #[serde(default)]
    clock: Vec<toml::Spanned<ClockSpec>>,
    #[serde(default)]
    bugs: Vec<String>,
    #[serde(default)]
    liveness: bool,
    #[serde(default)]
    expect: Option<Verdict>,
    #[serde(default)]
    expect_violation: Option<String>,
    #[serde(default)]
    system: Option<K>,
    #[serde(default)]
    step: Vec<toml::Spanned<toml::Table>>,
}

fn line_at(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The line, inside `span`, where `key = ...` is written; the span's first line otherwise.
fn line_of_key(src: &str, span: &Range<usize>, key: &str) -> usize {
    let start_line = line_at(src, span.start);
    let text = &src[span.start.min(src.len())..span.end.min(src.len())];
    for (i, l) in text.lines().enumerate() {
        let l = l.trim_start();
        if let Some(rest) = l.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return start_line + i;
            }
        }
    }
    start_line
}

/// The field a serde message is about, when it names one (`unknown field `x``, `missing field `x``).
fn field_in_message(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    backticked(message)
}

fn backticked(text: &str) -> Option<String> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(text[start..start + len].to_string())
}

/// toml's value deserializer ends nested errors with "in `key.path`"; the first key names the field.
fn nested_key(message: &str) -> Option<String> {
    let path = message.lines().rev().find_map(|l| l.trim().strip_prefix("in "))?;
    let key = backticked(path)?;
    Some(key.split('.').next().unwrap_or(&key).to_string())
}

impl<C, E, K> Scenario<C, E, K>
where
    C: DeserializeOwned + Serialize,
    E: DeserializeOwned + Serialize,
    K: DeserializeOwned + Serialize + Default,
{
    /// Read and validate a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: 0,
            field: "file".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&file, &src)
    }

    /// Parse and validate scenario text; `file` names it in errors.
    pub fn parse(file: &str, src: &str) -> Result<Self, ScenarioError> {
        let err = |line: usize, field: &str, message: String| ScenarioError {
            file: file.to_string(),
            line,
            field: field.to_string(),
            message,
        };
        let raw: RawScenario<K> = toml::from_str(src).map_err(|e| {
            let line = e.span().map_or(0, |s| line_at(src, s.start));
            let message = e.message().trim().to_string();
            let message = message.lines().next().unwrap_or_default().to_string();
            let field = field_in_message(&message)
                .or_else(|| {
                    // The line the parser points at starts with the key it was reading.
                    let text = src.lines().nth(line.checked_sub(1)?)?;
                    let key = text.split('=').next()?.trim().trim_matches(|c| c == '[' || c == ']');
                    (!key.is_empty()).then(|| key.to_string())
                })
                .unwrap_or_else(|| "toml".into());
            err(line, &field, message)
        })?;

        let servers = *raw.cluster.servers.get_ref();
        if servers == 0 || servers > SERVERS_MAX {
            let line = line_at(src, raw.cluster.servers.span().start);
            return Err(err(line, "cluster.servers", format!("must be between 1 and {SERVERS_MAX}, got {servers}")));
        }
        let duration_ms = *raw.duration_ms.get_ref();
        if duration_ms == 0 || duration_ms > DURATION_MS_MAX {
            let line = line_at(src, raw.duration_ms.span().start);
            return Err(err(
                line,
                "duration_ms",
                format!("must be between 1 and {DURATION_MS_MAX}, got {duration_ms}"),
            ));
        }
        let network = match raw.network {
            Some(n) => {
                let line = line_at(src, n.span().start);
                check_link(n.get_ref()).map_err(|(f, m)| err(line, &format!("network.{f}"), m))?;
                n.into_inner()
            }
            None => LinkProfile::default(),
        };
        for c in &raw.clock {
            let line = line_at(src, c.span().start);
            let spec = c.get_ref();
            if spec.node >= servers {
                return Err(err(
                    line,
                    "clock.node",
                    format!("node {} does not exist (servers = {servers})", spec.node),
                ));
            }
            if spec.drift_ppm.abs() > crate::clock::DRIFT_PPM_MAX {
                return Err(err(line, "clock.drift_ppm", format!("must be within ±{}", crate::clock::DRIFT_PPM_MAX)));
            }
            if spec.offset_ms.abs() > CLOCK_JUMP_MS_MAX {
                return Err(err(line, "clock.offset_ms", format!("must be within ±{CLOCK_JUMP_MS_MAX}")));
            }
        }
        if raw.step.len() > STEPS_MAX {
            return Err(err(0, "step", format!("{} steps; at most {STEPS_MAX} are allowed", raw.step.len())));
        }

        let mut steps = Vec::with_capacity(raw.step.len());
        let mut previous_at_ms = 0;
        for (i, spanned) in raw.step.into_iter().enumerate() {
            let span = spanned.span();
            let step_line = line_at(src, span.start);
            let mut table = spanned.into_inner();
            let field_err =
                |key: &str, message: String| err(line_of_key(src, &span, key), &format!("step[{i}].{key}"), message);
            let at_ms = match table.remove("at_ms") {
                Some(toml::Value::Integer(v)) if v >= 0 => v as u64,
                Some(other) => return Err(field_err("at_ms", format!("must be a non-negative integer, got {other}"))),
                None => return Err(err(step_line, &format!("step[{i}].at_ms"), "missing field `at_ms`".into())),
            };
            if at_ms > duration_ms {
                return Err(field_err(
                    "at_ms",
                    format!("{at_ms} is after the end of the run (duration_ms = {duration_ms})"),
                ));
            }
            if at_ms < previous_at_ms {
                return Err(field_err(
                    "at_ms",
                    format!(
                        "{at_ms} is earlier than the step before it ({previous_at_ms}); steps must be in time order"
                    ),
                ));
            }
            previous_at_ms = at_ms;
            let name = match table.remove("action") {
                Some(toml::Value::String(s)) => s,
                Some(other) => return Err(field_err("action", format!("must be a string, got {other}"))),
                None => return Err(err(step_line, &format!("step[{i}].action"), "missing field `action`".into())),
            };
            let mut tagged = toml::Table::new();
            tagged.insert(name.clone(), toml::Value::Table(table));
            let action: Action<C, E> = Action::deserialize(toml::Value::Table(tagged)).map_err(|e| {
                let full = e.to_string();
                let message = full.lines().next().unwrap_or_default().trim().to_string();
                // A path ("in `op.kind`") is relative to the action's table: its head is the field.
                let inner_field = nested_key(&full);
                if message.starts_with("unknown variant") && inner_field.is_none() {
                    let what = backticked(&message).unwrap_or_default();
                    return err(
                        line_of_key(src, &span, "action"),
                        &format!("step[{i}].action"),
                        format!("unknown action `{what}`"),
                    );
                }
                match inner_field.or_else(|| field_in_message(&message)) {
                    Some(f) => field_err(&f, message),
                    None => err(step_line, &format!("step[{i}] ({name})"), message),
                }
            })?;
            for (field, node) in action.nodes() {
                if node >= servers {
                    return Err(field_err(field, format!("node {node} does not exist (servers = {servers})")));
                }
            }
            validate_action(&action).map_err(|(f, m)| field_err(f, m))?;
            steps.push(Step { at_ms, action });
        }
        if raw.liveness && !steps.iter().any(|s| matches!(s.action, Action::HealAll {})) {
            return Err(err(
                0,
                "liveness",
                "liveness = true needs a `heal-all` step to start the liveness phase".into(),
            ));
        }
        let crash_points = match raw.crash_points {
            None => None,
            Some(spanned) => {
                let span = spanned.span();
                let cp = spanned.into_inner();
                if cp.rate_ppm > 1_000_000 {
                    let line = line_of_key(src, &span, "rate_ppm");
                    return Err(err(
                        line,
                        "crash_points.rate_ppm",
                        format!("must be at most 1000000, got {}", cp.rate_ppm),
                    ));
                }
                if cp.restart_after_ms > CRASH_POINT_RESTART_MS_MAX {
                    return Err(err(
                        line_of_key(src, &span, "restart_after_ms"),
                        "crash_points.restart_after_ms",
                        format!("must be at most {CRASH_POINT_RESTART_MS_MAX}, got {}", cp.restart_after_ms),
                    ));
                }
                Some(cp)
            }
        };
        Ok(Scenario {
            name: raw.name.unwrap_or_else(|| {
                Path::new(file).file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
            }),
            description: raw.description,
            sut: raw.sut,
            seed: raw.seed as u64,
            servers,
            duration_ms,
            network,
            disk: raw.disk,
            clocks: raw.clock.into_iter().map(|c| c.into_inner()).collect(),
            crash_points,
            bugs: raw.bugs,
            liveness: raw.liveness,
            expect: raw.expect,
            expect_violation: raw.expect_violation,
            system: raw.system.unwrap_or_default(),
            steps,
        })
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

fn check_link(p: &LinkProfile) -> Result<(), (&'static str, String)> {
    if p.loss_ppm > 1_000_000 {
        return Err(("loss_ppm", format!("must be at most 1000000 (parts per million), got {}", p.loss_ppm)));
    }
    if p.duplicate_ppm > 1_000_000 {
        return Err(("duplicate_ppm", format!("must be at most 1000000 (parts per million), got {}", p.duplicate_ppm)));
    }
    if p.latency_min_us > LATENCY_US_MAX {
        return Err(("latency_min_us", format!("must be at most {LATENCY_US_MAX}, got {}", p.latency_min_us)));
    }
    if p.latency_mean_us > LATENCY_US_MAX {
        return Err(("latency_mean_us", format!("must be at most {LATENCY_US_MAX}, got {}", p.latency_mean_us)));
    }
    Ok(())
}

fn validate_action<C, E>(action: &Action<C, E>) -> Result<(), (&'static str, String)> {
    match action {
        Action::SetNetwork { profile } | Action::SetLink { profile, .. } => check_link(profile),
        Action::ClockJump { by_ms, .. } if by_ms.abs() > CLOCK_JUMP_MS_MAX => {
            Err(("by_ms", format!("must be within ±{CLOCK_JUMP_MS_MAX}, got {by_ms}")))
        }
        Action::ClockDrift { ppm, .. } if ppm.abs() > crate::clock::DRIFT_PPM_MAX => {
            Err(("ppm", format!("must be within ±{}, got {ppm}", crate::clock::DRIFT_PPM_MAX)))
        }
        Action::SlowDisk { extra_ms, .. } if *extra_ms > SLOW_DISK_MS_MAX => {
            Err(("extra_ms", format!("must be at most {SLOW_DISK_MS_MAX}, got {extra_ms}")))
        }
        Action::Partition { groups } if groups.len() < 2 => {
            Err(("groups", "a partition needs at least two groups".to_string()))
        }
        Action::Corrupt { kind, .. } | Action::LostFsync { kind, .. } | Action::NoSpace { kind, .. }
            if kind.is_empty() || kind.contains('/') =>
        {
            Err(("kind", format!("a file kind is one path segment, got {kind:?}")))
        }
        _ => Ok(()),
    }
}
