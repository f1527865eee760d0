//! Worker processes for `fuzz`. Each worker runs a chunk of seeds, one fresh runtime per seed,
//! then exits: madsim keeps per-run allocations that a runtime drop does not free (and statics
//! can leak between runs, madsim issue #174), so short-lived processes keep memory flat and
//! runs independent. At most `jobs` workers run at once.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use super::output::SeedResult;

/// Seeds per worker process.
pub const CHUNK_SEEDS: usize = 100;

pub struct Pool {
    stop: Arc<AtomicBool>,
    pids: Arc<Mutex<BTreeSet<u32>>>,
    pub results: mpsc::Receiver<Result<SeedResult, String>>,
}

impl Pool {
    /// Start `jobs` feeders; each runs `exe worker <args> --seeds <chunk>` for chunk after chunk.
    /// Seeds are drawn from `seeds` a chunk at a time, never collected: a range may be as long
    /// as `u64` allows.
    pub fn start<I>(exe: PathBuf, args: Vec<String>, seeds: I, jobs: usize) -> Pool
    where
        I: Iterator<Item = u64> + Send + 'static,
    {
        let seeds = Arc::new(Mutex::new(seeds));
        let stop = Arc::new(AtomicBool::new(false));
        let pids = Arc::new(Mutex::new(BTreeSet::new()));
        let (tx, results) = mpsc::channel();
        for _ in 0..jobs {
            let (exe, args, seeds, stop, pids, tx) =
                (exe.clone(), args.clone(), seeds.clone(), stop.clone(), pids.clone(), tx.clone());
            std::thread::spawn(move || loop {
                let chunk: Vec<u64> = seeds.lock().expect("seed source").by_ref().take(CHUNK_SEEDS).collect();
                if chunk.is_empty() {
                    return;
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
                let spawned = Command::new(&exe)
                    .arg("worker")
                    .args(&args)
                    .args(["--seeds", &list.join(",")])
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
                    let next = chunk[reported];
                    let _ = tx.send(Err(format!("a worker died ({status:?}) before reporting seed {next}")));
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
