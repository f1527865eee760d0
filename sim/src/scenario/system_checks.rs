//! The checks of a scenario file that need the system under test: its `[system]` table, its
//! client operations and expectations, its bug switches and file kinds, what the file asks it
//! to store in total, and how long its liveness phase needs.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::locate::Source;
use super::parse::{self, Places};
use super::{read_source, Action, ScenarioError, Step};
use crate::harness::Harness;
use crate::node::{ClientOpOf, ConfigOf, Node};
use crate::system::{ExpectOf, ScenarioOf, System};

/// A file's client operations ask for at most this many messages or log entries in total
/// (publish counts, proposals): 20,000 publish steps of 1,000 messages grew a run to 417 MB,
/// while 99,000 messages to a 3-replica meta stream run in 190 MB and 8 s.
pub const CLIENT_MESSAGES_MAX: u64 = 100_000;

/// A liveness phase shorter than this is refused whatever the system: the first probe comes
/// as the last step runs, before restarted nodes are up, and passes on an empty cluster.
pub const LIVENESS_HEALED_MS_MIN: u64 = 1_000;

/// A scenario that passed every check, with what looks wrong but is accepted.
pub struct Loaded<S: System> {
    pub scenario: ScenarioOf<S>,
    /// Things that load but probably do not do what the author meant, with their place.
    pub warnings: Vec<ScenarioError>,
}

impl<S: System> fmt::Debug for Loaded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded").field("scenario", &self.scenario).field("warnings", &self.warnings).finish()
    }
}

/// Read a scenario file for system `S` and check everything: the engine's checks and the
/// system's.
pub fn load_for<S: System>(path: &Path) -> Result<Loaded<S>, ScenarioError> {
    let text = read_source(path)?;
    parse_for::<S>(&path.display().to_string(), &text)
}

/// Parse scenario text for system `S` and check everything; `file` names it in errors.
pub fn parse_for<S: System>(file: &str, text: &str) -> Result<Loaded<S>, ScenarioError> {
    let (scenario, places) = parse::located::<ClientOpOf<S::Node>, ExpectOf<S>, ConfigOf<S::Node>>(file, text)?;
    let src = Source { file, text };
    check_bugs::<S>(&src, &scenario.bugs, &places.bugs)?;
    check_config::<S>(&src, &scenario, &places)?;
    let warnings = check_steps::<S>(&src, &scenario, &places.steps)?;
    check_messages_total::<S>(&src, &scenario.steps, &places.steps)?;
    check_liveness_phase::<S>(&src, &scenario, &places.steps)?;
    Ok(Loaded { scenario, warnings })
}

fn check_bugs<S: System>(src: &Source<'_>, bugs: &[String], spans: &[Range<usize>]) -> Result<(), ScenarioError> {
    for (bug, span) in bugs.iter().zip(spans) {
        if !<S::Harness as Harness>::bugs().iter().any(|b| b.name == bug) {
            let message = crate::harness::unknown_bug_message(bug, S::NAME, <S::Harness as Harness>::bugs());
            return Err(src.error(src.line_at(span.start), "bugs", message));
        }
    }
    Ok(())
}

/// The `[system]` table, reported at the line of the key its message starts with.
fn check_config<S: System>(src: &Source<'_>, scenario: &ScenarioOf<S>, places: &Places) -> Result<(), ScenarioError> {
    <S::Harness as Harness>::validate_config(&scenario.system, scenario.servers).map_err(|message| {
        let key = message.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or_default();
        let line = match &places.system {
            Some(span) if !key.is_empty() => src.line_of_key(span, key),
            Some(span) => src.line_at(span.start),
            None => 1,
        };
        src.error(line, "system", message)
    })
}

/// Each client operation and expectation, by the system's own checks; file kinds of disk
/// faults against the kinds the system writes.
fn check_steps<S: System>(
    src: &Source<'_>,
    scenario: &ScenarioOf<S>,
    regions: &[Range<usize>],
) -> Result<Vec<ScenarioError>, ScenarioError> {
    let (servers, config) = (scenario.servers, &scenario.system);
    let mut warnings = Vec::new();
    for (i, (step, region)) in scenario.steps.iter().zip(regions).enumerate() {
        let at = |head: &str, (field, message): (String, String)| {
            let path = if field.is_empty() { head.to_string() } else { format!("{head}.{field}") };
            src.error(src.line_of_path(region, &path), format!("step[{i}].{path}"), message)
        };
        match &step.action {
            Action::Client { op, .. } => {
                <S::Harness as Harness>::validate_client_op(op, servers, config).map_err(|e| at("op", e))?;
                warnings.extend(<S::Harness as Harness>::client_op_warning(op, servers).map(|w| at("op", w)));
            }
            Action::Expect { check } => {
                <S::Harness as Harness>::validate_expect(check, servers, config).map_err(|e| at("check", e))?
            }
            Action::Corrupt { kind, .. } | Action::LostFsync { kind, .. } | Action::NoSpace { kind, .. }
                if !<S::Node as Node>::KNOWN_FILE_KINDS.contains(&kind.as_str()) =>
            {
                let known = <S::Node as Node>::KNOWN_FILE_KINDS.join(", ");
                let message = format!("unknown file kind {kind:?} (system {} writes: {known})", S::NAME);
                return Err(src.error(src.line_of_path(region, "kind"), format!("step[{i}].kind"), message));
            }
            _ => {}
        }
    }
    Ok(warnings)
}

/// The messages and entries the client operations ask for, summed, are bounded: each is
/// held in memory (and in a log on every member) until the run ends.
fn check_messages_total<S: System>(
    src: &Source<'_>,
    steps: &[Step<ClientOpOf<S::Node>, ExpectOf<S>>],
    regions: &[Range<usize>],
) -> Result<(), ScenarioError> {
    let mut total: u64 = 0;
    for (i, (step, region)) in steps.iter().zip(regions).enumerate() {
        let Action::Client { op, .. } = &step.action else { continue };
        total = total.saturating_add(<S::Harness as Harness>::client_op_messages(op));
        if total > CLIENT_MESSAGES_MAX {
            let message = format!(
                "the client operations up to here ask for {total} messages or entries; a scenario may ask for \
                 at most {CLIENT_MESSAGES_MAX} in total"
            );
            return Err(src.error(src.line_of_path(region, "op.count"), format!("step[{i}].op"), message));
        }
    }
    Ok(())
}

/// A liveness phase must give the system time to recover from the last `heal-all` (a whole
/// cluster restarted by it has not elected anyone yet): otherwise it passes on nothing.
fn check_liveness_phase<S: System>(
    src: &Source<'_>,
    scenario: &ScenarioOf<S>,
    regions: &[Range<usize>],
) -> Result<(), ScenarioError> {
    if !scenario.liveness {
        return Ok(());
    }
    let Some(i) = scenario.steps.iter().rposition(|s| matches!(s.action, Action::HealAll {})) else {
        return Ok(()); // the engine's checks already refused it
    };
    let heal_ms = scenario.steps[i].at_ms;
    let healed_ms = scenario.duration_ms - heal_ms;
    let settle_ms = <S::Harness as Harness>::liveness_settle_ms(&scenario.system);
    let needed_ms = settle_ms.max(LIVENESS_HEALED_MS_MIN);
    if healed_ms < needed_ms {
        let why = if settle_ms > LIVENESS_HEALED_MS_MIN {
            format!("{needed_ms} ms (system {}'s settle time)", S::NAME)
        } else {
            format!("{needed_ms} ms")
        };
        let message = format!(
            "liveness = true needs the cluster healed for at least {why} before the end, but the last heal-all \
             at {heal_ms} ms leaves {healed_ms} ms (duration_ms = {})",
            scenario.duration_ms
        );
        return Err(src.error(src.line_of_path(&regions[i], "at_ms"), format!("step[{i}].at_ms"), message));
    }
    Ok(())
}
