//! The systems under test the CLI can drive, by name.
//!
//! `meta` is the JetStream-style meta layer: [`crate::server`]'s node, [`crate::harness`]'s
//! oracle and workload. `register` is the engine's replicated-register fixture, kept so
//! scenario files and seeds written for it still replay.

use sim::System;

use crate::harness::{MetaHarness, MetaWorkload};
use crate::server::Server;

/// The system used when a scenario file or a flag names none.
pub const DEFAULT_SYSTEM: &str = "meta";

pub const SYSTEMS: &[&str] = &["meta", "register"];

/// The meta system: servers running the meta group and their assets, held to the spec's
/// invariants.
pub struct MetaSystem;

impl System for MetaSystem {
    const NAME: &'static str = "meta";
    type Node = Server;
    type Harness = MetaHarness;
    type Workload = MetaWorkload;
}

/// Run `$body` with the type alias `$S` bound to the system named `$name`, or evaluate to
/// `Err(unknown)` for an unknown name.
#[macro_export]
macro_rules! with_system {
    ($name:expr, $S:ident => $body:expr, unknown => $unknown:expr) => {
        match $name {
            "meta" => {
                type $S = $crate::sut::MetaSystem;
                $body
            }
            "register" => {
                type $S = sim::fixture::register::RegisterSystem;
                $body
            }
            _ => $unknown,
        }
    };
}
