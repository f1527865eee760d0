//! Scenarios written as Rust tests, as turmoil users write theirs: a builder that mirrors the
//! scenario file format (servers, network, disk, clocks, `[system]`, steps at times: client
//! operations, faults and expectations), `run()` returning the verdict, the trace hash and the
//! failure, and `to_toml()` giving a file that `metasim run` runs with the same trace hash.
//!
//! The builder fills the struct a file parses into ([`sim::Scenario`]) and checks it with the
//! file's own checks, so a built scenario is refused where the same file would be.
//!
//! ```
//! use metasim::scenario::{meta, MetaExpect, MetaOp, RunVerdict, Verdict};
//!
//! let scenario = meta("partition, propose on the majority, heal")
//!     .servers(5)
//!     .duration_ms(60_000)
//!     .liveness(true)
//!     .expect(Verdict::Pass)
//!     .partition(0, &[&[0, 1], &[2, 3, 4]])
//!     .client(15_000, 3, MetaOp::Propose { count: 5 })
//!     .check(20_000, MetaExpect::Leaderless { node: 0, is: true })
//!     .heal_all(25_000)
//!     .check(45_000, MetaExpect::OneLeader {});
//! let outcome = scenario.run().expect("a valid scenario");
//! assert_eq!(outcome.verdict, RunVerdict::Pass, "{:?}", outcome.failure);
//! assert!(outcome.as_expected);
//!
//! // The same scenario as a file: loading it gives the same scenario, so the same hash.
//! let text = scenario.to_toml().unwrap();
//! let loaded = sim::scenario::parse_for::<metasim::sut::MetaSystem>("x.toml", &text).unwrap();
//! assert_eq!(&loaded.scenario, scenario.scenario());
//!
//! // Bad input is refused as a file's would be, naming the field.
//! let bad = meta("no such node").client(1_000, 7, MetaOp::Propose { count: 1 });
//! let error = bad.run().unwrap_err();
//! assert_eq!(error.field, "step[0].node");
//! assert!(error.message.contains("node 7 does not exist (servers = 3)"), "{error}");
//! ```

pub use crate::harness::expect::MetaExpect;
pub use crate::server::wire::MetaOp;
pub use crate::server::ServerConfig;
pub use sim::disk::Corruption;
pub use sim::net::LinkProfile;
pub use sim::scenario::{ClockSpec, CrashPoints, DiskProfile, Outcome, RunVerdict, ScenarioBuilder};
pub use sim::{Action, Verdict};

use crate::sut::MetaSystem;

/// A scenario of the meta system under construction.
pub type MetaScenario = ScenarioBuilder<MetaSystem>;

/// A meta-system scenario called `name`: 3 servers, 10 s, seed 0, no steps.
pub fn meta(name: impl Into<String>) -> MetaScenario {
    ScenarioBuilder::new(name)
}
