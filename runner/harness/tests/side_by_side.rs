//! Runtimes side by side in one run, each against
//! fixtures/expected/runsc.yaml:
//!
//! - the four runtimes, `--runtime runc --runtime crun --runtime youki
//!   --runtime runsc`: every scenario of each gets a verdict, the side-by-side
//!   table has a column for each, runc, crun and youki differ from Linux only
//!   where a VM is needed, and runsc only where the file says;
//! - two gVisor releases, Debian 12's runsc (2022-12) and Debian 13's
//!   (2024-07), fetched into the cache by `orphanage runtimes fetch
//!   runsc-trixie`: each verdict is the one the file lists for that release
//!   (its entries carry version conditions).
//!
//! Nothing of any of them is left behind. Without a runtime (or tini) on
//! PATH, or runsc-trixie not fetched, a trial is ignored, naming what is
//! missing; with ORPHANAGE_REQUIRE_ALL=1 (as in CI) that is a failure instead.

mod common;

use common::{cannot_run, check, crun_refuses_this_layout, on_path, orphanage, repo};
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

/// Runs the suite under each of `runtimes` at once, with `--init tini`,
/// against runsc.yaml, and checks that nothing is left, that each label
/// (the runtime's, as the results name it) has a verdict for every
/// scenario and none broken, and that the run exits 0 with every
/// difference expected. Gives back the run's stdout.
fn side_by_side(runtimes: &[&std::ffi::OsStr], labels: &[&str]) -> Result<String, Failed> {
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
        .args(
            runtimes
                .iter()
                .flat_map(|r| [std::ffi::OsStr::new("--runtime"), r]),
        )
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
    for n in 0..runtimes.len() {
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
    let scenarios = scenario_count();
    for label in labels {
        let label = format!("{label}+tini:");
        let mine: Vec<_> = results
            .iter()
            .filter(|(n, _)| n.starts_with(&label))
            .collect();
        check(mine.len() == scenarios, || {
            format!("only {} results for {label}\n{stderr}", mine.len())
        })?;
        let broken: Vec<_> = mine.iter().filter(|(_, o)| o == "broken").collect();
        check(broken.is_empty(), || format!("broken: {broken:#?}"))?;
    }
    // Each runtime's verdicts are the ones listed for it: exit 0 only so.
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
    )?;
    Ok(stdout.into_owned())
}

/// How many scenarios the suites hold (`orphanage --list`).
fn scenario_count() -> usize {
    let out = orphanage()
        .current_dir(repo())
        .arg("--list")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(": test"))
        .count()
}

/// runc, crun, youki and runsc in one run. Under runc, crun and youki
/// (each on Linux here), the one difference from Linux is the scenario
/// that needs a VM: runsc.yaml's one entry without conditions.
fn four_runtimes_side_by_side() -> Result<(), Failed> {
    let runtimes = ["runc", "crun", "youki", "runsc"];
    let os: Vec<&std::ffi::OsStr> = runtimes.iter().map(std::ffi::OsStr::new).collect();
    let stdout = side_by_side(&os, &runtimes)?;
    // The side-by-side table: a header naming each, in order, then a row a scenario.
    let header = stdout
        .lines()
        .find(|l| runtimes.iter().all(|r| l.contains(&format!("{r}+tini"))));
    check(header.is_some(), || {
        format!("no side-by-side header:\n{stdout}")
    })?;
    let header = header.unwrap();
    let at: Vec<usize> = runtimes
        .iter()
        .map(|r| header.find(&format!("{r}+tini")).unwrap())
        .collect();
    check(at.windows(2).all(|w| w[0] < w[1]), || header.to_string())?;
    let row = stdout
        .lines()
        .find(|l| l.starts_with("memfd::seal_future_write_keeps_existing_mapping "));
    check(
        row.is_some_and(|r| {
            r.split_whitespace()
                .skip(1)
                .eq(["pass", "pass", "pass", "fail"])
        }),
        || format!("row: {row:?}"),
    )?;
    let expected: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  expected "))
        .filter(|l| !l.contains("runsc+tini:"))
        .collect();
    check(
        expected.len() == 3
            && expected
                .iter()
                .all(|l| l.contains(":sibling::global_init_gets_einval: unsupported")),
        || {
            format!(
                "runc, crun or youki differ from Linux in more than the VM-only scenario: {expected:#?}"
            )
        },
    )
}

fn both_releases_side_by_side(trixie: PathBuf) -> Result<(), Failed> {
    // The second runsc is labelled runsc2 (two runtimes of one name).
    side_by_side(
        &[std::ffi::OsStr::new("runsc"), trixie.as_os_str()],
        &["runsc", "runsc2"],
    )
    .map(drop)
}

fn missing_programs(programs: &[&str]) -> Vec<String> {
    programs
        .iter()
        .filter(|p| on_path(p).is_none())
        .map(|p| p.to_string())
        .collect()
}

fn ignored_for(name: &str, missing: &[String]) -> Trial {
    cannot_run(
        name,
        format!("missing: {}", missing.join(", ")),
        format!("missing {}", missing.join(", ")),
    )
}

fn main() {
    let args = Arguments::from_args();
    let name = "both_gvisor_releases_side_by_side";
    let mut missing = missing_programs(&["runsc", "tini"]);
    let trixie = trixie_runsc();
    if trixie.is_none() {
        missing.push("runsc-trixie (`orphanage runtimes fetch runsc-trixie`)".into());
    }
    let releases = match trixie {
        Some(trixie) if missing.is_empty() => {
            Trial::test(name, move || both_releases_side_by_side(trixie))
        }
        _ => ignored_for(name, &missing),
    };
    let name = "four_runtimes_side_by_side";
    let mut missing = missing_programs(&["runc", "crun", "youki", "runsc", "tini"]);
    if missing.is_empty() {
        if let Some(why) = crun_refuses_this_layout() {
            missing.push(why);
        }
    }
    let four = if missing.is_empty() {
        Trial::test(name, four_runtimes_side_by_side)
    } else {
        ignored_for(name, &missing)
    };
    libtest_mimic::run(&args, vec![four, releases]).exit();
}
