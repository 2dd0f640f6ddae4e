//! `--baseline FILE` on a run: once every trial is over, each cell is
//! compared with the same cell of the earlier report (see `crate::baseline`),
//! the comparison is printed, and whether anything regressed is kept for the
//! exit code (`--fail-on-regression`).

use super::event::RunEvent;
use super::json::CellInfo;
use super::record::TrialRecord;
use super::reporter::{ReportError, Reporter};
use crate::baseline::{self, Side};
use crate::report_file::ReportFile;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Whether the comparison found a regression: `None` until compared (and
/// when nothing ran).
pub type Regressed = Arc<Mutex<Option<bool>>>;

pub struct BaselineReport {
    path: PathBuf,
    baseline: ReportFile,
    cells: Arc<Mutex<Vec<CellInfo>>>,
    records: Vec<TrialRecord>,
    regressed: Regressed,
}

impl BaselineReport {
    pub fn new(
        path: PathBuf,
        baseline: ReportFile,
        cells: Arc<Mutex<Vec<CellInfo>>>,
        regressed: Regressed,
    ) -> Self {
        BaselineReport {
            path,
            baseline,
            cells,
            records: Vec::new(),
            regressed,
        }
    }
}

impl Reporter for BaselineReport {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        match event {
            RunEvent::TrialFinished { record, .. } => self.records.push((*record).clone()),
            RunEvent::RunFinished if !self.records.is_empty() => {
                let cells = self.cells.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let current: Vec<Side<'_>> = cells
                    .iter()
                    .map(|cell| Side {
                        label: cell.name.clone(),
                        cell,
                        results: self
                            .records
                            .iter()
                            .filter(|r| r.target == cell.name)
                            .collect(),
                    })
                    .collect();
                let comparison = baseline::compare(&current, &Side::of_report(&self.baseline));
                for line in comparison.lines(std::slice::from_ref(&self.path)) {
                    println!("{}", super::text::neutralise(&line).replace('\n', " "));
                }
                *self.regressed.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(comparison.has_regression());
            }
            _ => {}
        }
        Ok(())
    }
}
