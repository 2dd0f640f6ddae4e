//! The executor: runs the trials the filters select, `--test-threads` at a
//! time, and tells the reporters everything as it happens. It never formats
//! output: the terminal's lines are a reporter like the JSON report.

use crate::filters::Filters;
use crate::reporting::{Conclusion, Reporters, RunEvent, TrialInfo, TrialRecord};
use orphanage_scenario::Event;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Instant;

/// Runs one trial, handing on each of its events as it happens, and returns
/// the trial's record.
pub type TrialBody = Box<dyn FnOnce(&mut dyn FnMut(&Event)) -> TrialRecord + Send>;

/// One scenario on one target, ready to run.
pub struct Trial {
    pub info: TrialInfo,
    pub body: TrialBody,
}

/// `--test-threads`, or as cargo test does without it: as many trials at a
/// time as the machine runs threads in parallel.
pub fn threads(test_threads: Option<usize>) -> usize {
    test_threads
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1)
}

/// The trials the filters select, in the order given, and how many they
/// leave out.
fn select(trials: Vec<Trial>, filters: &Filters) -> (Vec<Trial>, usize) {
    let before = trials.len();
    let selected: Vec<Trial> = trials
        .into_iter()
        .filter(|t| filters.selects(&t.info.name))
        .collect();
    let filtered_out = before - selected.len();
    (selected, filtered_out)
}

/// `--list`: names what would run, runs nothing.
pub fn list(trials: Vec<Trial>, filters: &Filters, reporters: &Reporters) {
    let (selected, _) = select(trials, filters);
    let infos: Vec<TrialInfo> = selected.into_iter().map(|t| t.info).collect();
    reporters.emit(&RunEvent::TrialsListed { trials: &infos });
}

/// Runs the selected trials on `threads` threads (on this one when it is 1).
/// They start in the order given, each taken by the next free thread; their
/// `TrialStarted` events come in that order too.
pub fn execute(
    trials: Vec<Trial>,
    filters: &Filters,
    threads: usize,
    reporters: &Reporters,
) -> Conclusion {
    let start = Instant::now();
    let (selected, filtered_out) = select(trials, filters);
    let infos: Vec<TrialInfo> = selected.iter().map(|t| t.info.clone()).collect();
    reporters.emit(&RunEvent::ExecutionStarted {
        trials: &infos,
        threads,
    });
    let conclusion = Mutex::new(Conclusion {
        filtered_out: filtered_out as u64,
        ..Conclusion::default()
    });
    let queue = Mutex::new(selected.into_iter());
    // Taking the next trial and announcing it happen under the queue's lock,
    // so the order they start in is the order given, whatever the threads do.
    let next = || {
        let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
        let trial = queue.next()?;
        reporters.emit(&RunEvent::TrialStarted { trial: &trial.info });
        Some(trial)
    };
    let work = || {
        while let Some(trial) = next() {
            run_one(trial, reporters, &conclusion);
        }
    };
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        });
    }
    let mut conclusion = conclusion.into_inner().unwrap_or_else(|p| p.into_inner());
    conclusion.elapsed = start.elapsed();
    reporters.emit(&RunEvent::ExecutionFinished {
        conclusion: &conclusion,
    });
    conclusion
}

/// One trial, already announced: its events go to the reporters as they
/// happen. A panic in the harness's code fails the trial, as in cargo test,
/// and the other trials go on.
fn run_one(trial: Trial, reporters: &Reporters, conclusion: &Mutex<Conclusion>) {
    let Trial { info, body } = trial;
    let ran = catch_unwind(AssertUnwindSafe(|| {
        body(&mut |event| {
            reporters.emit(&RunEvent::Scenario {
                trial: &info,
                event,
            })
        })
    }));
    let tally = |record: Option<&TrialRecord>| {
        let mut c = conclusion.lock().unwrap_or_else(|p| p.into_inner());
        match record {
            Some(r) => c.count(r.outcome),
            None => c.failed += 1,
        }
    };
    match ran {
        Ok(record) => {
            tally(Some(&record));
            reporters.emit(&RunEvent::TrialFinished {
                trial: &info,
                record: &record,
            });
        }
        Err(payload) => {
            tally(None);
            let message = match payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
            {
                Some(text) => format!("test panicked: {text}"),
                None => "test panicked".to_string(),
            };
            reporters.emit(&RunEvent::TrialPanicked {
                trial: &info,
                message: &message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporting::{ReportError, Reporter};
    use orphanage_scenario::{Outcome, Verdict};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    fn info(name: &str) -> TrialInfo {
        TrialInfo {
            name: name.into(),
            area: name.split("::").next().unwrap().into(),
            file: format!("suites/{}.yaml", name.replace("::", "/")).into(),
            target: "host".into(),
        }
    }

    /// A trial that runs `before`, then reports `verdict`.
    fn trial(name: &str, verdict: Verdict, before: impl FnOnce() + Send + 'static) -> Trial {
        let i = info(name);
        Trial {
            info: i.clone(),
            body: Box::new(move |on_event| {
                before();
                let finished = Event::Finished {
                    verdict,
                    steps_ms: 0.0,
                };
                on_event(&finished);
                TrialRecord::from_events(&i, &[finished], Duration::ZERO)
            }),
        }
    }

    /// What a reporter heard, one line per event.
    #[derive(Clone, Default)]
    struct Heard(Arc<Mutex<Vec<String>>>);

    impl Reporter for Heard {
        fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
            let line = match event {
                RunEvent::ExecutionStarted { trials, threads } => {
                    let names: Vec<&str> = trials.iter().map(|t| t.name.as_str()).collect();
                    format!("execute {names:?} on {threads} threads")
                }
                RunEvent::TrialsListed { trials } => format!("list {}", trials.len()),
                RunEvent::TrialStarted { trial } => format!("start {}", trial.name),
                RunEvent::Scenario { trial, .. } => format!("event {}", trial.name),
                RunEvent::TrialFinished { record, .. } => {
                    format!("end {} {}", record.name, record.outcome)
                }
                RunEvent::TrialPanicked { trial, message } => {
                    format!("panicked {} {message}", trial.name)
                }
                RunEvent::ExecutionFinished { conclusion } => format!(
                    "finished {} passed {} failed {} ignored",
                    conclusion.passed, conclusion.failed, conclusion.ignored
                ),
                RunEvent::RunStarted { .. } | RunEvent::RunFinished => return Ok(()),
            };
            self.0.lock().unwrap().push(line);
            Ok(())
        }
    }

    fn heard_run(
        trials: Vec<Trial>,
        filters: &Filters,
        threads: usize,
    ) -> (Conclusion, Vec<String>) {
        let heard = Heard::default();
        let reporters = Reporters::new(vec![Box::new(heard.clone())]);
        let c = execute(trials, filters, threads, &reporters);
        let lines = heard.0.lock().unwrap().clone();
        (c, lines)
    }

    fn filters(args: &[&str]) -> Filters {
        let mut argv = vec!["orphanage"];
        argv.extend(args);
        let parsed = <libtest_mimic::Arguments as clap::Parser>::parse_from(argv);
        Filters::new(&parsed, &[])
    }

    fn four() -> Vec<Trial> {
        vec![
            trial("zombie::a", Verdict::pass(), || {}),
            trial(
                "memfd::b",
                Verdict::unsupported("memfd_create: ENOSYS"),
                || {},
            ),
            trial("zombie::c", Verdict::fail("why"), || {}),
            trial("kill::d", Verdict::broken("agent killed"), || {}),
        ]
    }

    #[test]
    fn the_filtered_out_are_counted_and_the_rest_run_in_order() {
        let (c, heard) = heard_run(four(), &filters(&["zombie::"]), 1);
        assert_eq!(
            heard,
            [
                "execute [\"zombie::a\", \"zombie::c\"] on 1 threads",
                "start zombie::a",
                "event zombie::a",
                "end zombie::a pass",
                "start zombie::c",
                "event zombie::c",
                "end zombie::c fail",
                "finished 1 passed 1 failed 0 ignored",
            ]
        );
        assert_eq!(
            (c.passed, c.failed, c.ignored, c.filtered_out),
            (1, 1, 0, 2)
        );
        let (c, _) = heard_run(four(), &filters(&["--skip", "zombie::"]), 1);
        assert_eq!(
            (c.passed, c.failed, c.ignored, c.filtered_out),
            (0, 1, 1, 2)
        );
        let (c, _) = heard_run(four(), &filters(&[]), 1);
        assert_eq!(
            (c.passed, c.failed, c.ignored, c.filtered_out),
            (1, 2, 1, 0)
        );
        assert!(c.has_failed());
    }

    #[test]
    fn several_threads_run_trials_at_once_and_start_them_in_order() {
        // Each of the first two trials waits for the other: they finish only
        // if two threads run them at the same time.
        let both = Arc::new(Barrier::new(2));
        let (b1, b2) = (both.clone(), both.clone());
        let trials = vec![
            trial("a::first", Verdict::pass(), move || {
                b1.wait();
            }),
            trial("a::second", Verdict::pass(), move || {
                b2.wait();
            }),
            trial("a::third", Verdict::pass(), || {}),
            trial("a::fourth", Verdict::pass(), || {}),
            trial("a::fifth", Verdict::pass(), || {}),
        ];
        let (c, heard) = heard_run(trials, &filters(&[]), 3);
        assert_eq!(c.passed, 5);
        let started: Vec<&str> = heard
            .iter()
            .filter_map(|l| l.strip_prefix("start "))
            .collect();
        assert_eq!(
            started,
            ["a::first", "a::second", "a::third", "a::fourth", "a::fifth"]
        );
        assert!(heard[0].ends_with("on 3 threads"), "{heard:?}");
        assert_eq!(
            heard.last().unwrap(),
            "finished 5 passed 0 failed 0 ignored"
        );
    }

    #[test]
    fn one_thread_runs_each_trial_on_the_callers_thread_after_the_last() {
        let caller = std::thread::current().id();
        let running = Arc::new(Mutex::new(0));
        let trials = (0..3)
            .map(|i| {
                let running = running.clone();
                trial(&format!("a::t{i}"), Verdict::pass(), move || {
                    assert_eq!(std::thread::current().id(), caller);
                    let mut r = running.lock().unwrap();
                    *r += 1;
                    assert_eq!(*r, 1, "two trials at once");
                    *r -= 1;
                })
            })
            .collect();
        let (c, _) = heard_run(trials, &filters(&[]), 1);
        assert_eq!(c.passed, 3);
    }

    #[test]
    fn a_panicking_trial_fails_and_the_others_go_on() {
        let trials = vec![
            trial("a::panics", Verdict::pass(), || panic!("boom")),
            trial("a::passes", Verdict::pass(), || {}),
        ];
        let (c, heard) = heard_run(trials, &filters(&[]), 2);
        assert_eq!((c.passed, c.failed), (1, 1));
        assert!(
            heard.contains(&"panicked a::panics test panicked: boom".to_string()),
            "{heard:?}"
        );
        assert!(
            !heard.iter().any(|l| l.starts_with("end a::panics")),
            "{heard:?}"
        );
    }

    #[test]
    fn a_list_names_the_selected_and_runs_nothing() {
        let heard = Heard::default();
        let reporters = Reporters::new(vec![Box::new(heard.clone())]);
        let trials = vec![
            trial("zombie::a", Verdict::pass(), || panic!("ran")),
            trial("kill::b", Verdict::pass(), || panic!("ran")),
        ];
        list(trials, &filters(&["kill"]), &reporters);
        assert_eq!(*heard.0.lock().unwrap(), ["list 1"]);
        assert_eq!(reporters.finished_trials(), 0);
    }

    #[test]
    fn outcomes_reach_the_conclusion() {
        let (c, heard) = heard_run(four(), &filters(&["--exact", "kill::d"]), 2);
        assert_eq!((c.failed, c.filtered_out), (1, 3));
        assert!(heard.contains(&format!("end kill::d {}", Outcome::Broken)));
    }

    /// Scenario outcomes, and a panic, as libtest-mimic trials: what it made
    /// of a trial's `Completion` or `Failed` before the executor was ours.
    fn as_libtest_trials(verdicts: &[(&str, Option<Verdict>)]) -> Vec<libtest_mimic::Trial> {
        use libtest_mimic::{Completion, Trial};
        verdicts
            .iter()
            .map(|(name, verdict)| {
                let Some(verdict) = verdict else {
                    return Trial::test(*name, || panic!("boom"));
                };
                let record = TrialRecord::from_events(
                    &info(name),
                    &[Event::Finished {
                        verdict: verdict.clone(),
                        steps_ms: 0.0,
                    }],
                    Duration::ZERO,
                );
                Trial::ignorable_test(*name, move || match record.outcome {
                    Outcome::Pass => Ok(Completion::Completed),
                    Outcome::Unsupported => Ok(Completion::ignored_with(format!(
                        "unsupported: {}",
                        record.reason
                    ))),
                    Outcome::Fail | Outcome::Broken => Err(record.failure_message().into()),
                })
            })
            .collect()
    }

    /// A log file's text, without the run's duration.
    fn untimed(path: &std::path::Path) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        let finished = regex_free_replace(&text, "finished in ", 's');
        regex_free_replace(&finished, "\"exec_time\": ", ' ')
    }

    /// `text` with whatever follows each `marker` up to `end` replaced by `X`.
    fn regex_free_replace(text: &str, marker: &str, end: char) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(marker) {
            out.push_str(&rest[..i + marker.len()]);
            rest = &rest[i + marker.len()..];
            let j = rest.find(end).unwrap_or(rest.len());
            out.push('X');
            rest = &rest[j..];
        }
        out.push_str(rest);
        out
    }

    /// The executor and the terminal reporter print what libtest-mimic
    /// printed for the same trials and flags, byte for byte but the time: a
    /// line per trial and its padding, ignored reasons, the failures, the
    /// summary and `--list`, in each format, coloured or not.
    #[rstest::rstest]
    #[case::pretty(&[])]
    #[case::filtered(&["s", "--skip", "kill"])]
    #[case::exact(&["--exact", "zombie::waits"])]
    #[case::terse(&["--format", "terse"])]
    #[case::quiet(&["-q", "--color", "always"])]
    #[case::json(&["--format", "json"])]
    #[case::coloured(&["--color", "always"])]
    #[case::list(&["--list", "s"])]
    #[case::list_terse(&["--list", "--format", "terse"])]
    fn the_terminal_prints_what_libtest_mimic_printed(#[case] flags: &[&str]) {
        let verdicts: &[(&str, Option<Verdict>)] = &[
            ("zombie::waits", Some(Verdict::pass())),
            (
                "kill::races_a_long_name",
                Some(Verdict::fail("expected a, observed \u{1b}[1mb\u{1b}[0m")),
            ),
            (
                "memfd::seals",
                Some(Verdict::unsupported(
                    "memfd_create(MFD_NOEXEC_SEAL): EINVAL",
                )),
            ),
            (
                "pid1::x",
                Some(Verdict::broken("agent killed by SIGSEGV\nsecond line")),
            ),
            ("subreaper::panics", None),
            ("sibling::passes_too", Some(Verdict::pass())),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (theirs, ours) = (dir.path().join("libtest"), dir.path().join("ours"));
        let parse = |log: &std::path::Path| {
            let mut argv = vec!["orphanage", "--test-threads", "1", "--logfile"];
            argv.push(log.to_str().unwrap());
            argv.extend(flags);
            <libtest_mimic::Arguments as clap::Parser>::parse_from(argv)
        };
        let their_args = parse(&theirs);
        let their_conclusion = libtest_mimic::run(&their_args, as_libtest_trials(verdicts));

        let args = parse(&ours);
        let terminal = crate::reporting::TerminalReport::for_arguments(&args).unwrap();
        let reporters = Reporters::new(vec![Box::new(terminal)]);
        let trials = verdicts
            .iter()
            .map(|(name, verdict)| match verdict {
                Some(v) => trial(name, v.clone(), || {}),
                None => trial(name, Verdict::pass(), || panic!("boom")),
            })
            .collect();
        let filters = Filters::new(&args, &[]);
        let conclusion = if args.list {
            list(trials, &filters, &reporters);
            Conclusion::default()
        } else {
            execute(trials, &filters, threads(args.test_threads), &reporters)
        };
        reporters.finish().unwrap();
        drop(reporters);
        let printed = untimed(&theirs);
        assert!(printed.contains("::"), "{printed}");
        assert_eq!(untimed(&ours), printed);
        let counts = |c: &libtest_mimic::Conclusion| {
            (
                c.num_passed,
                c.num_failed,
                c.num_ignored,
                c.num_filtered_out,
            )
        };
        assert_eq!(
            (
                conclusion.passed,
                conclusion.failed,
                conclusion.ignored,
                conclusion.filtered_out
            ),
            counts(&their_conclusion)
        );
    }

    #[test]
    fn threads_default_to_the_machines_parallelism() {
        assert_eq!(threads(Some(3)), 3);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(threads(None), cores);
    }
}
