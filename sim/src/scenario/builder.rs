//! Scenarios written in Rust: a builder that mirrors the file format, field for field.
//!
//! The builder fills the same [`Scenario`] struct a file parses into, then hands it to the
//! file's own checks (it writes the TOML with [`Scenario::to_toml`] and loads it with
//! [`parse_for`]), so a built scenario is refused exactly where a file saying the same would
//! be, and [`ScenarioBuilder::to_toml`] gives a file that runs with the same trace hash.
//! There is no second parser. The system's types ([`System`]'s client operations,
//! expectations and `[system]` table) are used as they are.

use std::fmt;

use crate::disk::Corruption;
use crate::net::{LinkProfile, NodeIndex};
use crate::node::{ClientOpOf, ConfigOf};
use crate::system::{ExpectOf, ScenarioOf, System};
use crate::world::{RunOptions, RunReport, Violation};

use super::{parse_for, Action, ClockSpec, CrashPoints, DiskProfile, Loaded, Scenario, ScenarioError, Step, Verdict};

/// The file name a built scenario's errors carry.
pub const BUILT_FILE: &str = "<builder>";

/// A scenario under construction, for system `S`. Defaults are those of a file that leaves
/// the field out, except the two a file must give: 3 servers and 10 s.
pub struct ScenarioBuilder<S: System> {
    scenario: ScenarioOf<S>,
}

impl<S: System> Clone for ScenarioBuilder<S> {
    fn clone(&self) -> Self {
        ScenarioBuilder { scenario: self.scenario.clone() }
    }
}

impl<S: System> fmt::Debug for ScenarioBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioBuilder").field("scenario", &self.scenario).finish()
    }
}

/// How a run ended: `fuzz`'s three verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunVerdict {
    Pass,
    Fail,
    /// A panic or stall that a lying disk explains: not a pass.
    Excused,
}

impl fmt::Display for RunVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunVerdict::Pass => "pass",
            RunVerdict::Fail => "fail",
            RunVerdict::Excused => "excused",
        })
    }
}

/// What [`ScenarioBuilder::run`] found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub verdict: RunVerdict,
    /// The trace hash `metasim run` prints (as `{:016x}`, see [`Outcome::trace_hash_hex`]).
    pub trace_hash: u64,
    /// The violated invariant or expectation, with the events before it.
    pub failure: Option<Violation>,
    /// Why the run was excused.
    pub excused: Option<String>,
    /// Whether the run gave the verdict the scenario's `expect` names (and, for `fail`, a
    /// violation containing `expect_violation`); true when it names none.
    pub as_expected: bool,
    /// Loads-with-a-warning remarks, as `metasim run` prints them.
    pub warnings: Vec<ScenarioError>,
    pub report: RunReport,
}

impl Outcome {
    /// The trace hash as the CLI prints it.
    pub fn trace_hash_hex(&self) -> String {
        format!("{:016x}", self.trace_hash)
    }
}

impl<S: System> Default for ScenarioBuilder<S>
where
    ConfigOf<S::Node>: Default,
{
    fn default() -> Self {
        Self::new("scenario")
    }
}

impl<S: System> ScenarioBuilder<S> {
    /// A scenario called `name`: 3 servers, 10 s, seed 0, no steps.
    pub fn new(name: impl Into<String>) -> Self
    where
        ConfigOf<S::Node>: Default,
    {
        ScenarioBuilder {
            scenario: Scenario {
                name: name.into(),
                sut: Some(S::NAME.to_string()),
                description: String::new(),
                seed: 0,
                servers: 3,
                duration_ms: 10_000,
                network: LinkProfile::default(),
                disk: DiskProfile::default(),
                clocks: Vec::new(),
                crash_points: None,
                bugs: Vec::new(),
                liveness: false,
                expect: None,
                expect_violation: None,
                system: Default::default(),
                steps: Vec::new(),
            },
        }
    }

    /// `description = "..."`.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.scenario.description = text.into();
        self
    }

    /// `seed = N`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.scenario.seed = seed;
        self
    }

    /// `[cluster] servers = N`.
    pub fn servers(mut self, servers: u32) -> Self {
        self.scenario.servers = servers;
        self
    }

    /// `duration_ms = N`.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.scenario.duration_ms = ms;
        self
    }

    /// `liveness = true|false`: check liveness at the end (needs a `heal-all` step).
    pub fn liveness(mut self, on: bool) -> Self {
        self.scenario.liveness = on;
        self
    }

    /// `expect = "pass"|"fail"`.
    pub fn expect(mut self, verdict: Verdict) -> Self {
        self.scenario.expect = Some(verdict);
        self
    }

    /// `expect = "fail"` with `expect_violation = "..."`.
    pub fn expect_violation(mut self, violation: impl Into<String>) -> Self {
        self.scenario.expect = Some(Verdict::Fail);
        self.scenario.expect_violation = Some(violation.into());
        self
    }

    /// One entry of `bugs = [...]`.
    pub fn bug(mut self, name: impl Into<String>) -> Self {
        self.scenario.bugs.push(name.into());
        self
    }

    /// `[network]`: the default link profile.
    pub fn network(mut self, profile: LinkProfile) -> Self {
        self.scenario.network = profile;
        self
    }

    /// `[disk]`.
    pub fn disk(mut self, profile: DiskProfile) -> Self {
        self.scenario.disk = profile;
        self
    }

    /// One `[[clock]]`.
    pub fn clock(mut self, clock: ClockSpec) -> Self {
        self.scenario.clocks.push(clock);
        self
    }

    /// `[crash_points]`.
    pub fn crash_points(mut self, crash_points: CrashPoints) -> Self {
        self.scenario.crash_points = Some(crash_points);
        self
    }

    /// `[system]`: the system's own settings.
    pub fn system(mut self, config: ConfigOf<S::Node>) -> Self {
        self.scenario.system = config;
        self
    }

    /// Change `[system]` in place: `.configure(|c| c.heartbeat_ms = 500)`.
    pub fn configure(mut self, change: impl FnOnce(&mut ConfigOf<S::Node>)) -> Self {
        change(&mut self.scenario.system);
        self
    }

    /// One `[[step]]`, any action. Steps go in time order, as in a file.
    pub fn step(mut self, at_ms: u64, action: Action<ClientOpOf<S::Node>, ExpectOf<S>>) -> Self {
        self.scenario.steps.push(Step { at_ms, action });
        self
    }

    /// `action = "client"` sent to `node`.
    pub fn client(self, at_ms: u64, node: NodeIndex, op: ClientOpOf<S::Node>) -> Self {
        self.step(at_ms, Action::Client { node: Some(node), op })
    }

    /// `action = "expect"`.
    pub fn check(self, at_ms: u64, check: ExpectOf<S>) -> Self {
        self.step(at_ms, Action::Expect { check })
    }

    /// `action = "partition"`.
    pub fn partition(self, at_ms: u64, groups: &[&[NodeIndex]]) -> Self {
        self.step(at_ms, Action::Partition { groups: groups.iter().map(|g| g.to_vec()).collect() })
    }

    /// `action = "isolate"`.
    pub fn isolate(self, at_ms: u64, node: NodeIndex) -> Self {
        self.step(at_ms, Action::Isolate { node })
    }

    /// `action = "heal-network"`.
    pub fn heal_network(self, at_ms: u64) -> Self {
        self.step(at_ms, Action::HealNetwork {})
    }

    /// `action = "crash"`.
    pub fn crash(self, at_ms: u64, node: NodeIndex) -> Self {
        self.step(at_ms, Action::Crash { node })
    }

    /// `action = "pause"`.
    pub fn pause(self, at_ms: u64, node: NodeIndex) -> Self {
        self.step(at_ms, Action::Pause { node })
    }

    /// `action = "resume"`.
    pub fn resume(self, at_ms: u64, node: NodeIndex) -> Self {
        self.step(at_ms, Action::Resume { node })
    }

    /// `action = "shutdown"`.
    pub fn shutdown(self, at_ms: u64, node: NodeIndex) -> Self {
        self.step(at_ms, Action::Shutdown { node })
    }

    /// `action = "restart"`.
    pub fn restart(self, at_ms: u64, node: NodeIndex) -> Self {
        self.step(at_ms, Action::Restart { node })
    }

    /// `action = "power-loss"`.
    pub fn power_loss(self, at_ms: u64, node: NodeIndex, torn: bool) -> Self {
        self.step(at_ms, Action::PowerLoss { node, torn })
    }

    /// `action = "corrupt"`.
    pub fn corrupt(self, at_ms: u64, node: NodeIndex, kind: &str, corruption: Corruption) -> Self {
        self.step(at_ms, Action::Corrupt { node, kind: kind.to_string(), corruption })
    }

    /// `action = "heal-all"`: ends every fault and starts the liveness phase.
    pub fn heal_all(self, at_ms: u64) -> Self {
        self.step(at_ms, Action::HealAll {})
    }

    /// The scenario as it stands, unchecked.
    pub fn scenario(&self) -> &ScenarioOf<S> {
        &self.scenario
    }

    /// The scenario as a file's text, unchecked (an error only for values TOML cannot hold).
    fn text(&self) -> Result<String, ScenarioError> {
        self.scenario.to_toml().map_err(|e| ScenarioError {
            file: BUILT_FILE.into(),
            line: 0,
            field: "file".into(),
            message: format!("cannot write as TOML: {e}"),
        })
    }

    /// Check the scenario with every check a file gets and return it as loaded. Errors name
    /// the field as a file's would (`step[3].op.preferred: node 7 does not exist`), with the
    /// line of [`ScenarioBuilder::to_toml`]'s text.
    pub fn build(&self) -> Result<Loaded<S>, ScenarioError> {
        let text = self.text()?;
        parse_for::<S>(BUILT_FILE, &text)
    }

    /// The scenario as a file: `metasim run` on it gives the trace hash [`Self::run`] gives.
    pub fn to_toml(&self) -> Result<String, ScenarioError> {
        self.build()?;
        self.text()
    }

    /// Check and run the scenario (on a fresh simulation thread, as `metasim run` does).
    pub fn run(&self) -> Result<Outcome, ScenarioError> {
        self.run_with(&RunOptions::default())
    }

    /// [`Self::run`] with options: bug switches, a kept trace, the event log.
    pub fn run_with(&self, options: &RunOptions) -> Result<Outcome, ScenarioError> {
        let loaded = self.build()?;
        let report = crate::world::run::<S>(&loaded.scenario, options);
        let verdict = match (&report.violation, &report.excused) {
            (Some(_), _) => RunVerdict::Fail,
            (None, Some(_)) => RunVerdict::Excused,
            (None, None) => RunVerdict::Pass,
        };
        let as_expected = match loaded.scenario.expect {
            None => true,
            Some(Verdict::Pass) => verdict == RunVerdict::Pass,
            Some(Verdict::Fail) => {
                verdict == RunVerdict::Fail
                    && match (&loaded.scenario.expect_violation, &report.violation) {
                        (Some(want), Some(v)) => {
                            v.invariant.contains(want.as_str())
                                || format!("{} {}", v.invariant, v.message).contains(want.as_str())
                        }
                        _ => true,
                    }
            }
        };
        Ok(Outcome {
            verdict,
            trace_hash: report.trace_hash,
            failure: report.violation.clone(),
            excused: report.excused.clone(),
            as_expected,
            warnings: loaded.warnings,
            report,
        })
    }
}
