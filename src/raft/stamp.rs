//! A change stamp: lets a reader that remembered what it read of a node skip reading it again
//! when nothing it could have read changed (the checks' memo re-marks thousands of groups after
//! every tick, and most of them did nothing).

use std::sync::atomic::{AtomicU64, Ordering};

/// Taken anew on every change it covers. Only equality means anything: values come from a
/// process-wide counter (so a stamp is never reused, even by another node), differ between
/// runs, and must never reach a trace, a hash or an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp(u64);

impl Stamp {
    /// A stamp nothing has had before.
    pub(super) fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Stamp(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}
