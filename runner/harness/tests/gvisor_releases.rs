//! Two gVisor releases side by side: Debian 12's runsc (2022-12) and
//! Debian 13's (2024-07), fetched into the cache by `orphanage runtimes
//! fetch runsc-trixie`. In one run, `--runtime runsc --runtime TRIXIE`, every
//! scenario of each gets a verdict, each verdict is the one
//! fixtures/expected/runsc.yaml lists for that release (its entries carry
//! version conditions), and nothing of either is left behind.
//!
//! Without runsc or tini on PATH, or runsc-trixie not fetched, the trial is
//! ignored, naming what is missing; with ORPHANAGE_REQUIRE_ALL=1 (as in CI)
//! that is a failure instead.

mod common;

use common::{cannot_run, check, on_path, orphanage, repo};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn trixie_runsc() -> Option<PathBuf> {
    let out = orphanage()
        .args(["runtimes", "path", "runsc-trixie"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// Processes whose command line names `marker` (runsc's sandbox and gofer
/// name their bundle, under the run's TMPDIR).
fn processes_naming(marker: &str) -> Vec<String> {
    procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter(|p| {
            p.cmdline()
                .is_ok_and(|c| c.iter().any(|a| a.contains(marker)))
        })
        .map(|p| format!("pid {}: {:?}", p.pid, p.cmdline().unwrap_or_default()))
        .collect()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// cgroups named after that orphanage's containers, in every hierarchy.
fn cgroups_of(harness: u32) -> Vec<String> {
    let prefix = format!("orphanage-{harness}-");
    entries(Path::new("/sys/fs/cgroup"))
        .iter()
        .flat_map(|h| entries(h))
        .filter(|d| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(&prefix))
        })
        .map(|d| d.display().to_string())
        .collect()
}

fn both_releases_side_by_side(trixie: PathBuf) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let report = dir.path().join("report.json");
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let child = orphanage()
        .current_dir(repo())
        .env("TMPDIR", &tmp)
        .arg("--runtime-root")
        .arg(&state)
        .args(["--runtime", "runsc", "--runtime"])
        .arg(&trixie)
        .args(["--init", "tini", "--expected"])
        .arg(repo().join("fixtures/expected/runsc.yaml"))
        .arg("--report")
        .arg(&report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Nothing of either release is left: no sandbox or gofer, no container
    // in either state directory, no cgroup, no temporary file, no mount.
    let left = processes_naming(&tmp.display().to_string());
    check(left.is_empty(), || format!("processes left: {left:#?}"))?;
    for n in 0..2 {
        let files = entries(&state.join(format!("state-{n}")));
        check(files.is_empty(), || {
            format!("files left in state-{n}: {files:?}")
        })?;
    }
    let cgroups = cgroups_of(harness);
    check(cgroups.is_empty(), || format!("cgroups left: {cgroups:?}"))?;
    let temps = entries(&tmp);
    check(temps.is_empty(), || {
        format!("temporary files left: {temps:?}")
    })?;
    check(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap() == mounts_before,
        || "the mount table changed".into(),
    )?;

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(Value::Null);
    let results: Vec<(String, String)> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    // The second runsc is labelled runsc2 (two runtimes of one name).
    for label in ["runsc+tini:", "runsc2+tini:"] {
        let mine: Vec<_> = results
            .iter()
            .filter(|(n, _)| n.starts_with(label))
            .collect();
        check(mine.len() >= 90, || {
            format!("only {} results for {label}\n{stderr}", mine.len())
        })?;
        let broken: Vec<_> = mine.iter().filter(|(_, o)| o == "broken").collect();
        check(broken.is_empty(), || format!("broken: {broken:#?}"))?;
    }
    // Each release's verdicts are the ones listed for it: exit 0 only so.
    check(
        stdout.contains(" expected, 0 unexpected, 0 stale") && out.status.code() == Some(0),
        || {
            let from = stdout.find("expected differences").unwrap_or(0);
            format!(
                "exit {:?}: {}\n{stderr}",
                out.status.code(),
                &stdout[from..]
            )
        },
    )
}

fn main() {
    let args = Arguments::from_args();
    let name = "both_gvisor_releases_side_by_side";
    let mut missing: Vec<String> = ["runsc", "tini"]
        .iter()
        .filter(|p| on_path(p).is_none())
        .map(|p| p.to_string())
        .collect();
    let trixie = trixie_runsc();
    if trixie.is_none() {
        missing.push("runsc-trixie (`orphanage runtimes fetch runsc-trixie`)".into());
    }
    let trial = match trixie {
        Some(trixie) if missing.is_empty() => {
            Trial::test(name, move || both_releases_side_by_side(trixie))
        }
        _ => cannot_run(
            name,
            format!("missing: {}", missing.join(", ")),
            format!("missing {}", missing.join(", ")),
        ),
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}
