//! What fuzz runs ask of the meta system: its `[system]` knobs per seed (swarm testing, as
//! FoundationDB randomises its), and client operations over a few names so that creates
//! collide, deletes find their target and consumers find their stream; for the `scale`
//! profile, a bulk load of streams with two consumers each.

use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use sim::{Action, NodeIndex, Step, Workload};

use crate::meta;
use crate::server::config::{ClusterSpec, ServerApiLevel, ServerCapacity, ServerConfig};
use crate::server::wire::MetaOp;
use crate::server::Server;

pub struct MetaWorkload;

impl Workload for MetaWorkload {
    type Node = Server;

    fn churn_op(rng: &mut dyn RngCore, _config: &ServerConfig) -> Option<MetaOp> {
        Some(match rng.gen_range(0..4) {
            0 | 1 => MetaOp::Stepdown { preferred: None },
            2 => MetaOp::Stepdown { preferred: Some(rng.gen_range(0..5)) },
            _ => MetaOp::Snapshot {},
        })
    }

    fn single_copy_op(rng: &mut dyn RngCore, _config: &ServerConfig) -> Option<MetaOp> {
        // NATS's default is one replica: an R1 stream's messages live on its one server only.
        // Two in five are R1 creates of the usual names (refused while the name holds another
        // config), the rest publishes to those names.
        let stream = format!("S{}", rng.gen_range(0..4));
        let account = "A".to_string();
        Some(if rng.gen_bool(0.4) {
            let subjects = vec![format!("{}.>", stream.to_lowercase())];
            MetaOp::CreateStream {
                account,
                name: stream,
                subjects,
                replicas: 1,
                max_consumers: None,
                required_api_level: None,
                config_json: None,
                cluster: None,
            }
        } else {
            MetaOp::Publish { account, stream, count: rng.gen_range(1..=4) }
        })
    }

    fn membership_op(rng: &mut dyn RngCore, _config: &ServerConfig) -> Option<MetaOp> {
        let peer = rng.gen_range(0..5);
        // A third: one peer of one stream (§8.2), whichever stream the name finds.
        if rng.gen_range(0..3) == 0 {
            let name = format!("S{}", rng.gen_range(0..4));
            return Some(MetaOp::StreamPeerRemove { account: "A".into(), name, peer });
        }
        // By id or by name (names are known only for servers heard from since start).
        Some(if rng.gen_bool(0.5) {
            MetaOp::RemovePeer { peer: Some(peer), name: None }
        } else {
            MetaOp::RemovePeer { peer: None, name: Some(format!("n{peer}")) }
        })
    }

    fn remove_member_op(_config: &ServerConfig, node: NodeIndex) -> Option<MetaOp> {
        Some(MetaOp::RemovePeer { peer: Some(node), name: None })
    }

    fn client_op(rng: &mut dyn RngCore, config: &ServerConfig) -> MetaOp {
        // A few names, so creates collide (idempotent or conflicting), deletes find their
        // target, and consumers find their stream. Mirrors (M0, M1) are a small share: creates
        // of a random S<n>'s mirror and their deletes; nothing publishes to them or consumes
        // from them, as their content is not modelled.
        let stream = format!("S{}", rng.gen_range(0..4));
        let consumer = format!("C{}", rng.gen_range(0..3));
        let account = "A".to_string();
        match rng.gen_range(0..110) {
            0..=3 => MetaOp::Stepdown { preferred: None },
            4..=5 => MetaOp::Stepdown { preferred: Some(rng.gen_range(0..5)) },
            6..=8 => MetaOp::Snapshot {},
            9..=14 => MetaOp::Propose { count: rng.gen_range(1..=4) },
            15..=19 => MetaOp::StreamInfo { account, name: stream },
            20..=29 => MetaOp::Publish { account, stream, count: rng.gen_range(1..=4) },
            30..=58 => {
                // Replicas vary now and then: the same name with another config is refused, and
                // an R2 stream fits the smaller cluster when the other is full.
                let replicas = [3, 3, 3, 3, 3, 3, 3, 1, 1, 2][rng.gen_range(0..10)];
                let subjects = vec![format!("{}.>", stream.to_lowercase())];
                MetaOp::CreateStream {
                    account,
                    name: stream,
                    subjects,
                    replicas,
                    // Now and then a consumer limit, which the three consumer names reach.
                    max_consumers: rng.gen_bool(0.15).then(|| rng.gen_range(1..=2)),
                    required_api_level: generate_required_level(rng),
                    config_json: None,
                    // Now and then pinned to a cluster: such a stream cannot be re-placed.
                    cluster: if !config.clusters.is_empty() && rng.gen_bool(0.2) {
                        Some(config.clusters[rng.gen_range(0..config.clusters.len())].name.clone())
                    } else {
                        None
                    },
                }
            }
            59..=61 => {
                // A replica change (§2.2), both ways: an R1 stream's store goes into a raft
                // group, a replicated one shrinks to fewer members or one.
                let replicas = [1, 1, 2, 3, 3][rng.gen_range(0..5)];
                let subjects = vec![format!("{}.>", stream.to_lowercase())];
                MetaOp::UpdateStream {
                    account,
                    name: stream,
                    subjects,
                    replicas,
                    sealed: false,
                    required_api_level: None,
                    cluster: None,
                }
            }
            62..=64 => mirror_create(rng, account, stream),
            65..=73 => MetaOp::DeleteStream { account, name: stream },
            74 => MetaOp::DeleteStream { account, name: mirror_name(rng) },
            75..=92 => MetaOp::CreateConsumer {
                account,
                stream,
                name: consumer,
                // Mostly the stream's replicas; now and then a count of its own, which scales
                // an existing consumer (§2.2).
                replicas: if rng.gen_bool(0.2) { rng.gen_range(1..=3) } else { 0 },
                required_api_level: generate_required_level(rng),
                config_json: None,
            },
            93..=99 => MetaOp::DeleteConsumer { account, stream, name: consumer },
            // Asset groups' stepdowns (NATS `STREAM.LEADER.STEPDOWN`, `CONSUMER.LEADER.STEPDOWN`),
            // now and then to a preferred server.
            100..=101 => MetaOp::StreamStepdown { account, name: stream, preferred: generate_preferred(rng) },
            102 => MetaOp::ConsumerStepdown { account, stream, name: consumer, preferred: generate_preferred(rng) },
            103 => MetaOp::ConsumerInfo { account, stream, name: consumer },
            104 => MetaOp::StreamList { account },
            105 => MetaOp::ConsumerList { account, stream },
            // A seal (§5.4): the stream takes no more messages, and every later update that
            // does not keep it sealed is refused.
            106 => {
                let subjects = vec![format!("{}.>", stream.to_lowercase())];
                update_r3(account, stream, subjects, true)
            }
            // Subjects that another stream's name stands for: refused when that stream exists
            // (overlap), and an update or a conflicting create otherwise.
            107..=109 => {
                let other = format!("s{}.>", rng.gen_range(0..4));
                if rng.gen_bool(0.5) {
                    update_r3(account, stream.clone(), vec![format!("{}.>", stream.to_lowercase()), other], false)
                } else {
                    MetaOp::CreateStream {
                        account,
                        name: stream,
                        subjects: vec![other],
                        replicas: 3,
                        max_consumers: None,
                        required_api_level: None,
                        config_json: None,
                        cluster: None,
                    }
                }
            }
            _ => unreachable!("drawn from 0..110"),
        }
    }

    /// The scale profile's bulk load asks for many assets: limits on streams per account
    /// and per server would refuse most of them, so they go.
    fn bulk_config(config: &mut ServerConfig) {
        config.max_streams_per_account = None;
        config.stream_capacity.clear();
    }

    /// The `elections` profile: raft ten times faster than NRG's defaults, and batches of one
    /// or four entries, where a new leader's followers acknowledge its predecessors' entries
    /// before its own (the Figure 8 window).
    fn hasten_config(rng: &mut dyn RngCore, config: &mut ServerConfig) {
        let heartbeat_ms = [100, 200][rng.gen_range(0..2)];
        config.heartbeat_ms = heartbeat_ms;
        config.election_timeout_ms_min = heartbeat_ms * 4;
        config.election_timeout_ms_max = heartbeat_ms * 9;
        config.tick_ms = heartbeat_ms / 10;
        config.max_entries_per_append = [1, 4][rng.gen_range(0..2)];
    }

    /// `churn` seeds that start a server outside the meta group: it runs JetStream and joins
    /// by itself (§8.1), as a server added to a running NATS cluster does.
    fn join_later(config: &mut ServerConfig, node: NodeIndex, servers: u32) {
        config.initial_peers = (0..servers).filter(|&n| n != node).collect();
    }

    /// The `mixed` profile's limited servers run without JetStream (§8.4): no meta group, no
    /// assets, clients forwarded to the meta leader, never placement candidates.
    fn limit_servers(config: &mut ServerConfig, nodes: &[NodeIndex]) {
        config.jetstream_disabled = nodes.to_vec();
    }

    /// One unit of a bulk load: an R1 or R3 stream of its own (`B<index>`, subjects
    /// `b<index>.>`), then two consumers on it (replicas as the stream's). Like every
    /// generated asset, one in ten needs the current API level (§7).
    fn bulk_unit(rng: &mut dyn RngCore, _config: &ServerConfig, index: u32) -> Vec<MetaOp> {
        let account = "A".to_string();
        let stream = format!("B{index}");
        let create = MetaOp::CreateStream {
            account: account.clone(),
            name: stream.clone(),
            subjects: vec![format!("b{index}.>")],
            replicas: if rng.gen_bool(0.5) { 3 } else { 1 },
            max_consumers: None,
            required_api_level: generate_required_level(rng),
            config_json: None,
            cluster: None,
        };
        let consumers = (0..2).map(|c| MetaOp::CreateConsumer {
            account: account.clone(),
            stream: stream.clone(),
            name: format!("D{c}"),
            replicas: 0,
            required_api_level: generate_required_level(rng),
            config_json: None,
        });
        std::iter::once(create).chain(consumers).collect()
    }

    /// A group created by the last operation may need several election rounds: its members
    /// start it as they apply the assignment, seconds apart, and split votes. Three of the
    /// slowest election timeouts (27 s at NRG's defaults) let it settle.
    fn quiet_tail_ms(config: &ServerConfig) -> u64 {
        3 * config.election_timeout_ms_max
    }

    fn generate_config(rng: &mut dyn RngCore, servers: u32) -> ServerConfig {
        // Half the seeds run raft ten times faster than NRG's defaults, so a 60 s run sees many
        // more elections, stepdowns and catch-ups (swarm knobs, as FoundationDB randomises its).
        let fast = rng.gen_bool(0.5);
        let heartbeat_ms = if fast { [100, 200][rng.gen_range(0..2)] } else { 1_000 };
        ServerConfig {
            heartbeat_ms,
            election_timeout_ms_min: heartbeat_ms * 4,
            election_timeout_ms_max: heartbeat_ms * 9,
            tick_ms: heartbeat_ms / 10,
            snapshot_every: [16, 64, 256][rng.gen_range(0..3)],
            // Small batches let a follower acknowledge old-term entries before the new leader's
            // first entry, the window in which Raft's Figure 8 rule matters.
            max_entries_per_append: [64, 64, 4, 1][rng.gen_range(0..4)],
            max_streams_per_account: [None, Some(2), Some(3)][rng.gen_range(0..3)],
            // A quarter of the seeds run a mixed-version cluster: one server a level behind,
            // so assets that need the current level are unsupported there (§7).
            api_levels: if rng.gen_bool(0.25) {
                vec![ServerApiLevel { node: rng.gen_range(0..3), level: meta::API_LEVEL - 1 }]
            } else {
                vec![]
            },
            // A quarter of the seeds run two clusters (placement tries the client's first), and
            // some bound a few servers' streams, so placement from stale stats makes members
            // refuse streams and the leader re-place or remove them (§2.7).
            clusters: if servers >= 2 && rng.gen_bool(0.25) {
                let east = servers.div_ceil(2);
                vec![
                    ClusterSpec { name: "east".into(), nodes: (0..east).collect() },
                    ClusterSpec { name: "west".into(), nodes: (east..servers).collect() },
                ]
            } else {
                vec![]
            },
            stream_capacity: if rng.gen_bool(0.3) {
                let bounded = rng.gen_range(1..=servers.div_ceil(2));
                let mut nodes: Vec<NodeIndex> = (0..servers).collect();
                nodes.shuffle(rng);
                nodes.truncate(bounded as usize);
                nodes.sort_unstable();
                nodes.into_iter().map(|node| ServerCapacity { node, streams: rng.gen_range(1..=2) }).collect()
            } else {
                vec![]
            },
            ..ServerConfig::default()
        }
    }
}

/// A mirror's name: two, so creates collide and deletes find their target.
fn mirror_name(rng: &mut dyn RngCore) -> String {
    format!("M{}", rng.gen_range(0..2))
}

/// A mirror of `origin` (which may not exist yet: NATS accepts that, and its direct consumer
/// comes once the origin does), R1 or R3. Config JSON as a client sends it: a mirror takes no
/// subjects, so the op's own fields do not fit. Its direct consumer on the origin's leader is
/// what the orphan check must spare (§4, §11 #26).
fn mirror_create(rng: &mut dyn RngCore, account: String, origin: String) -> MetaOp {
    let name = mirror_name(rng);
    let replicas = if rng.gen_bool(0.5) { 1 } else { 3 };
    let config_json = format!(r#"{{"name":"{name}","replicas":{replicas},"mirror":{{"name":"{origin}"}}}}"#);
    MetaOp::CreateStream {
        account,
        name,
        subjects: Vec::new(),
        replicas,
        max_consumers: None,
        required_api_level: None,
        config_json: Some(config_json),
        cluster: None,
    }
}

/// An update of stream `name` to three replicas and `subjects`, sealed or not.
fn update_r3(account: String, name: String, subjects: Vec<String>, sealed: bool) -> MetaOp {
    MetaOp::UpdateStream { account, name, subjects, replicas: 3, sealed, required_api_level: None, cluster: None }
}

/// A third of asset stepdowns ask for a preferred server (any of five; one not in the group
/// is refused).
fn generate_preferred(rng: &mut dyn RngCore) -> Option<NodeIndex> {
    rng.gen_bool(1.0 / 3.0).then(|| rng.gen_range(0..5))
}

/// One generated asset in ten needs the current API level (§7), which older servers lack.
fn generate_required_level(rng: &mut dyn RngCore) -> Option<i64> {
    rng.gen_bool(0.1).then_some(meta::API_LEVEL)
}

/// The bulk load's stream and consumer creates among `steps` (those of `B<n>` streams), as
/// the `scale` profile's tests and bench row count them.
pub fn bulk_assets<E>(steps: &[Step<MetaOp, E>]) -> (usize, usize) {
    let mut counts = (0, 0);
    for step in steps {
        match &step.action {
            Action::Client { op: MetaOp::CreateStream { name, .. }, .. } if name.starts_with('B') => counts.0 += 1,
            Action::Client { op: MetaOp::CreateConsumer { stream, .. }, .. } if stream.starts_with('B') => {
                counts.1 += 1
            }
            _ => {}
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use sim::Action;

    use crate::meta::StreamConfig;
    use crate::server::wire::MetaOp;
    use crate::sut::MetaSystem;

    /// Fuzz seeds draw mirrors of the S<n> streams and delete them: every profile's first
    /// seeds hold some, each a mirror config the model accepts (no subjects, an origin that is
    /// not itself), and they stay a small share of the client operations.
    #[test]
    fn fuzz_seeds_draw_mirrors_and_their_deletes() {
        for profile in ["default", "restarts", "churn"] {
            let profile = sim::swarm::profile(profile).expect("listed");
            let (mut ops, mut creates, mut deletes) = (0, 0, 0);
            for seed in 0..20 {
                for step in sim::swarm::generate::<MetaSystem>(seed, profile).steps {
                    let Action::Client { op, .. } = step.action else { continue };
                    ops += 1;
                    match &op {
                        MetaOp::CreateStream { name, config_json: Some(json), .. } => {
                            let config = StreamConfig::decode(json.as_bytes()).expect("decodes").into_config();
                            let origin = config.mirror.expect("a mirror").name;
                            assert!(name.starts_with('M') && origin.starts_with('S'), "{json}");
                            assert_eq!((config.name.as_str(), config.subjects.len()), (name.as_str(), 0), "{json}");
                            assert!(op.request().is_some());
                            creates += 1;
                        }
                        MetaOp::DeleteStream { name, .. } if name.starts_with('M') => deletes += 1,
                        _ => {}
                    }
                }
            }
            assert!(creates > 0 && deletes > 0, "{}: {creates} mirror creates, {deletes} deletes", profile.name);
            assert!(creates + deletes < ops / 10, "{}: {creates} + {deletes} of {ops} ops", profile.name);
        }
    }
}
