//! Explaining failures: shrink, timeline, diff, readable events and what a failure offers.

mod common;

use common::{metasim, root, scratch};

fn steps_of(path: &std::path::Path) -> usize {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc.get("step").and_then(|s| s.as_array()).map_or(0, |a| a.len())
}

/// Every `at_ms` of a scenario file's steps.
fn step_times(path: &std::path::Path) -> Vec<i64> {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps = doc.get("step").and_then(|s| s.as_array()).cloned().unwrap_or_default();
    steps.iter().filter_map(|s| s.get("at_ms").and_then(|t| t.as_integer())).collect()
}

/// A count a shrink printed on the line starting with `prefix` (`repeats: 9 candidates ...`).
/// `metasim shrink` of the fixture `tests/shrink/NAME` within `budget` runs, asserting it
/// ends well and with `invariant`: the fixture's path, the shrunk file's, and the outcome.
fn shrink_fixture(
    name: &str,
    budget: &str,
    invariant: &str,
) -> (std::path::PathBuf, std::path::PathBuf, common::Outcome) {
    let stuck = root().join("tests/shrink").join(name);
    let min = scratch(&format!("shrink-{}", name.trim_end_matches(".toml"))).join("min.toml");
    let out = metasim(&["shrink", stuck.to_str().unwrap(), "--budget", budget, "-o", min.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.line("invariant: "), Some(invariant), "{}", out.stdout);
    (stuck, min, out)
}

fn count_on(out: &common::Outcome, prefix: &str) -> u32 {
    let line = out.line(prefix).unwrap_or_else(|| panic!("no {prefix} line:\n{}", out.stdout));
    line.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// The `passes:` line: each pass's name, the runs charged to it and the steps it removed.
fn pass_tally(out: &common::Outcome) -> Vec<(String, u32, usize)> {
    let line = out.line("passes: ").unwrap_or_else(|| panic!("no passes: line:\n{}", out.stdout));
    let line = line.strip_suffix(" (and the first run)").unwrap_or_else(|| panic!("{line}"));
    line.split(", ")
        .map(|item| {
            let words: Vec<&str> = item.rsplitn(5, ' ').collect();
            let [steps_word, removed, runs_word, runs, name] = words[..] else { panic!("{item}") };
            assert_eq!((runs_word, steps_word), ("runs", "steps"), "{item}");
            let removed = removed.strip_prefix('-').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{item}"));
            (name.to_string(), runs.parse().unwrap_or_else(|_| panic!("{item}")), removed)
        })
        .collect()
}

/// The number before `word` in the line that starts with `prefix` (`after: ... (812 runs)`).
fn number_before(out: &common::Outcome, prefix: &str, word: &str) -> usize {
    let line = out.line(prefix).unwrap_or_else(|| panic!("no {prefix} line:\n{}", out.stdout));
    let at = line.find(&format!(" {word}")).unwrap_or_else(|| panic!("{line}"));
    let digits = line[..at].rsplit(|c: char| !c.is_ascii_digit()).next().unwrap_or_default();
    digits.parse().unwrap_or_else(|_| panic!("{line}"))
}

/// What a shrink left: its output and the shrunk file.
struct Shrunk {
    out: common::Outcome,
    min: std::path::PathBuf,
}

/// Shrink a corpus seed within `budget` runs: the result is a file that `run` fails with the
/// same invariant, with fewer steps than the seed's scenario.
fn shrinks(seed: &str, bug: &str, invariant: &str, budget: &str) -> Shrunk {
    let dir = scratch(&format!("shrink-{bug}"));
    let full = dir.join("full.toml");
    let min = dir.join("min.toml");
    let out = metasim(&["export", "--seed", seed, "-o", full.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = metasim(&["shrink", "--seed", seed, "--bug", bug, "--budget", budget, "-o", min.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.line("invariant: "), Some(invariant), "{}", out.stdout);
    assert!(out.line("before: ").is_some() && out.line("after: ").is_some(), "{}", out.stdout);
    let (before, after) = (steps_of(&full), steps_of(&min));
    assert!(after < before, "{after} steps of {before}:\n{}", out.stdout);
    // The file alone (its bug switch inside) fails `run` the same way.
    let again = metasim(&["run", min.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert_eq!(again.line("verdict: "), Some("fail"));
    assert!(again.line("violation: ").is_some_and(|l| l.starts_with(invariant)), "{}", again.stdout);
    assert_eq!(again.line("expected: "), Some("fail (as expected)"));
    Shrunk { out, min }
}

/// Seed 1 also shrinks the same way twice: the same output, the same file.
#[test]
fn shrink_keeps_the_invariant_of_the_leader_barrier_seed() {
    let first = shrinks("1", "meta-leader-before-barrier", "meta-leader-apply-barrier", "60");
    let dir = scratch("shrink-again");
    let min = dir.join("min.toml");
    let out = metasim(&[
        "shrink",
        "--seed",
        "1",
        "--bug",
        "meta-leader-before-barrier",
        "--budget",
        "60",
        "-o",
        min.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let without_path = |s: &str| s.lines().filter(|l| !l.starts_with("wrote ")).collect::<Vec<_>>().join("\n");
    assert_eq!(without_path(&out.stdout), without_path(&first.out.stdout));
    assert_eq!(std::fs::read_to_string(&min).unwrap(), std::fs::read_to_string(&first.min).unwrap());
}

/// ddmin's complements start where the last one went: the chunks before it have just failed
/// to go. A shrink of the leader-barrier seed within 45 runs ends at 5 steps; from the first
/// chunk every time, it ended at 6 (and on `elections` 125, at 252 steps of 808 against 76).
#[test]
fn ddmin_goes_on_from_the_complement_that_went() {
    let shrunk = shrinks("1", "meta-leader-before-barrier", "meta-leader-apply-barrier", "45");
    assert_eq!(number_before(&shrunk.out, "after: ", "runs)"), 45, "{}", shrunk.out.stdout);
    assert_eq!(steps_of(&shrunk.min), 5, "{}", shrunk.out.stdout);
}

/// A file whose 2 steps cannot go alone, under its seed or the reseeded removals' other seeds
/// (`tests/shrink/`, a shrink of `meta-no-inflight` cut short just before its first move):
/// within 320 runs the round that removes nothing is followed by steps moved earlier, and the
/// file keeps its steps, one of them earlier than in the input. Candidates the first round's
/// single removals try again after ddmin are answered without running them.
#[test]
fn shrink_moves_a_step_and_answers_repeats_from_memory() {
    let (stuck, min, out) = shrink_fixture("no-inflight-moves.toml", "320", "meta-idempotent-create");
    assert!(count_on(&out, "moves: ") > 0, "{}", out.stdout);
    assert!(count_on(&out, "repeats: ") > 0, "{}", out.stdout);
    // Every run but the first is charged to a pass, and the passes removed every step that went.
    let tally = pass_tally(&out);
    let runs: u32 = tally.iter().map(|t| t.1).sum();
    let removed: usize = tally.iter().map(|t| t.2).sum();
    assert_eq!(runs as usize + 1, number_before(&out, "after: ", "runs)"), "{}", out.stdout);
    let (before, after) = (number_before(&out, "before: ", "steps"), number_before(&out, "after: ", "steps"));
    assert_eq!(removed, before - after, "{}", out.stdout);
    assert!(tally.iter().any(|t| t.0 == "moves" && t.1 > 0), "{}", out.stdout);
    // It spends the whole budget, and says so.
    assert_eq!(number_before(&out, "after: ", "runs)"), 320, "{}", out.stdout);
    assert!(out.line("ended: ").is_some_and(|l| l.starts_with("the budget of 320 runs was spent")), "{}", out.stdout);
    // The same steps, none later and one earlier: moves only go earlier.
    let (before, after) = (step_times(&stuck), step_times(&min));
    assert_eq!(before.len(), after.len(), "{}", out.stdout);
    assert!(before.iter().zip(&after).all(|(b, a)| a <= b), "{before:?} -> {after:?}");
    assert_ne!(before, after, "no step of the shrunk file was moved:\n{}", out.stdout);
}

/// A file where a shrink of `online-from-raft-contact` restarts 504 had just finished a round that
/// removed nothing under its seed (`tests/shrink/`, cut short there): within 250 runs a step goes
/// under another seed, the shrunk file carries that seed, `run` fails it with the same
/// invariant, and `reseeds:` counts it.
#[test]
fn shrink_removes_a_step_under_another_seed() {
    let (stuck, min, out) =
        shrink_fixture("online-from-raft-contact-reseeds.toml", "250", "meta-placement-online-quorum");
    assert!(count_on(&out, "reseeds: ") > 0, "{}", out.stdout);
    assert!(steps_of(&min) < steps_of(&stuck), "{} steps of {}:\n{}", steps_of(&min), steps_of(&stuck), out.stdout);
    let seed_of = |path: &std::path::Path| {
        let doc: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        doc.get("seed").and_then(|s| s.as_integer()).unwrap()
    };
    assert_eq!(seed_of(&stuck), 504);
    assert_ne!(seed_of(&min), 504, "the shrunk file keeps the stuck file's seed");
    let again = metasim(&["run", min.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(
        again.line("violation: ").is_some_and(|l| l.starts_with("meta-placement-online-quorum")),
        "{}",
        again.stdout
    );
    assert_eq!(again.line("expected: "), Some("fail (as expected)"));
}

/// A file where a shrink of `raft-commit-old-term` default 1836 was about to take its first
/// step under the more seeds (`tests/shrink/`): no step goes under its seed or the first set of
/// other seeds, and the steps moved earlier let none go. The next sets of seeds are tried
/// before the shrink ends, and they take steps; the file still fails `run` the same way.
#[test]
fn shrink_tries_more_seeds_once_no_step_can_move() {
    let (stuck, min, out) = shrink_fixture("commit-old-term-more-seeds.toml", "3000", "raft-leader-completeness");
    let tally = pass_tally(&out);
    let took = |name: &str| tally.iter().find(|t| t.0 == name).map(|t| t.2);
    assert_eq!(took("reseeded removals"), Some(0), "{}", out.stdout);
    assert_eq!(took("moves"), Some(0), "{}", out.stdout);
    assert!(took("removals under more seeds").is_some_and(|n| n > 0), "{}", out.stdout);
    // It ends before its budget, and says a larger one would end the same way.
    assert!(number_before(&out, "after: ", "runs)") < 3000, "{}", out.stdout);
    assert!(out.line("ended: ").is_some_and(|l| l.starts_with("before the budget")), "{}", out.stdout);
    assert!(steps_of(&min) < steps_of(&stuck), "{} steps of {}:\n{}", steps_of(&min), steps_of(&stuck), out.stdout);
    let again = metasim(&["run", min.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(again.line("violation: ").is_some_and(|l| l.starts_with("raft-leader-completeness")), "{}", again.stdout);
}

/// Candidates run several at once shrink to the same file in the same runs as one at a time:
/// a run made ahead of need is charged only when the shrink asks for it.
#[test]
fn shrink_is_the_same_with_any_number_of_jobs() {
    let stuck = root().join("tests/shrink/no-inflight-moves.toml");
    let dir = scratch("shrink-jobs");
    let shrink = |jobs: &str| {
        let min = dir.join(format!("min-{jobs}.toml"));
        let out = metasim(&[
            "shrink",
            stuck.to_str().unwrap(),
            "--budget",
            "300",
            "--jobs",
            jobs,
            "-o",
            min.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let report: Vec<String> = out
            .stdout
            .lines()
            .filter(|l| !l.starts_with("wrote ") && !l.starts_with("jobs: "))
            .map(str::to_string)
            .collect();
        (report, std::fs::read_to_string(&min).unwrap(), out)
    };
    let (one_report, one_file, one) = shrink("1");
    let (three_report, three_file, three) = shrink("3");
    assert_eq!(one_report, three_report);
    assert_eq!(one_file, three_file);
    assert_eq!(one.line("jobs: "), None, "{}", one.stdout);
    let beside = count_on(&three, "jobs: 3 (");
    assert!(beside > 100, "{}", three.stdout);
}

#[test]
fn shrink_refuses_a_run_that_passes_and_a_bad_file() {
    let dir = scratch("shrink-pass");
    let out = metasim(&["shrink", "--seed", "2", "--budget", "5", "-o", dir.join("m.toml").to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("nothing to shrink"), "{}", out.stderr);
    assert!(!dir.join("m.toml").exists());
    let out = metasim(&["shrink", "no/such/file.toml"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no/such/file.toml"), "{}", out.stderr);
    // An output it could not write is refused before the first run, not after the shrink.
    let fixture = root().join("tests/shrink/commit-old-term-more-seeds.toml");
    let nowhere = dir.join("no-such-folder/m.toml");
    for output in [nowhere.as_path(), dir.as_path()] {
        let out = metasim(&["shrink", fixture.to_str().unwrap(), "-o", output.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{}", out.stdout);
        assert!(out.stderr.contains(output.to_str().unwrap()), "{}", out.stderr);
        assert!(out.line("before: ").is_none(), "it ran first:\n{}", out.stdout);
    }
}

/// The page of a failing run: one lane per server, the failure marker with its invariant, and
/// nothing fetched from elsewhere.
#[test]
fn timeline_holds_a_lane_per_server_and_the_failure_marker() {
    let dir = scratch("timeline");
    let page = dir.join("run.html");
    let out =
        metasim(&["timeline", "--seed", "1", "--bug", "meta-leader-before-barrier", "-o", page.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    let lanes: Vec<&str> =
        html.match_indices(r#"<g class="lane" data-node=""#).map(|(i, _)| &html[i + 27..i + 28]).collect();
    assert_eq!(lanes, vec!["0", "1", "2", "3", "4"]);
    assert_eq!(html.matches(r#"id="failure""#).count(), 1);
    assert!(html.contains(r#"data-invariant="meta-leader-apply-barrier""#));
    assert!(html.contains("class=\"bar leader\""), "meta leadership is drawn");
    assert!(html.contains("class=\"bar up\""), "server status is drawn");
    for fetch in ["src=", "href=", "<link", "url(", "@import", "fetch("] {
        assert!(!html.contains(fetch), "the page fetches something: {fetch}");
    }
    // A passing run has lanes and no marker.
    let out = metasim(&["timeline", "--seed", "2", "-o", page.to_str().unwrap()]);
    assert_eq!(out.code, 0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches(r#"<g class="lane""#).count(), 5);
    assert!(!html.contains(r#"id="failure""#));
}

/// The same page in a real headless browser (scripts/timeline-check); skipped when no
/// Chromium is installed.
#[test]
fn timeline_renders_in_a_headless_browser() {
    let browser = ["chromium", "chromium-browser", "google-chrome"].iter().any(|b| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !browser {
        eprintln!("no chromium on PATH: timeline_renders_in_a_headless_browser skipped");
        return;
    }
    let dir = scratch("timeline-browser");
    let out = std::process::Command::new(root().join("scripts/timeline-check"))
        .args(["--bin", env!("CARGO_BIN_EXE_metasim"), "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("timeline-check: ok (5 lanes"), "{text}");
}

/// The fixture-os-time switch jitters timers by the OS clock: two runs of one seed part at
/// the first timer, and the diff says so; a trace diffed with itself is identical.
#[test]
fn diff_finds_the_planted_divergence_at_the_first_timer() {
    let dir = scratch("diff");
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    for t in [&a, &b] {
        let args = [
            "replay",
            "--system",
            "register",
            "--seed",
            "3",
            "--bug",
            "fixture-os-time",
            "--trace-out",
            t.to_str().unwrap(),
        ];
        assert_eq!(metasim(&args).code, 0);
    }
    let out = metasim(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let at: usize = out.line("differ at event #").expect("names the event").trim().parse().unwrap();
    let trace = std::fs::read_to_string(&a).unwrap();
    let first_timer = trace.lines().position(|l| l.contains(r#""kind":"timer""#)).unwrap();
    assert_eq!(at, first_timer, "{}", out.stdout);
    let marked: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("  > ")).collect();
    assert_eq!(marked.len(), 2, "{}", out.stdout);
    assert!(marked.iter().all(|l| l.contains(" timer ") && l.contains(&format!("#{at} "))), "{}", out.stdout);
    assert_ne!(marked[0], marked[1]);

    let same = metasim(&["diff", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(same.code, 0, "{}", same.stdout);
    assert!(same.stdout.contains("identical: "), "{}", same.stdout);
    let bad = metasim(&["diff", a.to_str().unwrap(), dir.join("missing.jsonl").to_str().unwrap()]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("missing.jsonl"), "{}", bad.stderr);
}

/// `--against` runs the seed on both binaries; the same binary gives the same trace.
#[test]
fn diff_against_the_same_binary_is_identical() {
    let out = metasim(&[
        "diff",
        "--seed",
        "1",
        "--bug",
        "meta-leader-before-barrier",
        "--against",
        env!("CARGO_BIN_EXE_metasim"),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.line("identical: ").is_some_and(|l| l.starts_with("687 events")), "{}", out.stdout);
}

/// A failure names what happened in words, shows the events of what it names, and offers the
/// commands that explain it.
#[test]
fn a_failure_reads_in_words_and_offers_shrink_and_timeline() {
    let out = metasim(&["replay", "--seed", "3", "--bug", "meta-leader-before-barrier"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.line("trace-hash: "), Some("be540e9055b06c38"), "details do not change the hash");
    assert!(out.stdout.contains("events of n1, meta before it:"), "{}", out.stdout);
    assert!(
        out.stdout.contains(" apply ") && out.stdout.contains("meta#33 t10 AssignStream A:S1 -> S-R3-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(r#"{"name":"S1","subjects":["s1.>"],"replicas":3}"#),
        "configs as JSON text:\n{}",
        out.stdout
    );
    assert!(!out.stdout.contains("[123, 34"), "no config as a byte array:\n{}", out.stdout);
    let reproduce = out.line("reproduce: ").unwrap();
    assert_eq!(reproduce, "metasim replay --seed 3 --profile default --bug meta-leader-before-barrier");
    assert_eq!(
        out.line("shrink: "),
        Some("metasim shrink --seed 3 --profile default --bug meta-leader-before-barrier -o min.toml")
    );
    assert_eq!(
        out.line("timeline: "),
        Some("metasim timeline --seed 3 --profile default --bug meta-leader-before-barrier -o run.html")
    );
    // The log too: requests with their ids, answers in words.
    let log = metasim(&["replay", "--seed", "3", "--bug", "meta-leader-before-barrier", "--log"]);
    assert!(
        log.stderr.contains(r#" request "#) && log.stderr.contains(r#"#1 at n"#),
        "{}",
        &log.stderr[..2000.min(log.stderr.len())]
    );
    assert!(log.stderr.contains(": error stream A:S0 not found"), "answers in words");
    assert!(
        log.stderr.contains(" local ") && log.stderr.contains("run stream A:S1 created "),
        "local effects in words"
    );
    assert!(!log.stderr.contains("RunStream { key"), "no local effect in its debug form");
    assert!(!log.stderr.contains("config_json: [123"), "configs as text in the log");
    // Raft messages in words: group, term, log position, the entries an append carries.
    assert!(log.stderr.contains(": meta RequestVote t1 log 0@t0"), "vote requests in words");
    assert!(log.stderr.contains(": meta Append t1 after 0@t0 commit 0 base [0,1,2,3,4]: #1 t1 LeaderNoop"));
    let carries_op =
        |l: &str| l.contains(" recv ") && l.contains(": meta Append t") && l.contains("AssignStream A:S1 -> S-R3-");
    assert!(log.stderr.lines().any(carries_op), "meta ops an append carries");
    assert!(log.stderr.contains(": meta heartbeat t1 after "), "heartbeats named as such");
    assert!(!log.stderr.contains("Raft { group"), "no raft message in its debug form");
}

/// The event log says what happened in words, never in a Rust debug form: a default seed with
/// faults (power loss, partitions, clogs, an isolation), client ops, requests passed on to the
/// leader, answers, info requests, publishes and raft signals. Configs show as their JSON text,
/// which is the only place a brace may appear (`{"name":...}`, no space after it).
#[test]
fn the_event_log_reads_in_words() {
    let log = metasim(&["replay", "--seed", "3", "--profile", "default", "--log"]);
    assert_eq!(log.code, 0, "{}", log.stdout);
    let debug_forms = ["{ ", " }", "Some(", "None", "StreamKey", "ConsumerKey", "\\\"", "(Startup", "Catchup"];
    let mut kinds = std::collections::BTreeSet::new();
    for line in log.stderr.lines() {
        let kind = line.split_whitespace().nth(3).unwrap_or_default();
        kinds.insert(kind.to_string());
        if let Some(form) = debug_forms.iter().find(|f| line.contains(*f)) {
            panic!("a debug form ({form}) in the log: {line}");
        }
    }
    for kind in ["power-loss", "partition", "partition-one-way", "clog", "isolate", "signal", "publish", "answer"] {
        assert!(kinds.contains(kind), "the seed no longer has a {kind} event: {kinds:?}");
    }
    for words in [
        " world partition      b031ba884ecf9c40  partition [0,3] | [1,2,4]",
        "partition-one-way [3] -> [1]",
        " world power-loss     4124bc16a593196b  power-loss n2",
        " world clog           8ae266070f9a6fd0  clog n3",
        "  client at n0: update stream A:S2 subjects s2.> R3",
        " n0    client         152fdacd0e0258c0  update stream A:S2 subjects s2.> R3",
        r#" n0    request        a647f878e4352a40  #6 at n0: update stream A:S2 {"name":"S2","subjects":["s2.>"],"replicas":3}"#,
        r#" n4    request        d27a19e786664b57  #1 at n4: create consumer A:S0:C2 {"durable_name":"C2","replicas":0}"#,
        " n1    recv           ec250f8e59ee9616  from n4: request #19 delete consumer A:S3:C1",
        " n2    recv           2dd0eb698c938b16  from n1: answer #10: error stream A:S1 not found",
        " n4    answer         bf9889493b7892f2  #26: ok leader stepped down",
        " n4    info-request   2d60dbb14046c231  #3 A:S2",
        " n1    publish        0a8c2f4514f93da0  #2 4 messages to A:S0",
        " n1    signal         604460fa803cfb5a  meta: became leader t1",
        " n1    meta-leader    7194f3e59ae47dcd  leads t1",
        " n1    stepdown       c852ad84b58fd1b1  for n4#26",
        " n2    meta-recovered ee85fafd354b0935  startup at meta#0, 0 staged",
    ] {
        assert!(log.stderr.contains(words), "no `{words}` in the log");
    }
}
