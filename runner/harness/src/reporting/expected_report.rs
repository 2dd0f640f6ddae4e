//! `--expected FILE`: once every trial is over, each result is judged against
//! the checked-in list of known differences, the judgement is printed, and
//! the run's exit code follows it (see `crate::expected`).

use super::event::RunEvent;
use super::record::TrialRecord;
use super::reporter::{ReportError, Reporter};
use crate::expected::{self, Context, Difference};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Whether the judgement asks for a non-zero exit: `None` until judged (and
/// when nothing ran, since a run of nothing is never judged green).
pub type Judgement = Arc<Mutex<Option<bool>>>;

pub struct ExpectedReport {
    path: PathBuf,
    differences: Vec<Difference>,
    contexts: Vec<Context>,
    records: Vec<TrialRecord>,
    judgement: Judgement,
}

impl ExpectedReport {
    pub fn new(
        path: PathBuf,
        differences: Vec<Difference>,
        contexts: Vec<Context>,
        judgement: Judgement,
    ) -> Self {
        ExpectedReport {
            path,
            differences,
            contexts,
            records: Vec::new(),
            judgement,
        }
    }
}

impl Reporter for ExpectedReport {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        match event {
            RunEvent::TrialFinished { record, .. } => self.records.push((*record).clone()),
            RunEvent::RunFinished if !self.records.is_empty() => {
                self.records.sort_by(|a, b| a.name.cmp(&b.name));
                let judged = expected::judge(&self.differences, &self.records, &self.contexts);
                let (text, bad) = expected::summary(&self.path, &judged);
                println!("{text}");
                *self.judgement.lock().unwrap_or_else(|p| p.into_inner()) = Some(bad);
            }
            _ => {}
        }
        Ok(())
    }
}
