//! The system under test that the CLI drives.
//!
//! Until the meta Raft group lands, this is the engine's replicated-register fixture: it
//! writes, fsyncs, recovers with checksums and replicates, so every fault and check path of
//! the CLI is exercised end to end.

pub type Sut = sim::fixture::register::Register;
