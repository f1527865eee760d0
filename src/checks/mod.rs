//! Invariants of the system under test, checked by the simulator: safety after every event,
//! liveness once faults have healed.
//!
//! Some facts are only visible at the moment they happen (who became leader in which term,
//! what was applied at which index), so the servers report them to the [`Ghost`], the oracle's
//! memory of the whole run, and the checks read it.

pub mod meta;
pub mod raft;

use std::collections::{BTreeMap, BTreeSet};

use sim::{CheckFailure, NodeIndex};

use crate::raft::{Index, Term};

/// An entry some server applied: the first server to apply an index fixes what it must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedEntry {
    pub term: Term,
    pub digest: u64,
    /// The applied-state chain after this entry.
    pub chain: u64,
    pub first_applied_by: NodeIndex,
}

/// What the oracle remembers of one raft group's history.
#[derive(Debug, Default)]
pub struct GroupHistory {
    /// The leader of each term, as first observed.
    pub leaders: BTreeMap<Term, NodeIndex>,
    pub committed: BTreeMap<Index, CommittedEntry>,
    /// The highest commit index each term's leader reached. "Committed before term T" means
    /// committed by the leader of an earlier term: an old-term entry committed by a later
    /// leader (Figure 8) need not be in the log of a stale leader of T, which can still win
    /// with votes granted long ago.
    commit_by_term: BTreeMap<Term, Index>,
}

impl GroupHistory {
    /// The highest index the leader of a term below `term` committed.
    pub fn last_committed_before(&self, term: Term) -> Index {
        self.commit_by_term.range(..term).map(|(_, i)| *i).max().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
pub struct Ghost {
    /// Each raft group's history, by group name (the meta group and every stream's group).
    pub groups: BTreeMap<String, GroupHistory>,
    /// Servers that ever led the meta group.
    pub ever_leader: BTreeSet<NodeIndex>,
    /// Servers whose disks lied or lost data (lost fsync, truncation, rollback, wipe): the
    /// fault model no longer promises what they acknowledged.
    pub tainted: BTreeSet<NodeIndex>,
    /// Divergences forgiven because a tainted disk may explain them.
    pub excused: u64,
    /// The first violation a server observed while handling an event.
    pub violation: Option<CheckFailure>,
    /// Messages acknowledged to clients, by the stream's group name (an acknowledged message
    /// must survive as long as its stream incarnation).
    pub acked_messages: BTreeMap<String, u64>,
    /// The meta projection digest at each applied meta index, as the first server to reach
    /// that index had it (S4 across time, and what a snapshot at that index must hold, S8).
    /// At most [`PROJECTIONS_KEPT_MAX`] indexes.
    pub meta_projections: BTreeMap<Index, (u64, NodeIndex)>,
    /// Faults have healed: the liveness phase runs (L7 applies from here on).
    pub healed: bool,
    /// The server whose meta layer acts as leader, as last signalled, and a counter of
    /// every change of it (gain, loss, crash of the leader): a request the acting leader got
    /// and answered nothing to, with no change in between, is a lost request (L7).
    pub acting_meta_leader: Option<NodeIndex>,
    pub meta_leader_changes: u64,
}

/// Meta indexes whose projection the ghost remembers (a 60 s run reaches a few thousand).
pub const PROJECTIONS_KEPT_MAX: usize = 1_000_000;

static NO_HISTORY: GroupHistory =
    GroupHistory { leaders: BTreeMap::new(), committed: BTreeMap::new(), commit_by_term: BTreeMap::new() };

impl Ghost {
    /// The history of `group` (empty if nothing happened in it yet).
    pub fn group(&self, group: &str) -> &GroupHistory {
        self.groups.get(group).unwrap_or(&NO_HISTORY)
    }

    fn history(&mut self, group: &str) -> &mut GroupHistory {
        // Called for every leader on every input: allocate the key only for a new group.
        if !self.groups.contains_key(group) {
            self.groups.insert(group.to_string(), GroupHistory::default());
        }
        self.groups.get_mut(group).expect("inserted above")
    }

    pub fn flag(&mut self, invariant: &str, node: NodeIndex, message: String) {
        if self.violation.is_none() {
            self.violation = Some(CheckFailure::new(invariant, Some(node), message));
        }
    }

    /// A divergence is a bug unless a lying or damaged disk could explain it.
    fn diverged(&mut self, invariant: &str, node: NodeIndex, message: String) {
        if self.tainted.is_empty() {
            self.flag(invariant, node, message);
        } else {
            self.excused += 1;
        }
    }

    /// A publish of `count` messages to the stream running in `group` was acknowledged.
    pub fn observe_acked_messages(&mut self, group: &str, count: u32) {
        *self.acked_messages.entry(group.to_string()).or_default() += u64::from(count);
    }

    /// Messages acknowledged for the stream running in `group`.
    pub fn acked_messages(&self, group: &str) -> u64 {
        self.acked_messages.get(group).copied().unwrap_or(0)
    }

    /// `node` is leader of `term` in `group` (role, not yet past the barrier) and has committed
    /// up to `commit`.
    pub fn observe_leader(&mut self, group: &str, node: NodeIndex, term: Term, commit: Index) {
        if group == crate::server::META {
            self.ever_leader.insert(node);
        }
        let history = self.history(group);
        let reached = history.commit_by_term.entry(term).or_default();
        *reached = (*reached).max(commit);
        match history.leaders.get(&term) {
            None => {
                history.leaders.insert(term, node);
            }
            Some(&other) if other != node => self.diverged(
                "raft-one-leader-per-term",
                node,
                format!("n{node} and n{other} both lead term {term} of group {group}"),
            ),
            Some(_) => {}
        }
    }

    /// `node` applied entry `index` of `term` of `group` with this digest, reaching `chain`.
    pub fn observe_apply(&mut self, group: &str, node: NodeIndex, index: Index, term: Term, digest: u64, chain: u64) {
        let history = self.history(group);
        match history.committed.get(&index).copied() {
            None => {
                history.committed.insert(index, CommittedEntry { term, digest, chain, first_applied_by: node });
            }
            Some(c) if (c.term, c.digest) != (term, digest) => {
                let message = format!(
                    "{group}: applied index {index} as term {term} ({digest:016x}) but n{} applied it as term {} ({:016x}): a committed entry was lost or overwritten",
                    c.first_applied_by, c.term, c.digest
                );
                self.diverged("raft-committed-prefix", node, message);
            }
            Some(c) if c.chain != chain => {
                let message =
                    format!("{group}: applied state after index {index} differs from n{}'s", c.first_applied_by);
                self.diverged("raft-applied-state", node, message);
            }
            Some(_) => {}
        }
    }

    /// `node` installed a snapshot of `group` ending at `index` whose state chain is `chain`.
    pub fn observe_snapshot(&mut self, group: &str, node: NodeIndex, index: Index, chain: u64) {
        if let Some(c) = self.group(group).committed.get(&index).copied() {
            if c.chain != chain {
                let message = format!(
                    "installed a snapshot at index {index} whose state differs from what n{} applied",
                    c.first_applied_by
                );
                self.diverged("raft-snapshot-state", node, message);
            }
        }
    }

    /// `node`'s meta layer reached applied index `index` with projection `digest`: it must be
    /// what every server has there (S4).
    pub fn observe_projection(&mut self, node: NodeIndex, index: Index, digest: u64) {
        match self.meta_projections.get(&index).copied() {
            None if self.meta_projections.len() < PROJECTIONS_KEPT_MAX => {
                self.meta_projections.insert(index, (digest, node));
            }
            Some((first, other)) if first != digest => {
                let message = format!("projection at meta index {index} differs from the one n{other} had there");
                self.diverged("meta-same-index-same-projection", node, message);
            }
            _ => {}
        }
    }

    /// `node` installed a meta snapshot at `index` whose projection is `digest`: a snapshot
    /// holds the applied state at its index and nothing else, inflight proposals least of all
    /// (S8).
    pub fn observe_meta_snapshot(&mut self, node: NodeIndex, index: Index, digest: u64) {
        if let Some(&(first, other)) = self.meta_projections.get(&index) {
            if first != digest {
                let message =
                    format!("installed a meta snapshot at index {index} that differs from what n{other} applied there");
                self.diverged("meta-snapshot-applied-only", node, message);
            }
        }
    }

    /// `node`'s meta layer starts (`true`) or stops (`false`) acting as leader; a crashed
    /// server stops too.
    pub fn observe_meta_acting(&mut self, node: NodeIndex, acting: bool) {
        if acting {
            self.acting_meta_leader = Some(node);
        } else if self.acting_meta_leader == Some(node) {
            self.acting_meta_leader = None;
        } else {
            return;
        }
        self.meta_leader_changes += 1;
    }

    /// A proposal made for `term` was appended as an entry of another term.
    pub fn observe_append(&mut self, node: NodeIndex, proposed_term: Term, entry_term: Option<Term>) {
        if entry_term != Some(proposed_term) {
            self.flag(
                "raft-stale-term-append",
                node,
                format!("a proposal for term {proposed_term} was appended with term {entry_term:?}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Committed before term T" counts what leaders of earlier terms committed, not entries of
    /// earlier terms: a term-2 entry that only a term-6 leader committed is not owed to a stale
    /// leader of term 4 (seed 16342), but is owed to a leader of term 7.
    #[test]
    fn committed_before_counts_the_committing_leaders_term() {
        let mut ghost = Ghost::default();
        ghost.observe_apply("g", 1, 1, 2, 0xa, 0xa);
        assert_eq!(ghost.group("g").last_committed_before(4), 0, "no leader before term 4 committed anything");
        ghost.observe_leader("g", 2, 6, 2);
        assert_eq!(ghost.group("g").last_committed_before(4), 0);
        assert_eq!(ghost.group("g").last_committed_before(7), 2);
        ghost.observe_leader("g", 3, 3, 1);
        ghost.observe_leader("g", 3, 3, 0);
        assert_eq!(ghost.group("g").last_committed_before(4), 1, "a leader's commit only grows");
        assert_eq!(ghost.group("other").last_committed_before(9), 0);
    }
}
