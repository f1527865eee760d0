//! Revisions: the stamp a structure takes on every change, so that a reader who remembers one
//! can tell "unchanged since I last looked" with one comparison (the oracle re-checks only what
//! changed, issue 16).
//!
//! Stamps are unique in the process, not counted per instance: a structure built anew (after a
//! restart, or a state replaced by a snapshot) never repeats a stamp its predecessor had. Only
//! equality is ever asked of a stamp, so its value, which depends on what other threads did
//! first, never reaches a decision or a trace.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revision(u64);

impl Revision {
    /// A stamp no structure has had before.
    pub fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Revision(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for Revision {
    fn default() -> Self {
        Revision::fresh()
    }
}

#[cfg(test)]
mod tests {
    use super::Revision;

    #[test]
    fn every_stamp_is_new() {
        let (a, b) = (Revision::fresh(), Revision::fresh());
        assert_ne!(a, b);
        assert_eq!(a, a.clone());
    }
}
