//! Worker processes for `fuzz` and `coverage`. Each worker runs a chunk of runs (seeds, or
//! scenario files for guided fuzzing), one fresh thread per run, then exits: a worker that dies
//! loses only its chunk, and no state of one run can reach another through a process. (Short
//! workers began when runs were on madsim, whose statics leak between runs, madsim issue #174.)
//! At most `jobs` workers run at once.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use super::output::SeedResult;

/// Seeds per worker process.
pub const CHUNK_SEEDS: usize = 100;

/// What the workers run: seeds (`--seeds`) or scenario files (`--files`), and how many a
/// worker process takes at a time.
#[derive(Clone, Copy, Debug)]
pub struct Items {
    pub flag: &'static str,
    pub chunk: usize,
}

impl Items {
    pub const SEEDS: Items = Items { flag: "--seeds", chunk: CHUNK_SEEDS };
}

pub struct Pool {
    stop: Arc<AtomicBool>,
    pids: Arc<Mutex<BTreeSet<u32>>>,
    pub results: mpsc::Receiver<Result<SeedResult, String>>,
}

impl Pool {
    /// Start `jobs` feeders; each runs `exe worker <args> --seeds <chunk>` (or `--files`, as
    /// `items` says) for chunk after chunk. Items are drawn from `seeds` a chunk at a time,
    /// never collected: a range may be as long as `u64` allows.
    pub fn start<I>(exe: PathBuf, args: Vec<String>, seeds: I, items: Items, jobs: usize) -> Pool
    where
        I: Iterator<Item = String> + Send + 'static,
    {
        let seeds = Arc::new(Mutex::new(seeds));
        let stop = Arc::new(AtomicBool::new(false));
        let pids = Arc::new(Mutex::new(BTreeSet::new()));
        let (tx, results) = mpsc::channel();
        for _ in 0..jobs {
            let (exe, args, seeds, stop, pids, tx) =
                (exe.clone(), args.clone(), seeds.clone(), stop.clone(), pids.clone(), tx.clone());
            std::thread::spawn(move || loop {
                let chunk: Vec<String> = seeds.lock().expect("seed source").by_ref().take(items.chunk).collect();
                if chunk.is_empty() {
                    return;
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let spawned = Command::new(&exe)
                    .arg("worker")
                    .args(&args)
                    .args([items.flag, &chunk.join(",")])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .spawn();
                let mut child = match spawned {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot start a worker: {e}")));
                        return;
                    }
                };
                pids.lock().expect("pid set").insert(child.id());
                let mut reported = 0;
                for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
                    let result = match line {
                        Ok(l) => {
                            serde_json::from_str::<SeedResult>(&l).map_err(|e| format!("bad worker line {l:?}: {e}"))
                        }
                        Err(e) => Err(format!("worker output: {e}")),
                    };
                    reported += 1;
                    if tx.send(result).is_err() {
                        break;
                    }
                }
                let status = child.wait();
                pids.lock().expect("pid set").remove(&child.id());
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if reported < chunk.len() {
                    let next = &chunk[reported];
                    let _ = tx.send(Err(format!("a worker died ({status:?}) before reporting {next}")));
                    return;
                }
            });
        }
        Pool { stop, pids, results }
    }

    /// Stop handing out chunks and kill the workers still running.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for pid in self.pids.lock().expect("pid set").iter() {
            // SAFETY: kill(2) on a pid we spawned and have not reaped; at worst it is gone.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}
