//! `metasim timeline`: one self-contained HTML page of a run (inline SVG, inline script, no
//! network fetches). One lane per server: up, down or paused; meta leadership with its term;
//! faults that name it (partitions, clogs, disk and clock faults); client requests, answers
//! and timeouts; snapshots, recovery and orphan actions; asset group leadership on demand. A
//! world lane above holds the steps that name no single server. The failure is a red line
//! marked with its invariant. Zoom with the wheel, pan by dragging, details on hover.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use metasim::with_system;
use sim::trace::{TraceEvent, WORLD};
use sim::{RunOptions, RunReport, System};

use super::Target;
use crate::cli::run::{unknown_system, write_file};
use crate::cli::CliError;

#[derive(Args, Debug)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub target: Target,
    /// Where to write the page.
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "run.html")]
    pub output: PathBuf,
}

pub fn timeline(args: TimelineArgs) -> Result<ExitCode, CliError> {
    let system = args.target.system()?;
    with_system!(system.as_str(), S => timeline_for::<S>(&args), unknown => Err(unknown_system(&system)))
}

fn timeline_for<S: System>(args: &TimelineArgs) -> Result<ExitCode, CliError> {
    let scenario = args.target.load::<S>()?;
    let options = RunOptions { keep_trace: true, keep_detail: true, ..Default::default() };
    let report = sim::run::<S>(&scenario, &options);
    let html = render(&scenario.name, scenario.servers, scenario.duration_ms, &report);
    write_file(&args.output, html.as_bytes())?;
    println!("wrote {} ({} servers, {} events)", args.output.display(), scenario.servers, report.events);
    if let Some(v) = &report.violation {
        println!("failure: {}", crate::cli::output::describe_violation(v));
    }
    Ok(ExitCode::SUCCESS)
}

/// Page geometry, in pixels.
const LEFT: f64 = 70.0;
const WIDTH: f64 = 1400.0;
const LANE: f64 = 56.0;
const TOP: f64 = 30.0;

/// What a server lane shows at a time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Up,
    Down,
    Paused,
}

impl Status {
    fn class(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Down => "down",
            Status::Paused => "paused",
        }
    }
}

/// A horizontal bar on a lane: `[from, to)` in ms, a CSS class, a hover text.
struct Bar {
    lane: usize,
    row: f64,
    from: f64,
    to: f64,
    class: &'static str,
    title: String,
}

/// A tick on a lane at one time.
struct Tick {
    lane: usize,
    at: f64,
    class: &'static str,
    title: String,
}

/// The node a world event names first (`crash n2`, `crash point on n2`, `clog-link n1 -> n2`).
fn named_node(detail: &str) -> Option<u32> {
    super::context::node_names(detail).next()
}

/// The servers a network step cuts off from the majority side: every group but the largest
/// of a partition, the sending side of a one-way partition, an isolated node; none for a heal.
fn cut_off(kind: &str, detail: &str, servers: u32) -> Vec<u32> {
    // `partition [2,3,4] | [0,1]`, `partition-one-way [3] -> [4]`: node lists in brackets.
    let lists: Vec<Vec<u32>> = detail
        .split('[')
        .skip(1)
        .filter_map(|rest| rest.split(']').next())
        .map(|list| list.split(',').filter_map(|n| n.trim().parse().ok()).filter(|&n| n < servers).collect())
        .collect();
    match kind {
        "isolate" => named_node(detail).into_iter().collect(),
        "partition-one-way" => lists.into_iter().next().unwrap_or_default(),
        "partition" => {
            let mut groups = lists;
            groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
            groups.into_iter().skip(1).flatten().collect()
        }
        _ => Vec::new(),
    }
}

fn ms(e: &TraceEvent) -> f64 {
    e.sim_ns as f64 / 1e6
}

/// Categories of node events shown as ticks (kind -> class).
fn tick_class(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "client" | "request" | "info-request" | "publish" => "req",
        "answer" => "answer",
        "request-timeout" => "timeout",
        "snapshot-taken" | "snapshot-applied" => "snap",
        "meta-recovered" | "assets-restored" => "recovery",
        "orphan-removed" | "orphan-check-skipped" => "orphan",
        "apply" => "apply",
        "corrupted" | "torn-write" | "fsync-lost" | "write-error" | "crash-point" | "refused" | "meta-refused" => {
            "fault"
        }
        "signal" => "asset",
        _ => return None,
    })
}

/// World steps that are faults or heals (drawn on the lane they name, or the world lane).
fn is_world_step(kind: &str) -> bool {
    !matches!(kind, "end" | "liveness-ok" | "client" | "expect" | "violation" | "excused")
}

pub fn render(name: &str, servers: u32, duration_ms: u64, report: &RunReport) -> String {
    let trace = report.trace.as_deref().unwrap_or_default();
    let end = (report.sim_ns as f64 / 1e6).min(duration_ms as f64).max(1.0);
    let lanes = servers as usize + 1; // lane 0: the world
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    let mut status: Vec<(Status, f64)> = vec![(Status::Down, 0.0); servers as usize];
    let mut leader: Vec<Option<(u64, f64)>> = vec![None; servers as usize];
    let close_status = |bars: &mut Vec<Bar>, n: usize, (s, from): (Status, f64), to: f64| {
        if to > from {
            let title = format!("n{n} {} {from:.1}-{to:.1} ms", s.class());
            bars.push(Bar { lane: n + 1, row: 38.0, from, to, class: s.class(), title });
        }
    };
    let close_leader = |bars: &mut Vec<Bar>, n: usize, led: Option<(u64, f64)>, to: f64| {
        if let Some((term, from)) = led {
            let title = format!("n{n} meta leader, term {term}, {from:.1}-{to:.1} ms");
            bars.push(Bar { lane: n + 1, row: 28.0, from, to: to.max(from + 0.5), class: "leader", title });
        }
    };
    // Conditions from faults until they end: partitioned, clogged, a disk fault.
    let mut cut: Vec<Option<(f64, String)>> = vec![None; servers as usize];
    let mut clogged: Vec<Option<(f64, String)>> = vec![None; servers as usize];
    let mut disk: Vec<Option<(f64, String)>> = vec![None; servers as usize];
    let close = |bars: &mut Vec<Bar>, n: usize, open: Option<(f64, String)>, class: &'static str, to: f64| {
        if let Some((from, what)) = open {
            let title = format!("n{n} {class} {from:.1}-{to:.1} ms: {what}");
            bars.push(Bar { lane: n + 1, row: 49.0, from, to: to.max(from + 0.5), class, title });
        }
    };
    for e in trace {
        let t = ms(e);
        if e.node == WORLD {
            if !is_world_step(&e.kind) {
                continue;
            }
            let heal_all = e.kind == "heal-all";
            if matches!(e.kind.as_str(), "partition" | "partition-one-way" | "isolate" | "heal-network") || heal_all {
                for (n, open) in cut.iter_mut().enumerate() {
                    close(&mut bars, n, open.take(), "cut", t);
                }
                for n in cut_off(&e.kind, &e.detail, servers) {
                    cut[n as usize] = Some((t, e.detail.clone()));
                }
            }
            if matches!(e.kind.as_str(), "clog" | "unclog") || heal_all {
                for (n, open) in clogged.iter_mut().enumerate() {
                    if heal_all || named_node(&e.detail) == Some(n as u32) {
                        close(&mut bars, n, open.take(), "clogged", t);
                        if e.kind == "clog" {
                            *open = Some((t, e.detail.clone()));
                        }
                    }
                }
            }
            if matches!(e.kind.as_str(), "lost-fsync" | "no-space" | "slow-disk") || heal_all {
                for (n, open) in disk.iter_mut().enumerate() {
                    if heal_all || named_node(&e.detail) == Some(n as u32) {
                        close(&mut bars, n, open.take(), "disk-fault", t);
                        // `lost-fsync n2 log on`, `slow-disk n2 +30ms`; `... off` ends them.
                        let on = !e.detail.ends_with(" off");
                        if on && !heal_all {
                            *open = Some((t, e.detail.clone()));
                        }
                    }
                }
            }
            let n = named_node(&e.detail).filter(|&n| n < servers);
            let new_status = match e.kind.as_str() {
                "crash" | "power-loss" | "shutdown" => Some(Status::Down),
                "pause" => Some(Status::Paused),
                "resume" => Some(Status::Up),
                _ => None,
            };
            if let (Some(n), Some(s)) = (n, new_status) {
                let n = n as usize;
                close_status(&mut bars, n, status[n], t);
                status[n] = (s, t);
                if s == Status::Down {
                    close_leader(&mut bars, n, leader[n].take(), t);
                }
            }
            let lane = n.map_or(0, |n| n as usize + 1);
            ticks.push(Tick { lane, at: t, class: "fault", title: format!("{:.3} ms {}: {}", t, e.kind, e.detail) });
            if lane != 0 {
                ticks.push(Tick {
                    lane: 0,
                    at: t,
                    class: "fault",
                    title: format!("{:.3} ms {}: {}", t, e.kind, e.detail),
                });
            }
            continue;
        }
        let n = e.node as usize;
        if n >= servers as usize {
            continue;
        }
        match e.kind.as_str() {
            "start" => {
                close_status(&mut bars, n, status[n], t);
                status[n] = (Status::Up, t);
            }
            "meta-leader" => {
                close_leader(&mut bars, n, leader[n].take(), t);
                let term = e.detail.strip_prefix("leads t").and_then(|t| t.parse().ok());
                leader[n] = term.map(|term| (term, t));
            }
            _ => {}
        }
        if e.kind == "apply" && !e.detail.starts_with("meta#") {
            continue;
        }
        if let Some(class) = tick_class(&e.kind) {
            ticks.push(Tick { lane: n + 1, at: t, class, title: format!("{t:.3} ms n{n} {}: {}", e.kind, e.detail) });
        }
    }
    for n in 0..servers as usize {
        close(&mut bars, n, cut[n].take(), "cut", end);
        close(&mut bars, n, clogged[n].take(), "clogged", end);
        close(&mut bars, n, disk[n].take(), "disk-fault", end);
        close_status(&mut bars, n, status[n], end);
        close_leader(&mut bars, n, leader[n].take(), end);
    }

    let height = TOP + LANE * lanes as f64 + 20.0;
    let x = |t: f64| LEFT + t / end * WIDTH;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" data-end="{end}">"#,
        w = LEFT + WIDTH + 20.0
    );
    // Time axis.
    let step = nice_step(end);
    let mut t = 0.0;
    while t <= end {
        let _ = writeln!(
            svg,
            r#"<g class="tick-axis" data-a="{t}"><line x1="{x}" x2="{x}" y1="{TOP}" y2="{y2}"/><text x="{x}" y="{ty}">{label}</text></g>"#,
            x = x(t),
            y2 = height - 20.0,
            ty = TOP - 8.0,
            label = format_ms(t)
        );
        t += step;
    }
    for lane in 0..lanes {
        let y = TOP + LANE * lane as f64;
        let label = if lane == 0 { "world".to_string() } else { format!("n{}", lane - 1) };
        let node = if lane == 0 { String::new() } else { format!(r#" data-node="{}""#, lane - 1) };
        let class = if lane == 0 { "world" } else { "lane" };
        let _ = writeln!(
            svg,
            r#"<g class="{class}"{node}><rect class="lane-bg" x="0" y="{y}" width="{w}" height="{LANE}"/><text class="lane-label" x="6" y="{ly}">{label}</text></g>"#,
            w = LEFT + WIDTH + 20.0,
            ly = y + 36.0
        );
    }
    for b in &bars {
        let y = TOP + LANE * b.lane as f64 + b.row;
        let h = match b.class {
            "leader" => 8.0,
            "cut" | "clogged" | "disk-fault" => 5.0,
            _ => 10.0,
        };
        let _ = writeln!(
            svg,
            r#"<rect class="bar {c}" data-a="{a}" data-b="{bb}" x="{x}" y="{y}" width="{w}" height="{h}"><title>{t}</title></rect>"#,
            c = b.class,
            a = b.from,
            bb = b.to,
            x = x(b.from),
            w = (x(b.to) - x(b.from)).max(0.5),
            t = escape(&b.title)
        );
    }
    for k in &ticks {
        let row = match k.class {
            "fault" => 1.0,
            "req" | "answer" | "timeout" => 8.0,
            _ => 18.0,
        };
        let y = TOP + LANE * k.lane as f64 + row;
        let h = if k.class == "fault" { 6.0 } else { 8.0 };
        let _ = writeln!(
            svg,
            r#"<line class="ev {c}" data-a="{a}" x1="{x}" x2="{x}" y1="{y}" y2="{y2}"><title>{t}</title></line>"#,
            c = k.class,
            a = k.at,
            x = x(k.at),
            y2 = y + h,
            t = escape(&k.title)
        );
    }
    let failure = report.violation.as_ref().map(|v| {
        let t = v.sim_ns as f64 / 1e6;
        let node = v.node.map_or("cluster".to_string(), |n| format!("n{n}"));
        let text = format!("{} at {:.6}s on {node}: {}", v.invariant, t / 1e3, v.message);
        let _ = writeln!(
            svg,
            r#"<g id="failure" class="failure" data-a="{t}" data-invariant="{inv}"><line x1="{x}" x2="{x}" y1="{TOP}" y2="{y2}"/><text x="{tx}" y="{ty}">✖ {inv}</text><title>{title}</title></g>"#,
            x = x(t),
            tx = x(t) - 4.0,
            ty = height - 6.0,
            y2 = height - 18.0,
            inv = escape(&v.invariant),
            title = escape(&text)
        );
        text
    });
    svg.push_str("</svg>\n");

    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>metasim timeline: {title}</title>
<style>{STYLE}</style></head>
<body>
<h1>{title}</h1>
<p class="summary">seed {seed} · {servers} servers · {events} events · trace-hash {hash:016x} · <b id="verdict">{verdict}</b>{failure}</p>
<p class="help">Wheel: zoom · drag: pan · double-click: reset · hover: details ·
<label><input type="checkbox" id="assets"> asset group leadership</label> ·
legend: <span class="k up">up</span> <span class="k down">down</span> <span class="k paused">paused</span>
<span class="k leader">meta leader</span> <span class="k req">request</span> <span class="k answer">answer</span>
<span class="k timeout">timeout</span> <span class="k snap">snapshot</span> <span class="k recovery">recovery</span>
<span class="k orphan">orphan</span> <span class="k apply">meta apply</span> <span class="k fault">fault</span>
<span class="k cut">partitioned</span> <span class="k clogged">clogged</span> <span class="k disk-fault">disk fault</span></p>
<div id="wrap">
{svg}</div>
<script>{SCRIPT}</script>
</body></html>
"#,
        title = escape(name),
        seed = report.seed,
        events = report.events,
        hash = report.trace_hash,
        verdict = if report.violation.is_some() {
            "fail"
        } else if report.excused.is_some() {
            "excused"
        } else {
            "pass"
        },
        failure =
            failure.map(|f| format!(r#" · <span class="failure-text">{}</span>"#, escape(&f))).unwrap_or_default(),
    );
    html
}

/// Axis spacing: about ten labels.
fn nice_step(end: f64) -> f64 {
    let raw = end / 10.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p)
}

fn format_ms(t: f64) -> String {
    if t >= 1000.0 {
        format!("{:.1}s", t / 1000.0)
    } else {
        format!("{t:.0}ms")
    }
}

/// Text for HTML and SVG: markup characters as entities, control characters escaped.
fn escape(s: &str) -> String {
    sim::scenario::escape_control(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = r#"
body { font: 13px sans-serif; margin: 12px; }
h1 { font-size: 16px; margin: 0 0 4px; }
.summary, .help { margin: 2px 0; }
.failure-text { color: #b00; }
#wrap { overflow: hidden; border: 1px solid #ccc; cursor: grab; }
.lane-bg { fill: #fff; stroke: #eee; }
.world .lane-bg { fill: #f6f6f6; }
.lane-label { font-weight: bold; }
.tick-axis line { stroke: #eee; } .tick-axis text { font-size: 10px; fill: #888; text-anchor: middle; }
.bar.up, .k.up { fill: #6c6; background: #6c6; } .bar.down, .k.down { fill: #d55; background: #d55; }
.bar.paused, .k.paused { fill: #eb3; background: #eb3; } .bar.leader, .k.leader { fill: #36c; background: #36c; }
.ev { stroke-width: 1.5; }
.req { stroke: #888; background: #888; } .answer { stroke: #2a2; background: #2a2; } .timeout { stroke: #e60; background: #e60; }
.snap { stroke: #a3c; background: #a3c; } .recovery { stroke: #0aa; background: #0aa; } .orphan { stroke: #960; background: #960; }
.bar.cut, .k.cut { fill: #a0f; background: #a0f; } .bar.clogged, .k.clogged { fill: #850; background: #850; }
.bar.disk-fault, .k.disk-fault { fill: #f50; background: #f50; }
.apply { stroke: #9ac; background: #9ac; } .fault { stroke: #c00; background: #c00; } .asset { stroke: #36c; display: none; }
body.assets .asset { display: inline; }
.k { color: #fff; padding: 0 4px; border-radius: 3px; }
.failure line { stroke: #e00; stroke-width: 2; } .failure text { fill: #e00; font-weight: bold; text-anchor: end; }
"#;

/// Zoom and pan: every drawn thing carries its time(s) in `data-a` (and `data-b`); the view
/// is a window [v0, v1] of ms that the wheel narrows and a drag moves.
const SCRIPT: &str = r#"
(function () {
  var svg = document.getElementById('chart');
  var end = parseFloat(svg.getAttribute('data-end'));
  var LEFT = 70, WIDTH = 1400, v0 = 0, v1 = end;
  var items = Array.prototype.slice.call(svg.querySelectorAll('[data-a]'));
  function x(t) { return LEFT + (t - v0) / (v1 - v0) * WIDTH; }
  function draw() {
    items.forEach(function (el) {
      var a = parseFloat(el.getAttribute('data-a'));
      if (el.hasAttribute('data-b')) {
        var b = parseFloat(el.getAttribute('data-b'));
        var xa = Math.max(LEFT, x(a)), xb = Math.min(LEFT + WIDTH, x(b));
        el.setAttribute('x', xa); el.setAttribute('width', Math.max(0, xb - xa));
      } else {
        var xs = x(a), off = xs < LEFT || xs > LEFT + WIDTH;
        el.style.visibility = off ? 'hidden' : '';
        var lines = el.tagName === 'line' ? [el] : el.querySelectorAll('line');
        Array.prototype.forEach.call(lines, function (l) { l.setAttribute('x1', xs); l.setAttribute('x2', xs); });
        var text = el.querySelector && el.querySelector('text');
        if (text) text.setAttribute('x', el.classList.contains('failure') ? xs - 4 : xs);
      }
    });
  }
  svg.addEventListener('wheel', function (ev) {
    ev.preventDefault();
    var r = svg.getBoundingClientRect();
    var at = v0 + (ev.clientX - r.left - LEFT) / WIDTH * (v1 - v0);
    var f = ev.deltaY < 0 ? 0.8 : 1.25;
    v0 = at - (at - v0) * f; v1 = at + (v1 - at) * f;
    if (v1 - v0 > end) { v0 = 0; v1 = end; }
    draw();
  }, { passive: false });
  var drag = null;
  svg.addEventListener('mousedown', function (ev) { drag = { x: ev.clientX, v0: v0, v1: v1 }; });
  window.addEventListener('mouseup', function () { drag = null; });
  window.addEventListener('mousemove', function (ev) {
    if (!drag) return;
    var d = (ev.clientX - drag.x) / WIDTH * (drag.v1 - drag.v0);
    v0 = drag.v0 - d; v1 = drag.v1 - d; draw();
  });
  svg.addEventListener('dblclick', function () { v0 = 0; v1 = end; draw(); });
  document.getElementById('assets').addEventListener('change', function (ev) {
    document.body.classList.toggle('assets', ev.target.checked);
  });
  draw();
  document.body.setAttribute('data-rendered-lanes', svg.querySelectorAll('g.lane').length);
})();
"#;
