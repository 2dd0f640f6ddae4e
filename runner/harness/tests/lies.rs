//! A kernel that lies in one way at a time (issue 16, Deliver 2). A seccomp
//! filter, installed in orphanage before exec and so binding every agent it
//! starts, makes one syscall answer falsely without doing its work. The
//! scenarios whose `checks:` line that lie breaks must come out as fail (by a
//! check, or by the deadline when what they wait for never happens), and the
//! rest of the areas run must still pass: the lie is caught exactly where it
//! matters. (tests/selftest.rs does the same for a kernel that lacks
//! pidfd_open and clone3, where the answer is unsupported instead.)
#![cfg(target_arch = "x86_64")]

mod common;

use common::{orphanage, repo};
use std::collections::BTreeSet;

/// One syscall that answers `errno` (0: "success") without running, when its
/// argument `arg` is (or, with `equal: false`, is not) `value`.
struct Lie {
    syscall: libc::c_long,
    arg: Option<(u32, u32, bool)>,
    errno: u32,
}

fn install(cmd: &mut std::process::Command, lie: &Lie) {
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    // seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (its low half first on x86_64).
    // The lie is the second-to-last instruction; every jump to "allow" lands on the last.
    let mut program = vec![load(4)];
    let arg_len = if lie.arg.is_some() { 2 } else { 0 };
    program.push(jump(AUDIT_ARCH_X86_64, 0, 3 + arg_len));
    program.push(load(0));
    program.push(jump(lie.syscall as u32, 0, 1 + arg_len));
    if let Some((index, value, equal)) = lie.arg {
        program.push(load(16 + 8 * index));
        program.push(if equal {
            jump(value, 0, 1)
        } else {
            jump(value, 1, 0)
        });
    }
    program.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | lie.errno,
    ));
    program.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    let program = Box::leak(program.into_boxed_slice());
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

/// Runs the named areas of suites/ (each scenario with a 2 s deadline where
/// it names none, so a wait for what never happens ends soon) under `lie`.
/// Returns every result by name, as (outcome, reason).
fn run_lying(lie: &Lie, areas: &[&str], exact: Option<&str>) -> Vec<(String, String, String)> {
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
                format!("deadline: 2s\n{text}")
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
    install(&mut cmd, lie);
    let out = cmd.output().unwrap();
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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
