//! The kernel matrix: scenarios as rows, kernels as columns, each cell the
//! scenario's outcome in that kernel. A reporter: it takes each cell's
//! results from the run's events, and what only the VM knows (its release,
//! accelerator, figures, a failure of the VM as a whole) from the run as
//! each cell ends. Rendered as text (printed at the end of a run), Markdown
//! and a self-contained HTML page (`--matrix-report DIR`).

use super::event::RunEvent;
use super::record::TrialRecord;
use super::reporter::{ReportError, Reporter};
use orphanage_scenario::Outcome;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One kernel's column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The matrix file's name for it ("6.1").
    pub name: String,
    /// What uname -r said inside the VM; None if it never got that far.
    pub release: Option<String>,
    pub accel: String,
    pub records: Vec<TrialRecord>,
    /// Result frames that arrived damaged (a console log line broke into them).
    pub broken_frames: usize,
    /// Why the VM as a whole failed, if it did.
    pub broken: Option<String>,
    /// Processes init found alive with no scenario running ("pid (comm)").
    pub left_behind: Vec<String>,
    pub figures: Figures,
}

#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Same kernel and accelerator, init only powers off: QEMU start to exit.
    pub floor: Option<Duration>,
    pub booted: Option<Duration>,
    pub first_result: Option<Duration>,
    /// From QEMU's start to the last scenario's verdict: the cell ends right
    /// after it, whether or not the guest can power off.
    pub last_result: Option<Duration>,
    pub wall: Duration,
    /// CPU time QEMU used for the cell.
    pub qemu_cpu: Option<Duration>,
}

impl Column {
    /// A kernel's column before its cell has run.
    pub fn waiting(name: &str) -> Self {
        Column {
            name: name.to_string(),
            release: None,
            accel: String::new(),
            records: vec![],
            broken_frames: 0,
            broken: None,
            left_behind: vec![],
            figures: Figures::default(),
        }
    }

    /// The header: the name and the release the VM reported.
    pub fn header(&self) -> String {
        match &self.release {
            Some(r) => format!("{} ({r})", self.name),
            None => format!("{} (did not boot)", self.name),
        }
    }

    fn outcome(&self, scenario: &str) -> Option<&TrialRecord> {
        self.records.iter().find(|r| r.name == scenario)
    }
}

pub fn cell(record: Option<&TrialRecord>) -> &'static str {
    match record.map(|r| r.outcome) {
        Some(Outcome::Pass) => "pass",
        Some(Outcome::Fail) => "FAIL",
        Some(Outcome::Unsupported) => "unsupported",
        Some(Outcome::Broken) => "BROKEN",
        None => "-",
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// Each column's figures, one line each.
pub fn figures_lines(columns: &[Column]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            let f = &c.figures;
            let ratio = match (f.first_result, f.floor) {
                (Some(r), Some(fl)) if !fl.is_zero() => {
                    format!(" ({:.2}x the floor)", r.as_secs_f64() / fl.as_secs_f64())
                }
                _ => String::new(),
            };
            format!(
                "{}: {} ({}); boot floor {}, init up {}, first result {}{ratio}, last result {}, whole cell {} (QEMU CPU {}){}",
                c.name,
                c.release.as_deref().unwrap_or("did not boot"),
                c.accel,
                secs(f.floor),
                secs(f.booted),
                secs(f.first_result),
                secs(f.last_result),
                secs(Some(f.wall)),
                secs(f.qemu_cpu),
                match c.broken_frames {
                    0 => String::new(),
                    n => format!("; {n} result frame(s) damaged by console output"),
                },
            )
        })
        .collect()
}

/// Everything that is not a pass, with its reason, one line each.
pub fn reasons(rows: &[String], columns: &[Column]) -> Vec<String> {
    let mut out = vec![];
    for c in columns {
        if let Some(b) = &c.broken {
            let first = b.lines().next().unwrap_or_default();
            out.push(format!("{}: the VM failed: {first}", c.name));
        }
        if let Some(line) = left_behind_line(c) {
            out.push(line);
        }
        for row in rows {
            if let Some(r) = c.outcome(row).filter(|r| r.outcome != Outcome::Pass) {
                out.push(format!("{} {row}: {}: {}", c.name, r.outcome, r.reason));
            }
        }
    }
    out
}

/// Init's own cleanup missed something: not the kernel's fault, but worth
/// a line, as leftovers may have met later scenarios.
pub fn left_behind_line(c: &Column) -> Option<String> {
    (!c.left_behind.is_empty()).then(|| {
        format!(
            "{}: init found processes left behind by the scenarios, and killed them: {}",
            c.name,
            c.left_behind.join(", ")
        )
    })
}

/// The plain-text table printed at the end of a run.
pub fn render_text(rows: &[String], columns: &[Column]) -> String {
    let headers: Vec<String> = columns.iter().map(Column::header).collect();
    let first = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(8);
    let widths: Vec<usize> = headers.iter().map(|h| h.len().max(11)).collect();
    let mut out = String::new();
    let _ = write!(out, "{:first$}", "scenario");
    for (h, w) in headers.iter().zip(&widths) {
        let _ = write!(out, "  {h:w$}");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "{row:first$}");
        for (c, w) in columns.iter().zip(&widths) {
            let _ = write!(out, "  {:w$}", cell(c.outcome(row)));
        }
        out.push('\n');
    }
    out
}

/// The matrix at the end of a `--kernels` run. Trials are named
/// `KERNEL:area::scenario`, so names stay unique across cells; a row is the
/// name without that prefix.
pub struct MatrixReport {
    rows: Vec<String>,
    /// One per kernel, in the kernels file's order; the run fills in all but
    /// the records as each cell ends.
    columns: Arc<Mutex<Vec<Column>>>,
    /// The run's report cells (the JSON report's), for the pages.
    cells: Arc<Mutex<Vec<super::CellInfo>>>,
    records: Vec<TrialRecord>,
    dir: Option<PathBuf>,
    started: Option<Instant>,
    started_at: String,
}

impl MatrixReport {
    /// With `dir`, also writes `matrix.md` and `matrix.html` there; the
    /// directory is made now, so a path that cannot be is bad input.
    pub fn new(
        rows: Vec<String>,
        columns: Arc<Mutex<Vec<Column>>>,
        cells: Arc<Mutex<Vec<super::CellInfo>>>,
        dir: Option<PathBuf>,
    ) -> Result<Self, ReportError> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).map_err(|source| ReportError::Write {
                what: "the matrix report directory",
                path: d.clone(),
                source,
            })?;
        }
        Ok(MatrixReport {
            rows,
            columns,
            cells,
            records: vec![],
            dir,
            started: None,
            started_at: super::time::rfc3339_utc(std::time::SystemTime::now()),
        })
    }

    /// The columns with their records, each record under its row's name.
    fn filled(&mut self) -> Vec<Column> {
        let mut columns = self
            .columns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for c in &mut columns {
            let prefix = format!("{}:", c.name);
            c.records = self
                .records
                .iter()
                .filter(|r| r.target == c.name)
                .map(|r| TrialRecord {
                    name: r.name.strip_prefix(&prefix).unwrap_or(&r.name).to_string(),
                    ..r.clone()
                })
                .collect();
        }
        columns
    }

    fn write(&self, name: &str, text: String) -> Result<(), ReportError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Write {
            what: "the matrix report",
            path,
            source,
        })
    }
}

impl Reporter for MatrixReport {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        match event {
            RunEvent::RunStarted { .. } => self.started = Some(Instant::now()),
            RunEvent::TrialFinished { record, .. } => self.records.push((*record).clone()),
            RunEvent::RunFinished => {
                let columns = self.filled();
                let rows = &self.rows;
                let mut out = String::from("\n");
                out.push_str(&render_text(rows, &columns));
                out.push('\n');
                for l in reasons(rows, &columns) {
                    let _ = writeln!(out, "{l}");
                }
                out.push('\n');
                for l in figures_lines(&columns) {
                    let _ = writeln!(out, "{l}");
                }
                if let Some(started) = self.started {
                    let _ = writeln!(
                        out,
                        "whole matrix: {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                print!("{out}");
                if self.dir.is_some() {
                    // The pages are the merge's, of this run's report alone.
                    let report = crate::report_file::ReportFile {
                        path: PathBuf::from("this --kernels run"),
                        orphanage: env!("CARGO_PKG_VERSION").to_string(),
                        started_at: self.started_at.clone(),
                        cells: self.cells.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                        results: self.records.clone(),
                    };
                    let (mut markdown, html) = crate::merge::render_one(&report);
                    markdown.push_str("\n## The VMs\n\n");
                    let failed = columns.iter().filter_map(|c| {
                        let first = c.broken.as_deref()?.lines().next().unwrap_or_default();
                        Some(format!("{}: the VM failed: {first}", c.name))
                    });
                    for l in figures_lines(&columns)
                        .into_iter()
                        .chain(failed)
                        .chain(columns.iter().filter_map(left_behind_line))
                    {
                        let _ = writeln!(markdown, "- {}", super::text::markdown(&l));
                    }
                    self.write("matrix.md", markdown)?;
                    self.write("matrix.html", html)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orphanage_scenario::{Event, Verdict};

    fn record(name: &str, v: Verdict) -> TrialRecord {
        let trial = crate::reporting::TrialInfo {
            name: name.into(),
            area: "memfd".into(),
            file: format!("suites/{}.yaml", name.replace("::", "/")).into(),
            target: "6.1".into(),
        };
        TrialRecord::from_events(
            &trial,
            &[Event::Finished {
                verdict: v,
                steps_ms: 0.0,
            }],
            Duration::ZERO,
        )
    }

    fn columns() -> (Vec<String>, Vec<Column>) {
        let rows = vec!["memfd::a".to_string(), "memfd::b".to_string()];
        let old = Column {
            name: "5.10".into(),
            release: Some("5.10.0-32-amd64".into()),
            accel: "tcg".into(),
            records: vec![
                record("memfd::a", Verdict::pass()),
                record(
                    "memfd::b",
                    Verdict::unsupported("memfd_create(MFD_NOEXEC_SEAL): EINVAL <needs 6.3>"),
                ),
            ],
            broken_frames: 0,
            broken: None,
            left_behind: vec![],
            figures: Figures::default(),
        };
        let dead = Column {
            name: "odd".into(),
            release: None,
            accel: "tcg".into(),
            records: vec![],
            broken_frames: 0,
            broken: Some("kernel panic:\n    Kernel panic".into()),
            left_behind: vec!["42 (sleep)".into()],
            figures: Figures::default(),
        };
        (rows, vec![old, dead])
    }

    #[test]
    fn the_text_table_has_a_row_per_scenario_and_a_column_per_kernel() {
        let (rows, cols) = columns();
        let text = render_text(&rows, &cols);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("5.10 (5.10.0-32-amd64)"));
        assert!(lines[0].contains("odd (did not boot)"));
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cells, ["memfd::b", "unsupported", "-"]);
    }

    #[test]
    fn the_pages_are_the_merges_of_this_runs_records_with_the_vms_figures() {
        let (rows, cols) = columns();
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(Mutex::new(
            cols.iter()
                .map(|c| Column {
                    records: vec![],
                    ..c.clone()
                })
                .collect(),
        ));
        let cells = Arc::new(Mutex::new(
            cols.iter()
                .map(|c| super::super::CellInfo {
                    name: c.name.clone(),
                    kind: "vm".into(),
                    kernel: c.release.clone().unwrap_or_default(),
                    version: None,
                    init: None,
                    platform: None,
                    summary: Default::default(),
                })
                .collect(),
        ));
        let mut report =
            MatrixReport::new(rows, shared, cells, Some(dir.path().to_path_buf())).unwrap();
        report
            .report(&RunEvent::RunStarted { selected: 2 })
            .unwrap();
        let trial = crate::reporting::TrialInfo {
            name: "5.10:memfd::b".into(),
            area: "memfd".into(),
            file: "suites/memfd/b.yaml".into(),
            target: "5.10".into(),
        };
        for r in &cols[0].records {
            let r = TrialRecord {
                name: format!("5.10:{}", r.name),
                target: "5.10".into(),
                ..r.clone()
            };
            report
                .report(&RunEvent::TrialFinished {
                    trial: &trial,
                    record: &r,
                })
                .unwrap();
        }
        report.report(&RunEvent::RunFinished).unwrap();
        let md = std::fs::read_to_string(dir.path().join("matrix.md")).unwrap();
        assert!(md.contains("EINVAL &lt;needs 6.3&gt;"), "{md}");
        assert!(md.contains("odd: the VM failed: kernel panic:"), "{md}");
        assert!(md.contains("5.10.0-32-amd64"), "{md}");
        assert!(md.contains("## The VMs"), "{md}");
        assert!(
            md.contains("odd: init found processes left behind by the scenarios, and killed them: 42 (sleep)"),
            "{md}"
        );
        let html = std::fs::read_to_string(dir.path().join("matrix.html")).unwrap();
        assert!(html.contains("EINVAL &lt;needs 6.3&gt;"), "{html}");
        assert!(!html.contains("<script"), "self-contained");
    }
}
