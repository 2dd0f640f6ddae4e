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

/// A failure saying `message` unless `ok`: the check every trial makes.
pub fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), libtest_mimic::Failed> {
    if ok {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// Where `name` is on PATH, if it is.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `ORPHANAGE_REQUIRE_ALL=1`: what would be ignored for want of a program
/// or a kernel fails instead, so that CI never skips a target.
pub fn require_all() -> bool {
    std::env::var("ORPHANAGE_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// A trial that cannot run here: ignored with `kind`, or failed naming
/// `why` with ORPHANAGE_REQUIRE_ALL=1.
pub fn cannot_run(name: impl Into<String>, why: String, kind: String) -> libtest_mimic::Trial {
    use libtest_mimic::Trial;
    if require_all() {
        Trial::test(name, move || {
            Err(format!("ORPHANAGE_REQUIRE_ALL=1 but {why}").into())
        })
    } else {
        Trial::test(name, || Ok(()))
            .with_ignored_flag(true)
            .with_kind(kind)
    }
}

/// A trial that needs `programs` on PATH: ignored with their names when
/// one is missing (failed with ORPHANAGE_REQUIRE_ALL=1). With
/// `one_at_a_time`, it holds that lock while it runs: trials that count
/// what is left on the machine must not overlap.
pub fn needs(
    name: impl Into<String>,
    programs: &[&str],
    one_at_a_time: Option<&'static std::sync::Mutex<()>>,
    body: impl FnOnce() -> Result<(), libtest_mimic::Failed> + Send + 'static,
) -> libtest_mimic::Trial {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| on_path(p).is_none())
        .collect();
    if !missing.is_empty() {
        return cannot_run(
            name,
            format!("missing on PATH: {}", missing.join(", ")),
            format!("missing {}", missing.join(", ")),
        );
    }
    libtest_mimic::Trial::test(name, move || {
        let _turn = one_at_a_time.map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
        body()
    })
}

/// Processes in the cgroups of containers made by the orphanage with this
/// pid (container ids are `orphanage-<pid>-<n>`): running or zombies.
pub fn processes_of(harness: u32) -> Vec<String> {
    let tag = format!("/orphanage-{harness}-");
    procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{}/cgroup", p.pid))
                .is_ok_and(|c| c.contains(&tag))
        })
        .filter_map(|p| p.stat().ok())
        .map(|s| format!("pid {} {} state {}", s.pid, s.comm, s.state))
        .collect()
}

/// Why crun cannot run here, if it cannot: crun 1.8 refuses a hybrid cgroup
/// layout whose v2 hierarchy has a controller attached (README, "crun here",
/// gives the fix, which .ci/run applies).
pub fn crun_refuses_this_layout() -> Option<String> {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| !c.trim().is_empty())
        .then(|| {
            "crun refuses this hybrid cgroup layout (a controller on the v2 hierarchy; \
             README, `crun here`, gives the fix)"
                .into()
        })
}
