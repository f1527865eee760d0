//! A campaign split across machines as deploy/k8s/job.yaml splits it (one shard per pod,
//! the index from JOB_COMPLETION_INDEX, 0-based, as Kubernetes sets it), run here one pod
//! after another, and merged: the merge is the serial run, and a missing shard is named.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{metasim, metasim_env, root, rows, scratch};

/// Seeds of the local campaign, and a bug switch so that some of them fail.
const SEEDS: &str = "0..30";
const BUG: &str = "meta-no-inflight";

/// The Job's container arguments with a small seed range, and its shard count.
fn job_args() -> (Vec<String>, u64) {
    let job: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("deploy/k8s/job.yaml")).unwrap()).unwrap();
    let n = job["spec"]["completions"].as_u64().unwrap();
    let mut args: Vec<String> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let at = args.iter().position(|a| a == "--seeds").unwrap();
    args[at + 1] = SEEDS.to_string();
    args.extend(["--bug".into(), BUG.into(), "--findings".into(), "/dev/null".into()]);
    (args, n)
}

#[test]
fn shards_merged_equal_a_serial_run_and_a_missing_shard_is_named() {
    let dir = scratch("campaign");
    let (args, n) = job_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut files = Vec::new();
    for index in 0..n {
        let out = metasim_env(&args, &[("JOB_COMPLETION_INDEX", &index.to_string())]);
        assert!(out.code == 0 || out.code == 1, "pod {index}: {}", out.stderr);
        let file = dir.join(format!("shard-{index}.jsonl"));
        std::fs::write(&file, &out.stdout).unwrap();
        files.push(file.to_str().unwrap().to_string());
    }

    let serial_findings = dir.join("serial-findings.txt");
    let serial = metasim(&[
        "fuzz",
        "--seeds",
        SEEDS,
        "--jobs",
        "1",
        "--json",
        "--bug",
        BUG,
        "--findings",
        serial_findings.to_str().unwrap(),
    ]);
    let serial_rows = rows(&serial.stdout);
    assert_eq!(serial_rows.len(), 30);
    let failed = serial_rows.iter().filter(|r| r.1 == "fail").count();
    assert!(failed > 0 && failed < 30, "a mix of verdicts: {serial_rows:?}");

    let merged_findings = dir.join("merged-findings.txt");
    let shards = n.to_string();
    let mut merge_args = vec!["merge", "--json", "--seeds", SEEDS, "--shards", &shards, "--findings"];
    merge_args.push(merged_findings.to_str().unwrap());
    merge_args.extend(files.iter().map(String::as_str));
    let merged = metasim(&merge_args);
    assert_eq!(merged.code, 1, "failures were found: {}", merged.stderr);
    assert_eq!(rows(&merged.stdout), serial_rows, "same seeds, verdicts and hashes as the serial run");
    let tally = |text: &str| text.lines().find(|l| l.contains(" passed, ")).map(str::to_string);
    assert_eq!(tally(&merged.stderr), tally(&serial.stderr));
    assert_eq!(
        std::fs::read_to_string(&merged_findings).unwrap(),
        std::fs::read_to_string(&serial_findings).unwrap(),
        "the merged findings are the serial run's"
    );
    // Each failure with its reproduce line, and nothing missing.
    let reports = merged.stderr.lines().filter(|l| l.starts_with("FAIL seed ")).count();
    assert_eq!(reports, failed);
    assert_eq!(merged.stderr.lines().filter(|l| l.starts_with("  reproduce: metasim replay --seed ")).count(), failed);
    assert!(merged.stderr.contains(" seeds/min"), "{}", merged.stderr);
    assert!(!merged.stderr.contains("missing"), "{}", merged.stderr);

    // Pod 4 (index 3) never reported.
    let mut partial = vec!["merge", "--seeds", SEEDS, "--shards", &shards];
    partial.extend(files.iter().enumerate().filter(|(i, _)| *i != 3).map(|(_, f)| f.as_str()));
    let out = metasim(&partial);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains(&format!("missing: 3 of the 30 seeds of {SEEDS}")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("shard 4/{n}: missing (none of its 3 seeds reported)")), "{}", out.stdout);
    // Without the shard count, the seeds.
    partial.drain(3..5);
    let out = metasim(&partial);
    assert!(out.stdout.contains("missing seeds: 3, 13, 23"), "{}", out.stdout);

    // A pod's output given twice.
    let twice = metasim(&["merge", "--seeds", SEEDS, &files[0], &files[0], &files[1]]);
    assert_eq!(twice.code, 1);
    assert!(twice.stdout.contains("run twice: 3 seeds: 0 (2 times), 10 (2 times), 20 (2 times)"), "{}", twice.stdout);

    // Shards on stdin, as `kubectl logs` gives them: text lines mixed in.
    let mut child = Command::new(env!("CARGO_BIN_EXE_metasim"))
        .args(["merge", "--seeds", SEEDS, "--skip-text", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for f in &files {
        stdin.write_all(&std::fs::read(f).unwrap()).unwrap();
        stdin.write_all(b"profile default (meta), 3 seeds in 1.0s (180 seeds/min)\n").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("skipped {n} text lines")), "{stdout}");
    assert_eq!(tally(&stdout), tally(&serial.stderr));
}

#[test]
fn shard_from_env_takes_the_index_as_kubernetes_sets_it() {
    let args = ["fuzz", "--seeds", "0..20", "--shard-from-env", "4", "--json", "--findings", "/dev/null"];
    let pod = metasim_env(&args, &[("JOB_COMPLETION_INDEX", "2")]);
    assert_eq!(pod.code, 0, "{}", pod.stderr);
    let seeds: Vec<u64> = rows(&pod.stdout).iter().map(|r| r.0).collect();
    assert_eq!(seeds, [2, 6, 10, 14, 18], "index 2 of 4 is --shard 3/4");
    let same = metasim(&["fuzz", "--seeds", "0..20", "--shard", "3/4", "--json", "--findings", "/dev/null"]);
    assert_eq!(rows(&same.stdout), rows(&pod.stdout));

    for (value, want) in [
        ("4", "--shard-from-env: JOB_COMPLETION_INDEX = 4 is not below N = 4"),
        ("x", "--shard-from-env: JOB_COMPLETION_INDEX = `x`: invalid digit"),
        ("-1", "--shard-from-env: JOB_COMPLETION_INDEX = `-1`"),
    ] {
        let out = metasim_env(&args, &[("JOB_COMPLETION_INDEX", value)]);
        assert_eq!(out.code, 2, "{value}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{value}: {}", out.stderr);
    }
    let unset = Command::new(env!("CARGO_BIN_EXE_metasim"))
        .args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("JOB_COMPLETION_INDEX is not set"));
}

#[test]
fn merge_refuses_bad_input_with_its_file_and_line() {
    let dir = scratch("merge-bad");
    let good = metasim(&["fuzz", "--seeds", "0..2", "--json", "--findings", "/dev/null"]);
    let file = dir.join("s.jsonl");
    let cases: Vec<(String, String)> = vec![
        (format!("{}not json\n", good.stdout), "s.jsonl:3: not a `fuzz --json` line: not json".into()),
        (format!("{}{{\"seed\": 1}}\n", good.stdout), "s.jsonl:3: not a `fuzz --json` line: missing field".into()),
        (good.stdout.replace("\"pass\"", "\"maybe\""), "s.jsonl:1: unknown verdict `maybe`".into()),
        (
            format!("{}{}", good.stdout, good.stdout.replace("\"default\"", "\"disk\"")),
            "s.jsonl:3: profile disk, system meta, bugs [] differs from profile default".into(),
        ),
        ("\u{1b}[2J\n".into(), "s.jsonl:1: not a `fuzz --json` line: \\u{1b}[2J".into()),
    ];
    for (text, want) in cases {
        std::fs::write(&file, text).unwrap();
        let out = metasim(&["merge", file.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{want}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(&want), "want {want}\n got {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
    let out = metasim(&["merge", "/no/such/file"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("/no/such/file: No such file"), "{}", out.stderr);
    let out = metasim(&["merge", "--shards", "0", "--seeds", "0..2", "-"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--shards: must be between 1"), "{}", out.stderr);
}
