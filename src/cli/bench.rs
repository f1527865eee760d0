//! `bench`: engine speed. A 5-node all-to-all heartbeat pattern on our world (our network
//! model, trace and checks) next to the same pattern on raw madsim endpoints and on a bare
//! binary-heap loop (`bench_bare`), in one process, with the ratios of the three,
//! plus the default fuzz profile's seeds per minute, a meta snapshot's encode and decode at
//! scale and start-up recovery times (`bench_meta`), and the `scale` profile's seeds per minute
//! (`bench_checks`). Figures only; nothing asserts them.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use sim::fixture::ping::{PingConfig, PingSystem};
use sim::net::LinkProfile;
use sim::{RunOptions, ScenarioOf};

use super::fuzz::run_seed;
use super::{flag_error, CliError};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Simulated seconds of the heartbeat pattern.
    #[arg(long, default_value_t = 60)]
    pub sim_seconds: u64,
    /// Heartbeat interval of each node to each peer, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub interval_ms: u64,
    /// Seeds of the default fuzz profile to time.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// Streams in the meta snapshot encode/decode figure (0 skips it); five consumers each.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_streams: usize,
    /// Meta log lengths for the start-up recovery figures, comma-separated (empty skips them).
    #[arg(long, default_value = "1000,10000,100000")]
    pub recovery_entries: String,
    /// Stream counts of the metadata-size rows (N R3 streams created at once on 3 servers,
    /// timed with incremental and with full checks), comma-separated (empty skips them).
    #[arg(long, default_value = "100,200")]
    pub scale_streams: String,
    /// Seeds of the `scale` fuzz profile to time (300-1,000 streams with two consumers each
    /// on 5 servers, under the default faults); 0 skips the row.
    #[arg(long, default_value_t = 3)]
    pub scale_seeds: u64,
    /// Also time issue 16's largest target: 1,000 R3 streams and 2,000 R3 consumers on 5
    /// servers for 60 s (takes some 10 s, so off unless asked).
    #[arg(long)]
    pub target_assets: bool,
}

const NODES: u32 = 5;
/// The links of our world and of the bare loop. madsim's default datagram latency is uniform
/// in 1..10 ms; match its mean.
const LINK: LinkProfile = LinkProfile { latency_min_us: 1_000, latency_mean_us: 4_500, loss_ppm: 0, duplicate_ppm: 0 };

struct Figures {
    delivered: u64,
    sim: Duration,
    wall: Duration,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.delivered as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn print(&self, name: &str) {
        let wall = self.wall.as_secs_f64().max(1e-9);
        println!(
            "{name:<22} {:>10} msgs  {:>8.3}s wall  {:>12.0} msgs/s  {:>8.0}x sim/wall",
            self.delivered,
            wall,
            self.delivered as f64 / wall,
            self.sim.as_secs_f64() / wall
        );
    }
}

fn ours(sim_seconds: u64, interval_ms: u64) -> Figures {
    let scenario = ScenarioOf::<PingSystem> {
        name: "bench".into(),
        sut: None,
        description: String::new(),
        seed: 1,
        servers: NODES,
        duration_ms: sim_seconds * 1_000,
        network: LINK,
        disk: Default::default(),
        clocks: vec![],
        crash_points: None,
        bugs: vec![],
        liveness: false,
        expect: None,
        expect_violation: None,
        system: PingConfig { interval_us: interval_ms * 1_000 },
        steps: vec![],
    };
    let started = Instant::now();
    let report = sim::run::<PingSystem>(&scenario, &RunOptions::default());
    Figures { delivered: report.messages_delivered, sim: Duration::from_nanos(report.sim_ns), wall: started.elapsed() }
}

fn raw_madsim(sim_seconds: u64, interval_ms: u64) -> Figures {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let started = Instant::now();
    std::thread::spawn(move || {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        let addr = |i: u32| -> SocketAddr { format!("10.0.0.{}:1", i + 1).parse().expect("valid address") };
        for i in 0..NODES {
            let counter = counter.clone();
            runtime
                .create_node()
                .ip(addr(i).ip())
                .init(move || {
                    let counter = counter.clone();
                    async move {
                        let ep = Arc::new(madsim::net::Endpoint::bind(addr(i)).await.expect("bind"));
                        let rx = ep.clone();
                        madsim::task::spawn(async move {
                            let mut buf = [0u8; 16];
                            while rx.recv_from(0, &mut buf).await.is_ok() {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                        let mut tick = 0u64;
                        loop {
                            madsim::time::sleep(Duration::from_millis(interval_ms)).await;
                            tick += 1;
                            for peer in (0..NODES).filter(|&p| p != i) {
                                let _ = ep.send_to(addr(peer), 0, &tick.to_le_bytes()).await;
                            }
                        }
                    }
                })
                .build();
        }
        runtime.block_on(async move { madsim::time::sleep(Duration::from_secs(sim_seconds)).await });
    })
    .join()
    .expect("raw madsim bench thread");
    Figures {
        delivered: received.load(Ordering::Relaxed),
        sim: Duration::from_secs(sim_seconds),
        wall: started.elapsed(),
    }
}

/// The pattern on a bare binary-heap event loop (`bench_bare`): the floor.
fn bare_loop(sim_seconds: u64, interval_ms: u64) -> Figures {
    let (delivered, wall) = super::bench_bare::heartbeats(NODES, sim_seconds, interval_ms, LINK);
    Figures { delivered, sim: Duration::from_secs(sim_seconds), wall }
}

/// Log lengths of `--recovery-entries`: comma-separated, each between 1 and 10,000,000; an
/// empty list skips the recovery figures.
fn recovery_lengths(text: &str) -> Result<Vec<usize>, CliError> {
    let bad = |m: String| flag_error("--recovery-entries", m);
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    text.split(',')
        .map(|item| {
            let n: usize = item.trim().parse().map_err(|e| bad(format!("`{item}`: {e}")))?;
            if n == 0 || n > 10_000_000 {
                return Err(bad(format!("each length must be between 1 and 10000000, got {n}")));
            }
            Ok(n)
        })
        .collect()
}

pub fn bench(args: BenchArgs) -> Result<ExitCode, CliError> {
    // Every flag is checked before the first figure, which takes a while.
    if args.sim_seconds == 0 || args.sim_seconds > 3_600 {
        return Err(flag_error("--sim-seconds", "must be between 1 and 3600"));
    }
    if args.interval_ms == 0 {
        return Err(flag_error("--interval-ms", "must be at least 1"));
    }
    let recovery_entries = recovery_lengths(&args.recovery_entries)?;
    let scale_streams = stream_counts(&args.scale_streams)?;
    println!(
        "5-node all-to-all heartbeats every {} ms for {} simulated seconds (one core, release build recommended)",
        args.interval_ms, args.sim_seconds
    );
    let world = ours(args.sim_seconds, args.interval_ms);
    world.print("metasim world");
    let madsim = raw_madsim(args.sim_seconds, args.interval_ms);
    madsim.print("raw madsim endpoints");
    let bare = bare_loop(args.sim_seconds, args.interval_ms);
    bare.print("bare heap + ChaCha8");
    println!(
        "engine ratios (delivered msgs/s, this run): metasim/madsim {:.2}x, metasim/bare {:.2}x",
        world.per_second() / madsim.per_second().max(1e-9),
        world.per_second() / bare.per_second().max(1e-9)
    );

    if args.snapshot_streams > 0 {
        super::bench_meta::snapshot(args.snapshot_streams, 5);
    }
    for n in recovery_entries {
        super::bench_meta::recovery(n);
    }
    if args.seeds > 0 {
        let profile = sim::swarm::profile("default").expect("built in");
        let started = Instant::now();
        let mut sim_ms = 0;
        let mut events = 0;
        for seed in 0..args.seeds {
            let r = run_seed::<metasim::sut::MetaSystem>(seed, profile, &RunOptions::default(), false);
            sim_ms += r.sim_ms;
            events += r.events;
        }
        let wall = started.elapsed().as_secs_f64().max(1e-9);
        println!(
            "default fuzz profile (meta): {} seeds in {wall:.2}s = {:.0} seeds/min, {:.0}x sim/wall, {:.0} events/s",
            args.seeds,
            args.seeds as f64 * 60.0 / wall,
            sim_ms as f64 / 1e3 / wall,
            events as f64 / wall
        );
        super::bench_checks::fuzz_rate(args.seeds);
    }
    super::bench_checks::metadata_size(&scale_streams);
    super::bench_checks::scale_profile(args.scale_seeds);
    if args.target_assets {
        super::bench_checks::target_assets();
    }
    Ok(ExitCode::SUCCESS)
}

/// `--scale-streams`: comma-separated stream counts, each 1..=5,000.
fn stream_counts(text: &str) -> Result<Vec<usize>, CliError> {
    let bad = |m: String| flag_error("--scale-streams", m);
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<usize>() {
            Ok(n) if (1..=5_000).contains(&n) => Ok(n),
            Ok(n) => Err(bad(format!("{n} streams: must be between 1 and 5000"))),
            Err(e) => Err(bad(format!("`{s}`: {e}"))),
        })
        .collect()
}
