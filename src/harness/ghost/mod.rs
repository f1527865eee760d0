//! The oracle's memory of the whole run: facts servers observed as they happened (who led
//! which term, what was applied at each index, what was acknowledged to clients), faults the
//! world injected, and a reference meta state machine fed with every committed entry. The
//! checks ([`super::checks`]) read it; only observations and faults write it.

mod handover;
mod incarnations;
mod info;
mod meta;
mod placement;
mod requests;
mod shrinks;

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use sim::{CheckFailure, NodeIndex};

use crate::meta::{PeerId, StreamKey};
use crate::raft::{Index, Term};
use crate::server::wire::META;

pub use handover::HandoverWatch;
#[cfg(test)]
pub use incarnations::test_stream;
pub use incarnations::{IncarnationBook, Verdict};
pub use info::InfoWatch;
pub use meta::{DirectConsumerFacts, MetaOracle, StartupOrphans, PROJECTIONS_KEPT_MAX};
pub use placement::PlacementWatch;
pub use requests::RequestWatch;
pub use shrinks::ShrinkDecisions;

/// An entry some server applied: the first server to apply an index fixes what it must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedEntry {
    pub term: Term,
    pub digest: u64,
    /// The applied-state chain after this entry.
    pub chain: u64,
    pub first_applied_by: NodeIndex,
    /// Every server that applied it and still holds its copy of the group, one bit per node
    /// index (a server that drops the group's files is cleared: see
    /// [`Ghost::observe_group_dropped`]).
    pub applied_by: u64,
}

impl CommittedEntry {
    /// Whether `node` applied this entry and still holds its copy of the group.
    pub fn applied_by_node(&self, node: NodeIndex) -> bool {
        node < 64 && self.applied_by & node_bit(node) != 0
    }

    fn new(term: Term, digest: u64, chain: u64, node: NodeIndex) -> Self {
        CommittedEntry { term, digest, chain, first_applied_by: node, applied_by: node_bit(node) }
    }
}

fn node_bit(node: NodeIndex) -> u64 {
    assert!(node < 64, "the ghost tracks appliers of up to 64 servers, not n{node}");
    1 << node
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
    /// The highest term in `commit_by_term`, the highest index in it, and the highest index
    /// of the terms below `last_term`, kept as it grows: the checks ask
    /// [`Self::last_committed_before`] of every leader after every event, nearly always for
    /// the newest term or one above it.
    last_term: Term,
    commit_max: Index,
    commit_max_below_last: Index,
    /// Moves whenever `commit_by_term` does, so whenever [`Self::last_committed_before`] may
    /// answer differently: the checks judge an untouched server's meta leadership again only
    /// then. It never moves back, not even when the history is started over.
    commits_changed: u64,
}

impl GroupHistory {
    /// The highest index the leader of a term below `term` committed.
    pub fn last_committed_before(&self, term: Term) -> Index {
        let index = match term.cmp(&self.last_term) {
            Ordering::Greater => self.commit_max,
            Ordering::Equal => self.commit_max_below_last,
            Ordering::Less => self.commit_by_term.range(..term).map(|(_, i)| *i).max().unwrap_or(0),
        };
        debug_assert_eq!(index, self.commit_by_term.range(..term).map(|(_, i)| *i).max().unwrap_or(0), "term {term}");
        index
    }

    /// The leader of `term` committed up to `commit`.
    fn leader_committed(&mut self, term: Term, commit: Index) {
        match self.commit_by_term.entry(term) {
            // The maxima below already hold a commit the term reached before.
            Entry::Occupied(reached) if *reached.get() >= commit => return,
            Entry::Occupied(mut reached) => *reached.get_mut() = commit,
            Entry::Vacant(slot) => drop(slot.insert(commit)),
        }
        self.commits_changed += 1;
        if term > self.last_term {
            (self.last_term, self.commit_max_below_last) = (term, self.commit_max);
        } else if term < self.last_term {
            self.commit_max_below_last = self.commit_max_below_last.max(commit);
        }
        self.commit_max = self.commit_max.max(commit);
    }

    /// A count that moves whenever the commits by term do (see `commits_changed`).
    pub fn commits_changed(&self) -> u64 {
        self.commits_changed
    }
}

#[derive(Debug, Default)]
pub struct Ghost {
    /// Each stream and consumer group's history, by group name.
    groups: BTreeMap<String, GroupHistory>,
    /// The meta group's history, kept apart: the checks read it after every event, and apart
    /// it is found without a name lookup among the others.
    meta_history: GroupHistory,
    /// Servers that ever led the meta group.
    pub ever_leader: BTreeSet<NodeIndex>,
    /// Servers whose disks lied or lost data (lost fsync, truncation, rollback, wipe): the
    /// fault model no longer promises what they acknowledged.
    pub tainted: BTreeSet<NodeIndex>,
    /// Divergences forgiven because a tainted disk may explain them.
    pub excused: u64,
    /// The first violation a server observed while handling an event.
    pub violation: Option<CheckFailure>,
    /// Messages acknowledged to clients, by stream incarnation: an acknowledged message must
    /// survive as long as its incarnation, whatever group it moved to (a replica change moves
    /// an R1 store into a raft group).
    pub acked_messages: BTreeMap<Incarnation, u64>,
    /// The incarnation each group that acknowledged messages ran.
    pub acked_groups: BTreeMap<String, Incarnation>,
    /// Groups an incarnation moved to (a replica change that gives an R1 stream a raft group),
    /// as the reference state machine applies them: the first group of the line, by which the
    /// incarnation is known.
    pub group_lines: BTreeMap<String, String>,
    /// The reference meta state machine: every committed meta entry applied once, in order,
    /// in normal mode (the S6 oracle).
    pub meta_oracle: MetaOracle,
    /// The incarnation each asset group was committed for, as the reference state applies
    /// them: what a local asset's group must belong to (issue 17 item 5).
    pub incarnations: IncarnationBook,
    /// The oracle's projection digest at each meta index: what every server must have there
    /// (S4 across time), what a snapshot there must hold (S5, S8), and where a recovery must
    /// land (S6). At most [`PROJECTIONS_KEPT_MAX`] indexes.
    pub meta_projections: BTreeMap<Index, u64>,
    /// Each server's local orphans as its last start-up recovery ended, with their created
    /// times: the only local assets that may lack an assignment in normal mode.
    pub startup_orphans: BTreeMap<NodeIndex, StartupOrphans>,
    /// Faults have healed: the liveness phase runs (L7 applies from here on).
    pub healed: bool,
    /// The server whose meta layer acts as leader, as last signalled, and a counter of
    /// every change of it (gain, loss, crash of the leader): a request the acting leader got
    /// and answered nothing to, with no change in between, is a lost request (L7).
    pub acting_meta_leader: Option<NodeIndex>,
    pub meta_leader_changes: u64,
    /// S17: peer removals applied in normal mode, as (server, removed peer, the term that
    /// server acted as meta leader in then). A handful per run.
    pub peer_removals_applied: BTreeSet<(NodeIndex, PeerId, Option<Term>)>,
    /// S17: each server's unanswered peer removal, with the term it proposed it in.
    pub peer_removes_pending: BTreeMap<NodeIndex, (Term, PeerId)>,
    /// S17: servers that applied their own removal and have not crashed since: JetStream
    /// must be off there.
    pub removed_servers: BTreeSet<NodeIndex>,
    /// Each peer's latest meta membership change seen applied: (meta index, member after it).
    pub meta_membership: BTreeMap<PeerId, (Index, bool)>,
    /// Asset groups that went on without committed entries only removed servers had applied
    /// (see [`Ghost::applied_only_by_removed`]): their acknowledged messages are not all promised.
    pub forked_by_removals: BTreeSet<String>,
    /// Every peer a stream group had while the committed state held it with more peers than
    /// its replicas (a scale-down under way, §2.2), by group name: the members its leader's
    /// shrink chose among (`meta-shrink-keeps-able-members`).
    pub scale_downs: BTreeMap<String, BTreeSet<PeerId>>,
    /// Who each shrink removal could hear when its leader proposed it.
    pub shrinks: ShrinkDecisions,
    /// L7: the requests the acting meta leader owes an answer.
    pub requests: RequestWatch,
    /// New placements and who has been down since when (issue 18 item 2).
    pub placements: PlacementWatch,
    /// Info requests routed to a group with a leader, owed an answer (issue 18 item 3).
    pub info: InfoWatch,
    /// Hand-overs since heal and how long each took (issue 17 item 6).
    pub handovers: HandoverWatch,
    /// The servers the scenario runs without JetStream (its `[system]` table), learnt at the
    /// first check: no placement may pick one.
    pub jetstream_disabled: Option<Vec<NodeIndex>>,
}

/// A stream incarnation: its key, its created time and the first group of its line.
pub type Incarnation = (StreamKey, u64, String);

static NO_HISTORY: GroupHistory = GroupHistory {
    leaders: BTreeMap::new(),
    committed: BTreeMap::new(),
    commit_by_term: BTreeMap::new(),
    last_term: 0,
    commit_max: 0,
    commit_max_below_last: 0,
    commits_changed: 0,
};

impl Ghost {
    /// The history of `group` (empty if nothing happened in it yet).
    pub fn group(&self, group: &str) -> &GroupHistory {
        match group {
            META => &self.meta_history,
            _ => self.groups.get(group).unwrap_or(&NO_HISTORY),
        }
    }

    /// The history of `group`, if anything happened in it yet.
    fn history_mut(&mut self, group: &str) -> Option<&mut GroupHistory> {
        match group {
            META => Some(&mut self.meta_history),
            _ => self.groups.get_mut(group),
        }
    }

    fn history(&mut self, group: &str) -> &mut GroupHistory {
        if group == META {
            return &mut self.meta_history;
        }
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
    pub fn diverged(&mut self, invariant: &str, node: NodeIndex, message: String) {
        if self.tainted.is_empty() {
            self.flag(invariant, node, message);
        } else {
            self.excused += 1;
        }
    }

    /// `node` acknowledged a publish of `count` messages to the stream running in `group`. A
    /// server removed from the meta group that still runs a stale copy (it was down during its
    /// removal) acknowledges into a copy the stream went on without: nothing promises those.
    pub fn observe_acked_messages(
        &mut self,
        group: &str,
        stream: &StreamKey,
        created_ms: u64,
        node: NodeIndex,
        count: u32,
    ) {
        if self.stale_copy(group, node) {
            return;
        }
        let incarnation = self.incarnation(stream, created_ms, group);
        if !self.acked_groups.contains_key(group) {
            self.acked_groups.insert(group.to_string(), incarnation.clone());
        }
        *self.acked_messages.entry(incarnation).or_default() += u64::from(count);
    }

    /// Messages acknowledged to incarnation `created_ms` of `stream`, which runs in `group`.
    pub fn acked_messages(&self, stream: &StreamKey, created_ms: u64, group: &str) -> u64 {
        self.acked_messages.get(&self.incarnation(stream, created_ms, group)).copied().unwrap_or(0)
    }

    /// Created times need not be unique (a leader's wall clock can stand still or go back),
    /// so an incarnation is also known by the first group of its line.
    fn incarnation(&self, stream: &StreamKey, created_ms: u64, group: &str) -> Incarnation {
        let line = self.group_lines.get(group).map_or(group, String::as_str);
        (stream.clone(), created_ms, line.to_string())
    }

    /// Group `to` continues the line of group `from` (the same incarnation moved there).
    pub fn continue_line(&mut self, from: &str, to: &str) {
        let line = self.group_lines.get(from).cloned().unwrap_or_else(|| from.to_string());
        self.group_lines.insert(to.to_string(), line);
    }

    /// `node` is leader of `term` in `group` (role, not yet past the barrier) and has committed
    /// up to `commit`.
    pub fn observe_leader(&mut self, group: &str, node: NodeIndex, term: Term, commit: Index) {
        if group == META {
            self.ever_leader.insert(node);
        }
        if self.stale_copy(group, node) {
            return; // a removed server's copy of a group that goes on without it
        }
        // Every leader reports on every input: a known leader of a known group costs one lookup.
        if let Some(history) = self.history_mut(group) {
            if history.leaders.get(&term) == Some(&node) {
                history.leader_committed(term, commit);
                return;
            }
        }
        let recorded = self.group(group).leaders.get(&term).copied();
        let history = self.history(group);
        history.leader_committed(term, commit);
        match recorded {
            None => {
                history.leaders.insert(term, node);
            }
            Some(other) if other != node && self.stale_copy(group, other) => {
                self.history(group).leaders.insert(term, node);
            }
            Some(other) if other != node => self.diverged(
                "raft-one-leader-per-term",
                node,
                format!("n{node} and n{other} both lead term {term} of group {group}"),
            ),
            Some(_) => {}
        }
    }

    /// `node` applied entry `index` of `term` of `group` with this digest, reaching `chain`.
    pub fn observe_apply(&mut self, group: &str, node: NodeIndex, index: Index, term: Term, digest: u64, chain: u64) {
        // One lookup on the common paths: the first apply of an index, and agreeing ones.
        let c = match self.history(group).committed.entry(index) {
            Entry::Vacant(slot) => {
                slot.insert(CommittedEntry::new(term, digest, chain, node));
                return;
            }
            Entry::Occupied(mut slot) => {
                let c = slot.get_mut();
                if (c.term, c.digest, c.chain) == (term, digest, chain) {
                    c.applied_by |= node_bit(node);
                    return;
                }
                *c
            }
        };
        if group != META {
            if self.all_removed(c.applied_by) {
                // Peer removals took every copy, and the group went on without it: what the
                // members apply now is the group's history.
                self.history(group).committed.insert(index, CommittedEntry::new(term, digest, chain, node));
                self.forked_by_removals.insert(group.to_string());
                return;
            }
            if self.stale_copy(group, node) {
                return; // a removed server's copy of a group that went on without it
            }
        }
        if (c.term, c.digest) != (term, digest) {
            let message = format!(
                "{group}: applied index {index} as term {term} ({digest:016x}) but n{} applied it as term {} ({:016x}): a committed entry was lost or overwritten",
                c.first_applied_by, c.term, c.digest
            );
            self.diverged("raft-committed-prefix", node, message);
        } else {
            let message = format!("{group}: applied state after index {index} differs from n{}'s", c.first_applied_by);
            self.diverged("raft-applied-state", node, message);
        }
    }

    /// Whether `peer` was removed from the meta group (and not added back since). NATS
    /// re-places a removed server's assets, and its copies of their groups are promised
    /// nothing after.
    pub fn was_removed(&self, peer: PeerId) -> bool {
        self.meta_membership.get(&peer).is_some_and(|&(_, member)| !member)
    }

    /// Meta index `index` removes `peer` (applied somewhere in normal mode).
    pub fn observe_peer_removed(&mut self, index: Index, peer: PeerId) {
        self.note_membership(index, peer, false);
    }

    /// Meta index `index` adds `peer`.
    pub fn observe_peer_added(&mut self, index: Index, peer: PeerId) {
        self.note_membership(index, peer, true);
    }

    fn note_membership(&mut self, index: Index, peer: PeerId, member: bool) {
        let latest = self.meta_membership.entry(peer).or_insert((index, member));
        if index >= latest.0 {
            *latest = (index, member);
        }
    }

    /// Whether `node`'s copy of `group` is a removed server's stale copy of an asset group,
    /// which nothing is promised of (see [`Ghost::was_removed`]). Never the meta group's.
    pub fn stale_copy(&self, group: &str, node: NodeIndex) -> bool {
        group != META && self.was_removed(node)
    }

    /// Whether every server in `nodes` (a bit per node index) was removed from the meta group.
    fn all_removed(&self, nodes: u64) -> bool {
        (0..64).filter(|n| nodes & (1 << n) != 0).all(|n| self.was_removed(n))
    }

    /// Whether an asset group's committed entry was applied only by servers since removed from
    /// the meta group: NATS's peer removal (and the eviction that lets a group left without a
    /// quorum go on) may lose it, by the operator's decision.
    pub fn applied_only_by_removed(&self, group: &str, index: Index) -> bool {
        self.applied_only_by_removed_in(group, self.group(group), index)
    }

    /// [`Self::applied_only_by_removed`], with `group`'s history looked up already.
    pub fn applied_only_by_removed_in(&self, group: &str, history: &GroupHistory, index: Index) -> bool {
        group != META && history.committed.get(&index).is_some_and(|c| self.all_removed(c.applied_by))
    }

    /// `node` installed a snapshot of `group` ending at `index` whose state chain is `chain`.
    pub fn observe_snapshot(&mut self, group: &str, node: NodeIndex, index: Index, chain: u64) {
        if let Some(c) = self.group(group).committed.get(&index).copied() {
            if c.chain != chain && !self.applied_only_by_removed(group, index) && !self.stale_copy(group, node) {
                let message = format!(
                    "installed a snapshot at index {index} whose state differs from what n{} applied",
                    c.first_applied_by
                );
                self.diverged("raft-snapshot-state", node, message);
            }
        }
    }

    /// `node` dropped its copy of asset group `group` (its files, on leaving the group): it
    /// holds none of the group's entries any more. When the servers that still held an entry
    /// are all removed from the meta group afterwards, the entry is lost as by any removal
    /// (churn seed 316 of v13: one holder scaled out of the group, the other removed by the
    /// operator, and the member left started the group over).
    pub fn observe_group_dropped(&mut self, group: &str, node: NodeIndex) {
        if group == META {
            return;
        }
        if let Some(history) = self.history_mut(group) {
            // Bounded by the group's committed entries; a server drops a group rarely.
            for entry in history.committed.values_mut() {
                entry.applied_by &= !node_bit(node);
            }
        }
    }

    /// Every peer of `group` was removed, or every one left holds none of it: the messages
    /// acknowledged to its line (the groups it took them over from included: an R1 store
    /// scaled up into it) went with the servers removed. The group starts over (NATS does the
    /// same): its history goes too, or a fresh member's first term would be judged against the
    /// lost members' terms. A start-over on the same peers continues the line, which then owes
    /// only what the new group acknowledges (churn seed 27476 of v15).
    pub fn observe_group_emptied(&mut self, group: &str) {
        if let Some(incarnation) = self.acked_groups.get(group) {
            self.acked_messages.remove(incarnation);
        }
        let line = self.group_lines.get(group).map_or(group, String::as_str);
        // Bounded by the incarnations that acknowledged messages.
        self.acked_messages.retain(|(_, _, of), _| of != line);
        match group {
            META => {
                let commits_changed = self.meta_history.commits_changed + 1;
                self.meta_history = GroupHistory { commits_changed, ..GroupHistory::default() };
            }
            _ => drop(self.groups.remove(group)),
        }
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

    /// The count the checks trust moves whenever any answer of `last_committed_before` may,
    /// and never goes back, not even when the meta group's history starts over.
    #[test]
    fn commits_changed_moves_with_every_answer() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        let mut ghost = Ghost::default();
        let answers = |ghost: &Ghost| (0..12).map(|t| ghost.group(META).last_committed_before(t)).collect::<Vec<_>>();
        let mut moves = 0;
        for _ in 0..2_000 {
            let (before, count) = (answers(&ghost), ghost.group(META).commits_changed());
            ghost.observe_leader(META, rng.gen_range(0..5), rng.gen_range(1..10), rng.gen_range(0..30));
            let count_after = ghost.group(META).commits_changed();
            assert!(count_after >= count, "the count went back");
            if count_after == count {
                assert_eq!(answers(&ghost), before, "an answer moved without the count");
            } else {
                moves += 1;
            }
        }
        assert!(moves > 10 && moves < 1_900, "{moves} moves: the commits grew and stood still");
        let count = ghost.group(META).commits_changed();
        ghost.observe_group_emptied(META);
        assert!(ghost.group(META).commits_changed() > count, "starting over is a move");
    }

    /// A divergence in an asset group is excused only when every server that applied the
    /// entry was removed from the meta group (the removals took it), or when the server that
    /// diverges was removed (its copy is stale). Anything else, and anything in the meta group,
    /// is a finding.
    #[test]
    fn divergence_is_excused_only_by_removals() {
        let diverged = |removed: &[PeerId], group: &str, second: NodeIndex| {
            let mut ghost = Ghost::default();
            ghost.observe_apply(group, 1, 5, 2, 0xa, 0xa);
            ghost.observe_apply(group, 2, 5, 2, 0xa, 0xa);
            for &peer in removed {
                ghost.observe_peer_removed(10, peer);
            }
            ghost.observe_apply(group, second, 5, 7, 0xb, 0xb);
            ghost.violation.map(|v| v.invariant)
        };
        let lost = Some("raft-committed-prefix".to_string());
        assert_eq!(diverged(&[], "S-1", 3), lost, "no removal: a lost committed entry");
        assert_eq!(diverged(&[1], "S-1", 3), lost, "n2 still holds it");
        assert_eq!(diverged(&[1, 2], "S-1", 3), None, "every holder was removed");
        assert_eq!(diverged(&[3], "S-1", 3), None, "the removed server's copy is stale");
        assert_eq!(diverged(&[1, 2], META, 3), lost, "the meta group is never excused");

        // A holder that dropped its copy (it left the group) holds nothing: the removal of
        // the last one that held the entry took it (churn seed 316 of v13).
        let dropped = |dropped_by: NodeIndex| {
            let mut ghost = Ghost::default();
            ghost.observe_apply("S-1", 1, 5, 2, 0xa, 0xa);
            ghost.observe_apply("S-1", 2, 5, 2, 0xa, 0xa);
            ghost.observe_group_dropped("S-1", dropped_by);
            ghost.observe_peer_removed(10, 1);
            ghost.observe_apply("S-1", 3, 5, 7, 0xb, 0xb);
            ghost.violation.map(|v| v.invariant)
        };
        assert_eq!(dropped(2), None, "n2 left the group, n1 was removed");
        assert_eq!(dropped(1), lost, "n2 still holds it");

        // Once the members' history replaces the lost entry, it is what they are held to.
        let mut ghost = Ghost::default();
        ghost.observe_apply("S-1", 1, 5, 2, 0xa, 0xa);
        ghost.observe_peer_removed(10, 1);
        ghost.observe_apply("S-1", 3, 5, 7, 0xb, 0xb);
        assert!(ghost.forked_by_removals.contains("S-1"));
        ghost.observe_apply("S-1", 4, 5, 8, 0xc, 0xc);
        assert_eq!(ghost.violation.map(|v| v.invariant), lost);

        // Acknowledgements by a removed server's stale copy are not promised.
        let s = StreamKey::new("A", "S");
        let mut ghost = Ghost::default();
        ghost.observe_acked_messages("S-1", &s, 7, 1, 3);
        ghost.observe_peer_removed(10, 2);
        ghost.observe_acked_messages("S-1", &s, 7, 2, 5);
        assert_eq!(ghost.acked_messages(&s, 7, "S-1"), 3);
        // Added back, it is a member like any other; a late apply of the old removal elsewhere
        // changes nothing.
        ghost.observe_peer_added(12, 2);
        ghost.observe_peer_removed(10, 2);
        ghost.observe_acked_messages("S-1", &s, 7, 2, 5);
        assert_eq!(ghost.acked_messages(&s, 7, "S-1"), 8);
    }

    /// The reference state machine continues an incarnation's line only into a group on its
    /// store's server (a scale-up): a stream a peer removal moved to another server's fresh
    /// group left its messages behind (churn seeds 1417, 15420 and 17427 of v14).
    #[test]
    fn a_line_continues_only_where_the_store_went() {
        use crate::meta::{MetaEntry, RaftGroup, StreamAssignment, StreamConfig};
        let s = StreamKey::new("A", "S");
        let assignment = |group: &str, peers: &[u32], replicas: u8| StreamAssignment {
            account: "A".into(),
            name: "S".into(),
            created_ms: 7,
            config_json: StreamConfig { name: "S".into(), replicas, ..Default::default() }.to_json(),
            group: RaftGroup { name: group.into(), peers: peers.to_vec(), preferred: None, joiners: vec![] },
            sync: "$SYS.JSC.SYNC.S".into(),
            consumers: Default::default(),
        };
        let mut ghost = Ghost::default();
        let entries = [
            MetaEntry::AssignStream { sa: assignment("S-R1-a", &[0], 1), reply: None },
            MetaEntry::UpdateStream { sa: assignment("S-R1-b", &[4], 1), reply: None },
            MetaEntry::UpdateStream { sa: assignment("S-R3-c", &[1, 2, 4], 3), reply: None },
        ];
        for (index, entry) in (1..).zip(&entries) {
            ghost.observe_meta_entry(index, Some(&entry.encode()));
        }
        ghost.observe_acked_messages("S-R1-a", &s, 7, 0, 4);
        ghost.observe_acked_messages("S-R1-b", &s, 7, 4, 2);
        assert_eq!(ghost.acked_messages(&s, 7, "S-R1-b"), 2, "moved to n4: n0's store stayed behind");
        assert_eq!(ghost.acked_messages(&s, 7, "S-R3-c"), 2, "scaled up on n4: its store went along");
    }

    #[test]
    fn acknowledged_messages_are_owed_per_incarnation_across_groups() {
        let s = StreamKey::new("A", "S");
        let mut ghost = Ghost::default();
        ghost.observe_acked_messages("S-R1-a", &s, 7, 1, 4);
        // Scaled up: the new group took over the store and owes what the old one took.
        ghost.continue_line("S-R1-a", "S-R3-b");
        ghost.observe_acked_messages("S-R3-b", &s, 7, 2, 2);
        assert_eq!(ghost.acked_messages(&s, 7, "S-R3-b"), 6);
        // A new incarnation owes only its own, even with the same created time (a clock that
        // stood still).
        ghost.observe_acked_messages("S-R1-c", &s, 9, 1, 1);
        assert_eq!(ghost.acked_messages(&s, 9, "S-R1-c"), 1);
        assert_eq!(ghost.acked_messages(&s, 7, "S-R1-d"), 0);
        // Every peer of the incarnation's group removed: its messages are not owed any more.
        ghost.observe_group_emptied("S-R3-b");
        assert_eq!(ghost.acked_messages(&s, 7, "S-R3-b"), 0);
        assert_eq!(ghost.acked_messages(&s, 9, "S-R1-c"), 1);
    }

    /// Churn seed 27476 of v15: an R1 store's messages carried into a group that then starts
    /// over on the same peers (its founder, their only holder, removed). The group they were
    /// acknowledged in never acknowledged any itself; the line owes none of them any more, and
    /// the fresh group, continuing it, owes what it acknowledges.
    #[test]
    fn a_group_emptied_takes_what_its_line_acknowledged_before_it() {
        let s = StreamKey::new("A", "S");
        let mut ghost = Ghost::default();
        ghost.observe_acked_messages("S-R1-a", &s, 7, 0, 3);
        ghost.continue_line("S-R1-a", "S-R3-b");
        assert_eq!(ghost.acked_messages(&s, 7, "S-R3-b"), 3);
        ghost.observe_group_emptied("S-R3-b");
        ghost.continue_line("S-R3-b", "S-R3-c");
        assert_eq!(ghost.acked_messages(&s, 7, "S-R3-c"), 0);
        ghost.observe_acked_messages("S-R3-c", &s, 7, 1, 2);
        assert_eq!(ghost.acked_messages(&s, 7, "S-R3-c"), 2);
    }
}
