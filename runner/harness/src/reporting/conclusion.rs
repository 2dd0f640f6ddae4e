//! What an execution of trials came to, in cargo test's words: pass is
//! passed, unsupported is ignored (decided by probing at run time), fail and
//! broken failed, and so did a trial whose harness code panicked.

use orphanage_scenario::Outcome;
use std::process::ExitCode;
use std::time::Duration;

/// The counts of the summary line (`test result: ok. 3 passed; ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conclusion {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// Trials the filters (FILTER, `--skip`, `--exact`) left out.
    pub filtered_out: u64,
    /// From the executor's start to its last trial's end.
    pub elapsed: Duration,
}

impl Conclusion {
    /// One more finished trial.
    pub fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Unsupported => self.ignored += 1,
            Outcome::Fail | Outcome::Broken => self.failed += 1,
        }
    }

    pub fn has_failed(&self) -> bool {
        self.failed > 0
    }

    /// cargo test's: 101 when anything failed, else 0.
    pub fn exit_code(&self) -> ExitCode {
        if self.has_failed() {
            ExitCode::from(101)
        } else {
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_count_in_cargo_tests_words() {
        let mut c = Conclusion::default();
        for o in [
            Outcome::Pass,
            Outcome::Pass,
            Outcome::Unsupported,
            Outcome::Fail,
            Outcome::Broken,
        ] {
            c.count(o);
        }
        assert_eq!((c.passed, c.ignored, c.failed), (2, 1, 2));
        assert!(c.has_failed());
        assert_eq!(c.exit_code(), ExitCode::from(101));
        assert_eq!(Conclusion::default().exit_code(), ExitCode::SUCCESS);
    }
}
