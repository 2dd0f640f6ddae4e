//! The runtime target against real runtimes and deliberately broken ones.
//! Without runc (or an init program) these are reported as ignored, naming
//! what is missing; with ORPHANAGE_REQUIRE_ALL=1 (as in CI) a missing piece
//! is a failure instead, so CI never skips them silently.
//!
//! Trials take turns: the cleanup checks scan the whole process table and
//! every cgroup hierarchy.

mod common;

use common::{orphanage, repo, run_with_report, Run};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A trial that needs `programs` on PATH: ignored with their names when
/// missing, or failed when ORPHANAGE_REQUIRE_ALL=1.
fn needs(name: &str, programs: &[&'static str], body: fn() -> Result<(), Failed>) -> Trial {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| on_path(p).is_none())
        .collect();
    let required = std::env::var("ORPHANAGE_REQUIRE_ALL").is_ok_and(|v| v == "1");
    if missing.is_empty() {
        Trial::test(name, move || {
            let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
            body()
        })
    } else if required {
        let why = format!("missing on PATH: {}", missing.join(", "));
        Trial::test(name, move || {
            Err(format!("ORPHANAGE_REQUIRE_ALL=1 but {why}").into())
        })
    } else {
        Trial::test(name, || Ok(()))
            .with_ignored_flag(true)
            .with_kind(format!("missing {}", missing.join(", ")))
    }
}

fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(message().into())
    }
}

fn outcomes(run: &Run) -> Vec<(String, String, String)> {
    run.report["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["name"].as_str().unwrap_or("").to_string(),
                        r["outcome"].as_str().unwrap_or("").to_string(),
                        r["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Processes in the cgroups of containers made by the orphanage with this
/// pid (container ids are `orphanage-<pid>-<n>`): running or zombies.
fn processes_of(harness: u32) -> Vec<String> {
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

/// cgroups of that orphanage's containers, in every hierarchy.
fn cgroups_of(harness: u32) -> Vec<String> {
    let prefix = format!("orphanage-{harness}-");
    let mut found = vec![];
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dirs = std::fs::read_dir(hierarchy.path())
            .into_iter()
            .flatten()
            .flatten();
        for d in dirs {
            if d.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(d.path().display().to_string());
            }
        }
    }
    found
}

/// Containers in the runtime's state directory, as `runc list -q` names them.
fn containers(state: &Path) -> Vec<String> {
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(state)
        .args(["list", "-q"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A run of orphanage with its own TMPDIR and runtime state directory, so
/// that what it leaves can be told from anything else on the machine.
struct Isolated {
    dir: tempfile::TempDir,
}

impl Isolated {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        Isolated { dir }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = orphanage();
        c.current_dir(repo())
            .env("TMPDIR", self.dir.path().join("tmp"))
            .arg("--runtime-root")
            .arg(self.dir.path().join("state"))
            .args(args);
        c
    }

    /// Nothing of that run is left: no process, cgroup, temporary file, or
    /// container in the runtime's state; and the mount table is as before.
    fn assert_clean(&self, harness: u32, mounts_before: &str) -> Result<(), Failed> {
        let left = processes_of(harness);
        check(left.is_empty(), || {
            format!("processes left behind: {left:#?}")
        })?;
        let cgroups = cgroups_of(harness);
        check(cgroups.is_empty(), || {
            format!("cgroups left behind: {cgroups:?}")
        })?;
        let temps: Vec<_> = std::fs::read_dir(self.dir.path().join("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        check(temps.is_empty(), || {
            format!("temporary files left: {temps:?}")
        })?;
        check(mounts() == mounts_before, || {
            "the mount table changed".into()
        })?;
        let left = containers(&self.dir.path().join("state/state-0"));
        check(left.is_empty(), || {
            format!("containers left in the runtime's state: {left:?}")
        })
    }
}

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// Runs to the end; returns its output and the harness's pid.
fn run_to_end(mut command: std::process::Command) -> (std::process::Output, u32) {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

/// Runs to the end with a JSON report; returns the harness's pid too.
fn run_isolated(iso: &Isolated, args: &[&str]) -> (Run, u32) {
    let report_path = iso.dir.path().join("report.json");
    let mut command = iso.command(args);
    command.arg("--report").arg(&report_path);
    let (output, pid) = run_to_end(command);
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (Run { output, report }, pid)
}

fn runc_suite_with_tini_passes() -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    let (run, pid) = run_isolated(&iso, &["--runtime", "runc", "--init", "tini"]);
    iso.assert_clean(pid, &mounts_before)?;
    let results = outcomes(&run);
    let bad: Vec<_> = results
        .iter()
        .filter(|(_, o, _)| o == "fail" || o == "broken")
        .collect();
    check(bad.is_empty(), || format!("{bad:#?}\n{}", run.stderr()))?;
    check(run.code() == Some(0), || run.stderr())?;
    // Every runtime area ran and passed, not merely "did not fail".
    for area in ["kill_race", "shim", "container_init", "init_program"] {
        let passed = results
            .iter()
            .filter(|(n, o, _)| n.starts_with(&format!("runc+tini:{area}::")) && o == "pass")
            .count();
        check(passed >= 2, || {
            format!("only {passed} {area} scenarios passed")
        })?;
    }
    check(results.len() >= 90, || {
        format!("only {} results", results.len())
    })?;
    check(
        run.report["target"]
            .as_str()
            .unwrap_or("")
            .contains("runc version"),
        || format!("target: {}", run.report["target"]),
    )
}

fn init_programs_pass(init: &str, unsupported: &[&str]) -> Result<(), Failed> {
    let run = run_with_report(
        &repo().join("suites"),
        &["--runtime", "runc", "--init", init, "init_program::"],
        &[],
    );
    let results = outcomes(&run);
    check(results.len() == 5, || format!("{results:#?}"))?;
    for (name, outcome, reason) in &results {
        let expected = if unsupported.iter().any(|u| name.ends_with(u)) {
            "unsupported"
        } else {
            "pass"
        };
        check(outcome == expected, || {
            format!("{name}: {outcome} ({reason}), expected {expected}")
        })?;
    }
    Ok(())
}

/// Each broken wrapper must make exactly its scenarios fail, not pass and not break.
fn wrapper_is_caught(wrapper: &str, must_fail: &[&str]) -> Result<(), Failed> {
    let path = repo().join("fixtures/runtime/misbehaving").join(wrapper);
    let iso = Isolated::new();
    let mounts_before = mounts();
    let (run, pid) = run_isolated(&iso, &["--runtime", path.to_str().unwrap(), "kill_race::"]);
    // A failing run cleans up as well as a passing one.
    iso.assert_clean(pid, &mounts_before)?;
    let results = outcomes(&run);
    check(!results.is_empty(), || run.stderr())?;
    for (name, outcome, reason) in &results {
        let scenario = name.split_once("::").map_or("", |(_, s)| s);
        let expected = if must_fail.contains(&scenario) {
            "fail"
        } else {
            "pass"
        };
        check(outcome == expected, || {
            format!("{wrapper}: {name} was {outcome} ({reason}), expected {expected}")
        })?;
    }
    check(run.code() == Some(101), || format!("exit {:?}", run.code()))
}

fn an_environment_error_is_one_line_and_exit_3() -> Result<(), Failed> {
    let wrapper = repo().join("fixtures/runtime/misbehaving/cannot-create");
    let iso = Isolated::new();
    let mounts_before = mounts();
    let (out, pid) = run_to_end(iso.command(&["--runtime", wrapper.to_str().unwrap()]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(3), || {
        format!("{:?}: {stderr}", out.status)
    })?;
    check(stderr.lines().count() == 1, || {
        format!("not one line: {stderr}")
    })?;
    check(
        stderr.contains("cannot-create cannot run a container on this machine")
            && stderr.contains("cgroup setup refused"),
        || stderr.to_string(),
    )?;
    check(out.stdout.is_empty(), || "scenarios ran".into())?;
    iso.assert_clean(pid, &mounts_before)
}

/// On a kernel without subreapers (simulated by a seccomp filter) the
/// runtime target cannot adopt a container's init: one line, exit 3, nothing run.
fn without_subreapers_the_runtime_target_stops_with_one_line() -> Result<(), Failed> {
    use std::os::unix::process::CommandExt;
    let program = orphanage_agent_io::Lacks {
        subreapers: true,
        ..Default::default()
    }
    .program();
    let mut cmd = orphanage();
    cmd.current_dir(repo())
        .args(["--runtime", "runc", "kill_race::"]);
    // SAFETY: only prctl and seccomp between fork and exec.
    unsafe { cmd.pre_exec(move || orphanage_agent_io::install_filter(&program)) };
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(3), || {
        format!("{:?}: {stderr}", out.status)
    })?;
    check(stderr.lines().count() == 1, || {
        format!("not one line: {stderr}")
    })?;
    check(
        stderr.contains("needs the harness to be a child subreaper")
            && stderr.contains("prctl(PR_SET_CHILD_SUBREAPER): EINVAL"),
        || stderr.to_string(),
    )?;
    check(out.stdout.is_empty(), || "scenarios ran".into())
}

/// crun from Debian cannot run here (hybrid cgroups; RLIMIT_MEMLOCK): then
/// the run must stop with one line, and where crun works, the suite must pass.
fn crun_passes_or_stops_with_one_line() -> Result<(), Failed> {
    let out = orphanage()
        .current_dir(repo())
        .args(["--runtime", "crun", "kill_race::"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(3) => check(
            stderr.lines().count() == 1 && stderr.starts_with("orphanage: crun cannot run"),
            || stderr.to_string(),
        ),
        other => Err(format!("crun: exit {other:?}: {stderr}").into()),
    }
}

fn ctrl_c_deletes_every_container() -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    // Scenarios that never end, so containers are surely running at the interrupt.
    let hang = repo().join("fixtures/hang");
    let mut child = iso
        .command(&["--suites", hang.to_str().unwrap(), "--runtime", "runc"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut interval = Duration::from_millis(1);
    while containers(&iso.dir.path().join("state/state-0")).len() < 2 {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("no container ever started".into());
        }
        // A poll interval against the deadline, not a synchronisation point.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    check(status.code() == Some(130), || format!("{status:?}"))?;
    iso.assert_clean(child.id(), &mounts_before)
}

/// explore works on the runtime target: generated trees, each in a container, agree with the model.
fn explore_in_runc_agrees() -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    let save = iso.dir.path().join("found");
    std::fs::create_dir(&save).unwrap();
    let mut command = iso.command(&[
        "--runtime",
        "runc",
        "explore",
        "--cases",
        "8",
        "--seed",
        "3",
    ]);
    command.arg("--save-to").arg(&save);
    let (out, pid) = run_to_end(command);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    check(out.status.code() == Some(0), || text.clone())?;
    check(
        text.contains("target runc") && text.contains("8 trees agree with the model"),
        || text.clone(),
    )?;
    iso.assert_clean(pid, &mounts_before)
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![
        needs(
            "runc_suite_with_tini_passes",
            &["runc", "tini"],
            runc_suite_with_tini_passes,
        ),
        needs("dumb_init_under_test", &["runc", "dumb-init"], || {
            init_programs_pass("dumb-init", &["subreaper_mode_adopts_orphans"])
        }),
        needs("catatonit_under_test", &["runc", "catatonit"], || {
            init_programs_pass("catatonit", &[])
        }),
        needs(
            "without_subreapers_the_runtime_target_stops_with_one_line",
            &["runc"],
            without_subreapers_the_runtime_target_stops_with_one_line,
        ),
        needs("kill_ignoring_all_is_caught", &["runc"], || {
            wrapper_is_caught(
                "kill-ignores-all",
                &[
                    "init_already_dead_kill_all_cleans_up",
                    "kill_all_gone_by_kill0_polling",
                    "kill_all_reaches_escaped_sessions",
                ],
            )
        }),
        needs("delete_returning_early_is_caught", &["runc"], || {
            wrapper_is_caught("delete-returns-early", &["delete_force_is_synchronous"])
        }),
        needs(
            "a_process_left_in_the_container_is_caught",
            &["runc"],
            || {
                wrapper_is_caught(
                    "leaves-extra-process",
                    &[
                        "init_already_dead_kill_all_cleans_up",
                        "kill_all_gone_by_kill0_polling",
                        "kill_all_reaches_escaped_sessions",
                    ],
                )
            },
        ),
        needs(
            "an_environment_error_is_one_line_and_exit_3",
            &["runc"],
            an_environment_error_is_one_line_and_exit_3,
        ),
        needs(
            "crun_passes_or_stops_with_one_line",
            &["crun"],
            crun_passes_or_stops_with_one_line,
        ),
        needs(
            "ctrl_c_deletes_every_container",
            &["runc"],
            ctrl_c_deletes_every_container,
        ),
        needs("explore_in_runc_agrees", &["runc"], explore_in_runc_agrees),
    ];
    libtest_mimic::run(&args, trials).exit();
}
