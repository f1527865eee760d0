//! The deployment recipes cannot run here (no GitHub runner, no Kubernetes cluster), so these
//! tests read them and check they run what the README says: the CI workflow's commands, its
//! shard matrix against `--shard K/N` and the merge's `--shards N`, and the Kubernetes Job's
//! indexed completions against `--shard-from-env N`.

mod common;

use common::root;
use serde_yaml::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every command line of the README's ```sh blocks, comments and prompts stripped.
fn readme_commands() -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in read("README.md").lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if in_sh {
            let command = line.split(" #").next().unwrap_or_default().trim();
            if !command.is_empty() && !command.starts_with('#') {
                out.push(command.to_string());
            }
        }
    }
    out
}

/// The `run:` commands of a workflow job, one per line, with the build path and the matrix
/// expression written as the README writes them (`metasim`, `K`) and no `|| ...` tail.
fn run_lines(job: &Value) -> Vec<String> {
    job["steps"]
        .as_sequence()
        .expect("steps")
        .iter()
        .filter_map(|s| s["run"].as_str())
        .flat_map(|r| r.lines().map(str::trim).map(str::to_string).collect::<Vec<_>>())
        // `cmd || status=$?` keeps a step going on exit 1: the command is what precedes it.
        .map(|l| l.split(" || ").next().unwrap_or_default().to_string())
        .map(|l| l.replace("target/release/metasim", "metasim").replace("${{ matrix.shard }}", "K"))
        .collect()
}

/// The value after `flag` in a command line.
fn flag<'a>(command: &'a str, flag: &str) -> &'a str {
    let mut words = command.split_whitespace();
    words.find(|w| *w == flag).unwrap_or_else(|| panic!("{flag} missing in {command}"));
    words.next().unwrap_or_else(|| panic!("{flag} without a value in {command}"))
}

#[test]
fn pull_requests_run_the_readme_test_command() {
    let workflow = yaml(".github/workflows/ci.yml");
    assert!(workflow["on"].get("pull_request").is_some(), "runs on pull requests");
    let test = &workflow["jobs"]["test"];
    assert!(test["if"].as_str().unwrap().contains("pull_request"));
    let readme = readme_commands();
    assert!(readme.iter().any(|c| c == "cargo test --workspace"), "the README's test command");
    assert_eq!(run_lines(test), ["cargo test --workspace"]);
    assert!(read(".ci/run").contains("cargo test --workspace"), "and .ci/run's");
}

#[test]
fn nightly_shards_match_the_matrix_the_merge_and_the_readme() {
    let workflow = yaml(".github/workflows/ci.yml");
    assert!(workflow["on"]["schedule"][0]["cron"].as_str().is_some(), "runs nightly");
    let shard = &workflow["jobs"]["shard"];
    let matrix: Vec<u64> =
        shard["strategy"]["matrix"]["shard"].as_sequence().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let n = matrix.len() as u64;
    assert_eq!(matrix, (1..=n).collect::<Vec<_>>(), "the matrix lists shards 1..=N");

    let readme = readme_commands();
    let fuzz = run_lines(shard).into_iter().find(|l| l.starts_with("metasim fuzz")).expect("a fuzz step");
    assert_eq!(flag(&fuzz, "--shard"), format!("K/{n}"), "--shard K/N with N the matrix's size");
    assert!(fuzz.contains("--json"));
    assert!(readme.contains(&fuzz), "the README shows the shard's command: {fuzz}");

    let merge_job = &workflow["jobs"]["merge"];
    assert_eq!(merge_job["needs"].as_str(), Some("shard"));
    let merge = run_lines(merge_job).into_iter().find(|l| l.starts_with("metasim merge")).expect("a merge step");
    assert_eq!(flag(&merge, "--shards"), n.to_string());
    assert_eq!(flag(&merge, "--seeds"), flag(&fuzz, "--seeds"), "the merge expects the range the shards ran");
    assert!(readme.contains(&merge), "the README shows the merge: {merge}");
    let findings = flag(&merge, "--findings");
    let uploaded = merge_job["steps"].as_sequence().unwrap().iter().any(|s| {
        s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact"))
            && s["with"]["path"].as_str() == Some(findings)
    });
    assert!(uploaded, "the merged findings ({findings}) are uploaded");
}

#[test]
fn the_kubernetes_job_runs_indexed_shards_as_the_readme_merges_them() {
    let job = yaml("deploy/k8s/job.yaml");
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_u64().unwrap();
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let command = format!("metasim {}", args.join(" "));
    assert_eq!(flag(&command, "--shard-from-env"), n.to_string(), "one shard per completion index");
    assert!(args.contains(&"--json"));
    assert_eq!(spec["template"]["spec"]["restartPolicy"].as_str(), Some("Never"));

    let readme = readme_commands();
    assert!(readme.iter().any(|c| c == "kubectl apply -f deploy/k8s/job.yaml"));
    let merge = readme
        .iter()
        .find(|c| c.starts_with("metasim merge") && c.contains("--skip-text"))
        .expect("a merge of pod logs");
    assert_eq!(flag(merge, "--shards"), n.to_string());
    assert_eq!(flag(merge, "--seeds"), flag(&command, "--seeds"));
    let build = readme.iter().find(|c| c.starts_with("docker build")).expect("the image build");
    assert!(build.contains("-f deploy/k8s/Dockerfile"));
    assert_eq!(flag(build, "-t"), container["image"].as_str().unwrap().trim_end_matches(":latest"));

    let dockerfile = read("deploy/k8s/Dockerfile");
    assert!(dockerfile.lines().filter(|l| l.starts_with("FROM ")).count() >= 2, "multi-stage");
    assert!(dockerfile.contains("cargo build --release"));
    assert!(dockerfile.contains("COPY --from=build /src/target/release/metasim"));
}
