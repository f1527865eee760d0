//! The scenario loader under random and mutated files (issue 21): it never panics, every
//! refusal names the file and a line and prints no raw control characters, every accepted
//! file writes back (`to_toml`) to a file that loads the same, and accepted files run.
//!
//! The loader is driven in-process through the library (`sim::scenario::parse_for`) for
//! speed. The seed of the cases is fixed so `cargo test` is repeatable; set
//! `PROPTEST_RNG_SEED` to explore others. Each property also stops after a time budget, so
//! a slow machine runs fewer cases rather than a longer test.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed};

use sim::fixture::register::RegisterSystem as Register;
use sim::scenario::parse_for;
use sim::{ScenarioOf, System};

type Meta = metasim::sut::MetaSystem;

/// Wall time each property may take at most.
const BUDGET: Duration = Duration::from_secs(40);

fn config(cases: u32) -> Config {
    let mut config = Config { cases, failure_persistence: None, ..Config::default() };
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(21);
    }
    config
}

/// Files to mutate: every scenario, every malformed file, and a few exported fuzz seeds
/// (the 3-server `storage` profile holds stepdowns that only warn).
fn corpus() -> &'static [(String, String)] {
    static CORPUS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = common::root();
        let mut files: Vec<(String, String)> = ["scenarios", "tests/bad", "tests/findings"]
            .iter()
            .flat_map(|dir| common::toml_files(&root.join(dir)))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        for (seed, profile) in [(0, "storage"), (3, "churn"), (5, "calm")] {
            let profile = sim::swarm::profile(profile).unwrap();
            let text = sim::swarm::generate::<Meta>(seed, profile).to_toml().unwrap();
            files.push((format!("swarm-{}-{seed}.toml", profile.name), text));
        }
        let text = sim::swarm::generate::<Register>(1, sim::swarm::profile("default").unwrap()).to_toml().unwrap();
        files.push(("swarm-register-1.toml".into(), text));
        files
    })
}

/// Values that sit on or past a bound somewhere in the format.
const NUMBERS: &[&str] = &[
    "0",
    "0",
    "1",
    "2",
    "100",
    "500",
    "5000",
    "1",
    "2",
    "3",
    "4",
    "7",
    "15",
    "16",
    "-1",
    "1000",
    "1001",
    "20000",
    "100000",
    "3600000",
    "3600001",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1.5",
    "nan",
    "[]",
    "\"3\"",
];

const STRINGS: &[&str] = &[
    "",
    "a/b",
    "c\\\\d",
    "..",
    "log",
    "assets",
    "nowhere",
    "east",
    "\\u001b[2J",
    "x\\nverdict: pass",
    "n1",
    "heal-all",
    "crash",
    "expect",
    "client",
    "partition",
    "publish",
    "stepdown",
    "remove-peer",
    "meta-refused",
    "fail",
    "pass",
    "register",
    "meta",
];

/// Lines that make a file say something else: new steps, absurd values, other tables.
const FRAGMENTS: &[&str] = &[
    "[[step]]",
    "at_ms = 0",
    "at_ms = 999999999",
    "action = \"heal-all\"",
    "action = \"crash\"",
    "action = \"partition\"",
    "groups = [[0, 1], [1, 2]]",
    "groups = [[0], []]",
    "node = 99",
    "node = 2",
    "from = 1\nto = 1",
    "liveness = true",
    "expect = \"fail\"",
    "expect_violation = \"x\"",
    "[system]",
    "observers = [0, 0]",
    "election_timeout_ms_max = 600000",
    "op = { kind = \"publish\", stream = \"S\", count = 1000 }",
    "op = { kind = \"stepdown\", preferred = 9 }",
    "op = { kind = \"remove-peer\" }",
    "check = { kind = \"meta-refused\", node = 9, is = true }",
    "check = { kind = \"value\", node = 9, equals = 1 }",
    "[step.op]",
    "kind = \"stepdown\"",
    "preferred = 9",
    "[[clock]]",
    "drift_ppm = -9223372036854775808",
    "[crash_points]\nrate_ppm = 1\nrestart_after_ms = 1\nuntil_ms = 18446744073709551615",
    "[disk]\nfsync_latency_us = 18446744073709551615",
    "sut = \"register\"",
    "sut = \"\"",
    "bugs = [\"nope\"]",
    "bugs = [\"\\u001b[2J\"]",
    "a.b.c = 1",
    "\u{0}",
    "= 1",
    "[",
    "x = [1, 2",
];

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Number(Index, String),
    /// A number moved by a little: a node index one past the last, a count one past its bound.
    Nudge(Index, i8),
    Text(Index, String),
    InsertLine(Index, String),
    /// A line at the top, where the top-level keys (`sut`, `bugs`, `liveness`) must be.
    Prepend(String),
    InsertChar(Index, char),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let number = prop_oneof![
        3 => proptest::sample::select(NUMBERS).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
    ];
    let text = prop_oneof![
        3 => proptest::sample::select(STRINGS).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    let line = prop_oneof![
        4 => proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<Index>(), number).prop_map(|(i, n)| Mutation::Number(i, n)),
        4 => (any::<Index>(), -2i8..=2).prop_map(|(i, d)| Mutation::Nudge(i, d)),
        2 => (any::<Index>(), text).prop_map(|(i, s)| Mutation::Text(i, s)),
        3 => (any::<Index>(), line.clone()).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        2 => line.prop_map(Mutation::Prepend),
        1 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::InsertChar(i, c)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// A byte range of a file's text.
type Span = (usize, usize);

/// Byte ranges of the integer literals and of the contents of the basic strings of `text`.
fn tokens(text: &str) -> (Vec<Span>, Vec<Span>) {
    let (mut numbers, mut strings) = (Vec::new(), Vec::new());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && bytes[j] != b'"' && bytes[j] != b'\n' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            strings.push((start, j.min(bytes.len())));
            i = j + 1;
        } else if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = if i > 0 && bytes[i - 1] == b'-' { i - 1 } else { i };
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            numbers.push((start, j));
            i = j;
        } else {
            i += 1;
        }
    }
    (numbers, strings)
}

fn floor_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let splice = |range: Span, with: &str| format!("{}{with}{}", &text[..range.0], &text[range.1..]);
    match m {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i.index(lines.len()));
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let at = i.index(lines.len());
            lines.insert(at, lines[at].clone());
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a.index(n), b.index(n));
        }
        Mutation::InsertLine(i, line) => lines.insert(i.index(lines.len() + 1), line.clone()),
        Mutation::Prepend(line) => lines.insert(0, line.clone()),
        Mutation::Number(i, value) => {
            let (numbers, _) = tokens(text);
            return if numbers.is_empty() { text.to_string() } else { splice(numbers[i.index(numbers.len())], value) };
        }
        Mutation::Nudge(i, delta) => {
            let (numbers, _) = tokens(text);
            let Some(&range) = numbers.get(i.index(numbers.len().max(1))) else { return text.to_string() };
            let moved = text[range.0..range.1].parse::<i128>().map_or(0, |n| n + i128::from(*delta));
            return splice(range, &moved.to_string());
        }
        Mutation::Text(i, value) => {
            let (_, strings) = tokens(text);
            return if strings.is_empty() { text.to_string() } else { splice(strings[i.index(strings.len())], value) };
        }
        Mutation::InsertChar(i, c) => {
            let at = floor_boundary(text, i.index(text.len() + 1));
            return format!("{}{c}{}", &text[..at], &text[at..]);
        }
        Mutation::Truncate(i) => return text[..floor_boundary(text, i.index(text.len() + 1))].to_string(),
        _ => {}
    }
    lines.join("\n") + "\n"
}

/// What a loaded file must satisfy for system `S`: a refusal names `file` and a line of it
/// (0 only for the file as a whole) and is printable; an accepted file writes back to a
/// file that loads to the same scenario. Returns the scenario when accepted.
fn check_load<S: System>(file: &str, text: &str) -> Result<Option<ScenarioOf<S>>, TestCaseError> {
    match parse_for::<S>(file, text) {
        Err(e) => {
            let shown = e.to_string();
            prop_assert_eq!(&e.file, file);
            prop_assert!(e.line >= 1 || e.field == "file", "no line: {}", shown);
            prop_assert!(e.line <= text.lines().count() + 1, "line past the end: {}", shown);
            prop_assert!(!shown.chars().any(char::is_control), "raw control characters: {:?}", shown);
            prop_assert!(shown.len() <= 600, "a long message ({} bytes): {}", shown.len(), shown);
            Ok(None)
        }
        Ok(loaded) => {
            let written = loaded.scenario.to_toml().map_err(|e| TestCaseError::fail(e.to_string()))?;
            match parse_for::<S>(file, &written) {
                Ok(again) => prop_assert_eq!(&again.scenario, &loaded.scenario, "written back:\n{}", written),
                Err(e) => prop_assert!(false, "an accepted file written back is refused: {e}\n{written}"),
            }
            Ok(Some(loaded.scenario))
        }
    }
}

/// Whether the property that owns `started` has used up its budget (the first case starts
/// its clock).
fn over_budget(started: &OnceLock<Instant>) -> bool {
    started.get_or_init(Instant::now).elapsed() > BUDGET
}

proptest! {
    #![proptest_config(config(1_500))]

    /// Mutated files, for both systems: mostly valid files, so that many mutants still load.
    #[test]
    fn mutated_files_are_refused_with_their_place_or_load_and_write_back(
        valid in proptest::bool::weighted(0.8),
        file in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        static STARTED: OnceLock<Instant> = OnceLock::new();
        if over_budget(&STARTED) {
            return Ok(());
        }
        let files: Vec<&(String, String)> = corpus().iter().filter(|(_, t)| valid != t.starts_with("# error:")).collect();
        let (name, original) = files[file.index(files.len())];
        let text = mutations.iter().fold(original.clone(), |t, m| apply(&t, m));
        check_load::<Meta>(name, &text)?;
        check_load::<Register>(name, &text)?;
    }
}

/// A random document: lines drawn from the fragments, any text, and table headers.
fn document() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => (proptest::sample::select(&["duration_ms", "seed", "name", "servers"][..]), proptest::sample::select(NUMBERS))
            .prop_map(|(k, v)| format!("{k} = {v}")),
        1 => Just("duration_ms = 1000\n[cluster]\nservers = 3".to_string()),
        1 => any::<String>(),
    ];
    proptest::collection::vec(line, 0..40).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(config(1_000))]

    /// Documents put together from fragments, for both systems.
    #[test]
    fn random_documents_are_refused_with_their_place_or_load_and_write_back(text in document()) {
        static STARTED: OnceLock<Instant> = OnceLock::new();
        if over_budget(&STARTED) {
            return Ok(());
        }
        check_load::<Meta>("random.toml", &text)?;
        check_load::<Register>("random.toml", &text)?;
    }
}

/// Accepted mutated files run: a handful of small meta and register files, mutated until
/// they differ from their original and still load, run in this process (the engine turns a
/// panic in a node or a check into a `panic` violation, which none may show).
#[test]
fn accepted_mutated_files_run() {
    let small: Vec<&(String, String)> =
        corpus().iter().filter(|(name, text)| !name.starts_with("swarm-") && text.len() < 4_000).collect();
    let mut runner = proptest::test_runner::TestRunner::new(config(1));
    let (mut ran, mut tried) = ((0, 0), 0);
    while ran.0 + ran.1 < 12 && tried < 5_000 {
        tried += 1;
        let pick = any::<Index>().new_tree(&mut runner).unwrap().current();
        let m = mutation().new_tree(&mut runner).unwrap().current();
        let (name, original) = small[pick.index(small.len())];
        let text = apply(original, &m);
        if text == *original || text.contains("duration_ms = 3600") {
            continue;
        }
        let is_register = text.contains("sut = \"register\"");
        let report = if is_register {
            match parse_for::<Register>(name, &text) {
                Ok(loaded) if ran.1 < 4 => {
                    ran.1 += 1;
                    sim::run::<Register>(&loaded.scenario, &Default::default())
                }
                _ => continue,
            }
        } else {
            match parse_for::<Meta>(name, &text) {
                Ok(loaded) if ran.0 < 8 && loaded.scenario.duration_ms <= 120_000 => {
                    ran.0 += 1;
                    sim::run::<Meta>(&loaded.scenario, &Default::default())
                }
                _ => continue,
            }
        };
        let panicked = report.violation.as_ref().filter(|v| v.invariant == "panic");
        assert!(panicked.is_none(), "{name} after {m:?} panicked: {panicked:?}\n{text}");
    }
    assert!(ran.0 >= 4 && ran.1 >= 2, "too few accepted mutations ran: {ran:?} in {tried} tries");
}

/// Every exported fuzz seed of every profile loads with every check on: the new rules
/// refuse nothing the generator writes (a stepdown, of the meta group or of an asset group, to
/// a server outside the 3-server `storage` cluster is the one warning).
#[test]
fn exported_seeds_of_every_profile_load() {
    for profile in sim::swarm::PROFILES {
        for seed in 0..40 {
            let scenario = sim::swarm::generate::<Meta>(seed, profile);
            let text = scenario.to_toml().unwrap();
            let loaded = parse_for::<Meta>("export.toml", &text).unwrap_or_else(|e| panic!("{}: {e}", profile.name));
            assert_eq!(loaded.scenario, scenario, "{} seed {seed}", profile.name);
            for w in &loaded.warnings {
                let stepdown =
                    w.message.contains("refuses the stepdown") || w.message.contains("the stepdown is refused");
                assert!(profile.servers < 5 && stepdown, "{}: {w}", profile.name);
            }
            let register = sim::swarm::generate::<Register>(seed, profile);
            let again = parse_for::<Register>("export.toml", &register.to_toml().unwrap()).unwrap().scenario;
            assert_eq!(again, register);
        }
    }
}

/// Every scenario file loads without a warning.
#[test]
fn scenario_files_load_without_warnings() {
    for (name, text) in corpus().iter().filter(|(name, _)| !name.starts_with("swarm-")) {
        let first = text.lines().next().unwrap_or_default();
        if first.starts_with("# error:") {
            continue;
        }
        let warnings = if text.contains("sut = \"register\"") {
            parse_for::<Register>(name, text).map(|l| l.warnings)
        } else {
            parse_for::<Meta>(name, text).map(|l| l.warnings)
        };
        let warnings = warnings.unwrap_or_else(|e| panic!("{e}"));
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
    }
}
