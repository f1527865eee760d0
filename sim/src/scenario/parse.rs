//! Parsing a scenario file: the TOML document, then each part checked by the engine's own
//! rules (bounds, shapes, node indices, time order), every error with its line.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::locate::{backticked, excerpt, field_in_message, nested_key, Source};
use super::{checks, Action, ClockSpec, CrashPoints, DiskProfile, Scenario, ScenarioError, Step, Verdict};
use super::{DURATION_MS_MAX, SCENARIO_BYTES_MAX, SERVERS_MAX, STEPS_MAX};
use crate::net::LinkProfile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    servers: toml::Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario<K> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    sut: Option<String>,
    #[serde(default)]
    description: String,
    /// TOML integers are signed; seeds of 2^63 and above are written as negative numbers.
    #[serde(default)]
    seed: i64,
    duration_ms: toml::Spanned<u64>,
    cluster: RawCluster,
    #[serde(default)]
    network: Option<toml::Spanned<LinkProfile>>,
    #[serde(default)]
    disk: Option<toml::Spanned<DiskProfile>>,
    #[serde(default)]
    crash_points: Option<toml::Spanned<CrashPoints>>,
    #[serde(default)]
    clock: Vec<toml::Spanned<ClockSpec>>,
    #[serde(default)]
    bugs: Vec<toml::Spanned<String>>,
    #[serde(default)]
    liveness: Option<toml::Spanned<bool>>,
    #[serde(default)]
    expect: Option<toml::Spanned<Verdict>>,
    #[serde(default)]
    expect_violation: Option<toml::Spanned<String>>,
    #[serde(default)]
    system: Option<toml::Spanned<K>>,
    #[serde(default)]
    step: Vec<toml::Spanned<toml::Table>>,
}

/// Where parts of a parsed scenario are written, for the checks that need the system under
/// test ([`super::parse_for`]).
pub(crate) struct Places {
    /// Each step's table with its sub-tables, in step order.
    pub steps: Vec<Range<usize>>,
    /// The `[system]` table, when the file has one.
    pub system: Option<Range<usize>>,
    /// Each entry of `bugs`.
    pub bugs: Vec<Range<usize>>,
}

/// Parse and check scenario text with the engine's checks, and say where the parts that later
/// checks need are written.
pub(crate) fn located<C, E, K>(file: &str, text: &str) -> Result<(Scenario<C, E, K>, Places), ScenarioError>
where
    C: DeserializeOwned,
    E: DeserializeOwned,
    K: DeserializeOwned + Default,
{
    let src = Source { file, text };
    if text.len() > SCENARIO_BYTES_MAX {
        let message = format!("{} bytes; scenario files are at most {SCENARIO_BYTES_MAX} bytes", text.len());
        return Err(src.error(0, "file", message));
    }
    let raw: RawScenario<K> = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    let servers = checked_servers(&src, &raw.cluster.servers)?;
    let duration_ms = checked_duration(&src, &raw.duration_ms)?;
    let network = checked_table(&src, "network", raw.network, checks::link)?.unwrap_or_default();
    let disk = checked_table(&src, "disk", raw.disk, checks::disk)?.unwrap_or_default();
    let crash_points = checked_table(&src, "crash_points", raw.crash_points, checks::crash_points)?;
    let clocks = checked_clocks(&src, raw.clock, servers)?;
    let (steps, step_regions) = parse_steps(&src, raw.step, servers, duration_ms)?;
    let liveness = checked_liveness(&src, raw.liveness, &steps)?;
    let (expect, expect_violation) = checked_verdict(&src, raw.expect, raw.expect_violation)?;
    let places = Places {
        steps: step_regions,
        system: raw.system.as_ref().map(|s| s.span()),
        bugs: raw.bugs.iter().map(|b| b.span()).collect(),
    };
    let scenario = Scenario {
        name: raw.name.unwrap_or_else(|| {
            Path::new(file).file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
        }),
        description: raw.description,
        sut: raw.sut,
        seed: raw.seed as u64,
        servers,
        duration_ms,
        network,
        disk,
        clocks,
        crash_points,
        bugs: raw.bugs.into_iter().map(toml::Spanned::into_inner).collect(),
        liveness,
        expect,
        expect_violation,
        system: raw.system.map(toml::Spanned::into_inner).unwrap_or_default(),
        steps,
    };
    Ok((scenario, places))
}

fn checked_servers(src: &Source<'_>, servers: &toml::Spanned<u32>) -> Result<u32, ScenarioError> {
    let value = *servers.get_ref();
    if value == 0 || value > SERVERS_MAX {
        let line = src.line_at(servers.span().start);
        return Err(src.error(line, "cluster.servers", format!("must be between 1 and {SERVERS_MAX}, got {value}")));
    }
    Ok(value)
}

fn checked_duration(src: &Source<'_>, duration_ms: &toml::Spanned<u64>) -> Result<u64, ScenarioError> {
    let value = *duration_ms.get_ref();
    if value == 0 || value > DURATION_MS_MAX {
        let line = src.line_at(duration_ms.span().start);
        return Err(src.error(line, "duration_ms", format!("must be between 1 and {DURATION_MS_MAX}, got {value}")));
    }
    Ok(value)
}

/// A top-level table checked by `check`, whose error names the key's line.
fn checked_table<T>(
    src: &Source<'_>,
    table: &str,
    value: Option<toml::Spanned<T>>,
    check: fn(&T) -> Result<(), checks::Refusal>,
) -> Result<Option<T>, ScenarioError> {
    let Some(value) = value else { return Ok(None) };
    let span = value.span();
    check(value.get_ref()).map_err(|(f, m)| src.error(src.line_of_key(&span, f), format!("{table}.{f}"), m))?;
    Ok(Some(value.into_inner()))
}

fn checked_clocks(
    src: &Source<'_>,
    clocks: Vec<toml::Spanned<ClockSpec>>,
    servers: u32,
) -> Result<Vec<ClockSpec>, ScenarioError> {
    let mut specs = Vec::with_capacity(clocks.len());
    for clock in clocks {
        let span = clock.span();
        checks::clock(clock.get_ref(), &specs, servers)
            .map_err(|(f, m)| src.error(src.line_of_key(&span, f), format!("clock.{f}"), m))?;
        specs.push(clock.into_inner());
    }
    Ok(specs)
}

/// Parsed steps, with each step's region of the file.
type StepsAndRegions<C, E> = (Vec<Step<C, E>>, Vec<Range<usize>>);

/// Every step, in time order, each checked on its own; with each step's region of the file.
fn parse_steps<C: DeserializeOwned, E: DeserializeOwned>(
    src: &Source<'_>,
    tables: Vec<toml::Spanned<toml::Table>>,
    servers: u32,
    duration_ms: u64,
) -> Result<StepsAndRegions<C, E>, ScenarioError> {
    if tables.len() > STEPS_MAX {
        let line = src.line_at(tables[STEPS_MAX].span().start);
        let message = format!("{} steps; at most {STEPS_MAX} are allowed", tables.len());
        return Err(src.error(line, format!("step[{STEPS_MAX}]"), message));
    }
    let mut steps = Vec::with_capacity(tables.len());
    let mut regions = Vec::with_capacity(tables.len());
    let mut previous_at_ms = 0;
    for (i, spanned) in tables.into_iter().enumerate() {
        let region = src.step_region(&spanned.span());
        let step = parse_step(src, i, &region, spanned.into_inner(), servers, duration_ms, previous_at_ms)?;
        previous_at_ms = step.at_ms;
        steps.push(step);
        regions.push(region);
    }
    Ok((steps, regions))
}

/// One `[[step]]`: its time, its action (typed through the system's op and expectation
/// types), the nodes it names and the engine's checks of its values.
fn parse_step<C: DeserializeOwned, E: DeserializeOwned>(
    src: &Source<'_>,
    i: usize,
    region: &Range<usize>,
    mut table: toml::Table,
    servers: u32,
    duration_ms: u64,
    previous_at_ms: u64,
) -> Result<Step<C, E>, ScenarioError> {
    // Lines are counted only for an error: counting them for every step made loading a file
    // of thousands of steps quadratic.
    let field_err =
        |key: &str, message: String| src.error(src.line_of_path(region, key), format!("step[{i}].{key}"), message);
    let missing =
        |key: &str| src.error(src.line_at(region.start), format!("step[{i}].{key}"), format!("missing field `{key}`"));
    let at_ms = match table.remove("at_ms") {
        Some(toml::Value::Integer(v)) if v >= 0 => v as u64,
        Some(other) => {
            return Err(field_err("at_ms", format!("must be a non-negative integer, got {}", short(&other))))
        }
        None => return Err(missing("at_ms")),
    };
    if at_ms > duration_ms {
        return Err(field_err("at_ms", format!("{at_ms} is after the end of the run (duration_ms = {duration_ms})")));
    }
    if at_ms < previous_at_ms {
        let message =
            format!("{at_ms} is earlier than the step before it ({previous_at_ms}); steps must be in time order");
        return Err(field_err("at_ms", message));
    }
    let name = match table.remove("action") {
        Some(toml::Value::String(s)) => s,
        Some(other) => return Err(field_err("action", format!("must be a string, got {}", short(&other)))),
        None => return Err(missing("action")),
    };
    let action = typed_action::<C, E>(src, i, region, &name, table)?;
    for (field, node) in action.nodes() {
        if node >= servers {
            return Err(field_err(field, format!("node {node} does not exist (servers = {servers})")));
        }
    }
    checks::action(&action).map_err(|(f, m)| field_err(f, m))?;
    Ok(Step { at_ms, action })
}

/// A TOML value in an error message: escaped, and short even when the value is not.
fn short(value: &toml::Value) -> String {
    excerpt(&value.to_string(), 60)
}

fn typed_action<C: DeserializeOwned, E: DeserializeOwned>(
    src: &Source<'_>,
    i: usize,
    region: &Range<usize>,
    name: &str,
    table: toml::Table,
) -> Result<Action<C, E>, ScenarioError> {
    let mut tagged = toml::Table::new();
    tagged.insert(name.to_string(), toml::Value::Table(table));
    Action::deserialize(toml::Value::Table(tagged)).map_err(|e| {
        let full = e.to_string();
        let message = excerpt(full.lines().next().unwrap_or_default().trim(), 200);
        // A path ("in `op.kind`") is relative to the action's table: its head is the field.
        let inner_field = nested_key(&full);
        if message.starts_with("unknown variant") && inner_field.is_none() {
            let what = backticked(&message).unwrap_or_default();
            let line = src.line_of_path(region, "action");
            return src.error(line, format!("step[{i}].action"), format!("unknown action `{what}`"));
        }
        match inner_field.or_else(|| field_in_message(&message)) {
            Some(f) => src.error(src.line_of_path(region, &f), format!("step[{i}].{f}"), message),
            None => src.error(src.line_at(region.start), format!("step[{i}] ({})", excerpt(name, 40)), message),
        }
    })
}

/// `liveness = true` needs a `heal-all` step to start the liveness phase.
fn checked_liveness<C, E>(
    src: &Source<'_>,
    liveness: Option<toml::Spanned<bool>>,
    steps: &[Step<C, E>],
) -> Result<bool, ScenarioError> {
    let Some(liveness) = liveness else { return Ok(false) };
    if *liveness.get_ref() && !steps.iter().any(|s| matches!(s.action, Action::HealAll {})) {
        let message = "liveness = true needs a `heal-all` step to start the liveness phase";
        return Err(src.error(src.line_at(liveness.span().start), "liveness", message));
    }
    Ok(*liveness.get_ref())
}

/// `expect_violation` says how a failing scenario fails: it needs `expect = "fail"`.
fn checked_verdict(
    src: &Source<'_>,
    expect: Option<toml::Spanned<Verdict>>,
    expect_violation: Option<toml::Spanned<String>>,
) -> Result<(Option<Verdict>, Option<String>), ScenarioError> {
    let verdict = expect.as_ref().map(|e| *e.get_ref());
    if let Some(violation) = &expect_violation {
        if verdict != Some(Verdict::Fail) {
            let line = src.line_at(violation.span().start);
            let message = "expect_violation says how the run fails: it needs expect = \"fail\"";
            return Err(src.error(line, "expect_violation", message));
        }
    }
    Ok((verdict, expect_violation.map(toml::Spanned::into_inner)))
}
