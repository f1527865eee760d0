//! Behaviour tests for the Raft core. Node-level tests drive one `RaftNode` by hand; cluster
//! tests use `harness::Cluster` (seeded delivery, drops, partitions, crash = restore from the
//! node's simulated disk). Each test says which rule of the brief/spec it pins.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::harness::{Cluster, TICK_MS};
use super::*;

fn entry(index: Index, term: Term) -> Entry {
    Entry { term, index, data: EntryData::Normal(vec![index as u8, term as u8]) }
}

fn config(id: PeerId) -> Config {
    Config { id, ..Config::default() }
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

/// A node restored with the given log (term = last log term, nothing committed).
fn restored(id: PeerId, peers: Vec<PeerId>, term: Term, entries: Vec<Entry>) -> RaftNode {
    let hard = HardState { term, voted_for: None, commit: 0 };
    let mut node = RaftNode::restore(config(id), peers, hard, None, entries, 0, &mut rng()).unwrap();
    let _ = node.ready();
    node
}

fn normal(byte: u8) -> EntryData {
    EntryData::Normal(vec![byte])
}

// ---------------------------------------------------------------------------------------------
// Randomised cluster runs.

/// Random partitions (isolate one node, or split) that change every 2-15 s, random drops,
/// proposals at whoever leads. Returns the cluster after a healed convergence phase.
fn chaos_run(seed: u64, crashes: bool, tweak: impl Fn(&mut Config)) -> Cluster {
    let mut cluster = Cluster::new(5, seed, tweak);
    let mut chaos = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9));
    cluster.drop_per_mille = chaos.gen_range(0..150);
    let mut next_fault_ms = 0;
    let mut byte = 0u8;
    while cluster.now_ms < 120_000 {
        if cluster.now_ms >= next_fault_ms {
            next_fault_ms = cluster.now_ms + chaos.gen_range(2_000..15_000);
            cluster.heal();
            match chaos.gen_range(0..4) {
                0 | 1 => {}
                2 => cluster.isolate(chaos.gen_range(0..5)),
                _ => {
                    // Split into a random minority and majority.
                    let a = chaos.gen_range(0..5);
                    let b = (a + chaos.gen_range(1..5)) % 5;
                    cluster.isolate(a);
                    cluster.isolate(b);
                    cluster.cut.remove(&(a, b));
                    cluster.cut.remove(&(b, a));
                }
            }
            if crashes {
                // At most two nodes down at once; restart the others.
                for id in cluster.ids() {
                    if cluster.down.contains(&id) && chaos.gen_bool(0.5) {
                        cluster.restart(id);
                    }
                }
                if cluster.down.len() < 2 && chaos.gen_bool(0.5) {
                    cluster.crash(chaos.gen_range(0..5));
                }
            }
        }
        if let Some(leader) = cluster.leader() {
            if chaos.gen_bool(0.3) {
                byte = byte.wrapping_add(1);
                let _ = cluster.propose(leader, normal(byte));
            }
        }
        if crashes {
            for id in cluster.ids() {
                if !cluster.down.contains(&id) {
                    cluster.maybe_compact(id, 16);
                }
            }
        }
        cluster.run_for(TICK_MS);
    }
    // Heal everything and check the group converges.
    cluster.heal();
    cluster.drop_per_mille = 0;
    for id in cluster.ids() {
        if cluster.down.contains(&id) {
            cluster.restart(id);
        }
    }
    // A leader cut off for a while steps down (lost quorum) once it ticks: let that settle,
    // then a marker must reach every node (retry if leadership moved before it committed).
    cluster.run_for(10_000);
    let marker = normal(0xff);
    for attempt in 0..5 {
        let leader = cluster.await_leader(30_000);
        let _ = cluster.propose(leader, marker.clone());
        cluster.run_for(5_000);
        let everywhere = cluster.apps.iter().all(|app| app.history.iter().any(|e| e.data == marker));
        if everywhere {
            break;
        }
        assert!(attempt < 4, "seed {seed}: marker never reached every node");
    }
    cluster
}

/// Election safety (one leader per term) and state machine safety (committed prefixes agree)
/// under random drops and partitions, over many seeds; the group converges after healing.
#[test]
fn chaos_one_leader_per_term_and_agreeing_prefixes() {
    let mut terms = 0;
    for seed in 0..60 {
        // Odd seeds use short timers (more elections per simulated minute).
        let cluster = chaos_run(seed, false, |c| {
            if seed % 2 == 1 {
                c.heartbeat_ms = 200;
                c.election_timeout_ms_min = 800;
                c.election_timeout_ms_max = 1_800;
            }
        });
        terms += cluster.leaders.len();
        assert!(cluster.violations.is_empty(), "seed {seed}: {:?}", cluster.violations);
        assert!(cluster.committed.len() > 10, "seed {seed}: too little committed");
    }
    assert!(terms > 60 * 4, "leadership changed too rarely to test much: {terms} terms");
}

/// The same under crashes and restarts from the simulated disk, with compaction, so that
/// restore(), replay and snapshot installs are exercised.
#[test]
fn chaos_with_crashes_and_compaction_keeps_committed_entries() {
    let mut installs = 0;
    let mut terms = 0;
    for seed in 100..140 {
        let cluster = chaos_run(seed, true, |c| {
            if seed % 2 == 1 {
                c.heartbeat_ms = 200;
                c.election_timeout_ms_min = 800;
                c.election_timeout_ms_max = 1_800;
            }
        });
        terms += cluster.leaders.len();
        assert!(cluster.violations.is_empty(), "seed {seed}: {:?}", cluster.violations);
        installs += cluster.apps.iter().flat_map(|app| &app.signals).filter(|s| **s == Signal::CatchupStarted).count();
    }
    assert!(installs > 0, "no run exercised a snapshot install");
    assert!(terms > 40 * 4, "leadership changed too rarely to test much: {terms} terms");
    eprintln!("crash runs: {terms} terms, {installs} snapshot installs");
}

/// An observer never campaigns, so it is never candidate nor leader, in any run.
#[test]
fn observer_never_elected() {
    for seed in 200..210 {
        let mut cluster = Cluster::new(3, seed, |c| c.observer = c.id == 2);
        cluster.drop_per_mille = 100;
        for step in 0..300 {
            if step % 40 == 0 {
                cluster.heal();
                cluster.isolate((step / 40) % 2);
            }
            cluster.run_for(TICK_MS);
            assert_eq!(cluster.node(2).role(), Role::Follower, "seed {seed}");
        }
        assert!(cluster.violations.is_empty());
    }
    // TimeoutNow is ignored too.
    let mut observer = RaftNode::new(Config { observer: true, ..config(2) }, vec![0, 1, 2], 0, &mut rng());
    observer.step(10, 0, Message::TimeoutNow { term: 0 }, &mut rng());
    observer.tick(100_000, &mut rng());
    assert_eq!(observer.role(), Role::Follower);
    assert_eq!(observer.term(), 0);
    assert!(observer.ready().messages.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Elections and votes.

/// Vote granted only to an up-to-date log (last term, then last index), once per term; a
/// higher term makes the node a follower of that term.
#[test]
fn vote_requires_up_to_date_log_and_one_vote_per_term() {
    let mut node = restored(0, vec![0, 1, 2], 2, vec![entry(1, 1), entry(2, 2)]);
    let vote = |node: &mut RaftNode, from, last_log_index, last_log_term| {
        let msg =
            Message::RequestVote { term: 3, last_log_index, last_log_term, transfer: false, needs_every_vote: false };
        node.step(0, from, msg, &mut rng());
        let ready = node.ready();
        match ready.messages.as_slice() {
            [(to, Message::Vote { term: 3, granted })] if *to == from => *granted,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(!vote(&mut node, 1, 9, 1), "lower last term loses despite longer log");
    assert_eq!(node.term(), 3, "term adopted even when the vote is refused");
    assert!(!vote(&mut node, 2, 1, 2), "same last term, shorter log");
    assert!(vote(&mut node, 2, 2, 2), "equal log is up to date");
    assert!(!vote(&mut node, 1, 9, 9), "already voted for 2 in term 3");
    assert!(vote(&mut node, 2, 2, 2), "repeat vote for the same candidate");
}

/// Term and vote are in the hard state of the same Ready as the Vote (durable before it is
/// sent); with bugs.vote_not_persisted the vote is missing from the hard state.
#[test]
fn vote_goes_out_with_its_hard_state() {
    for bug in [false, true] {
        let mut cfg = config(0);
        cfg.bugs.vote_not_persisted = bug;
        let mut node = RaftNode::new(cfg, vec![0, 1, 2], 0, &mut rng());
        let _ = node.ready();
        let msg = Message::RequestVote {
            term: 5,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
            needs_every_vote: false,
        };
        node.step(1, 1, msg, &mut rng());
        let ready = node.ready();
        assert_eq!(ready.messages, vec![(1, Message::Vote { term: 5, granted: true })]);
        let hard = ready.hard_state.expect("term and vote must be persisted first");
        assert_eq!(hard.term, 5);
        assert_eq!(hard.voted_for, if bug { None } else { Some(1) });
    }
}

/// A vote lost by a crash (bugs.vote_not_persisted) lets a node vote twice in one term after
/// restart: two leaders in term 1. The correct build refuses the second vote.
#[test]
fn vote_not_persisted_allows_two_leaders_in_one_term() {
    for bug in [false, true] {
        let mut cluster = Cluster::new(3, 1, |c| c.bugs.vote_not_persisted = bug);
        cluster.campaign(0);
        cluster.deliver_only(|f, t, m| matches!(m, Message::RequestVote { .. } | Message::Vote { .. }) && f + t == 1);
        assert_eq!(cluster.node(0).role(), Role::Leader);
        assert_eq!(cluster.node(0).term(), 1);
        cluster.crash(1);
        cluster.restart(1);
        cluster.campaign(2);
        cluster.deliver_only(|f, t, m| matches!(m, Message::RequestVote { .. } | Message::Vote { .. }) && f + t == 3);
        assert_eq!(cluster.node(2).term(), 1);
        if bug {
            assert_eq!(cluster.node(2).role(), Role::Leader);
            assert!(cluster.violations.iter().any(|v| v.contains("two leaders in term 1")));
        } else {
            assert_eq!(cluster.node(2).role(), Role::Candidate);
            assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
        }
    }
}

/// Leader stickiness: a follower that heard from its leader within election_timeout_ms_min
/// ignores a non-transfer RequestVote (no term change, no answer); transfer=true overrides,
/// and after the lease a plain request is answered.
#[test]
fn leader_lease_ignores_vote_requests_without_transfer() {
    let mut cluster = Cluster::new(3, 3, |_| {});
    let leader = cluster.await_leader(20_000);
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    cluster.run_for(1_000);
    let (term, last_index, last_term) = {
        let node = cluster.node(follower);
        (node.term(), node.last_index(), node.entry_term(node.last_index()).unwrap())
    };
    let request = |transfer| Message::RequestVote {
        term: term + 1,
        last_log_index: last_index,
        last_log_term: last_term,
        transfer,
        needs_every_vote: false,
    };
    let now = cluster.now_ms;
    let node = &mut cluster.nodes[follower as usize];
    node.step(now, other, request(false), &mut rng());
    assert_eq!(node.term(), term, "ignored inside the lease");
    assert!(node.ready().messages.is_empty());
    node.step(now, other, request(true), &mut rng());
    assert_eq!(node.term(), term + 1);
    assert_eq!(node.ready().messages, vec![(other, Message::Vote { term: term + 1, granted: true })]);

    // Past the lease a plain request is considered.
    let mut lone = RaftNode::new(config(1), vec![0, 1, 2], 0, &mut rng());
    lone.step(
        0,
        0,
        Message::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![], commit: 0, base: None },
        &mut rng(),
    );
    let _ = lone.ready();
    let plain =
        Message::RequestVote { term: 2, last_log_index: 0, last_log_term: 0, transfer: false, needs_every_vote: false };
    lone.step(3_999, 2, plain.clone(), &mut rng());
    assert_eq!(lone.term(), 1);
    lone.step(4_000, 2, plain, &mut rng());
    assert_eq!(lone.term(), 2);
}

/// A message with a higher term turns a leader into a follower of that term (SteppedDown
/// signalled, term persisted); stale-term messages get the newer term back.
#[test]
fn higher_term_makes_leader_follow_and_stale_messages_are_answered() {
    let mut cluster = Cluster::new(3, 4, |_| {});
    let leader = cluster.await_leader(20_000);
    let term = cluster.node(leader).term();
    let i = leader as usize;
    let now = cluster.now_ms;
    let from = (leader + 1) % 3;
    let response = Message::AppendResponse { term: term + 3, success: false, match_index: 0, hint: 0 };
    cluster.nodes[i].step(now, from, response, &mut rng());
    assert_eq!(cluster.node(leader).role(), Role::Follower);
    assert_eq!(cluster.node(leader).term(), term + 3);
    let ready = cluster.nodes[i].ready();
    assert_eq!(ready.hard_state.map(|h| h.term), Some(term + 3));
    assert!(ready.applied.contains(&Applied::Signal(Signal::SteppedDown { term })));
    // A stale Append is answered with the newer term.
    let stale = Message::Append { term, prev_index: 0, prev_term: 0, entries: vec![], commit: 0, base: None };
    cluster.nodes[i].step(now, from, stale, &mut rng());
    let ready = cluster.nodes[i].ready();
    assert!(
        matches!(ready.messages.as_slice(), [(_, Message::AppendResponse { success: false, term: t, .. })] if *t == term + 3)
    );
}

// ---------------------------------------------------------------------------------------------
// Replication and commit.

/// Raft Figure 8, built explicitly with ids 0..4 for S1..S5 and one entry per Append:
/// (a) S1 leads term 1, index 1 reaches S2 only; (b) S5 leads term 2 with its own index 1;
/// (c) S1 leads term 3 and copies index 1 (term 1) to S3: a majority holds it;
/// (d) S5 leads term 4 and overwrites index 1 everywhere.
/// With bugs.commit_old_term S1 commits index 1 in (c) and it is lost in (d); the correct
/// build never commits it, so nothing committed is lost.
#[test]
fn figure8_old_term_entry_commit_is_unsafe() {
    for bug in [false, true] {
        let mut cluster = Cluster::new(5, 8, |c| {
            c.max_entries_per_append = 1;
            c.bugs.commit_old_term = bug;
        });
        let votes = |m: &Message| matches!(m, Message::RequestVote { .. } | Message::Vote { .. });
        // (a)
        cluster.campaign(0);
        cluster.deliver_only(|f, t, m| {
            let pair = (f.min(t), f.max(t));
            (votes(m) && f.max(t) <= 2) || (!votes(m) && pair == (0, 1))
        });
        assert_eq!((cluster.node(0).role(), cluster.node(0).term()), (Role::Leader, 1));
        assert_eq!(cluster.node(1).entry_term(1), Some(1));
        assert_eq!(cluster.node(0).commit_index(), 0);
        cluster.crash(0);
        // (b) S5 needs two tries: S2 and S3 already voted in term 1.
        cluster.now_ms += 10_000;
        cluster.campaign(4);
        cluster.deliver_only(|_, _, m| votes(m));
        cluster.campaign(4);
        cluster.deliver_only(|_, _, m| votes(m));
        assert_eq!((cluster.node(4).role(), cluster.node(4).term()), (Role::Leader, 2));
        assert_eq!(cluster.node(4).entry_term(1), Some(2));
        cluster.crash(4);
        // (c) S1 needs two tries: S3 and S4 already voted in term 2.
        cluster.now_ms += 10_000;
        cluster.restart(0);
        let in_c = |f: PeerId, t: PeerId| f != 3 && t != 3;
        cluster.campaign(0);
        cluster.deliver_only(|f, t, m| votes(m) && in_c(f, t));
        cluster.campaign(0);
        let no_index_2_to_s3 = move |f: PeerId, t: PeerId, m: &Message| {
            let carries_2 = matches!(m, Message::Append { entries, .. } if entries.iter().any(|e| e.index == 2));
            in_c(f, t) && !(t == 2 && carries_2)
        };
        cluster.deliver_only(no_index_2_to_s3);
        assert_eq!((cluster.node(0).role(), cluster.node(0).term()), (Role::Leader, 3));
        cluster.now_ms += 1_000;
        cluster.tick(0); // heartbeat: S3 rejects, S1 backs off and sends index 1
        cluster.deliver_only(no_index_2_to_s3);
        assert_eq!(cluster.node(2).entry_term(1), Some(1), "S3 holds index 1 of term 1");
        assert_eq!(cluster.node(2).last_index(), 1);
        assert_eq!(cluster.node(0).commit_index(), if bug { 1 } else { 0 });
        // Coverage names the path: the old-term entry held back, or committed by the bug.
        let probes: Vec<Probe> = cluster.nodes[0].take_probes().collect();
        let (taken, not_taken) = match bug {
            true => (Probe::CommitOldTerm, Probe::CommitOldTermHeldBack),
            false => (Probe::CommitOldTermHeldBack, Probe::CommitOldTerm),
        };
        assert!(probes.contains(&taken) && !probes.contains(&not_taken), "{probes:?}");
        assert!(probes.contains(&Probe::RestoredFromLog) && probes.contains(&Probe::WonElection), "{probes:?}");
        cluster.crash(0);
        // (d)
        cluster.now_ms += 10_000;
        cluster.restart(4);
        cluster.campaign(4);
        cluster.deliver_only(|_, _, m| votes(m));
        cluster.campaign(4);
        cluster.deliver_only(|_, _, _| true);
        assert_eq!((cluster.node(4).role(), cluster.node(4).term()), (Role::Leader, 4));
        assert_eq!(cluster.node(4).commit_index(), 2);
        assert_eq!(cluster.node(2).entry_term(1), Some(2), "S3's index 1 overwritten");
        if bug {
            assert!(
                cluster.violations.iter().any(|v| v.contains("committed entry 1")),
                "the lost commit must be detected: {:?}",
                cluster.violations
            );
        } else {
            assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
        }
    }
}

/// Consistency check with fast back-off: a follower with a long conflicting suffix is
/// repaired in a few round trips, and the conflicting suffix is truncated on its disk.
#[test]
fn conflicting_suffix_is_truncated_with_fast_backoff() {
    let peers = vec![0, 1, 2];
    // Both diverge after index 1 over long suffixes: linear back-off would need ~30 rounds.
    let newer: Vec<Entry> = (2..=30).map(|i| entry(i, 3)).collect();
    let mut leader = restored(0, peers.clone(), 3, [vec![entry(1, 1)], newer].concat());
    let stale: Vec<Entry> = (2..=40).map(|i| entry(i, 2)).collect();
    let mut follower = restored(1, peers, 2, [vec![entry(1, 1)], stale].concat());
    leader.campaign(0, &mut rng());
    let _ = leader.ready();
    leader.step(0, 2, Message::Vote { term: 4, granted: true }, &mut rng());
    assert_eq!(leader.role(), Role::Leader);
    let mut truncated_at = None;
    let mut appends_to_follower = 0;
    // Ping-pong until quiet; bounded.
    let mut to_follower: Vec<Message> = Vec::new();
    for _ in 0..10 {
        for (to, msg) in leader.ready().messages {
            if to == 1 {
                to_follower.push(msg);
            }
        }
        if to_follower.is_empty() {
            break;
        }
        for msg in to_follower.drain(..) {
            appends_to_follower += 1;
            follower.step(0, 0, msg, &mut rng());
            let ready = follower.ready();
            truncated_at = truncated_at.or(ready.truncate_from);
            for (_, reply) in ready.messages {
                leader.step(0, 1, reply, &mut rng());
            }
        }
    }
    assert_eq!(truncated_at, Some(2), "stale suffix from index 2 removed");
    assert!(appends_to_follower <= 3, "fast back-off: {appends_to_follower} appends");
    assert_eq!(follower.last_index(), leader.last_index());
    for index in 1..=leader.last_index() {
        assert_eq!(follower.entry_term(index), leader.entry_term(index), "index {index}");
    }
}

/// Leader heartbeats once per heartbeat_ms when idle, and no Append carries more than
/// max_entries_per_append entries.
#[test]
fn heartbeats_and_append_size_bound() {
    let mut cluster = Cluster::new(3, 5, |c| c.max_entries_per_append = 4);
    let leader = cluster.await_leader(20_000);
    let follower = (leader + 1) % 3;
    cluster.run_for(2_000);
    let mut heartbeats = 0;
    for _ in 0..100 {
        cluster.now_ms += TICK_MS;
        cluster.tick_all();
        heartbeats += cluster
            .queue
            .iter()
            .filter(|(f, t, m)| *f == leader && *t == follower && matches!(m, Message::Append { .. }))
            .count();
        cluster.deliver_round();
        cluster.deliver_round();
    }
    assert!((9..=11).contains(&heartbeats), "{heartbeats} heartbeats in 10 s");
    // Lagging follower: catch-up goes in batches of at most 4.
    cluster.isolate(follower);
    for byte in 0..20 {
        cluster.propose(leader, normal(byte)).unwrap();
    }
    cluster.run_for(1_000);
    cluster.heal();
    let mut largest = 0;
    for _ in 0..50 {
        for (_, _, msg) in &cluster.queue {
            if let Message::Append { entries, .. } = msg {
                largest = largest.max(entries.len());
            }
        }
        cluster.now_ms += TICK_MS;
        cluster.tick_all();
        cluster.deliver_round();
    }
    assert_eq!(largest, 4);
    assert_eq!(cluster.node(follower).commit_index(), cluster.node(leader).commit_index());
}

/// A single-node group commits on its own, but only entries handed out in an earlier Ready
/// (durable) count: commit and apply come in the following Ready.
#[test]
fn single_node_commits_only_durable_entries() {
    let mut node = RaftNode::new(config(0), vec![0], 0, &mut rng());
    node.campaign(0, &mut rng());
    assert_eq!(node.role(), Role::Leader);
    assert!(node.leader(), "empty log at election: barrier passed at once");
    let first = node.ready();
    assert_eq!(first.entries.len(), 1);
    assert_eq!(first.hard_state.unwrap().commit, 0);
    assert!(!first.applied.iter().any(|a| matches!(a, Applied::Entry(_))));
    assert_eq!(node.commit_index(), 1, "counted once handed out");
    let second = node.ready();
    assert!(matches!(second.applied.as_slice(), [Applied::Entry(e)] if e.data == EntryData::LeaderNoop));
    assert_eq!(second.hard_state.unwrap().commit, 1);
    node.applied_to(1);
    let index = node.propose(0, node.term(), normal(1)).unwrap();
    assert_eq!(index, 2);
    assert_eq!(node.commit_index(), 1);
    let _ = node.ready();
    assert_eq!(node.commit_index(), 2);
}

/// The leader counts its own copy toward a majority only once the entry was handed out in a
/// Ready (durable): a follower's ack alone is not a majority of three.
#[test]
fn leader_counts_only_its_durable_entries() {
    let mut cluster = Cluster::new(3, 14, |_| {});
    let leader = cluster.await_leader(20_000);
    cluster.run_for(1_000);
    let follower = (leader + 1) % 3;
    let (term, now) = (cluster.node(leader).term(), cluster.now_ms);
    let i = leader as usize;
    let index = cluster.nodes[i].propose(now, term, normal(1)).unwrap();
    let ack = Message::AppendResponse { term, success: true, match_index: index, hint: 0 };
    cluster.nodes[i].step(now, follower, ack, &mut rng());
    assert_eq!(cluster.node(leader).commit_index(), index - 1, "own entry not durable yet");
    let ready = cluster.nodes[i].ready();
    assert_eq!(ready.entries.last().map(|e| e.index), Some(index));
    assert_eq!(cluster.node(leader).commit_index(), index, "durable now: 2 of 3");
    let next = cluster.nodes[i].ready();
    assert_eq!(next.hard_state.map(|h| h.commit), Some(index));
    assert!(matches!(next.applied.as_slice(), [Applied::Entry(e)] if e.index == index));
}

// ---------------------------------------------------------------------------------------------
// Leadership: barrier, fencing, stepdown.

/// The apply barrier: a new leader's BecameLeader (and leader() / propose) wait until the
/// upper layer has applied everything up to the leader's last index at election. Also pins
/// stepdown to a preferred peer (TimeoutNow, transfer overrides the lease).
#[test]
fn apply_barrier_and_stepdown_to_preferred() {
    let mut cluster = Cluster::new(3, 6, |_| {});
    let old = cluster.await_leader(20_000);
    let heir = (old + 1) % 3;
    cluster.hold_apply.insert(heir);
    for byte in 0..5 {
        cluster.propose(old, normal(byte)).unwrap();
    }
    cluster.run_for(3_000);
    let barrier = cluster.node(heir).last_index();
    assert!(cluster.node(heir).commit_index() >= barrier - 1);
    let old_term = cluster.node(old).term();
    let i = old as usize;
    let handed_to = cluster.nodes[i].step_down(cluster.now_ms, Some(heir), &mut cluster.node_rngs[i]);
    assert_eq!(handed_to, Some(heir), "a stepdown names the peer it handed over to");
    assert_eq!(
        cluster.nodes[i].step_down(cluster.now_ms, Some(heir), &mut cluster.node_rngs[i]),
        None,
        "a follower hands nothing over"
    );
    cluster.process(old);
    assert!(cluster.apps[i].signals.contains(&Signal::SteppedDown { term: old_term }));
    cluster.deliver_round();
    cluster.deliver_round();
    cluster.deliver_round();
    let node = cluster.node(heir);
    assert_eq!(node.role(), Role::Leader, "preferred peer won at once despite leases");
    assert_eq!(node.term(), old_term + 1);
    assert!(!node.leader(), "barrier not passed: nothing applied yet");
    let term = node.term();
    assert_eq!(cluster.propose(heir, normal(9)), Err(ProposeError::NotLeader));
    assert!(!cluster.held[&heir].contains(&Applied::Signal(Signal::BecameLeader { term })));

    cluster.release_apply(heir);
    assert!(cluster.node(heir).leader());
    let stream = &cluster.apps[heir as usize].stream;
    let signal_at = stream
        .iter()
        .position(|a| *a == Applied::Signal(Signal::BecameLeader { term }))
        .expect("BecameLeader emitted after applying");
    let applied_before = stream[..signal_at]
        .iter()
        .filter_map(|a| if let Applied::Entry(e) = a { Some(e.index) } else { None })
        .max()
        .unwrap_or(0);
    assert!(applied_before >= barrier, "signal after entry {barrier}");
    assert!(cluster.propose(heir, normal(9)).is_ok());
}

/// A stepdown hands over only to a peer that can win: caught up and heard from within three
/// heartbeats. A preferred peer that is cut off (or lags) gives way to one that qualifies, and
/// with none the leader just steps down.
#[test]
fn stepdown_hands_over_only_to_a_peer_that_can_win() {
    let mut cluster = Cluster::new(3, 6, |_| {});
    let leader = cluster.await_leader(20_000);
    let (cut_off, other) = ((leader + 1) % 3, (leader + 2) % 3);
    cluster.isolate(cut_off);
    cluster.propose(leader, normal(1)).unwrap();
    cluster.run_for(5_000);
    assert_eq!(cluster.node(leader).role(), Role::Leader);
    let i = leader as usize;
    let heir = cluster.nodes[i].step_down(cluster.now_ms, Some(cut_off), &mut cluster.node_rngs[i]);
    assert_eq!(heir, Some(other), "the cut-off preferred peer gives way to one that can win");

    let mut cluster = Cluster::new(3, 6, |_| {});
    let leader = cluster.await_leader(20_000);
    for peer in cluster.ids().into_iter().filter(|&p| p != leader) {
        cluster.isolate(peer);
    }
    cluster.run_for(5_000);
    assert_eq!(cluster.node(leader).role(), Role::Leader, "still within its lost-quorum window");
    let i = leader as usize;
    let preferred = Some((leader + 1) % 3);
    assert_eq!(cluster.nodes[i].step_down(cluster.now_ms, preferred, &mut cluster.node_rngs[i]), None);
    assert_ne!(cluster.node(leader).role(), Role::Leader, "it steps down all the same");
}

/// propose is fenced by term: NotLeader on followers, StaleTerm for a term other than the
/// leader's current one, even after the same node becomes leader again.
#[test]
fn propose_fenced_by_term() {
    let mut cluster = Cluster::new(3, 9, |_| {});
    let leader = cluster.await_leader(20_000);
    let term = cluster.node(leader).term();
    let now = cluster.now_ms;
    let follower = (leader + 1) % 3;
    assert_eq!(cluster.nodes[follower as usize].propose(now, term, normal(1)), Err(ProposeError::NotLeader));
    let node = &mut cluster.nodes[leader as usize];
    assert!(node.propose(now, term, normal(1)).is_ok());
    assert_eq!(
        node.propose(now, term - 1, normal(2)),
        Err(ProposeError::StaleTerm { proposed: term - 1, current: term })
    );
    assert_eq!(
        node.propose(now, term + 1, normal(2)),
        Err(ProposeError::StaleTerm { proposed: term + 1, current: term })
    );
    // Lose and regain leadership: the old term stays fenced.
    let i = leader as usize;
    cluster.nodes[i].step_down(now, None, &mut cluster.node_rngs[i]);
    cluster.process(leader);
    assert_eq!(cluster.nodes[i].propose(now, term, normal(3)), Err(ProposeError::NotLeader));
    cluster.run_for(2_000);
    let leader2 = cluster.await_leader(30_000);
    let term2 = cluster.node(leader2).term();
    assert!(term2 > term);
    let now = cluster.now_ms;
    assert_eq!(
        cluster.nodes[leader2 as usize].propose(now, term, normal(4)),
        Err(ProposeError::StaleTerm { proposed: term, current: term2 })
    );
}

/// Too many uncommitted proposals are refused.
#[test]
fn proposals_are_bounded() {
    let mut cluster = Cluster::new(3, 10, |_| {});
    let leader = cluster.await_leader(20_000);
    cluster.isolate(leader);
    let term = cluster.node(leader).term();
    let now = cluster.now_ms;
    let node = &mut cluster.nodes[leader as usize];
    let mut refused = None;
    for byte in 0..=PROPOSALS_PENDING_MAX {
        if let Err(error) = node.propose(now, term, normal(byte as u8)) {
            refused = Some(error);
            break;
        }
    }
    assert!(matches!(refused, Some(ProposeError::TooManyPending { .. })));
}

// ---------------------------------------------------------------------------------------------
// Membership.

/// Membership changes are one at a time and take effect when committed; a new peer catches
/// up; a leader that commits its own removal steps down and never campaigns again; a removed
/// peer is banned from re-add for peer_readd_ban_ms.
#[test]
fn membership_changes_one_at_a_time_and_removed_leader_steps_down() {
    let mut cluster = Cluster::with_members(4, vec![0, 1, 2], 11, |c| c.peer_readd_ban_ms = 60_000);
    let leader = cluster.await_leader(20_000);
    let term = cluster.node(leader).term();
    let now = cluster.now_ms;
    let node = &mut cluster.nodes[leader as usize];
    let add = node.propose(now, term, EntryData::AddPeer(3)).unwrap();
    assert_eq!(node.propose(now, term, EntryData::AddPeer(5)), Err(ProposeError::MembershipChangePending));
    assert_eq!(node.propose(now, term, EntryData::RemovePeer(1)), Err(ProposeError::MembershipChangePending));
    assert_eq!(node.peers(), &[0, 1, 2], "not in effect before commit");
    cluster.process(leader);
    cluster.run_for(3_000);
    assert!(cluster.node(leader).commit_index() >= add);
    for id in 0..4 {
        assert_eq!(cluster.node(id).peers(), &[0, 1, 2, 3], "node {id}");
    }
    assert_eq!(
        cluster.apps[3].history.last().map(|e| e.index),
        cluster.apps[leader as usize].history.last().map(|e| e.index)
    );

    // Remove the leader itself.
    let removed_at_ms = cluster.now_ms;
    cluster.propose(leader, EntryData::RemovePeer(leader)).unwrap();
    let mut was_candidate = false;
    let mut stepped_down = false;
    for _ in 0..300 {
        cluster.run_for(TICK_MS);
        let node = cluster.node(leader);
        stepped_down |= !node.peers().contains(&leader) && node.role() == Role::Follower;
        was_candidate |= stepped_down && node.role() != Role::Follower;
    }
    assert!(stepped_down);
    assert!(!was_candidate, "a removed node never campaigns");
    assert!(cluster.apps[leader as usize].signals.contains(&Signal::SteppedDown { term }));
    let new_leader = cluster.await_leader(30_000);
    assert_ne!(new_leader, leader);
    let expected: Vec<PeerId> = (0..4).filter(|p| *p != leader).collect();
    assert_eq!(cluster.node(new_leader).peers(), expected.as_slice());

    // Re-add is banned for peer_readd_ban_ms after the removal committed.
    match cluster.propose(new_leader, EntryData::AddPeer(leader)) {
        Err(ProposeError::PeerBanned { peer, allowed_at_ms }) => {
            assert_eq!(peer, leader);
            assert!(allowed_at_ms >= removed_at_ms + 60_000);
        }
        other => panic!("expected ban, got {other:?}"),
    }
    cluster.run_for(61_000);
    let new_leader = cluster.await_leader(30_000);
    assert!(cluster.propose(new_leader, EntryData::AddPeer(leader)).is_ok());
    cluster.run_for(3_000);
    assert!(cluster.node(leader).peers().contains(&leader));
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// NRG `trackPeer`: the leader of a group that keeps its own membership adds a server it hears
/// from that is no member, but not one whose removal committed within the re-add ban; the
/// removed server knows from its membership history that it was a member.
#[test]
fn unknown_peers_are_added_unless_removed_lately() {
    let mut cluster = Cluster::with_members(4, vec![0, 1, 2], 12, |c| c.peer_readd_ban_ms = 60_000);
    let leader = cluster.await_leader(20_000);
    assert!(!cluster.node(3).was_member(3), "an outsider never was a member");
    let now = cluster.now_ms;
    let follower = (0..3).find(|&p| p != leader).unwrap();
    assert_eq!(cluster.nodes[follower as usize].add_unknown_peer(now, 3), Ok(None), "only the leader adds");
    assert_eq!(cluster.nodes[leader as usize].add_unknown_peer(now, follower), Ok(None), "members stay as they are");
    let add = cluster.nodes[leader as usize].add_unknown_peer(now, 3).unwrap().expect("an outsider is added");
    cluster.process(leader);
    cluster.run_for(3_000);
    assert!(cluster.node(leader).commit_index() >= add);
    assert_eq!(cluster.node(3).peers(), &[0, 1, 2, 3]);
    // Judged by what was applied: before its addition's index it was never a member.
    assert!(cluster.node(3).was_member_by(add, 3) && !cluster.node(3).was_member_by(add - 1, 3));

    cluster.propose(leader, EntryData::RemovePeer(3)).unwrap();
    cluster.run_for(3_000);
    let leader = cluster.await_leader(20_000);
    assert_eq!(cluster.node(leader).peers(), &[0, 1, 2]);
    assert!(cluster.node(3).was_member(3) && !cluster.node(3).peers().contains(&3), "it knows it was removed");
    let now = cluster.now_ms;
    let refused = cluster.nodes[leader as usize].add_unknown_peer(now, 3);
    assert!(matches!(refused, Err(ProposeError::PeerBanned { peer: 3, .. })), "{refused:?}");
    cluster.run_for(61_000);
    let leader = cluster.await_leader(30_000);
    let now = cluster.now_ms;
    assert!(matches!(cluster.nodes[leader as usize].add_unknown_peer(now, 3), Ok(Some(_))), "the ban is over");
    cluster.process(leader);
    cluster.run_for(3_000);
    assert_eq!(cluster.node(leader).peers(), &[0, 1, 2, 3]);
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// Two members, n0 leading, which has just proposed its own removal (its Appends queued,
/// not delivered): the returned index is the removal's.
fn two_members_leader_removing_itself() -> (Cluster, Index) {
    let mut cluster = Cluster::new(2, 5, |_| {});
    cluster.campaign(0);
    cluster.deliver_only(|_, _, _| true);
    assert_eq!(cluster.leader(), Some(0));
    let removal = cluster.propose(0, EntryData::RemovePeer(0)).expect("leader proposes its removal");
    (cluster, removal)
}

/// A two-member group whose leader removes itself: the survivor gets the leader's Appends out
/// of order (the one after the removal first, refused), then acknowledges the removal. The
/// leader's last Append must start after what the survivor acknowledged, or the survivor never
/// learns the commit and waits for a vote from a server that left (churn seed 1471).
#[test]
fn removed_leader_last_append_reaches_a_survivor_that_got_appends_reordered() {
    let (mut cluster, removal) = two_members_leader_removing_itself();
    let after = cluster.propose(0, normal(7)).expect("a normal entry may follow");
    assert_eq!(after, removal + 1);
    // Deliver the Append carrying `after` before the one carrying the removal.
    let mut queued = std::mem::take(&mut cluster.queue);
    let carries = |msg: &Message, index: Index| matches!(msg, Message::Append { entries, .. } if entries.iter().any(|e| e.index == index));
    queued.sort_by_key(|(_, _, msg)| !carries(msg, after));
    assert!(carries(&queued[0].2, after) && queued.iter().any(|(_, _, m)| carries(m, removal)));
    for (from, to, msg) in queued {
        cluster.deliver(from, to, msg);
    }
    // The acknowledgement of the removal reaches the leader before the refusal of `after`.
    let mut answers = std::mem::take(&mut cluster.queue);
    answers.sort_by_key(|(_, _, msg)| !matches!(msg, Message::AppendResponse { success: true, .. }));
    assert!(matches!(answers[0].2, Message::AppendResponse { success: true, .. }));
    for (from, to, msg) in answers {
        cluster.deliver(from, to, msg);
    }
    cluster.deliver_only(|_, _, _| true);
    assert_eq!(cluster.node(0).role(), Role::Follower, "the removed leader stepped down");
    assert!(cluster.node(1).commit_index() >= removal, "the survivor learned the removal committed");
    assert_eq!(cluster.node(1).peers(), &[1]);
    cluster.isolate(0); // the removed server stops; the survivor is alone
    let leader = cluster.await_leader(30_000);
    assert_eq!(leader, 1);
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// A removal in the uncommitted tail counts in elections from its append, but a leader's list
/// of members logged after it replaces it, as NRG's peer state does on append: the node then
/// needs the removed member's vote again (churn seed 8971 of v14: two nodes each counting a
/// removal of the other elected themselves alone).
#[test]
fn members_logged_after_a_pending_removal_count_again() {
    let entry = |index, term, data| Entry { term, index, data };
    let removal = vec![entry(1, 2, EntryData::LeaderNoop), entry(2, 2, EntryData::RemovePeer(1))];
    let node = restored(3, vec![1, 3], 4, removal.clone());
    assert!(node.wins_with_votes_of(&[3]), "the pending removal leaves n3 alone");
    let mut undone = removal;
    undone.push(entry(3, 4, EntryData::Members(vec![1, 3])));
    let node = restored(3, vec![1, 3], 4, undone);
    assert!(!node.wins_with_votes_of(&[3]), "the members logged after it count n1 again");
    assert!(node.wins_with_votes_of(&[1, 3]));
}

/// A two-member group whose leader removes itself: the survivor acknowledges the removal and
/// crashes before the leader's last Append, with the new commit, reaches it; the leader commits
/// on that acknowledgement and leaves. Restarted, the survivor holds the removal uncommitted.
/// NRG counts a removal from its append on (`processAppendEntry`, also when it replays its log
/// at start): the survivor's quorum is one, it elects itself and commits the removal. Counting
/// it only from its commit, the survivor waited for the vote of a server that left (churn seed
/// 11446 of v14, 5377's kind).
#[test]
fn a_survivor_restarted_holding_its_leaders_removal_uncommitted_elects_itself() {
    let (mut cluster, removal) = two_members_leader_removing_itself();
    // The survivor gets the removal, persists and acknowledges it.
    for (from, to, msg) in std::mem::take(&mut cluster.queue) {
        cluster.deliver(from, to, msg);
    }
    assert_eq!(cluster.node(1).last_index(), removal);
    assert!(cluster.node(1).commit_index() < removal);
    // It crashes before anything more from the leader arrives; the acknowledgement does.
    cluster.crash(1);
    for (from, to, msg) in std::mem::take(&mut cluster.queue) {
        if to == 0 {
            cluster.deliver(from, to, msg);
        }
    }
    assert!(cluster.node(0).commit_index() >= removal, "the leader committed its removal");
    assert_eq!(cluster.node(0).role(), Role::Follower, "and left");
    cluster.isolate(0); // the removed server is gone for good
    cluster.queue.clear();
    cluster.restart(1);
    assert_eq!(cluster.node(1).peers(), &[0, 1], "the removal is not official before it commits");
    assert!(cluster.node(1).wins_with_votes_of(&[1]), "but it counts for quorums since it was appended");
    let leader = cluster.await_leader(30_000);
    assert_eq!(leader, 1, "the survivor elects itself");
    assert!(cluster.node(1).commit_index() > removal);
    assert_eq!(cluster.node(1).peers(), &[1]);
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

// ---------------------------------------------------------------------------------------------
// Snapshots and restart.

/// A follower whose next entries were compacted away gets InstallSnapshot, persists it, and
/// hands up CatchupStarted, Snapshot, CatchupDone in that order; replication then continues.
#[test]
fn snapshot_install_for_lagging_follower() {
    let mut cluster = Cluster::new(3, 12, |_| {});
    let leader = cluster.await_leader(20_000);
    let lagging = (leader + 1) % 3;
    cluster.isolate(lagging);
    for byte in 0..30 {
        cluster.propose(leader, normal(byte)).unwrap();
    }
    cluster.run_for(2_000);
    cluster.maybe_compact(leader, 10);
    let snapshot_index = cluster.node(leader).snapshot_index();
    assert!(snapshot_index >= 30);
    assert!(cluster.node(lagging).last_index() < snapshot_index);
    cluster.heal();
    cluster.run_for(3_000);
    let app = &cluster.apps[lagging as usize];
    let catchup = app.stream.iter().position(|a| *a == Applied::Signal(Signal::CatchupStarted)).expect("catchup");
    assert!(matches!(&app.stream[catchup + 1], Applied::Snapshot(s) if s.last_index == snapshot_index));
    assert_eq!(app.stream[catchup + 2], Applied::Signal(Signal::CatchupDone));
    assert_eq!(cluster.disks[lagging as usize].snapshot.as_ref().map(|s| s.last_index), Some(snapshot_index));
    cluster.propose(leader, normal(99)).unwrap();
    cluster.run_for(3_000);
    assert_eq!(cluster.apps[lagging as usize].history, cluster.apps[leader as usize].history);
    assert!(cluster.node(lagging).current(cluster.now_ms));
    assert!(cluster.violations.is_empty());
}

/// restore() re-applies from scratch: snapshot first, then committed entries only, then
/// CatchupDone; nothing counts as applied; term, vote and commit come from the hard state.
#[test]
fn restore_replays_snapshot_then_committed_entries_then_catchup_done() {
    let snapshot = Snapshot { last_index: 3, last_term: 1, peers: vec![0, 1, 2], data: vec![42] };
    let entries = vec![entry(2, 1), entry(3, 1), entry(4, 2), entry(5, 2), entry(6, 2)];
    let hard = HardState { term: 2, voted_for: Some(1), commit: 5 };
    let mut node =
        RaftNode::restore(config(0), vec![9], hard, Some(snapshot.clone()), entries, 500, &mut rng()).unwrap();
    assert_eq!((node.term(), node.commit_index(), node.applied_index()), (2, 5, 0));
    assert_eq!(node.peers(), &[0, 1, 2], "membership from the snapshot");
    assert_eq!(node.created_ms(), 500);
    let ready = node.ready();
    assert_eq!(ready.hard_state, None, "nothing new to persist");
    assert_eq!(
        ready.applied,
        vec![
            Applied::Snapshot(snapshot),
            Applied::Entry(entry(4, 2)),
            Applied::Entry(entry(5, 2)),
            Applied::Signal(Signal::CatchupDone),
        ]
    );
    // The vote survives: another candidate in term 2 is refused.
    let msg =
        Message::RequestVote { term: 2, last_log_index: 9, last_log_term: 2, transfer: false, needs_every_vote: false };
    node.step(600, 2, msg, &mut rng());
    assert_eq!(node.ready().messages, vec![(2, Message::Vote { term: 2, granted: false })]);
}

/// restore() refuses a broken durable state with a precise error.
#[test]
fn restore_rejects_broken_logs() {
    let hard = |term, commit| HardState { term, voted_for: None, commit };
    let restore = |hard, entries| RaftNode::restore(config(0), vec![0], hard, None, entries, 0, &mut rng()).err();
    assert_eq!(
        restore(hard(1, 0), vec![entry(1, 1), entry(3, 1)]),
        Some(RaftError::LogNotContiguous { expected: 2, found: 3 })
    );
    assert_eq!(restore(hard(1, 0), vec![entry(2, 1)]), Some(RaftError::LogNotContiguous { expected: 1, found: 2 }));
    assert_eq!(
        restore(hard(3, 0), vec![entry(1, 2), entry(2, 1)]),
        Some(RaftError::TermDecreases { index: 2, term: 1, previous: 2 })
    );
    assert_eq!(restore(hard(1, 3), vec![entry(1, 1)]), Some(RaftError::CommitBeyondLog { commit: 3, last: 1 }));
    assert_eq!(restore(hard(1, 0), vec![entry(1, 2)]), Some(RaftError::TermBehindLog { term: 1, log_term: 2 }));
    assert_eq!(restore(hard(2, 2), vec![entry(1, 1), entry(2, 2)]), None);
}

/// compact() only below applied and above the current snapshot; log entries go, the snapshot
/// is handed out once in Ready::snapshot.
#[test]
fn compact_bounds_and_output() {
    let mut node = RaftNode::new(config(0), vec![0], 0, &mut rng());
    node.campaign(0, &mut rng());
    for byte in 0..5 {
        node.propose(0, 1, normal(byte)).unwrap();
    }
    while node.has_ready() {
        let _ = node.ready();
    }
    assert_eq!(node.compact(3, vec![]), Err(RaftError::CompactBeyondApplied { index: 3, applied: 0 }));
    node.applied_to(6);
    node.compact(3, vec![7]).unwrap();
    assert_eq!(node.compact(2, vec![]), Err(RaftError::CompactNotAhead { index: 2, first_kept_after: 3 }));
    assert_eq!(node.entry_term(2), None);
    assert_eq!(node.entry_term(3), Some(1));
    let ready = node.ready();
    assert_eq!(ready.snapshot.map(|s| (s.last_index, s.peers, s.data)), Some((3, vec![0], vec![7])));
    assert!(!node.has_ready());
}

// ---------------------------------------------------------------------------------------------
// Queries.

/// current(): false at commit 0; false while commit > applied; true once caught up; false
/// when the known leader is silent for > 2 heartbeats; false while a snapshot install is
/// being applied. healthy(): tolerates a gap that shrank since the last tick, and is pure.
#[test]
fn current_and_healthy_semantics() {
    let fresh = RaftNode::new(config(0), vec![0, 1, 2], 0, &mut rng());
    assert!(!fresh.current(0), "commit 0");
    assert!(fresh.leaderless());
    assert!(!fresh.had_previous_leader());

    let entries: Vec<Entry> = (1..=5).map(|i| entry(i, 1)).collect();
    let hard = HardState { term: 1, voted_for: None, commit: 5 };
    let mut node = RaftNode::restore(config(0), vec![0, 1, 2], hard, None, entries, 0, &mut rng()).unwrap();
    let _ = node.ready();
    assert!(!node.current(0), "gap 5");
    assert!(!node.healthy(0), "no tick yet: no progress known");
    node.tick(0, &mut rng());
    assert!(!node.healthy(0), "gap 5 at the tick, still 5");
    node.applied_to(2);
    assert!(node.healthy(0), "gap shrank 5 -> 3 since the tick");
    assert!(node.healthy(0), "asking again changes nothing");
    node.tick(0, &mut rng());
    assert!(!node.healthy(0), "gap stayed 3 since the tick");
    assert!(!node.current(0));
    node.applied_to(5);
    assert!(node.current(0));
    assert!(node.healthy(0));

    // A known leader that goes silent.
    let heartbeat = Message::Append { term: 1, prev_index: 5, prev_term: 1, entries: vec![], commit: 5, base: None };
    node.step(1_000, 1, heartbeat, &mut rng());
    let _ = node.ready();
    assert_eq!(node.group_leader(), Some(1));
    assert!(node.had_previous_leader() && !node.leaderless());
    assert!(node.current(3_000));
    assert!(!node.current(3_001), "no contact within 2 heartbeats");
    assert!(!node.healthy(3_001));

    // Catching up from a snapshot: not current until it is applied.
    let snapshot = Snapshot { last_index: 9, last_term: 1, peers: vec![0, 1, 2], data: vec![] };
    node.step(3_100, 1, Message::InstallSnapshot { term: 1, snapshot }, &mut rng());
    let ready = node.ready();
    assert_eq!(node.commit_index(), 9);
    assert!(ready.applied.contains(&Applied::Signal(Signal::CatchupStarted)));
    assert!(!node.current(3_100));
    node.applied_to(9);
    assert!(node.current(3_100));

    // The leader itself is current once its barrier passed.
    let mut cluster = Cluster::new(3, 13, |_| {});
    let leader = cluster.await_leader(20_000);
    cluster.run_for(1_000);
    assert!(cluster.node(leader).current(cluster.now_ms));
    assert_eq!(cluster.node(leader).group_leader(), Some(leader));
}

// ---------------------------------------------------------------------------------------------
// Cold-boot cluster size.

/// Two of five configured servers run the group (the rest never start): no quorum of five, so
/// no leader, until both count quorums against a boot size of two. Once a leader was seen the
/// size is fixed; a later membership change moves it one for one.
#[test]
fn boot_cluster_size_lets_a_partial_cluster_elect_and_is_then_fixed() {
    let mut cluster = Cluster::new(5, 7, |_| {});
    for id in 2..5 {
        cluster.crash(id);
    }
    cluster.run_for(30_000);
    assert_eq!(cluster.leader(), None, "three of five servers missing: no quorum");
    assert_eq!(cluster.node(0).quorum_size(), 3);

    for id in [0, 1] {
        cluster.nodes[id].adjust_boot_cluster_size(1).expect("no leader seen yet");
        assert_eq!(cluster.node(id as PeerId).quorum_size(), 2, "a boot size is at least two");
    }
    let leader = cluster.await_leader(30_000);
    let index = cluster.propose(leader, normal(1)).expect("leader accepts");
    cluster.run_for(2_000);
    assert!(cluster.node(0).commit_index() >= index && cluster.node(1).commit_index() >= index);

    assert_eq!(cluster.nodes[0].adjust_boot_cluster_size(2), Err(RaftError::LeaderAlreadySeen));
    assert_eq!(
        RaftNode::new(config(0), vec![0, 1], 0, &mut rng()).adjust_boot_cluster_size(3),
        Err(RaftError::ClusterSizeAbovePeers { size: 3, peers: 2 })
    );

    // A restarted member has forgotten the leader, but its log shows one existed: not a cold
    // boot (NRG would adjust here, from a possibly stale view of the members).
    let entries: Vec<Entry> = (1..=3).map(|i| entry(i, 1)).collect();
    let hard = HardState { term: 1, voted_for: None, commit: 2 };
    let restored = |bugs: RaftBugs| {
        let config = Config { bugs, ..config(0) };
        RaftNode::restore(config, vec![0, 1, 2, 3, 4], hard, None, entries.clone(), 0, &mut rng()).unwrap()
    };
    let mut restarted = restored(RaftBugs::default());
    assert!(!restarted.had_previous_leader());
    assert_eq!(restarted.adjust_boot_cluster_size(3), Err(RaftError::LogShowsLeader { last_index: 3 }));
    assert_eq!(restarted.quorum_size(), 3);
    let mut switched = restored(RaftBugs { boot_size_after_restart: true, ..RaftBugs::default() });
    switched.adjust_boot_cluster_size(2).expect("the switch adjusts as NRG does");
    assert_eq!(switched.quorum_size(), 2);

    // Removing a peer that never ran leaves the boot size (two of four, quorum two); adding one
    // back grows it (three of five, quorum two).
    let leader = cluster.leader().expect("leader");
    cluster.propose(leader, EntryData::RemovePeer(4)).expect("membership change");
    cluster.run_for(2_000);
    assert_eq!(cluster.node(leader).peers(), &[0, 1, 2, 3]);
    assert_eq!(cluster.node(leader).quorum_size(), 2);
    cluster.run_for(300_000); // past the re-add ban
    cluster.propose(cluster.leader().expect("leader"), EntryData::AddPeer(4)).expect("membership change");
    cluster.run_for(2_000);
    let leader = cluster.leader().expect("leader");
    assert_eq!(cluster.node(leader).peers(), &[0, 1, 2, 3, 4]);
    assert_eq!(cluster.node(leader).quorum_size(), 2, "boot size 3 of 5");
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// NRG `AdjustClusterSize` (the meta leader's `checkClusterSize`, spec §8.4): of five members
/// two never run, and the three that do elect with the full quorum of three. The leader lowers
/// the size to three: its peer-state entry commits and every follower counts against three,
/// also after a restart (it replays the entry from its log), so two of the three elect and
/// commit once the leader is gone, and the next leader's first entry carries the size on.
#[test]
fn an_adjusted_cluster_size_reaches_the_followers_and_outlives_the_leader() {
    let mut cluster = Cluster::new(5, 11, |_| {});
    for id in [3, 4] {
        cluster.crash(id);
    }
    let leader = cluster.await_leader(30_000);
    assert_eq!(cluster.node(leader).quorum_size(), 3);
    let followers: Vec<PeerId> = [0, 1, 2].into_iter().filter(|&id| id != leader).collect();
    let (now, term) = (cluster.now_ms, cluster.node(leader).term());
    assert_eq!(
        cluster.nodes[followers[0] as usize].adjust_cluster_size(now, term, 3),
        Err(ProposeError::NotLeader),
        "only the leader adjusts"
    );
    let index = cluster.nodes[leader as usize].adjust_cluster_size(now, term, 3).expect("the leader adjusts");
    cluster.process(leader);
    assert_eq!(cluster.node(leader).quorum_size(), 2, "the leader counts against three at once");
    cluster.run_for(2_000);
    for &id in &followers {
        assert!(cluster.node(id).commit_index() >= index);
        assert_eq!(cluster.node(id).cluster_size(), 3, "n{id} adopted the leader's size");
    }
    cluster.crash(followers[0]);
    cluster.restart(followers[0]);
    assert_eq!(cluster.node(followers[0]).cluster_size(), 3, "replayed from the log");

    cluster.crash(leader);
    let next = cluster.await_leader(30_000);
    let index = cluster.propose(next, normal(2)).expect("the new leader accepts");
    cluster.run_for(2_000);
    assert!(followers.iter().all(|&id| cluster.node(id).commit_index() >= index), "two of three commit");
    cluster.restart(leader);
    cluster.run_for(2_000);
    assert_eq!(cluster.node(leader).cluster_size(), 3, "the old leader, back, counts against three too");
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

// ---------------------------------------------------------------------------------------------
// Meta rescue (spec §8.4, NRG `RescueQuorum`).

/// Five nodes with a few committed entries; then the leader and two followers go down for good
/// and the two survivors have been leaderless for 30 s. Returns (cluster, survivors, dead).
fn five_with_three_dead(seed: u64) -> (Cluster, [PeerId; 2], Vec<PeerId>) {
    let mut cluster = Cluster::new(5, seed, |_| {});
    let leader = cluster.await_leader(30_000);
    let index = cluster.propose(leader, normal(1)).expect("leader accepts");
    cluster.run_for(3_000);
    assert!(cluster.ids().iter().all(|id| cluster.node(*id).commit_index() >= index));
    let others: Vec<PeerId> = cluster.ids().into_iter().filter(|id| *id != leader).collect();
    let survivors = [others[0], others[1]];
    let dead: Vec<PeerId> = cluster.ids().into_iter().filter(|id| !survivors.contains(id)).collect();
    for id in &dead {
        cluster.crash(*id);
    }
    cluster.run_for(30_000);
    for id in survivors {
        assert!(cluster.node(id).leaderless(), "survivor {id} still knows a leader");
        assert_eq!(cluster.node(id).quorum_size(), 3);
    }
    (cluster, survivors, dead)
}

/// Rescue on both survivors of five and wait for them to elect a leader.
fn rescue_survivors(cluster: &mut Cluster, survivors: [PeerId; 2]) -> PeerId {
    for id in survivors {
        let now = cluster.now_ms;
        cluster.nodes[id as usize].rescue(now, 2).expect("leaderless survivor with data");
        assert_eq!(cluster.node(id).rescued_quorum(), Some(2));
        assert_eq!(cluster.node(id).quorum_size(), 2);
    }
    let leader = cluster.await_leader(30_000);
    assert!(survivors.contains(&leader));
    leader
}

/// Proposes at `leader` and reports whether both survivors committed it within 3 s.
fn commits_on(cluster: &mut Cluster, leader: PeerId, survivors: [PeerId; 2], byte: u8) -> bool {
    let Ok(index) = cluster.propose(leader, normal(byte)) else { return false };
    cluster.run_for(3_000);
    survivors.iter().all(|id| cluster.node(*id).commit_index() >= index)
}

/// TestJetStreamClusterMetaRescue, first half: two survivors of five never elect a leader on
/// their own; rescued to quorum two they elect one and commit.
#[test]
fn rescue_lets_two_survivors_of_five_elect_and_commit() {
    for seed in [1, 2, 3] {
        let (mut stuck, survivors, _) = five_with_three_dead(seed);
        let commit_before = stuck.node(survivors[0]).commit_index();
        stuck.run_for(60_000);
        assert_eq!(stuck.leader(), None, "seed {seed}: no quorum without a rescue");
        assert_eq!(stuck.node(survivors[0]).commit_index(), commit_before);

        let (mut rescued, survivors, _) = five_with_three_dead(seed);
        let leader = rescue_survivors(&mut rescued, survivors);
        assert!(rescued.now_ms < stuck.now_ms, "seed {seed}: elected within the time the stuck group idled");
        assert!(commits_on(&mut rescued, leader, survivors, 2), "seed {seed}");
        assert!(rescued.violations.is_empty(), "seed {seed}: {:?}", rescued.violations);
    }
}

/// TestJetStreamClusterMetaRescue, second half: the rescued leader peer-removes the dead one
/// at a time; the rescue ends on its own once the natural quorum is down to two (three peers
/// left), and the group keeps committing with its natural quorum.
#[test]
fn removing_dead_peers_ends_the_rescue() {
    let (mut cluster, survivors, dead) = five_with_three_dead(5);
    let leader = rescue_survivors(&mut cluster, survivors);
    for (removed, peer) in dead.iter().enumerate() {
        cluster.propose(leader, EntryData::RemovePeer(*peer)).expect("membership change");
        cluster.run_for(3_000);
        let peers_left = 4 - removed;
        for id in survivors {
            let node = cluster.node(id);
            assert_eq!(node.peers().len(), peers_left, "node {id}");
            let expected = if peers_left / 2 + 1 > 2 { Some(2) } else { None };
            assert_eq!(node.rescued_quorum(), expected, "node {id} with {peers_left} peers");
            assert_eq!(node.quorum_size(), 2, "node {id}");
        }
        assert_eq!(cluster.leader(), Some(leader));
    }
    assert_eq!(cluster.node(leader).peers(), &survivors);
    assert!(commits_on(&mut cluster, leader, survivors, 3));
    // Long past the rescue's expiry nothing changes: the group stands on its natural quorum.
    cluster.run_for(400_000);
    assert_eq!(cluster.leader(), Some(leader));
    assert!(commits_on(&mut cluster, leader, survivors, 4));
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// TestJetStreamClusterMetaRescueSingleSurvivor: one survivor of three rescues to quorum one,
/// elects itself and commits; removing both dead peers ends the rescue.
#[test]
fn rescue_single_survivor_elects_itself() {
    let mut cluster = Cluster::new(3, 9, |_| {});
    let leader = cluster.await_leader(30_000);
    cluster.propose(leader, normal(1)).expect("leader accepts");
    cluster.run_for(3_000);
    let survivor = (leader + 1) % 3;
    let dead: Vec<PeerId> = cluster.ids().into_iter().filter(|id| *id != survivor).collect();
    for id in &dead {
        cluster.crash(*id);
    }
    cluster.run_for(60_000);
    assert_eq!(cluster.leader(), None, "one of three: no quorum");
    assert_eq!(cluster.node(survivor).quorum_size(), 2);

    let now = cluster.now_ms;
    cluster.nodes[survivor as usize].rescue(now, 1).expect("leaderless survivor with data");
    assert_eq!(cluster.await_leader(30_000), survivor);
    let index = cluster.propose(survivor, normal(2)).expect("leader accepts");
    cluster.run_for(1_000);
    assert!(cluster.node(survivor).commit_index() >= index);

    cluster.propose(survivor, EntryData::RemovePeer(dead[0])).expect("membership change");
    cluster.run_for(1_000);
    assert_eq!(cluster.node(survivor).rescued_quorum(), Some(1), "two peers: natural quorum two");
    cluster.propose(survivor, EntryData::RemovePeer(dead[1])).expect("membership change");
    cluster.run_for(1_000);
    assert_eq!(cluster.node(survivor).peers(), &[survivor]);
    assert_eq!(cluster.node(survivor).rescued_quorum(), None, "one peer: natural quorum one");
    assert_eq!(cluster.leader(), Some(survivor));
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// TestJetStreamClusterMetaRescueRejectedWithLeader (and …BadRequest): with a live leader every
/// node, the leader included, refuses the rescue; a quorum of 0 or above the current quorum is
/// refused first, as NRG checks it first.
#[test]
fn rescue_refused_while_a_leader_is_known() {
    let mut cluster = Cluster::new(3, 4, |_| {});
    let leader = cluster.await_leader(20_000);
    cluster.run_for(2_000);
    let now = cluster.now_ms;
    for id in cluster.ids() {
        let node = &mut cluster.nodes[id as usize];
        assert_eq!(node.rescue(now, 1), Err(RaftError::RescueLeaderKnown { leader }), "node {id}");
        assert_eq!(node.rescue(now, 0), Err(RaftError::RescueBadQuorum { quorum: 0, current: 2 }));
        assert_eq!(node.rescue(now, 3), Err(RaftError::RescueBadQuorum { quorum: 3, current: 2 }));
        assert_eq!(node.rescued_quorum(), None);
        assert_eq!(node.quorum_size(), 2);
    }
    cluster.run_for(5_000);
    assert_eq!(cluster.leader(), Some(leader));
}

/// Node-level rules: only voting members with data; the quorum only lowers; re-issuing restarts
/// the expiry; it lapses at rescue_expiry_ms; growing membership keeps it, shrinking to it or
/// a snapshot's smaller membership ends it; a restart forgets it (not persisted).
#[test]
fn rescue_rules_on_one_node() {
    let peers = vec![0, 1, 2, 3, 4];
    assert_eq!(RaftNode::new(config(0), peers.clone(), 0, &mut rng()).rescue(0, 2), Err(RaftError::RescueEmptyLog));
    let mut observer = RaftNode::restore(
        Config { observer: true, ..config(0) },
        peers.clone(),
        HardState { term: 1, voted_for: None, commit: 0 },
        None,
        vec![entry(1, 1)],
        0,
        &mut rng(),
    )
    .unwrap();
    assert_eq!(observer.rescue(0, 2), Err(RaftError::RescueNotVoting));
    assert_eq!(restored(9, peers.clone(), 1, vec![entry(1, 1)]).rescue(0, 2), Err(RaftError::RescueNotVoting));

    let mut node = restored(0, peers.clone(), 1, vec![entry(1, 1)]);
    assert_eq!(node.rescue(0, 4), Err(RaftError::RescueBadQuorum { quorum: 4, current: 3 }));
    node.rescue(0, 3).expect("equal to the current quorum arms it");
    assert_eq!((node.rescued_quorum(), node.quorum_size()), (Some(3), 3));
    node.rescue(1_000, 2).expect("lowers");
    assert_eq!(node.rescue(2_000, 3), Err(RaftError::RescueBadQuorum { quorum: 3, current: 2 }));
    node.rescue(10_000, 2).expect("re-issue restarts the expiry");
    node.tick(309_999, &mut rng());
    assert_eq!(node.rescued_quorum(), Some(2));
    node.tick(310_000, &mut rng());
    assert_eq!((node.rescued_quorum(), node.quorum_size()), (None, 3), "lapsed");

    // Membership: a committed add keeps it (natural 4), removes end it once natural <= 2.
    let mut node = restored(0, peers.clone(), 1, vec![entry(1, 1)]);
    node.rescue(0, 2).unwrap();
    let membership = |index, data| Entry { term: 2, index, data };
    let append = |prev_index, entries: Vec<Entry>, commit| Message::Append {
        term: 2,
        prev_index,
        prev_term: if prev_index == 1 { 1 } else { 2 },
        entries,
        commit,
        base: None,
    };
    node.step(100, 1, append(1, vec![membership(2, EntryData::AddPeer(5))], 2), &mut rng());
    assert_eq!(node.peers().len(), 6);
    assert_eq!((node.rescued_quorum(), node.quorum_size()), (Some(2), 2), "growing keeps the rescue");
    node.step(200, 1, append(2, vec![membership(3, EntryData::RemovePeer(5))], 3), &mut rng());
    node.step(300, 1, append(3, vec![membership(4, EntryData::RemovePeer(4))], 4), &mut rng());
    assert_eq!((node.peers().len(), node.rescued_quorum()), (4, Some(2)));
    node.step(400, 1, append(4, vec![membership(5, EntryData::RemovePeer(3))], 5), &mut rng());
    assert_eq!((node.peers(), node.rescued_quorum(), node.quorum_size()), (&[0, 1, 2][..], None, 2));

    // A snapshot whose membership brings the natural quorum down to the rescued one ends it.
    let mut node = restored(0, peers.clone(), 1, vec![entry(1, 1)]);
    node.rescue(0, 2).unwrap();
    let snapshot = Snapshot { last_index: 9, last_term: 2, peers: vec![0, 1, 2], data: vec![] };
    node.step(100, 1, Message::InstallSnapshot { term: 2, snapshot }, &mut rng());
    assert_eq!((node.rescued_quorum(), node.quorum_size()), (None, 2));

    // Not persisted: a restart from the same state has the natural quorum.
    let mut node = restored(0, peers.clone(), 1, vec![entry(1, 1)]);
    node.rescue(0, 2).unwrap();
    let ready = node.ready();
    assert!(ready.is_empty(), "a rescue writes nothing: {ready:?}");
    assert_eq!(restored(0, peers, 1, vec![entry(1, 1)]).rescued_quorum(), None);
}

/// The rescue lapses after 5 minutes: a 2-of-5 group keeps its leader up to then, and then
/// the natural quorum (3) is back: the leader steps down and nothing more commits.
#[test]
fn rescue_expires_after_five_minutes() {
    let (mut cluster, survivors, _) = five_with_three_dead(7);
    let rescued_at = cluster.now_ms;
    let leader = rescue_survivors(&mut cluster, survivors);
    assert_eq!(Config::default().rescue_expiry_ms, 300_000);
    cluster.run_for(rescued_at + 290_000 - cluster.now_ms);
    assert_eq!(cluster.leader(), Some(leader));
    assert!(commits_on(&mut cluster, leader, survivors, 2));
    for id in survivors {
        assert_eq!(cluster.node(id).rescued_quorum(), Some(2));
    }
    cluster.run_for(rescued_at + 300_000 - cluster.now_ms);
    for id in survivors {
        assert_eq!((cluster.node(id).rescued_quorum(), cluster.node(id).quorum_size()), (None, 3), "node {id}");
    }
    cluster.run_for(TICK_MS);
    assert_eq!(cluster.leader(), None, "lease lost at once under the natural quorum");
    let commit = cluster.node(leader).commit_index();
    let _ = cluster.propose(leader, normal(3));
    cluster.run_for(60_000);
    assert_eq!(cluster.leader(), None);
    assert!(survivors.iter().all(|id| cluster.node(*id).commit_index() == commit));
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// A joiner (empty, waiting for a leader's data) campaigns but wins only with every member's
/// vote: a vote from each member says no member holds anything, so nothing committed can be
/// lost. With a member silent, the votes of a quorum are not enough.
#[test]
fn waiting_joiner_wins_only_with_every_vote() {
    let campaign = |votes_from: &[PeerId]| {
        let mut node = RaftNode::new(config(0), vec![0, 1, 2], 0, &mut rng());
        node.wait_for_leader();
        assert!(node.may_campaign());
        assert_eq!(node.election_votes_needed(), 3);
        node.campaign(10, &mut rng());
        let term = node.term();
        for &from in votes_from {
            node.step(20, from, Message::Vote { term, granted: true }, &mut rng());
        }
        node.role()
    };
    assert_eq!(campaign(&[1]), Role::Candidate, "a quorum of empty votes is not enough");
    assert_eq!(campaign(&[1, 2]), Role::Leader, "every member voted");

    // Not waiting, a quorum is enough; and an append up to the leader's commit ends the wait.
    let mut node = RaftNode::new(config(0), vec![0, 1, 2], 0, &mut rng());
    assert_eq!(node.election_votes_needed(), 2);
    node.wait_for_leader();
    let entries = vec![entry(1, 1)];
    node.step(
        10,
        1,
        Message::Append { term: 1, prev_index: 0, prev_term: 0, entries, commit: 1, base: None },
        &mut rng(),
    );
    assert_eq!(node.election_votes_needed(), 2, "caught up with its leader");

    // A new leader's commit lags until it commits in its own term (churn seed 11289): holding
    // entries 1-2 of term 1 against a term-4 leader's commit of 1 says nothing about what the
    // old leader committed, so the joiner waits until the leader commits its term-4 entry.
    let mut node = RaftNode::new(config(0), vec![0, 1, 2], 0, &mut rng());
    node.wait_for_leader();
    let entries = vec![entry(1, 1), entry(2, 1)];
    node.step(
        10,
        1,
        Message::Append { term: 4, prev_index: 0, prev_term: 0, entries, commit: 1, base: None },
        &mut rng(),
    );
    assert_eq!(node.election_votes_needed(), 3, "the leader's commit is not of its term yet");
    let entries = vec![entry(3, 4)];
    node.step(
        20,
        1,
        Message::Append { term: 4, prev_index: 2, prev_term: 1, entries, commit: 3, base: None },
        &mut rng(),
    );
    assert_eq!(node.election_votes_needed(), 2, "the leader committed in its term");

    // A joiner that won with every vote waits no more once its term commits: it holds all its
    // group committed, and deposed, it may run again (a joiner holding entries does not).
    let mut node = RaftNode::new(config(0), vec![0, 1], 0, &mut rng());
    node.wait_for_leader();
    node.campaign(10, &mut rng());
    let term = node.term();
    node.step(11, 1, Message::Vote { term, granted: true }, &mut rng());
    assert_eq!(node.role(), Role::Leader);
    let _ = node.ready();
    assert!(node.waits_for_leader(), "nothing of its term committed yet");
    node.step(12, 1, Message::AppendResponse { term, success: true, match_index: 1, hint: 0 }, &mut rng());
    assert_eq!(node.commit_index(), 1);
    assert!(!node.waits_for_leader(), "its own term committed");
    let request = Message::RequestVote {
        term: term + 1,
        last_log_index: 1,
        last_log_term: term,
        transfer: false,
        needs_every_vote: true,
    };
    node.step(13, 1, request, &mut rng());
    assert_eq!(node.role(), Role::Follower, "deposed");
    assert!(node.may_campaign(), "it may run again");
}

/// Raft's learner rule (default seed 6944 of v13): a joiner waiting for a leader grants no vote
/// to a member that is no joiner, even one whose log is as long as its own empty one: that
/// member may be one the group left behind, which the joiner's membership (the assignment's)
/// still counts. It does grant another joiner, which needs every member's vote anyway.
#[test]
fn waiting_joiner_votes_only_for_joiners() {
    let vote = |needs_every_vote: bool| {
        let mut voter = RaftNode::new(config(1), vec![0, 1, 2], 0, &mut rng());
        voter.wait_for_leader();
        let request =
            Message::RequestVote { term: 1, last_log_index: 0, last_log_term: 0, transfer: false, needs_every_vote };
        voter.step(10, 0, request, &mut rng());
        let ready = voter.ready();
        let granted = ready.messages.iter().find_map(|(to, m)| match m {
            Message::Vote { granted, .. } if *to == 0 => Some(*granted),
            _ => None,
        });
        (granted, voter.take_probes().collect::<Vec<_>>())
    };
    let (granted, probes) = vote(false);
    assert_eq!(granted, Some(false), "a joiner refuses a member");
    assert!(probes.contains(&Probe::VoteRefusedJoiner), "{probes:?}");
    assert_eq!(vote(true).0, Some(true), "a joiner grants another joiner");

    // Once caught up with a leader it is a member like any other.
    let mut voter = RaftNode::new(config(1), vec![0, 1, 2], 0, &mut rng());
    voter.wait_for_leader();
    let entries = vec![entry(1, 1)];
    voter.step(
        10,
        2,
        Message::Append { term: 1, prev_index: 0, prev_term: 0, entries, commit: 1, base: None },
        &mut rng(),
    );
    let request =
        Message::RequestVote { term: 2, last_log_index: 1, last_log_term: 1, transfer: true, needs_every_vote: false };
    voter.step(20, 0, request, &mut rng());
    let granted =
        voter.ready().messages.iter().any(|(to, m)| *to == 0 && matches!(m, Message::Vote { granted: true, .. }));
    assert!(granted, "a caught-up joiner votes as a member");
}

/// A joiner counts its membership from the one the leader's log starts from, sent with the
/// first append (churn seed 7841 of v13): started on the assignment's [1, 4], the group's
/// committed `RemovePeer(4)` would have left it a group of one, electing itself alone.
#[test]
fn joiner_takes_the_base_membership_of_its_leaders_log() {
    let joiner = || {
        let mut node = RaftNode::new(config(1), vec![1, 4], 0, &mut rng());
        node.wait_for_leader();
        node
    };
    let entries = vec![entry(1, 1), Entry { term: 1, index: 2, data: EntryData::RemovePeer(4) }];
    let append =
        |base| Message::Append { term: 2, prev_index: 0, prev_term: 0, entries: entries.clone(), commit: 2, base };

    let mut without = joiner();
    without.step(10, 3, append(None), &mut rng());
    assert_eq!(without.peers(), &[1], "the old rule: a group of one");

    let mut node = joiner();
    node.step(10, 3, append(Some(vec![4, 3])), &mut rng());
    assert_eq!(node.peers(), &[3], "the group's members, which do not count it yet");
    assert!(!node.may_campaign(), "not a member: it does not campaign");
    assert!(node.take_probes().any(|p| p == Probe::MembershipRebased));
    let ready = node.ready();
    assert_eq!(ready.base_peers, Some(vec![3, 4]), "handed out to be recorded");
    assert!(node.ready().base_peers.is_none(), "once");

    // The same base again changes nothing.
    let heartbeat =
        Message::Append { term: 2, prev_index: 0, prev_term: 0, entries: vec![], commit: 2, base: Some(vec![3, 4]) };
    node.step(20, 3, heartbeat, &mut rng());
    assert!(node.ready().base_peers.is_none());
}

/// A leader replicates to learners (servers about to join) without counting them: a joiner
/// learns the log and the membership it starts from, stops waiting, and only then is it
/// added (default seed 352 of v13: a joiner added before it could catch up left its group
/// waiting on a vote it did not give).
#[test]
fn learners_catch_up_before_they_count() {
    let mut cluster = Cluster::with_members(3, vec![0], 5, |_| {});
    let leader = cluster.await_leader(20_000);
    assert_eq!(leader, 0);
    for byte in 1..=3 {
        cluster.propose(0, normal(byte)).unwrap();
    }
    cluster.run_for(500);
    // Node 1 joins as the server layer starts a joiner: the assignment's peers, waiting.
    let mut joiner = RaftNode::new(config(1), vec![0, 1, 2], cluster.now_ms, &mut rng());
    joiner.wait_for_leader();
    cluster.nodes[1] = joiner;
    assert!(cluster.nodes[0].set_learners(&[1]), "a learner taken on");
    assert!(!cluster.nodes[0].set_learners(&[1]), "the same learners again change nothing");
    cluster.process(0);
    cluster.run_for(1_000);
    let (leader, learner) = (cluster.node(0), cluster.node(1));
    assert_eq!(learner.last_index(), leader.last_index(), "the learner holds the log");
    assert_eq!(learner.peers(), &[0], "with the membership the log starts from");
    assert!(!learner.waits_for_leader(), "caught up with a commit of the leader's term");
    assert_eq!(leader.match_index(1), leader.commit_index());
    assert_eq!((leader.peers(), leader.quorum_size()), (&[0][..], 1), "a learner does not count");

    // Added, it counts; the learner set that named it is spent.
    cluster.propose(0, EntryData::AddPeer(1)).unwrap();
    cluster.run_for(1_000);
    assert_eq!(cluster.node(0).peers(), &[0, 1]);
    assert_eq!(cluster.node(1).peers(), &[0, 1]);
    assert!(!cluster.nodes[0].set_learners(&[]), "a member is no learner to drop");
    assert_eq!(cluster.node(0).match_index(1), cluster.node(0).commit_index(), "a member keeps its progress");
    assert!(cluster.violations.is_empty(), "{:?}", cluster.violations);
}

/// A joiner restarted with part of a leader's log still waits (churn seed 7960): the leader may
/// have committed more without it, which a quorum of members that never heard of that leader
/// would not hold. Only an append up to a commit of the leader's term ends the wait.
#[test]
fn restarted_joiner_with_part_of_the_log_still_waits() {
    let mut node = restored(0, vec![0, 1, 2], 8, vec![entry(1, 3), entry(2, 8)]);
    assert_eq!(node.election_votes_needed(), 2, "a member restarted as such counts a quorum");
    node.wait_for_leader();
    assert!(node.waits_for_leader());
    assert_eq!(node.election_votes_needed(), 3, "a joiner wins only with every vote");
    assert!(!node.may_campaign(), "holding part of a leader's log, it waits for that leader (churn 16104)");
    let entries = vec![entry(3, 8)];
    node.step(
        10,
        1,
        Message::Append { term: 8, prev_index: 2, prev_term: 8, entries, commit: 3, base: None },
        &mut rng(),
    );
    assert!(!node.waits_for_leader(), "caught up with a commit of its leader's term");
    assert_eq!(node.election_votes_needed(), 2);
    assert!(node.may_campaign());
}

/// NRG `EvictPeers`: only leaderless, only when the peers left besides this node could not
/// elect without it, never itself; the group then elects on what is left.
#[test]
fn eviction_rules() {
    // One of three removed: the one other peer left cannot elect alone, so it may go.
    let mut node = restored(0, vec![0, 1, 2], 1, vec![entry(1, 1)]);
    assert_eq!(node.evict_peers(&[2], &[]), Ok(vec![2]));
    assert_eq!((node.peers(), node.quorum_size()), (&[0, 1][..], 2));
    // Peers 1 and 2 removed for good: only node 0 is left, it may evict both.
    let mut node = restored(0, vec![0, 1, 2], 1, vec![entry(1, 1)]);
    assert_eq!(node.evict_peers(&[0, 1, 2], &[]), Ok(vec![1, 2]), "never itself");
    assert_eq!((node.peers(), node.quorum_size()), (&[0][..], 1));
    node.tick(10_000, &mut rng());
    assert_eq!(node.role(), Role::Leader, "a group of one elects itself");

    // Five members, two removed: the two left besides us are short of 3 of 5, so evicting
    // is safe and leaves 0, 1, 2 with quorum 2.
    let mut node = restored(0, vec![0, 1, 2, 3, 4], 1, vec![entry(1, 1)]);
    assert_eq!(node.evict_peers(&[3, 4], &[]), Ok(vec![3, 4]));
    assert_eq!(node.quorum_size(), 2);
    // One removed of five: the three others could still elect without us.
    let mut node = restored(0, vec![0, 1, 2, 3, 4], 1, vec![entry(1, 1)]);
    assert_eq!(node.evict_peers(&[4], &[]), Err(RaftError::EvictQuorumPossible { remaining: 3 }));
    assert_eq!(node.peers().len(), 5);

    // An empty node never evicts: alone it could be elected and lose what the others held.
    assert_eq!(
        RaftNode::new(config(0), vec![0, 1, 2], 0, &mut rng()).evict_peers(&[1, 2], &[]),
        Err(RaftError::EvictEmptyLog)
    );

    // A known leader: membership goes through the log instead.
    let mut node = restored(0, vec![0, 1, 2], 1, vec![entry(1, 1)]);
    let entries = vec![];
    node.step(
        10,
        1,
        Message::Append { term: 1, prev_index: 1, prev_term: 1, entries, commit: 1, base: None },
        &mut rng(),
    );
    assert_eq!(node.evict_peers(&[1, 2], &[]), Err(RaftError::EvictLeaderKnown { leader: 1 }));
}

/// Eviction takes in the assignment's learners (churn seed 8372 of v13). Node 4 was down while
/// its group [0, 3, 4] committed entry 4; learner 1 (named by the assignment, not added yet)
/// holds it. With 0 and 3 removed for good, node 4 alone would elect itself without entry 4.
/// Taking learner 1 in, and waiting as a joiner (every vote needed), it cannot win; learner 1
/// evicts too and wins with node 4's vote. An empty learner taken in grants an evicted
/// candidate its vote, since that candidate needs every vote anyway.
#[test]
fn eviction_takes_in_learners_and_waits_for_every_vote() {
    let held = vec![entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 2)];
    let mut stale = restored(4, vec![0, 3, 4], 1, held[..3].to_vec());
    let mut learner = restored(1, vec![0, 3, 4], 2, held.clone());
    assert_eq!(stale.evict_peers(&[0, 3], &[1]), Ok(vec![0, 3]));
    assert_eq!(stale.peers(), &[1, 4][..]);
    assert!(stale.needs_every_vote(), "the evicted membership is its own view");
    assert!(!stale.waits_for_leader(), "it is no joiner: it votes by its log");
    assert_eq!(stale.election_votes_needed(), 2, "every member's vote");
    assert_eq!(learner.evict_peers(&[0, 3], &[1]), Ok(vec![0, 3]), "a learner evicts too");
    assert_eq!(learner.peers(), &[1, 4][..]);
    // Not named by the assignment and no member: nothing to evict.
    let mut outsider = restored(2, vec![0, 3, 4], 2, held.clone());
    assert_eq!(outsider.evict_peers(&[0, 3], &[1]), Ok(vec![]));
    assert_eq!(outsider.peers(), &[0, 3, 4][..]);

    let vote = |voter: &mut RaftNode, candidate: PeerId, request: Message| {
        voter.step(10_000, candidate, request, &mut rng());
        voter
            .ready()
            .messages
            .iter()
            .any(|(to, m)| *to == candidate && matches!(m, Message::Vote { granted: true, .. }))
    };
    let from_stale =
        Message::RequestVote { term: 3, last_log_index: 3, last_log_term: 1, transfer: false, needs_every_vote: true };
    assert!(!vote(&mut learner, 4, from_stale), "the learner holds entry 4: the stale member cannot win");
    // It needs the stale member's vote: it runs within a campaign timeout, before the stale
    // member's next election timeout (14302), though not at once (19076).
    assert_eq!(learner.role(), Role::Follower);
    let soon = 10_000 + super::election::CAMPAIGN_TIMEOUT_MS_MAX;
    assert!(learner.election_deadline_ms < soon, "runs soon: {}", learner.election_deadline_ms);
    learner.tick(soon, &mut rng());
    assert_eq!(learner.role(), Role::Candidate);
    assert_eq!(learner.term(), 4);
    let from_learner =
        Message::RequestVote { term: 4, last_log_index: 4, last_log_term: 2, transfer: false, needs_every_vote: true };
    assert!(vote(&mut stale, 1, from_learner.clone()), "the learner's log is newer");
    // Nor does it refuse a member that does not need every vote (churn seed 3659: two
    // candidates refused each other for good when it did).
    let mut evicted = restored(0, vec![0, 3, 4], 1, held[..3].to_vec());
    assert_eq!(evicted.evict_peers(&[3], &[]), Ok(vec![3]));
    let from_member =
        Message::RequestVote { term: 5, last_log_index: 4, last_log_term: 2, transfer: false, needs_every_vote: false };
    assert!(vote(&mut evicted, 4, from_member));

    // An empty learner taken in grants the evicted candidate: it would otherwise wait for a
    // leader that can never be elected.
    let mut empty = RaftNode::new(config(4), vec![1, 4], 0, &mut rng());
    empty.wait_for_leader();
    assert!(vote(&mut empty, 1, from_learner));
}

/// Two members on the same eviction's membership refuse the same stale candidate (churn seed
/// 19076 of v14): R3 group [0, 3, 4] reassigned to [1, 3, 4], n0 removed for good; n3 and n4
/// evicted n0 and took in the empty learner n1, so each needs every vote. n1, a joiner waiting
/// for a leader, times out and asks both for their votes. Run at once, both ran in the next
/// term, each voting for itself: a split that n1's next timeout repeated. Each runs within a
/// random campaign timeout instead (NRG's `randCampaignTimeout`), so the first to run wins the
/// other's vote and the learner's, long before n1 times out again.
#[test]
fn evicted_members_refusing_one_stale_candidate_do_not_split_the_vote() {
    let held: Vec<Entry> = (1..=6).map(|i| entry(i, 1)).collect();
    let mut nodes: BTreeMap<PeerId, RaftNode> = BTreeMap::new();
    for id in [3, 4] {
        let mut node = restored(id, vec![0, 3, 4], 1, held.clone());
        assert_eq!(node.evict_peers(&[0], &[1]), Ok(vec![0]));
        assert_eq!(node.peers(), &[1, 3, 4][..]);
        assert!(node.needs_every_vote());
        nodes.insert(id, node);
    }
    let mut learner = RaftNode::new(config(1), vec![1, 3, 4], 0, &mut rng());
    learner.wait_for_leader();
    let _ = learner.ready();
    nodes.insert(1, learner);
    let mut rngs: BTreeMap<PeerId, ChaCha8Rng> =
        nodes.keys().map(|id| (*id, ChaCha8Rng::seed_from_u64(u64::from(*id)))).collect();

    // Delivers everything in flight, and what it causes, until the nodes fall quiet.
    let settle = |nodes: &mut BTreeMap<PeerId, RaftNode>, rngs: &mut BTreeMap<PeerId, ChaCha8Rng>, now: u64| loop {
        let mut in_flight = Vec::new();
        for (id, node) in nodes.iter_mut() {
            while node.has_ready() {
                let ready = node.ready();
                in_flight.extend(ready.messages.into_iter().map(|(to, m)| (*id, to, m)));
            }
        }
        if in_flight.is_empty() {
            return;
        }
        for (from, to, msg) in in_flight {
            let rng = rngs.get_mut(&to).expect("a node");
            nodes.get_mut(&to).expect("a node").step(now, from, msg, rng);
        }
    };

    let start = 10_000;
    let rng1 = rngs.get_mut(&1).expect("n1");
    nodes.get_mut(&1).expect("n1").campaign(start, rng1);
    settle(&mut nodes, &mut rngs, start);
    for id in [3, 4] {
        assert_ne!(nodes[&id].role(), Role::Leader, "n{id} needs every vote, n1's too");
    }
    let n1_timeout = start + config(1).election_timeout_ms_min;
    let mut now = start;
    let leader = loop {
        now += TICK_MS;
        assert!(now < n1_timeout, "no leader before n1 times out again: {:?}", roles(&nodes));
        // Each node ticks at its own phase, and what a tick sends arrives before the next one.
        for id in [1, 3, 4] {
            let rng = rngs.get_mut(&id).expect("a node");
            nodes.get_mut(&id).expect("a node").tick(now + u64::from(id), rng);
            settle(&mut nodes, &mut rngs, now + u64::from(id));
        }
        if let Some((id, _)) = nodes.iter().find(|(_, n)| n.role() == Role::Leader) {
            break *id;
        }
    };
    assert!([3, 4].contains(&leader), "n{leader} leads");
    assert!(now < start + 2 * super::election::CAMPAIGN_TIMEOUT_MS_MAX, "led at {now}");
}

fn roles(nodes: &BTreeMap<PeerId, RaftNode>) -> Vec<(PeerId, Role, Term)> {
    nodes.iter().map(|(id, n)| (*id, n.role(), n.term())).collect()
}

/// An evicting node that wins keeps needing every vote until its term commits an entry (churn
/// seed 662 of v14): deposed at once by the empty member it took in, it would otherwise ask
/// for an ordinary vote, which that member, still waiting to join, never grants.
#[test]
fn an_evicted_leader_needs_every_vote_until_its_term_commits() {
    let held = vec![entry(1, 1), entry(2, 1), entry(3, 1)];
    let win = |node: &mut RaftNode, at: u64| {
        node.campaign(at, &mut rng());
        let term = node.term();
        node.step(at + 1, 1, Message::Vote { term, granted: true }, &mut rng());
        assert_eq!(node.role(), Role::Leader, "it wins with every member's vote");
        let _ = node.ready();
        term
    };
    let mut node = restored(0, vec![0, 3], 1, held.clone());
    assert_eq!(node.evict_peers(&[3], &[1]), Ok(vec![3]));
    assert_eq!(node.peers(), &[0, 1][..], "learner 1 taken in");
    let term = win(&mut node, 10_000);
    assert!(node.needs_every_vote(), "nothing of its term committed yet");
    let from_joiner = Message::RequestVote {
        term: term + 1,
        last_log_index: 0,
        last_log_term: 0,
        transfer: false,
        needs_every_vote: true,
    };
    node.step(10_002, 1, from_joiner, &mut rng());
    assert!(node.role() != Role::Leader && node.term() > term, "deposed by a higher term (and runs again at once)");
    assert!(node.needs_every_vote(), "still its own view of the membership");

    // Once its term commits an entry, the group agreed on the membership.
    let mut node = restored(0, vec![0, 3], 1, held);
    assert_eq!(node.evict_peers(&[3], &[1]), Ok(vec![3]));
    let term = win(&mut node, 10_000);
    let noop = node.last_index();
    node.step(10_003, 1, Message::AppendResponse { term, success: true, match_index: noop, hint: 0 }, &mut rng());
    assert_eq!(node.commit_index(), noop);
    assert!(!node.needs_every_vote(), "its term committed: the membership is agreed");
}

/// Churn seed 13788 of v15. Group [0, 3, 4]; n4 was peer-removed while paused and never learned
/// it. Node 3 evicts 4, takes the learner 1 in and wins with every vote of [0, 1, 3]. Its list
/// of members must not commit with the learner's copy alone: node 0, which voted, may lack it,
/// and, its meta state stale, still hears 4, with which it is a majority of [0, 3, 4].
#[test]
fn an_evictions_members_commit_only_once_every_member_holds_them() {
    let mut node = restored(3, vec![0, 3, 4], 1, vec![entry(1, 1)]);
    assert_eq!(node.evict_peers(&[4], &[1]), Ok(vec![4]));
    assert_eq!(node.peers(), &[0, 1, 3][..], "learner 1 taken in");
    node.campaign(10_000, &mut rng());
    let term = node.term();
    for voter in [0, 1] {
        node.step(10_001, voter, Message::Vote { term, granted: true }, &mut rng());
    }
    assert_eq!(node.role(), Role::Leader, "it wins with every member's vote");
    let _ = node.ready();
    let members = node.last_index();
    assert_eq!(members, 2);
    let ack = Message::AppendResponse { term, success: true, match_index: members, hint: 0 };
    node.step(10_002, 1, ack.clone(), &mut rng());
    assert_eq!(node.commit_index(), 0, "a majority of [0, 1, 3] holds it, but not node 0");
    node.step(10_003, 0, ack, &mut rng());
    assert_eq!(node.commit_index(), members, "every member holds it");
    assert!(!node.needs_every_vote(), "its term committed: the membership is agreed");
}

/// Churn seed 16104 of v14. Group [0, 1] committed entries 1-5; its leader 1 appended
/// `RemovePeer(0)` (6) and entries 7-9, which learner 3 holds. With 0 and 1 removed for good,
/// learner 3 evicts them and leads alone on [3], committing 10-13 by itself. Its log still
/// said the group was [0, 1], then [1]: server 1, taken back as a joiner, took its membership
/// from that log (base [0, 1], then `RemovePeer(0)`) and was a group of one, itself, electing
/// itself without what 3 committed. Two rules close it: the evicting leader's first entry puts
/// its members in the log (NRG's peer state), which followers and its own restart take when
/// it commits; and a joiner holding part of a leader's log does not campaign while it waits
/// (its prefix of the log still describes the membership before the eviction).
#[test]
fn an_evicting_leader_logs_its_members_and_a_joiner_holding_a_prefix_waits() {
    let mut held: Vec<Entry> = (1..=5).map(|i| entry(i, if i <= 2 { 1 } else { 2 })).collect();
    held.push(Entry { term: 2, index: 6, data: EntryData::RemovePeer(0) });
    held.extend((7..=9).map(|i| entry(i, 2)));
    let mut leader = restored(3, vec![0, 1], 2, held);
    assert_eq!(leader.evict_peers(&[0, 1], &[3]), Ok(vec![0, 1]));
    assert_eq!(leader.peers(), &[3]);
    leader.campaign(10_000, &mut rng());
    assert_eq!(leader.role(), Role::Leader, "a group of one elects itself");
    let _ = leader.ready();
    let _ = leader.ready();
    leader.applied_to(10);
    assert!(leader.leader());
    for byte in 11..=13 {
        leader.propose(10_001, leader.term(), normal(byte)).unwrap();
    }
    let _ = leader.ready();
    let _ = leader.ready();
    assert_eq!(leader.commit_index(), 13, "committed alone");
    let log = leader.committed_entries(1);
    assert_eq!(log.len(), 13);
    assert_ne!(log[9].data, EntryData::LeaderNoop, "its term's first entry names its members");

    // Restarted from its files (the membership it started from, its log), it leads the
    // members it logged: nothing is left to evict again.
    let hard = HardState { term: leader.term(), voted_for: Some(3), commit: 13 };
    let again = RaftNode::restore(config(3), vec![0, 1], hard, None, log.clone(), 20_000, &mut rng()).unwrap();
    assert_eq!(again.peers(), &[3], "the members its log names");

    // Server 1 comes back as a joiner and catches up from the start of the leader's log.
    let (term, commit) = (leader.term(), leader.commit_index());
    let mut joiner = RaftNode::new(config(1), vec![1, 3], 20_000, &mut rng());
    joiner.wait_for_leader();
    let first = Message::Append {
        term,
        prev_index: 0,
        prev_term: 0,
        entries: log[..6].to_vec(),
        commit,
        base: Some(vec![0, 1]),
    };
    joiner.step(20_001, 3, first, &mut rng());
    assert_eq!(joiner.commit_index(), 6);
    assert_eq!(joiner.peers(), &[1], "the membership that prefix of the log describes: itself alone");
    assert!(!joiner.may_campaign(), "it holds part of its leader's log: it waits for the rest");
    joiner.tick(40_000, &mut rng());
    assert_eq!(joiner.role(), Role::Follower, "no election on its own vote");
    let rest = Message::Append { term, prev_index: 6, prev_term: 2, entries: log[6..].to_vec(), commit, base: None };
    joiner.step(40_001, 3, rest, &mut rng());
    assert_eq!(joiner.commit_index(), 13);
    assert!(!joiner.waits_for_leader(), "caught up with a commit of its leader's term");
    assert_eq!(joiner.peers(), &[3], "the members its leader led with, which do not count it yet");
    assert!(!joiner.may_campaign());
}

/// In a group of two a quorum is every member, and a candidate says so: a member still waiting
/// to join grants it, which it refuses a candidate that a majority would elect (churn seeds
/// 2688, 4261, 5619 and 6993 of v14: the member holding the log needed the joiner's vote and
/// never got it). In a group of three a majority is no longer every member.
#[test]
fn a_candidate_of_a_group_of_two_needs_every_vote_and_a_joiner_grants_it() {
    let held = vec![entry(1, 1), entry(2, 1)];
    let request_of = |node: &mut RaftNode| {
        node.campaign(10_000, &mut rng());
        node.ready().messages.into_iter().find_map(|(_, m)| matches!(m, Message::RequestVote { .. }).then_some(m))
    };
    let mut member = restored(1, vec![1, 3], 1, held.clone());
    let request = request_of(&mut member).expect("asks the other member");
    assert!(matches!(request, Message::RequestVote { needs_every_vote: true, .. }), "{request:?}");
    let mut joiner = RaftNode::new(config(3), vec![1, 3], 0, &mut rng());
    joiner.wait_for_leader();
    joiner.step(10_001, 1, request, &mut rng());
    let granted =
        joiner.ready().messages.iter().any(|(to, m)| *to == 1 && matches!(m, Message::Vote { granted: true, .. }));
    assert!(granted, "the joiner grants a candidate that needs every vote");

    let mut of_three = restored(1, vec![1, 3, 4], 1, held);
    let request = request_of(&mut of_three).expect("asks the others");
    assert!(matches!(request, Message::RequestVote { needs_every_vote: false, .. }), "{request:?}");
}

/// A member grants a candidate outside its membership only when the candidate's log is strictly
/// newer: that candidate has seen membership changes the member has not (churn seed 5624 of v14:
/// a stale member on [0,1,4] refused for good the other member of the group [1,2] it lacked).
#[test]
fn a_stale_member_grants_a_non_member_with_a_newer_log_only() {
    let vote = |candidate_last: Index| {
        let mut stale = restored(1, vec![0, 1, 4], 1, vec![entry(1, 1), entry(2, 1)]);
        let request = Message::RequestVote {
            term: 2,
            last_log_index: candidate_last,
            last_log_term: 1,
            transfer: false,
            needs_every_vote: true,
        };
        stale.step(10_000, 2, request, &mut rng());
        stale.ready().messages.iter().any(|(to, m)| *to == 2 && matches!(m, Message::Vote { granted: true, .. }))
    };
    assert!(vote(3), "a newer log knows the membership better");
    assert!(!vote(2), "an equal log: a non-member of what this member knows");
    assert!(!vote(1), "an older log");
}

/// NRG `PauseApply`/`ResumeApply`: a paused follower keeps acknowledging and learning commits
/// but hands nothing up and never campaigns, not even when a leader hands over to it; on resume
/// it hands up what it missed and campaigns at once for the hand-over. A leader cannot pause.
#[test]
fn paused_applies_wait_and_a_hand_over_waits_for_resume() {
    let mut cluster = Cluster::new(3, 21, |_| {});
    let leader = cluster.await_leader(20_000);
    let now = cluster.now_ms;
    assert_eq!(cluster.nodes[leader as usize].pause_apply(now, &mut rng()), Err(RaftError::PauseWhileLeader));
    let follower = (leader + 1) % 3;
    cluster.nodes[follower as usize].pause_apply(now, &mut rng()).expect("a follower pauses");
    let handed_before = cluster.apps[follower as usize].applied_index();
    let last = (0..3).map(|_| cluster.propose(leader, EntryData::Normal(vec![7])).expect("leader")).last().unwrap();
    cluster.run_for(2_000);
    let paused = cluster.node(follower);
    assert!(paused.apply_paused());
    assert!(paused.commit_index() >= last, "commits still reach a paused follower");
    assert_eq!(cluster.apps[follower as usize].applied_index(), handed_before, "nothing handed up while paused");
    assert!(!paused.current(cluster.now_ms), "a paused follower with entries to apply is not current");

    // The leader hands over to the paused follower: it waits rather than campaigning.
    let now = cluster.now_ms;
    let mut step_rng = rng();
    assert_eq!(cluster.nodes[leader as usize].step_down(now, Some(follower), &mut step_rng), Some(follower));
    cluster.process(leader);
    cluster.deliver_round();
    cluster.deliver_round();
    assert_ne!(cluster.node(follower).role(), Role::Candidate, "no campaign while paused");
    assert_ne!(cluster.node(follower).role(), Role::Leader);

    let now = cluster.now_ms;
    cluster.nodes[follower as usize].resume_apply(now, &mut rng());
    assert_eq!(cluster.node(follower).role(), Role::Candidate, "the hand-over is taken up on resume");
    cluster.process(follower);
    assert!(cluster.apps[follower as usize].applied_index() >= last, "the missed entries are handed up");
    cluster.run_for(1_000);
    assert_eq!(cluster.leader(), Some(follower));
}

/// What a tick may change of a node, but for its clock: a tick before
/// [`RaftNode::tick_due_ms`] must leave all of it as it was (the server skips such ticks).
fn tick_fingerprint(node: &RaftNode) -> String {
    let contacts: Vec<(PeerId, u64)> = node.progress.iter().map(|(&p, pr)| (p, pr.contact_ms)).collect();
    format!(
        "{:?} t{} voted {:?} leader {:?} hb {} el {} gap {:?} rescue {} stamp {:?} out {} probes {} ready {} {contacts:?}",
        node.role,
        node.term,
        node.voted_for,
        node.leader_id,
        node.heartbeat_due_ms,
        node.election_deadline_ms,
        node.apply_gap_at_tick,
        node.rescue.is_some(),
        node.stamp(),
        node.messages.len(),
        node.probes.len(),
        node.has_ready(),
    )
}

/// `tick_due_ms` is never late: over elections, entries, lost messages, an isolated leader
/// and a restart, every tick taken before a node's due time changes nothing but its clock and draws
/// nothing from its generator, while ticks at or past it do act (so the test is not empty).
#[test]
fn a_tick_before_its_due_time_only_raises_the_clock() {
    let (mut early, mut acted) = (0u32, 0u32);
    for seed in 0..8 {
        let mut c = Cluster::new(3, seed, |_| {});
        c.drop_per_mille = 100;
        for step in 0..600u64 {
            c.now_ms += TICK_MS;
            match step {
                150 => c.isolate(c.leaders.values().last().copied().unwrap_or(0)),
                300 => c.heal(),
                400 => c.crash(1),
                450 => c.restart(1),
                // Entries between heartbeats: followers' contacts fall between them too.
                s if s % 7 == 0 => {
                    if let Some(leader) = c.leader() {
                        let _ = c.propose(leader, EntryData::Normal(vec![s as u8]));
                    }
                }
                _ => {}
            }
            for id in c.ids() {
                if c.down.contains(&id) {
                    continue;
                }
                let i = id as usize;
                let due = c.nodes[i].tick_due_ms();
                let (before, words) = (tick_fingerprint(&c.nodes[i]), c.node_rngs[i].get_word_pos());
                c.nodes[i].tick(c.now_ms, &mut c.node_rngs[i]);
                let (after, words_after) = (tick_fingerprint(&c.nodes[i]), c.node_rngs[i].get_word_pos());
                if c.now_ms < due {
                    early += 1;
                    assert_eq!(before, after, "seed {seed} n{id} at {} ms, due {due}", c.now_ms);
                    assert_eq!(words, words_after, "seed {seed} n{id} drew at {} ms before {due}", c.now_ms);
                } else if before != after {
                    acted += 1;
                }
                c.process(id);
            }
            c.deliver_round();
            c.deliver_round();
        }
        assert!(c.violations.is_empty(), "seed {seed}: {:?}", c.violations);
    }
    assert!(early > 5_000 && acted > 200, "{early} early ticks, {acted} that acted");
}
