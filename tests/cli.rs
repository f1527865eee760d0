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
        assert!(!has_raw_control(&out.stderr), "{}: prints raw control characters: {:?}", file.display(), out.stderr);
    }
}

/// Control characters other than the line ends of the output itself.
fn has_raw_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

/// Bad files too big, too long or not text to keep in `tests/bad/`, written here.
#[test]
fn generated_bad_files_exit_2_and_name_the_place() {
    let dir = scratch("generated-bad");
    let heal = "[[step]]\nat_ms = 0\naction = \"heal-network\"\n";
    let head = "duration_ms = 1000\n[cluster]\nservers = 3\n";
    let steps_max = 20_000;
    let big = format!("{head}description = \"{}\"\n", "x".repeat(5 << 20));
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "too_many_steps.toml",
            format!("{head}{}", heal.repeat(steps_max + 1)).into_bytes(),
            // The first step past the limit: 3 lines of head, 3 lines a step.
            format!("too_many_steps.toml:{}: step[{steps_max}]: {} steps; at most", 4 + 3 * steps_max, steps_max + 1),
        ),
        (
            "too_big.toml",
            big.clone().into_bytes(),
            format!("too_big.toml:0: file: the file is {} bytes; scenario files are at most 4194304 bytes", big.len()),
        ),
        (
            "not_utf8.toml",
            [head.as_bytes(), b"name = \"caf\xe9\"\n"].concat(),
            "not_utf8.toml:4: file: not UTF-8: byte 0xe9 at byte offset 52".into(),
        ),
        (
            "long_dotted_key.toml",
            format!("{head}{} = 1\n", "a.".repeat(100_000) + "b").into_bytes(),
            "long_dotted_key.toml:4: a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.…: ".into(),
        ),
    ];
    for (name, bytes, want) in cases {
        let file = dir.join(name);
        std::fs::write(&file, bytes).unwrap();
        let out = metasim(&["run", file.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{name}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(&want), "{name}:\n  want: {want}\n  got:  {}", out.stderr);
        assert!(out.stderr.len() < 1_000, "{name}: a short message, got {} bytes", out.stderr.len());
    }
    // A device that never ends is refused by size too, without reading it all.
    let out = metasim(&["run", "/dev/zero"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("/dev/zero:0: file: the file is more than 4194304 bytes"), "{}", out.stderr);
}

#[test]
fn bad_flags_exit_2_and_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["fuzz", "--seeds", "5..1"], "--seeds: the range 5..1 is empty"),
        (&["fuzz", "--seeds", "abc"], "--seeds: `abc` is not a range"),
        (&["fuzz", "--seeds", "0..x"], "--seeds: end `x`"),
        (&["fuzz", "--seeds", "0..10", "--jobs", "0"], "--jobs: must be between 1"),
        (&["shrink", "--seed", "1", "--jobs", "0"], "--jobs: must be between 1"),
        (&["fuzz", "--seeds", "0..10", "--shard", "3/2"], "--shard: K/N needs 1 <= K <= N"),
        (&["fuzz", "--seeds", "0..10", "--shard", "half"], "--shard: `half` is not K/N"),
        (&["fuzz", "--seeds", "0..10", "--shard-from-env", "0"], "--shard-from-env: N must be at least 1"),
        (&["fuzz", "--seeds", "0..10", "--shard", "1/2", "--shard-from-env", "2"], "cannot be used with"),
        (&["fuzz", "--seeds", "0..10", "--profile", "nope"], "--profile: unknown profile `nope`"),
        (&["replay", "--seed", "1", "--profile", "nope"], "--profile: unknown profile"),
        (
            &["replay", "--seed", "1", "--bug", "nope"],
            "--bug: unknown bug switch `nope` for system meta (`metasim bugs`",
        ),
        (&["replay", "--seed", "1", "--bug", "raft-commit-old-trm"], "did you mean `raft-commit-old-term`?"),
        (&["replay", "--seed", "-1"], "--seed"),
        (&["replay"], "--seed"),
        (&["run", "no/such/file.toml"], "no/such/file.toml:0: file: cannot read"),
        (&["run", "scenarios/register/torn-write-is-cut-off.toml", "--seed", "x"], "--seed"),
        (&["export", "--seed", "1"], "--output"),
        (&["export", "--seed", "1", "-o", "/no/such/dir/x.toml"], "/no/such/dir/x.toml"),
        (&["bench", "--sim-seconds", "0"], "--sim-seconds: must be between 1 and 3600"),
        (&["bench", "--recovery-entries", "10,x"], "--recovery-entries: `x`"),
        (&["bench", "--recovery-entries", "0"], "--recovery-entries: each length must be between 1 and 10000000"),
        (&["fuzz", "--seeds", "0..10", "--findings", "/no/such/dir/f.txt"], "/no/such/dir/f.txt: cannot create it"),
        (&["fuzz", "--seeds", "0..10", "--findings", "/"], "/: Is a directory"),
        (&["fuzz", "--seeds", "0..10", "--profile", "\u{1b}[2J"], "unknown profile `\\u{1b}[2J`"),
        (&["run", "scenarios/register/torn-write-is-cut-off.toml", "--trace-out", "/dev/full"], "/dev/full: "),
        (
            &["run", "scenarios/register/torn-write-is-cut-off.toml", "--trace-out", "/no/dir/t.jsonl"],
            "/no/dir/t.jsonl",
        ),
        (
            &[
                "run",
                "scenarios/register/torn-write-is-cut-off.toml",
                "--check-determinism",
                "--trace-out",
                "/no/dir/t",
            ],
            "/no/dir/t: ",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, want) in cases {
        let out = metasim(args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(want), "{args:?}:\n  want: {want}\n  got:  {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
        assert!(!has_raw_control(&out.stderr), "{args:?}: prints raw control characters: {:?}", out.stderr);
    }
}

/// Seed ranges are streamed, never collected: the whole u64 range, or one shard in a million
/// of a trillion seeds, starts at once (here it stops at the first failure).
#[test]
fn huge_seed_ranges_start_at_once() {
    for extra in [&[][..], &["--shard", "1/1000000"][..]] {
        let seeds = if extra.is_empty() { "0..18446744073709551615" } else { "0..1000000000000" };
        let mut args = vec!["fuzz", "--seeds", seeds, "--system", "register", "--bug", "register-ack-before-fsync"];
        args.extend_from_slice(extra);
        args.extend(["--stop-on-failure", "--findings", "/dev/null"]);
        let started = std::time::Instant::now();
        let out = metasim(&args);
        assert_eq!(out.code, 1, "{args:?}: {}{}", out.stdout, out.stderr);
        let failed = out.stdout.lines().find_map(|l| l.strip_prefix("FAIL seed ")).expect("a failure");
        let seed: u64 = failed.split(':').next().unwrap().parse().unwrap();
        if !extra.is_empty() {
            assert_eq!(seed % 1_000_000, 0, "shard 1/1000000 runs multiples of a million, ran {seed}");
        }
        assert!(started.elapsed().as_secs() < 120, "{args:?} took {:?}", started.elapsed());
    }
}

#[test]
fn same_seed_same_hash_in_separate_processes_and_parallel_workers() {
    let serial = fuzz_hashes(&["--seeds", "0..100", "--jobs", "1", "--findings", "/dev/null"]);
    let again = fuzz_hashes(&["--seeds", "0..100", "--jobs", "1", "--findings", "/dev/null"]);
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

/// `run` keeps a failing run's trace by running it again: the report shows the events in words
/// and the hash is the first run's, and a run that does not repeat itself is an error.
#[test]
fn a_failure_is_run_again_for_its_report_and_must_repeat() {
    let file = "scenarios/register/ack-before-fsync-loses-acked-write.toml";
    let quick = metasim(&["run", file]);
    let traced = metasim(&["run", file, "--trace-out", &scratch("rerun").join("t.jsonl").display().to_string()]);
    assert_eq!((quick.code, traced.code), (1, 1), "{}{}", quick.stdout, traced.stdout);
    assert!(quick.stdout.contains("events of n0 before it:\n"), "{}", quick.stdout);
    assert!(quick.stdout.contains("client at n0: write 1"), "the events in words:\n{}", quick.stdout);
    // Kept in one run or in two, the same report (but for the wall time).
    let without_wall = |o: &common::Outcome| -> Vec<String> {
        o.stdout.lines().filter(|l| !l.starts_with("simulated: ")).map(str::to_string).collect()
    };
    assert_eq!(without_wall(&quick), without_wall(&traced));

    // Ticks jittered by the OS clock: the second run parts from the first.
    let bad = metasim(&["run", file, "--bug", "fixture-os-time"]);
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("the run did not repeat itself"), "{}", bad.stderr);
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

/// A scenario file, written to a scratch folder.
fn scenario_file(test: &str, text: &str) -> String {
    let file = scratch(test).join("s.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

const QUIET_REGISTER: &str = "sut = \"register\"\nduration_ms = 2000\n[cluster]\nservers = 3\n";

/// A file that says it fails but passes exits 1, as does one that fails another way than it names.
#[test]
fn a_verdict_other_than_the_file_expects_exits_1() {
    let cases = [
        ("expect = \"fail\"\n", 1, "expected: fail (NOT as expected: the run gave pass)"),
        ("expect = \"pass\"\n", 0, "expected: pass (as expected)"),
        ("", 0, "verdict: pass"),
    ];
    for (expect, code, line) in cases {
        let file = scenario_file("expect-verdict", &format!("{expect}{QUIET_REGISTER}"));
        let out = metasim(&["run", &file]);
        assert_eq!(out.code, code, "{expect}: {}", out.stdout);
        assert!(out.stdout.lines().any(|l| l == line), "{expect}: {}", out.stdout);
    }
    let named = "expect = \"fail\"\nexpect_violation = \"register-converged\"\n";
    let out = metasim(&["run", "scenarios/register/ack-before-fsync-loses-acked-write.toml"]);
    assert_eq!(out.code, 1, "an expected failure still exits 1: {}", out.stdout);
    assert!(out.stdout.contains("(as expected)"), "{}", out.stdout);
    let text =
        std::fs::read_to_string(root().join("scenarios/register/ack-before-fsync-loses-acked-write.toml")).unwrap();
    let other = text.lines().filter(|l| !l.starts_with("expect")).map(|l| format!("{l}\n")).collect::<String>();
    let out = metasim(&["run", &scenario_file("expect-violation", &format!("{named}{other}"))]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("NOT as expected: the violation does not contain"), "{}", out.stdout);
}

/// Names and other strings from a file are printed escaped: they cannot clear the screen or
/// add a `verdict:` line.
#[test]
fn control_characters_in_a_file_are_printed_escaped() {
    let name = "name = \"\\u001b[2J\\nverdict: fail\\r\"\n";
    let out = metasim(&["run", &scenario_file("escape", &format!("{name}{QUIET_REGISTER}"))]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!has_raw_control(&out.stdout), "{:?}", out.stdout);
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("verdict:")).count(), 1, "{}", out.stdout);
    assert_eq!(out.line("scenario: "), Some("\\u{1b}[2J\\nverdict: fail\\r"));
}

/// A stepdown to a server that does not exist loads (exported `storage` seeds hold them) but
/// is named with its line.
#[test]
fn a_stepdown_to_a_missing_server_is_a_warning_with_its_line() {
    let text = "duration_ms = 2000\n[cluster]\nservers = 3\n[[step]]\nat_ms = 500\naction = \"client\"\n\
                op = { kind = \"stepdown\", preferred = 4 }\n";
    let file = scenario_file("stepdown-warning", text);
    let out = metasim(&["run", &file]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let want = format!("warning: {file}:7: step[0].op.preferred: node 4 does not exist (servers = 3)");
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

/// `--check-determinism` honours `--trace-out`: the first run's trace lands there.
#[test]
fn determinism_check_writes_the_trace_it_was_asked_for() {
    let trace = scratch("determinism-trace").join("t.jsonl");
    let args = ["run", "scenarios/register/torn-write-is-cut-off.toml", "--check-determinism", "--trace-out"];
    let out = metasim(&[&args[..], &[trace.to_str().unwrap()]].concat());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("determinism: ok"), "{}", out.stdout);
    let events: usize = out.line("events: ").unwrap().parse().unwrap();
    let written = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(written.lines().count(), events, "one line per event");
    let again = scratch("determinism-trace-plain").join("t.jsonl");
    metasim(&["run", "scenarios/register/torn-write-is-cut-off.toml", "--trace-out", again.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), written, "the same trace as a plain run writes");
}

/// `bench --scale-seeds N` times N seeds of the `scale` profile in a row of its own.
#[test]
fn bench_times_the_scale_profile() {
    let quick = ["--sim-seconds", "1", "--seeds", "0", "--snapshot-streams", "0", "--recovery-entries", ""];
    let out = metasim(&[&["bench", "--scale-streams", "", "--scale-seeds", "1"], &quick[..]].concat());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let row = out.line("scale fuzz profile (meta, ").unwrap_or_else(|| panic!("no scale row: {}", out.stdout));
    assert!(row.contains("1 seeds in") && row.contains("1 passed"), "{row}");
    let out = metasim(&[&["bench", "--scale-streams", "", "--scale-seeds", "0"], &quick[..]].concat());
    assert!(!out.stdout.contains("scale fuzz profile"), "{}", out.stdout);
}

/// `bench --recovery-entries ""` skips the recovery figures, as its help says.
#[test]
fn bench_skips_recovery_figures_when_given_no_lengths() {
    let quick = ["--sim-seconds", "1", "--seeds", "0", "--snapshot-streams", "0", "--scale-seeds", "0"];
    let out = metasim(&[&["bench", "--recovery-entries", ""], &quick[..]].concat());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("start-up recovery"), "{}", out.stdout);
}

/// `metasim bugs | head -1`: the reader is gone before the list is printed. The process ends
/// by SIGPIPE, as other tools in a pipeline do, and prints no panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metasim"))
        .arg("bugs")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?} {stderr}", out.status);
}
