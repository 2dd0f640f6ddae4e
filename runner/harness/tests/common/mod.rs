//! Shared by the integration tests: run the real binary, read its report.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn orphanage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orphanage"));
    // runc's and runtime-tools' convention would silently switch targets.
    c.env_remove("RUNTIME");
    c
}

pub struct Run {
    pub output: Output,
    pub report: serde_json::Value,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn result(&self, name: &str) -> &serde_json::Value {
        self.report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no result for {name}: {}", self.report))
    }
}

/// Runs orphanage on `suites` with a JSON report, plus `extra` arguments and environment.
pub fn run_with_report(suites: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let output = orphanage()
        .arg("--suites")
        .arg(suites)
        .arg("--report")
        .arg(&report_path)
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Run { output, report }
}

/// A one-area suites directory holding copies of `files`, each optionally edited.
pub fn suite_of(files: &[(&Path, Option<(&str, &str)>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("fixture")).unwrap();
    for (file, edit) in files {
        let mut text = std::fs::read_to_string(file).unwrap();
        if let Some((from, to)) = edit {
            assert!(text.contains(from), "{} has no `{from}`", file.display());
            text = text.replace(from, to);
        }
        std::fs::write(
            dir.path().join("fixture").join(file.file_name().unwrap()),
            text,
        )
        .unwrap();
    }
    dir
}
