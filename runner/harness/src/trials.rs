//! Scenarios become trials: one per scenario and target, named with the
//! target's prefix, whose body runs the scenario and folds its events into
//! its record as they stream past. The executor runs them.

use crate::discover::Loaded;
use crate::executor::Trial;
use crate::reporting::{RecordFold, TrialInfo, TrialRecord};
use orphanage_scenario::Event;
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

/// The trial's identity, as reporters see it.
pub fn trial_info(prefix: &str, label: &str, l: &Loaded) -> TrialInfo {
    TrialInfo {
        name: format!("{prefix}{}", l.name),
        area: l.area.clone(),
        file: l.file.clone(),
        target: label.to_string(),
    }
}

/// One trial per scenario and target, target by target.
pub fn build(loaded: &[Loaded], targets: &[TargetTrials]) -> Vec<Trial> {
    let mut trials = Vec::new();
    for t in targets {
        for l in loaded {
            let info = trial_info(&t.prefix, &t.label, l);
            let (loaded, runner, agent_clock) = (l.clone(), t.runner.clone(), t.agent_clock);
            let body_info = info.clone();
            trials.push(Trial {
                info,
                body: Box::new(move |on_event| {
                    run_trial(&body_info, &loaded, (&runner, agent_clock), on_event)
                }),
            });
        }
    }
    trials
}

/// One trial's scenario: its events are handed on as they happen, and are
/// folded into its record on the way.
fn run_trial(
    info: &TrialInfo,
    loaded: &Loaded,
    (runner, agent_clock): (&Runner, bool),
    on_event: &mut dyn FnMut(&Event),
) -> TrialRecord {
    let start = Instant::now();
    let mut fold = RecordFold::default();
    runner(loaded, &mut |event| {
        fold.take(event);
        on_event(event);
    });
    if crate::live::interrupted() {
        crate::live::stand_down(); // the interrupt thread reports and exits
    }
    let duration = if agent_clock {
        fold.steps()
    } else {
        start.elapsed()
    };
    fold.finish(info, duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orphanage_scenario::{Outcome, Verdict};
    use std::sync::Mutex;

    fn loaded() -> Loaded {
        Loaded {
            name: "a::b".into(),
            area: "a".into(),
            file: "suites/a/b.yaml".into(),
            scenario: orphanage_scenario::parse(
                "b.yaml",
                "checks: x\nrefs: [y]\nsteps:\n  - spawn: {name: a}\n",
            )
            .unwrap(),
        }
    }

    #[test]
    fn events_are_handed_on_while_the_trial_runs() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let seen_mid_run = Arc::new(Mutex::new(0));
        let (h, s) = (heard.clone(), seen_mid_run.clone());
        // The runner checks, between its two events, that the first has
        // already been handed on: streaming, not a buffer handed over at the end.
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
        let targets = [TargetTrials {
            prefix: "runc:".into(),
            label: "runc".into(),
            runner,
            agent_clock: false,
        }];
        let mut trials = build(&[loaded()], &targets);
        assert_eq!(trials.len(), 1);
        let trial = trials.remove(0);
        assert_eq!(trial.info.name, "runc:a::b");
        assert_eq!(trial.info.target, "runc");
        let record = (trial.body)(&mut |event| heard.lock().unwrap().push(format!("{event:?}")));
        assert_eq!(*seen_mid_run.lock().unwrap(), 1);
        let heard = heard.lock().unwrap();
        assert!(heard[0].starts_with("Started"), "{heard:?}");
        assert!(heard[1].starts_with("Finished"), "{heard:?}");
        assert_eq!(record.outcome, Outcome::Pass);
        assert_eq!(
            (record.name.as_str(), record.file.as_str()),
            ("runc:a::b", "suites/a/b.yaml")
        );
    }

    #[test]
    fn trials_go_target_by_target() {
        let runner: Runner = Arc::new(|_, _| {});
        let target = |prefix: &str| TargetTrials {
            prefix: prefix.into(),
            label: prefix.trim_end_matches(':').into(),
            runner: runner.clone(),
            agent_clock: true,
        };
        let mut other = loaded();
        other.name = "a::c".into();
        let trials = build(&[loaded(), other], &[target("runc:"), target("crun:")]);
        let names: Vec<&str> = trials.iter().map(|t| t.info.name.as_str()).collect();
        assert_eq!(names, ["runc:a::b", "runc:a::c", "crun:a::b", "crun:a::c"]);
    }

    #[test]
    fn a_stream_without_a_verdict_is_broken() {
        let runner: Runner = Arc::new(|_, _| {});
        let targets = [TargetTrials {
            prefix: String::new(),
            label: "host".into(),
            runner,
            agent_clock: true,
        }];
        let trial = build(&[loaded()], &targets).remove(0);
        let record = (trial.body)(&mut |_| {});
        assert_eq!(record.outcome, Outcome::Broken);
    }
}
