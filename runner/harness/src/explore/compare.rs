//! What the target did against what the model predicted, process by process.
//! Pure: events and predictions in, differences out, folded as the events
//! arrive (`comparison.rs` feeds it from the run's event stream).

use orphanage_scenario::model::Prediction;
use orphanage_scenario::{Event, Outcome, ProcState, Verdict};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One fact about one process on which the target and the model differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The step (1-based) whose `observe` saw it.
    pub step: usize,
    pub name: String,
    pub what: &'static str,
    pub expected: String,
    pub observed: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: expected {}, observed {} (step {})",
            self.name, self.what, self.expected, self.observed, self.step
        )
    }
}

/// How one generated tree went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Agrees,
    /// The target could not run it (a probed feature is missing).
    Unsupported(String),
    /// The harness or agent failed: says nothing about the kernel.
    Broken(String),
    /// The kernel and the model disagree: every difference the observations
    /// show, and the scenario's own verdict (its first failing expectation).
    Mismatch {
        differences: Vec<Difference>,
        verdict: Verdict,
    },
}

fn state_name(s: ProcState) -> &'static str {
    match s {
        ProcState::Alive => "alive",
        ProcState::Zombie => "zombie",
        ProcState::Gone => "gone",
    }
}

fn or_none(name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| "none".into())
}

/// What the model predicts each `observe` step (by 0-based step index) sees.
pub type Predictions = BTreeMap<usize, Vec<(String, Prediction)>>;

/// One run's `observed` events compared with the model's predictions as they
/// arrive, and the verdict folded in; `finish` says how the tree went.
#[derive(Debug)]
pub struct ComparisonFold {
    expected: Predictions,
    differences: Vec<Difference>,
    /// The step the events are about (0-based).
    step: usize,
    verdict: Verdict,
    /// Which predictions an observation answered: (step, index in its list).
    seen: BTreeSet<(usize, usize)>,
}

impl ComparisonFold {
    pub fn new(expected: Predictions) -> Self {
        ComparisonFold {
            expected,
            differences: vec![],
            step: 0,
            verdict: Verdict::broken("no verdict was reported"),
            seen: BTreeSet::new(),
        }
    }

    pub fn take(&mut self, event: &Event) {
        match event {
            Event::StepStarted { index, .. } => self.step = *index,
            Event::Finished { verdict, .. } => self.verdict = verdict.clone(),
            Event::Observed {
                name,
                state,
                parent,
                getppid,
                sigchld,
                ..
            } => {
                let step = self.step;
                let Some((at, p)) = self.expected.get(&step).and_then(|all| {
                    all.iter()
                        .enumerate()
                        .find(|(_, (n, _))| n == name)
                        .map(|(at, (_, p))| (at, p))
                }) else {
                    return;
                };
                self.seen.insert((step, at));
                let differences = &mut self.differences;
                let mut differ = |what, expected: String, observed: String| {
                    if expected != observed {
                        differences.push(Difference {
                            step: step + 1,
                            name: name.clone(),
                            what,
                            expected,
                            observed,
                        });
                    }
                };
                differ(
                    "state",
                    state_name(p.state).into(),
                    state_name(*state).into(),
                );
                if p.state != ProcState::Gone && *state != ProcState::Gone {
                    differ("parent", or_none(&p.parent), or_none(parent));
                    // getppid() names nothing when the parent is outside the
                    // process's pid namespace; otherwise it must agree too.
                    if getppid.is_some() {
                        differ("getppid()", or_none(&p.parent), or_none(getppid));
                    }
                }
                if let (Some((least, most)), Some(n)) = (p.sigchld, sigchld) {
                    if *n < least || *n > most {
                        let range = if least == most {
                            least.to_string()
                        } else {
                            format!("{least} to {most}")
                        };
                        differ("SIGCHLDs caught", range, n.to_string());
                    }
                }
            }
            _ => {}
        }
    }

    pub fn finish(self) -> Checked {
        let ComparisonFold {
            expected,
            mut differences,
            verdict,
            seen,
            ..
        } = self;
        // A run that passed without reporting an observation checked nothing
        // there: a target that drops events must not agree with the model.
        if verdict.outcome == Outcome::Pass {
            for (step, predictions) in &expected {
                for (at, (name, _)) in predictions.iter().enumerate() {
                    if !seen.contains(&(*step, at)) {
                        differences.push(Difference {
                            step: step + 1,
                            name: name.clone(),
                            what: "observation",
                            expected: "reported".into(),
                            observed: "nothing".into(),
                        });
                    }
                }
            }
        }
        match verdict.outcome {
            Outcome::Unsupported => Checked::Unsupported(verdict.reason),
            Outcome::Broken => Checked::Broken(verdict.reason),
            Outcome::Pass if differences.is_empty() => Checked::Agrees,
            Outcome::Pass | Outcome::Fail => Checked::Mismatch {
                differences,
                verdict,
            },
        }
    }
}

/// The same for a whole recorded run at once.
#[cfg(test)]
pub fn compare(expected: &Predictions, events: &[Event]) -> Checked {
    let mut fold = ComparisonFold::new(expected.clone());
    for event in events {
        fold.take(event);
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(name: &str, state: ProcState, parent: Option<&str>, sigchld: Option<u32>) -> Event {
        Event::Observed {
            name: name.into(),
            pid: 7,
            state,
            parent: parent.map(str::to_string),
            getppid: parent.map(str::to_string),
            sigchld,
        }
    }

    fn expected() -> BTreeMap<usize, Vec<(String, Prediction)>> {
        let p = |state, parent: Option<&str>, sigchld| Prediction {
            state,
            parent: parent.map(str::to_string),
            sigchld,
        };
        BTreeMap::from([(
            3,
            vec![
                ("leaf".to_string(), p(ProcState::Alive, Some("sub"), None)),
                (
                    "sub".to_string(),
                    p(ProcState::Alive, Some("init"), Some((1, 2))),
                ),
                ("mid".to_string(), p(ProcState::Gone, None, None)),
            ],
        )])
    }

    fn run(observations: Vec<Event>, verdict: Verdict) -> Checked {
        let mut events = vec![Event::StepStarted {
            index: 3,
            summary: "observe".into(),
        }];
        events.extend(observations);
        events.push(Event::Finished {
            verdict,
            steps_ms: 1.0,
        });
        compare(&expected(), &events)
    }

    #[test]
    fn agreement_is_agreement() {
        let got = run(
            vec![
                observed("leaf", ProcState::Alive, Some("sub"), Some(0)),
                observed("sub", ProcState::Alive, Some("init"), Some(2)),
                observed("mid", ProcState::Gone, None, None),
            ],
            Verdict::pass(),
        );
        assert_eq!(got, Checked::Agrees);
    }

    #[test]
    fn every_difference_is_listed_even_when_the_scenario_passed() {
        let got = run(
            vec![
                observed("leaf", ProcState::Alive, Some("init"), Some(0)),
                observed("sub", ProcState::Alive, Some("init"), Some(3)),
                observed("mid", ProcState::Zombie, Some("sub"), None),
            ],
            Verdict::pass(),
        );
        let Checked::Mismatch { differences, .. } = got else {
            panic!("{got:?}")
        };
        let lines: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            [
                "leaf: parent: expected sub, observed init (step 4)",
                "leaf: getppid(): expected sub, observed init (step 4)",
                "sub: SIGCHLDs caught: expected 1 to 2, observed 3 (step 4)",
                "mid: state: expected gone, observed zombie (step 4)",
            ]
        );
    }

    #[test]
    fn a_pass_without_the_observations_is_a_mismatch() {
        let got = run(
            vec![observed("leaf", ProcState::Alive, Some("sub"), Some(0))],
            Verdict::pass(),
        );
        let Checked::Mismatch { differences, .. } = got else {
            panic!("{got:?}")
        };
        let lines: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            [
                "sub: observation: expected reported, observed nothing (step 4)",
                "mid: observation: expected reported, observed nothing (step 4)",
            ]
        );
    }

    #[test]
    fn a_failed_verdict_is_a_mismatch_and_the_others_pass_through() {
        let fail = Verdict::fail("step 9 (expect_parent): leaf's parent: expected sub");
        assert!(matches!(run(vec![], fail), Checked::Mismatch { .. }));
        assert_eq!(
            run(vec![], Verdict::unsupported("no pid namespaces")),
            Checked::Unsupported("no pid namespaces".into())
        );
        assert_eq!(
            run(vec![], Verdict::broken("agent crashed")),
            Checked::Broken("agent crashed".into())
        );
    }
}
