//! What an event touched, so the safety checks look only there (issue 16).
//!
//! Between events the checks remember, for every running server, what they read of each of
//! its raft groups (a [`GroupMark`]), and the cross-group facts those reads assumed (tainted
//! disks, meta memberships, the meta members). After an event on one server, the groups whose
//! marks changed there are checked on every server (a follower's log decides whether another
//! server could be elected); anything else, or any change of the cross-group facts, means a
//! full sweep. Every group passed the previous check, and nothing another group's check reads
//! changed, so the verdict and the first violation are those of a full sweep, which
//! `--full-checks` runs to prove it.

use std::collections::BTreeMap;

use sim::{Cluster, NodeIndex, Touched};

use super::meta_members;
use crate::harness::ghost::Ghost;
use crate::meta::{PeerId, Revision};
use crate::raft::{Index, Stamp, Term};
use crate::server::group::Group;
use crate::server::jetstream::MetaLayer;
use crate::server::wire::META;
use crate::server::Server;

/// What the raft checks read of one group on one server. An entry's term below the log's end
/// is not in it: with one leader per term (checked as leaders are observed, and only excused
/// on a tainted disk, when the checks that read it are off) a log that ends at the same index
/// and term holds the same entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GroupMark {
    term: Term,
    leader: bool,
    commit: Index,
    applied: Index,
    state_index: Index,
    state_chain: u64,
    last_index: Index,
    last_term: Term,
    snapshot_index: Index,
    may_campaign: bool,
    votes_needed: usize,
    peers: u64,
}

impl GroupMark {
    fn of(group: &Group) -> Self {
        let node = &group.node;
        GroupMark {
            term: node.term(),
            leader: node.leader(),
            commit: node.commit_index(),
            applied: node.applied_index(),
            state_index: group.applied.index,
            state_chain: group.applied.chain,
            last_index: node.last_index(),
            last_term: node.last_term(),
            snapshot_index: node.snapshot_index(),
            may_campaign: node.may_campaign(),
            votes_needed: node.election_votes_needed(),
            peers: node.peers().iter().fold(0, |bits, &p| bits | 1u64 << (p % 64)),
        }
    }
}

/// One group's mark, with the raft node's change stamp when it was taken: while the stamp
/// and the applied state (the rest of the mark) stay, the mark does, and is not read again.
#[derive(Debug)]
struct Marked {
    name: String,
    /// The group's slot in its server's group set (see [`Group::slot`]).
    slot: u32,
    mark: GroupMark,
    stamp: Stamp,
}

impl Marked {
    fn of(group: &Group) -> Self {
        Marked { name: group.name.clone(), slot: group.slot(), mark: GroupMark::of(group), stamp: group.node.stamp() }
    }

    /// Nothing the mark reads moved since it was taken.
    fn holds(&self, group: &Group) -> bool {
        self.stamp == group.node.stamp()
            && self.mark.state_index == group.applied.index
            && self.mark.state_chain == group.applied.chain
    }
}

/// One server's group marks, and the revision of its group set they were taken at: the same
/// revision means the same names, in the same order.
#[derive(Debug, Default)]
struct ServerMarks {
    groups: Option<Revision>,
    marks: Vec<Marked>,
    /// By slot: where in `marks` that group's mark is (`NO_MARK` for a slot no group holds).
    /// An event touches a group or two of thousands; found by slot, its mark costs no search
    /// by name.
    at_slot: Vec<u32>,
}

const NO_MARK: u32 = u32::MAX;

impl ServerMarks {
    fn of(server: &Server) -> Self {
        Self::new(Some(server.groups_revision()), server.groups().map(Marked::of).collect())
    }

    fn new(groups: Option<Revision>, marks: Vec<Marked>) -> Self {
        let slots = marks.iter().map(|m| m.slot as usize + 1).max().unwrap_or(0);
        let mut at_slot = vec![NO_MARK; slots];
        for (at, marked) in marks.iter().enumerate() {
            at_slot[marked.slot as usize] = u32::try_from(at).expect("fewer than 2^32 groups");
        }
        ServerMarks { groups, marks, at_slot }
    }

    /// The mark of `group`, which must have one.
    fn of_group(&mut self, group: &Group) -> &mut Marked {
        let at = self.at_slot.get(group.slot() as usize).copied().filter(|&at| at != NO_MARK);
        let marked = &mut self.marks[at.expect("a mark for every group") as usize];
        debug_assert_eq!(marked.name, group.name, "slot {}", group.slot());
        marked
    }

    /// Asserts that no mark moved where its stamp did not (`new` was taken after `self`): a
    /// full sweep proves the stamps the incremental checks trust.
    fn vouch_for(&self, new: &ServerMarks) {
        if self.groups.is_none() || self.groups != new.groups {
            return;
        }
        for (old, new) in self.marks.iter().zip(&new.marks) {
            let held = old.stamp == new.stamp
                && (old.mark.state_index, old.mark.state_chain) == (new.mark.state_index, new.mark.state_chain);
            assert!(
                !held || old.mark == new.mark,
                "{}: the raft state moved without its stamp: {:?} {:?}",
                old.name,
                old.mark,
                new.mark
            );
        }
    }
}

/// Where the next safety check must look.
#[derive(Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every group of every running server.
    All,
    /// These groups (by name, in order), on every running server.
    Groups(Vec<String>),
}

/// The checks' memory between events.
#[derive(Debug, Default)]
pub struct CheckMemo {
    /// Per node index: its groups' marks in name order, as last checked (empty when down).
    marks: Vec<ServerMarks>,
    tainted: Vec<NodeIndex>,
    membership: BTreeMap<PeerId, (Index, bool)>,
    meta_members: Vec<PeerId>,
    /// Per node index: what its meta layer's assignment-wide checks last passed on.
    layers: Vec<Option<LayerMark>>,
    /// The meta checks' list of projections, emptied and reused from event to event.
    pub(super) projections: Vec<(u64, u32, u64)>,
    /// What the meta checks of every server last passed on.
    pub(super) meta_seen: super::meta::MetaSeen,
}

/// What a meta layer's assignment-wide checks read: the applied assignments, the local assets,
/// the server's group names (an unsupported asset must have no node) and whether any disk
/// lied (the stream limit holds only where none did).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerMark {
    state: Revision,
    local: Revision,
    groups: Revision,
    untainted: bool,
}

impl LayerMark {
    pub fn of(ghost: &Ghost, server: &Server, meta: &MetaLayer) -> Self {
        LayerMark {
            state: meta.state.revision(),
            local: meta.local.revision(),
            groups: server.groups_revision(),
            untainted: ghost.tainted.is_empty(),
        }
    }
}

impl CheckMemo {
    /// Where to look after `touched`, and the memo brought up to date with the cluster.
    pub fn scope(&mut self, ghost: &Ghost, cluster: &Cluster<'_, Server>, touched: Touched) -> Scope {
        let members = meta_members(cluster.running());
        let same_facts = self.marks.len() == cluster.nodes.len()
            && self.tainted.iter().copied().eq(ghost.tainted.iter().copied())
            && self.membership == ghost.meta_membership
            && self.meta_members == members;
        let scope = match (touched, cluster.server(touched_node(touched))) {
            (Touched::Node(node), Some(server)) if same_facts => self.remark(node, server),
            _ => Scope::All,
        };
        if scope == Scope::All {
            let marks: Vec<ServerMarks> = (0..cluster.nodes.len() as NodeIndex)
                .map(|n| cluster.server(n).map(ServerMarks::of).unwrap_or_default())
                .collect();
            for (old, new) in self.marks.iter().zip(&marks) {
                old.vouch_for(new);
            }
            self.marks = marks;
            self.tainted = ghost.tainted.iter().copied().collect();
            self.membership = ghost.meta_membership.clone();
            self.meta_members = members.to_vec();
        }
        scope
    }

    /// The mark `node`'s meta layer last passed its assignment-wide checks on.
    pub fn layer_passed(&self, node: NodeIndex) -> Option<LayerMark> {
        self.layers.get(node as usize).copied().flatten()
    }

    pub fn layer_passes(&mut self, node: NodeIndex, mark: LayerMark) {
        let node = node as usize;
        if self.layers.len() <= node {
            self.layers.resize(node + 1, None);
        }
        self.layers[node] = Some(mark);
    }

    /// Updates `node`'s marks; the groups whose marks changed (or that came or went), or
    /// `All` when its meta group's members changed (a server's meta members decide whose
    /// votes count in every asset group).
    fn remark(&mut self, node: NodeIndex, server: &Server) -> Scope {
        let old = &mut self.marks[node as usize];
        if old.groups == Some(server.groups_revision()) {
            let mut changed = Vec::new();
            let mut remark = |marked: &mut Marked, group: &Group| {
                if marked.holds(group) {
                    debug_assert_eq!(GroupMark::of(group), marked.mark, "{}: moved without its stamp", marked.name);
                    return true;
                }
                let now = GroupMark::of(group);
                if now == marked.mark {
                    marked.stamp = group.node.stamp();
                    return true;
                }
                if marked.name == META && now.peers != marked.mark.peers {
                    return false; // a full sweep retakes every mark
                }
                marked.mark = now;
                marked.stamp = group.node.stamp();
                changed.push(marked.name.clone());
                true
            };
            // Only the groups the input touched can have moved (see `GroupSet`).
            let same_members = match server.groups_touched() {
                None => old.marks.iter_mut().zip(server.groups()).all(|(marked, group)| remark(marked, group)),
                // The same group set as at the last mark: every group running has one.
                Some(mut touched) => touched.all(|group| remark(old.of_group(group), group)),
            };
            return if same_members { Scope::Groups(changed) } else { Scope::All };
        }
        // Groups came or went: walk the old marks and the groups side by side in name order,
        // keeping the marks (and names) of the groups that stayed, re-marking only those whose
        // stamp moved.
        let meta_peers = |marks: &[Marked]| marks.iter().find(|m| m.name == META).map(|m| m.mark.peers);
        let meta_before = meta_peers(&old.marks);
        let mut before = std::mem::take(&mut old.marks).into_iter().peekable();
        let mut marks = Vec::with_capacity(before.len());
        let mut names = Vec::new();
        for group in server.groups() {
            names.extend(std::iter::from_fn(|| before.next_if(|m| m.name < group.name)).map(|gone| gone.name));
            let Some(mut marked) = before.next_if(|m| m.name == group.name) else {
                names.push(group.name.clone());
                marks.push(Marked::of(group));
                continue;
            };
            // The same name may have been stopped and started again since: a new slot.
            marked.slot = group.slot();
            if marked.holds(group) {
                debug_assert_eq!(GroupMark::of(group), marked.mark, "{}: moved without its stamp", marked.name);
            } else {
                let now = GroupMark::of(group);
                if now != marked.mark {
                    names.push(group.name.clone());
                }
                (marked.mark, marked.stamp) = (now, group.node.stamp());
            }
            marks.push(marked);
        }
        names.extend(before.map(|gone| gone.name));
        *old = ServerMarks::new(Some(server.groups_revision()), marks);
        if meta_before != meta_peers(&old.marks) {
            return Scope::All;
        }
        Scope::Groups(names)
    }
}

fn touched_node(touched: Touched) -> NodeIndex {
    match touched {
        Touched::Node(node) => node,
        Touched::World => NodeIndex::MAX,
    }
}
