//! The systems under test the CLI can drive, by name.
//!
//! `meta` is the meta Raft group of [`crate::server`], the default. `register` is the engine's
//! replicated-register fixture, kept so scenario files and seeds written for it still replay.

/// The system used when a scenario file or a flag names none.
pub const DEFAULT_SYSTEM: &str = "meta";

pub const SYSTEMS: &[&str] = &["meta", "register"];

/// Run `$body` with the type alias `$S` bound to the system named `$name`, or evaluate to
/// `Err(unknown)` for an unknown name.
#[macro_export]
macro_rules! with_system {
    ($name:expr, $S:ident => $body:expr, unknown => $unknown:expr) => {
        match $name {
            "meta" => {
                type $S = $crate::server::Server;
                $body
            }
            "register" => {
                type $S = sim::fixture::register::Register;
                $body
            }
            _ => $unknown,
        }
    };
}
