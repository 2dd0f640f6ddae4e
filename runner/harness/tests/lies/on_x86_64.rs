//! The lies themselves, on x86_64, whose syscall numbers, audit arch and
//! siginfo layout the filters and forgeries are written for.

use super::{common, user_notification};
use common::{cannot_run, orphanage, repo};
use libtest_mimic::Trial;
use std::collections::BTreeSet;
use user_notification::Forgery;

/// One syscall that answers `errno` (0: "success") without running, when its
/// argument `arg` is (or, with `equal: false`, is not) `value`.
struct Lie {
    syscall: libc::c_long,
    arg: Option<(u32, u32, bool)>,
    errno: u32,
}

fn install(cmd: &mut std::process::Command, lie: &Lie) {
    use std::os::unix::process::CommandExt;
    let program = Box::leak(
        user_notification::filter(lie.syscall, lie.arg, libc::SECCOMP_RET_ERRNO | lie.errno)
            .into_boxed_slice(),
    );
    let fprog = Box::leak(Box::new(libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    }));
    let fprog_addr = fprog as *const libc::sock_fprog as usize;
    // SAFETY: only prctl and seccomp, both async-signal-safe, on memory leaked above.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    fprog_addr,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// How the kernel is made to lie: a plain errno, or a forged answer.
enum How<'a> {
    Errno(&'a Lie),
    Forged(Forgery),
}

/// Runs the named areas of suites/ (each scenario with a 2 s deadline where
/// it names none, so a wait for what never happens ends soon) under `lie`.
/// Returns every result by name, as (outcome, reason).
fn run_lying(lie: &Lie, areas: &[&str], exact: Option<&str>) -> Vec<(String, String, String)> {
    run_under(How::Errno(lie), areas, exact, "2s")
}

/// As `run_lying`, with `deadline` for the scenarios that name none.
fn run_under(
    how: How,
    areas: &[&str],
    exact: Option<&str>,
    deadline: &str,
) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    for area in areas {
        std::fs::create_dir(dir.path().join(area)).unwrap();
        for file in std::fs::read_dir(repo().join("suites").join(area))
            .unwrap()
            .flatten()
        {
            let text = std::fs::read_to_string(file.path()).unwrap();
            let text = if text.lines().any(|l| l.starts_with("deadline:")) {
                text
            } else {
                format!("deadline: {deadline}\n{text}")
            };
            std::fs::write(dir.path().join(area).join(file.file_name()), text).unwrap();
        }
    }
    let report = dir.path().join("report.json");
    let mut cmd = orphanage();
    cmd.arg("--suites")
        .arg(dir.path())
        .arg("--report")
        .arg(&report);
    if let Some(name) = exact {
        cmd.arg("--exact").arg(name);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = match how {
        How::Errno(lie) => {
            install(&mut cmd, lie);
            cmd.output().unwrap()
        }
        How::Forged(forgery) => {
            let pending = user_notification::prepare(&mut cmd, forgery);
            let child = cmd.spawn().unwrap();
            let supervisor = pending.start();
            let out = child.wait_with_output().unwrap();
            let tally = supervisor.stop();
            // A lie never told proves nothing.
            assert!(tally.lied > 0, "{forgery:?} was never told: {tally:?}");
            out
        }
    };
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_else(|e| {
            panic!(
                "{e}: {:?} {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .unwrap();
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that exactly `broken` fail, and that everything else passes (or
/// is unsupported for a reason unrelated to the lie: it needs a runtime or a VM).
fn assert_caught_exactly(results: &[(String, String, String)], broken: &[&str]) {
    let failed: BTreeSet<&str> = results
        .iter()
        .filter(|(_, outcome, _)| outcome == "fail")
        .map(|(name, ..)| name.as_str())
        .collect();
    let want: BTreeSet<&str> = broken.iter().copied().collect();
    let others: Vec<&(String, String, String)> = results
        .iter()
        .filter(|(name, outcome, reason)| {
            !want.contains(name.as_str())
                && outcome != "pass"
                && !reason.starts_with("needs an OCI runtime target")
                && !reason.starts_with("needs the VM target")
        })
        .collect();
    assert_eq!(failed, want, "{results:#?}");
    assert!(others.is_empty(), "{others:#?}");
}

fn a_kill_that_returns_0_without_sending_is_caught() {
    // kill(pid, sig) with sig != 0: "done", but nothing is sent.
    let lie = Lie {
        syscall: libc::SYS_kill,
        arg: Some((1, 0, false)),
        errno: 0,
    };
    let results = run_lying(&lie, &["zombie", "pid1"], None);
    assert_caught_exactly(
        &results,
        &[
            "pid1::ns_init_handler_receives_signal_from_parent_ns",
            "pid1::ns_init_handler_receives_signals_from_inside",
            // These pass a kill(2) that sends nothing up to their control step.
            "pid1::ns_init_ignores_default_signals_from_inside",
            "pid1::ns_init_ignores_default_signals_from_parent_ns",
            "pid1::ns_init_ignores_sigkill_and_sigstop_from_inside",
            "pid1::ns_init_killed_by_sigkill_from_parent_ns",
            "zombie::core_dump_sets_core_flag",
            "zombie::signal_deaths_reported_exactly",
            "zombie::waitid_pidfd_reaps",
            "zombie::waitid_reports_exit_codes_and_signals",
        ],
    );
    // The ignore scenarios pass every step up to the control's wait, which never returns.
    for (name, _, reason) in results
        .iter()
        .filter(|(n, ..)| n.contains("ns_init_ignores"))
    {
        assert!(
            reason.starts_with("timeout after 2 s")
                && reason.contains(" wait {api: waitpid, by: nsinit, for: control"),
            "{name}: {reason}"
        );
    }
}

fn a_waitid_p_pidfd_that_answers_echild_for_everything_is_caught() {
    // waitid(P_PIDFD, ...) says "not your child" even to the parent. The
    // feature probe, which expects ECHILD, cannot tell: the scenarios must.
    let lie = Lie {
        syscall: libc::SYS_waitid,
        arg: Some((0, libc::P_PIDFD, true)),
        errno: libc::ECHILD as u32,
    };
    let results = run_lying(&lie, &["zombie"], None);
    assert_caught_exactly(
        &results,
        &[
            "zombie::waitid_pidfd_non_child_echild",
            "zombie::waitid_pidfd_reaps",
        ],
    );
}

fn seals_accepted_but_not_enforced_are_caught() {
    // fcntl(F_ADD_SEALS) says "done" and seals nothing (CHECKS 7.3).
    let lie = Lie {
        syscall: libc::SYS_fcntl,
        arg: Some((1, libc::F_ADD_SEALS as u32, true)),
        errno: 0,
    };
    let results = run_lying(&lie, &["memfd"], None);
    let sealing: Vec<&str> = results
        .iter()
        .filter(|(name, ..)| {
            let file = repo()
                .join("suites/memfd")
                .join(format!("{}.yaml", name.trim_start_matches("memfd::")));
            std::fs::read_to_string(file)
                .unwrap()
                .contains("add_seals:")
        })
        .map(|(name, ..)| name.as_str())
        .collect();
    assert!(sealing.len() >= 10, "{sealing:?}");
    assert_caught_exactly(&results, &sealing);
}

fn a_kill0_that_says_gone_too_early_is_caught_by_exit_detection() {
    // kill(pid, 0): ESRCH for a process that is alive.
    let lie = Lie {
        syscall: libc::SYS_kill,
        arg: Some((1, 0, true)),
        errno: libc::ESRCH as u32,
    };
    let results = run_lying(&lie, &["kill"], Some("kill::exit_detection_latency_kill0"));
    assert_caught_exactly(&results, &["kill::exit_detection_latency_kill0"]);
    assert!(
        results[0]
            .2
            .starts_with("step 1 (measure_exit_detection): ")
            && results[0]
                .2
                .contains("expected alive, observed kill(pid, 0) ESRCH"),
        "{}",
        results[0].2
    );
}

/// Every scenario of `areas` whose file contains `needle`.
fn scenarios_containing(areas: &[&str], needle: &str) -> Vec<String> {
    let mut found = vec![];
    for area in areas {
        for file in std::fs::read_dir(repo().join("suites").join(area))
            .unwrap()
            .flatten()
        {
            if std::fs::read_to_string(file.path())
                .unwrap()
                .contains(needle)
            {
                let name = file.path();
                let stem = name.file_stem().unwrap().to_string_lossy();
                found.push(format!("{area}::{stem}"));
            }
        }
    }
    found
}

fn a_subreaper_flag_accepted_but_never_set_is_caught() {
    // prctl(PR_SET_CHILD_SUBREAPER, ...) says "done" and changes nothing.
    let lie = Lie {
        syscall: libc::SYS_prctl,
        arg: Some((0, libc::PR_SET_CHILD_SUBREAPER as u32, true)),
        errno: 0,
    };
    let areas = ["subreaper", "zombie", "sibling", "pid1"];
    let results = run_lying(&lie, &areas, None);
    let setting = scenarios_containing(&areas, "set_subreaper:");
    assert!(setting.len() >= 10, "{setting:?}");
    // Its manager is a subreaper as youki's is, but CLONE_PARENT alone makes
    // the container init the manager's child: no adoption is checked there.
    let setting: Vec<&str> = setting
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "sibling::youki_sibling_init_stays_with_manager")
        .collect();
    assert_caught_exactly(&results, &setting);
}

fn a_parent_death_signal_accepted_but_never_set_is_caught() {
    // prctl(PR_SET_PDEATHSIG, sig) says "done" and arms nothing.
    let lie = Lie {
        syscall: libc::SYS_prctl,
        arg: Some((0, libc::PR_SET_PDEATHSIG as u32, true)),
        errno: 0,
    };
    let areas = ["subreaper"];
    let results = run_lying(&lie, &areas, None);
    let arming = scenarios_containing(&areas, "set_pdeathsig:");
    assert!(arming.len() >= 4, "{arming:?}");
    let arming: Vec<&str> = arming.iter().map(String::as_str).collect();
    assert_caught_exactly(&results, &arming);
}

fn a_waitid_p_pidfd_that_answers_for_another_child_is_caught() {
    // waitid(P_PIDFD) reports whichever other child of the caller has
    // exited, as P_ALL would: a faked result, through user notification.
    let results = run_under(
        How::Forged(Forgery::PidfdWaitAnswersForAnotherChild),
        &["zombie"],
        None,
        "2s",
    );
    assert_caught_exactly(
        &results,
        &[
            "zombie::waitid_pidfd_non_child_echild",
            "zombie::waitid_pidfd_reaps",
        ],
    );
    let reason = |name: &str| {
        results
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(.., r)| r.clone())
            .unwrap()
    };
    // Each at its first P_PIDFD wait, naming the other child.
    let reaps = reason("zombie::waitid_pidfd_reaps");
    assert!(
        reaps.starts_with("step 5 (wait): ") && reaps.contains("reaped other"),
        "{reaps}"
    );
    let stranger = reason("zombie::waitid_pidfd_non_child_echild");
    assert!(
        stranger.starts_with("step 7 (wait): ") && stranger.contains("ECHILD"),
        "{stranger}"
    );
}

fn a_sender_pid_leaked_across_namespaces_is_caught() {
    // kill(2) delivers with si_pid the sender's pid in its own namespace,
    // untranslated: right within one namespace, wrong across a boundary.
    let results = run_under(
        How::Forged(Forgery::KillLeaksTheSendersOwnPid),
        &["zombie", "pid1"],
        None,
        SENDER_DEADLINE,
    );
    assert_caught_exactly(
        &results,
        &["pid1::ns_init_handler_receives_signal_from_parent_ns"],
    );
    assert_observed_another_sender(&results);
}

/// Past `expect_signal`'s own 2 s, so that the step fails naming what came.
const SENDER_DEADLINE: &str = "4s";

/// Each failure is its `expect_signal`, having seen the signal from someone else.
fn assert_observed_another_sender(results: &[(String, String, String)]) {
    for (name, _, reason) in results.iter().filter(|(_, o, _)| o == "fail") {
        assert!(
            reason.contains("(expect_signal): nsinit: expected SIGTERM from ")
                && reason.contains(", observed SIGTERM from "),
            "{name}: {reason}"
        );
    }
}

fn a_wrong_sender_pid_is_caught() {
    // kill(2) delivers naming the sender's parent as the sender.
    let results = run_under(
        How::Forged(Forgery::KillNamesTheSendersParent),
        &["zombie", "pid1"],
        None,
        SENDER_DEADLINE,
    );
    assert_caught_exactly(
        &results,
        &[
            "pid1::ns_init_handler_receives_signal_from_parent_ns",
            "pid1::ns_init_handler_receives_signals_from_inside",
        ],
    );
    assert_observed_another_sender(&results);
}

/// Whether this process has CAP_SYS_ADMIN (bit 21 of CapEff), which the
/// user-notification supervisor needs to enter the agent's namespaces.
fn has_cap_sys_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 21) != 0)
}

pub fn main() {
    let args = libtest_mimic::Arguments::from_args();
    // Each trial needs every scenario of its areas to run, so that all but
    // the lie's come out pass; their pid-namespace scenarios cannot run
    // without CAP_SYS_ADMIN (clone(CLONE_NEWPID) is EPERM), and the forged
    // senders also setns into the agent's pid namespace.
    let gated = |name: &str, body: fn(), also: &str| {
        if has_cap_sys_admin() {
            Trial::test(name, move || {
                body();
                Ok(())
            })
        } else {
            cannot_run(
                name,
                format!(
                    "the areas lied to must pass but for the lie, and their pid-namespace \
                     scenarios need CAP_SYS_ADMIN (clone(CLONE_NEWPID): EPERM without it){also}"
                ),
                "needs CAP_SYS_ADMIN".into(),
            )
        }
    };
    let lie = |name: &str, body: fn()| gated(name, body, "");
    let forged_sender = |name: &str, body: fn()| {
        gated(
            name,
            body,
            "; the forged sender also enters the agent's pid namespace",
        )
    };
    let trials = vec![
        lie(
            "a_kill_that_returns_0_without_sending_is_caught",
            a_kill_that_returns_0_without_sending_is_caught,
        ),
        lie(
            "a_waitid_p_pidfd_that_answers_echild_for_everything_is_caught",
            a_waitid_p_pidfd_that_answers_echild_for_everything_is_caught,
        ),
        lie(
            "seals_accepted_but_not_enforced_are_caught",
            seals_accepted_but_not_enforced_are_caught,
        ),
        lie(
            "a_kill0_that_says_gone_too_early_is_caught_by_exit_detection",
            a_kill0_that_says_gone_too_early_is_caught_by_exit_detection,
        ),
        lie(
            "a_subreaper_flag_accepted_but_never_set_is_caught",
            a_subreaper_flag_accepted_but_never_set_is_caught,
        ),
        lie(
            "a_parent_death_signal_accepted_but_never_set_is_caught",
            a_parent_death_signal_accepted_but_never_set_is_caught,
        ),
        lie(
            "a_waitid_p_pidfd_that_answers_for_another_child_is_caught",
            a_waitid_p_pidfd_that_answers_for_another_child_is_caught,
        ),
        forged_sender(
            "a_sender_pid_leaked_across_namespaces_is_caught",
            a_sender_pid_leaked_across_namespaces_is_caught,
        ),
        forged_sender("a_wrong_sender_pid_is_caught", a_wrong_sender_pid_is_caught),
    ];
    libtest_mimic::run(&args, trials).exit();
}
