//! `merge`: one campaign from the `fuzz --json` lines of its shards (files or stdin).
//!
//! It prints what a single `fuzz` would have printed at the end: every failure with its
//! reproduce line, every excused run, seeds per minute and the tally, and it says which seeds
//! of the campaign's range are missing (by shard, given the shard count), which were run
//! twice (and whether the two runs disagree, which would be a determinism bug), and which lie
//! outside the range. Bad input is refused with the file and line, never by a panic.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use sim::scenario::{escape_control, excerpt};

use super::fuzz::{parse_range, tally, Findings, ShardSeeds};
use super::output::SeedResult;
use super::{flag_error, CliError};

/// `--shards` at most: missing seeds are counted shard by shard.
const SHARDS_MAX: u64 = 1_000_000;
/// Gaps, shards and seeds listed at most in each part of the report.
const LISTED_MAX: usize = 10;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard outputs (`fuzz --json` lines); `-` is stdin, which is also read when none is given.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The campaign's seed range (`A..B`, as given to fuzz): report seeds missing from it or
    /// outside it.
    #[arg(long, value_name = "A..B")]
    pub seeds: Option<String>,
    /// The campaign's shard count (`--shard K/N`'s N): count missing seeds shard by shard.
    #[arg(long, value_name = "N", requires = "seeds")]
    pub shards: Option<u64>,
    /// Write every failure, in seed order, to this findings file (replaced; fuzz's format).
    #[arg(long, value_name = "FILE")]
    pub findings: Option<PathBuf>,
    /// Print the merged results as JSON lines, one per seed in seed order; the report goes to
    /// stderr.
    #[arg(long)]
    pub json: bool,
    /// Skip lines that do not start with `{`: the text `fuzz` writes on stderr, which
    /// `kubectl logs` mixes into a pod's output.
    #[arg(long)]
    pub skip_text: bool,
}

/// Where a line came from, for messages.
#[derive(Clone, Debug)]
struct Origin {
    file: String,
    line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", escape_control(&self.file), self.line)
    }
}

/// The campaign the lines describe: one result per seed, and what was seen more than once.
#[derive(Default)]
struct Campaign {
    /// The first line read: every other must be of the same profile, system and bugs.
    first: Option<(SeedResult, Origin)>,
    results: BTreeMap<u64, SeedResult>,
    /// Seeds reported more than once, with how many times.
    twice: BTreeMap<u64, u64>,
    /// Seeds whose repeated runs gave another verdict or trace hash: (first, other).
    disagree: Vec<(SeedResult, SeedResult, Origin)>,
    lines: u64,
    skipped_text: u64,
}

impl Campaign {
    fn add(&mut self, result: SeedResult, origin: Origin) -> Result<(), CliError> {
        if !matches!(result.verdict.as_str(), "pass" | "fail" | "excused") {
            return Err(line_error(&origin, format!("unknown verdict `{}`", result.verdict)));
        }
        if let Some((first, at)) = &self.first {
            let what =
                |r: &SeedResult| format!("profile {}, system {}, bugs [{}]", r.profile, r.system, r.bugs.join(", "));
            if what(first) != what(&result) {
                let message = format!(
                    "{} differs from {} ({at}): the shards of one campaign run the same profile, system and bugs",
                    what(&result),
                    what(first)
                );
                return Err(line_error(&origin, message));
            }
        } else {
            self.first = Some((result.clone(), origin.clone()));
        }
        self.lines += 1;
        match self.results.get(&result.seed) {
            Some(kept) => {
                *self.twice.entry(result.seed).or_insert(1) += 1;
                if kept.verdict != result.verdict || kept.trace_hash != result.trace_hash {
                    self.disagree.push((kept.clone(), result, origin));
                }
            }
            None => {
                self.results.insert(result.seed, result);
            }
        }
        Ok(())
    }

    /// Read one input's lines.
    fn read(&mut self, name: &str, input: impl Read, skip_text: bool) -> Result<(), CliError> {
        let mut reader = BufReader::new(input);
        let mut buf = Vec::new();
        let mut line = 0;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| CliError::Io { path: format!("{name}:{}", line + 1), message: e.to_string() })?;
            if n == 0 {
                return Ok(());
            }
            line += 1;
            let origin = Origin { file: name.to_string(), line };
            let text = std::str::from_utf8(&buf).map_err(|e| line_error(&origin, format!("not UTF-8: {e}")))?;
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if !text.starts_with('{') {
                if skip_text {
                    self.skipped_text += 1;
                    continue;
                }
                let message = format!("not a `fuzz --json` line: {} (--skip-text skips text lines)", excerpt(text, 80));
                return Err(line_error(&origin, message));
            }
            let result: SeedResult = serde_json::from_str(text)
                .map_err(|e| line_error(&origin, format!("not a `fuzz --json` line: {e}: {}", excerpt(text, 80))))?;
            self.add(result, origin)?;
        }
    }
}

fn line_error(origin: &Origin, message: String) -> CliError {
    CliError::Io { path: format!("{}:{}", origin.file, origin.line), message }
}

/// Seeds of `range` not reported, as gaps `a..b` (at most `LISTED_MAX`), and how many in all.
/// Walks the reported seeds only: a range may be as long as `u64` allows.
fn missing_gaps(range: &Range<u64>, results: &BTreeMap<u64, SeedResult>) -> (u64, Vec<Range<u64>>) {
    let mut gaps = Vec::new();
    let mut count = 0;
    let mut next = range.start;
    let mut note = |gap: Range<u64>, gaps: &mut Vec<Range<u64>>| {
        count += gap.end - gap.start;
        if gaps.len() < LISTED_MAX {
            gaps.push(gap);
        }
    };
    for &seed in results.range(range.clone()).map(|(s, _)| s) {
        if seed > next {
            note(next..seed, &mut gaps);
        }
        next = seed + 1;
    }
    if next < range.end {
        note(next..range.end, &mut gaps);
    }
    (count, gaps)
}

fn show_gap(gap: &Range<u64>) -> String {
    if gap.end - gap.start == 1 {
        gap.start.to_string()
    } else {
        format!("{}..{}", gap.start, gap.end)
    }
}

/// Each shard that lacks seeds: `shard K/N: ...`.
fn missing_by_shard(range: &Range<u64>, shards: u64, results: &BTreeMap<u64, SeedResult>) -> Vec<String> {
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for &seed in results.range(range.clone()).map(|(s, _)| s) {
        *seen.entry(seed % shards).or_default() += 1;
    }
    let mut lines = Vec::new();
    let mut more = 0;
    for k in 0..shards {
        let expected = ShardSeeds::new(range.clone(), k, shards).remaining();
        let got = seen.get(&k).copied().unwrap_or(0);
        if got >= expected {
            continue;
        }
        if lines.len() >= LISTED_MAX {
            more += 1;
            continue;
        }
        let line = if got == 0 {
            format!("shard {}/{shards}: missing (none of its {expected} seeds reported)", k + 1)
        } else {
            // Walks at most the shard's reported seeds and a few missing ones.
            let first: Vec<String> = ShardSeeds::new(range.clone(), k, shards)
                .filter(|s| !results.contains_key(s))
                .take(5)
                .map(|s| s.to_string())
                .collect();
            format!(
                "shard {}/{shards}: {} of its {expected} seeds missing (first: {})",
                k + 1,
                expected - got,
                first.join(", ")
            )
        };
        lines.push(line);
    }
    if more > 0 {
        lines.push(format!("... and {more} more shards with missing seeds"));
    }
    lines
}

pub fn merge(args: MergeArgs) -> Result<ExitCode, CliError> {
    let range = args.seeds.as_deref().map(parse_range).transpose()?;
    if let Some(n) = args.shards {
        if n == 0 || n > SHARDS_MAX {
            return Err(flag_error("--shards", format!("must be between 1 and {SHARDS_MAX}, got {n}")));
        }
    }
    // Refused before reading anything: an unwritable findings file.
    let mut findings = match &args.findings {
        Some(path) => {
            std::fs::File::create(path)
                .map_err(|e| CliError::Io { path: path.display().to_string(), message: e.to_string() })?;
            Some(Findings::check(path)?)
        }
        None => None,
    };
    let mut campaign = Campaign::default();
    let inputs = if args.files.is_empty() { vec![PathBuf::from("-")] } else { args.files.clone() };
    for input in &inputs {
        if input == Path::new("-") {
            campaign.read("<stdin>", std::io::stdin().lock(), args.skip_text)?;
        } else {
            let name = input.display().to_string();
            let file =
                std::fs::File::open(input).map_err(|e| CliError::Io { path: name.clone(), message: e.to_string() })?;
            campaign.read(&name, file, args.skip_text)?;
        }
    }

    let mut report = Vec::new();
    match &campaign.first {
        Some((r, _)) => {
            let bugs = if r.bugs.is_empty() { "none".to_string() } else { r.bugs.join(", ") };
            report.push(format!(
                "campaign: profile {} ({}), bugs: {bugs}; {} lines from {} inputs",
                escape_control(&r.profile),
                escape_control(&r.system),
                campaign.lines,
                inputs.len()
            ));
        }
        None => report.push(format!("campaign: no results in {} inputs", inputs.len())),
    }
    if campaign.skipped_text > 0 {
        report.push(format!("skipped {} text lines", campaign.skipped_text));
    }
    let (mut passed, mut excused, mut failed) = (0, 0, 0);
    for r in campaign.results.values() {
        let violation = escape_control(r.violation.as_deref().unwrap_or("?")).into_owned();
        match r.verdict.as_str() {
            "pass" => passed += 1,
            "excused" => {
                excused += 1;
                report.push(format!("EXCUSED seed {}: {violation}", r.seed));
            }
            _ => {
                failed += 1;
                let reproduce = escape_control(r.reproduce.as_deref().unwrap_or("?")).into_owned();
                report.push(format!("FAIL seed {}: {violation}\n  reproduce: {reproduce}", r.seed));
                if let Some(f) = findings.as_mut() {
                    f.append(r)?;
                }
            }
        }
    }
    let mut incomplete = false;
    if !campaign.twice.is_empty() {
        incomplete = true;
        let listed: Vec<String> =
            campaign.twice.iter().take(LISTED_MAX).map(|(s, n)| format!("{s} ({n} times)")).collect();
        let more = campaign.twice.len().saturating_sub(LISTED_MAX);
        let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
        report.push(format!("run twice: {} seeds: {}{tail}", campaign.twice.len(), listed.join(", ")));
    }
    for (kept, other, at) in &campaign.disagree {
        report.push(format!(
            "NONDETERMINISTIC seed {}: {} {} here, {} {} at {at}",
            kept.seed, kept.verdict, kept.trace_hash, other.verdict, other.trace_hash
        ));
    }
    if let Some(range) = &range {
        let outside: Vec<u64> = campaign.results.keys().copied().filter(|s| !range.contains(s)).collect();
        if !outside.is_empty() {
            incomplete = true;
            let listed: Vec<String> = outside.iter().take(LISTED_MAX).map(u64::to_string).collect();
            report.push(format!(
                "outside the range {}..{}: {} seeds: {}",
                range.start,
                range.end,
                outside.len(),
                listed.join(", ")
            ));
        }
        let (count, gaps) = missing_gaps(range, &campaign.results);
        if count > 0 {
            incomplete = true;
            report.push(format!(
                "missing: {count} of the {} seeds of {}..{}",
                range.end - range.start,
                range.start,
                range.end
            ));
            match args.shards {
                Some(n) => {
                    report.extend(missing_by_shard(range, n, &campaign.results).into_iter().map(|l| format!("  {l}")))
                }
                None => {
                    let listed: Vec<String> = gaps.iter().map(show_gap).collect();
                    report.push(format!(
                        "  missing seeds: {}{}",
                        listed.join(", "),
                        if gaps.len() == LISTED_MAX { ", ..." } else { "" }
                    ));
                }
            }
        }
    }
    report.push(speed(&campaign.results));
    report.push(tally(passed, excused, failed));
    if failed > 0 {
        if let Some(path) = &args.findings {
            report.push(format!("findings written to {}", escape_control(&path.display().to_string())));
        }
    }

    if args.json {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for r in campaign.results.values() {
            use std::io::Write;
            let line = serde_json::to_string(r).map_err(|e| CliError::Other(e.to_string()))?;
            writeln!(out, "{line}").map_err(|e| CliError::Other(format!("stdout: {e}")))?;
        }
        for line in report {
            eprintln!("{line}");
        }
    } else {
        for line in report {
            println!("{line}");
        }
    }
    Ok(if failed == 0 && !incomplete && campaign.disagree.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Seeds per minute: over the campaign's span when the lines say when they were reported
/// (`fuzz` stamps them), else from the runs' own wall times (one worker's rate).
fn speed(results: &BTreeMap<u64, SeedResult>) -> String {
    let n = results.len() as u64;
    let run_ms: u64 = results.values().map(|r| r.wall_ms).sum();
    let stamped: Vec<(u64, u64)> =
        results.values().filter_map(|r| r.done_unix_ms.map(|d| (d.saturating_sub(r.wall_ms), d))).collect();
    if !stamped.is_empty() && stamped.len() as u64 == n {
        let start = stamped.iter().map(|s| s.0).min().unwrap_or(0);
        let end = stamped.iter().map(|s| s.1).max().unwrap_or(0);
        let span = (end - start).max(1) as f64 / 1000.0;
        format!(
            "{n} seeds in {span:.1}s ({:.0} seeds/min; the seeds themselves ran {:.1}s)",
            n as f64 * 60.0 / span,
            run_ms as f64 / 1000.0
        )
    } else {
        format!(
            "{n} seeds; the seeds ran {:.1}s ({:.0} seeds/min for one worker)",
            run_ms as f64 / 1000.0,
            n as f64 * 60_000.0 / run_ms.max(1) as f64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seed: u64, verdict: &str, hash: &str) -> SeedResult {
        SeedResult {
            seed,
            system: "meta".into(),
            profile: "default".into(),
            bugs: vec![],
            verdict: verdict.into(),
            trace_hash: hash.into(),
            events: 1,
            sim_ms: 1,
            wall_ms: 1,
            violation: None,
            reproduce: None,
            recent: vec![],
            coverage: None,
            file: None,
            done_unix_ms: None,
        }
    }

    fn campaign(seeds: &[u64]) -> Campaign {
        let mut c = Campaign::default();
        for (i, &s) in seeds.iter().enumerate() {
            c.add(result(s, "pass", "00"), Origin { file: "x".into(), line: i + 1 }).unwrap();
        }
        c
    }

    #[test]
    fn gaps_and_shards_name_what_is_missing() {
        let c = campaign(&[0, 1, 3, 4, 6, 7, 9]);
        let (count, gaps) = missing_gaps(&(0..12), &c.results);
        assert_eq!(count, 5);
        assert_eq!(gaps, vec![2..3, 5..6, 8..9, 10..12]);
        let lines = missing_by_shard(&(0..12), 3, &c.results);
        assert_eq!(
            lines,
            ["shard 2/3: 1 of its 4 seeds missing (first: 10)", "shard 3/3: missing (none of its 4 seeds reported)"]
        );
        let (count, _) = missing_gaps(&(0..u64::MAX), &c.results);
        assert_eq!(count, u64::MAX - 7, "a huge range is never walked");
    }

    #[test]
    fn bad_lines_name_their_file_and_line() {
        let mut c = Campaign::default();
        let e = c.read("s.jsonl", &b"\n{\"seed\":1}\n"[..], false).unwrap_err().to_string();
        assert!(e.starts_with("s.jsonl:2: not a `fuzz --json` line: missing field"), "{e}");
        let e = Campaign::default().read("s.jsonl", &b"4 passed, 0 failed\n"[..], false).unwrap_err().to_string();
        assert!(e.starts_with("s.jsonl:1: not a `fuzz --json` line: 4 passed"), "{e}");
        let mut c = Campaign::default();
        c.read("s.jsonl", &b"4 passed, 0 failed\n"[..], true).unwrap();
        assert_eq!(c.skipped_text, 1);
        let e = Campaign::default().read("s.jsonl", &b"{\xff}\n"[..], false).unwrap_err().to_string();
        assert!(e.starts_with("s.jsonl:1: not UTF-8"), "{e}");
    }

    #[test]
    fn a_seed_run_twice_is_counted_and_a_disagreement_named() {
        let mut c = campaign(&[1, 2]);
        c.add(result(2, "pass", "00"), Origin { file: "y".into(), line: 1 }).unwrap();
        c.add(result(2, "fail", "ff"), Origin { file: "y".into(), line: 2 }).unwrap();
        assert_eq!(c.twice.get(&2), Some(&3));
        assert_eq!(c.disagree.len(), 1);
        let mut other = result(3, "pass", "00");
        other.profile = "disk".into();
        let e = c.add(other, Origin { file: "z".into(), line: 7 }).unwrap_err().to_string();
        assert!(e.starts_with("z:7: profile disk"), "{e}");
    }
}
