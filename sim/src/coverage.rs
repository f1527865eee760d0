//! Coverage: which behaviours a run reached, and how often.
//!
//! A probe is a named behaviour (FoundationDB calls them code probes): a node hits one through
//! [`crate::Env::probe`] (and every trace event it records hits the probe of its kind), and
//! the world hits `fault:<action>@<state>` when it strikes a node in a state the harness names
//! ([`crate::Harness::coverage_states`]). Coverage never changes what happens: it is not part
//! of the trace, draws nothing from the run's randomness, and is kept in ordered maps (no
//! hasher is seeded inside the simulation; the one hash map, a lookup by a static name's
//! address, is never walked).
//!
//! A system lists the probes it can reach ([`catalogue`]); a coverage report then says what
//! was never hit, and a probe hit but not listed shows up as unlisted.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

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
#[derive(Clone, Default)]
pub struct Coverage {
    /// Each probe's place in `stats`, by name.
    probes: BTreeMap<Cow<'static, str>, usize>,
    stats: Vec<ProbeStat>,
    /// The places of probes hit under a static name, by the name's address and length. Every
    /// trace event hits a probe, and finding the name in `probes` took a string compare per
    /// level of the tree. A name held at two addresses has two entries, for one place. The
    /// addresses differ from run to run, but only a name's own hits are found through them.
    by_address: FxHashMap<(usize, usize), usize>,
}

/// Two runs' coverage is the same when they hit the same probes as often, first at the same
/// time and node: the addresses the names were found at do not count.
impl PartialEq for Coverage {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Coverage {}

/// As the probes by name, the way a map of them was shown.
impl std::fmt::Debug for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probes: BTreeMap<&str, ProbeStat> = self.iter().collect();
        f.debug_struct("Coverage").field("probes", &probes).finish()
    }
}

/// Distinct probes one run may hit: a bound on the map, as a probe name built from run data
/// would be a bug.
pub const PROBES_MAX: usize = 10_000;

impl Coverage {
    /// Count a hit of `name` on `node` at simulated time `sim_ns`.
    pub fn hit(&mut self, name: &'static str, sim_ns: u64, node: NodeIndex) {
        let address = (name.as_ptr() as usize, name.len());
        let at = match self.by_address.get(&address) {
            Some(&at) => at,
            None => {
                let at = self.place(Cow::Borrowed(name), sim_ns, node);
                assert!(self.by_address.len() < 2 * PROBES_MAX, "{name}: more static names than probes allow");
                self.by_address.insert(address, at);
                at
            }
        };
        debug_assert_eq!(self.probes.get(name), Some(&at), "{name} found at its own place");
        self.stats[at].hits += 1;
    }

    /// [`Self::hit`] for a name built at run time (a fault crossed with a state).
    pub fn hit_owned(&mut self, name: String, sim_ns: u64, node: NodeIndex) {
        let at = self.place(Cow::Owned(name), sim_ns, node);
        self.stats[at].hits += 1;
    }

    /// The place of probe `name`, new (no hits yet, first hit now) if never hit.
    fn place(&mut self, name: Cow<'static, str>, sim_ns: u64, node: NodeIndex) -> usize {
        if let Some(&at) = self.probes.get(name.as_ref()) {
            return at;
        }
        assert!(self.probes.len() < PROBES_MAX, "more than {PROBES_MAX} distinct probes: {name}");
        self.stats.push(ProbeStat { hits: 0, first_ns: sim_ns, first_node: node });
        self.probes.insert(name, self.stats.len() - 1);
        self.stats.len() - 1
    }

    /// Probes hit, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ProbeStat)> + '_ {
        self.probes.iter().map(|(name, &at)| (name.as_ref(), self.stats[at]))
    }

    pub fn get(&self, name: &str) -> Option<ProbeStat> {
        self.probes.get(name).map(|&at| self.stats[at])
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

    /// A probe counts its hits whatever address its name is held at, static or built at run
    /// time, and keeps the time and node of its first hit; coverage compares by what was hit.
    #[test]
    fn a_probe_counts_every_hit_of_its_name() {
        let copy: &'static str = Box::leak(String::from("apply").into_boxed_str());
        let mut coverage = Coverage::default();
        coverage.hit("apply", 10, 1);
        coverage.hit(copy, 20, 2);
        coverage.hit_owned("apply".to_string(), 30, 3);
        coverage.hit("recv", 40, 0);
        coverage.hit("apply", 50, 4);
        coverage.hit("votes", 60, 0);
        assert_eq!(coverage.get("apply"), Some(ProbeStat { hits: 4, first_ns: 10, first_node: 1 }));
        assert_eq!(coverage.get("recv"), Some(ProbeStat { hits: 1, first_ns: 40, first_node: 0 }));
        assert_eq!(coverage.get("votes").map(|s| s.hits), Some(1), "a name of the same length is another probe");
        assert_eq!(coverage.iter().map(|(name, _)| name).collect::<Vec<_>>(), ["apply", "recv", "votes"]);
        assert_eq!(coverage.len(), 3);

        let mut other = Coverage::default();
        other.hit(copy, 10, 1);
        other.hit_owned("recv".to_string(), 40, 0);
        other.hit("votes", 60, 0);
        for at in [20, 30, 50] {
            other.hit_owned("apply".to_string(), at, 9);
        }
        assert_eq!(other, coverage, "the same hits, found at other addresses");
        assert_eq!(format!("{other:?}"), format!("{coverage:?}"));
    }

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
