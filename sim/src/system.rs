//! A system under test, as the engine and the CLI see it: a [`Node`] that runs on every
//! server, a [`Harness`] that holds it to its invariants, and a [`Workload`] that fuzz runs
//! draw from. The three meet only through the node's types.

use crate::harness::Harness;
use crate::node::{ClientOpOf, ConfigOf, Node};
use crate::scenario::Scenario;
use crate::workload::Workload;

pub trait System: 'static {
    /// The system's name, as the CLI and scenario files (`sut = ...`) name it.
    const NAME: &'static str;
    type Node: Node;
    type Harness: Harness<Node = Self::Node>;
    type Workload: Workload<Node = Self::Node>;
}

/// The expectation type of a system's scenarios.
pub type ExpectOf<S> = <<S as System>::Harness as Harness>::Expect;

/// The scenario type of a system.
pub type ScenarioOf<S> = Scenario<ClientOpOf<<S as System>::Node>, ExpectOf<S>, ConfigOf<<S as System>::Node>>;
