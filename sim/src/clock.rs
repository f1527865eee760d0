//! Per-node clocks: the shared simulated time seen through a drift and an offset.
//!
//! Each node has a monotonic clock (it drifts, never jumps) and a wall clock (a fixed epoch plus
//! the monotonic reading plus an offset that clock jumps move). A drift change re-anchors the
//! monotonic clock, so it stays continuous and never runs backwards.

/// Where every wall clock starts: 2026-01-01T00:00:00Z, as Unix time. A real server's wall clock
/// reads like this, never near zero; one that started at zero would pile every stamp taken after
/// a large backward jump onto the same 0, and code that tells incarnations apart by their stamps
/// (NATS's created times) would see two as one.
pub const WALL_EPOCH_NS: u64 = 1_767_225_600 * 1_000_000_000;

/// Drift is bounded so the local clock always moves forward.
pub const DRIFT_PPM_MAX: i64 = 500_000;

/// How one node's clocks differ from simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    /// Added to the monotonic reading to give the wall clock (a clock jump moves it).
    pub offset_ns: i64,
    /// Parts per million by which this clock runs fast (positive) or slow (negative).
    drift_ppm: i64,
    /// Simulated time and monotonic reading at the last drift change.
    anchor_sim_ns: u64,
    anchor_monotonic_ns: u64,
}

impl NodeClock {
    pub fn new(offset_ns: i64, drift_ppm: i64) -> Self {
        assert!(drift_ppm.abs() <= DRIFT_PPM_MAX, "drift {drift_ppm} ppm");
        NodeClock { offset_ns, drift_ppm, anchor_sim_ns: 0, anchor_monotonic_ns: 0 }
    }

    pub fn drift_ppm(&self) -> i64 {
        self.drift_ppm
    }

    /// Change the drift from `sim_ns` on, keeping the monotonic clock continuous.
    pub fn set_drift(&mut self, sim_ns: u64, drift_ppm: i64) {
        assert!(drift_ppm.abs() <= DRIFT_PPM_MAX, "drift {drift_ppm} ppm");
        self.anchor_monotonic_ns = self.monotonic_ns(sim_ns);
        self.anchor_sim_ns = sim_ns;
        self.drift_ppm = drift_ppm;
    }

    /// The monotonic clock at simulated time `sim_ns` (not before the last drift change).
    pub fn monotonic_ns(&self, sim_ns: u64) -> u64 {
        let elapsed = sim_ns.saturating_sub(self.anchor_sim_ns);
        // Read twice for every input of every node: the drift term is worked out in 64 bits
        // whenever they hold it (a 128-bit division was most of a reading's cost), and is
        // zero without drift. Both give what the 128-bit formula gives.
        let drift_ns = match i64::try_from(elapsed).ok().and_then(|e| e.checked_mul(self.drift_ppm)) {
            Some(product) => i128::from(product / 1_000_000),
            None => elapsed as i128 * self.drift_ppm as i128 / 1_000_000,
        };
        (self.anchor_monotonic_ns as i128 + elapsed as i128 + drift_ns) as u64
    }

    /// The wall clock at simulated time `sim_ns`: Unix time in ns. Never negative, even for an
    /// offset a scenario sets beyond the epoch.
    pub fn local_ns(&self, sim_ns: u64) -> u64 {
        (WALL_EPOCH_NS as i128 + self.monotonic_ns(sim_ns) as i128 + self.offset_ns as i128).max(0) as u64
    }

    /// How much simulated time passes while this clock advances by `local_ns`.
    pub fn sim_duration_ns(&self, local_ns: u64) -> u64 {
        (local_ns as u128 * 1_000_000 / (1_000_000 + self.drift_ppm) as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_64_bit_reading_is_the_128_bit_formula() {
        let formula = |c: &NodeClock, sim_ns: u64| {
            let elapsed = sim_ns.saturating_sub(c.anchor_sim_ns) as i128;
            (c.anchor_monotonic_ns as i128 + elapsed + elapsed * c.drift_ppm as i128 / 1_000_000) as u64
        };
        for drift in [-DRIFT_PPM_MAX, -333_333, -1, 0, 1, 250_001, DRIFT_PPM_MAX] {
            for sim_ns in [0, 1, 999_999, 1_000_001, 3_600_000_000_123, u64::MAX / 3, i64::MAX as u64 + 7, u64::MAX] {
                let mut c = NodeClock::new(0, drift);
                assert_eq!(c.monotonic_ns(sim_ns), formula(&c, sim_ns), "drift {drift}, at {sim_ns}");
                c.set_drift(17, -drift / 3);
                assert_eq!(c.monotonic_ns(sim_ns), formula(&c, sim_ns), "re-anchored, drift {drift}, at {sim_ns}");
            }
        }
    }

    #[test]
    fn offset_and_drift_change_readings() {
        let c = NodeClock::new(5_000, 100_000);
        assert_eq!(c.local_ns(1_000_000), WALL_EPOCH_NS + 1_105_000);
        assert_eq!(c.monotonic_ns(1_000_000), 1_100_000);
        assert_eq!(c.sim_duration_ns(1_100_000), 1_000_000);
        assert_eq!(NodeClock::default().local_ns(42), WALL_EPOCH_NS + 42);
    }

    #[test]
    fn a_backward_jump_early_in_a_run_keeps_stamps_apart() {
        // 30 s back at 1 s and at 2 s: two distinct readings, not two zeros.
        let back = NodeClock::new(-30_000_000_000, 0);
        assert_ne!(back.local_ns(1_000_000_000), back.local_ns(2_000_000_000));
        assert_eq!(back.local_ns(1_000_000_000), WALL_EPOCH_NS - 29_000_000_000);
        // Only an offset past the epoch itself reaches the clamp.
        assert_eq!(NodeClock::new(-(WALL_EPOCH_NS as i64) - 10, 0).local_ns(3), 0);
    }

    #[test]
    fn drift_changes_keep_the_monotonic_clock_continuous() {
        let mut c = NodeClock::new(0, 5_000);
        let before = c.monotonic_ns(30_000_000_000);
        c.set_drift(30_000_000_000, -5_000);
        assert_eq!(c.monotonic_ns(30_000_000_000), before, "no jump at the change");
        assert!(c.monotonic_ns(30_000_000_001) >= before, "never backwards");
        assert_eq!(c.monotonic_ns(31_000_000_000) - before, 995_000_000);
    }
}
