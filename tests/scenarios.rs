//! Every scenario file and every corpus seed replays with its recorded verdict: one test each
//! (libtest-mimic), so `cargo test figure8` runs one scenario and a failure names its file.
//! Test names: `scenarios/<path>.toml` for a file, `seeds/<file>.toml: seed N ...` for a
//! corpus entry.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{metasim, root, toml_files};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    trials.extend(scenario_trials());
    trials.extend(corpus_trials());
    trials.push(Trial::test(
        "an_orphan_left_by_a_skipped_orphan_check_is_reported_as_a_finding",
        an_orphan_left_by_a_skipped_orphan_check_is_reported_as_a_finding,
    ));
    trials.push(Trial::test(
        "a_joiner_records_that_it_caught_up_once_per_group",
        a_joiner_records_that_it_caught_up_once_per_group,
    ));
    trials.push(Trial::test("canonical_trace_snapshot", || {
        canonical_trace_snapshot();
        Ok(())
    }));
    libtest_mimic::run(&args, trials).exit();
}

/// Ok when `ok`, else a failure with the message.
fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// The path from the repository's root, with `/` on every platform: the test's name.
fn relative(file: &Path) -> String {
    let rel = file.strip_prefix(root()).unwrap_or(file);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// One test per file in scenarios/.
fn scenario_trials() -> Vec<Trial> {
    let files = toml_files(&root().join("scenarios"));
    assert!(files.len() >= 5, "scenarios/ holds {} files", files.len());
    files
        .into_iter()
        .map(|file| {
            let name = relative(&file);
            Trial::test(name.clone(), move || replay_scenario(&name))
        })
        .collect()
}

/// A scenario file gives the verdict its `expect` names (exit 0 for pass, 1 for fail), and a
/// failing one the violation `expect_violation` starts.
fn replay_scenario(name: &str) -> Result<(), Failed> {
    let text = std::fs::read_to_string(root().join(name)).map_err(|e| format!("{name}: {e}"))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
    let expect = doc.get("expect").and_then(|v| v.as_str()).ok_or_else(|| format!("{name}: no `expect`"))?;
    let out = metasim(&["run", name]);
    let want_code = if expect == "pass" { 0 } else { 1 };
    check(out.code == want_code, || {
        format!("{name}: exit {} (wanted {want_code}):\n{}\n{}", out.code, out.stdout, out.stderr)
    })?;
    check(out.line("verdict: ") == Some(expect), || format!("{name}: wanted verdict {expect}:\n{}", out.stdout))?;
    if let Some(v) = doc.get("expect_violation").and_then(|v| v.as_str()) {
        check(out.line("violation: ").is_some_and(|l| l.starts_with(v)), || {
            format!("{name}: wanted {v}:\n{}", out.stdout)
        })?;
    }
    Ok(())
}

/// One corpus entry of seeds/*.toml.
struct CorpusSeed {
    seed: String,
    profile: String,
    system: String,
    bugs: Vec<String>,
    expect: String,
    violation: Option<String>,
}

/// One test per entry of every seeds/*.toml, named by file, seed, profile and bugs.
fn corpus_trials() -> Vec<Trial> {
    let mut trials = Vec::new();
    let mut names = BTreeSet::new();
    for file in toml_files(&root().join("seeds")) {
        let rel = relative(&file);
        let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for entry in doc["seed"].as_array().unwrap() {
            let s =
                |key: &str| entry[key].as_str().unwrap_or_else(|| panic!("{rel}: `{key}` is not a string")).to_string();
            let corpus = CorpusSeed {
                seed: entry["seed"].as_integer().unwrap().to_string(),
                profile: s("profile"),
                system: entry.get("system").and_then(|v| v.as_str()).unwrap_or("meta").to_string(),
                bugs: entry["bugs"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect(),
                expect: s("expect"),
                violation: entry.get("violation").and_then(|v| v.as_str()).map(str::to_string),
            };
            let bugs = if corpus.bugs.is_empty() { "no bugs".to_string() } else { corpus.bugs.join(",") };
            let name = format!("{rel}: seed {} {} {}, {bugs}", corpus.seed, corpus.system, corpus.profile);
            assert!(names.insert(name.clone()), "{name} is in the corpus twice");
            trials.push(Trial::test(name.clone(), move || replay_corpus_seed(&name, &corpus)));
        }
    }
    assert!(trials.len() >= 3, "the corpus holds {} seeds", trials.len());
    trials
}

fn replay_corpus_seed(name: &str, c: &CorpusSeed) -> Result<(), Failed> {
    let mut args = vec!["replay", "--seed", &c.seed, "--profile", &c.profile, "--system", &c.system];
    for b in &c.bugs {
        args.extend(["--bug", b.as_str()]);
    }
    let out = metasim(&args);
    check(out.line("verdict: ") == Some(c.expect.as_str()), || {
        format!("{name}: wanted verdict {}: metasim {}:\n{}\n{}", c.expect, args.join(" "), out.stdout, out.stderr)
    })?;
    if let Some(v) = &c.violation {
        check(out.line("violation: ").is_some_and(|l| l.starts_with(v.as_str())), || {
            format!("{name}: wanted {v}: metasim {}:\n{}", args.join(" "), out.stdout)
        })?;
    }
    Ok(())
}

/// L5's finding, pinned: an orphan that outlives a skipped orphan check is reported under
/// its own invariant. Orphans arise here only from a wiped disk, which excuses liveness, so
/// the run ends excused (not a verdict a scenario file can expect) with the finding named.
fn an_orphan_left_by_a_skipped_orphan_check_is_reported_as_a_finding() -> Result<(), Failed> {
    let out = metasim(&["run", "tests/findings/orphan-check-skipped-leaves-orphan.toml"]);
    check(out.code == 1, || out.stdout.clone())?;
    check(out.line("verdict: ") == Some("excused"), || out.stdout.clone())?;
    let excuse = out.line("excused: ").unwrap_or_default();
    check(excuse.starts_with("liveness:meta-orphans-after-skipped-check"), || out.stdout.clone())
}

/// A server that joins a running group (a re-placement) waits for a leader's data, also after
/// a restart, until its membership record says it caught up. In the re-placement scenario n1
/// joins the stream and consumer groups when n3 is removed, n0 when n2 is: each rewrites its
/// record once per group, and only joiners do.
fn a_joiner_records_that_it_caught_up_once_per_group() -> Result<(), Failed> {
    let dir = common::scratch("joiner");
    let trace = dir.join("t.jsonl");
    let scenario = "scenarios/peers/remove-peer-replaces-streams.toml";
    let out = metasim(&["run", scenario, "--trace-out", trace.to_str().unwrap()]);
    check(out.code == 0, || out.stdout.clone())?;
    let mut caught_up = Vec::new();
    for line in std::fs::read_to_string(&trace)?.lines() {
        let e: serde_json::Value = serde_json::from_str(line)?;
        if e["kind"] == "joiner-caught-up" {
            caught_up.push((e["node"].as_u64().unwrap_or(u64::MAX), e["detail"].as_str().unwrap_or("").to_string()));
        }
    }
    let mut nodes: Vec<u64> = caught_up.iter().map(|(n, _)| *n).collect();
    nodes.sort();
    check(nodes == [0, 0, 1, 1], || format!("joiners that caught up: {caught_up:?}"))?;
    let groups: BTreeSet<&(u64, String)> = caught_up.iter().collect();
    check(groups.len() == caught_up.len(), || format!("a record rewritten twice: {caught_up:?}"))
}

/// The canonical trace of a small scenario, pinned: any change to what the engine or the
/// register does shows up as a reviewable snapshot diff.
fn canonical_trace_snapshot() {
    let dir = common::scratch("snapshot");
    let trace = dir.join("t.jsonl");
    let out =
        metasim(&["run", "scenarios/register/torn-write-is-cut-off.toml", "--trace-out", trace.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{:>12} {:>5} {:<12} {}",
                e["sim_ns"].as_u64().unwrap(),
                e["node"].as_u64().map_or("world".into(), |n| if n == u32::MAX as u64 {
                    "world".into()
                } else {
                    format!("n{n}")
                }),
                e["kind"].as_str().unwrap(),
                e["detail"].as_str().unwrap_or("")
            )
        })
        .filter(|l| !l.contains(" recv ") && !l.contains(" timer "))
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}
