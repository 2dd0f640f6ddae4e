//! Proves the harness can fail: the host suite passes, deliberately wrong
//! scenarios fail (not pass, not broken), a crashing agent is broken, and bad
//! input is refused with exit code 2 before anything runs.

mod common;

use common::{orphanage, repo, run_with_report, suite_of};
use rstest::rstest;

/// Scenarios only the runtime target (or, for the machine's init, a VM) can
/// run: on the host they are unsupported for that reason alone.
fn runtime_only(result: &serde_json::Value) -> bool {
    result["reason"].as_str().is_some_and(|r| {
        r.starts_with("needs an OCI runtime target") || r.starts_with("needs the VM target")
    })
}

#[test]
fn the_host_suite_has_no_fail_and_no_broken() {
    let run = run_with_report(&repo().join("suites"), &[], &[]);
    let summary = &run.report["summary"];
    let problems: Vec<String> = run.report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "fail" || r["outcome"] == "broken")
        .map(|r| format!("{}: {} {}", r["name"], r["outcome"], r["reason"]))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}\n{}", run.stdout());
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let total = run.report["results"].as_array().unwrap().len();
    assert!(
        total >= 45,
        "the host suite must cover CHECKS.md with at least 45 scenarios, has {total}"
    );
    assert!(summary["pass"].as_u64().unwrap() > 0);
    assert_eq!(run.report["target"], "host");
    assert!(!run.report["kernel"].as_str().unwrap().is_empty());
}

#[test]
fn every_wrong_scenario_fails_rather_than_passing_or_breaking() {
    let run = run_with_report(&repo().join("fixtures/wrong"), &[], &[]);
    let results = run.report["results"].as_array().unwrap();
    assert!(results.len() >= 6);
    for r in results {
        assert_eq!(r["outcome"], "fail", "{}: {}", r["name"], r["reason"]);
        assert!(r["reason"].as_str().unwrap().contains("expected"), "{r}");
    }
    assert_eq!(run.code(), Some(101));
}

#[test]
fn a_failure_names_expected_and_observed() {
    let run = run_with_report(&repo().join("fixtures/wrong"), &[], &[]);
    let reason = run.result("subreaper::reparent_to_wrong_process")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("leaf's parent: expected init (pid 1), observed sub (pid 2)"),
        "{reason}"
    );
    let reason = run.result("memfd::write_succeeds_on_sealed_memfd")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("expected success, observed EPERM"),
        "{reason}"
    );
    let reason = run.result("zombie::zombie_expected_where_none")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("expected a zombie, observed gone"),
        "{reason}"
    );
}

#[test]
fn an_agent_crash_is_broken_with_its_signal_and_the_rest_still_run() {
    let run = run_with_report(&repo().join("fixtures/crash"), &[], &[]);
    let crashed = run.result("agent::store_to_readonly_mapping");
    assert_eq!(crashed["outcome"], "broken");
    assert!(
        crashed["reason"].as_str().unwrap().contains("SIGSEGV"),
        "{crashed}"
    );
    assert_eq!(run.result("agent::still_runs")["outcome"], "pass");
    assert_eq!(run.code(), Some(101));
    assert!(
        run.stdout().contains("broken: agent killed by SIGSEGV"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_timeout_fails_with_the_deadline_and_the_last_step() {
    let forever = repo().join("fixtures/hang/agent/forever.yaml");
    let suite = suite_of(&[(&forever, Some(("deadline: 60s", "deadline: 1s")))]);
    let started = std::time::Instant::now();
    let run = run_with_report(suite.path(), &[], &[]);
    let r = run.result("fixture::forever");
    assert_eq!(r["outcome"], "fail");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.starts_with("timeout after 1 s"), "{reason}");
    assert!(
        reason.contains("last step reached: step 6 wait"),
        "{reason}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn malformed_files_are_rejected_with_their_position_before_anything_runs() {
    let dir = repo().join("fixtures/malformed");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{} lacks # expect:", path.display()));
        let (position, message) = expect.split_once(' ').unwrap();
        let suite = suite_of(&[(&path, None)]);
        for check in [true, false] {
            let mut cmd = orphanage();
            cmd.arg("--suites").arg(suite.path());
            if check {
                cmd.arg("--check");
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            let file = suite.path().join("fixture").join(path.file_name().unwrap());
            // The whole line, word for word: a message is what an author reads.
            assert_eq!(
                stderr.trim_end(),
                format!("{}:{position}: {message}", file.display()),
                "{}",
                path.display()
            );
            assert!(
                out.stdout.is_empty(),
                "nothing may run: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        seen += 1;
    }
    assert!(seen >= 19);
}

#[rstest]
#[case::unknown_flag(&["--frobnicate"], "--frobnicate")]
#[case::missing_suites_dir(&["--suites", "/no/such/suites"], "/no/such/suites: no such suites directory")]
#[case::unwritable_report(&["--suites", "fixtures/crash", "--report", "/no/such/dir/report.json"], "cannot write report /no/such/dir/report.json")]
#[case::missing_agent(&["--suites", "fixtures/crash", "--agent", "/no/such/agent"], "/no/such/agent: no such agent binary")]
#[case::missing_runtime(&["--suites", "fixtures/crash", "--runtime", "./no/such/runc"], "runtime `./no/such/runc`: no such file")]
#[case::runtime_not_on_path(&["--suites", "fixtures/crash", "--runtime", "no-such-runtime-xyz"], "runtime `no-such-runtime-xyz`: not found on PATH")]
#[case::runtime_not_executable(&["--suites", "fixtures/crash", "--runtime", "./README.md"], "runtime `./README.md` is not an executable file")]
#[case::runtime_without_state(&["--suites", "fixtures/crash", "--runtime", "echo"], "runtime `echo` does not answer `state` of an unknown container as an OCI runtime does")]
#[case::runtime_without_version(&["--suites", "fixtures/crash", "--runtime", "false"], "runtime `false` does not answer `--version` as an OCI runtime does")]
#[case::missing_init(&["--suites", "fixtures/crash", "--runtime", "echo", "--init", "/no/such/init"], "init `/no/such/init`: no such executable file")]
#[case::init_without_runtime(&["--suites", "fixtures/crash", "--init", "/bin/sh"], "--init puts an init program in a container: it needs --runtime")]
fn bad_input_exits_2_with_one_clear_line(#[case] args: &[&str], #[case] message: &str) {
    // From the repository, so cases can name a valid suite and test only their own bad argument.
    let out = orphanage().current_dir(repo()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.lines().next().unwrap().contains(message) || stderr.contains(message),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing may run");
}

#[test]
fn an_empty_suites_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = orphanage()
        .arg("--suites")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no scenarios"));
}

#[test]
fn check_validates_without_running() {
    let out = orphanage()
        .arg("--check")
        .arg("--suites")
        .arg(repo().join("suites"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("scenarios in"));
}

#[test]
fn libtest_filters_list_exact_and_skip_work_as_in_cargo_test() {
    let wrong = repo().join("fixtures/wrong");
    let list = orphanage()
        .arg("--suites")
        .arg(&wrong)
        .arg("--list")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("subreaper::reparent_to_wrong_process: test"),
        "{listed}"
    );

    let exact = run_with_report(&wrong, &["--exact", "zombie::wrong_exit_status"], &[]);
    assert_eq!(exact.report["results"].as_array().unwrap().len(), 1);

    let skip = run_with_report(&wrong, &["--skip", "zombie::"], &[]);
    assert!(skip.report["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["area"] != "zombie"));

    let filter = run_with_report(&wrong, &["memfd::"], &[]);
    let memfd_files = std::fs::read_dir(wrong.join("memfd")).unwrap().count();
    assert_eq!(
        filter.report["results"].as_array().unwrap().len(),
        memfd_files
    );
}

#[test]
fn help_explains_outcomes_and_exit_codes() {
    let out = orphanage().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--check",
        "--suites",
        "--report",
        "unsupported",
        "broken",
        "Exit code",
        "--exact",
        "--skip",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

#[test]
fn without_root_the_whole_suite_runs_in_user_namespaces_with_no_fail_and_no_broken() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // Every other test here already runs unprivileged, through this path.
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // Copies that nobody (uid 65534) can read, wherever the checkout lives.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = dir.path().join("orphanage");
    std::fs::copy(env!("CARGO_BIN_EXE_orphanage"), &binary).unwrap();
    let suites = dir.path().join("suites");
    for area in std::fs::read_dir(repo().join("suites")).unwrap().flatten() {
        if !area.path().is_dir() {
            continue; // CHECKS.md
        }
        let to = suites.join(area.file_name());
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(area.path()).unwrap().flatten() {
            std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
        }
    }
    let report = dir.path().join("report.json");
    std::fs::write(&report, "").unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&binary)
        .arg("--suites")
        .arg(&suites)
        .arg("--report")
        .arg(&report)
        .current_dir(dir.path())
        .output()
        .expect("setpriv (util-linux) runs the harness as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    let bad: Vec<&serde_json::Value> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "fail" || r["outcome"] == "broken")
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // Writing a namespace's sysctl needs privilege over it: unsupported, with the errno.
    for r in json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "unsupported")
        .filter(|r| !runtime_only(r))
    {
        assert!(
            r["reason"].as_str().unwrap().contains("EACCES")
                || r["reason"].as_str().unwrap().contains("EPERM"),
            "{r}"
        );
    }
    assert!(
        json["summary"]["pass"].as_u64().unwrap() >= 60,
        "{}",
        json["summary"]
    );
}

/// A seccomp filter that makes the listed syscalls fail with ENOSYS, the way a
/// kernel that predates them does. Installed in the child before exec, so it
/// binds orphanage and every agent it starts.
#[cfg(target_arch = "x86_64")]
fn pretend_kernel_lacks(cmd: &mut std::process::Command, syscalls: &[libc::c_long]) {
    use std::os::unix::process::CommandExt;
    let program = orphanage_agent_io::Lacks {
        enosys: syscalls.to_vec(),
        ..Default::default()
    }
    .program();
    // SAFETY: only prctl and seccomp between fork and exec, on memory the closure owns.
    unsafe { cmd.pre_exec(move || orphanage_agent_io::install_filter(&program)) };
}

#[cfg(target_arch = "x86_64")]
#[test]
fn on_a_kernel_without_pidfd_and_clone3_those_scenarios_are_unsupported_and_the_rest_pass() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut cmd = orphanage();
    cmd.arg("--suites")
        .arg(repo().join("suites"))
        .arg("--report")
        .arg(&report_path);
    pretend_kernel_lacks(&mut cmd, &[libc::SYS_pidfd_open, libc::SYS_clone3]);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let bad: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["outcome"] == "fail" || r["outcome"] == "broken")
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let unsupported: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["outcome"] == "unsupported")
        .filter(|r| !runtime_only(r))
        .collect();
    // Each names the probe, its errno, and what the kernel needs.
    for r in &unsupported {
        let reason = r["reason"].as_str().unwrap();
        let probe = reason.starts_with("pidfd_open(self): ENOSYS (needs pidfd_open(2)")
            || reason.starts_with("clone3(NULL, 0): ENOSYS (needs clone3(2)");
        assert!(probe, "{}: {reason}", r["name"]);
    }
    let named = |needle: &str| {
        unsupported
            .iter()
            .any(|r| r["name"].as_str().unwrap().contains(needle))
    };
    assert!(
        named("sibling::clone3_child_is_sibling"),
        "{unsupported:#?}"
    );
    assert!(named("zombie::waitid_pidfd_reaps"), "{unsupported:#?}");
    assert!(
        named("kill::exit_detection_latency_pidfd"),
        "{unsupported:#?}"
    );
    assert!(
        stdout.contains("ignored (unsupported: pidfd_open(self): ENOSYS"),
        "{stdout}"
    );
    // The rest ran, on the agent's fallbacks (exit detection by /proc instead of pidfd).
    assert!(
        report["summary"]["pass"].as_u64().unwrap() >= 60,
        "{}",
        report["summary"]
    );
}

/// CHECKS 3.4: where clone3 answers ENOSYS, `clone3_parent_or_clone` takes
/// clone(CLONE_PARENT) instead and still makes a sibling (the scenario's
/// parent and wait checks pass), and the report says the fallback was taken;
/// where clone3 works, no fallback is taken.
#[cfg(target_arch = "x86_64")]
#[test]
fn clone3_enosys_falls_back_to_clone_and_still_makes_a_sibling() {
    for lacks_clone3 in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let report_path = dir.path().join("report.json");
        let mut cmd = orphanage();
        cmd.arg("--suites")
            .arg(repo().join("suites"))
            .arg("--report")
            .arg(&report_path)
            .args(["--exact", "sibling::clone3_or_clone_makes_a_sibling"]);
        if lacks_clone3 {
            pretend_kernel_lacks(&mut cmd, &[libc::SYS_clone3]);
        }
        let out = cmd.output().unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
        let result = &report["results"][0];
        assert_eq!(result["outcome"], "pass", "{result}");
        assert_eq!(out.status.code(), Some(0));
        let fell_back = result["notes"].as_array().unwrap().iter().any(|n| {
            n.as_str()
                .unwrap()
                .contains("clone3: ENOSYS, fell back to clone(CLONE_PARENT)")
        });
        assert_eq!(fell_back, lacks_clone3, "{result}");
    }
}

/// CHECKS 2.5: the time an orphan took to be reaped is counted from its own
/// exit, not from the check that comes after the other exits.
#[test]
fn reap_times_are_counted_from_each_orphans_exit() {
    for scenario in [
        "zombie::ns_init_reaps_adopted_orphans",
        "zombie::ns_init_reaps_inherited_zombies",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let report_path = dir.path().join("report.json");
        let out = orphanage()
            .arg("--suites")
            .arg(repo().join("suites"))
            .arg("--report")
            .arg(&report_path)
            .args(["--exact", scenario])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
        let notes: Vec<&str> = report["results"][0]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let timed = notes
            .iter()
            .filter(|n| n.contains(" gone after ") && n.contains(" after its exit completed"))
            .count();
        // Five orphans (or zombies) and their middle process, each timed from its exit.
        assert_eq!(timed, 6, "{scenario}: {notes:#?}");
    }
}
