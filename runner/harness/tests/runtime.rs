//! The runtime target against real runtimes and deliberately broken ones.
//! Without runc (or an init program) these are reported as ignored, naming
//! what is missing; with ORPHANAGE_REQUIRE_ALL=1 (as in CI) a missing piece
//! is a failure instead, so CI never skips them silently.
//!
//! Trials take turns: the cleanup checks scan the whole process table and
//! every cgroup hierarchy.

mod common;

use common::{
    cannot_run, check, crun_refuses_this_layout, orphanage, processes_of, repo, run_with_report,
    Run,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A runtime trial: one at a time, for each counts what is left on the machine.
fn needs(name: &str, programs: &[&'static str], body: fn() -> Result<(), Failed>) -> Trial {
    common::needs(name, programs, Some(&ONE_AT_A_TIME), body)
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

/// cgroups of that orphanage's containers, in every hierarchy (youki names
/// them `:youki:ID`, so the id is looked for anywhere in the name).
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
            if d.file_name().to_string_lossy().contains(&prefix) {
                found.push(d.path().display().to_string());
            }
        }
    }
    found
}

/// Containers in the runtime's state directory, as `RUNTIME list -q` names them.
fn containers_of(runtime: &str, state: &Path) -> Vec<String> {
    let out = std::process::Command::new(runtime)
        .arg("--root")
        .arg(state)
        .args(["list", "--quiet"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // youki 0.7.0 ignores --quiet and prints its table: the id is each
        // line's first word, under an `ID` header.
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| *id != "ID")
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
        self.assert_clean_of("runc", harness, mounts_before)
    }

    /// As `assert_clean`, for `runtime`'s state. For runsc also: not a file in
    /// its state directory, and no sandbox or gofer process of this run (they
    /// name the run's bundle directory, under its TMPDIR, on their command line).
    fn assert_clean_of(
        &self,
        runtime: &str,
        harness: u32,
        mounts_before: &str,
    ) -> Result<(), Failed> {
        if runtime == "runsc" {
            let tmp = self.dir.path().join("tmp").display().to_string();
            let helpers: Vec<String> = procfs::process::all_processes()
                .unwrap()
                .flatten()
                .filter(|p| {
                    p.cmdline()
                        .is_ok_and(|c| c.iter().any(|a| a.contains(&tmp)))
                })
                .map(|p| format!("pid {}: {:?}", p.pid, p.cmdline().unwrap_or_default()))
                .collect();
            check(helpers.is_empty(), || {
                format!("runsc processes left behind: {helpers:#?}")
            })?;
            let state: Vec<_> = std::fs::read_dir(self.dir.path().join("state/state-0"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            check(state.is_empty(), || {
                format!("files left in runsc's state directory: {state:?}")
            })?;
        }
        self.assert_clean_common(runtime, harness, mounts_before)
    }

    fn assert_clean_common(
        &self,
        runtime: &str,
        harness: u32,
        mounts_before: &str,
    ) -> Result<(), Failed> {
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
        let left = containers_of(runtime, &self.dir.path().join("state/state-0"));
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

/// The JSON report at `path`, or Null when the run wrote none (a check on
/// its results then fails, naming what the run printed).
fn report_at(path: &Path) -> serde_json::Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Runs to the end with a JSON report; returns the harness's pid too.
fn run_isolated(iso: &Isolated, args: &[&str]) -> (Run, u32) {
    let report_path = iso.dir.path().join("report.json");
    let mut command = iso.command(args);
    command.arg("--report").arg(&report_path);
    let (output, pid) = run_to_end(command);
    let report = report_at(&report_path);
    (Run { output, report }, pid)
}

fn suite_with_tini_passes(runtime: &str) -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    let (run, pid) = run_isolated(&iso, &["--runtime", runtime, "--init", "tini"]);
    iso.assert_clean_of(runtime, pid, &mounts_before)?;
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
            .filter(|(n, o, _)| n.starts_with(&format!("{runtime}+tini:{area}::")) && o == "pass")
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
            .contains(&format!("{runtime} version")),
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
    let scenarios = std::fs::read_dir(repo().join("suites/init_program"))
        .unwrap()
        .count();
    check(results.len() == scenarios, || format!("{results:#?}"))?;
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
    wrapper_around_is_caught("runc", wrapper, must_fail, &[])
}

/// As `wrapper_is_caught`, the wrapper around `real`; `unsupported` are the
/// scenarios that runtime cannot have checked (under runsc, the ones naming
/// processes inside the sandbox).
fn wrapper_around_is_caught(
    real: &str,
    wrapper: &str,
    must_fail: &[&str],
    unsupported: &[&str],
) -> Result<(), Failed> {
    let path = repo().join("fixtures/runtime/misbehaving").join(wrapper);
    let iso = Isolated::new();
    let mounts_before = mounts();
    let mut args = vec!["--runtime", path.to_str().unwrap(), "kill_race::"];
    if real == "runsc" {
        // The wrapper's name is not runsc's: the flag it needs is given by hand.
        args.push("--runtime-arg=--network=none");
    }
    let report_path = iso.dir.path().join("report.json");
    let mut command = iso.command(&args);
    command
        .arg("--report")
        .arg(&report_path)
        .env("ORPHANAGE_WRAPPED_RUNTIME", real);
    let (output, pid) = run_to_end(command);
    let report = report_at(&report_path);
    let run = Run { output, report };
    // A failing run cleans up as well as a passing one.
    iso.assert_clean_of(real, pid, &mounts_before)?;
    let results = outcomes(&run);
    check(!results.is_empty(), || run.stderr())?;
    for (name, outcome, reason) in &results {
        let scenario = name.split_once("::").map_or("", |(_, s)| s);
        let expected = if must_fail.contains(&scenario) {
            "fail"
        } else if unsupported.contains(&scenario) {
            "unsupported"
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

/// The whole suite in gVisor: every scenario gets a verdict, nothing is
/// broken, each unsupported one names its probe, each fail says what was
/// expected, and nothing of the run is left behind.
fn runsc_suite_gives_every_scenario_a_verdict() -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    let started = Instant::now();
    let expected = repo().join("fixtures/expected/runsc.yaml");
    let (run, pid) = run_isolated(
        &iso,
        &[
            "--runtime",
            "runsc",
            "--init",
            "tini",
            "--expected",
            expected.to_str().unwrap(),
        ],
    );
    let took = started.elapsed();
    iso.assert_clean_of("runsc", pid, &mounts_before)?;
    let results = outcomes(&run);
    check(results.len() >= 90, || {
        format!("only {} results: {}", results.len(), run.stderr())
    })?;
    let broken: Vec<_> = results.iter().filter(|(_, o, _)| o == "broken").collect();
    check(broken.is_empty(), || format!("broken: {broken:#?}"))?;
    for (name, outcome, reason) in &results {
        let explained = match outcome.as_str() {
            "pass" => true,
            "fail" => reason.contains("expected"),
            // A probe and its errno, or why the host cannot check it.
            "unsupported" => {
                reason.contains(": E")
                    || reason.contains("cannot be watched from the host")
                    || reason.contains("cannot say")
                    || reason.contains("no known")
                    || reason.starts_with("needs the VM target")
            }
            _ => false,
        };
        check(explained, || {
            format!("{name}: {outcome} without a reason: {reason}")
        })?;
    }
    // Every fail and unsupported is a known difference, listed with its
    // reason: so the run exits 0, and only because --expected was given.
    check(
        run.stdout().contains(" expected, 0 unexpected, 0 stale") && run.code() == Some(0),
        || {
            let judged = run.stdout();
            let from = judged.find("expected differences").unwrap_or(0);
            format!("exit {:?}: {}", run.code(), &judged[from..])
        },
    )?;
    // The checks that read only the host ran, and passed: a sandbox's death
    // and exit code, and its adoption by the harness.
    for scenario in [
        "shim::harness_reaps_init_exit_code",
        "kill_race::kill_all_in_private_pid_namespace",
    ] {
        let name = format!("runsc+tini:{scenario}");
        check(
            results.iter().any(|(n, o, _)| *n == name && o == "pass"),
            || format!("{name} did not pass: {results:#?}"),
        )?;
    }
    eprintln!(
        "runsc: {} scenarios in {:.1} s",
        results.len(),
        took.as_secs_f64()
    );
    Ok(())
}

/// The unprivileged user the rootless run is made as: nobody.
const NOBODY: u32 = 65534;

/// Copies the directory tree `from` to `to`, which must not exist.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The suite in gVisor as an unprivileged user. orphanage gives runsc
/// `--rootless` itself (runsc refuses a non-root user without it), and a
/// rootless runsc makes no cgroup: the harness finds the sandbox's host
/// processes by the bundle they name instead, and reaps them as they exit.
/// (It did not: runsc's `delete --force` of every detached scenario then
/// waited on its gofer, the harness's unreaped zombie, until runsc's own
/// deadline, and 18 scenarios failed on their cleanup.) Only the known
/// differences, none broken, nothing left behind. The binary (its agent
/// inside), the suites and the expected differences are copied where that
/// user can read them, wherever the checkout is.
fn runsc_rootless_has_only_the_known_differences() -> Result<(), Failed> {
    use std::os::unix::process::CommandExt;
    let iso = Isolated::new();
    let home = iso.dir.path();
    let binary = home.join("orphanage");
    std::fs::copy(env!("CARGO_BIN_EXE_orphanage"), &binary).unwrap();
    copy_tree(&repo().join("suites"), &home.join("suites"));
    std::fs::copy(
        repo().join("fixtures/expected/runsc.yaml"),
        home.join("expected.yaml"),
    )
    .unwrap();
    for path in [home.to_path_buf(), home.join("tmp"), home.join("state")] {
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let mounts_before = mounts();
    let report_path = home.join("report.json");
    let mut command = std::process::Command::new(&binary);
    command
        .current_dir(home)
        .env_remove("RUNTIME")
        .env("HOME", home)
        .env("TMPDIR", home.join("tmp"))
        // As root, std drops the supplementary groups too.
        .uid(NOBODY)
        .gid(NOBODY)
        .args(["--runtime-root", "state", "--suites", "suites"])
        .args([
            "--runtime",
            "runsc",
            "--init",
            "tini",
            "--expected",
            "expected.yaml",
        ])
        .arg("--report")
        .arg(&report_path);
    let started = Instant::now();
    let (output, pid) = run_to_end(command);
    let took = started.elapsed();
    let run = Run {
        output,
        report: report_at(&report_path),
    };
    iso.assert_clean_of("runsc", pid, &mounts_before)?;
    let results = outcomes(&run);
    check(results.len() >= 90, || {
        format!("only {} results: {}", results.len(), run.stderr())
    })?;
    let broken: Vec<_> = results.iter().filter(|(_, o, _)| o == "broken").collect();
    check(broken.is_empty(), || format!("broken: {broken:#?}"))?;
    check(
        run.stdout().contains(" expected, 0 unexpected, 0 stale") && run.code() == Some(0),
        || {
            let judged = run.stdout();
            let from = judged.find("expected differences").unwrap_or(0);
            format!(
                "exit {:?}: {}\n{}",
                run.code(),
                &judged[from..],
                run.stderr()
            )
        },
    )?;
    // Scenarios on `run --detach`, whose cleanup is `delete --force`, passed.
    for scenario in [
        "container_init::sigkill_from_runtime_kills_init",
        "shim::harness_reaps_init_exit_code",
        "kill_race::delete_force_is_synchronous",
    ] {
        let name = format!("runsc+tini:{scenario}");
        check(
            results.iter().any(|(n, o, _)| *n == name && o == "pass"),
            || format!("{name} did not pass: {results:#?}"),
        )?;
    }
    eprintln!(
        "runsc, rootless: {} scenarios in {:.1} s",
        results.len(),
        took.as_secs_f64()
    );
    Ok(())
}

/// A scenario past its deadline in gVisor: a fail naming the timeout, and
/// its sandbox, gofer and state are gone as after a pass.
fn runsc_cleans_up_after_a_timeout() -> Result<(), Failed> {
    let iso = Isolated::new();
    let suites = iso.dir.path().join("suites/hang");
    std::fs::create_dir_all(&suites).unwrap();
    std::fs::write(
        suites.join("short.yaml"),
        "checks: Never finishes, within a short deadline.\nrefs: [wait(2)]\ndeadline: 2s\n\
         steps:\n  - spawn: {name: daemon}\n  - setsid: {by: daemon}\n  - spawn: {name: child}\n  \
         - wait: {for: child}\n",
    )
    .unwrap();
    let mounts_before = mounts();
    let suites_arg = iso.dir.path().join("suites");
    let (run, pid) = run_isolated(
        &iso,
        &[
            "--suites",
            suites_arg.to_str().unwrap(),
            "--runtime",
            "runsc",
        ],
    );
    iso.assert_clean_of("runsc", pid, &mounts_before)?;
    let results = outcomes(&run);
    check(
        results.len() == 1 && results[0].1 == "fail" && results[0].2.contains("timeout after 2 s"),
        || format!("{results:#?}\n{}", run.stderr()),
    )
}

/// A runtime command that never returns gets only what is left of the
/// scenario's deadline: the scenario is a timeout at its deadline (not after
/// a limit of the command's own), and the container is still deleted.
fn a_hung_runtime_command_gets_what_is_left_of_the_deadline() -> Result<(), Failed> {
    // A `kill` that hangs in a step, and a `run --detach` that never makes
    // the container (the scenario has a step of the harness's, so it runs
    // detached). (A foreground `run` that hangs is met first by the trivial
    // container every run starts with: see the test below.)
    for (verb, reached) in [
        (
            "kill",
            "timeout after 2 s (last step reached: step 2 runtime_kill)",
        ),
        (
            "run --detach",
            "timeout after 2 s (last step reached: before the first step)",
        ),
    ] {
        let iso = Isolated::new();
        let suites = iso.dir.path().join("suites/hang");
        std::fs::create_dir_all(&suites).unwrap();
        std::fs::write(
            suites.join("kill_hangs.yaml"),
            "checks: A runtime kill that never returns.\nrefs: [kill(2)]\ndeadline: 2s\n\
             steps:\n  - catch: {signals: [SIGTERM]}\n  - runtime_kill: {signal: SIGTERM}\n  \
             - expect_signal: {signal: SIGTERM, within: 1s}\n",
        )
        .unwrap();
        let wrapper = repo().join("fixtures/runtime/misbehaving/kill-hangs");
        let mounts_before = mounts();
        let suites_arg = iso.dir.path().join("suites");
        let report_path = iso.dir.path().join("report.json");
        let mut command = iso.command(&[
            "--suites",
            suites_arg.to_str().unwrap(),
            "--runtime",
            wrapper.to_str().unwrap(),
        ]);
        command
            .arg("--report")
            .arg(&report_path)
            .env("ORPHANAGE_HANGING_VERB", verb);
        let started = std::time::Instant::now();
        let (output, pid) = run_to_end(command);
        let took = started.elapsed();
        let report = report_at(&report_path);
        let run = Run { output, report };
        iso.assert_clean_of("runc", pid, &mounts_before)?;
        let results = outcomes(&run);
        let kind = run.report["results"][0]["kind"].as_str().unwrap_or("");
        check(
            results.len() == 1
                && results[0].1 == "fail"
                && kind == "timeout"
                && results[0].2.starts_with(reached),
            || format!("{verb}: {results:#?} kind {kind}\n{}", run.stderr()),
        )?;
        // The deadline, the start of the container and its deletion; not the
        // 30 s a runtime command once had for itself.
        check(took < std::time::Duration::from_secs(15), || {
            format!("{verb}: the run took {took:?}")
        })?;
    }
    Ok(())
}

/// A foreground `run` that forgets its container but leaves a cgroup
/// behind: a leak naming the directory, which orphanage removes, so nothing
/// is left behind (not a `delete --force` of a container the runtime no
/// longer knows, failing with "does not exist").
fn a_cgroup_left_by_a_foreground_run_is_a_leak_and_removed() -> Result<(), Failed> {
    let iso = Isolated::new();
    let wrapper = repo().join("fixtures/runtime/misbehaving/leaves-cgroup");
    let mounts_before = mounts();
    let report_path = iso.dir.path().join("report.json");
    // In its own pid namespace with no step of the harness's: a foreground run.
    let mut command = iso.command(&[
        "--runtime",
        wrapper.to_str().unwrap(),
        "zombie::exit_codes_reported_exactly",
    ]);
    command.arg("--report").arg(&report_path);
    let (output, pid) = run_to_end(command);
    let report = report_at(&report_path);
    let run = Run { output, report };
    iso.assert_clean(pid, &mounts_before)?;
    let results = outcomes(&run);
    let kind = run.report["results"][0]["kind"].as_str().unwrap_or("");
    check(
        results.len() == 1
            && results[0].1 == "fail"
            && kind == "leak"
            && results[0].2.starts_with(
                "cleanup: the runtime's `run` exited and forgot the container, but left the cgroup /sys/fs/cgroup/pids",
            )
            && results[0].2.ends_with(" behind (orphanage removed it)"),
        || format!("{results:#?} kind {kind}\n{}", run.stderr()),
    )
}

/// A `run`, foreground or detached, whose --pid-file names a process that
/// is not the container's: a fail, and that process is left alone (the
/// harness pins, signals and kills a container's init; a pid it was only
/// told must not make it touch a stranger), with nothing left behind and
/// no trouble in cleaning up (under runsc, the real sandbox, unwatched,
/// made `delete --force` fail after 5 s).
fn a_pid_file_naming_a_stranger_is_a_fail_and_the_stranger_lives(
    wrapped: &str,
) -> Result<(), Failed> {
    /// The stranger: killed and reaped however the test ends.
    struct Stranger(std::process::Child);
    impl Drop for Stranger {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let iso = Isolated::new();
    let wrapper = repo().join("fixtures/runtime/misbehaving/names-a-stranger");
    let mut stranger = Stranger(
        std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .unwrap(),
    );
    let stranger_pid = stranger.0.id();
    let mounts_before = mounts();
    let report_path = iso.dir.path().join("report.json");
    // In its own pid namespace with no step of the harness's, a foreground
    // `run`; with one (`runtime_kill`), `run --detach`.
    let mut args = vec![
        "--runtime",
        wrapper.to_str().unwrap(),
        "zombie::exit_codes_reported_exactly",
        "container_init::sigterm_delivered_with_handler",
    ];
    if wrapped == "runsc" {
        // The wrapper's name is not runsc's: the flag it needs is given by hand.
        args.push("--runtime-arg=--network=none");
    }
    let mut command = iso.command(&args);
    command
        .env("ORPHANAGE_WRAPPED_RUNTIME", wrapped)
        .env("ORPHANAGE_STRANGER_PID", stranger_pid.to_string())
        .arg("--report")
        .arg(&report_path);
    let started = Instant::now();
    let (output, pid) = run_to_end(command);
    let took = started.elapsed();
    let alive = matches!(stranger.0.try_wait(), Ok(None));
    drop(stranger);
    let report = report_at(&report_path);
    let run = Run { output, report };
    iso.assert_clean_of(wrapped, pid, &mounts_before)?;
    check(alive, || {
        format!("the stranger was killed\n{}", run.stderr())
    })?;
    let results = outcomes(&run);
    let (foreground, detached) = (
        format!("wrote {stranger_pid} to its --pid-file, and that is no process of that `run`'s"),
        format!(
            "run --detach` gave {stranger_pid} as its container's init, and that is no process \
             under the harness"
        ),
    );
    check(
        results.len() == 2
            && results
                .iter()
                .all(|r| r.1 == "fail" && !r.2.contains("cleanup:"))
            && results.iter().any(|r| r.2.contains(&foreground))
            && results.iter().any(|r| r.2.contains(&detached)),
        || format!("{results:#?}\n{}", run.stderr()),
    )?;
    // Well under runsc's own wait for a zombie sandbox, which used to end
    // in a failed delete (that is checked above, by the reasons).
    check(took < Duration::from_secs(15), || {
        format!("the run took {took:?}\n{}", run.stderr())
    })
}

/// After `run --detach` every scenario's container is under the harness, so
/// a pid file may name another scenario's process and still pass that
/// check: its cgroup, named after another container of the run's, tells it
/// apart. `names-a-neighbour` leaves such a process (a `sleep` the harness
/// adopts, in a cgroup named orphanage-PID-N) and names it: a fail,
/// and the neighbour lives on past its scenario (until the sweep at the end
/// of the run, which kills whatever the harness has adopted).
/// With `in_state`, `state` names a second neighbour as the init: it is not
/// taken for the real one either (not watched, not signalled).
fn a_pid_file_naming_a_neighbour_is_a_fail_and_the_neighbour_lives(
    wrapped: &str,
    in_state: bool,
) -> Result<(), Failed> {
    /// The neighbours the wrapper logged: each killed (if its cgroup still
    /// says it is the one logged) and its cgroup removed, however the test
    /// ends.
    struct Neighbours(PathBuf);
    impl Neighbours {
        fn logged(&self) -> Vec<(i32, PathBuf)> {
            std::fs::read_to_string(&self.0)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let (pid, dir) = l.split_once(' ')?;
                    Some((pid.parse().ok()?, PathBuf::from(dir)))
                })
                .collect()
        }
        fn in_its_cgroup(pid: i32, dir: &Path) -> bool {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.lines().any(|l| l.ends_with(&format!("/{name}"))))
        }
    }
    impl Drop for Neighbours {
        fn drop(&mut self) {
            for (pid, dir) in self.logged() {
                if Self::in_its_cgroup(pid, &dir) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                // The cgroup can be removed once its process has exited.
                let deadline = Instant::now() + Duration::from_secs(5);
                while std::fs::remove_dir(&dir).is_err()
                    && dir.exists()
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    let iso = Isolated::new();
    let wrapper = repo().join("fixtures/runtime/misbehaving/names-a-neighbour");
    let neighbours = Neighbours(iso.dir.path().join("neighbours"));
    let mounts_before = mounts();
    let report_path = iso.dir.path().join("report.json");
    // With a step of the harness's (`runtime_kill`): `run --detach`. One
    // after the other, so that the second `run` sees the first neighbour
    // once its scenario is over.
    let mut args = vec![
        "--runtime",
        wrapper.to_str().unwrap(),
        "--test-threads",
        "1",
        "container_init::sigterm_delivered_with_handler",
        "container_init::sigterm_ignored_without_handler",
    ];
    if wrapped == "runsc" {
        args.push("--runtime-arg=--network=none");
    }
    let mut command = iso.command(&args);
    command
        .env("ORPHANAGE_WRAPPED_RUNTIME", wrapped)
        .env("ORPHANAGE_NEIGHBOUR_LOG", &neighbours.0)
        .env(
            "ORPHANAGE_NEIGHBOUR_IN_STATE",
            if in_state { "1" } else { "" },
        )
        .arg("--report")
        .arg(&report_path);
    let (output, pid) = run_to_end(command);
    let logged = neighbours.logged();
    let seen = std::fs::read_to_string(neighbours.0.with_extension("seen")).unwrap_or_default();
    let run = Run {
        output,
        report: report_at(&report_path),
    };
    // Adopted by the harness, they are its to end by the end of the run.
    let outlived_the_run: Vec<i32> = logged
        .iter()
        .filter(|(pid, dir)| {
            Neighbours::in_its_cgroup(*pid, dir)
                && procfs::process::Process::new(*pid)
                    .and_then(|p| p.stat())
                    .is_ok_and(|s| s.state != 'Z')
        })
        .map(|(pid, _)| *pid)
        .collect();
    drop(neighbours);
    iso.assert_clean_of(wrapped, pid, &mounts_before)?;
    check(outlived_the_run.is_empty(), || {
        format!("neighbours outlived the run: {outlived_the_run:?}")
    })?;
    // One a scenario, or two with the one `state` names.
    let each = if in_state { 2 } else { 1 };
    check(logged.len() == 2 * each, || {
        format!("the wrapper made {logged:?}\n{}", run.stderr())
    })?;
    // The first scenario's neighbours, as the second scenario's `run` saw them.
    let first: String = logged[..each]
        .iter()
        .map(|(pid, _)| format!("{pid} alive\n"))
        .collect();
    check(seen == first, || {
        format!(
            "the first scenario's neighbours were not all alive once it was over: {seen:?}\n{}",
            run.stderr()
        )
    })?;
    let results = outcomes(&run);
    let cgroup_name = |dir: &PathBuf| dir.file_name().unwrap().to_string_lossy().into_owned();
    // A scenario's reason: the pid file's neighbour, then what `state` said:
    // the real init (a pid that is no neighbour), or the second neighbour.
    let logged = &logged;
    let expected = |made: &[(i32, PathBuf)], reason: &str| {
        let (neighbour, dir) = &made[0];
        let start = format!(
            "run --detach` gave {neighbour} as its container's init, and that is a process of \
             {}, another container of this run's: not the container's init (`names-a-neighbour \
             state` says ",
            cgroup_name(dir)
        );
        match (made.get(1), reason.split_once(&start)) {
            (Some((second, dir)), Some((_, said))) => {
                said == format!("{second}, a process of {})", cgroup_name(dir))
            }
            (None, Some((_, said))) => said
                .strip_suffix(')')
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| logged.iter().all(|n| n.0 != p)),
            (_, None) => false,
        }
    };
    check(
        results.len() == 2
            && results
                .iter()
                .all(|r| r.1 == "fail" && !r.2.contains("cleanup:"))
            && logged
                .chunks(each)
                .all(|made| results.iter().any(|r| expected(made, &r.2))),
        || format!("{results:#?}\n{}", run.stderr()),
    )
}

/// Another scenario's `run`, a child of the harness in the harness's own
/// cgroup, passes both the under-the-harness and the cgroup checks: the
/// harness's registry knows it as the command creating another container.
/// `names-another-run` holds the first scenario's `run` (before it execs the
/// runtime) until the second's container is deleted, and makes the second's
/// pid file name it: the second is a fail that says so, and the first `run`
/// is left alone, so its scenario passes.
fn a_pid_file_naming_another_run_is_a_fail_and_that_run_goes_on() -> Result<(), Failed> {
    let iso = Isolated::new();
    let wrapper = repo().join("fixtures/runtime/misbehaving/names-another-run");
    let dir = iso.dir.path().join("another-run");
    std::fs::create_dir(&dir).unwrap();
    let mounts_before = mounts();
    let report_path = iso.dir.path().join("report.json");
    // Two threads, so that both `run`s are alive at once; `run --detach`
    // for both (each has a step of the harness's, `runtime_kill`).
    let mut command = iso.command(&[
        "--runtime",
        wrapper.to_str().unwrap(),
        "--test-threads",
        "2",
        "container_init::sigterm_delivered_with_handler",
        "container_init::sigterm_ignored_without_handler",
    ]);
    command
        .env("ORPHANAGE_ANOTHER_RUN_DIR", &dir)
        .arg("--report")
        .arg(&report_path);
    let (output, pid) = run_to_end(command);
    let run = Run {
        output,
        report: report_at(&report_path),
    };
    iso.assert_clean(pid, &mounts_before)?;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let (first_run, second_id) = (read("first/pid"), read("second-id"));
    let (first_run, second_id) = (first_run.trim(), second_id.trim());
    check(!first_run.is_empty() && !second_id.is_empty(), || {
        format!("the wrapper named no `run`\n{}", run.stderr())
    })?;
    check(dir.join("second-deleted").exists(), || {
        format!("the second container was never deleted\n{}", run.stderr())
    })?;
    let results = outcomes(&run);
    let first_id = format!("{}-", second_id.rsplit_once('-').unwrap().0);
    let named = format!(
        "run --detach` gave {first_run} as its container's init, and that is the runtime \
         command creating {first_id}"
    );
    check(
        results.len() == 2
            && results
                .iter()
                .any(|r| r.1 == "fail" && r.2.contains(&named) && !r.2.contains("cleanup:"))
            && results.iter().any(|r| r.1 == "pass"),
        || format!("{results:#?}\n{}", run.stderr()),
    )
}

/// A scenario's `steps_ms` counts its steps, not the making of its
/// container: under a `run` made 250 ms slower, a scenario that ends on a
/// step of the harness's (timed by the harness, not the agent) and one that
/// ends on the agent's each report steps that leave those 250 ms out.
fn steps_ms_leaves_out_the_making_of_the_container() -> Result<(), Failed> {
    let iso = Isolated::new();
    let suites = iso.dir.path().join("suites/timing");
    std::fs::create_dir_all(&suites).unwrap();
    std::fs::write(
        suites.join("ends_in_the_harness.yaml"),
        "checks: A worker the harness sees alive.\nrefs: [kill(2)]\n\
         steps:\n  - spawn: {name: w}\n  - runtime_kill: {signal: SIGCONT}\n",
    )
    .unwrap();
    std::fs::write(
        suites.join("ends_in_the_agent.yaml"),
        "checks: A worker reaped.\nrefs: [wait(2)]\n\
         steps:\n  - spawn: {name: w}\n  - kill: {target: w, signal: SIGKILL}\n  \
         - wait: {for: w, status: {signaled: SIGKILL}}\n",
    )
    .unwrap();
    let wrapper = repo().join("fixtures/runtime/misbehaving/slow-run");
    let mounts_before = mounts();
    let suites_arg = iso.dir.path().join("suites");
    let report_path = iso.dir.path().join("report.json");
    let mut command = iso.command(&[
        "--suites",
        suites_arg.to_str().unwrap(),
        "--runtime",
        wrapper.to_str().unwrap(),
    ]);
    command.arg("--report").arg(&report_path);
    let (output, pid) = run_to_end(command);
    let report = report_at(&report_path);
    let run = Run { output, report };
    iso.assert_clean(pid, &mounts_before)?;
    let results = run.report["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    check(results.len() == 2, || run.stderr())?;
    for r in &results {
        let (duration, steps) = (
            r["duration_ms"].as_f64().unwrap_or(0.0),
            r["steps_ms"].as_f64().unwrap_or(f64::MAX),
        );
        check(
            r["outcome"] == "pass" && duration >= 250.0 && steps <= duration - 250.0,
            || format!("{r:#}"),
        )?;
    }
    Ok(())
}

/// A runtime whose `run` hangs cannot run even the trivial container each
/// run begins with (in a foreground `run`, which never writes its pid file):
/// one line, exit 3, within that container's deadline, and nothing left
/// behind.
fn a_hung_run_stops_the_suite_with_one_line() -> Result<(), Failed> {
    let iso = Isolated::new();
    let wrapper = repo().join("fixtures/runtime/misbehaving/kill-hangs");
    let mounts_before = mounts();
    let mut command = iso.command(&["--runtime", wrapper.to_str().unwrap()]);
    command.env("ORPHANAGE_HANGING_VERB", "run");
    let started = std::time::Instant::now();
    let (out, pid) = run_to_end(command);
    let took = started.elapsed();
    iso.assert_clean_of("runc", pid, &mounts_before)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(3), || {
        format!("{:?}: {stderr}", out.status)
    })?;
    check(
        stderr.lines().count() == 1
            && stderr.contains("cannot run a container on this machine: timeout after 10 s (last step reached: before the first step)")
            && stderr.contains("`kill-hangs run` had written no pid to its --pid-file, and was killed"),
        || stderr.to_string(),
    )?;
    check(took < std::time::Duration::from_secs(25), || {
        format!("the run took {took:?}")
    })
}

/// crun on this machine: with the cgroup layout crun accepts (see .ci/run),
/// the suite passes as under runc.
fn crun_suite_with_tini_passes() -> Result<(), Failed> {
    suite_with_tini_passes("crun")
}

/// Whether this host's hybrid cgroup layout has a controller on its v2
/// hierarchy, which crun 1.8 refuses: README and .ci/run give the fix.
/// An expected-differences file that names no scenario of the suites is bad
/// input: one line with file:line:column, exit 2, nothing runs.
fn a_bad_expected_file_is_refused_before_anything_runs() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expected.yaml");
    std::fs::write(
        &file,
        "differences:\n  - scenario: memfd::no_such_scenario\n    outcome: fail\n    reason: x\n",
    )
    .unwrap();
    let out = orphanage()
        .current_dir(repo())
        .arg("--expected")
        .arg(&file)
        .arg("memfd::")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(2), || {
        format!("{:?}: {stderr}", out.status)
    })?;
    check(
        stderr.lines().count() == 1
            && stderr.contains(&format!("{}:2:15:", file.display()))
            && stderr.contains("no scenario `memfd::no_such_scenario`"),
        || stderr.to_string(),
    )?;
    check(out.stdout.is_empty(), || "scenarios ran".into())
}

/// A listed difference that no longer happens is stale, and fails the run:
/// on the host a seal that Linux enforces, listed as a fail.
fn a_stale_expected_difference_fails_the_run() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expected.yaml");
    std::fs::write(
        &file,
        "differences:\n  - scenario: memfd::seal_write_refuses_writes\n    outcome: fail\n    reason: pretend it is not enforced\n",
    )
    .unwrap();
    let out = orphanage()
        .current_dir(repo())
        .arg("--expected")
        .arg(&file)
        .args(["--exact", "memfd::seal_write_refuses_writes"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(out.status.code() == Some(101), || {
        format!("{:?}: {stdout}", out.status)
    })?;
    check(
        stdout.contains("STALE       memfd::seal_write_refuses_writes")
            && stdout.contains("0 as Linux, 0 expected, 0 unexpected, 1 stale"),
        || stdout.to_string(),
    )
}

/// `--runtime-arg` without `--runtime`: one line, exit 2, nothing runs.
fn runtime_arg_needs_a_runtime() -> Result<(), Failed> {
    let out = orphanage()
        .current_dir(repo())
        .args(["--runtime-arg=--platform=ptrace", "memfd::"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(2), || {
        format!("{:?}: {stderr}", out.status)
    })?;
    check(
        stderr.lines().count() == 1
            && stderr.contains("--runtime-arg")
            && stderr.contains("needs --runtime"),
        || stderr.to_string(),
    )?;
    check(out.stdout.is_empty(), || "scenarios ran".into())
}

/// runsc without the flag it needs here (`--network=none`, which orphanage
/// passes itself): forced off with `--runtime-arg=--network=sandbox`, the
/// run stops at once with one line naming the flag to try, and exit 3.
fn runsc_without_its_flag_names_it() -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    let (out, pid) =
        run_to_end(iso.command(&["--runtime", "runsc", "--runtime-arg=--network=sandbox"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(3), || {
        format!("{:?}: {stderr}", out.status)
    })?;
    check(
        stderr.lines().count() == 1 && stderr.contains("--runtime-arg=--network=none"),
        || stderr.to_string(),
    )?;
    check(out.stdout.is_empty(), || "scenarios ran".into())?;
    iso.assert_clean_of("runsc", pid, &mounts_before)
}

/// Scenarios that never end and run in gVisor too (fixtures/hang's nest a
/// pid namespace, which gVisor's lack of NSpid makes unsupported at once):
/// a child waited for forever, in a fresh namespace and in the caller's.
fn forever_everywhere(iso: &Isolated) -> PathBuf {
    let dir = iso.dir.path().join("forever");
    std::fs::create_dir_all(dir.join("hang")).unwrap();
    for (name, namespace) in [("fresh", "fresh"), ("caller", "caller")] {
        std::fs::write(
            dir.join("hang").join(format!("{name}.yaml")),
            format!(
                "checks: Never finishes.\nrefs: [wait(2)]\ndeadline: 60s\nnamespace: {namespace}\n\
                 steps:\n  - spawn: {{name: daemon}}\n  - setsid: {{by: daemon}}\n  \
                 - spawn: {{name: child}}\n  - wait: {{by: {}, for: child}}\n",
                if namespace == "fresh" {
                    "init"
                } else {
                    "agent"
                }
            ),
        )
        .unwrap();
    }
    dir
}

fn ctrl_c_deletes_every_container(runtime: &str) -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    // Scenarios that never end, so containers are surely running at the interrupt.
    let hang = if runtime == "runsc" {
        forever_everywhere(&iso)
    } else {
        repo().join("fixtures/hang")
    };
    let mut child = iso
        .command(&["--suites", hang.to_str().unwrap(), "--runtime", runtime])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut interval = Duration::from_millis(1);
    while containers_of(runtime, &iso.dir.path().join("state/state-0")).len() < 2 {
        if Instant::now() > deadline {
            // SIGINT, not SIGKILL: the run still cleans up after itself.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
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
    iso.assert_clean_of(runtime, child.id(), &mounts_before)
}

/// Ctrl-C while the container is being created (`run --detach`): it is let finish and the
/// container it made is deleted. The interrupt once deleted first (finding
/// nothing) and then killed the create halfway, which left runsc's lock file.
fn ctrl_c_during_create_lets_it_finish(runtime: &str) -> Result<(), Failed> {
    let iso = Isolated::new();
    let mounts_before = mounts();
    let wrapper = repo().join("fixtures/runtime/slow-create");
    let began = iso.dir.path().join("began");
    let mut args = vec!["--runtime", wrapper.to_str().unwrap()];
    if runtime == "runsc" {
        // The wrapper's name is not runsc's: the flag it needs is given by hand.
        args.push("--runtime-arg=--network=none");
    }
    let mut child = iso
        .command(&args)
        .env("ORPHANAGE_WRAPPED_RUNTIME", runtime)
        .env("ORPHANAGE_SLOW_CREATE_DIR", iso.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut interval = Duration::from_millis(1);
    while !began.exists() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = child.wait();
            return Err("no create ever began".into());
        }
        // A poll interval against the deadline, not a synchronisation point.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(50));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    check(status.code() == Some(130), || format!("{status:?}"))?;
    check(iso.dir.path().join("finished").exists(), || {
        "the interrupt killed the create before it finished".into()
    })?;
    iso.assert_clean_of(runtime, child.id(), &mounts_before)
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

/// crun beside runc: ignored where this host's cgroup layout is one crun
/// refuses (naming the fix), a failure of that kind with ORPHANAGE_REQUIRE_ALL=1.
/// The kill_race scenarios each misbehaving wrapper must fail, around any runtime.
const KILL_IGNORING_ALL: &[&str] = &[
    "init_already_dead_kill_all_cleans_up",
    "kill_all_gone_by_kill0_polling",
    "kill_all_reaches_escaped_sessions",
];
const DELETE_RETURNING_EARLY: &[&str] = &["delete_force_is_synchronous"];
const LEAVES_EXTRA_PROCESS: &[&str] = KILL_IGNORING_ALL;

/// The misbehaving-wrapper and Ctrl-C tests around `real` (crun, youki), as
/// runc has them: the defects are the wrapper's, so the same scenarios must
/// catch them whichever runtime does the rest.
fn around(
    real: &'static str,
    ready: impl Fn(&str, fn() -> Result<(), Failed>) -> Trial,
) -> Vec<Trial> {
    fn caught(real: &str, wrapper: &str, must_fail: &[&str]) -> Result<(), Failed> {
        wrapper_around_is_caught(real, wrapper, must_fail, &[])
    }
    match real {
        "crun" => vec![
            ready("crun_kill_ignoring_all_is_caught", || {
                caught("crun", "kill-ignores-all", KILL_IGNORING_ALL)
            }),
            ready("crun_delete_returning_early_is_caught", || {
                caught("crun", "delete-returns-early", DELETE_RETURNING_EARLY)
            }),
            ready("crun_a_process_left_in_the_container_is_caught", || {
                caught("crun", "leaves-extra-process", LEAVES_EXTRA_PROCESS)
            }),
            ready("crun_ctrl_c_deletes_every_container", || {
                ctrl_c_deletes_every_container("crun")
            }),
        ],
        "youki" => vec![
            ready("youki_kill_ignoring_all_is_caught", || {
                caught("youki", "kill-ignores-all", KILL_IGNORING_ALL)
            }),
            ready("youki_delete_returning_early_is_caught", || {
                caught("youki", "delete-returns-early", DELETE_RETURNING_EARLY)
            }),
            ready("youki_a_process_left_in_the_container_is_caught", || {
                caught("youki", "leaves-extra-process", LEAVES_EXTRA_PROCESS)
            }),
        ],
        _ => vec![],
    }
}

/// A crun test: ignored where crun refuses this host's cgroup layout.
fn crun_needs(name: &str, test: fn() -> Result<(), Failed>) -> Trial {
    match crun_refuses_this_layout() {
        Some(why) => cannot_run(name, why, "crun refuses this cgroup layout".into()),
        None => needs(name, &["crun"], test),
    }
}

fn crun_trial() -> Trial {
    let name = "crun_suite_with_tini_passes";
    match crun_refuses_this_layout() {
        Some(why) => cannot_run(name, why, "crun refuses this cgroup layout".into()),
        None => needs(name, &["crun", "tini"], crun_suite_with_tini_passes),
    }
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![
        needs("runc_suite_with_tini_passes", &["runc", "tini"], || {
            suite_with_tini_passes("runc")
        }),
        crun_trial(),
        // youki 0.7.0 as .ci/run builds it (PATH=/opt/youki/bin:$PATH).
        needs("youki_suite_with_tini_passes", &["youki", "tini"], || {
            suite_with_tini_passes("youki")
        }),
        needs("youki_ctrl_c_deletes_every_container", &["youki"], || {
            ctrl_c_deletes_every_container("youki")
        }),
        needs(
            "runsc_suite_gives_every_scenario_a_verdict",
            &["runsc", "tini"],
            runsc_suite_gives_every_scenario_a_verdict,
        ),
        needs(
            "runsc_rootless_has_only_the_known_differences",
            &["runsc", "tini"],
            runsc_rootless_has_only_the_known_differences,
        ),
        needs(
            "runsc_cleans_up_after_a_timeout",
            &["runsc"],
            runsc_cleans_up_after_a_timeout,
        ),
        needs("runsc_ctrl_c_deletes_every_sandbox", &["runsc"], || {
            ctrl_c_deletes_every_container("runsc")
        }),
        needs(
            "runsc_without_its_flag_names_it",
            &["runsc"],
            runsc_without_its_flag_names_it,
        ),
        needs(
            "a_hung_runtime_command_gets_what_is_left_of_the_deadline",
            &["runc"],
            a_hung_runtime_command_gets_what_is_left_of_the_deadline,
        ),
        needs(
            "a_hung_run_stops_the_suite_with_one_line",
            &["runc"],
            a_hung_run_stops_the_suite_with_one_line,
        ),
        Trial::test("runtime_arg_needs_a_runtime", runtime_arg_needs_a_runtime),
        Trial::test(
            "a_bad_expected_file_is_refused_before_anything_runs",
            a_bad_expected_file_is_refused_before_anything_runs,
        ),
        Trial::test(
            "a_stale_expected_difference_fails_the_run",
            a_stale_expected_difference_fails_the_run,
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
            wrapper_is_caught("kill-ignores-all", KILL_IGNORING_ALL)
        }),
        needs("delete_returning_early_is_caught", &["runc"], || {
            wrapper_is_caught("delete-returns-early", DELETE_RETURNING_EARLY)
        }),
        // From the host, a sandbox that outlives `delete --force` is caught too.
        needs("runsc_delete_returning_early_is_caught", &["runsc"], || {
            wrapper_around_is_caught(
                "runsc",
                "delete-returns-early",
                &["delete_force_is_synchronous"],
                &[
                    "init_already_dead_delete_force_cleans_up",
                    "init_already_dead_kill_all_cleans_up",
                ],
            )
        }),
        needs(
            "steps_ms_leaves_out_the_making_of_the_container",
            &["runc"],
            steps_ms_leaves_out_the_making_of_the_container,
        ),
        needs(
            "a_cgroup_left_by_a_foreground_run_is_a_leak_and_removed",
            &["runc"],
            a_cgroup_left_by_a_foreground_run_is_a_leak_and_removed,
        ),
        needs(
            "a_pid_file_naming_a_stranger_is_a_fail_and_the_stranger_lives",
            &["runc"],
            || a_pid_file_naming_a_stranger_is_a_fail_and_the_stranger_lives("runc"),
        ),
        needs(
            "runsc_pid_file_naming_a_stranger_is_a_fail_and_the_stranger_lives",
            &["runsc"],
            || a_pid_file_naming_a_stranger_is_a_fail_and_the_stranger_lives("runsc"),
        ),
        needs(
            "a_pid_file_naming_a_neighbour_is_a_fail_and_the_neighbour_lives",
            &["runc"],
            || a_pid_file_naming_a_neighbour_is_a_fail_and_the_neighbour_lives("runc", false),
        ),
        needs(
            "a_state_naming_a_neighbour_too_is_a_fail_and_both_live",
            &["runc"],
            || a_pid_file_naming_a_neighbour_is_a_fail_and_the_neighbour_lives("runc", true),
        ),
        needs(
            "runsc_pid_file_naming_a_neighbour_is_a_fail_and_the_neighbour_lives",
            &["runsc"],
            || a_pid_file_naming_a_neighbour_is_a_fail_and_the_neighbour_lives("runsc", false),
        ),
        needs(
            "a_pid_file_naming_another_run_is_a_fail_and_that_run_goes_on",
            &["runc"],
            a_pid_file_naming_another_run_is_a_fail_and_that_run_goes_on,
        ),
        needs(
            "a_process_left_in_the_container_is_caught",
            &["runc"],
            || wrapper_is_caught("leaves-extra-process", LEAVES_EXTRA_PROCESS),
        ),
        needs(
            "an_environment_error_is_one_line_and_exit_3",
            &["runc"],
            an_environment_error_is_one_line_and_exit_3,
        ),
        needs("ctrl_c_deletes_every_container", &["runc"], || {
            ctrl_c_deletes_every_container("runc")
        }),
        needs("ctrl_c_during_create_lets_it_finish", &["runc"], || {
            ctrl_c_during_create_lets_it_finish("runc")
        }),
        needs(
            "runsc_ctrl_c_during_create_lets_it_finish",
            &["runsc"],
            || ctrl_c_during_create_lets_it_finish("runsc"),
        ),
        needs("explore_in_runc_agrees", &["runc"], explore_in_runc_agrees),
    ];
    trials.extend(around("crun", crun_needs));
    trials.extend(around("youki", |name, test| needs(name, &["youki"], test)));
    libtest_mimic::run(&args, trials).exit();
}
