//! The executor: scenarios become libtest-mimic trials, and each trial streams
//! its events to the run's reporters as they happen. Outcomes map onto cargo
//! test's words: pass is ok, unsupported is ignored with its reason, fail and
//! broken fail.

use crate::discover::Loaded;
use crate::reporting::{RecordFold, Reporters, RunEvent, TrialInfo, TrialRecord};
use libtest_mimic::{Completion, Failed, Trial};
use orphanage_scenario::{Event, Outcome};
use std::sync::Arc;
use std::time::Instant;

/// Runs one scenario on a target, handing on each event as it happens; the
/// last one is always `Finished`.
pub type Runner = Arc<dyn Fn(&Loaded, &mut dyn FnMut(&Event)) + Send + Sync>;

/// One target's trials: `prefix` begins their names (`runc:`; the host's is
/// empty) and `label` names the target in reports.
pub struct TargetTrials {
    pub prefix: String,
    pub label: String,
    pub runner: Runner,
    /// Take a trial's duration from the agent's own clock (its steps' time):
    /// a VM's trials all wait for one boot, so their wall time says nothing
    /// about the scenario.
    pub agent_clock: bool,
}

/// What libtest-mimic prints for an outcome. A failure names the scenario's file.
pub fn completion(record: &TrialRecord) -> Result<Completion, Failed> {
    match record.outcome {
        Outcome::Pass => Ok(Completion::Completed),
        Outcome::Unsupported => Ok(Completion::ignored_with(format!(
            "unsupported: {}",
            record.reason
        ))),
        Outcome::Fail | Outcome::Broken => Err(record.failure_message().into()),
    }
}

/// The trial's identity, as reporters see it.
pub fn trial_info(prefix: &str, label: &str, l: &Loaded) -> TrialInfo {
    TrialInfo {
        name: format!("{prefix}{}", l.name),
        area: l.area.clone(),
        file: l.file.clone(),
        target: label.to_string(),
    }
}

/// One trial per scenario and target.
pub fn build(loaded: &[Loaded], targets: &[TargetTrials], reporters: Arc<Reporters>) -> Vec<Trial> {
    let mut trials = Vec::new();
    for t in targets {
        for l in loaded {
            let info = trial_info(&t.prefix, &t.label, l);
            let (loaded, runner, reporters) = (l.clone(), t.runner.clone(), reporters.clone());
            let agent_clock = t.agent_clock;
            trials.push(Trial::ignorable_test(info.name.clone(), move || {
                run_trial(&info, &loaded, (&runner, agent_clock), &reporters)
            }));
        }
    }
    trials
}

/// One trial: its events go to the reporters as they happen, and are folded
/// into its record on the way.
fn run_trial(
    info: &TrialInfo,
    loaded: &Loaded,
    (runner, agent_clock): (&Runner, bool),
    reporters: &Reporters,
) -> Result<Completion, Failed> {
    reporters.emit(&RunEvent::TrialStarted { trial: info });
    let start = Instant::now();
    let mut fold = RecordFold::default();
    runner(loaded, &mut |event| {
        fold.take(event);
        reporters.emit(&RunEvent::Scenario { trial: info, event });
    });
    if crate::live::interrupted() {
        crate::live::stand_down(); // the interrupt thread reports and exits
    }
    let duration = if agent_clock {
        fold.steps()
    } else {
        start.elapsed()
    };
    let record = fold.finish(info, duration);
    reporters.emit(&RunEvent::TrialFinished {
        trial: info,
        record: &record,
    });
    completion(&record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporting::{ReportError, Reporter};
    use orphanage_scenario::Verdict;
    use rstest::rstest;
    use std::sync::Mutex;
    use std::time::Duration;

    fn record(v: Verdict) -> TrialRecord {
        let info = TrialInfo {
            name: "a::b".into(),
            area: "a".into(),
            file: "suites/a/b.yaml".into(),
            target: "host".into(),
        };
        TrialRecord::from_events(
            &info,
            &[Event::Finished {
                verdict: v,
                steps_ms: 0.0,
            }],
            Duration::ZERO,
        )
    }

    #[rstest]
    #[case::pass(Verdict::pass(), Some(None))]
    #[case::unsupported(
        Verdict::unsupported("prctl(PR_SET_CHILD_SUBREAPER): EINVAL"),
        Some(Some("unsupported: prctl(PR_SET_CHILD_SUBREAPER): EINVAL"))
    )]
    #[case::fail(
        Verdict::fail("leaf's parent: expected sub (pid 3), observed init (pid 1)"),
        None
    )]
    #[case::broken(Verdict::broken("agent killed by SIGSEGV"), None)]
    fn outcomes_map_onto_cargo_test(
        #[case] verdict: Verdict,
        #[case] expected: Option<Option<&str>>,
    ) {
        let result = completion(&record(verdict.clone()));
        match (result, expected) {
            (Ok(Completion::Completed), Some(None)) => {}
            (Ok(Completion::Ignored { reason }), Some(Some(r))) => {
                assert_eq!(reason.as_deref(), Some(r))
            }
            (Err(f), None) => {
                let m = f.message().unwrap();
                assert!(m.starts_with("suites/a/b.yaml: "), "{m}");
                assert!(m.ends_with(&verdict.reason));
                assert_eq!(m.contains(" broken: "), verdict.outcome == Outcome::Broken);
            }
            (Ok(_), e) => panic!("{verdict:?} completed, expected {e:?}"),
            (Err(f), e) => panic!("{verdict:?} failed with {:?}, expected {e:?}", f.message()),
        }
    }

    /// What a reporter heard, one line per event.
    struct Heard(Arc<Mutex<Vec<String>>>);

    impl Reporter for Heard {
        fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
            let line = match event {
                RunEvent::RunStarted { selected } => format!("run {selected}"),
                RunEvent::TrialStarted { trial } => format!("start {}", trial.name),
                RunEvent::Scenario { trial, event } => format!("{} {event:?}", trial.name),
                RunEvent::TrialFinished { record, .. } => {
                    format!("end {} {} {}", record.name, record.outcome, record.file)
                }
                RunEvent::RunFinished => "finished".into(),
            };
            self.0.lock().unwrap().push(line);
            Ok(())
        }
    }

    #[test]
    fn events_reach_reporters_while_the_trial_runs() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let reporters = Arc::new(Reporters::new(vec![Box::new(Heard(heard.clone()))]));
        let seen_mid_run = Arc::new(Mutex::new(0));
        let (h, s) = (heard.clone(), seen_mid_run.clone());
        // The runner checks, between its two events, that the first has
        // already been heard: streaming, not a buffer handed over at the end.
        let runner: Runner = Arc::new(move |_, on_event| {
            on_event(&Event::Started {
                pid: 7,
                mode: orphanage_scenario::RootMode::PidNamespace,
            });
            *s.lock().unwrap() = h.lock().unwrap().len();
            on_event(&Event::Finished {
                verdict: Verdict::pass(),
                steps_ms: 0.0,
            });
        });
        let loaded = Loaded {
            name: "a::b".into(),
            area: "a".into(),
            file: "suites/a/b.yaml".into(),
            scenario: orphanage_scenario::parse(
                "b.yaml",
                "checks: x\nrefs: [y]\nsteps:\n  - spawn: {name: a}\n",
            )
            .unwrap(),
        };
        let info = trial_info("runc:", "runc", &loaded);
        let result = run_trial(&info, &loaded, (&runner, false), &reporters);
        assert!(matches!(result, Ok(Completion::Completed)));
        reporters.finish().unwrap();
        assert_eq!(
            *seen_mid_run.lock().unwrap(),
            2,
            "{:?}",
            heard.lock().unwrap()
        );
        let heard = heard.lock().unwrap();
        assert_eq!(heard[0], "start runc:a::b");
        assert!(heard[1].starts_with("runc:a::b Started"));
        assert!(heard[2].starts_with("runc:a::b Finished"));
        assert_eq!(heard[3], "end runc:a::b pass suites/a/b.yaml");
        assert_eq!(heard[4], "finished");
    }
}
