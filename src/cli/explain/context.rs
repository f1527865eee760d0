//! The failure context: the events of what a violation names (its node, and the groups,
//! streams and consumers its message quotes), not only the last events of the whole cluster.

use sim::trace::{TraceEvent, WORLD};
use sim::Violation;

/// Events a failure report shows about its subjects.
pub const CONTEXT_EVENTS: usize = 20;

/// Routine events that say little on their own (timers, fsync completions, heartbeats).
fn routine(e: &TraceEvent) -> bool {
    matches!(e.kind.as_str(), "timer" | "fsync-done" | "drop")
        || (e.kind == "recv" && (e.detail.contains(": statsz") || e.detail.contains(" heartbeat t")))
}

/// What the violation names: its node (`n2`), the nodes and the asset and group names its
/// message quotes (`A:S3`, `S-R3-eb93`, `C-R1-0a1b`), and the meta group when it says "meta".
pub fn subjects(v: &Violation) -> (Vec<u32>, Vec<String>) {
    let mut nodes: Vec<u32> = v.node.into_iter().collect();
    let mut names = Vec::new();
    let separators = |c: char| c.is_whitespace() || "(),;\"'[]{}<>=".contains(c);
    for raw in v.message.split(separators) {
        let word = raw.trim_end_matches(['.', ':']);
        if let Some(n) = word.strip_prefix('n').and_then(|d| d.parse::<u32>().ok()) {
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        } else if is_asset_name(word) && !names.iter().any(|n| n == word) {
            names.push(word.to_string());
        }
    }
    if v.invariant.contains("meta") || v.message.contains("meta") {
        names.push("meta#".to_string());
    }
    (nodes, names)
}

/// `A:S3` (account:stream, account:stream:consumer) or a group name `S-R3-eb93`.
fn is_asset_name(word: &str) -> bool {
    let group = (word.starts_with("S-R") || word.starts_with("C-R")) && word.len() > 5;
    let key = word.len() >= 3
        && word.contains(':')
        && !word.starts_with(':')
        && !word.ends_with(':')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-:.".contains(c));
    group || key
}

/// The last `CONTEXT_EVENTS` events before the violation that are about its subjects: on its
/// nodes (routine ones left out), or naming one of its assets or groups in their detail. World
/// events (faults, client steps) that name one of the nodes count too.
pub fn select(v: &Violation, trace: &[TraceEvent]) -> Vec<TraceEvent> {
    let (nodes, names) = subjects(v);
    let about = |e: &TraceEvent| {
        if names.iter().any(|n| e.detail.contains(n.as_str())) {
            return true;
        }
        if e.node == WORLD {
            return node_names(&e.detail).any(|n| nodes.contains(&n));
        }
        nodes.contains(&e.node) && !routine(e)
    };
    let mut picked: Vec<TraceEvent> =
        trace.iter().rev().filter(|e| e.kind != "violation" && about(e)).take(CONTEXT_EVENTS).cloned().collect();
    picked.reverse();
    picked
}

/// The servers a detail names as `n2` (`crash n2`, `client at n4: ...`), in order.
pub fn node_names(detail: &str) -> impl Iterator<Item = u32> + '_ {
    detail
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|word| word.strip_prefix('n').and_then(|d| d.parse().ok()))
}

/// The heading of the context: what it is about.
pub fn heading(v: &Violation) -> String {
    let (nodes, names) = subjects(v);
    let mut parts: Vec<String> = nodes.iter().map(|n| format!("n{n}")).collect();
    parts.extend(names.iter().map(|n| n.trim_end_matches('#').to_string()));
    if parts.is_empty() {
        "the cluster".to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, node: u32, kind: &str, detail: &str) -> TraceEvent {
        TraceEvent { index, sim_ns: index, node, kind: kind.into(), digest: 0, detail: detail.into() }
    }

    #[test]
    fn context_keeps_the_named_node_and_assets_and_leaves_routine_events_out() {
        let v = Violation {
            invariant: "meta-idempotent-create".into(),
            node: Some(2),
            sim_ns: 9,
            message: "stream A:S3 is in two groups S-R3-aa and S-R3-bb".into(),
            recent: vec![],
        };
        let trace = vec![
            ev(0, 1, "apply", "meta#4 t1 AssignStream A:S3 -> S-R3-aa [0,1,2]"),
            ev(1, 2, "timer", "token 1"),
            ev(2, 3, "recv", "from n1: statsz jetstream, 0 streams"),
            ev(3, 2, "meta-leader", "leads t2"),
            ev(4, 4, "group-started", "S-R3-bb"),
            ev(5, WORLD, "crash", "crash n2"),
            ev(6, WORLD, "crash", "crash n3"),
            ev(7, 2, "recv", "from n1: meta heartbeat t1 after 3@t1 commit 3"),
            ev(8, 2, "recv", "from n1: meta Append t1 after 3@t1 commit 3: #4 t1 LeaderNoop"),
        ];
        let picked: Vec<u64> = select(&v, &trace).iter().map(|e| e.index).collect();
        assert_eq!(picked, vec![0, 3, 4, 5, 8], "a heartbeat is routine, an append is not");
        assert_eq!(heading(&v), "n2, A:S3, S-R3-aa, S-R3-bb, meta");
    }
}
