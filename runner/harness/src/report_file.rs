//! Reading JSON reports back (`orphanage merge`, `--baseline`). Reports come
//! from other machines and other orphanage versions, so each is checked
//! before anything is made of it: it is JSON, it is an orphanage report, its
//! schema is the one this orphanage writes, and every result belongs to
//! exactly one of its cells. Each problem is one line naming the file.

use crate::reporting::{CellInfo, TrialRecord, SCHEMA_VERSION};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One report, read and checked.
#[derive(Debug, Clone)]
pub struct ReportFile {
    pub path: PathBuf,
    /// The orphanage version that wrote it.
    pub orphanage: String,
    pub started_at: String,
    pub cells: Vec<CellInfo>,
    pub results: Vec<TrialRecord>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportFileError {
    #[error("{}: {message}", .path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}:{line}:{column}: not valid JSON: {message}", .path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: not an orphanage report (it has no `schema_version` and `orphanage`)", .path.display())]
    NotAReport { path: PathBuf },
    #[error("{}: schema_version {found}, but {} has {first}: give reports of one schema", .path.display(), .first_path.display())]
    SchemaMismatch {
        path: PathBuf,
        found: u64,
        first_path: PathBuf,
        first: u64,
    },
    #[error("{}: schema_version {found}, which this orphanage does not read (it reads {SCHEMA_VERSION})", .path.display())]
    UnknownSchema { path: PathBuf, found: u64 },
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: two cells are named `{name}`", .path.display())]
    DuplicateCell { path: PathBuf, name: String },
    #[error("{}: result `{name}` names target `{target}`, which is none of its cells", .path.display())]
    UnknownTarget {
        path: PathBuf,
        name: String,
        target: String,
    },
    #[error("{}: two results for `{name}` in cell `{target}`", .path.display())]
    DuplicateResult {
        path: PathBuf,
        name: String,
        target: String,
    },
}

/// What is read first: whether this is a report at all, and of which schema.
#[derive(Deserialize)]
struct Head {
    schema_version: Option<serde_json::Value>,
    orphanage: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    orphanage: String,
    #[serde(default)]
    started_at: String,
    cells: Vec<CellInfo>,
    results: Vec<TrialRecord>,
}

/// serde_json's message without the " at line L column C" it appends (the
/// prefix gives the place already).
fn message_of(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

fn head_of(path: &Path, bytes: &[u8]) -> Result<u64, ReportFileError> {
    let head: Head = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ReportFileError::NotAReport {
            path: path.to_path_buf(),
        },
        _ => ReportFileError::Corrupt {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: message_of(&e),
        },
    })?;
    // serde reads a struct from an array too: a report is an object.
    let is_object = bytes.trim_ascii_start().first() == Some(&b'{');
    match (head.schema_version, head.orphanage) {
        (Some(v), Some(_)) if is_object => v.as_u64().ok_or(ReportFileError::NotAReport {
            path: path.to_path_buf(),
        }),
        _ => Err(ReportFileError::NotAReport {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads every report, or says what is wrong with the first bad one. Their
/// schemas are compared before any is interpreted, so a mix is named as
/// such rather than as one file this orphanage cannot read.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<ReportFile>, ReportFileError> {
    let mut loaded = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| ReportFileError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let version = head_of(path, &bytes)?;
        loaded.push((path, bytes, version));
    }
    if let Some((first_path, _, first)) = loaded.first() {
        if let Some((path, _, found)) = loaded.iter().find(|l| l.2 != *first) {
            return Err(ReportFileError::SchemaMismatch {
                path: path.to_path_buf(),
                found: *found,
                first_path: first_path.to_path_buf(),
                first: *first,
            });
        }
    }
    loaded
        .into_iter()
        .map(|(path, bytes, version)| parse(path, &bytes, version))
        .collect()
}

fn parse(path: &Path, bytes: &[u8], version: u64) -> Result<ReportFile, ReportFileError> {
    if version != u64::from(SCHEMA_VERSION) {
        return Err(ReportFileError::UnknownSchema {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| ReportFileError::Invalid {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: message_of(&e),
    })?;
    let mut names = HashSet::new();
    for cell in &doc.cells {
        if !names.insert(cell.name.as_str()) {
            return Err(ReportFileError::DuplicateCell {
                path: path.to_path_buf(),
                name: cell.name.clone(),
            });
        }
    }
    let mut seen = HashSet::new();
    for r in &doc.results {
        if !names.contains(r.target.as_str()) {
            return Err(ReportFileError::UnknownTarget {
                path: path.to_path_buf(),
                name: r.name.clone(),
                target: r.target.clone(),
            });
        }
        if !seen.insert((r.target.as_str(), scenario_of(r))) {
            return Err(ReportFileError::DuplicateResult {
                path: path.to_path_buf(),
                name: scenario_of(r).to_string(),
                target: r.target.clone(),
            });
        }
    }
    Ok(ReportFile {
        path: path.to_path_buf(),
        orphanage: doc.orphanage,
        started_at: doc.started_at,
        cells: doc.cells,
        results: doc.results,
    })
}

/// The scenario a result is of (`area::name`): its trial name without the
/// target's prefix (`runc+tini:`), which only some targets give.
pub fn scenario_of(record: &TrialRecord) -> &str {
    record
        .name
        .strip_prefix(record.target.as_str())
        .and_then(|rest| rest.strip_prefix(':'))
        .filter(|rest| !rest.starts_with(':'))
        .unwrap_or(&record.name)
}

impl ReportFile {
    /// This report's results in one of its cells.
    pub fn results_of<'a>(&'a self, cell: &'a CellInfo) -> impl Iterator<Item = &'a TrialRecord> {
        self.results.iter().filter(move |r| r.target == cell.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = r#"{"schema_version": 1, "orphanage": "0.1.0", "started_at": "t",
      "cells": [{"name": "runc", "kind": "runtime", "kernel": "6.1.0", "version": "runc 1.1.5"}],
      "results": [{"name": "runc:memfd::a", "area": "memfd", "target": "runc", "outcome": "fail", "reason": "r"}]}"#;

    #[test]
    fn a_good_report_reads_with_defaults_for_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let r = read_all(&[write(dir.path(), "a.json", GOOD)]).unwrap();
        assert_eq!(r[0].cells[0].version.as_deref(), Some("runc 1.1.5"));
        assert_eq!(r[0].results[0].notes, Vec::<String>::new());
        assert_eq!(scenario_of(&r[0].results[0]), "memfd::a");
    }

    #[rstest]
    #[case(
        "{\"schema_version\": 1,",
        "a.json:1:21: not valid JSON: EOF while parsing"
    )]
    #[case(
        "[1, 2]",
        "a.json: not an orphanage report (it has no `schema_version` and `orphanage`)"
    )]
    #[case("{\"testsuites\": []}", "a.json: not an orphanage report")]
    #[case(
        "{\"schema_version\": 7, \"orphanage\": \"9.0\"}",
        "a.json: schema_version 7, which this orphanage does not read (it reads 1)"
    )]
    #[case(
        "{\"schema_version\": 1, \"orphanage\": \"0.1.0\",\n \"results\": []}",
        "a.json:2:15: missing field `cells`"
    )]
    #[case(
        r#"{"schema_version": 1, "orphanage": "x", "cells": [], "results": [{"name": "a::b", "area": "a", "target": "host", "outcome": "pass"}]}"#,
        "a.json: result `a::b` names target `host`, which is none of its cells"
    )]
    #[case(
        r#"{"schema_version": 1, "orphanage": "x", "cells": [{"name": "host", "kind": "host", "kernel": "k"}], "results": [{"name": "a::b", "area": "a", "target": "host", "outcome": "pass"}, {"name": "a::b", "area": "a", "target": "host", "outcome": "fail"}]}"#,
        "a.json: two results for `a::b` in cell `host`"
    )]
    #[case(
        r#"{"schema_version": 1, "orphanage": "x", "cells": [{"name": "host", "kind": "host", "kernel": "k"}, {"name": "host", "kind": "host", "kernel": "j"}], "results": []}"#,
        "a.json: two cells are named `host`"
    )]
    #[case(
        r#"{"schema_version": 1, "orphanage": "x", "cells": [], "results": [{"name": "a::b", "area": "a", "target": "host", "outcome": "passed"}]}"#,
        "unknown variant `passed`"
    )]
    fn bad_reports_are_one_line_naming_the_file(#[case] text: &str, #[case] says: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.json", text);
        let e = read_all(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        let e = e
            .replace(&dir.path().display().to_string(), "")
            .replace("/a.json", "a.json");
        assert!(e.contains(says), "{e}");
        assert!(e.starts_with("a.json"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn mixed_schemas_are_named_as_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.json", GOOD);
        let b = write(
            dir.path(),
            "b.json",
            "{\"schema_version\": 2, \"orphanage\": \"0.2\"}",
        );
        let e = read_all(&[a.clone(), b.clone()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: schema_version 2, but {} has 1: give reports of one schema",
                b.display(),
                a.display()
            )
        );
        let missing = dir.path().join("none.json");
        let e = read_all(std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }

    #[rstest]
    #[case("runc:memfd::a", "runc", "memfd::a")]
    #[case("memfd::a", "host", "memfd::a")]
    #[case("memfd::a", "memfd", "memfd::a")]
    #[case("6.1:memfd::a", "6.1", "memfd::a")]
    fn the_scenario_is_the_name_without_its_targets_prefix(
        #[case] name: &str,
        #[case] target: &str,
        #[case] scenario: &str,
    ) {
        let r: TrialRecord = serde_json::from_value(serde_json::json!({
            "name": name, "area": "memfd", "target": target, "outcome": "pass"
        }))
        .unwrap();
        assert_eq!(scenario_of(&r), scenario);
    }
}
