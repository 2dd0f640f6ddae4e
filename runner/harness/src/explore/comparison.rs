//! explore's comparison with the model, as a reporter: it hears every tree's
//! events on the run's one stream, beside whatever other reporters the
//! command line asked for (`--report`, `--events`, `--junit`), and keeps how
//! each tree went for explore to print at the end.
//!
//! The executor (run.rs) hands over each tree's predictions before the tree
//! starts, and asks for its judgement once the target is done with it: the
//! judgement, not the agent's verdict, is the tree's record (a generated tree
//! runs without its expectation steps, so its agent passes whatever the
//! kernel did).

use super::compare::{Checked, ComparisonFold, Predictions};
use crate::reporting::{ReportError, Reporter, RunEvent};
use orphanage_scenario::{Outcome, Verdict};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What explore prints at the end: how many trees agreed or were
/// unsupported, and every tree that did neither.
#[derive(Debug, Default)]
pub struct Findings {
    pub agreed: u64,
    pub unsupported: u64,
    /// The reason the last unsupported tree gave (they all give the same one:
    /// every tree needs the same features).
    pub unsupported_reason: String,
    /// Each tree that disagreed with the model or broke, by case.
    pub disagreements: Vec<(u64, Checked)>,
}

#[derive(Debug, Default)]
struct Shared {
    /// The trees running, by trial name: their case and comparison so far.
    running: HashMap<String, (u64, ComparisonFold)>,
    findings: Findings,
}

/// The executor's handle on the comparison; `reporter` is the reporter that
/// shares it.
#[derive(Clone, Default)]
pub struct Comparison {
    shared: Arc<Mutex<Shared>>,
}

impl Comparison {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reporter that compares the events it hears.
    pub fn reporter(&self) -> Box<dyn Reporter> {
        Box::new(ModelComparison {
            shared: self.clone(),
        })
    }

    /// What the model predicts for the trial about to start.
    pub fn expect(&self, trial: &str, case: u64, predictions: Predictions) {
        self.lock()
            .running
            .insert(trial.to_string(), (case, ComparisonFold::new(predictions)));
    }

    /// The trial is over: how it went, counted into the findings.
    pub fn judge(&self, trial: &str) -> Checked {
        let mut shared = self.lock();
        let Some((case, fold)) = shared.running.remove(trial) else {
            return Checked::Broken(format!("{trial} was never expected"));
        };
        let checked = fold.finish();
        let findings = &mut shared.findings;
        match &checked {
            Checked::Agrees => findings.agreed += 1,
            Checked::Unsupported(why) => {
                findings.unsupported += 1;
                findings.unsupported_reason = why.clone();
            }
            Checked::Broken(_) | Checked::Mismatch { .. } => {
                findings.disagreements.push((case, checked.clone()))
            }
        }
        checked
    }

    /// Everything judged so far; the lowest case first, so that a rerun with
    /// the seed finds the same one.
    pub fn findings(&self) -> Findings {
        let mut findings = std::mem::take(&mut self.lock().findings);
        findings.disagreements.sort_by_key(|(case, _)| *case);
        findings
    }
}

/// The reporter half: folds each tree's events into its comparison.
struct ModelComparison {
    shared: Comparison,
}

impl Reporter for ModelComparison {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        if let RunEvent::Scenario { trial, event } = event {
            if let Some((_, fold)) = self.shared.lock().running.get_mut(&trial.name) {
                fold.take(event);
            }
        }
        Ok(())
    }
}

/// A tree's record: pass when it agrees with the model, fail with the first
/// mismatch as the reason, unsupported and broken as the target said.
pub fn verdict_of(checked: &Checked) -> Verdict {
    match checked {
        Checked::Agrees => Verdict::pass(),
        Checked::Unsupported(why) => Verdict::unsupported(why.clone()),
        Checked::Broken(why) => Verdict::broken(why.clone()),
        Checked::Mismatch {
            differences,
            verdict,
        } => {
            let reason = match differences.first() {
                Some(first) => {
                    format!("the kernel and the model disagree (expected is the model): {first}")
                }
                None => verdict.reason.clone(),
            };
            Verdict {
                // A timeout or a leak stays one.
                kind: (verdict.outcome == Outcome::Fail)
                    .then_some(verdict.kind)
                    .flatten(),
                ..Verdict::fail(reason)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::compare::Difference;
    use super::*;
    use crate::reporting::{Reporters, TrialInfo};
    use orphanage_scenario::model::Prediction;
    use orphanage_scenario::{Event, FailKind, ProcState};

    fn trial(case: u64) -> TrialInfo {
        TrialInfo {
            name: format!("explore::case_{case}"),
            area: "explore".into(),
            file: Default::default(),
            target: "host".into(),
        }
    }

    fn predictions() -> Predictions {
        Predictions::from([(
            1,
            vec![(
                "leaf".to_string(),
                Prediction {
                    state: ProcState::Alive,
                    parent: Some("sub".into()),
                    sigchld: None,
                },
            )],
        )])
    }

    /// One tree's events through a fan-out, as the executor sends them.
    fn run(comparison: &Comparison, reporters: &Reporters, case: u64, parent: &str) -> Checked {
        let info = trial(case);
        comparison.expect(&info.name, case, predictions());
        reporters.emit(&RunEvent::TrialStarted { trial: &info });
        for event in [
            Event::StepStarted {
                index: 1,
                summary: "observe".into(),
            },
            Event::Observed {
                name: "leaf".into(),
                pid: 3,
                state: ProcState::Alive,
                parent: Some(parent.into()),
                getppid: None,
                sigchld: None,
            },
            Event::Finished {
                verdict: Verdict::pass(),
                steps_ms: 1.0,
            },
        ] {
            reporters.emit(&RunEvent::Scenario {
                trial: &info,
                event: &event,
            });
        }
        comparison.judge(&info.name)
    }

    #[test]
    fn the_reporter_compares_what_the_stream_carries_and_keeps_the_findings() {
        let comparison = Comparison::default();
        let reporters = Reporters::new(vec![comparison.reporter()]);
        assert_eq!(run(&comparison, &reporters, 0, "sub"), Checked::Agrees);
        let Checked::Mismatch { differences, .. } = run(&comparison, &reporters, 7, "init") else {
            panic!("a wrong parent is a mismatch")
        };
        assert_eq!(
            differences[0].to_string(),
            "leaf: parent: expected sub, observed init (step 2)"
        );
        assert!(matches!(
            run(&comparison, &reporters, 3, "init"),
            Checked::Mismatch { .. }
        ));
        let findings = comparison.findings();
        assert_eq!(findings.agreed, 1);
        let cases: Vec<u64> = findings.disagreements.iter().map(|(c, _)| *c).collect();
        assert_eq!(cases, [3, 7], "the lowest case first");
    }

    #[test]
    fn a_tree_nobody_expected_is_broken_not_an_agreement() {
        let comparison = Comparison::default();
        assert!(matches!(
            comparison.judge("explore::case_1"),
            Checked::Broken(_)
        ));
    }

    #[test]
    fn the_record_says_pass_or_the_first_mismatch() {
        assert_eq!(verdict_of(&Checked::Agrees), Verdict::pass());
        let first = Difference {
            step: 7,
            name: "p4".into(),
            what: "parent",
            expected: "init".into(),
            observed: "p1".into(),
        };
        let second = Difference {
            what: "getppid()",
            ..first.clone()
        };
        let v = verdict_of(&Checked::Mismatch {
            differences: vec![first, second],
            verdict: Verdict::pass(),
        });
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.reason,
            "the kernel and the model disagree (expected is the model): p4: parent: expected init, observed p1 (step 7)"
        );
        assert_eq!(v.kind, None);
        let timeout = verdict_of(&Checked::Mismatch {
            differences: vec![],
            verdict: Verdict::timeout("timeout after 10 s"),
        });
        assert_eq!(
            (timeout.reason.as_str(), timeout.kind),
            ("timeout after 10 s", Some(FailKind::Timeout))
        );
        assert_eq!(
            verdict_of(&Checked::Unsupported("no pid namespaces".into())),
            Verdict::unsupported("no pid namespaces")
        );
        assert_eq!(
            verdict_of(&Checked::Broken("agent crashed".into())),
            Verdict::broken("agent crashed")
        );
    }
}
