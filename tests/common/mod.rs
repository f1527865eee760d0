//! Helpers for driving the `metasim` binary from tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.lines().find_map(|l| l.strip_prefix(prefix))
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn metasim(args: &[&str]) -> Outcome {
    metasim_env(args, &[])
}

/// A scratch directory unique to one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("metasim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `fuzz --json` lines as (seed, verdict, trace hash).
pub fn fuzz_hashes(args: &[&str]) -> Vec<(u64, String, String)> {
    let mut full = vec!["fuzz", "--json"];
    full.extend_from_slice(args);
    let out = metasim(&full);
    assert!(out.code == 0 || out.code == 1, "fuzz failed: {}", out.stderr);
    rows(&out.stdout)
}

/// `metasim` with extra environment variables (and the rest of the test's environment).
pub fn metasim_env(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_metasim"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .env_remove("RUST_LOG")
        .output()
        .expect("run metasim");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// (seed, verdict, trace hash) of JSON result lines, sorted by seed.
pub fn rows(json_lines: &str) -> Vec<(u64, String, String)> {
    let mut rows: Vec<(u64, String, String)> = json_lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            (
                v["seed"].as_u64().unwrap(),
                v["verdict"].as_str().unwrap().to_string(),
                v["trace_hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}
