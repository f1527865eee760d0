//! Coverage and guided fuzzing: what runs reach, what they never do, and campaigns that derive
//! runs from the ones that reached something new.

mod common;

use common::{metasim, scratch};

fn coverage_json(args: &[&str]) -> serde_json::Value {
    let mut full = vec!["coverage", "--json", "--jobs", "1"];
    full.extend_from_slice(args);
    let out = metasim(&full);
    assert_eq!(out.code, 0, "coverage failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("coverage --json prints one object")
}

#[test]
fn coverage_reports_what_runs_reach_and_what_they_never_do() {
    let report = coverage_json(&["--seeds", "0..3"]);
    assert_eq!(report["runs"], 3);
    let hit = report["hit"].as_object().unwrap();
    for probe in ["raft.meta.leader.won", "raft.meta.vote.granted", "meta.op.assign-stream.applied", "group-started"] {
        assert_eq!(hit[probe]["runs"], 3, "{probe} is hit by every run");
    }
    assert!(hit.keys().any(|k| k.starts_with("fault:")), "faults are crossed with the states they strike");
    assert!(report["unlisted"].as_object().unwrap().is_empty(), "every probe hit is in the catalogue");
    let never: Vec<&str> = report["never"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
    assert!(never.contains(&"raft.meta.commit.old-term"), "only the bug switch commits an old term");
    let listed = report["listed"].as_u64().unwrap() as usize;
    assert_eq!(hit.len() + never.len(), listed, "every listed probe is either hit or never hit");
}

#[test]
fn the_scenario_files_reach_every_probe_only_scenarios_reach() {
    // The catalogue marks some probes as reached only by actions the swarm never draws (a
    // rescue, an injected inflight stream, an entry no server can apply): the scenario files
    // must reach each, or the mark hides a probe nothing reaches.
    let report = coverage_json(&["--scenarios", "scenarios"]);
    assert!(report["runs"].as_u64().unwrap() >= 90, "{}", report["runs"]);
    assert!(report["unlisted"].as_object().unwrap().is_empty(), "every probe hit is in the catalogue");
    let never = report["never"].as_array().unwrap();
    let scenario_only: Vec<&str> =
        never.iter().filter(|p| p[2] == "scenario").map(|p| p[0].as_str().unwrap()).collect();
    assert!(scenario_only.is_empty(), "no scenario file reaches {scenario_only:?}");
    let hit = report["hit"].as_object().unwrap();
    for probe in ["meta-rescued", "inflight-injected", "meta.op.refused", "meta.op.undecodable"] {
        assert!(hit.contains_key(probe), "{probe}");
    }
    let reachable = report["reachable"].as_u64().unwrap();
    let reachable_hit = report["reachable_hit"].as_u64().unwrap();
    assert!(0 < reachable_hit && reachable_hit < reachable, "{reachable_hit} of {reachable}");
}

#[test]
fn a_bug_switch_reaches_its_own_probe() {
    // Seed 3 with raft-commit-old-term takes the path the probe marks, in the meta group
    // (generator 16; seed 6565 did under 12, in an asset group, and under 15).
    let report = coverage_json(&["--seeds", "3..4", "--bug", "raft-commit-old-term"]);
    let hits = |probe: &str| report["hit"][probe]["hits"].as_u64().unwrap_or(0);
    assert!(hits("raft.meta.commit.old-term") + hits("raft.asset.commit.old-term") > 0, "{report}");
}

#[test]
fn runs_reach_the_risky_moments_and_crash_there() {
    // The storage profile has crash points and power faults on every seed: both kinds of
    // crash-point fault strike (a power loss first at seed 25 of generator 12), and every
    // marked moment but the orphan check's is reached.
    let report = coverage_json(&["--seeds", "0..30", "--profile", "storage"]);
    let hit = report["hit"].as_object().unwrap();
    for point in [
        "vote-sent",
        "append-acknowledged",
        "leader-committed",
        "became-leader",
        "snapshot-written",
        "snapshot-marked",
        "install-marked",
        "install-truncated",
        "log-truncated",
        "recovery-flushed",
        "stepdown-handed-over",
    ] {
        assert!(hit.contains_key(&format!("crash-point.{point}")), "crash point {point} is never reached");
    }
    for kind in ["crash-point", "power-loss-point"] {
        assert!(hit.keys().any(|k| k.starts_with(&format!("fault:{kind}@"))), "no {kind} fault struck");
    }
}

/// `fuzz --guided --json` lines as (run, trace hash).
fn guided_runs(args: &[&str]) -> (i32, Vec<(u64, String)>) {
    let mut full = vec!["fuzz", "--guided", "--json"];
    full.extend_from_slice(args);
    let out = metasim(&full);
    assert!(out.code == 0 || out.code == 1, "guided fuzz failed: {}", out.stderr);
    let runs = out
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["run"].as_u64().unwrap(), v["trace_hash"].as_str().unwrap().to_string())
        })
        .collect();
    (out.code, runs)
}

#[test]
fn a_guided_campaign_is_the_same_whatever_the_number_of_workers() {
    let dir = scratch("guided-determinism");
    let findings = dir.join("findings.txt");
    let findings = findings.to_str().unwrap();
    let runs = dir.join("runs");
    let common = ["--seeds", "0..10", "--plain-runs", "3", "--findings", findings];
    let (_, one) = guided_runs(&[&common[..], &["--jobs", "1", "--runs-out", runs.to_str().unwrap()]].concat());
    let (_, two) = guided_runs(&[&common[..], &["--jobs", "2"]].concat());
    assert_eq!(one.len(), 10, "the range's length is the budget of runs");
    assert_eq!(one, two);
    let derived: std::collections::BTreeSet<&String> = one[3..].iter().map(|(_, h)| h).collect();
    assert!(derived.len() > 1, "derived runs differ from each other");
    // Every derived run was kept as a file that replays as the campaign ran it.
    for (run, hash) in &one[3..] {
        let file = runs.join(format!("run-{run}.toml"));
        let replay = metasim(&["run", file.to_str().unwrap()]);
        assert_eq!(replay.line("trace-hash: "), Some(hash.as_str()), "{}", file.display());
    }
}

#[test]
fn a_failing_derived_run_is_kept_as_a_file_that_fails_again() {
    let dir = scratch("guided-kept");
    let findings = dir.join("findings.txt");
    // This switch fails most runs: derived ones among them (fresh seeds replay by number).
    let out = metasim(&[
        "fuzz",
        "--guided",
        "--seeds",
        "0..24",
        "--plain-runs",
        "1",
        "--jobs",
        "2",
        "--bug",
        "meta-leader-before-barrier",
        "--findings",
        findings.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let reproduce = out.stdout.lines().find_map(|l| l.trim().strip_prefix("reproduce: metasim run ")).unwrap();
    let args: Vec<&str> = ["run"].into_iter().chain(reproduce.split(' ')).collect();
    assert!(out.stdout.contains("reproduce: metasim replay --seed "), "a fresh seed replays by number");
    assert!(std::path::Path::new(args[1]).is_file(), "{} is kept", args[1]);
    let again = metasim(&args);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(again.stdout.contains("meta-leader-apply-barrier"), "{}", again.stdout);
    assert!(std::fs::read_to_string(&findings).unwrap().contains(args[1]), "the findings file names it");
}

/// With `--windows`, a run that reaches a probe few runs of the campaign reached opens a
/// window: derived runs cut the server that reached it off, with one other, from that moment.
/// The `disk` profile opens windows unless told not to; the others only when asked.
#[test]
fn rare_probes_open_windows_that_cut_their_server_off() {
    let dir = scratch("guided-windows");
    let (findings, runs) = (dir.join("findings.txt"), dir.join("runs"));
    let (findings, runs_dir) = (findings.to_str().unwrap(), runs.to_str().unwrap());
    let descriptions = |profile: &str, flags: &[&str]| {
        let _ = std::fs::remove_dir_all(&runs);
        let mut args = vec!["--seeds", "0..24", "--plain-runs", "8", "--jobs", "2", "--runs-out", runs_dir];
        args.extend(["--findings", findings, "--profile", profile]);
        args.extend_from_slice(flags);
        let (code, done) = guided_runs(&args);
        assert_eq!((code, done.len()), (0, 24), "{profile} {flags:?}");
        (8..24)
            .filter_map(|run| std::fs::read_to_string(runs.join(format!("run-{run}.toml"))).ok())
            .filter_map(|text| text.lines().find(|l| l.starts_with("description")).map(str::to_string))
            .collect::<Vec<String>>()
    };
    let cut_offs = |descriptions: &[String]| descriptions.iter().filter(|d| d.contains("(cut off n")).count();
    let with = descriptions("default", &["--windows"]);
    let cut_off: Vec<&String> = with.iter().filter(|d| d.contains("(cut off n")).collect();
    assert!(!cut_off.is_empty(), "no cut-off among {with:#?}");
    assert!(cut_off.iter().all(|d| d.contains(", where it reached ")), "{cut_off:#?}");
    let without = descriptions("default", &[]);
    assert_eq!(cut_offs(&without), 0, "windows are off by default on `default`: {without:#?}");
    let disk = descriptions("disk", &[]);
    assert!(cut_offs(&disk) > 0, "`disk` opens windows by default: {disk:#?}");
    let disk_without = descriptions("disk", &["--no-windows"]);
    assert_eq!(cut_offs(&disk_without), 0, "--no-windows: {disk_without:#?}");

    let both = metasim(&["fuzz", "--guided", "--seeds", "0..2", "--windows", "--no-windows"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
    assert!(both.stderr.contains("--no-windows"), "{}", both.stderr);
    let closing = metasim(&["fuzz", "--guided", "--seeds", "0..2", "--profile", "disk", "--findings", findings]);
    assert!(closing.stdout.contains("guided, windows: 2 runs"), "{}", closing.stdout);
    let profiles = metasim(&["profiles"]).stdout;
    let with_windows: Vec<&str> = profiles
        .lines()
        .filter(|l| l.ends_with("opens windows by default"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(with_windows, ["disk"], "{profiles}");
}
