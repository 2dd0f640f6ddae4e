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

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render_markdown(rows: &[String], columns: &[Column]) -> String {
    let mut out = String::from("# orphanage kernel matrix\n\n| scenario |");
    for c in columns {
        let _ = write!(out, " {} |", md_escape(&c.header()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| `{row}` |");
        for c in columns {
            let _ = write!(out, " {} |", cell(c.outcome(row)));
        }
        out.push('\n');
    }
    out.push_str("\n## Figures\n\n");
    for l in figures_lines(columns) {
        let _ = writeln!(out, "- {}", md_escape(&l));
    }
    out.push_str("\n## Reasons\n\n");
    for l in reasons(rows, columns) {
        let _ = writeln!(out, "- {}", md_escape(&l));
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained page: inline style, no scripts, no external resources.
/// A cell's reason is its tooltip.
pub fn render_html(rows: &[String], columns: &[Column]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>orphanage kernel matrix</title>\n<style>\
         body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}td.scenario{font-family:monospace}\
         .pass{background:#d7f5d7}.fail{background:#f8c9c9}.unsupported{background:#eee;color:#555}.broken{background:#f3d19c}\
         </style></head><body>\n<h1>orphanage kernel matrix</h1>\n<table>\n<tr><th>scenario</th>",
    );
    for c in columns {
        let _ = write!(out, "<th>{}</th>", html_escape(&c.header()));
    }
    out.push_str("</tr>\n");
    for row in rows {
        let _ = write!(out, "<tr><td class=\"scenario\">{}</td>", html_escape(row));
        for c in columns {
            let record = c.outcome(row);
            let class = record.map_or("none", |r| r.outcome.as_str());
            let title = record.map(|r| r.reason.as_str()).unwrap_or_default();
            let _ = write!(
                out,
                "<td class=\"{class}\" title=\"{}\">{}</td>",
                html_escape(title),
                cell(record)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<h2>Figures</h2>\n<ul>\n");
    for l in figures_lines(columns) {
        let _ = writeln!(out, "<li>{}</li>", html_escape(&l));
    }
    out.push_str("</ul>\n<h2>Reasons</h2>\n<ul>\n");
    for l in reasons(rows, columns) {
        let _ = writeln!(out, "<li>{}</li>", html_escape(&l));
    }
    out.push_str("</ul>\n</body></html>\n");
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
    records: Vec<TrialRecord>,
    dir: Option<PathBuf>,
    started: Option<Instant>,
}

impl MatrixReport {
    /// With `dir`, also writes `matrix.md` and `matrix.html` there; the
    /// directory is made now, so a path that cannot be is bad input.
    pub fn new(
        rows: Vec<String>,
        columns: Arc<Mutex<Vec<Column>>>,
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
            records: vec![],
            dir,
            started: None,
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
                self.write("matrix.md", render_markdown(rows, &columns))?;
                self.write("matrix.html", render_html(rows, &columns))?;
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
    fn markdown_and_html_carry_the_same_cells_and_reasons() {
        let (rows, cols) = columns();
        let md = render_markdown(&rows, &cols);
        assert!(md.contains("| `memfd::b` | unsupported | - |"), "{md}");
        assert!(md.contains("odd: the VM failed: kernel panic:"));
        assert!(
            md.contains("odd: init found processes left behind by the scenarios, and killed them: 42 (sleep)"),
            "{md}"
        );
        let html = render_html(&rows, &cols);
        assert!(html.contains("<th>5.10 (5.10.0-32-amd64)</th>"));
        assert!(html.contains("title=\"memfd_create(MFD_NOEXEC_SEAL): EINVAL &lt;needs 6.3&gt;\""));
        assert!(
            !html.contains("<script") && !html.contains("http"),
            "self-contained"
        );
    }
}
