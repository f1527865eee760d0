//! What a server tells the oracle as it happens. Each observation is a fact no server state
//! keeps afterwards (who led which term, what was applied at an index, what was acknowledged
//! to a client); the harness checks them against the run's history. Borrowed: the engine
//! hands them on at once and keeps none.

use std::collections::BTreeMap;

use sim::NodeIndex;

use crate::meta::{ConsumerKey, LocalAssets, MetaEntry, MetaState, PeerId, RaftGroup, StreamAssignment, StreamKey};
use crate::raft::{Index, Term};

/// Where a client's request was sent when it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestTarget {
    /// The server this one took for the meta leader (itself included).
    Server(NodeIndex),
    /// Every other server: this one runs no meta group, and the meta leader answers.
    Everyone,
    /// Nowhere: no leader known, the request waits for its timeout.
    Nowhere,
}

#[derive(Debug)]
pub enum Observation<'a> {
    /// This server leads `term` of raft group `group` (its role; the apply barrier may not be
    /// passed yet) and has committed up to `commit`.
    Leads { group: &'a str, term: Term, commit: Index },
    /// It applied entry `index` of `term` of `group`, whose digest is `digest`, reaching the
    /// applied-state chain `chain`.
    Applied { group: &'a str, index: Index, term: Term, digest: u64, chain: u64 },
    /// It installed a snapshot of `group` ending at `index` whose state chain is `chain`.
    SnapshotInstalled { group: &'a str, index: Index, chain: u64 },
    /// A proposal it made for `proposed_term` went into its log as an entry of `entry_term`.
    Appended { proposed_term: Term, entry_term: Option<Term> },
    /// It acknowledged `count` messages to a client of incarnation `created_ms` of `stream`,
    /// running in `group`.
    MessagesAcked { group: &'a str, stream: &'a StreamKey, created_ms: u64, count: u32 },
    /// The meta leader found every peer of `group` removed: what the group held is gone.
    GroupEmptied { group: &'a str },
    /// It founded group `to` of `stream` on the R1 store of group `from`, carrying `messages`.
    StoreCarried { stream: &'a StreamKey, from: &'a str, to: &'a str, messages: u64 },
    /// This server dropped its copy of asset group `group` (removed its files).
    GroupDropped { group: &'a str },

    /// Its meta layer hands up meta index `index` (`None`: no meta operation in it).
    MetaEntry { index: Index, data: Option<&'a [u8]> },
    /// Its meta layer reached applied index `index` with projection `digest`.
    Projection { index: Index, digest: u64 },
    /// It took a meta snapshot at `index` whose projection is `digest`.
    MetaSnapshotTaken { index: Index, digest: u64 },
    /// It installs or stages a meta snapshot at `index` with projection `digest`.
    MetaSnapshotInstalled { index: Index, digest: u64, streams: &'a BTreeMap<StreamKey, StreamAssignment> },
    /// A recovery ended at meta index `index` with projection `digest`.
    Recovered { index: Index, digest: u64 },
    /// Its start-up recovery ended (flushed, the snapshot's dropped adds removed) with these
    /// `local` assets and applied `state`: the local assets the state lacks then are the only
    /// ones that may lack their assignment in normal mode, until the one-shot check (§4) or a
    /// leader's snapshot removes them.
    StartupOrphans { local: &'a LocalAssets, state: &'a MetaState },
    /// It applies an assignment of a stream it may already hold (`applied`).
    StreamAssigned { assignment: &'a StreamAssignment, applied: Option<&'a StreamAssignment> },
    /// It is about to remove orphans; `in_sync` says whether it knew a meta leader and its
    /// meta group was healthy.
    OrphansRemoving { in_sync: bool, streams: usize, consumers: usize },
    /// It removed a local stream (or a consumer of it) created at `created_ms` as an orphan.
    OrphanRemoved { stream: &'a StreamKey, consumer: Option<&'a str>, created_ms: u64 },
    /// It removed `consumer`, a mirror's direct consumer created at `created_ms` (the mirror's
    /// created time), which `running` says ran. `origin_group` is the group its local origin
    /// stream runs in (`None`: it does not run here), `leads_origin` whether this server leads
    /// that stream (an R1 stream's only member always does; `None`: not known on this path).
    DirectConsumerRemoved {
        consumer: &'a ConsumerKey,
        created_ms: u64,
        running: bool,
        origin_group: Option<&'a str>,
        leads_origin: Option<bool>,
    },

    /// Its meta layer starts (`true`) or stops (`false`) acting as leader.
    MetaActing { acting: bool },
    /// As acting meta leader (or not: `None`) of a term, it applied the removal of `peer` in
    /// normal mode.
    RemovalApplied { peer: PeerId, leader_term: Option<Term> },
    /// Meta index `index` removes `peer` from the meta group, or adds it.
    Membership { index: Index, peer: PeerId, member: bool },
    /// As leader of a scaled-down stream group, it proposed at `index` the removal of member
    /// `removed`, to shrink the group to its replicas, at `now_ms` on its monotonic clock (the
    /// clock its raft node notes contacts by).
    ShrinkRemoving { group: &'a str, index: Index, removed: PeerId, now_ms: u64 },
    /// The meta leader proposed the removal of `peer` in `term`.
    PeerRemoveProposed { term: Term, peer: PeerId },
    /// The meta leader answered the removal of `peer` it proposed in `term`.
    PeerRemoveAnswered { term: Term, peer: PeerId },
    /// The meta leader lost its leadership with a removal unanswered.
    PeerRemoveDropped,
    /// The meta leader proposes `entry` with these meta peers. `kept` is the group the
    /// applied state already has for the asset; `stream` the group of a consumer's stream,
    /// applied or inflight (whose peers a consumer may inherit).
    MetaProposed {
        entry: &'a MetaEntry,
        meta_peers: &'a [PeerId],
        kept: Option<&'a RaftGroup>,
        stream: Option<&'a RaftGroup>,
    },
    /// The meta leader answers a failed-create report about group `reported` of `stream` by
    /// removing group `removed`.
    ResultRemoves { stream: &'a StreamKey, reported: &'a str, removed: &'a str },

    /// A client of this server opened request `request`, sent to `target`. `watched`: it is
    /// a request the acting meta leader must answer (L7).
    RequestOpened { request: u64, target: RequestTarget, watched: bool },
    /// A client of this server got its answer to `request`.
    RequestAnswered { request: u64 },
    /// A request of this server's client timed out.
    RequestTimedOut { request: u64 },
    /// The meta leader sent `origin`'s info request `request` to the members of `group`,
    /// whose leader answers it.
    InfoRouted { origin: NodeIndex, request: u64, group: &'a str },
    /// This server, leader of `term` of `group`, stepped down and handed over to `heir`.
    HandedOver { group: &'a str, term: Term, heir: NodeIndex },
}
