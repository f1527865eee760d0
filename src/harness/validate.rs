//! Load-time checks of the meta system's scenario types, beyond what their types say: client
//! operations, expectations and the `[system]` table. A scenario file that names a server
//! that does not exist, asks for nothing (`count = 0`) or for something NATS refuses is
//! refused when it loads, with its line, instead of doing nothing useful at run time (an
//! `op-refused` seen only with `--log`) or failing with a misleading message.
//!
//! The engine calls these through [`sim::Harness`]'s `validate_*` hooks; errors are `(field,
//! message)`, the field relative to the op or check (empty: the whole op).

use sim::NodeIndex;

use super::expect::MetaExpect;
use crate::server::wire::{MetaOp, PROPOSE_COUNT_MAX, PUBLISH_COUNT_MAX};
use crate::server::ServerConfig;

/// The field refused (relative to its op or check) and why.
pub type Refusal = (String, String);

/// Check one client operation of a scenario file.
pub fn op(op: &MetaOp, servers: u32, config: &ServerConfig) -> Result<(), Refusal> {
    match op {
        MetaOp::Propose { count } => count_within("count", *count, PROPOSE_COUNT_MAX),
        MetaOp::Publish { stream, count, .. } => {
            stream_name("stream", stream)?;
            count_within("count", *count, PUBLISH_COUNT_MAX)
        }
        // A preferred server that does not exist is a warning only (see `op_warning`).
        MetaOp::Stepdown { .. } | MetaOp::Snapshot {} | MetaOp::PauseApply {} | MetaOp::ResumeApply {} => Ok(()),
        MetaOp::AddPeer { peer } => node("peer", *peer, servers),
        MetaOp::RemovePeer { peer, name } => one_removal_target(peer.is_some(), name.is_some()),
        MetaOp::Rescue { quorum } => rescue_quorum(*quorum, servers),
        MetaOp::ProposeRaw { hex } => hex_bytes(hex),
        MetaOp::InjectInflightStream { name, peers, .. } => {
            stream_name("name", name)?;
            if peers.is_empty() {
                return Err(("peers".into(), "names no server: a stream needs at least one peer".into()));
            }
            peer_list("peers", peers, servers)
        }
        MetaOp::CreateStream { name, cluster, .. } | MetaOp::UpdateStream { name, cluster, .. } => {
            stream_name("name", name)?;
            cluster_known("cluster", cluster.as_deref(), config)
        }
        MetaOp::DeleteStream { name, .. } | MetaOp::StreamInfo { name, .. } => stream_name("name", name),
        MetaOp::CreateConsumer { stream, name, .. }
        | MetaOp::DeleteConsumer { stream, name, .. }
        | MetaOp::ConsumerInfo { stream, name, .. } => {
            stream_name("stream", stream)?;
            consumer_name("name", name)
        }
        MetaOp::StreamStepdown { name, .. } => stream_name("name", name),
        MetaOp::StreamPeerRemove { name, peer, .. } => {
            stream_name("name", name)?;
            node("peer", *peer, servers)
        }
        MetaOp::ConsumerStepdown { stream, name, .. } => {
            stream_name("stream", stream)?;
            consumer_name("name", name)
        }
        MetaOp::StreamList { .. } => Ok(()),
        MetaOp::ConsumerList { stream, .. } => stream_name("stream", stream),
    }
}

/// A client operation that loads but probably does not do what its author meant.
///
/// A `stepdown` to a server that does not exist is not refused: the v9 fuzz generator draws
/// `preferred` from 0..5 whatever the cluster's size, so exported seeds of the 3-server
/// `storage` profile hold such steps, and they must keep loading and replaying. The leader
/// refuses the stepdown (no such member) and stays.
pub fn op_warning(op: &MetaOp, servers: u32) -> Option<Refusal> {
    match op {
        MetaOp::StreamStepdown { preferred: Some(p), .. } | MetaOp::ConsumerStepdown { preferred: Some(p), .. }
            if *p >= servers =>
        {
            Some((
                "preferred".into(),
                format!("node {p} does not exist (servers = {servers}): the stepdown is refused"),
            ))
        }
        MetaOp::Stepdown { preferred: Some(p) } if *p >= servers => Some((
            "preferred".into(),
            format!("node {p} does not exist (servers = {servers}): the leader refuses the stepdown and stays"),
        )),
        _ => None,
    }
}

/// Messages and log entries the operation asks the cluster to store.
pub fn op_messages(op: &MetaOp) -> u64 {
    match op {
        MetaOp::Publish { count, .. } | MetaOp::Propose { count } => u64::from(*count),
        _ => 0,
    }
}

/// Check one expectation of a scenario file: every server it names exists, and a cluster it
/// names is configured.
pub fn expect(expect: &MetaExpect, servers: u32, config: &ServerConfig) -> Result<(), Refusal> {
    if let Some(n) = expect_node(expect) {
        node("node", n, servers)?;
    }
    match expect {
        MetaExpect::GroupLeader { equals: Some(leader), .. } => node("equals", *leader, servers),
        MetaExpect::Peers { equals, .. } => peer_list("equals", equals, servers),
        MetaExpect::Stream { on, in_cluster, group_peers, .. } => {
            if let Some(on) = on {
                peer_list("on", on, servers)?;
            }
            if let Some(peers) = group_peers {
                peer_list("group_peers", peers, servers)?;
            }
            cluster_known("in_cluster", in_cluster.as_deref(), config)
        }
        MetaExpect::Consumer { on, group_peers, .. } => {
            if let Some(on) = on {
                peer_list("on", on, servers)?;
            }
            match group_peers {
                Some(peers) => peer_list("group_peers", peers, servers),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The server an expectation is about, if it is about one. Every variant is listed, so a new
/// one cannot be forgotten here.
fn expect_node(expect: &MetaExpect) -> Option<NodeIndex> {
    match expect {
        MetaExpect::OneLeader {} | MetaExpect::HandOvers { .. } | MetaExpect::CommittedAtLeast { .. } => None,
        MetaExpect::Leader { node, .. }
        | MetaExpect::Quorum { node, .. }
        | MetaExpect::Rescued { node, .. }
        | MetaExpect::Leaderless { node, .. }
        | MetaExpect::GroupLeader { node, .. }
        | MetaExpect::Current { node, .. }
        | MetaExpect::Healthy { node, .. }
        | MetaExpect::HadPreviousLeader { node, .. }
        | MetaExpect::AppliedAtLeast { node, .. }
        | MetaExpect::Peers { node, .. }
        | MetaExpect::MetaRefused { node, .. }
        | MetaExpect::SnapshotsInstalled { node, .. }
        | MetaExpect::NeverLeader { node }
        | MetaExpect::Streams { node, .. }
        | MetaExpect::Stream { node, .. }
        | MetaExpect::Consumer { node, .. }
        | MetaExpect::NoErrorAnswers { node }
        | MetaExpect::Consumers { node, .. }
        | MetaExpect::DirectConsumers { node, .. }
        | MetaExpect::LocalStreams { node, .. }
        | MetaExpect::Groups { node, .. }
        | MetaExpect::LocalStream { node, .. }
        | MetaExpect::Answers { node, .. }
        | MetaExpect::AnswerOk { node, .. }
        | MetaExpect::AnswerError { node, .. }
        | MetaExpect::ApplyError { node, .. }
        | MetaExpect::Timeouts { node, .. }
        | MetaExpect::Unsupported { node, .. }
        | MetaExpect::Messages { node, .. } => Some(*node),
        MetaExpect::Healthz(e) => Some(e.node),
        MetaExpect::StreamHealth(e) => Some(e.node),
        MetaExpect::ConsumerHealth(e) => Some(e.node),
    }
}

/// Checks of the `[system]` table beyond [`ServerConfig::validate`]: a server listed twice
/// in a list of servers is a typo.
pub fn config(config: &ServerConfig, _servers: u32) -> Result<(), String> {
    for (field, list) in [
        ("observers", &config.observers),
        ("initial_peers", &config.initial_peers),
        ("jetstream_disabled", &config.jetstream_disabled),
    ] {
        if let Some(twice) = sim::scenario::first_repeated(list) {
            return Err(format!("{field}: server {twice} is listed twice"));
        }
    }
    Ok(())
}

fn node(field: &str, node: NodeIndex, servers: u32) -> Result<(), Refusal> {
    if node >= servers {
        return Err((field.into(), format!("node {node} does not exist (servers = {servers})")));
    }
    Ok(())
}

/// A list of servers: none missing, none twice.
fn peer_list(field: &str, peers: &[NodeIndex], servers: u32) -> Result<(), Refusal> {
    for &p in peers {
        node(field, p, servers)?;
    }
    match sim::scenario::first_repeated(peers) {
        Some(twice) => Err((field.into(), format!("node {twice} is listed twice"))),
        None => Ok(()),
    }
}

fn count_within(field: &str, count: u32, max: u32) -> Result<(), Refusal> {
    if count == 0 || count > max {
        return Err((field.into(), format!("must be between 1 and {max}, got {count}")));
    }
    Ok(())
}

/// `SERVER.REMOVE` names its server by peer id or by server name, not both.
fn one_removal_target(by_peer: bool, by_name: bool) -> Result<(), Refusal> {
    match (by_peer, by_name) {
        (true, false) | (false, true) => Ok(()),
        (true, true) => Err(("name".into(), "give `peer` or `name`, not both".into())),
        (false, false) => Err((String::new(), "remove-peer needs `peer` (an id) or `name` (such as \"n2\")".into())),
    }
}

/// A rescue lowers the quorum: to at least one, and to no more than a majority of the
/// cluster, the largest quorum it can have.
fn rescue_quorum(quorum: usize, servers: u32) -> Result<(), Refusal> {
    let majority = servers as usize / 2 + 1;
    if quorum == 0 || quorum > majority {
        return Err(("quorum".into(), format!("must be between 1 and {majority} (servers = {servers}), got {quorum}")));
    }
    Ok(())
}

/// `propose-raw` bytes: pairs of hex digits.
fn hex_bytes(hex: &str) -> Result<(), Refusal> {
    if let Some((at, c)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let shown = sim::scenario::escape_control(&c.to_string()).into_owned();
        return Err(("hex".into(), format!("not hex: {shown:?} at character {at}")));
    }
    if !hex.len().is_multiple_of(2) {
        return Err(("hex".into(), format!("{} hex digits: bytes need an even number", hex.len())));
    }
    Ok(())
}

fn stream_name(field: &str, name: &str) -> Result<(), Refusal> {
    no_path_separator(field, "stream", name)
}

fn consumer_name(field: &str, name: &str) -> Result<(), Refusal> {
    no_path_separator(field, "consumer", name)
}

/// NATS refuses stream and consumer names with path separators (they name directories on
/// its disk). Other invalid names (dots, wildcards) are left to the leader, which answers
/// them with an error a scenario may expect.
fn no_path_separator(field: &str, what: &str, name: &str) -> Result<(), Refusal> {
    if name.contains(['/', '\\']) {
        return Err((
            field.into(),
            format!("{name:?}: a {what} name cannot contain a path separator (NATS refuses it)"),
        ));
    }
    Ok(())
}

/// A placement or expectation cluster must be one of `[system] clusters`.
fn cluster_known(field: &str, cluster: Option<&str>, config: &ServerConfig) -> Result<(), Refusal> {
    let Some(name) = cluster else { return Ok(()) };
    if config.clusters.iter().any(|c| c.name == name) {
        return Ok(());
    }
    let known: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
    let known = if known.is_empty() { "none: [system] has no clusters".to_string() } else { known.join(", ") };
    Err((field.into(), format!("no cluster {name:?} (known: {known})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::expect::{HealthWant, HealthzExpect};
    use crate::server::config::ClusterSpec;

    fn config() -> ServerConfig {
        ServerConfig::default()
    }

    fn field_of(result: Result<(), Refusal>) -> String {
        result.expect_err("refused").0
    }

    #[test]
    fn ops_naming_a_missing_server_are_refused() {
        assert_eq!(field_of(op(&MetaOp::AddPeer { peer: 3 }, 3, &config())), "peer");
        let inject = |peers: Vec<u32>| MetaOp::InjectInflightStream { account: "A".into(), name: "X".into(), peers };
        assert_eq!(field_of(op(&inject(vec![0, 9]), 3, &config())), "peers");
        assert_eq!(field_of(op(&inject(vec![1, 1]), 3, &config())), "peers");
        assert_eq!(field_of(op(&inject(vec![]), 3, &config())), "peers");
        assert!(op(&inject(vec![0, 2]), 3, &config()).is_ok());
        assert!(op(&MetaOp::AddPeer { peer: 2 }, 3, &config()).is_ok());
    }

    #[test]
    fn a_stepdown_to_a_missing_server_loads_with_a_warning() {
        let stepdown = MetaOp::Stepdown { preferred: Some(4) };
        assert!(op(&stepdown, 3, &config()).is_ok());
        assert_eq!(op_warning(&stepdown, 3).expect("a warning").0, "preferred");
        assert!(op_warning(&MetaOp::Stepdown { preferred: Some(2) }, 3).is_none());
        assert!(op_warning(&MetaOp::Stepdown { preferred: None }, 3).is_none());
    }

    #[test]
    fn counts_are_bounded_not_capped() {
        let publish = |count| MetaOp::Publish { account: "A".into(), stream: "S".into(), count };
        assert_eq!(field_of(op(&publish(0), 3, &config())), "count");
        assert_eq!(field_of(op(&publish(u32::MAX), 3, &config())), "count");
        assert!(op(&publish(PUBLISH_COUNT_MAX), 3, &config()).is_ok());
        assert_eq!(field_of(op(&MetaOp::Propose { count: PROPOSE_COUNT_MAX + 1 }, 3, &config())), "count");
        assert_eq!(field_of(op(&MetaOp::Propose { count: 0 }, 3, &config())), "count");
        assert_eq!(op_messages(&publish(7)) + op_messages(&MetaOp::Propose { count: 5 }), 12);
        assert_eq!(op_messages(&MetaOp::Snapshot {}), 0);
    }

    #[test]
    fn remove_peer_names_exactly_one_target() {
        let remove = |peer, name: Option<&str>| MetaOp::RemovePeer { peer, name: name.map(str::to_string) };
        assert_eq!(field_of(op(&remove(Some(1), Some("n1")), 3, &config())), "name");
        assert_eq!(field_of(op(&remove(None, None), 3, &config())), "");
        assert!(op(&remove(Some(7), None), 3, &config()).is_ok(), "a non-member gets an error answer at run time");
        assert!(op(&remove(None, Some("n2")), 3, &config()).is_ok());
    }

    #[test]
    fn rescue_quorum_and_raw_hex_are_checked() {
        assert_eq!(field_of(op(&MetaOp::Rescue { quorum: 0 }, 5, &config())), "quorum");
        assert_eq!(field_of(op(&MetaOp::Rescue { quorum: 4 }, 5, &config())), "quorum");
        assert!(op(&MetaOp::Rescue { quorum: 3 }, 5, &config()).is_ok());
        for bad in ["0g", "abc", "zz"] {
            assert_eq!(field_of(op(&MetaOp::ProposeRaw { hex: bad.into() }, 3, &config())), "hex", "{bad}");
        }
        assert!(op(&MetaOp::ProposeRaw { hex: "01ff00".into() }, 3, &config()).is_ok());
    }

    #[test]
    fn names_with_path_separators_and_unknown_clusters_are_refused() {
        let create = |name: &str, cluster: Option<&str>| MetaOp::CreateStream {
            account: "A".into(),
            name: name.into(),
            subjects: vec![],
            replicas: 1,
            max_consumers: None,
            required_api_level: None,
            config_json: None,
            cluster: cluster.map(str::to_string),
        };
        assert_eq!(field_of(op(&create("a/b", None), 3, &config())), "name");
        assert_eq!(field_of(op(&create("a\\b", None), 3, &config())), "name");
        assert!(op(&create("a.b", None), 3, &config()).is_ok(), "the leader answers this one");
        let (refused, why) = op(&create("S", Some("nowhere")), 3, &config()).unwrap_err();
        assert_eq!(refused, "cluster");
        assert!(why.contains("has no clusters"), "{why}");
        let mut clustered = config();
        clustered.clusters = vec![ClusterSpec { name: "east".into(), nodes: vec![0, 1, 2] }];
        assert!(op(&create("S", Some("east")), 3, &clustered).is_ok());
        assert_eq!(field_of(op(&create("S", Some("west")), 3, &clustered)), "cluster");
        let consumer = MetaOp::DeleteConsumer { account: "A".into(), stream: "S".into(), name: "c/1".into() };
        assert_eq!(field_of(op(&consumer, 3, &clustered)), "name");
    }

    #[test]
    fn expectations_naming_a_missing_server_are_refused() {
        let checks = [
            MetaExpect::MetaRefused { node: 3, is: false },
            MetaExpect::NeverLeader { node: 9 },
            MetaExpect::Healthz(HealthzExpect { node: 3, meta_only: false, want: HealthWant::Ok }),
        ];
        for check in &checks {
            assert_eq!(field_of(expect(check, 3, &config())), "node", "{check:?}");
        }
        assert_eq!(field_of(expect(&MetaExpect::GroupLeader { node: 0, equals: Some(5) }, 3, &config())), "equals");
        assert_eq!(field_of(expect(&MetaExpect::Peers { node: 0, equals: vec![0, 7] }, 3, &config())), "equals");
        assert!(expect(&MetaExpect::MetaRefused { node: 2, is: false }, 3, &config()).is_ok());
        assert!(expect(&MetaExpect::OneLeader {}, 3, &config()).is_ok());
    }

    #[test]
    fn asset_expectations_name_existing_servers() {
        let consumer = |on: Option<Vec<u32>>, group_peers: Option<Vec<u32>>| MetaExpect::Consumer {
            node: 0,
            account: "A".into(),
            stream: "S".into(),
            name: "C".into(),
            exists: true,
            peers: None,
            on,
            group_peers,
            created_ms: None,
        };
        assert_eq!(field_of(expect(&consumer(Some(vec![0, 3]), None), 3, &config())), "on");
        assert_eq!(field_of(expect(&consumer(None, Some(vec![2, 2])), 3, &config())), "group_peers");
        assert!(expect(&consumer(Some(vec![0, 1, 2]), Some(vec![0, 1, 2])), 3, &config()).is_ok());
        assert_eq!(field_of(expect(&MetaExpect::NoErrorAnswers { node: 3 }, 3, &config())), "node");
        let info = MetaOp::ConsumerInfo { account: "A".into(), stream: "S".into(), name: "a/b".into() };
        assert_eq!(field_of(op(&info, 3, &config())), "name");
        let list = MetaOp::ConsumerList { account: "A".into(), stream: "a\\b".into() };
        assert_eq!(field_of(op(&list, 3, &config())), "stream");
    }

    #[test]
    fn servers_listed_twice_in_the_system_table_are_refused() {
        let mut twice = config();
        twice.observers = vec![1, 1];
        assert_eq!(super::config(&twice, 3).unwrap_err(), "observers: server 1 is listed twice");
        let mut peers = config();
        peers.initial_peers = vec![0, 2, 0];
        assert!(super::config(&peers, 3).unwrap_err().starts_with("initial_peers"));
        assert!(super::config(&ServerConfig::default(), 3).is_ok());
    }
}
