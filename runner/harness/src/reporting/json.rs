//! `--report FILE`: one JSON document for the whole run, written at its end.
//!
//! Schema 1: `schema_version`, `orphanage` (version), `command_line`,
//! `started_at` (UTC, RFC 3339), `kernel` and `target` (as before: the first
//! cell's kernel, and every cell's label with its version), `cells` (one per
//! target: its name, kind, kernel release, version and init), `results` (one
//! per trial, each naming its cell in `target`) and `summary`.

use super::event::RunEvent;
use super::record::{Summary, TrialRecord};
use super::reporter::{create_file, ReportError, Reporter};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const SCHEMA_VERSION: u32 = 1;

/// One column of results: a target on a kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellInfo {
    /// The label results carry in `target` (`host`, `runc`, `runc+tini`).
    pub name: String,
    /// `host`, `runtime` or `vm`.
    pub kind: String,
    /// The kernel release the scenarios ran on.
    pub kernel: String,
    /// The runtime's `--version` line, when the cell is a runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The init program under test, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// The runtime's platform (runsc's `--platform`), when it has one: what
    /// an expected-differences file's `when: {platform: ...}` is matched against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default)]
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub orphanage: String,
    pub command_line: Vec<String>,
    pub started_at: String,
    pub kernel: String,
    pub target: String,
    pub cells: Vec<CellInfo>,
    pub results: Vec<TrialRecord>,
    pub summary: Summary,
}

impl Report {
    pub fn new(
        command_line: Vec<String>,
        started_at: String,
        mut cells: Vec<CellInfo>,
        mut results: Vec<TrialRecord>,
    ) -> Self {
        results.sort_by(|a, b| a.name.cmp(&b.name));
        for cell in &mut cells {
            cell.summary = Summary::of(results.iter().filter(|r| r.target == cell.name));
        }
        let target = if cells.len() == 1 && cells[0].version.is_none() {
            cells[0].name.clone()
        } else {
            cells
                .iter()
                .map(|c| match &c.version {
                    Some(v) => format!("{} ({v})", c.name),
                    None => c.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        Report {
            schema_version: SCHEMA_VERSION,
            orphanage: env!("CARGO_PKG_VERSION").to_string(),
            command_line,
            started_at,
            kernel: cells.first().map(|c| c.kernel.clone()).unwrap_or_default(),
            target,
            summary: Summary::of(&results),
            cells,
            results,
        }
    }
}

/// Collects records as trials finish, and writes the report at the end.
pub struct JsonReport {
    path: PathBuf,
    file: Option<std::fs::File>,
    command_line: Vec<String>,
    started_at: String,
    /// Filled in by the run once targets have said who they are (a VM's
    /// release is known only after it booted).
    cells: std::sync::Arc<std::sync::Mutex<Vec<CellInfo>>>,
    records: Vec<TrialRecord>,
}

impl JsonReport {
    /// Opens the file now: a path that cannot be written is bad input, found
    /// before anything runs.
    pub fn create(
        path: PathBuf,
        command_line: Vec<String>,
        cells: std::sync::Arc<std::sync::Mutex<Vec<CellInfo>>>,
    ) -> Result<Self, ReportError> {
        let file = create_file("report", &path)?;
        Ok(JsonReport {
            path,
            file: Some(file),
            command_line,
            started_at: super::time::rfc3339_utc(std::time::SystemTime::now()),
            cells,
            records: Vec::new(),
        })
    }
}

impl Reporter for JsonReport {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        match event {
            RunEvent::TrialFinished { record, .. } => self.records.push((*record).clone()),
            RunEvent::RunFinished => {
                let Some(file) = self.file.take() else {
                    return Ok(());
                };
                let cells = self.cells.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let report = Report::new(
                    self.command_line.clone(),
                    self.started_at.clone(),
                    cells,
                    std::mem::take(&mut self.records),
                );
                serde_json::to_writer_pretty(std::io::BufWriter::new(file), &report).map_err(
                    |source| ReportError::Encode {
                        what: "report",
                        path: self.path.clone(),
                        source,
                    },
                )?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::record;
    use super::*;
    use orphanage_scenario::Verdict;

    fn cell(name: &str, version: Option<&str>) -> CellInfo {
        CellInfo {
            name: name.into(),
            kind: if version.is_some() { "runtime" } else { "host" }.into(),
            kernel: "6.18.0".into(),
            version: version.map(Into::into),
            init: None,
            platform: None,
            summary: Summary::default(),
        }
    }

    #[test]
    fn the_report_has_the_documented_fields() {
        let report = Report::new(
            vec!["orphanage".into(), "--report".into(), "x.json".into()],
            "2026-12-01T13:14:15Z".into(),
            vec![cell("host", None)],
            vec![record("a::b", Verdict::pass())],
        );
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "schema_version",
            "orphanage",
            "command_line",
            "started_at",
            "kernel",
            "target",
            "cells",
            "results",
            "summary",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["schema_version"], SCHEMA_VERSION);
        assert_eq!(json["target"], "host");
        assert_eq!(json["kernel"], "6.18.0");
        let result = &json["results"][0];
        for key in [
            "name",
            "area",
            "file",
            "target",
            "outcome",
            "reason",
            "duration_ms",
        ] {
            assert!(result.get(key).is_some(), "{key}");
        }
        assert_eq!(result["outcome"], "pass");
        assert_eq!(json["summary"]["pass"], 1);
        assert_eq!(json["cells"][0]["summary"]["pass"], 1);
    }

    #[test]
    fn each_cell_counts_only_its_own_results() {
        let report = Report::new(
            vec![],
            String::new(),
            vec![
                cell("runc", Some("runc 1.1.5")),
                cell("crun", Some("crun 1.8.1")),
            ],
            vec![
                record("runc:a::b", Verdict::pass()),
                record("crun:a::b", Verdict::fail("x")),
                record("crun:a::c", Verdict::pass()),
            ],
        );
        assert_eq!(report.target, "runc (runc 1.1.5), crun (crun 1.8.1)");
        assert_eq!(
            (report.cells[0].summary.pass, report.cells[0].summary.fail),
            (1, 0)
        );
        assert_eq!(
            (report.cells[1].summary.pass, report.cells[1].summary.fail),
            (1, 1)
        );
        assert_eq!(report.summary.fail, 1);
    }
}
