//! Scenarios become libtest-mimic trials; outcomes map onto cargo test's words:
//! pass is ok, unsupported is ignored with its reason, fail and broken fail.

use crate::discover::Loaded;
use crate::report::TrialRecord;
use libtest_mimic::{Completion, Failed, Trial};
use orphanage_scenario::{Event, Outcome};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub type Records = Arc<Mutex<Vec<TrialRecord>>>;

/// Runs one scenario on a target and returns its events, ending with `Finished`.
pub type Runner = Arc<dyn Fn(&Loaded) -> Vec<Event> + Send + Sync>;

/// What libtest-mimic prints for an outcome.
pub fn completion(record: &TrialRecord) -> Result<Completion, Failed> {
    match record.outcome {
        Outcome::Pass => Ok(Completion::Completed),
        Outcome::Unsupported => Ok(Completion::ignored_with(format!(
            "unsupported: {}",
            record.reason
        ))),
        Outcome::Fail => Err(record.reason.clone().into()),
        Outcome::Broken => Err(format!("broken: {}", record.reason).into()),
    }
}

/// One trial per scenario and target. Each target comes with the prefix of
/// its trial names (`runc:` gives `runc:area::name`; the host's is empty).
pub fn build(loaded: &[Loaded], targets: &[(String, Runner)], records: Records) -> Vec<Trial> {
    let mut trials = Vec::new();
    for (prefix, runner) in targets {
        for l in loaded {
            let name = format!("{prefix}{}", l.name);
            let (loaded, runner, records) = (l.clone(), runner.clone(), records.clone());
            let trial_name = name.clone();
            trials.push(Trial::ignorable_test(name, move || {
                let start = Instant::now();
                let events = runner(&loaded);
                if crate::live::interrupted() {
                    crate::live::stand_down(); // the interrupt thread reports and exits
                }
                let record =
                    TrialRecord::from_events(&trial_name, &loaded.area, &events, start.elapsed());
                let result = completion(&record);
                records
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(record);
                result
            }));
        }
    }
    trials
}

#[cfg(test)]
mod tests {
    use super::*;
    use orphanage_scenario::Verdict;
    use rstest::rstest;
    use std::time::Duration;

    fn record(v: Verdict) -> TrialRecord {
        TrialRecord::from_events(
            "a::b",
            "a",
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
                assert!(m.contains(&verdict.reason));
                assert_eq!(
                    m.starts_with("broken: "),
                    verdict.outcome == Outcome::Broken
                );
            }
            (Ok(_), e) => panic!("{verdict:?} completed, expected {e:?}"),
            (Err(f), e) => panic!("{verdict:?} failed with {:?}, expected {e:?}", f.message()),
        }
    }
}
