//! `metasim shrink`: delta-debug a failing scenario down to a small one that still fails with
//! the same invariant. A round of passes: the liveness phase off, the duration cut to just past
//! the failure, ddmin over the steps, then single removals, related steps removed together
//! (an op kind, a stream, a server's ops, an action), fewer servers, swarm knobs back to
//! defaults (network, clocks, crash points, the system's settings), simpler client op
//! arguments. Rounds go on while one makes the scenario smaller. Any change to a scenario
//! reshuffles the rest of its run (network fates, latencies and election timeouts come from
//! seeded streams, per node and per link, drawn in the order events happen), so a failure that
//! needs a narrow race can be lost by every single removal under the scenario's seed. After a
//! round that removes nothing, the seed is one more thing to vary: each step alone, last first,
//! is removed under other seeds derived from the scenario's seed and the step's index
//! ([`RESEEDS`] a step, more in a scenario of few steps: see [`RESEED_RUNS_SMALL`]), and the
//! first seed under which that candidate fails the same way is kept (`reseeds:`; the scenario
//! and the written file carry it, so `run` reproduces it). If no step goes, one step moved earlier
//! starts the next round (`moves:`): a removal that failed in one run may succeed after a move.
//! Reseeded removals that took nothing are not tried again until a round removes a step.
//! When no step can move either, the removals try the next set of seeds of each step (up to
//! [`RESEED_SETS`] sets in a shrink) before the shrink ends.
//! Every candidate runs in a child `metasim run`, so the result is what `run` does with the
//! file, and no candidate file runs twice; the order of candidates (and the seeds tried)
//! depends only on the scenario and the outcomes, so a shrink is deterministic. With `--jobs`,
//! the candidates after the one asked about run beside it, and a run made ahead of need is
//! charged to the budget only when asked for: the same shrink, sooner.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use metasim::with_system;
use sim::{Action, ScenarioOf, System};

use super::{current_exe, run_child, Outcome, Scratch, Target};
use crate::cli::run::{check_output_path, unknown_system, write_file};
use crate::cli::CliError;

#[derive(Args, Debug)]
pub struct ShrinkArgs {
    #[command(flatten)]
    pub target: Target,
    /// Where to write the shrunk scenario.
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "min.toml")]
    pub output: PathBuf,
    /// Runs at most (each candidate is one run).
    #[arg(long, default_value_t = 4000)]
    pub budget: u32,
    /// Candidates run at once (default: the machine's available parallelism). The shrink is
    /// the same with any number: runs ahead of need are charged only when asked for.
    #[arg(long)]
    pub jobs: Option<usize>,
}

pub fn shrink(args: ShrinkArgs) -> Result<ExitCode, CliError> {
    let system = args.target.system()?;
    with_system!(system.as_str(), S => shrink_for::<S>(&args), unknown => Err(unknown_system(&system)))
}

fn shrink_for<S: System>(args: &ShrinkArgs) -> Result<ExitCode, CliError> {
    let scenario = args.target.load::<S>()?;
    let jobs = crate::cli::fuzz::jobs_or_default(args.jobs)?;
    check_output_path(&args.output)?;
    let mut shrinker = Shrinker::<S>::new(args.budget, jobs)?;
    let first = shrinker.run(&scenario)?;
    let Some(invariant) = first.invariant.clone() else {
        return Err(CliError::Other(format!("nothing to shrink: the run gives {} with no violation", first.verdict)));
    };
    shrinker.invariant = invariant.clone();
    shrinker.violation_ms = first.violation_ms.unwrap_or(scenario.duration_ms);
    println!("invariant: {invariant}");
    println!(
        "before: {} steps, {} events, {} servers, {} ms",
        scenario.steps.len(),
        first.events,
        scenario.servers,
        scenario.duration_ms
    );
    let mut best = shrinker.minimize(scenario.clone());
    shrinker.bar.finish_and_clear();
    best.name = format!("shrunk from {}", scenario.name);
    best.description = format!("{} (metasim shrink, {} runs)", scenario.description, shrinker.runs);
    best.expect = Some(sim::Verdict::Fail);
    best.expect_violation = Some(invariant.clone());
    // Verify the very file before it is written: `run` must fail it with the same invariant.
    let text = to_text::<S>(&best)?;
    let scratch = Scratch::new("shrink-final.toml");
    write_file(&scratch.0, text.as_bytes())?;
    let last = run_child(&shrinker.exe, &scratch.0, &[])?;
    if last.invariant.as_deref() != Some(invariant.as_str()) {
        return Err(CliError::Other(format!(
            "the shrunk scenario did not fail with {invariant} when run again (got {:?}); nothing written",
            last.invariant
        )));
    }
    write_file(&args.output, text.as_bytes())?;
    println!(
        "after: {} steps, {} events, {} servers, {} ms ({} runs)",
        best.steps.len(),
        last.events,
        best.servers,
        best.duration_ms,
        shrinker.runs
    );
    println!("repeats: {} candidates had run before and were not run again", shrinker.repeats);
    println!("moves: {} steps moved earlier after a round that removed nothing", shrinker.moves);
    println!("reseeds: {} steps removed under another seed", shrinker.reseeds);
    // A shrink with a larger budget makes the same candidates until this one ended, so one
    // that ended before its budget would end the same way with any larger one.
    if shrinker.runs >= shrinker.budget {
        println!("ended: the budget of {} runs was spent; a larger --budget may remove more", shrinker.budget);
    } else {
        println!(
            "ended: before the budget, where no step could move and the {RESEED_SETS} sets of seeds \
             were spent; a larger --budget would end the same way"
        );
    }
    let tallies: Vec<String> = Pass::ALL
        .iter()
        .zip(&shrinker.passes)
        .filter(|(_, t)| t.runs > 0)
        .map(|(pass, t)| format!("{} {} runs -{} steps", pass.name(), t.runs, t.steps_removed))
        .collect();
    println!("passes: {} (and the first run)", tallies.join(", "));
    if jobs > 1 {
        println!(
            "jobs: {jobs} ({} of the runs ran beside another; {} more ran ahead of need and were not asked for)",
            shrinker.ran_beside,
            shrinker.ahead.len()
        );
    }
    println!(
        "steps: {} -> {} ({:.1} %)",
        scenario.steps.len(),
        best.steps.len(),
        percent(best.steps.len(), scenario.steps.len())
    );
    for step in &best.steps {
        println!("  {:>7} ms  {}", step.at_ms, sim::scenario::escape_control(&describe_step::<S>(step)));
    }
    println!("wrote {} (metasim run {} fails with {invariant})", args.output.display(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Other seeds the reseeded removals try per step. Measured with `--budget 4000` on
/// `raft-vote-not-persisted` default 238 (126 steps): 4 seeds end at 29 steps, 8 at 9, 16 at 11.
const RESEEDS: u64 = 8;

/// Runs a pass of reseeded removals may take in a scenario of few steps: below
/// `RESEED_RUNS_SMALL / RESEEDS` steps (125), each step is tried under as many seeds as this
/// many runs allow (at most [`RESEEDS_MAX`]). A small scenario's failure often needs a race
/// most of its steps take part in, so few seeds keep it without any one of them: on
/// `boot-size-after-restart` `outage` 3 (9 steps), only the crash of n2 could go, under 4 of
/// 300 seeds; with `--budget 4000` the shrink ended at 9 steps with 8 seeds a step, 9 with 28,
/// and 7 with 111. A count of runs, not a share of the budget: a shrink makes the same
/// candidates whatever its budget, until the budget ends it.
const RESEED_RUNS_SMALL: u64 = 1000;

/// Seeds a step's removal is tried under in one set, in the smallest scenarios: a scenario of
/// a few steps would otherwise take hundreds of seeds a step to learn that its last steps are
/// all needed.
const RESEEDS_MAX: u64 = 128;

/// Seeds a reseeded removal tries for each step of a scenario of `steps` steps: [`RESEEDS`],
/// or more in a small scenario (see [`RESEED_RUNS_SMALL`]).
fn reseeds_per_step(steps: usize) -> u64 {
    (RESEED_RUNS_SMALL / steps.max(1) as u64).clamp(RESEEDS, RESEEDS_MAX)
}

/// Sets of seeds ([`reseeds_per_step`] a step) a shrink's reseeded removals may try in all:
/// once no step can move, the next set is tried before the shrink ends. A failure that needs a
/// narrow race can be lost by every move, and then only another seed lets a step go: on
/// `raft-commit-old-term` default 4079, no move kept the failure, and the shrink ended at 26
/// steps after 3,119 runs; with three more sets, at 16 steps after 4,000.
const RESEED_SETS: u64 = 4;

/// ddmin tries a chunk alone only while it has at most this many chunks: a small chunk alone
/// seldom keeps a failure that needed most of the run, and every try is a run the budget pays
/// for. Measured on the whole corpus table (`--budget 4000`): 543 steps left in all, against
/// 567 when every chunk is tried alone.
const LONE_CHUNKS_MAX: usize = 4;

/// How far ahead, in multiples of `--jobs`, a shrink looks for candidates that would be new
/// runs: the ones between have run before and are answered from memory.
const AHEAD_LOOKS_MAX: usize = 4;

/// The `n`th other seed for a candidate without step `i` of a scenario seeded `seed`:
/// splitmix64 of the three, so the same scenario always tries the same seeds.
fn derived_seed(seed: u64, i: u64, n: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n.wrapping_mul(0xbf58_476d_1ce4_e5b9).rotate_left(17);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `scenario` without its step `i`.
fn without_step<S: System>(scenario: &ScenarioOf<S>, i: usize) -> ScenarioOf<S> {
    let mut c = scenario.clone();
    c.steps.remove(i);
    c
}

fn percent(a: usize, b: usize) -> f64 {
    100.0 * a as f64 / b.max(1) as f64
}

type StepOf<S> = sim::Step<sim::ClientOpOf<<S as System>::Node>, sim::ExpectOf<S>>;

/// A step on one line: its action's fields as inline TOML.
fn describe_step<S: System>(step: &StepOf<S>) -> String {
    let fields = toml::Value::try_from(&step.action).ok().and_then(|v| match v {
        toml::Value::Table(t) => t.into_iter().next().map(|(_, f)| f.to_string()),
        _ => None,
    });
    format!("{} {}", step.action.name(), fields.unwrap_or_default())
}

fn to_text<S: System>(scenario: &ScenarioOf<S>) -> Result<String, CliError> {
    scenario.to_toml().map_err(|e| CliError::Other(format!("cannot encode scenario: {e}")))
}

/// The passes of a shrink, in the order a round runs them, for the `passes:` tally.
#[derive(Clone, Copy)]
enum Pass {
    NoLiveness,
    Shorten,
    Ddmin,
    SingleRemovals,
    Related,
    FewerServers,
    DefaultKnobs,
    SimplerOps,
    Reseeded,
    Moves,
    MoreSeeds,
}

impl Pass {
    const ALL: [Pass; 11] = [
        Pass::NoLiveness,
        Pass::Shorten,
        Pass::Ddmin,
        Pass::SingleRemovals,
        Pass::Related,
        Pass::FewerServers,
        Pass::DefaultKnobs,
        Pass::SimplerOps,
        Pass::Reseeded,
        Pass::Moves,
        Pass::MoreSeeds,
    ];

    fn name(self) -> &'static str {
        match self {
            Pass::NoLiveness => "no liveness",
            Pass::Shorten => "shorter",
            Pass::Ddmin => "ddmin",
            Pass::SingleRemovals => "single removals",
            Pass::Related => "related steps",
            Pass::FewerServers => "fewer servers",
            Pass::DefaultKnobs => "default knobs",
            Pass::SimplerOps => "simpler ops",
            Pass::Reseeded => "reseeded removals",
            Pass::Moves => "moves",
            Pass::MoreSeeds => "removals under more seeds",
        }
    }
}

/// Runs charged to one pass, and the steps it removed.
#[derive(Clone, Copy, Default)]
struct PassTally {
    runs: u32,
    steps_removed: usize,
}

/// What a candidate file did when it ran, kept so that the same file never runs twice.
#[derive(Clone, Copy)]
enum Tried {
    /// Failed with the invariant, at this time when the run said.
    Fails(Option<u64>),
    /// Passed, or failed some other way.
    Other,
}

impl Tried {
    fn of(outcome: Result<Outcome, CliError>, invariant: &str) -> Tried {
        match outcome {
            Ok(outcome) if outcome.invariant.as_deref() == Some(invariant) => Tried::Fails(outcome.violation_ms),
            _ => Tried::Other,
        }
    }
}

/// `text` written to `scratch` and run there in a child `metasim run`.
fn run_at(exe: &std::path::Path, scratch: &Scratch, text: &str) -> Result<Outcome, CliError> {
    write_file(&scratch.0, text.as_bytes())?;
    run_child(exe, &scratch.0, &[])
}

struct Shrinker<S: System> {
    exe: PathBuf,
    invariant: String,
    violation_ms: u64,
    runs: u32,
    /// Candidate files already run, by their text: ddmin's last round and the single removals
    /// try the same files, and so does every pass of a round that changed nothing.
    tried: HashMap<String, Tried>,
    /// Candidates answered from `tried`, not run again.
    repeats: u32,
    /// Steps moved earlier to get past a round that removed nothing.
    moves: u32,
    /// Removals kept under another seed than the scenario's.
    reseeds: u32,
    budget: u32,
    /// Candidates run at once.
    jobs: usize,
    /// Answers of candidate files run ahead of need, by their text. Each is charged to the
    /// budget (and moves to `tried`) only when the shrink asks for it, as it would have been
    /// run then, so the shrink takes the same steps with any number of jobs.
    ahead: HashMap<String, Tried>,
    /// Runs charged from `ahead`.
    ran_beside: u32,
    /// A candidate file per job.
    scratches: Vec<Scratch>,
    /// What each pass cost and took, by [`Pass`].
    passes: [PassTally; Pass::ALL.len()],
    bar: indicatif::ProgressBar,
    _system: std::marker::PhantomData<S>,
}

impl<S: System> Shrinker<S> {
    fn new(budget: u32, jobs: usize) -> Result<Self, CliError> {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(u64::from(budget));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {msg}").expect("valid template"),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        Ok(Shrinker {
            exe: current_exe()?,
            invariant: String::new(),
            violation_ms: 0,
            runs: 0,
            tried: HashMap::new(),
            repeats: 0,
            moves: 0,
            reseeds: 0,
            budget,
            jobs,
            ahead: HashMap::new(),
            ran_beside: 0,
            scratches: (0..jobs).map(|j| Scratch::new(&format!("shrink-candidate-{j}.toml"))).collect(),
            passes: Default::default(),
            bar,
            _system: std::marker::PhantomData,
        })
    }

    fn run(&mut self, scenario: &ScenarioOf<S>) -> Result<Outcome, CliError> {
        self.run_text(&to_text::<S>(scenario)?)
    }

    fn run_text(&mut self, text: &str) -> Result<Outcome, CliError> {
        self.charge_run();
        run_at(&self.exe, &self.scratches[0], text)
    }

    fn charge_run(&mut self) {
        self.runs += 1;
        self.bar.inc(1);
    }

    /// Whether a candidate still fails with the invariant. A candidate the loader refuses
    /// (a step naming a server that is gone, a liveness run without its heal) is not run and
    /// costs nothing, nor does a file that ran before; once the budget is spent every new
    /// candidate is refused.
    fn fails(&mut self, candidate: &ScenarioOf<S>) -> bool {
        let Ok(text) = to_text::<S>(candidate) else { return false };
        let tried = match self.tried.get(&text) {
            Some(&tried) => {
                self.repeats += 1;
                tried
            }
            None => {
                if self.runs >= self.budget {
                    return false;
                }
                // A file run ahead was parsed before it ran.
                let tried = match self.ahead.remove(&text) {
                    Some(tried) => {
                        self.charge_run();
                        self.ran_beside += 1;
                        tried
                    }
                    None if sim::scenario::parse_for::<S>("candidate", &text).is_err() => return false,
                    None => self.try_text(&text),
                };
                self.tried.insert(text, tried);
                tried
            }
        };
        match tried {
            Tried::Fails(ms) => {
                if let Some(ms) = ms {
                    self.violation_ms = ms;
                }
                self.bar.set_message(format!("{} steps", candidate.steps.len()));
                true
            }
            Tried::Other => false,
        }
    }

    fn try_text(&mut self, text: &str) -> Tried {
        let outcome = self.run_text(text);
        Tried::of(outcome, &self.invariant)
    }

    /// The first failing one, and its index, of the candidates `make(0..count)` builds (`None`:
    /// no candidate at that index), asked one after another as `fails` asks, with up to `jobs`
    /// of the next ones that would be new runs running beside the one asked about. Candidates
    /// are built as they are needed: the complements of a long scenario's ddmin are many copies
    /// of it. With `stop_when_spent`, none is asked about once the budget is spent, as a loop
    /// that checks the budget before every candidate does.
    fn first_failing(
        &mut self,
        count: usize,
        make: impl Fn(usize) -> Option<ScenarioOf<S>>,
        stop_when_spent: bool,
    ) -> Option<(usize, ScenarioOf<S>)> {
        for i in 0..count {
            if stop_when_spent && self.runs >= self.budget {
                return None;
            }
            let Some(candidate) = make(i) else { continue };
            self.run_ahead(&candidate, (i + 1..count).filter_map(&make));
            if self.fails(&candidate) {
                return Some((i, candidate));
            }
        }
        None
    }

    /// When `first` would be a new run, run it together with those of `next` that would be
    /// (up to `jobs` in all, no more than the budget has left, looking no further than
    /// [`AHEAD_LOOKS_MAX`] times `jobs`), keeping their answers in `ahead`.
    fn run_ahead(&mut self, first: &ScenarioOf<S>, next: impl Iterator<Item = ScenarioOf<S>>) {
        if self.jobs <= 1 {
            return;
        }
        let room = (self.budget.saturating_sub(self.runs) as usize).min(self.jobs);
        if room < 2 {
            return; // `fails` runs a lone one itself
        }
        let would_run = |text: &String, texts: &[String]| {
            !self.tried.contains_key(text)
                && !self.ahead.contains_key(text)
                && !texts.contains(text)
                && sim::scenario::parse_for::<S>("candidate", text).is_ok()
        };
        let mut texts: Vec<String> = Vec::new();
        match to_text::<S>(first) {
            Ok(text) if would_run(&text, &texts) => texts.push(text),
            _ => return, // answered without a run
        }
        for candidate in next.take(self.jobs * AHEAD_LOOKS_MAX - 1) {
            if texts.len() >= room {
                break;
            }
            match to_text::<S>(&candidate) {
                Ok(text) if would_run(&text, &texts) => texts.push(text),
                _ => {}
            }
        }
        if texts.len() < 2 {
            return;
        }
        let (exe, invariant) = (&self.exe, self.invariant.as_str());
        let answers: Vec<Tried> = std::thread::scope(|scope| {
            let running: Vec<_> = texts
                .iter()
                .zip(&self.scratches)
                .map(|(text, scratch)| scope.spawn(move || Tried::of(run_at(exe, scratch, text), invariant)))
                .collect();
            running.into_iter().map(|run| run.join().unwrap_or(Tried::Other)).collect()
        });
        self.ahead.extend(texts.into_iter().zip(answers));
    }

    /// Rounds of the passes while one makes the scenario smaller; when a round does not, single
    /// removals under other seeds (not again until a round removes something), and if none of
    /// those fails the same way, a step moved earlier that keeps the failure gives a run the
    /// removals have not seen (the random streams of a run shift with every change, so a step
    /// that could not go before may go now), until the budget is spent or no step can move;
    /// then the next set of seeds for each removal, while one is left and takes a step.
    fn minimize(&mut self, mut best: ScenarioOf<S>) -> ScenarioOf<S> {
        // Set when the reseeded removals took nothing, until a round makes the scenario
        // smaller: a move changes one step's time, seldom enough for a step that went under
        // none of 8 seeds to go under one now, and each such pass costs 8 runs a step. On the
        // corpus table: 46,029 runs against 65,909, 32 rows at 10 % or less against 31.
        let mut reseeds_paused = false;
        // Sets of seeds the reseeded removals have had, the first one every time.
        let mut seed_sets = 1;
        loop {
            let size = (best.steps.len(), best.duration_ms, best.servers);
            best = self.round(best);
            if self.runs >= self.budget {
                return best;
            }
            if (best.steps.len(), best.duration_ms, best.servers) != size {
                reseeds_paused = false;
                continue;
            }
            if !reseeds_paused {
                let len = best.steps.len();
                best = self.pass(Pass::Reseeded, best, |s, best| s.reseeded_removals(best, 0));
                if best.steps.len() < len {
                    continue;
                }
                reseeds_paused = true;
            }
            let (runs, moved) = (self.runs, self.earlier(&best));
            self.passes[Pass::Moves as usize].runs += self.runs - runs;
            if let Some(moved) = moved {
                self.moves += 1;
                best = moved;
                continue;
            }
            // No step can move: the next set of seeds, while one is left.
            let len = best.steps.len();
            while best.steps.len() == len && seed_sets < RESEED_SETS && self.runs < self.budget {
                let set = seed_sets;
                seed_sets += 1;
                best = self.pass(Pass::MoreSeeds, best, |s, best| s.reseeded_removals(best, set));
            }
            if best.steps.len() == len {
                return best;
            }
        }
    }

    fn round(&mut self, mut best: ScenarioOf<S>) -> ScenarioOf<S> {
        best = self.pass(Pass::NoLiveness, best, Self::no_liveness);
        best = self.pass(Pass::Shorten, best, Self::shorten);
        best = self.pass(Pass::Ddmin, best, Self::ddmin_steps);
        best = self.pass(Pass::SingleRemovals, best, Self::single_removals);
        best = self.pass(Pass::Related, best, Self::related_removals);
        best = self.pass(Pass::FewerServers, best, Self::fewer_servers);
        best = self.pass(Pass::DefaultKnobs, best, Self::default_knobs);
        best = self.pass(Pass::SimplerOps, best, Self::simpler_ops);
        self.pass(Pass::Shorten, best, Self::shorten)
    }

    /// `run` on `best`, its runs and the steps it removed added to the pass's tally.
    fn pass(
        &mut self,
        pass: Pass,
        best: ScenarioOf<S>,
        run: impl FnOnce(&mut Self, ScenarioOf<S>) -> ScenarioOf<S>,
    ) -> ScenarioOf<S> {
        let (runs, steps) = (self.runs, best.steps.len());
        let best = run(self, best);
        assert!(best.steps.len() <= steps, "a pass never adds steps");
        let tally = &mut self.passes[pass as usize];
        tally.runs += self.runs - runs;
        tally.steps_removed += steps - best.steps.len();
        best
    }

    /// The first step, last first, that still fails when moved halfway to the step before it
    /// (the first step: halfway to 0 ms). Moving earlier only, so the walk ends.
    fn earlier(&mut self, best: &ScenarioOf<S>) -> Option<ScenarioOf<S>> {
        let len = best.steps.len();
        let moved = |k: usize| {
            let i = len - 1 - k; // last first
            let before = if i == 0 { 0 } else { best.steps[i - 1].at_ms };
            let at = best.steps[i].at_ms;
            let halfway = before + at.saturating_sub(before) / 2;
            (halfway < at).then(|| {
                let mut c = best.clone();
                c.steps[i].at_ms = halfway;
                c
            })
        };
        self.first_failing(len, moved, true).map(|(_, c)| c)
    }

    /// Each step alone, last first, under [`reseeds_per_step`] other seeds (for the scenario's
    /// steps as they stand) derived from the scenario's seed, the step's index and the set
    /// (`set`: the set's first seed is `set` times that many); the first seed under which the
    /// candidate fails the same way is kept, and the scenario carries it from then on.
    fn reseeded_removals(&mut self, mut best: ScenarioOf<S>, set: u64) -> ScenarioOf<S> {
        let mut i = best.steps.len();
        while i > 0 && self.runs < self.budget {
            i -= 1;
            let per_step = reseeds_per_step(best.steps.len());
            let reseeded = |n: usize| {
                Some(ScenarioOf::<S> {
                    seed: derived_seed(best.seed, i as u64, set * per_step + n as u64),
                    ..without_step::<S>(&best, i)
                })
            };
            if let Some((_, c)) = self.first_failing(per_step as usize, reseeded, false) {
                self.reseeds += 1;
                best = c;
            }
        }
        best
    }

    fn try_with(&mut self, best: ScenarioOf<S>, change: impl FnOnce(&mut ScenarioOf<S>)) -> ScenarioOf<S> {
        let mut candidate = best.clone();
        change(&mut candidate);
        if candidate != best && self.fails(&candidate) {
            candidate
        } else {
            best
        }
    }

    /// Safety violations do not need the liveness phase.
    fn no_liveness(&mut self, best: ScenarioOf<S>) -> ScenarioOf<S> {
        self.try_with(best, |c| c.liveness = false)
    }

    /// End the run shortly after the failure (steps past the end go with it).
    fn shorten(&mut self, best: ScenarioOf<S>) -> ScenarioOf<S> {
        let end = (self.violation_ms + 1_000).div_ceil(1_000) * 1_000;
        if end >= best.duration_ms {
            return best;
        }
        self.try_with(best, |c| {
            c.duration_ms = end;
            c.steps.retain(|s| s.at_ms < end);
        })
    }

    /// Steps that have something in common, removed together: every client op of one kind,
    /// every op on one stream, every op sent to one server, every other step of one action (see
    /// [`related_groups`]), largest group first. ddmin cuts the steps by time; a failure
    /// usually needs a few assets and servers while the rest of a long run is noise spread
    /// over all of it, which time chunks keep a piece of each.
    fn related_removals(&mut self, best: ScenarioOf<S>) -> ScenarioOf<S> {
        let groups = related_groups::<S>(&best);
        let without = |best: &ScenarioOf<S>, k: usize| {
            let mut c = best.clone();
            c.steps.retain(|step| !step_groups::<S>(step).contains(&groups[k]));
            // A group that has lost all but one step is left to the single removals.
            (c.steps.len() + 2 <= best.steps.len()).then_some(c)
        };
        self.keep_each_failing(best, groups.len(), without, true)
    }

    /// ddmin (Zeller): try each of n chunks alone (while n is at most [`LONE_CHUNKS_MAX`]),
    /// then each complement, from where the last one went on (wrapping round); on success keep
    /// it and coarsen, otherwise refine until chunks are single steps.
    fn ddmin_steps(&mut self, mut best: ScenarioOf<S>) -> ScenarioOf<S> {
        let mut n = 2usize;
        // Where the next level's complements start: at the chunk whose complement went last.
        // The chunks before it have just failed to go, and in a long scenario trying them
        // again first spent most of ddmin's runs: `raft-commit-old-term` `elections` 125 (808
        // steps, `--budget 4000`) ended at 252 steps starting from the first chunk every time,
        // and at 76 this way.
        let mut from = 0usize;
        while best.steps.len() >= 2 && self.runs < self.budget {
            let len = best.steps.len();
            let chunk = len.div_ceil(n);
            let ranges: Vec<(usize, usize)> = (0..len).step_by(chunk).map(|s| (s, (s + chunk).min(len))).collect();
            let mut reduced = false;
            let alone = |k: usize| {
                let (s, e) = ranges[k];
                Some(ScenarioOf::<S> { steps: best.steps[s..e].to_vec(), ..best.clone() })
            };
            let lone_chunks = if n <= LONE_CHUNKS_MAX { ranges.len().min(n) } else { 0 };
            if let Some((_, c)) = self.first_failing(lone_chunks, alone, false) {
                best = c;
                n = 2;
                reduced = true;
            }
            if !reduced && ranges.len() > 2 {
                let count = ranges.len();
                let first = from.min(count - 1);
                let complement = |k: usize| {
                    let (s, e) = ranges[(first + k) % count];
                    let mut c = best.clone();
                    c.steps.drain(s..e);
                    Some(c)
                };
                if let Some((k, c)) = self.first_failing(count, complement, false) {
                    best = c;
                    n = (n - 1).max(2);
                    from = (first + k) % count;
                    reduced = true;
                }
            }
            if !reduced {
                if n >= len {
                    break;
                }
                n = (n * 2).min(len);
            }
        }
        best
    }

    /// Each step alone, last first (later steps tend to depend on earlier ones). Asked `jobs`
    /// at a time, each without the step it names from the scenario as it stands.
    fn single_removals(&mut self, mut best: ScenarioOf<S>) -> ScenarioOf<S> {
        let mut i = best.steps.len();
        while i > 0 && self.runs < self.budget {
            // The removal of step i - 1, then i - 2, ..., from the scenario as it stands, until
            // one fails; the next round of the loop starts from the scenario it leaves.
            let batch = i.min(self.jobs);
            match self.first_failing(batch, |k| Some(without_step::<S>(&best, i - 1 - k)), true) {
                Some((k, c)) => {
                    i -= k + 1;
                    best = c;
                }
                None => i -= batch,
            }
        }
        best
    }

    /// Drop the highest server while the failure stays (with the steps and clocks that name it).
    fn fewer_servers(&mut self, mut best: ScenarioOf<S>) -> ScenarioOf<S> {
        while best.servers > 1 && self.runs < self.budget {
            let keep = best.servers - 1;
            let mut c = best.clone();
            c.servers = keep;
            c.steps.retain(|s| s.action.nodes().iter().all(|&(_, n)| n < keep));
            c.clocks.retain(|k| k.node < keep);
            if !self.fails(&c) {
                break;
            }
            best = c;
        }
        best
    }

    /// The seed's swarm knobs back to the defaults, one at a time.
    fn default_knobs(&mut self, best: ScenarioOf<S>) -> ScenarioOf<S> {
        let to_default: [fn(&mut ScenarioOf<S>); 5] = [
            |c| c.network = Default::default(),
            |c| c.clocks.clear(),
            |c| c.crash_points = None,
            |c| c.disk = Default::default(),
            |c| c.system = Default::default(),
        ];
        let changed = |best: &ScenarioOf<S>, k: usize| {
            let mut c = best.clone();
            to_default[k](&mut c);
            (c != *best).then_some(c)
        };
        self.keep_each_failing(best, to_default.len(), changed, false)
    }

    /// Client ops with their numbers down to 1 and their lists down to one item, step by step.
    fn simpler_ops(&mut self, best: ScenarioOf<S>) -> ScenarioOf<S> {
        let simpler = |best: &ScenarioOf<S>, i: usize| {
            let Action::Client { op, .. } = &best.steps[i].action else { return None };
            let simpler = simplify(op)?;
            let mut c = best.clone();
            if let Action::Client { op, .. } = &mut c.steps[i].action {
                *op = simpler;
            }
            (c != *best).then_some(c)
        };
        let steps = best.steps.len();
        self.keep_each_failing(best, steps, simpler, true)
    }

    /// The changes `change(best, 0..count)` in turn, each made to the scenario as it stands
    /// (`None`: nothing to change there), each kept when it fails the same way. Asked through
    /// [`Self::first_failing`], so with `--jobs` the changes after the one asked about run
    /// beside it; `stop_when_spent` as there.
    fn keep_each_failing(
        &mut self,
        mut best: ScenarioOf<S>,
        count: usize,
        change: impl Fn(&ScenarioOf<S>, usize) -> Option<ScenarioOf<S>>,
        stop_when_spent: bool,
    ) -> ScenarioOf<S> {
        let mut i = 0;
        while i < count {
            match self.first_failing(count - i, |k| change(&best, i + k), stop_when_spent) {
                Some((k, c)) => {
                    best = c;
                    i += k + 1;
                }
                None => break,
            }
        }
        best
    }
}

/// The groups a step belongs to: its action (`action:slow-disk`), or for a client op its kind
/// (`op:create-stream`), the stream it names (`stream:A/S2`: its `stream` field, else its
/// `name`) and the server it is sent to (`via:3`).
fn step_groups<S: System>(step: &StepOf<S>) -> Vec<String> {
    let Action::Client { node, op } = &step.action else {
        return vec![format!("action:{}", step.action.name())];
    };
    let mut groups = Vec::with_capacity(3);
    if let Ok(toml::Value::Table(fields)) = toml::Value::try_from(op) {
        let text = |key: &str| fields.get(key).and_then(|v| v.as_str());
        groups.push(format!("op:{}", text("kind").unwrap_or("?")));
        if let Some(stream) = text("stream").or_else(|| text("name")) {
            groups.push(format!("stream:{}/{stream}", text("account").unwrap_or("")));
        }
    }
    if let Some(node) = node {
        groups.push(format!("via:{node}"));
    }
    groups
}

/// The groups of at least two steps in `scenario`, largest first (ties by name).
fn related_groups<S: System>(scenario: &ScenarioOf<S>) -> Vec<String> {
    let mut sizes: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for step in &scenario.steps {
        for group in step_groups::<S>(step) {
            *sizes.entry(group).or_default() += 1;
        }
    }
    let mut groups: Vec<(String, usize)> = sizes.into_iter().filter(|&(_, n)| n >= 2).collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    groups.into_iter().map(|(group, _)| group).collect()
}

/// The op with every integer above 1 set to 1 and every list cut to its first item, when that
/// still reads as an op.
fn simplify<C: serde::Serialize + serde::de::DeserializeOwned>(op: &C) -> Option<C> {
    fn walk(v: &mut toml::Value) {
        match v {
            toml::Value::Integer(i) if *i > 1 => *i = 1,
            toml::Value::Array(a) => {
                a.truncate(1);
                a.iter_mut().for_each(walk);
            }
            toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| walk(v)),
            _ => {}
        }
    }
    let mut value = toml::Value::try_from(op).ok()?;
    walk(&mut value);
    value.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metasim::sut::MetaSystem;

    const SCENARIO: &str = r#"
name = "groups"
duration_ms = 10000
[cluster]
servers = 3
[[step]]
at_ms = 1000
action = "client"
node = 1
op = { kind = "create-stream", name = "S1", replicas = 1 }
[[step]]
at_ms = 2000
action = "client"
node = 2
op = { kind = "create-consumer", stream = "S1", name = "C1" }
[[step]]
at_ms = 3000
action = "client"
node = 1
op = { kind = "create-stream", name = "S2", replicas = 1 }
[[step]]
at_ms = 4000
action = "crash"
node = 0
[[step]]
at_ms = 5000
action = "restart"
node = 0
"#;

    #[test]
    fn related_steps_are_grouped_by_op_kind_stream_and_server() {
        let scenario = sim::scenario::parse_for::<MetaSystem>("groups.toml", SCENARIO).expect("parses").scenario;
        let groups: Vec<Vec<String>> = scenario.steps.iter().map(step_groups::<MetaSystem>).collect();
        assert_eq!(groups[0], ["op:create-stream", "stream:A/S1", "via:1"]);
        assert_eq!(groups[1], ["op:create-consumer", "stream:A/S1", "via:2"]);
        assert_eq!(groups[3], ["action:crash"]);
        // Groups of one step are the single removals' work; the largest go first.
        assert_eq!(related_groups::<MetaSystem>(&scenario), ["op:create-stream", "stream:A/S1", "via:1"]);
    }

    /// A scenario of 125 steps or more tries 8 seeds a step; a smaller one as many as 1,000
    /// runs allow, up to 128 a step; the count never depends on anything but the steps.
    #[test]
    fn small_scenarios_try_more_seeds_a_step() {
        assert_eq!(reseeds_per_step(800), 8);
        assert_eq!(reseeds_per_step(125), 8);
        assert_eq!(reseeds_per_step(111), 9);
        assert_eq!(reseeds_per_step(9), 111);
        assert_eq!(reseeds_per_step(8), 125);
        assert_eq!(reseeds_per_step(2), 128);
        assert_eq!(reseeds_per_step(0), 128);
        // A pass costs at most about RESEED_RUNS_SMALL runs below 125 steps.
        for steps in 8..125 {
            assert!(reseeds_per_step(steps) * steps as u64 <= RESEED_RUNS_SMALL, "{steps} steps");
        }
    }

    /// A pass's tally sits at its place in `Pass::ALL`, which the `passes:` line follows.
    #[test]
    fn every_pass_is_tallied_at_its_own_place() {
        for (i, pass) in Pass::ALL.iter().enumerate() {
            assert_eq!(*pass as usize, i, "{}", pass.name());
        }
    }
}
