//! The exploration loop: generate trees from the seed, check them on the
//! target in parallel, and on the first disagreement shrink it to a minimal
//! tree, save that as a scenario and run the saved file once more.

use super::compare::Checked;
use super::comparison::{verdict_of, Comparison, Findings};
use super::options::Options;
use super::save;
use super::shrink;
use crate::live;
use crate::reporting::{RecordFold, ReportError, Reporters, RunEvent, TrialInfo};
use crate::targets::Bound;
use orphanage_scenario::model::{
    tree_strategy, tree_strategy_without_pid_namespaces, Defect, Generated, Tree,
};
use orphanage_scenario::{parse, Event, Outcome};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shrinking stops after this many runs or this long, keeping the smallest so far.
const MAX_SHRINK_RUNS: usize = 2000;
const MAX_SHRINK_TIME: Duration = Duration::from_secs(120);

/// How many steps of shrinking one batch speculates on, on a target that
/// runs a batch at once (a VM: one boot): up to 2^6 - 1 = 63 trees, which a
/// boot runs side by side in a few seconds, for six boots' worth of steps.
const SPECULATION_DEPTH: usize = 6;

/// Case `case` of `seed` always draws the same tree, whichever job draws it.
fn runner_for(seed: u64, case: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&case.to_le_bytes());
    bytes[16..24].copy_from_slice(b"orphanag");
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

fn value_tree(o: &Options, case: u64) -> impl ValueTree<Value = Tree> {
    let strategy = if o.nested_pid_namespaces {
        tree_strategy(o.processes).boxed()
    } else {
        tree_strategy_without_pid_namespaces(o.processes).boxed()
    };
    strategy
        .new_tree(&mut runner_for(o.seed, case))
        .expect("tree strategies never reject")
}

fn checks_text(o: &Options, case: u64, tree: &Tree) -> String {
    format!(
        "A generated tree (seed {:#x}, case {case}, {} processes and threads): every process ends with the parent, state and SIGCHLDs the reference model predicts.",
        o.seed,
        tree.nodes.len()
    )
}

/// Shrinking's trees of case `case`, checked in one batch: through a stream
/// of their own, so that their runs stay out of the run's reports. Each is a
/// trial of its own name, for the comparison tells them apart by name.
fn check_shrinking(
    target: &Bound,
    o: &Options,
    case: u64,
    trees: &[Tree],
) -> Vec<(Generated, Checked)> {
    let comparison = Comparison::default();
    let stream = Stream {
        reporters: &Reporters::new(vec![comparison.reporter()]),
        comparison: &comparison,
        modes: &RootModes::default(),
    };
    let trials = (0..trees.len())
        .map(|i| TrialInfo {
            name: format!("explore::case_{case}_shrinking_{i}"),
            ..trial_info(target, case)
        })
        .collect();
    let trees: Vec<(u64, Tree)> = trees.iter().map(|t| (case, t.clone())).collect();
    check_many(target, o, &trees, trials, &stream)
}

/// Where each tree's events go: the run's reporters, the comparison with the
/// model among them; `modes` counts the ways the trees' roots ran (as the
/// agent's `Started` says: a pid namespace's init, or a subreaper root).
struct Stream<'a> {
    reporters: &'a Reporters,
    comparison: &'a Comparison,
    modes: &'a RootModes,
}

/// A tree as reporters see it: one trial per case.
fn trial_info(target: &Bound, case: u64) -> TrialInfo {
    TrialInfo {
        name: format!("explore::case_{case}"),
        area: "explore".into(),
        // Generated, not read from a file: a disagreement is saved as one.
        file: Default::default(),
        target: target.name().to_string(),
    }
}

/// Checks several trees in one `run_batch` (one boot, on a VM), each against
/// its own predictions. Each tree is a trial (`trials`, one a tree) on the stream: started, its
/// events as they happen, and its record, the comparison's judgement.
/// Returns each tree's scenario (its predictions moved to the comparison,
/// `expected` left empty) and how it went.
fn check_many(
    target: &Bound,
    o: &Options,
    trees: &[(u64, Tree)],
    trials: Vec<TrialInfo>,
    stream: &Stream,
) -> Vec<(Generated, Checked)> {
    let mut generated: Vec<Generated> = trees
        .iter()
        .map(|(case, tree)| tree.to_scenario(&checks_text(o, *case, tree), o.defect))
        .collect();
    let scenarios: Vec<_> = generated.iter().map(Generated::observing_only).collect();
    for (((case, _), g), trial) in trees.iter().zip(&mut generated).zip(&trials) {
        let predictions = std::mem::take(&mut g.expected);
        stream.comparison.expect(&trial.name, *case, predictions);
        stream.reporters.emit(&RunEvent::TrialStarted { trial });
    }
    let mut folds: Vec<RecordFold> = trials.iter().map(|_| RecordFold::default()).collect();
    let started = Instant::now();
    target.run_batch(&scenarios, &mut |i, event| {
        if let Event::Started { mode, .. } = event {
            *stream
                .modes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(mode.as_str())
                .or_default() += 1;
        }
        folds[i].take(event);
        stream.reporters.emit(&RunEvent::Scenario {
            trial: &trials[i],
            event,
        });
    });
    let elapsed = started.elapsed();
    let agent_clock = target.target.agent_clock();
    generated
        .into_iter()
        .zip(trials)
        .zip(folds)
        .map(|((g, trial), mut fold)| {
            let checked = stream.comparison.judge(&trial.name);
            fold.judged(verdict_of(&checked));
            let duration = if agent_clock { fold.steps() } else { elapsed };
            let record = fold.finish(&trial, duration);
            stream.reporters.emit(&RunEvent::TrialFinished {
                trial: &trial,
                record: &record,
            });
            (g, checked)
        })
        .collect()
}

/// How many trees' roots ran each way, by the report's name for the way.
type RootModes = Mutex<std::collections::BTreeMap<&'static str, u64>>;

/// Which cases are done, for the seed and case to resume from.
#[derive(Default)]
struct Progress {
    next: AtomicU64,
    running: Mutex<BTreeSet<u64>>,
    shrinking: Mutex<Option<u64>>,
}

impl Progress {
    fn resume_from(&self) -> u64 {
        if let Some(case) = *self.shrinking.lock().unwrap_or_else(|p| p.into_inner()) {
            return case;
        }
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .first()
            .copied()
            .unwrap_or(self.next.load(Ordering::SeqCst))
    }
}

/// The flags before `explore` that draw the same trees again: without them
/// a seed draws other trees (`--no-pid-namespace` leaves pid namespaces out).
fn tree_flags(o: &Options) -> &'static str {
    if o.nested_pid_namespaces {
        ""
    } else {
        " --no-pid-namespace"
    }
}

fn defect_flag(d: Defect) -> &'static str {
    match d {
        Defect::None => "",
        Defect::NoSubreaper => " --model-defect no-subreaper",
        Defect::NoThreadGroup => " --model-defect no-thread-group",
    }
}

fn print_mismatch(checked: &Checked) {
    if let Checked::Mismatch {
        differences,
        verdict,
    } = checked
    {
        for d in differences {
            println!("    {d}");
        }
        if verdict.outcome != Outcome::Pass {
            println!("    first failing expectation: {}", verdict.reason);
        }
    }
}

/// What the run's stream heard, and how long the cases took.
struct Explored {
    findings: Findings,
    elapsed: Duration,
    processes: u64,
    threads: u64,
}

/// Runs the exploration; returns the exit code: 0 when every tree agreed,
/// 101 on a mismatch or a broken run. Every tree's events go to `reporters`,
/// which hold `comparison`'s reporter; they write once the cases are done,
/// and a report that cannot be written is the error, after everything else.
pub fn explore(
    target: &Bound,
    o: &Options,
    save_dir: &Path,
    reporters: &Reporters,
    comparison: &Comparison,
) -> Result<u8, ReportError> {
    let end = o.from_case.saturating_add(o.cases);
    // A VM runs a batch of trees per boot, using every CPU it has: one boot
    // at a time. Elsewhere each job takes one tree at a time.
    let batch = target.target.batch_size() as u64;
    let jobs = if batch > 1 { 1 } else { o.jobs };
    println!(
        "explore: seed {:#x}{}; cases {}..{}, {} processes and threads each, {}, target {}",
        o.seed,
        if o.seed_given { "" } else { " (random)" },
        o.from_case,
        end,
        o.processes,
        if batch > 1 {
            format!("up to {batch} trees per boot")
        } else {
            format!("{jobs} jobs")
        },
        target.name()
    );
    let progress = Arc::new(Progress::default());
    progress.next.store(o.from_case, Ordering::SeqCst);
    {
        let (progress, seed, processes) = (progress.clone(), o.seed, o.processes);
        let extra = defect_flag(o.defect);
        let before = tree_flags(o);
        live::say_on_interrupt(move || {
            let from = progress.resume_from();
            format!(
                "explore: interrupted; resume with: orphanage{before} explore --seed {seed:#x} --processes {processes} --from-case {from} --cases {}{extra}",
                end.saturating_sub(from)
            )
        });
    }
    let modes = RootModes::default();
    let stream = Stream {
        reporters,
        comparison,
        modes: &modes,
    };
    reporters.emit(&RunEvent::RunStarted {
        selected: usize::try_from(o.cases).unwrap_or(usize::MAX),
    });
    let explored = run_cases(target, o, (batch, jobs, end), &progress, &stream);
    let written = reporters.finish();
    let code = conclude(target, o, save_dir, explored, &modes, &progress);
    written.map(|()| code)
}

/// The cases from `o.from_case` to `end`, `jobs` at a time in batches of
/// `batch`, until one disagrees or breaks (the others running then finish).
fn run_cases(
    target: &Bound,
    o: &Options,
    (batch, jobs, end): (u64, usize, u64),
    progress: &Progress,
    stream: &Stream,
) -> Explored {
    let stop = AtomicBool::new(false);
    let processes = AtomicU64::new(0);
    let threads = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) || live::interrupted() {
                    return;
                }
                let cases = {
                    // Taken and marked running together, so a resume point never skips one.
                    let mut running = progress.running.lock().unwrap_or_else(|p| p.into_inner());
                    let first = progress.next.fetch_add(batch, Ordering::SeqCst);
                    if first >= end {
                        return;
                    }
                    let cases = first..first.saturating_add(batch).min(end);
                    running.extend(cases.clone());
                    cases
                };
                let trees: Vec<(u64, Tree)> = cases
                    .clone()
                    .map(|case| (case, value_tree(o, case).current()))
                    .collect();
                for (_, tree) in &trees {
                    let p = tree.processes();
                    processes.fetch_add(p as u64, Ordering::SeqCst);
                    threads.fetch_add((tree.nodes.len() - p) as u64, Ordering::SeqCst);
                }
                let trials = trees
                    .iter()
                    .map(|(case, _)| trial_info(target, *case))
                    .collect();
                let results = check_many(target, o, &trees, trials, stream);
                if results
                    .iter()
                    .any(|(_, c)| matches!(c, Checked::Broken(_) | Checked::Mismatch { .. }))
                {
                    stop.store(true, Ordering::SeqCst);
                }
                let mut running = progress.running.lock().unwrap_or_else(|p| p.into_inner());
                for case in cases {
                    running.remove(&case);
                }
            });
        }
    });
    if live::interrupted() {
        live::stand_down();
    }
    Explored {
        findings: stream.comparison.findings(),
        elapsed: started.elapsed(),
        processes: processes.into_inner(),
        threads: threads.into_inner(),
    }
}

/// What explore prints once the cases are done, from the comparison's
/// findings: the summary, or the first disagreement (shrunk, saved and run
/// once more); the exit code.
fn conclude(
    target: &Bound,
    o: &Options,
    save_dir: &Path,
    explored: Explored,
    modes: &RootModes,
    progress: &Progress,
) -> u8 {
    let batch = target.target.batch_size() as u64;
    let Explored {
        findings,
        elapsed,
        processes,
        threads,
    } = explored;
    let Findings {
        agreed: passed,
        unsupported,
        unsupported_reason: why,
        disagreements: found,
    } = findings;
    let broken: Vec<u64> = found
        .iter()
        .filter(|(_, c)| matches!(c, Checked::Broken(_)))
        .map(|(case, _)| *case)
        .collect();
    let Some((case, checked)) = found.into_iter().next() else {
        let checked = passed + unsupported;
        let per_tree = |n: u64| n as f64 / checked.max(1) as f64;
        println!(
            "explore: {passed} trees agree with the model in {:.2} s ({:.0} trees/s; {:.1} processes and {:.1} threads per tree){}",
            elapsed.as_secs_f64(),
            checked as f64 / elapsed.as_secs_f64().max(1e-9),
            per_tree(processes),
            per_tree(threads),
            if unsupported > 0 {
                format!("; {unsupported} unsupported: {why}")
            } else {
                String::new()
            }
        );
        let modes = modes.lock().unwrap_or_else(|p| p.into_inner());
        let ways: Vec<String> = modes.iter().map(|(m, n)| format!("{n} {m}")).collect();
        if !ways.is_empty() {
            println!("explore: tree roots ran as: {}", ways.join(", "));
        }
        println!("explore: rerun with --seed {:#x}", o.seed);
        return 0;
    };
    if let Checked::Broken(why) = &checked {
        if batch > 1 && broken.len() > 1 {
            // A VM that fails takes every tree still running in it along:
            // the lowest case need not be the one that did it.
            println!(
                "explore: {} cases of one boot broke together ({}); whichever caused it is among them, each rerun alone with --from-case N --cases 1: {why}",
                broken.len(),
                broken
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else {
            println!(
                "explore: case {case} broke (the harness or agent failed, not the kernel): {why}"
            );
        }
        println!(
            "explore: rerun with --seed {:#x} --from-case {case}",
            o.seed
        );
        return 101;
    }
    // Case K of the seed always draws the same tree: drawn again to shrink.
    let tree = value_tree(o, case).current();
    println!(
        "explore: case {case} ({} processes and threads): the kernel and the model disagree (expected is the model):",
        tree.nodes.len()
    );
    print_mismatch(&checked);
    *progress.shrinking.lock().unwrap_or_else(|p| p.into_inner()) = Some(case);
    let (minimal, runs) = shrink(target, o, case, tree, checked);
    if live::interrupted() {
        live::stand_down();
    }
    let (generated, checked) = minimal;
    let nodes = generated
        .scenario
        .steps
        .iter()
        .filter(|s| s.keyword() == "spawn")
        .count();
    println!("explore: shrunk in {runs} runs to {nodes} processes and threads:");
    print_mismatch(&checked);
    let Checked::Mismatch {
        differences,
        verdict,
    } = &checked
    else {
        unreachable!("shrinking keeps a mismatch");
    };
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let header = save::header(&save::Found {
        seed: o.seed,
        case,
        processes: o.processes,
        tree_flags: tree_flags(o),
        extra_flags: defect_flag(o.defect),
        kernel: &kernel,
        target: target.name(),
        differences,
        verdict,
    });
    let name = save::file_name(o.seed, case);
    let path = match save::write(save_dir, &name, &generated.scenario, &header) {
        Ok(p) => p,
        Err(e) => {
            println!(
                "explore: cannot write {}: {e}",
                save_dir.join(&name).display()
            );
            return 101;
        }
    };
    println!("explore: saved {}", path.display());
    // The file must be what `--check` accepts, and fail when run normally.
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    match parse(&path.display().to_string(), &text) {
        Err(e) => println!("explore: the saved file does not parse: {e}"),
        Ok(saved) => {
            let mut verdict = None;
            target.run(&saved, &mut |e| {
                if let Event::Finished { verdict: v, .. } = e {
                    verdict = Some(v.clone());
                }
            });
            match verdict {
                Some(v) if v.outcome == Outcome::Fail => {
                    println!("explore: run normally, it fails: {}", v.reason)
                }
                Some(v) => println!(
                    "explore: run normally, it is {} ({}): the mismatch shows only in the observations above",
                    v.outcome, v.reason
                ),
                None => println!("explore: run normally, it reported no verdict"),
            }
        }
    }
    println!(
        "explore: rerun with --seed {:#x} --from-case {case}{}",
        o.seed,
        defect_flag(o.defect)
    );
    101
}

/// proptest's shrinking, run on the target (see shrink.rs): simplify while
/// the mismatch stays, complicate when it goes away; on a target that runs
/// a batch at once, speculating SPECULATION_DEPTH steps ahead per batch.
/// Returns the smallest failing case and how many runs its path took.
fn shrink(
    target: &Bound,
    o: &Options,
    case: u64,
    tree: Tree,
    checked: Checked,
) -> ((Generated, Checked), usize) {
    debug_assert_eq!(value_tree(o, case).current(), tree);
    let depth = if target.target.batch_size() > 1 {
        SPECULATION_DEPTH
    } else {
        1
    };
    let started = Instant::now();
    let shrunk = shrink::shrink(
        || value_tree(o, case),
        depth,
        |trees| check_shrinking(target, o, case, trees),
        |(_, checked)| matches!(checked, Checked::Mismatch { .. }),
        |steps| {
            steps < MAX_SHRINK_RUNS && started.elapsed() < MAX_SHRINK_TIME && !live::interrupted()
        },
    );
    if depth > 1 && shrunk.batches > 0 {
        println!(
            "explore: shrinking ran {} trees in {} batches ({} steps ahead each), where one tree a batch would have taken {}",
            shrunk.trees_run, shrunk.batches, depth, shrunk.steps
        );
    }
    let best = shrunk.best.unwrap_or_else(|| {
        (
            tree.to_scenario(&checks_text(o, case, &tree), o.defect),
            checked,
        )
    });
    (best, shrunk.steps)
}
