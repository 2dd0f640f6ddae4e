//! The merge command: every input is read and checked, and every output
//! opened, before anything is written; bad input is one line naming the
//! file (exit 2). The exit code is 0 once the matrix is written, whatever
//! the cells say, unless `--fail-on-regression` finds a regression or
//! `--expected` an unexpected or stale cell (101).

use super::matrix::Matrix;
use crate::baseline::{self, Movement};
use crate::expected;
use crate::report_file::{self, scenario_of, ReportFile};
use crate::reporting::create_file;
use anyhow::Context as _;
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// JSON reports (each from `--report FILE`), from any number of machines.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Write the matrix as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the matrix as Markdown (a CI job summary, say).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write JUnit XML: a testsuite per cell, testcase names unique across cells.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Compare each cell with the same cell of this earlier report (repeatable)
    /// and list regressions, fixes, and new and removed scenarios.
    #[arg(long = "baseline", value_name = "FILE")]
    pub baselines: Vec<PathBuf>,
    /// Exit 101 when the baseline comparison finds a regression.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Judge every cell against this file of expected differences; exit 101
    /// for a fail, broken or unsupported it does not list, or a stale entry.
    #[arg(long, value_name = "FILE")]
    pub expected: Option<PathBuf>,
}

/// One run's matrix (`--kernels --matrix-report`) as Markdown and as the
/// page, the same as a merge of that run's report alone gives.
pub fn render_one(report: &ReportFile) -> (String, String) {
    let m = Matrix::new(std::slice::from_ref(report), None, None);
    (super::markdown::render(&m), super::html::render(&m))
}

/// An output path given for two outputs: the second would overwrite the first.
fn output_given_twice(outputs: &[&PathBuf]) -> Option<String> {
    // The file need not exist yet: compare its directory, resolved, and its name.
    let resolved = |p: &PathBuf| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (
            dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            p.file_name().map(|n| n.to_owned()),
        )
    };
    for (i, a) in outputs.iter().enumerate() {
        if outputs[..i].iter().any(|b| resolved(a) == resolved(b)) {
            return Some(format!(
                "{}: given for two outputs; each needs a file of its own",
                a.display()
            ));
        }
    }
    None
}

/// A report named twice would be two columns of one cell: refused, where
/// two reports of the same cell from two runs are both kept.
fn given_twice(paths: &[PathBuf]) -> Option<String> {
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for p in paths {
        let Ok(real) = p.canonicalize() else {
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
            return Some(format!(
                "{}: given twice (also as {}): each report is merged once",
                p.display(),
                first.display()
            ));
        }
        seen.push((real, p));
    }
    None
}

/// An output that would overwrite one of the inputs.
fn overwrites_an_input(outputs: &[&PathBuf], inputs: &[PathBuf]) -> Option<String> {
    let inputs: Vec<PathBuf> = inputs
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    outputs.iter().find_map(|o| {
        let real = o.canonicalize().ok()?;
        inputs.contains(&real).then(|| {
            format!(
                "{}: is an input of this merge; it would be overwritten",
                o.display()
            )
        })
    })
}

pub fn merge(args: &MergeArgs, suites: Option<&Path>) -> anyhow::Result<ExitCode> {
    if args.fail_on_regression && args.baselines.is_empty() {
        anyhow::bail!("--fail-on-regression judges against a baseline: it needs --baseline FILE");
    }
    if let Some(why) = given_twice(&args.reports) {
        anyhow::bail!(why);
    }
    let outputs: Vec<&PathBuf> = [&args.html, &args.markdown, &args.junit]
        .into_iter()
        .flatten()
        .collect();
    let all_inputs: Vec<PathBuf> = args
        .reports
        .iter()
        .chain(&args.baselines)
        .chain(&args.expected)
        .cloned()
        .collect();
    if let Some(why) = overwrites_an_input(&outputs, &all_inputs) {
        anyhow::bail!(why);
    }
    if let Some(why) = output_given_twice(&outputs) {
        anyhow::bail!(why);
    }
    let reports = report_file::read_all(&args.reports)?;
    let scenarios: HashSet<&str> = reports
        .iter()
        .flat_map(|r| r.results.iter().map(scenario_of))
        .collect();
    let baselines: Vec<ReportFile> = if args.baselines.is_empty() {
        Vec::new()
    } else {
        let read = report_file::read_all(&args.baselines)?;
        for b in &read {
            baseline::check_same_suite(&b.path, std::slice::from_ref(b), &scenarios)?;
        }
        read
    };
    let differences = match &args.expected {
        Some(path) => Some(load_expected(path, &scenarios, suites)?),
        None => None,
    };
    // Open every output before writing any: a bad path is bad input.
    let html_file = open(&args.html, "HTML matrix")?;
    let markdown_file = open(&args.markdown, "Markdown matrix")?;
    let junit_file = open(&args.junit, "JUnit report")?;

    let matrix = Matrix::new(
        &reports,
        args.expected.as_deref().zip(differences.as_deref()),
        (!args.baselines.is_empty()).then_some(baselines.as_slice()),
    );
    if let (Some(file), Some(path)) = (html_file, &args.html) {
        write_all(file, path, super::html::render(&matrix).as_bytes())?;
    }
    if let (Some(file), Some(path)) = (markdown_file, &args.markdown) {
        write_all(file, path, super::markdown::render(&matrix).as_bytes())?;
    }
    if let (Some(file), Some(path)) = (junit_file, &args.junit) {
        let xml = super::junit::render(&matrix).to_string().map_err(|e| {
            anyhow::anyhow!("cannot encode the JUnit report {}: {e}", path.display())
        })?;
        write_all(file, path, xml.as_bytes())?;
    }
    for line in summary_lines(&matrix, &args.baselines) {
        println!("{line}");
    }
    let regressed = args.fail_on_regression
        && matrix
            .baseline
            .as_ref()
            .is_some_and(|c| c.count(Movement::Regression) > 0);
    let unexpected = matrix
        .judgement()
        .is_some_and(|(_, unexpected, stale)| unexpected + stale > 0);
    Ok(if regressed || unexpected {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    })
}

fn open(path: &Option<PathBuf>, what: &'static str) -> anyhow::Result<Option<std::fs::File>> {
    Ok(match path {
        Some(p) => Some(create_file(what, p)?),
        None => None,
    })
}

fn write_all(file: std::fs::File, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(file);
    w.write_all(bytes)
        .and_then(|_| w.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The expected-differences file, its scenario names checked against what
/// the reports hold and, where it is there, the suites directory (a listed
/// scenario that no cell here ran is no typo).
fn load_expected(
    path: &Path,
    scenarios: &HashSet<&str>,
    suites: Option<&Path>,
) -> anyhow::Result<Vec<expected::Difference>> {
    let text = std::fs::read_to_string(path).map_err(|e| expected::ExpectedError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let from_suites: Vec<String> = suites
        .and_then(|dir| crate::discover::load_all(dir).ok())
        .map(|loaded| loaded.into_iter().map(|l| l.name).collect())
        .unwrap_or_default();
    let known: BTreeSet<&str> = scenarios
        .iter()
        .copied()
        .chain(from_suites.iter().map(String::as_str))
        .collect();
    let known: Vec<&str> = known.into_iter().collect();
    Ok(expected::parse(path, &text, &known)?)
}

/// What is printed on stdout: one line per column, then the judgements.
fn summary_lines(m: &Matrix<'_>, baselines: &[PathBuf]) -> Vec<String> {
    let mut lines = Vec::new();
    for c in &m.columns {
        let n = &c.counts;
        lines.push(format!(
            "#{} {} ({}): {} pass, {} fail, {} unsupported, {} broken, {} missing",
            c.number,
            crate::reporting::text::neutralise(&c.label).replace('\n', " "),
            c.source.display(),
            n.pass,
            n.fail,
            n.unsupported,
            n.broken,
            n.missing
        ));
    }
    lines.push(format!(
        "{} of {} scenarios differ from Linux in at least one of {} columns",
        m.differing_rows(),
        m.rows().count(),
        m.columns.len()
    ));
    if let (Some((path, _)), Some((expected, unexpected, stale))) = (m.expected, m.judgement()) {
        lines.push(format!(
            "expected differences ({}): {expected} expected, {unexpected} unexpected, {stale} stale",
            path.display()
        ));
    }
    if let Some(c) = &m.baseline {
        lines.extend(
            c.lines(baselines)
                .into_iter()
                .map(|l| crate::reporting::text::neutralise(&l).replace('\n', " ")),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_path_for_two_outputs_is_refused_however_it_is_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("m.html"), dir.path().join("m.md"));
        assert_eq!(output_given_twice(&[&a, &b]), None);
        let again = dir.path().join(".").join("m.html");
        let why = output_given_twice(&[&a, &b, &again]).expect("the same file twice");
        assert!(
            why.ends_with("given for two outputs; each needs a file of its own"),
            "{why}"
        );
    }
}
