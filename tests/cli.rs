//! The CLI contract: exit codes, bad input, determinism across processes, export/replay
//! equivalence, fuzz findings and shards.

mod common;

use common::{fuzz_hashes, metasim, root, scratch, toml_files};

#[test]
fn malformed_scenarios_exit_2_and_name_the_place() {
    let files = toml_files(&root().join("tests/bad"));
    assert!(files.len() >= 20, "only {} malformed files", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let want = text.lines().next().unwrap().strip_prefix("# error: ").expect("first line names the error");
        let out = metasim(&["run", file.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{}: {}{}", file.display(), out.stdout, out.stderr);
        assert!(out.stderr.contains(want), "{}:\n  want: {want}\n  got:  {}", file.display(), out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn bad_flags_exit_2_and_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["fuzz", "--seeds", "5..1"], "--seeds: the range 5..1 is empty"),
        (&["fuzz", "--seeds", "abc"], "--seeds: `abc` is not a range"),
        (&["fuzz", "--seeds", "0..x"], "--seeds: end `x`"),
        (&["fuzz", "--seeds", "0..10", "--jobs", "0"], "--jobs: must be between 1"),
        (&["fuzz", "--seeds", "0..10", "--shard", "3/2"], "--shard: K/N needs 1 <= K <= N"),
        (&["fuzz", "--seeds", "0..10", "--shard", "half"], "--shard: `half` is not K/N"),
        (&["fuzz", "--seeds", "0..10", "--profile", "nope"], "--profile: unknown profile `nope`"),
        (&["replay", "--seed", "1", "--profile", "nope"], "--profile: unknown profile"),
        (&["replay", "--seed", "1", "--bug", "nope"], "--bug: unknown bug switch `nope`"),
        (&["replay", "--seed", "-1"], "--seed"),
        (&["replay"], "--seed"),
        (&["run", "no/such/file.toml"], "no/such/file.toml:0: file: cannot read"),
        (&["run", "scenarios/register/torn-write-is-cut-off.toml", "--seed", "x"], "--seed"),
        (&["export", "--seed", "1"], "--output"),
        (&["export", "--seed", "1", "-o", "/no/such/dir/x.toml"], "/no/such/dir/x.toml"),
        (&["bench", "--sim-seconds", "0"], "--sim-seconds: must be between 1 and 3600"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, want) in cases {
        let out = metasim(args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(want), "{args:?}:\n  want: {want}\n  got:  {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
}

#[test]
fn same_seed_same_hash_in_separate_processes_and_parallel_workers() {
    let serial = fuzz_hashes(&["--seeds", "0..100", "--findings", "/dev/null"]);
    let again = fuzz_hashes(&["--seeds", "0..100", "--findings", "/dev/null"]);
    let parallel = fuzz_hashes(&["--seeds", "0..100", "--jobs", "2", "--findings", "/dev/null"]);
    assert_eq!(serial.len(), 100);
    assert_eq!(serial, again, "two processes disagree");
    assert_eq!(serial, parallel, "worker processes disagree with a serial run");
    let distinct: std::collections::BTreeSet<&String> = serial.iter().map(|r| &r.2).collect();
    assert_eq!(distinct.len(), 100, "every seed is a different run");
    assert!(serial.iter().all(|r| r.1 == "pass"), "the unswitched fixture passes: {serial:?}");
}

#[test]
fn export_then_run_gives_the_replay_hash() {
    let dir = scratch("export");
    let replayed = fuzz_hashes(&["--seeds", "0..100", "--profile", "default", "--findings", "/dev/null"]);
    for (seed, _, hash) in &replayed {
        let file = dir.join(format!("seed-{seed}.toml"));
        let out = metasim(&["export", "--seed", &seed.to_string(), "-o", file.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = metasim(&["run", file.to_str().unwrap()]);
        assert_eq!(out.line("trace-hash: "), Some(hash.as_str()), "seed {seed}: exported file runs differently");
    }
    // And another profile, fewer seeds.
    for (seed, _, hash) in fuzz_hashes(&["--seeds", "0..10", "--profile", "storage", "--findings", "/dev/null"]) {
        let file = dir.join(format!("storage-{seed}.toml"));
        metasim(&["export", "--seed", &seed.to_string(), "--profile", "storage", "-o", file.to_str().unwrap()]);
        assert_eq!(metasim(&["run", file.to_str().unwrap()]).line("trace-hash: "), Some(hash.as_str()));
    }
}

#[test]
fn determinism_check_passes_a_clean_run_and_locates_a_nondeterministic_one() {
    let ok = metasim(&["replay", "--seed", "3", "--check-determinism"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("determinism: ok"), "{}", ok.stdout);
    let ok = metasim(&["run", "scenarios/register/clock-skew-and-pause.toml", "--check-determinism"]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);

    // The fixture jitters a timer with the OS clock, read past madsim's interception.
    let bad = metasim(&["replay", "--seed", "3", "--bug", "fixture-os-time", "--check-determinism"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stdout.contains("determinism: FAILED"), "{}", bad.stdout);
    let at = bad.stdout.lines().find_map(|l| l.strip_prefix("runs diverge at event #")).expect("names the event");
    let index: usize = at.trim().parse().unwrap();
    let first = bad.line("first run:  ").expect("first run's event");
    let second = bad.line("second run: ").expect("second run's event");
    assert_ne!(first, second);
    assert!(
        first.contains(" timer ") || second.contains(" timer "),
        "the jittered timer is where they part:\n{first}\n{second}"
    );
    // The context shows the events before it, which both runs share.
    let context: Vec<&str> = bad
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("events before it"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(context.len(), index.min(10));
}

#[test]
fn fuzz_reports_each_failure_with_a_reproduce_command_that_fails_again() {
    let dir = scratch("findings");
    let findings = dir.join("findings.txt");
    let out = metasim(&[
        "fuzz",
        "--seeds",
        "0..600",
        "--jobs",
        "2",
        "--system",
        "register",
        "--bug",
        "register-ack-before-fsync",
        "--findings",
        findings.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let failures: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("FAIL seed ")).collect();
    assert!(!failures.is_empty());
    let last = out.stdout.lines().last().unwrap();
    assert_eq!(last, format!("{} passed, {} failed", 600 - failures.len(), failures.len()));
    let recorded = std::fs::read_to_string(&findings).unwrap();
    assert_eq!(recorded.lines().filter(|l| l.starts_with("seed=")).count(), failures.len());
    let reproduce = recorded.lines().find_map(|l| l.trim().strip_prefix("reproduce: metasim ")).unwrap();
    let args: Vec<&str> = reproduce.split(' ').collect();
    let again = metasim(&args);
    assert_eq!(again.code, 1, "{reproduce}: {}", again.stdout);
    assert!(again.line("violation: ").unwrap().starts_with("register-durable-ack"));
}

#[test]
fn shards_split_the_range_without_overlap() {
    let all = fuzz_hashes(&["--seeds", "10..40", "--findings", "/dev/null"]);
    let mut union = Vec::new();
    for k in 1..=3 {
        union.extend(fuzz_hashes(&["--seeds", "10..40", "--shard", &format!("{k}/3"), "--findings", "/dev/null"]));
    }
    union.sort();
    assert_eq!(union, all);
}

#[test]
fn json_lines_carry_seed_verdict_hash_and_times() {
    let out = metasim(&["fuzz", "--seeds", "0..3", "--json", "--findings", "/dev/null"]);
    assert_eq!(out.code, 0);
    for line in out.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["seed", "verdict", "trace_hash", "sim_ms", "wall_ms", "profile", "events"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
        assert_eq!(v["sim_ms"], 60_000);
    }
    assert!(out.stderr.lines().any(|l| l == "3 passed, 0 failed"));
}

#[test]
fn event_log_lines_carry_time_and_node() {
    let out = metasim(&["run", "scenarios/register/torn-write-is-cut-off.toml", "--log"]);
    assert_eq!(out.code, 0);
    let torn = out.stderr.lines().find(|l| l.contains("torn-write")).expect("the torn write is logged");
    assert!(torn.contains("1.000000s") && torn.contains("n0"), "{torn}");
}
