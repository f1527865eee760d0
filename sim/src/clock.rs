//! Per-node clocks: the shared simulated time seen through an offset and a drift.

/// How one node's clock differs from simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    /// Added to every reading (a clock jump moves it).
    pub offset_ns: i64,
    /// Parts per million by which this clock runs fast (positive) or slow (negative).
    pub drift_ppm: i64,
}

/// Drift is bounded so the local clock always moves forward.
pub const DRIFT_PPM_MAX: i64 = 500_000;

impl NodeClock {
    /// The node's reading at simulated time `sim_ns`. Never negative.
    pub fn local_ns(&self, sim_ns: u64) -> u64 {
        debug_assert!(self.drift_ppm.abs() <= DRIFT_PPM_MAX);
        let drifted = sim_ns as i128 + sim_ns as i128 * self.drift_ppm as i128 / 1_000_000;
        (drifted + self.offset_ns as i128).max(0) as u64
    }

    /// The node's monotonic clock: drift applies, offsets and jumps do not (as with a
    /// monotonic OS clock next to a wall clock that an operator or NTP can step).
    pub fn monotonic_ns(&self, sim_ns: u64) -> u64 {
        (sim_ns as i128 + sim_ns as i128 * self.drift_ppm as i128 / 1_000_000).max(0) as u64
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
    fn offset_and_drift_change_readings() {
        let c = NodeClock {
            offset_ns: 5_000,
            drift_ppm: 100_000,
        };
        assert_eq!(c.local_ns(1_000_000), 1_105_000);
        assert_eq!(c.sim_duration_ns(1_100_000), 1_000_000);
        assert_eq!(NodeClock::default().local_ns(42), 42);
        let behind = NodeClock {
            offset_ns: -10,
            drift_ppm: 0,
        };
        assert_eq!(behind.local_ns(3), 0);
    }
}
