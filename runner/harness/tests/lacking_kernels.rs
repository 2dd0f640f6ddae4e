//! Kernels that are not full Linux (CHECKS 7): the host suite on a kernel
//! simulated (by a seccomp filter on orphanage and all it starts) to lack pid
//! namespaces, subreapers, or both; and the subreaper root forced on this
//! kernel with `--no-pid-namespace`. Each run must give no fail and no
//! broken, and exactly the scenarios that need the missing piece are
//! unsupported, each with the refused call and its errno.

mod common;

use common::{orphanage, repo, Run};
use orphanage_agent_io::{install_filter, Lacks};
use std::os::unix::process::CommandExt;

/// The refused clone, as the harness and the agent's probe word it.
const NO_PID_NAMESPACE: [&str; 2] = [
    "clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL",
    "unshare(CLONE_NEWPID) in a child: EINVAL",
];
const NO_SUBREAPER: &str = "prctl(PR_SET_CHILD_SUBREAPER): EINVAL";

/// The whole host suite, with a report, on a kernel that lacks `lacks`.
fn host_suite(lacks: &Lacks, extra: &[&str], suites: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut cmd = orphanage();
    cmd.arg("--suites")
        .arg(repo().join(suites))
        .arg("--report")
        .arg(&report_path)
        .args(extra);
    if lacks.anything() {
        let program = lacks.program();
        // SAFETY: only prctl and seccomp between fork and exec, on memory the
        // closure owns.
        unsafe { cmd.pre_exec(move || install_filter(&program)) };
    }
    let started = std::time::Instant::now();
    let output = cmd.output().unwrap();
    // The figures the README quotes, with --nocapture.
    eprintln!(
        "{lacks:?} {extra:?} {suites}: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    eprintln!("{}", report["summary"]);
    Run { output, report }
}

fn results(run: &Run) -> Vec<serde_json::Value> {
    run.report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {}{}", run.stdout(), run.stderr()))
        .clone()
}

fn reason(r: &serde_json::Value) -> &str {
    r["reason"].as_str().unwrap()
}

/// Scenarios only the runtime target (or, for the machine's init, a VM) can run.
fn runtime_only(r: &serde_json::Value) -> bool {
    reason(r).starts_with("needs an OCI runtime target")
        || reason(r).starts_with("needs the VM target")
}

fn named<'a>(results: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result for {name}"))
}

/// No fail, no broken, exit 0; returns the scenarios the host can run at all.
fn no_fail_no_broken(run: &Run) -> Vec<serde_json::Value> {
    let all = results(run);
    let bad: Vec<String> = all
        .iter()
        .filter(|r| r["outcome"] == "fail" || r["outcome"] == "broken")
        .map(|r| {
            format!(
                "{} ({}): {} {}",
                r["name"],
                r["mode"],
                r["outcome"],
                reason(r)
            )
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}\n{}", run.stderr());
    assert_eq!(run.code(), Some(0), "{}", run.stdout());
    let on_host: Vec<serde_json::Value> = all.into_iter().filter(|r| !runtime_only(r)).collect();
    assert_eq!(on_host.len(), 75, "the host suite has 75 scenarios");
    on_host
}

fn unsupported(results: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    results
        .iter()
        .filter(|r| r["outcome"] == "unsupported")
        .collect()
}

/// The 56 `namespace: fresh` scenarios ran in `fresh_mode`, the 19 others
/// in the caller's namespace.
fn modes_are(results: &[serde_json::Value], fresh_mode: &str) {
    let count = |mode: &str| results.iter().filter(|r| r["mode"] == mode).count();
    assert_eq!(count("caller_namespace"), 19);
    assert_eq!(
        count(fresh_mode),
        56,
        "{:#?}",
        results
            .iter()
            .map(|r| format!("{} {}", r["name"], r["mode"]))
            .collect::<Vec<_>>()
    );
}

#[test]
fn forced_subreaper_roots_run_the_host_suite_with_no_fail_and_no_broken() {
    let run = host_suite(&Lacks::default(), &["--no-pid-namespace"], "suites");
    let on_host = no_fail_no_broken(&run);
    modes_are(&on_host, "subreaper_root");
    // Unsupported are exactly the scenarios that declare a pid namespace;
    // those that spawn a nested one run (this kernel has pid namespaces).
    for r in unsupported(&on_host) {
        assert!(
            reason(r).starts_with("forced by --no-pid-namespace"),
            "{}: {}",
            r["name"],
            reason(r)
        );
    }
    let declared = [
        "sibling::pid_namespace_init_gets_einval",
        "sibling::clone3_from_init_gets_einval",
        "subreaper::no_subreaper_init_adopts",
        "subreaper::set_after_descendants_exist_adopts",
        "memfd::memfd_noexec_2_implies_noexec_seal",
        "memfd::memfd_noexec_2_refuses_mfd_exec",
    ];
    for name in declared {
        let r = named(&on_host, name);
        assert_eq!(r["outcome"], "unsupported", "{name}: {r}");
        assert!(reason(r).contains("requires: [pid_namespace]"), "{r}");
    }
    assert_eq!(
        named(&on_host, "pid1::ns_init_killed_by_sigkill_from_parent_ns")["outcome"],
        "pass"
    );
    assert!(unsupported(&on_host).len() <= declared.len());
}

#[test]
fn wrong_scenarios_still_fail_under_a_forced_subreaper_root() {
    let run = host_suite(&Lacks::default(), &["--no-pid-namespace"], "fixtures/wrong");
    let all = results(&run);
    assert!(all.len() >= 6);
    for r in &all {
        // A wrong fixture keeps its original's requirements: one that needs
        // a pid namespace is unsupported in this mode, as its original is.
        let file = common::repo().join(r["file"].as_str().unwrap_or_default());
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let needs_pid_namespace = text
            .lines()
            .any(|l| l.starts_with("requires:") && l.contains("pid_namespace"));
        if needs_pid_namespace {
            assert_eq!(r["outcome"], "unsupported", "{}: {}", r["name"], reason(r));
            continue;
        }
        assert_eq!(r["outcome"], "fail", "{}: {}", r["name"], reason(r));
        assert!(reason(r).contains("expected"), "{r}");
        assert_ne!(r["mode"], "pid_namespace", "{r}");
    }
    let under_subreaper_root = all.iter().filter(|r| r["mode"] == "subreaper_root").count();
    assert!(under_subreaper_root >= 6, "{under_subreaper_root}");
    assert_eq!(run.code(), Some(101));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn without_pid_namespaces_a_subreaper_root_stands_in_and_at_most_15_are_unsupported() {
    let lacks = Lacks {
        pid_namespaces: true,
        ..Lacks::default()
    };
    let run = host_suite(&lacks, &[], "suites");
    let on_host = no_fail_no_broken(&run);
    modes_are(&on_host, "subreaper_root");
    let unsupported = unsupported(&on_host);
    for r in &unsupported {
        assert!(
            NO_PID_NAMESPACE.iter().any(|p| reason(r).starts_with(p)),
            "{}: {}",
            r["name"],
            reason(r)
        );
    }
    assert!(
        unsupported.len() <= 15,
        "{} unsupported: {:#?}",
        unsupported.len(),
        unsupported.iter().map(|r| &r["name"]).collect::<Vec<_>>()
    );
    // The subject is the namespace's init: unsupported, as its file says.
    for name in [
        "pid1::ns_init_ignores_sigkill_and_sigstop_from_inside",
        "zombie::ns_init_exit_kills_namespace",
        "sibling::pid_namespace_init_gets_einval",
        "subreaper::subreaper_does_not_cross_pid_namespace",
        "subreaper::no_subreaper_init_adopts",
    ] {
        assert_eq!(named(&on_host, name)["outcome"], "unsupported", "{name}");
    }
    // Subreaper, zombie and sibling behaviour gets verdicts.
    for name in [
        "subreaper::nearest_ancestor_adopts",
        "zombie::zombie_stays_until_waited",
        "sibling::youki_sibling_init_stays_with_manager",
    ] {
        assert_eq!(named(&on_host, name)["outcome"], "pass", "{name}");
    }
    assert!(
        run.stdout()
            .contains("ignored (unsupported: clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL"),
        "{}",
        run.stdout()
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn without_subreapers_the_harness_runs_and_subreaper_scenarios_are_unsupported() {
    let lacks = Lacks {
        subreapers: true,
        ..Lacks::default()
    };
    let run = host_suite(&lacks, &[], "suites");
    let on_host = no_fail_no_broken(&run);
    modes_are(&on_host, "pid_namespace");
    let unsupported = unsupported(&on_host);
    for r in &unsupported {
        assert!(
            reason(r).starts_with(NO_SUBREAPER),
            "{}: {}",
            r["name"],
            reason(r)
        );
    }
    for name in [
        "subreaper::nearest_ancestor_adopts",
        "subreaper::get_reflects_set_and_clear",
        "sibling::youki_sibling_init_stays_with_manager",
    ] {
        assert_eq!(named(&on_host, name)["outcome"], "unsupported", "{name}");
    }
    for name in [
        "subreaper::no_subreaper_init_adopts",
        "zombie::ns_init_exit_kills_namespace",
        "pid1::ns_init_ignores_sigkill_and_sigstop_from_inside",
    ] {
        assert_eq!(named(&on_host, name)["outcome"], "pass", "{name}");
    }
    let pass = on_host.iter().filter(|r| r["outcome"] == "pass").count();
    assert!(pass >= 50, "{pass} pass");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn without_either_the_fresh_scenarios_are_unsupported_with_both_reasons() {
    let lacks = Lacks {
        pid_namespaces: true,
        subreapers: true,
        ..Lacks::default()
    };
    let run = host_suite(&lacks, &[], "suites");
    let on_host = no_fail_no_broken(&run);
    for r in &on_host {
        if r["mode"] == "caller_namespace" {
            continue;
        }
        assert_eq!(r["mode"], "subreaper_root", "{r}");
        assert_eq!(r["outcome"], "unsupported", "{r}");
        let why = reason(r);
        assert!(
            why.starts_with(NO_PID_NAMESPACE[0]) && why.contains(NO_SUBREAPER),
            "{}: {why}",
            r["name"]
        );
    }
    // What needs neither (memfd, exit detection in the caller's namespace) passes.
    let caller = on_host
        .iter()
        .filter(|r| r["mode"] == "caller_namespace")
        .count();
    assert!(caller >= 19, "{caller} in the caller's namespace");
    assert_eq!(
        named(&on_host, "kill::exit_detection_latency_kill0")["outcome"],
        "pass"
    );
}

/// Extra arguments, an environment variable, and what the one line must name.
type BadInput<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, &'a str);

#[test]
fn no_pid_namespace_with_a_runtime_is_bad_input() {
    let cases: [BadInput; 4] = [
        (&["--runtime", "runc"], None, "--runtime"),
        (&[], Some(("RUNTIME", "runc")), "--runtime"),
        (&["--runtime", "runc", "explore"], None, "--runtime"),
        (
            &["--kernels", "fixtures/kernels.yaml"],
            None,
            "cmdline: -- subreaper-root",
        ),
    ];
    for (args, env, message) in cases {
        let mut cmd = orphanage();
        cmd.current_dir(repo())
            .args(["--no-pid-namespace", "--suites", "fixtures/crash"])
            .args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("--no-pid-namespace") && stderr.contains(message),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing may run");
    }
}

/// The small kernel (a Linux built without pid namespaces and
/// without memfd): at least 35 verdicts, none a fail or broken.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_pid_namespaces_and_memfd_at_least_35_scenarios_get_a_verdict() {
    let lacks = Lacks {
        pid_namespaces: true,
        enosys: vec![libc::SYS_memfd_create],
        ..Lacks::default()
    };
    let run = host_suite(&lacks, &[], "suites");
    let on_host = no_fail_no_broken(&run);
    for r in unsupported(&on_host) {
        let why = reason(r);
        assert!(
            NO_PID_NAMESPACE.iter().any(|p| why.starts_with(p))
                || why.starts_with("memfd_create(MFD_CLOEXEC): ENOSYS"),
            "{}: {why}",
            r["name"]
        );
    }
    let verdicts = on_host
        .iter()
        .filter(|r| r["outcome"] != "unsupported")
        .count();
    assert!(verdicts >= 35, "{verdicts} verdicts");
}
