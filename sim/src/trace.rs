//! The canonical trace: one record per thing that happened (simulated time, node, event kind,
//! payload digest), folded into a running FNV-1a hash. Two runs are the same run exactly when
//! their traces are equal; the divergence finder reports where they first differ.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::Fnv64;

/// Stands for "the world" (steps, faults) in the node column.
pub const WORLD: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub index: u64,
    pub sim_ns: u64,
    pub node: u32,
    pub kind: String,
    pub digest: u64,
    /// Human-readable detail; not part of the hash, kept only when asked for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = if self.node == WORLD { "world".to_string() } else { format!("n{}", self.node) };
        write!(
            f,
            "#{:<7} {:>12.6}s {:<5} {:<14} {:016x}",
            self.index,
            self.sim_ns as f64 / 1e9,
            node,
            self.kind,
            self.digest
        )?;
        if !self.detail.is_empty() {
            write!(f, "  {}", self.detail)?;
        }
        Ok(())
    }
}

/// How many recent events a failure report shows.
pub const RECENT_EVENTS: usize = 20;

/// The running trace of one run.
#[derive(Debug, Default)]
pub struct Trace {
    hash: Fnv64,
    count: u64,
    /// Every event, when the run keeps the full trace (determinism checks, `--trace-out`).
    full: Option<Vec<TraceEvent>>,
    /// The last few events, always, for failure reports: event `i` sits at `i % RECENT_EVENTS`.
    /// They stay plain copies until a report asks, as building a [`TraceEvent`] per event was a
    /// good part of what recording cost.
    recent: [Recorded; RECENT_EVENTS],
    /// Their details, at the same places, when the trace keeps details.
    recent_details: Vec<String>,
    keep_detail: bool,
    /// Print each event as it happens (`--log`).
    pub log: bool,
}

/// A recent event as recorded.
#[derive(Clone, Copy, Debug, Default)]
struct Recorded {
    sim_ns: u64,
    digest: u64,
    kind: &'static str,
    node: u32,
}

impl Trace {
    pub fn new(keep_full: bool, keep_detail: bool, log: bool) -> Self {
        let keep_detail = keep_detail || log;
        Trace {
            full: keep_full.then(Vec::new),
            recent_details: if keep_detail { vec![String::new(); RECENT_EVENTS] } else { Vec::new() },
            keep_detail,
            log,
            ..Default::default()
        }
    }

    /// Whether callers should bother formatting a detail string.
    pub fn wants_detail(&self) -> bool {
        self.keep_detail
    }

    pub fn record(&mut self, sim_ns: u64, node: u32, kind: &'static str, digest: u64, detail: impl FnOnce() -> String) {
        self.hash.write_u64(sim_ns);
        self.hash.write_u64(u64::from(node));
        self.hash.write(kind.as_bytes());
        self.hash.write_u64(digest);
        let at = (self.count % RECENT_EVENTS as u64) as usize;
        self.recent[at] = Recorded { sim_ns, digest, kind, node };
        if self.keep_detail {
            self.recent_details[at] = detail();
        }
        self.count += 1;
        if self.log || self.full.is_some() {
            let event = self.event(self.count - 1);
            if self.log {
                eprintln!("{event}");
            }
            if let Some(full) = &mut self.full {
                full.push(event);
            }
        }
    }

    /// Recent event `index` (one of the last [`RECENT_EVENTS`]) as a [`TraceEvent`].
    fn event(&self, index: u64) -> TraceEvent {
        assert!(index < self.count && index + RECENT_EVENTS as u64 >= self.count, "event {index} is not recent");
        let at = (index % RECENT_EVENTS as u64) as usize;
        let Recorded { sim_ns, digest, kind, node } = self.recent[at];
        let detail = self.recent_details.get(at).cloned().unwrap_or_default();
        TraceEvent { index, sim_ns, node, kind: kind.to_string(), digest, detail }
    }

    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn recent(&self) -> Vec<TraceEvent> {
        (self.count.saturating_sub(RECENT_EVENTS as u64)..self.count).map(|i| self.event(i)).collect()
    }

    pub fn take_full(&mut self) -> Option<Vec<TraceEvent>> {
        self.full.take()
    }
}

/// A debug form made readable: every byte array (`[123, 34, 110, ...]`) that holds UTF-8 text
/// without control characters is shown as that text, quoted (`"{\"n..."`), so configs carried
/// as bytes read as JSON. Other arrays stay as they are.
pub fn readable(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        match tail.find(']').and_then(|close| text_of_bytes(&tail[1..close]).map(|t| (close, t))) {
            Some((close, Ok(text))) => {
                out.push_str(&format!("{text:?}"));
                rest = &tail[close + 1..];
            }
            Some((close, Err(len))) => {
                out.push_str(&format!("<{len} bytes>"));
                rest = &tail[close + 1..];
            }
            None => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Longer byte arrays than this that are not text show as their length.
const BYTES_SHOWN_MAX: usize = 16;

/// `123, 34, 110` as text, when it is at least two bytes of printable UTF-8; `Err(length)` for
/// a long array of other bytes; `None` when the list is not bytes or is short.
fn text_of_bytes(list: &str) -> Option<Result<String, usize>> {
    let bytes: Vec<u8> = list.split(',').map(|b| b.trim().parse::<u8>().ok()).collect::<Option<_>>()?;
    let len = bytes.len();
    match String::from_utf8(bytes) {
        Ok(text) if text.len() >= 2 && !text.chars().any(char::is_control) => Some(Ok(text)),
        _ if len > BYTES_SHOWN_MAX => Some(Err(len)),
        _ => None,
    }
}

/// Where two traces first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the first differing event.
    pub index: usize,
    /// Events before it (equal in both), oldest first.
    pub context: Vec<TraceEvent>,
    pub left: Option<TraceEvent>,
    pub right: Option<TraceEvent>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "runs diverge at event #{}", self.index)?;
        writeln!(f, "events before it (identical in both runs):")?;
        for e in &self.context {
            writeln!(f, "  {e}")?;
        }
        let show = |e: &Option<TraceEvent>| e.as_ref().map_or("<trace ended>".to_string(), |e| e.to_string());
        writeln!(f, "first run:  {}", show(&self.left))?;
        write!(f, "second run: {}", show(&self.right))
    }
}

/// The first difference between two traces, ignoring the human detail column, with up to
/// `context` events before it. `None` when they are identical.
pub fn first_divergence(a: &[TraceEvent], b: &[TraceEvent], context: usize) -> Option<Divergence> {
    let same =
        |x: &TraceEvent, y: &TraceEvent| (x.sim_ns, x.node, &x.kind, x.digest) == (y.sim_ns, y.node, &y.kind, y.digest);
    let index = a
        .iter()
        .zip(b)
        .position(|(x, y)| !same(x, y))
        .or_else(|| (a.len() != b.len()).then_some(a.len().min(b.len())))?;
    Some(Divergence {
        index,
        context: a[index.saturating_sub(context)..index].to_vec(),
        left: a.get(index).cloned(),
        right: b.get(index).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u64, kind: &str, digest: u64) -> TraceEvent {
        TraceEvent { index: i, sim_ns: i * 10, node: 0, kind: kind.into(), digest, detail: String::new() }
    }

    #[test]
    fn divergence_points_at_the_first_difference() {
        let a = vec![ev(0, "a", 1), ev(1, "b", 2), ev(2, "c", 3)];
        let mut b = a.clone();
        b[2].digest = 9;
        let d = first_divergence(&a, &b, 5).unwrap();
        assert_eq!(d.index, 2);
        assert_eq!(d.context.len(), 2);
        assert_eq!(d.right.unwrap().digest, 9);
        assert!(first_divergence(&a, &a, 5).is_none());
        let d = first_divergence(&a, &a[..1], 5).unwrap();
        assert_eq!((d.index, d.right), (1, None));
    }

    #[test]
    fn byte_arrays_of_text_read_as_text() {
        assert_eq!(
            readable("C { config_json: [123, 34, 110, 34, 125], n: [1, 2], e: [] }"),
            "C { config_json: \"{\\\"n\\\"}\", n: [1, 2], e: [] }"
        );
        assert_eq!(readable("[0, 255]"), "[0, 255]");
        assert_eq!(readable("x [ ]"), "x [ ]");
        let long = format!("Normal([{}])", vec!["1"; 20].join(", "));
        assert_eq!(readable(&long), "Normal(<20 bytes>)");
    }

    #[test]
    fn recent_holds_the_last_events_in_order_with_their_details() {
        const KINDS: [&str; 3] = ["recv", "timer", "client"];
        let mut t = Trace::new(false, true, false);
        assert!(t.recent().is_empty());
        for i in 0..3u64 {
            t.record(i * 10, i as u32, KINDS[i as usize], i, || format!("event {i}"));
        }
        assert_eq!(t.recent().iter().map(|e| e.index).collect::<Vec<_>>(), vec![0, 1, 2]);
        let total = RECENT_EVENTS as u64 + 7;
        for i in 3..total {
            t.record(i * 10, i as u32, KINDS[(i % 3) as usize], i, || format!("event {i}"));
        }
        let recent = t.recent();
        assert_eq!(recent.len(), RECENT_EVENTS);
        for (e, i) in recent.iter().zip(total - RECENT_EVENTS as u64..) {
            let want = TraceEvent {
                index: i,
                sim_ns: i * 10,
                node: i as u32,
                kind: KINDS[(i % 3) as usize].to_string(),
                digest: i,
                detail: format!("event {i}"),
            };
            assert_eq!(e, &want);
        }
        let mut full = Trace::new(true, false, false);
        for i in 0..total {
            full.record(i, 0, "recv", i, || unreachable!("details are not kept"));
        }
        let kept = full.recent();
        assert_eq!(full.take_full().unwrap()[total as usize - RECENT_EVENTS..], kept[..]);
    }

    #[test]
    fn hash_depends_on_every_column() {
        let base = {
            let mut t = Trace::new(false, false, false);
            t.record(1, 0, "k", 5, String::new);
            t.hash()
        };
        for (ns, node, kind, dg) in [(2, 0, "k", 5), (1, 1, "k", 5), (1, 0, "j", 5), (1, 0, "k", 6)] {
            let mut t = Trace::new(false, false, false);
            t.record(ns, node, kind, dg, String::new);
            assert_ne!(t.hash(), base);
        }
    }
}
