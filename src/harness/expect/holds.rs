//! Whether an expectation holds, judged on the cluster as it stands (and, for a few, on the
//! ghost's memory of the run). A failure says what was found instead.

use sim::{CheckFailure, Cluster, NodeIndex, NodeStatus};

use super::{HealthWant, MetaExpect};
use crate::harness::ghost::Ghost;
use crate::meta::{self, ConsumerKey, StreamKey};
use crate::server::client_requests::ClientRequests;
use crate::server::group::Group;
use crate::server::jetstream::MetaLayer;
use crate::server::wire::META;
use crate::server::Server;

type Verdict = Result<(), CheckFailure>;

/// The cluster as one expectation looks at it.
struct Probe<'a, 'c> {
    cluster: &'a Cluster<'c, Server>,
    ghost: &'a Ghost,
}

fn fail(node: Option<NodeIndex>, what: String) -> Verdict {
    Err(CheckFailure::new("meta", node, what))
}

fn no_meta_group(node: NodeIndex) -> Verdict {
    fail(Some(node), "has no running meta group".into())
}

impl<'a> Probe<'a, '_> {
    /// The state of `node`, running or paused.
    fn server(&self, node: NodeIndex) -> Option<&'a Server> {
        self.cluster.view(node).and_then(|n| n.state)
    }

    fn group(&self, node: NodeIndex) -> Option<&'a Group> {
        self.server(node).and_then(|s| s.meta_group())
    }

    fn layer(&self, node: NodeIndex) -> Option<&'a MetaLayer> {
        self.group(node).and_then(|g| g.meta.as_deref())
    }

    fn bool_is(&self, node: NodeIndex, what: &str, actual: Option<bool>, want: bool) -> Verdict {
        match actual {
            Some(a) if a == want => Ok(()),
            Some(a) => fail(Some(node), format!("{what} is {a}, expected {want}")),
            None => no_meta_group(node),
        }
    }

    /// A check on `node`'s meta group: `check` returns what was found when it does not hold.
    fn on_group(&self, node: NodeIndex, check: impl FnOnce(&Group) -> Option<String>) -> Verdict {
        match self.group(node) {
            Some(g) => check(g).map_or(Ok(()), |found| fail(Some(node), found)),
            None => no_meta_group(node),
        }
    }

    /// A check on `node`'s meta layer, likewise.
    fn on_layer(&self, node: NodeIndex, check: impl FnOnce(&MetaLayer) -> Option<String>) -> Verdict {
        match self.layer(node) {
            Some(m) => check(m).map_or(Ok(()), |found| fail(Some(node), found)),
            None => no_meta_group(node),
        }
    }

    /// Runs `check` on what `node`'s clients got back, with or without a meta group there.
    fn on_requests(&self, node: NodeIndex, check: impl FnOnce(&ClientRequests) -> Option<String>) -> Verdict {
        match self.server(node) {
            Some(s) => check(s.client_requests()).map_or(Ok(()), |found| fail(Some(node), found)),
            None => fail(Some(node), "is not running".into()),
        }
    }
}

/// Whether `expect` holds now.
pub fn expect_holds(ghost: &Ghost, cluster: &Cluster<'_, Server>, expect: &MetaExpect) -> Verdict {
    let probe = Probe { cluster, ghost };
    match expect {
        MetaExpect::Leader { .. }
        | MetaExpect::Leaderless { .. }
        | MetaExpect::Current { .. }
        | MetaExpect::Healthy { .. }
        | MetaExpect::HadPreviousLeader { .. }
        | MetaExpect::GroupLeader { .. }
        | MetaExpect::OneLeader {}
        | MetaExpect::HandOvers { .. }
        | MetaExpect::AppliedAtLeast { .. }
        | MetaExpect::Peers { .. }
        | MetaExpect::MetaRefused { .. }
        | MetaExpect::SnapshotsInstalled { .. }
        | MetaExpect::Quorum { .. }
        | MetaExpect::Rescued { .. }
        | MetaExpect::NeverLeader { .. }
        | MetaExpect::CommittedAtLeast { .. } => raft_holds(&probe, expect),
        MetaExpect::Streams { .. }
        | MetaExpect::Stream { .. }
        | MetaExpect::Consumer { .. }
        | MetaExpect::Consumers { .. }
        | MetaExpect::Unsupported { .. }
        | MetaExpect::ApplyError { .. } => applied_holds(&probe, expect),
        MetaExpect::DirectConsumers { .. }
        | MetaExpect::LocalStreams { .. }
        | MetaExpect::LocalStream { .. }
        | MetaExpect::Groups { .. }
        | MetaExpect::Messages { .. } => local_holds(&probe, expect),
        MetaExpect::Answers { .. }
        | MetaExpect::AnswerOk { .. }
        | MetaExpect::AnswerError { .. }
        | MetaExpect::NoErrorAnswers { .. }
        | MetaExpect::Timeouts { .. } => answers_hold(&probe, expect),
        MetaExpect::Healthz(h) => health_holds(&probe, h.node, "healthz", &h.want, |s| s.healthz(h.meta_only)),
        MetaExpect::StreamHealth(h) => {
            let key = StreamKey::new(&h.account, &h.name);
            health_holds(&probe, h.node, &format!("stream {key} health"), &h.want, |s| s.stream_health(&key))
        }
        MetaExpect::ConsumerHealth(h) => {
            let key = ConsumerKey::new(&h.account, &h.stream, &h.name);
            health_holds(&probe, h.node, &format!("consumer {key} health"), &h.want, |s| s.consumer_health(&key))
        }
    }
}

/// The meta group's raft state, and the run's raft history.
fn raft_holds(p: &Probe<'_, '_>, expect: &MetaExpect) -> Verdict {
    match expect {
        MetaExpect::Leader { node, is } => p.bool_is(*node, "leader()", p.group(*node).map(|g| g.node.leader()), *is),
        MetaExpect::Leaderless { node, is } => {
            p.bool_is(*node, "leaderless()", p.group(*node).map(|g| g.node.leaderless()), *is)
        }
        MetaExpect::Current { node, is } => {
            let current = p.server(*node).and_then(|s| s.meta_group().map(|g| g.node.current(s.now_ms())));
            p.bool_is(*node, "current()", current, *is)
        }
        MetaExpect::Healthy { node, is } => {
            let healthy = p.server(*node).and_then(|s| s.meta_group().map(|g| g.node.healthy(s.now_ms())));
            p.bool_is(*node, "healthy()", healthy, *is)
        }
        MetaExpect::HadPreviousLeader { node, is } => {
            p.bool_is(*node, "had_previous_leader()", p.group(*node).map(|g| g.node.had_previous_leader()), *is)
        }
        MetaExpect::GroupLeader { node, equals } => p.on_group(*node, |g| {
            (g.node.group_leader() != *equals)
                .then(|| format!("group_leader() is {:?}, expected {equals:?}", g.node.group_leader()))
        }),
        MetaExpect::OneLeader {} => one_leader(p),
        MetaExpect::HandOvers { at_least, within_ms } => {
            let delays = &p.ghost.handovers.delays_ms;
            let slowest = delays.iter().max().copied().unwrap_or(0);
            if delays.len() < *at_least || slowest > *within_ms {
                let message = format!(
                    "{} hand-overs since heal reached their next leader after {delays:?} ms, expected at least {at_least} within {within_ms} ms",
                    delays.len()
                );
                return fail(None, message);
            }
            Ok(())
        }
        MetaExpect::AppliedAtLeast { node, index } => p.on_group(*node, |g| {
            (g.applied.index < *index).then(|| format!("applied {}, expected at least {index}", g.applied.index))
        }),
        MetaExpect::Peers { node, equals } => p.on_group(*node, |g| {
            (g.node.peers() != equals.as_slice())
                .then(|| format!("peers are {:?}, expected {equals:?}", g.node.peers()))
        }),
        MetaExpect::MetaRefused { node, is } => {
            let refused = match p.server(*node) {
                Some(s) => s.meta_error().is_some(),
                None => p.cluster.view(*node).is_some_and(|v| matches!(v.status, NodeStatus::Refused(_))),
            };
            if refused == *is {
                Ok(())
            } else {
                fail(Some(*node), format!("meta refused is {refused}, expected {is}"))
            }
        }
        MetaExpect::SnapshotsInstalled { node, at_least } => p.on_group(*node, |g| {
            (g.snapshots_installed < *at_least)
                .then(|| format!("installed {} snapshots, expected at least {at_least}", g.snapshots_installed))
        }),
        MetaExpect::Quorum { node, equals } => p.on_group(*node, |g| {
            (g.node.quorum_size() != *equals)
                .then(|| format!("meta quorum {}, expected {equals}", g.node.quorum_size()))
        }),
        MetaExpect::Rescued { node, quorum } => p.on_group(*node, |g| {
            (g.node.rescued_quorum() != *quorum)
                .then(|| format!("rescued quorum {:?}, expected {quorum:?}", g.node.rescued_quorum()))
        }),
        MetaExpect::NeverLeader { node } => {
            if p.ghost.ever_leader.contains(node) {
                fail(Some(*node), "was leader".into())
            } else {
                Ok(())
            }
        }
        MetaExpect::CommittedAtLeast { count } => {
            let n = p.ghost.group(META).committed.len() as u64;
            if n >= *count {
                Ok(())
            } else {
                fail(None, format!("{n} entries applied, expected at least {count}"))
            }
        }
        other => unreachable!("{other:?} is not about raft"),
    }
}

/// Exactly one running server leads, and every running member names it.
fn one_leader(p: &Probe<'_, '_>) -> Verdict {
    let leaders: Vec<NodeIndex> =
        p.cluster.running().filter(|(_, s)| s.meta_group().is_some_and(|g| g.node.leader())).map(|(i, _)| i).collect();
    let [leader] = leaders[..] else { return fail(None, format!("leaders: {leaders:?}")) };
    for (i, s) in p.cluster.running() {
        if let Some(g) = s.meta_group() {
            if g.node.peers().contains(&i) && g.node.group_leader() != Some(leader) {
                return fail(Some(i), format!("names {:?} as leader, not n{leader}", g.node.group_leader()));
            }
        }
    }
    Ok(())
}

/// The meta layer's applied state.
fn applied_holds(p: &Probe<'_, '_>, expect: &MetaExpect) -> Verdict {
    match expect {
        MetaExpect::Streams { node, count } => p.on_layer(*node, |m| {
            let n = m.state.streams().count();
            (n != *count).then(|| format!("{n} streams applied, expected {count}"))
        }),
        MetaExpect::Stream {
            node,
            account,
            name,
            exists,
            peers,
            in_cluster,
            has_sync,
            on,
            group_peers,
            sealed,
            subjects,
            max_consumers,
            created_ms,
        } => p.on_layer(*node, |m| {
            let sa = m.state.stream(&StreamKey::new(account, name));
            let want = StreamWant { exists: *exists, peers: *peers, in_cluster, has_sync: *has_sync, on };
            let config = ConfigWant { sealed: *sealed, subjects, max_consumers: *max_consumers };
            let what = format!("stream {name}");
            stream_differs(p, name, sa, &want)
                .or_else(|| sa.and_then(|sa| created_differs(&what, sa.created_ms, *created_ms)))
                .or_else(|| sa.and_then(|sa| config_differs(name, sa, &config)))
                .or_else(|| sa.and_then(|sa| group_peers_differ(p, *node, &what, &sa.group, group_peers)))
        }),
        MetaExpect::Consumer { node, account, stream, name, exists, peers, on, group_peers, created_ms } => {
            p.on_layer(*node, |m| {
                let key = ConsumerKey::new(account.clone(), stream.clone(), name.clone());
                let ca = match (m.state.consumer(&key), *exists) {
                    (Some(_), false) => return Some(format!("consumer {key} exists")),
                    (None, true) => return Some(format!("consumer {key} does not exist")),
                    (None, false) => return None,
                    (Some(ca), true) => ca,
                };
                let have = &ca.group.peers;
                if let Some(n) = peers.filter(|&n| have.len() != n) {
                    return Some(format!("consumer {key} has peers {have:?}, expected {n}"));
                }
                if on.as_ref().is_some_and(|on| on != have) {
                    return Some(format!("consumer {key} has peers {have:?}, expected {on:?}"));
                }
                let what = format!("consumer {key}");
                created_differs(&what, ca.created_ms, *created_ms)
                    .or_else(|| group_peers_differ(p, *node, &what, &ca.group, group_peers))
            })
        }
        MetaExpect::Consumers { node, account, stream, count } => p.on_layer(*node, |m| {
            let n = m.state.stream(&StreamKey::new(account, stream)).map_or(0, |sa| sa.consumers.len());
            (n != *count).then(|| format!("{n} consumers on {stream}, expected {count}"))
        }),
        MetaExpect::Unsupported { node, account, stream, consumer, is, reason_contains } => p.on_layer(*node, |m| {
            let (what, reason) = match consumer {
                Some(c) => {
                    let key = ConsumerKey::new(account.clone(), stream.clone(), c.clone());
                    (key.to_string(), m.state.consumer_unsupported(&key))
                }
                None => {
                    let key = StreamKey::new(account, stream);
                    (key.to_string(), m.state.stream_unsupported(&key))
                }
            };
            unsupported_differs(&what, reason, *is, reason_contains.as_deref())
        }),
        MetaExpect::ApplyError { node, is } => {
            p.bool_is(*node, "meta apply error", p.layer(*node).map(|m| m.state.write_error().is_some()), *is)
        }
        other => unreachable!("{other:?} is not about the applied state"),
    }
}

/// What a `stream` expectation asks of an applied stream.
struct StreamWant<'a> {
    exists: bool,
    peers: Option<usize>,
    in_cluster: &'a Option<String>,
    has_sync: Option<bool>,
    on: &'a Option<Vec<NodeIndex>>,
}

/// How stream `name`'s applied assignment differs from what is wanted, if it does.
fn stream_differs(
    p: &Probe<'_, '_>,
    name: &str,
    sa: Option<&meta::StreamAssignment>,
    want: &StreamWant<'_>,
) -> Option<String> {
    let sa = match (sa, want.exists) {
        (Some(_), false) => return Some(format!("stream {name} exists")),
        (None, true) => return Some(format!("stream {name} does not exist")),
        (None, false) => return None,
        (Some(sa), true) => sa,
    };
    let peers = &sa.group.peers;
    if let Some(n) = want.peers.filter(|&n| peers.len() != n) {
        return Some(format!("stream {name} has peers {peers:?}, expected {n}"));
    }
    if let Some(cluster) = want.in_cluster {
        if peers.iter().any(|&peer| p.cluster.config.cluster_of(peer) != Some(cluster.as_str())) {
            return Some(format!("stream {name} has peers {peers:?}, not all in cluster {cluster}"));
        }
    }
    if want.on.as_ref().is_some_and(|on| on != peers) {
        return Some(format!("stream {name} has peers {peers:?}, expected {:?}", want.on));
    }
    if want.has_sync.is_some_and(|has| has == sa.sync.is_empty()) {
        return Some(format!("stream {name} has sync subject {:?}, expected has_sync = {:?}", sa.sync, want.has_sync));
    }
    None
}

/// Config fields a `stream` expectation asks of an applied stream.
struct ConfigWant<'a> {
    sealed: Option<bool>,
    subjects: &'a Option<Vec<String>>,
    max_consumers: Option<u32>,
}

/// How stream `name`'s applied config differs from what is wanted, if it does.
fn config_differs(name: &str, sa: &meta::StreamAssignment, want: &ConfigWant<'_>) -> Option<String> {
    if want.sealed.is_none() && want.subjects.is_none() && want.max_consumers.is_none() {
        return None;
    }
    let config = match meta::StreamConfig::decode(&sa.config_json) {
        Ok(decoded) => decoded.into_config(),
        Err(e) => return Some(format!("stream {name}'s config does not decode: {e}")),
    };
    if let Some(sealed) = want.sealed.filter(|&s| s != config.sealed) {
        return Some(format!("stream {name} has sealed = {}, expected {sealed}", config.sealed));
    }
    if let Some(subjects) = want.subjects.as_ref().filter(|s| **s != config.subjects) {
        return Some(format!("stream {name} has subjects {:?}, expected {subjects:?}", config.subjects));
    }
    if want.max_consumers.is_some() && want.max_consumers != config.max_consumers {
        return Some(format!(
            "stream {name} has max_consumers {:?}, expected {:?}",
            config.max_consumers, want.max_consumers
        ));
    }
    None
}

/// How an assignment's created time differs from `want`, if asked.
fn created_differs(what: &str, created_ms: u64, want: Option<u64>) -> Option<String> {
    let want = want.filter(|&w| w != created_ms)?;
    Some(format!("{what} was created at {created_ms} ms, expected {want}"))
}

/// How the raft membership of `group` as `node` runs it differs from `want`, if asked.
fn group_peers_differ(
    p: &Probe<'_, '_>,
    node: NodeIndex,
    what: &str,
    group: &meta::RaftGroup,
    want: &Option<Vec<NodeIndex>>,
) -> Option<String> {
    let want = want.as_ref()?;
    let Some(running) = p.server(node).and_then(|s| s.group(&group.name)) else {
        return Some(format!("{what}: does not run group {}", group.name));
    };
    let have = running.node.peers();
    (have != want.as_slice())
        .then(|| format!("{what}: group {} has raft peers {have:?}, expected {want:?}", group.name))
}

/// How an asset's support differs from what is wanted, if it does.
fn unsupported_differs(what: &str, reason: Option<&str>, is: bool, reason_contains: Option<&str>) -> Option<String> {
    match (reason, is, reason_contains) {
        (Some(r), true, Some(want)) if !r.contains(want) => {
            Some(format!("{what} is unsupported because {r:?}, expected a reason containing {want:?}"))
        }
        (Some(_), true, _) | (None, false, _) => None,
        (Some(r), false, _) => Some(format!("{what} is unsupported ({r}), expected supported")),
        (None, true, _) => Some(format!("{what} is supported, expected unsupported")),
    }
}

/// What a server holds and runs locally.
fn local_holds(p: &Probe<'_, '_>, expect: &MetaExpect) -> Verdict {
    match expect {
        MetaExpect::DirectConsumers { node, account, stream, count } => p.on_layer(*node, |m| {
            let names: Vec<&str> = m
                .local
                .direct_consumers()
                .filter(|(k, a)| a.running && k.account == *account && k.stream == *stream)
                .map(|(k, _)| k.name.as_str())
                .collect();
            (names.len() != *count)
                .then(|| format!("runs direct consumers {names:?} on {account}:{stream}, expected {count}"))
        }),
        MetaExpect::LocalStreams { node, count } => p.on_layer(*node, |m| {
            let running: Vec<String> =
                m.local.streams().filter(|(_, a)| a.running).map(|(k, _)| k.to_string()).collect();
            (running.len() != *count).then(|| format!("runs {running:?}, expected {count} streams"))
        }),
        MetaExpect::LocalStream { node, account, name, exists } => {
            p.on_layer(*node, |m| match (m.local.stream(&StreamKey::new(account, name)).is_some(), *exists) {
                (false, true) => Some(format!("holds no local stream {account}:{name}")),
                (true, false) => Some(format!("holds local stream {account}:{name}")),
                _ => None,
            })
        }
        MetaExpect::Groups { node, count } => match p.cluster.server(*node) {
            Some(s) if s.groups().count() == *count => Ok(()),
            Some(s) => {
                let names: Vec<&str> = s.groups().map(|g| g.name.as_str()).collect();
                fail(Some(*node), format!("runs groups {names:?}, expected {count}"))
            }
            None => fail(Some(*node), "is down".into()),
        },
        MetaExpect::Messages { node, account, name, equals } => {
            let key = StreamKey::new(account, name);
            let (Some(s), Some(view)) = (p.server(*node), p.cluster.view(*node)) else {
                return fail(Some(*node), "is not running".into());
            };
            match s.stream_messages(&key, view.disk) {
                Some(Ok(n)) if n == *equals => Ok(()),
                Some(Ok(n)) => fail(Some(*node), format!("holds {n} messages of stream {key}, expected {equals}")),
                Some(Err(e)) => fail(Some(*node), format!("cannot count the messages of stream {key}: {e}")),
                None => fail(Some(*node), format!("does not run stream {key}")),
            }
        }
        other => unreachable!("{other:?} is not about local assets"),
    }
}

/// What a server's clients got back.
fn answers_hold(p: &Probe<'_, '_>, expect: &MetaExpect) -> Verdict {
    match expect {
        MetaExpect::Answers { node, at_least, at_most } => p.on_requests(*node, |r| {
            let within = r.answered >= *at_least && at_most.is_none_or(|most| r.answered <= most);
            (!within).then(|| format!("{} answers, expected {at_least} to {at_most:?}", r.answered))
        }),
        MetaExpect::AnswerOk { node, contains } => p.on_requests(*node, |r| {
            let found = r.oks.iter().any(|a| a.contains(contains.as_str()));
            (!found).then(|| format!("no answer contains {contains:?}; answers: {:?}", r.oks))
        }),
        MetaExpect::NoErrorAnswers { node } => {
            p.on_requests(*node, |r| (!r.errors.is_empty()).then(|| format!("error answers: {:?}", r.errors)))
        }
        MetaExpect::AnswerError { node, contains } => p.on_requests(*node, |r| {
            let found = r.errors.iter().any(|e| e.contains(contains.as_str()));
            (!found).then(|| format!("no error answer contains {contains:?}: {:?}", r.errors))
        }),
        MetaExpect::Timeouts { node, at_least } => p.on_requests(*node, |r| {
            (r.timed_out < *at_least).then(|| format!("{} timeouts, expected at least {at_least}", r.timed_out))
        }),
        other => unreachable!("{other:?} is not about answers"),
    }
}

/// A health expectation on `node`, which must be running: the failure shows the actual answer.
fn health_holds(
    p: &Probe<'_, '_>,
    node: NodeIndex,
    what: &str,
    want: &HealthWant,
    check: impl FnOnce(&Server) -> Result<(), String>,
) -> Verdict {
    let Some(server) = p.cluster.server(node) else {
        return fail(Some(node), format!("{what}: server is not running"));
    };
    want.check(&check(server)).map_err(|m| CheckFailure::new("meta", Some(node), format!("{what} {m}")))
}
