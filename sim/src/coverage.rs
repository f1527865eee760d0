//! Coverage: which behaviours a run reached, and how often.
//!
//! A probe is a named behaviour (FoundationDB calls them code probes): a node hits one through
//! [`crate::Env::probe`] (and every trace event it records hits the probe of its kind), and
//! the world hits `fault:<action>@<state>` when it strikes a node in a state the harness names
//! ([`crate::Harness::coverage_states`]). Coverage never changes what happens: it is not part
//! of the trace, draws nothing from the run's randomness, and is kept in ordered maps (no
//! hasher is seeded inside the simulation).
//!
//! A system lists the probes it can reach ([`catalogue`]); a coverage report then says what
//! was never hit, and a probe hit but not listed shows up as unlisted.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::harness::Harness;
use crate::net::NodeIndex;

/// One probe's record in a run: how often it was hit, and when and where first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeStat {
    pub hits: u64,
    pub first_ns: u64,
    pub first_node: NodeIndex,
}

/// The probes one run hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    probes: BTreeMap<Cow<'static, str>, ProbeStat>,
}

/// Distinct probes one run may hit: a bound on the map, as a probe name built from run data
/// would be a bug.
pub const PROBES_MAX: usize = 10_000;

impl Coverage {
    /// Count a hit of `name` on `node` at simulated time `sim_ns`.
    pub fn hit(&mut self, name: &'static str, sim_ns: u64, node: NodeIndex) {
        match self.probes.get_mut(name) {
            Some(stat) => stat.hits += 1,
            None => self.insert(Cow::Borrowed(name), sim_ns, node),
        }
    }

    /// [`Self::hit`] for a name built at run time (a fault crossed with a state).
    pub fn hit_owned(&mut self, name: String, sim_ns: u64, node: NodeIndex) {
        match self.probes.get_mut(name.as_str()) {
            Some(stat) => stat.hits += 1,
            None => self.insert(Cow::Owned(name), sim_ns, node),
        }
    }

    fn insert(&mut self, name: Cow<'static, str>, sim_ns: u64, node: NodeIndex) {
        assert!(self.probes.len() < PROBES_MAX, "more than {PROBES_MAX} distinct probes: {name}");
        self.probes.insert(name, ProbeStat { hits: 1, first_ns: sim_ns, first_node: node });
    }

    /// Probes hit, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ProbeStat)> + '_ {
        self.probes.iter().map(|(name, stat)| (name.as_ref(), *stat))
    }

    pub fn get(&self, name: &str) -> Option<ProbeStat> {
        self.probes.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.probes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }
}

/// A probe a system can reach, with what it stands for and what reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeInfo {
    pub name: Cow<'static, str>,
    pub what: Cow<'static, str>,
    pub reach: Reach,
}

/// What may reach a probe: the denominator of "how much of what fuzzing should reach did it
/// reach" leaves out what only a scenario's operator action, a bug switch or a broken build
/// reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// Fuzz runs of a correct build should reach it.
    Fuzz,
    /// Only an action that scenario files play and the swarm does not draw (an operator's
    /// disaster tool, a test hook, a faulty leader's entry).
    Scenario,
    /// Only with a bug switch on.
    BugSwitch,
    /// Never in a correct build: a defensive branch.
    Unexpected,
}

impl Reach {
    pub fn name(self) -> &'static str {
        match self {
            Reach::Fuzz => "fuzz",
            Reach::Scenario => "scenario",
            Reach::BugSwitch => "bug-switch",
            Reach::Unexpected => "unexpected",
        }
    }
}

impl ProbeInfo {
    /// A probe fuzzing should reach.
    pub const fn new(name: &'static str, what: &'static str) -> Self {
        ProbeInfo { name: Cow::Borrowed(name), what: Cow::Borrowed(what), reach: Reach::Fuzz }
    }

    /// The same probe, reached only as `reach` says.
    pub const fn reached_by(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }
}

/// World actions aimed at one node that coverage crosses with the node's state.
/// (`crash-point` is a crash at one of the node's crash points.)
pub const FAULTS_CROSSED: &[&str] =
    &["crash", "crash-point", "power-loss", "power-loss-point", "restart", "pause", "isolate", "corrupt", "clock-jump"];

/// The state every harness names a node that is not running.
pub const DOWN: &str = "down";

/// Faults that fire at a point a running node reaches (a crash point): never on a node that
/// is down, so that pair is not listed.
const FAULTS_OF_RUNNING_NODES: &[&str] = &["crash-point", "power-loss-point"];

/// The name of the probe for `action` striking a node in `state`.
pub fn fault_probe(action: &str, state: &str) -> String {
    format!("fault:{action}@{state}")
}

/// Every probe system `H` lists: its own, and each crossed fault with each state it names.
pub fn catalogue<H: Harness>() -> Vec<ProbeInfo> {
    let mut probes = H::probes();
    for action in FAULTS_CROSSED {
        for (state, what) in H::coverage_state_names() {
            if *state == DOWN && FAULTS_OF_RUNNING_NODES.contains(action) {
                continue;
            }
            let what = format!("a {action} of a server that is {what}");
            let name = Cow::Owned(fault_probe(action, state));
            probes.push(ProbeInfo { name, what: Cow::Owned(what), reach: Reach::Fuzz });
        }
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hits_and_keeps_the_first_time_and_node() {
        let mut coverage = Coverage::default();
        coverage.hit("a", 5, 1);
        coverage.hit("b", 7, 0);
        coverage.hit("a", 9, 2);
        coverage.hit_owned("fault:crash@leader".into(), 11, 3);
        coverage.hit_owned("fault:crash@leader".into(), 12, 4);
        let seen: Vec<(&str, u64, u64, NodeIndex)> =
            coverage.iter().map(|(n, s)| (n, s.hits, s.first_ns, s.first_node)).collect();
        assert_eq!(seen, vec![("a", 2, 5, 1), ("b", 1, 7, 0), ("fault:crash@leader", 2, 11, 3)]);
    }
}
