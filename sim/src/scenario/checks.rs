//! Generic checks of a scenario's values beyond their types: bounds that keep the arithmetic
//! on them from wrapping (times are scaled to nanoseconds), and shapes that would silently
//! mean nothing (a node linked to itself, a node in two partition groups).
//!
//! Each check returns the field it is about (relative to its table) and a message.

use super::{Action, ClockSpec, CrashPoints, DiskProfile, CLOCK_JUMP_MS_MAX, CRASH_POINT_RESTART_MS_MAX};
use super::{DURATION_MS_MAX, FSYNC_LATENCY_US_MAX, LATENCY_US_MAX, SLOW_DISK_MS_MAX};
use crate::clock::DRIFT_PPM_MAX;
use crate::net::{LinkProfile, NodeIndex};

pub(crate) type Refusal = (&'static str, String);

pub(crate) fn link(p: &LinkProfile) -> Result<(), Refusal> {
    if p.loss_ppm > 1_000_000 {
        return Err(("loss_ppm", format!("must be at most 1000000 (parts per million), got {}", p.loss_ppm)));
    }
    if p.duplicate_ppm > 1_000_000 {
        return Err(("duplicate_ppm", format!("must be at most 1000000 (parts per million), got {}", p.duplicate_ppm)));
    }
    if p.latency_min_us > LATENCY_US_MAX {
        return Err(("latency_min_us", format!("must be at most {LATENCY_US_MAX}, got {}", p.latency_min_us)));
    }
    if p.latency_mean_us > LATENCY_US_MAX {
        return Err(("latency_mean_us", format!("must be at most {LATENCY_US_MAX}, got {}", p.latency_mean_us)));
    }
    Ok(())
}

pub(crate) fn disk(d: &DiskProfile) -> Result<(), Refusal> {
    if d.fsync_latency_us > FSYNC_LATENCY_US_MAX {
        return Err((
            "fsync_latency_us",
            format!("must be at most {FSYNC_LATENCY_US_MAX} (10 s), got {}", d.fsync_latency_us),
        ));
    }
    Ok(())
}

pub(crate) fn crash_points(cp: &CrashPoints) -> Result<(), Refusal> {
    if cp.rate_ppm > 1_000_000 {
        return Err(("rate_ppm", format!("must be at most 1000000, got {}", cp.rate_ppm)));
    }
    if cp.restart_after_ms > CRASH_POINT_RESTART_MS_MAX {
        return Err((
            "restart_after_ms",
            format!("must be at most {CRASH_POINT_RESTART_MS_MAX}, got {}", cp.restart_after_ms),
        ));
    }
    if cp.until_ms > DURATION_MS_MAX {
        return Err(("until_ms", format!("must be at most {DURATION_MS_MAX} (the longest run), got {}", cp.until_ms)));
    }
    if cp.power_loss_percent > 100 {
        return Err(("power_loss_percent", format!("must be at most 100, got {}", cp.power_loss_percent)));
    }
    Ok(())
}

/// One `[[clock]]` entry; `earlier` are the entries before it.
pub(crate) fn clock(spec: &ClockSpec, earlier: &[ClockSpec], servers: u32) -> Result<(), Refusal> {
    if spec.node >= servers {
        return Err(("node", format!("node {} does not exist (servers = {servers})", spec.node)));
    }
    if earlier.iter().any(|c| c.node == spec.node) {
        return Err(("node", format!("node {} already has a [[clock]] entry", spec.node)));
    }
    // `unsigned_abs`: `i64::MIN.abs()` wraps to itself in a release build and passes a bound.
    if spec.drift_ppm.unsigned_abs() > DRIFT_PPM_MAX.unsigned_abs() {
        return Err(("drift_ppm", format!("must be within ±{DRIFT_PPM_MAX}, got {}", spec.drift_ppm)));
    }
    if spec.offset_ms.unsigned_abs() > CLOCK_JUMP_MS_MAX.unsigned_abs() {
        return Err(("offset_ms", format!("must be within ±{CLOCK_JUMP_MS_MAX}, got {}", spec.offset_ms)));
    }
    Ok(())
}

pub(crate) fn action<C, E>(action: &Action<C, E>) -> Result<(), Refusal> {
    match action {
        Action::SetNetwork { profile } => link(profile),
        Action::SetLink { from, to, profile } => distinct_ends(*from, *to).and_then(|()| link(profile)),
        Action::ClogLink { from, to } | Action::UnclogLink { from, to } => distinct_ends(*from, *to),
        Action::ClockJump { by_ms, .. } if by_ms.unsigned_abs() > CLOCK_JUMP_MS_MAX.unsigned_abs() => {
            Err(("by_ms", format!("must be within ±{CLOCK_JUMP_MS_MAX}, got {by_ms}")))
        }
        Action::ClockDrift { ppm, .. } if ppm.unsigned_abs() > DRIFT_PPM_MAX.unsigned_abs() => {
            Err(("ppm", format!("must be within ±{DRIFT_PPM_MAX}, got {ppm}")))
        }
        Action::SlowDisk { extra_ms, .. } if *extra_ms > SLOW_DISK_MS_MAX => {
            Err(("extra_ms", format!("must be at most {SLOW_DISK_MS_MAX}, got {extra_ms}")))
        }
        Action::Partition { groups } => partition_groups(groups),
        Action::PartitionOneWay { from, to } => one_way_sides(from, to),
        Action::Corrupt { kind, .. } | Action::LostFsync { kind, .. } | Action::NoSpace { kind, .. }
            if kind.is_empty() || kind.contains(['/', '\\']) || kind == "." || kind == ".." =>
        {
            Err(("kind", format!("a file kind is one path segment, got {kind:?}")))
        }
        _ => Ok(()),
    }
}

fn distinct_ends(from: NodeIndex, to: NodeIndex) -> Result<(), Refusal> {
    if from == to {
        return Err(("to", format!("a link from node {from} to itself")));
    }
    Ok(())
}

/// Groups of a partition: at least two, none empty, no node in two places.
fn partition_groups(groups: &[Vec<NodeIndex>]) -> Result<(), Refusal> {
    if groups.len() < 2 {
        return Err(("groups", "a partition needs at least two groups".to_string()));
    }
    if let Some(i) = groups.iter().position(Vec::is_empty) {
        return Err(("groups", format!("group {i} is empty")));
    }
    let all: Vec<NodeIndex> = groups.iter().flatten().copied().collect();
    if let Some(node) = first_repeated(&all) {
        return Err(("groups", format!("node {node} is listed more than once (groups must not overlap)")));
    }
    Ok(())
}

/// Sides of a one-way partition: neither empty, no node twice, no node on both sides (a link
/// from a node to itself).
fn one_way_sides(from: &[NodeIndex], to: &[NodeIndex]) -> Result<(), Refusal> {
    for (field, side) in [("from", from), ("to", to)] {
        if side.is_empty() {
            return Err((field, "is empty".to_string()));
        }
        if let Some(node) = first_repeated(side) {
            return Err((field, format!("node {node} is listed twice")));
        }
    }
    if let Some(node) = to.iter().find(|n| from.contains(n)) {
        return Err(("to", format!("node {node} is on both sides: a link from a node to itself")));
    }
    Ok(())
}

/// The first node that appears twice (lists are at most a cluster's size, so quadratic is fine).
pub fn first_repeated(nodes: &[NodeIndex]) -> Option<NodeIndex> {
    nodes.iter().enumerate().find(|(i, n)| nodes[..*i].contains(n)).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    type A = Action<(), ()>;

    #[test]
    fn extreme_negative_values_are_refused_not_wrapped() {
        for action in [A::ClockJump { node: 0, by_ms: i64::MIN }, A::ClockDrift { node: 0, ppm: i64::MIN }] {
            assert!(super::action(&action).is_err(), "{action:?}");
        }
        let spec = ClockSpec { node: 0, offset_ms: i64::MIN, drift_ppm: 0 };
        assert_eq!(clock(&spec, &[], 3).unwrap_err().0, "offset_ms");
        let spec = ClockSpec { node: 0, offset_ms: 0, drift_ppm: i64::MIN };
        assert_eq!(clock(&spec, &[], 3).unwrap_err().0, "drift_ppm");
    }

    #[test]
    fn partitions_need_disjoint_non_empty_groups() {
        let bad = [vec![vec![0], vec![]], vec![vec![0, 1], vec![1, 2]], vec![vec![0, 0], vec![1]]];
        for groups in bad {
            assert!(super::action(&A::Partition { groups: groups.clone() }).is_err(), "{groups:?}");
        }
        assert!(super::action(&A::Partition { groups: vec![vec![0], vec![1, 2]] }).is_ok());
        assert!(super::action(&A::PartitionOneWay { from: vec![0, 1], to: vec![1] }).is_err());
        assert!(super::action(&A::PartitionOneWay { from: vec![], to: vec![1] }).is_err());
        assert!(super::action(&A::ClogLink { from: 2, to: 2 }).is_err());
        assert!(super::action(&A::ClogLink { from: 2, to: 1 }).is_ok());
    }

    #[test]
    fn crash_points_out_of_range_are_refused_by_field() {
        let ok = CrashPoints { rate_ppm: 1_000_000, restart_after_ms: 5, until_ms: 1_000, power_loss_percent: 100 };
        assert!(crash_points(&ok).is_ok());
        let refused = |cp: CrashPoints| crash_points(&cp).unwrap_err().0;
        assert_eq!(refused(CrashPoints { rate_ppm: 1_000_001, ..ok }), "rate_ppm");
        assert_eq!(refused(CrashPoints { restart_after_ms: CRASH_POINT_RESTART_MS_MAX + 1, ..ok }), "restart_after_ms");
        assert_eq!(refused(CrashPoints { power_loss_percent: 101, ..ok }), "power_loss_percent");
    }

    #[test]
    fn file_kinds_are_one_plain_segment() {
        for kind in ["", ".", "..", "a/b", "a\\b"] {
            let corrupt = A::LostFsync { node: 0, kind: kind.into(), on: true };
            assert!(super::action(&corrupt).is_err(), "{kind:?}");
        }
    }
}
