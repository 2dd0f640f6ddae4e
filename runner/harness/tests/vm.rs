//! The VM target, end to end: a cached Debian kernel (fixtures/kernels.yaml's
//! "6.1", fetched by `orphanage kernels fetch 6.1`) boots under TCG with the
//! agent as init, runs a subset of the suite, and reports what that kernel
//! really does. A panicking kernel is broken with its log while the other
//! cell still runs, and Ctrl-C leaves no QEMU behind.
//!
//! Without QEMU or the cached kernel these are ignored, naming what is
//! missing; with ORPHANAGE_REQUIRE_ALL=1 (as CI sets) that is a failure.
//! The bad-input checks need neither and always run.

#[path = "common/mod.rs"]
mod common;

use common::{check, on_path, orphanage, repo, require_all};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The matrix entry these tests boot.
const KERNEL: &str = "6.1";

/// The matrix entry built from Debian's linux-source-6.1 without pid
/// namespaces and with the virtio console built in.
const TINY_KERNEL: &str = "tiny-6.1";

/// The cached image of `kernel`, or what is missing.
fn prerequisites(kernel: &str) -> Result<PathBuf, String> {
    if on_path("qemu-system-x86_64").is_none() {
        return Err("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)".into());
    }
    let out = orphanage()
        .args(["kernels", "path", kernel])
        .current_dir(repo())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_once('\t') {
        Some((_, path)) if out.status.success() => Ok(PathBuf::from(path.trim())),
        _ if kernel == TINY_KERNEL => Err(format!(
            "kernel {kernel} of fixtures/kernels.yaml is not built (run `cargo run -- kernels fetch {kernel}`: several minutes, and it names the Debian packages it needs)"
        )),
        _ => Err(format!(
            "kernel {kernel} of fixtures/kernels.yaml is not cached (run `cargo run -- kernels fetch {kernel}`)"
        )),
    }
}

/// A VM test on the Debian kernel: ignored with the reason when something
/// is missing, unless ORPHANAGE_REQUIRE_ALL=1 makes that a failure.
fn vm_trial(name: &str, test: fn(&Path) -> Result<(), Failed>) -> Trial {
    vm_trial_on(KERNEL, name, test)
}

/// A VM test on the matrix entry `kernel`, ignored or failed as `vm_trial`.
fn vm_trial_on(kernel: &'static str, name: &str, test: fn(&Path) -> Result<(), Failed>) -> Trial {
    Trial::ignorable_test(name, move || match prerequisites(kernel) {
        Ok(image) => test(&image).map(|_| Completion::Completed),
        Err(missing) if require_all() => {
            Err(format!("ORPHANAGE_REQUIRE_ALL=1 but {missing}").into())
        }
        Err(missing) => Ok(Completion::ignored_with(missing)),
    })
}

/// Processes whose command line mentions `needle` (our private TMPDIR).
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

/// After a run: no QEMU of ours and no initramfs directory remain.
fn nothing_left(tmp: &Path) -> Result<(), Failed> {
    let left = processes_mentioning(&tmp.to_string_lossy());
    check(left.is_empty(), || format!("left running: {left:?}"))?;
    let dirs: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    check(dirs.is_empty(), || format!("left behind: {dirs:?}"))
}

/// (outcome, reason) of scenario `name` in a report's results; empty if absent.
fn outcome_in(results: &[serde_json::Value], name: &str) -> (String, String) {
    results
        .iter()
        .find(|r| r["name"] == name)
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .unwrap_or_default()
}

fn single_kernel_run(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("report.json");
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    // memfd and subreaper: what differs across kernels, and the agent as
    // init of fresh pid namespaces inside the VM's global init.
    let out = orphanage()
        .arg("--kernel")
        .arg(image)
        .args(["--accel", "tcg", "--boot-floor", "--report"])
        .arg(&report)
        .args([
            "--skip",
            "kill::",
            "--skip",
            "zombie::",
            "--skip",
            "pid1::",
            "--skip",
            "sibling::",
            // The runtime areas have nothing to drive in a VM.
            "--skip",
            "kill_race::",
            "--skip",
            "shim::",
            "--skip",
            "container_init::",
            "--skip",
            "init_program::",
        ])
        .env("TMPDIR", &vm_tmp)
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(0), || {
        format!("exit {:?}\n{stdout}\n{stderr}", out.status)
    })?;
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    check(
        report["kernel"]
            .as_str()
            .is_some_and(|k| k.starts_with("6.1.")),
        || format!("kernel in report: {}", report["kernel"]),
    )?;
    check(report["target"] == "vm", || {
        format!("target {}", report["target"])
    })?;
    let results = report["results"].as_array().unwrap();
    check(results.len() == 40, || format!("{} results", results.len()))?;
    let outcome = |name: &str| outcome_in(results, name);
    // 6.1 predates MFD_NOEXEC_SEAL (6.3): the probe's EINVAL, not a failure.
    for name in [
        "memfd::noexec_seal_flag_seals_exec",
        "memfd::memfd_noexec_2_refuses_mfd_exec",
    ] {
        let (o, reason) = outcome(name);
        check(
            o == "unsupported" && reason.contains("MFD_NOEXEC_SEAL): EINVAL"),
            || format!("{name}: {o}: {reason}"),
        )?;
    }
    // Seals by effect, exec from a sealed memfd, clone isolation, and
    // reparenting inside a pid namespace under the VM's init.
    for name in [
        "memfd::seal_write_refuses_writes",
        "memfd::seal_future_write_keeps_existing_mapping",
        "memfd::exec_from_sealed_memfd",
        "memfd::memfd_exe_clone_child_writes_stay_private",
        "memfd::memfd_exe_fork_child_writes_stay_private",
        "subreaper::nearest_ancestor_adopts",
        "subreaper::no_subreaper_init_adopts",
        "subreaper::subreaper_does_not_cross_pid_namespace",
    ] {
        let (o, reason) = outcome(name);
        check(o == "pass", || format!("{name}: {o}: {reason}"))?;
    }
    check(
        stderr.contains("boot floor") && stderr.contains("first result"),
        || format!("no figures on stderr:\n{stderr}"),
    )?;
    nothing_left(&vm_tmp)
}

fn matrix_with_a_panicking_kernel(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    let suites = common::suite_of(&[
        (
            &repo().join("suites/memfd/noexec_seal_flag_seals_exec.yaml"),
            None,
        ),
        (
            &repo().join("suites/memfd/seal_write_refuses_writes.yaml"),
            None,
        ),
        (
            &repo().join("suites/subreaper/nearest_ancestor_adopts.yaml"),
            None,
        ),
        (
            &repo().join("suites/subreaper/no_subreaper_init_adopts.yaml"),
            None,
        ),
    ]);
    let kernels = tmp.path().join("kernels.yaml");
    // The same kernel four ways: as it is; with init told to filter
    // CLONE_NEWPID to EINVAL (a kernel without pid namespaces, as Asterinas,
    // where a subreaper root stands in for the namespace's init);
    // with rdinit naming no file, so the kernel finds no init and panics; and
    // with an argument init does not know, so init exits.
    std::fs::write(
        &kernels,
        format!(
            "kernels:\n  - name: good\n    path: {0}\n  - name: no-pidns\n    path: {0}\n    cmdline: -- no-pid-namespaces\n  - name: no-init\n    path: {0}\n    cmdline: rdinit=/no/such/init\n  - name: init-exits\n    path: {0}\n    cmdline: -- no-such-mode\n",
            image.display()
        ),
    )
    .unwrap();
    let report_dir = tmp.path().join("matrix");
    let (json_path, junit_path) = (tmp.path().join("m.json"), tmp.path().join("m.xml"));
    let out = orphanage()
        .arg("--suites")
        .arg(suites.path())
        .arg("--kernels")
        .arg(&kernels)
        .args(["--accel", "tcg", "--matrix-report"])
        .arg(&report_dir)
        .arg("--report")
        .arg(&json_path)
        .arg("--junit")
        .arg(&junit_path)
        .env("TMPDIR", &vm_tmp)
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    // A broken cell fails the run.
    check(out.status.code() == Some(101), || {
        format!("exit {:?}\n{all}", out.status)
    })?;
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    for (name, cells) in [
        (
            "fixture::noexec_seal_flag_seals_exec",
            ["unsupported", "unsupported", "BROKEN", "BROKEN"],
        ),
        (
            "fixture::seal_write_refuses_writes",
            ["pass", "pass", "BROKEN", "BROKEN"],
        ),
        (
            "fixture::nearest_ancestor_adopts",
            ["pass", "pass", "BROKEN", "BROKEN"],
        ),
        (
            "fixture::no_subreaper_init_adopts",
            ["pass", "unsupported", "BROKEN", "BROKEN"],
        ),
    ] {
        check(row(name) == cells, || {
            format!("{name}: {:?}\n{all}", row(name))
        })?;
    }
    check(
        stdout.contains("good (6.1.") && stdout.contains("no-pidns (6.1."),
        || format!("headers with the release:\n{stdout}"),
    )?;
    check(stdout.contains("no-init (did not boot)"), || {
        stdout.to_string()
    })?;
    check(
        stdout.contains("no-pidns fixture::no_subreaper_init_adopts: unsupported: clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL, and the scenario declares `requires: [pid_namespace]`"),
        || stdout.to_string(),
    )?;
    check(all.contains("Kernel panic"), || {
        format!("no log tail:\n{all}")
    })?;
    // The pages are the merge's (columns by name: good, init-exits,
    // no-init, no-pidns), each cell that is not a pass with its note; the
    // VMs' figures below.
    let md = std::fs::read_to_string(report_dir.join("matrix.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| fixture::no\\_subreaper\\_init\\_adopts |"))
        .unwrap_or_default();
    let cells: Vec<&str> = row
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    check(
        cells.len() == 5
            && cells[1] == "pass"
            && cells[2].starts_with("**BROKEN**")
            && cells[3].starts_with("**BROKEN**")
            && cells[4].starts_with("unsupported ["),
        || format!("row {row:?} in\n{md}"),
    )?;
    check(
        md.contains("## The VMs") && md.contains("no-init: the VM failed: kernel panic"),
        || md.clone(),
    )?;
    let html = std::fs::read_to_string(report_dir.join("matrix.html")).unwrap();
    check(html.contains("<td class=\"o broken\""), || html.clone())?;
    // The matrix writes the same JSON report as any run: a cell per kernel,
    // with its release once it booted, and every result naming its cell.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let cells: Vec<(String, String, String, u64)> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["kind"].as_str().unwrap_or("").to_string(),
                c["kernel"].as_str().unwrap_or("").to_string(),
                c["summary"]["broken"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    let names: Vec<&str> = cells.iter().map(|c| c.0.as_str()).collect();
    check(
        names == ["good", "no-pidns", "no-init", "init-exits"],
        || format!("{cells:?}"),
    )?;
    check(
        cells[0].1 == "vm" && cells[0].2.starts_with("6.1.") && cells[0].3 == 0,
        || format!("{cells:?}"),
    )?;
    check(cells[2].2.is_empty() && cells[2].3 == 4, || {
        format!("{cells:?}")
    })?;
    let results = report["results"].as_array().unwrap();
    check(results.len() == 16, || format!("{} results", results.len()))?;
    let (o, reason) = outcome_in(results, "no-pidns:fixture::no_subreaper_init_adopts");
    check(
        o == "unsupported" && reason.contains("CLONE_NEWPID"),
        || format!("{o}: {reason}"),
    )?;
    // JUnit: a suite per kernel, and names unique across them.
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    check(
        junit.matches("<testsuite ").count() == 4
            && junit.contains("name=\"good:fixture::nearest_ancestor_adopts\"")
            && junit.contains("name=\"no-init:fixture::nearest_ancestor_adopts\""),
        || junit.clone(),
    )?;
    nothing_left(&vm_tmp)
}

/// The same Debian kernel with init told to simulate (seccomp) a kernel
/// without pid namespaces, without subreapers, without both, and with pid
/// namespaces but the subreaper root forced: in each, exactly what needs the
/// missing piece is unsupported, with the refused call, and nothing fails.
fn kernels_lacking_pid_namespaces_or_subreapers(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    let scenarios = [
        "subreaper/nearest_ancestor_adopts",
        "subreaper/no_subreaper_init_adopts",
        "pid1/ns_init_ignores_sigkill_and_sigstop_from_inside",
        "zombie/zombie_stays_until_waited",
        "sibling/youki_sibling_init_stays_with_manager",
        "sibling/pid_namespace_init_gets_einval",
        "memfd/seal_write_refuses_writes",
    ];
    let files: Vec<PathBuf> = scenarios
        .iter()
        .map(|s| repo().join(format!("suites/{s}.yaml")))
        .collect();
    let suites = common::suite_of(
        &files
            .iter()
            .map(|f| (f.as_path(), None))
            .collect::<Vec<_>>(),
    );
    let kernels = tmp.path().join("kernels.yaml");
    let cells = [
        ("no-pidns", "no-pid-namespaces"),
        ("no-subreapers", "no-subreapers"),
        ("neither", "no-pid-namespaces no-subreapers"),
        ("forced", "subreaper-root"),
        ("no-devfs", "no-devtmpfs no-sysfs"),
    ];
    let mut yaml = String::from("kernels:\n");
    for (name, knobs) in cells {
        yaml.push_str(&format!(
            "  - name: {name}\n    path: {}\n    cmdline: -- {knobs}\n",
            image.display()
        ));
    }
    std::fs::write(&kernels, yaml).unwrap();
    let started = Instant::now();
    let out = orphanage()
        .arg("--suites")
        .arg(suites.path())
        .arg("--kernels")
        .arg(&kernels)
        .args(["--accel", "tcg"])
        .env("TMPDIR", &vm_tmp)
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("five cells in {:.1} s", started.elapsed().as_secs_f64());
    check(out.status.code() == Some(0), || {
        format!("exit {:?}\n{all}", out.status)
    })?;
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let (p, u) = ("pass", "unsupported");
    // Without devtmpfs and sysfs nothing is lost: init makes the few
    // device nodes it needs, and nothing reads /sys.
    for (name, expected) in [
        ("fixture::nearest_ancestor_adopts", [p, u, u, p, p]),
        ("fixture::no_subreaper_init_adopts", [u, p, u, u, p]),
        (
            "fixture::ns_init_ignores_sigkill_and_sigstop_from_inside",
            [u, p, u, p, p],
        ),
        ("fixture::zombie_stays_until_waited", [p, p, u, p, p]),
        (
            "fixture::youki_sibling_init_stays_with_manager",
            [p, u, u, p, p],
        ),
        ("fixture::pid_namespace_init_gets_einval", [u, p, u, u, p]),
        ("fixture::seal_write_refuses_writes", [p, p, p, p, p]),
    ] {
        check(row(name) == expected, || {
            format!("{name}: {:?}, expected {expected:?}\n{all}", row(name))
        })?;
    }
    for reason in [
        "no-subreapers fixture::nearest_ancestor_adopts: unsupported: prctl(PR_SET_CHILD_SUBREAPER): EINVAL",
        "neither fixture::zombie_stays_until_waited: unsupported: clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL, and prctl(PR_SET_CHILD_SUBREAPER): EINVAL",
        "no-pidns fixture::ns_init_ignores_sigkill_and_sigstop_from_inside: unsupported: unshare(CLONE_NEWPID) in a child: EINVAL",
        "forced fixture::pid_namespace_init_gets_einval: unsupported: forced by --no-pid-namespace",
    ] {
        check(stdout.contains(reason), || format!("no `{reason}`:\n{all}"))?;
    }
    nothing_left(&vm_tmp)
}

/// Init runs two scenarios per CPU: with one CPU, the two hangs time out
/// side by side while the others wait, and every scenario keeps its own
/// verdict. The hang in init's own namespace leaves a detached daemon in
/// another session: init must kill it as a reported process, or it reports
/// it as left behind once no scenario runs.
fn scenarios_side_by_side(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    const HANG: u64 = 12;
    let hang_deadline = format!("deadline: {HANG}s");
    let hang = Some(("deadline: 60s", hang_deadline.as_str()));
    let suites = common::suite_of(&[
        (&repo().join("fixtures/hang/agent/forever.yaml"), hang),
        (
            &repo().join("fixtures/leftover/agent/detached_daemon_then_forever.yaml"),
            hang,
        ),
        (
            &repo().join("fixtures/crash/agent/store_to_readonly_mapping.yaml"),
            None,
        ),
        (
            &repo().join("fixtures/wrong/zombie/wrong_exit_status.yaml"),
            None,
        ),
        (
            &repo().join("suites/memfd/seal_write_refuses_writes.yaml"),
            None,
        ),
        (
            &repo().join("suites/subreaper/nearest_ancestor_adopts.yaml"),
            None,
        ),
    ]);
    let report = tmp.path().join("report.json");
    let out = orphanage()
        .arg("--suites")
        .arg(suites.path())
        .arg("--kernel")
        .arg(image)
        .args(["--accel", "tcg", "--vm-cpus", "1", "--report"])
        .arg(&report)
        .env("TMPDIR", &vm_tmp)
        .current_dir(repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    check(out.status.code() == Some(101), || {
        format!("exit {:?}\n{all}", out.status)
    })?;
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let outcome = |name: &str| outcome_in(results, &format!("fixture::{name}"));
    let timed_out = format!("timeout after {HANG} s");
    for (name, expected, says) in [
        ("forever", "fail", timed_out.as_str()),
        ("detached_daemon_then_forever", "fail", timed_out.as_str()),
        ("store_to_readonly_mapping", "broken", "SIGSEGV"),
        ("wrong_exit_status", "fail", ""),
        ("seal_write_refuses_writes", "pass", ""),
        ("nearest_ancestor_adopts", "pass", ""),
    ] {
        let (o, reason) = outcome(name);
        check(o == expected && reason.contains(says), || {
            format!("{name}: {o}: {reason}\n{all}")
        })?;
    }
    // One after the other, the two hangs alone would take twice HANG.
    let figure = |label: &str| -> Option<f64> {
        let rest = &stderr[stderr.find(label)? + label.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    let (Some(up), Some(cell)) = (figure("init up "), figure("whole cell ")) else {
        return Err(format!("no figures:\n{stderr}").into());
    };
    check(cell - up < 2.0 * HANG as f64 - 1.0, || {
        format!("init up {up} s, whole cell {cell} s: the hangs ran one after the other")
    })?;
    check(!stderr.contains("left behind"), || {
        format!("init's cleanup missed something:\n{stderr}")
    })?;
    nothing_left(&vm_tmp)
}

fn interrupt_kills_qemu(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = orphanage()
        .arg("--kernel")
        .arg(image)
        .args(["--accel", "tcg", "memfd::"])
        .env("TMPDIR", tmp.path())
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once QEMU is running: its initramfs directory exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut interval = Duration::from_millis(1);
    while processes_mentioning(&tmp.path().to_string_lossy()).is_empty() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("QEMU never started".into());
        }
        // A poll interval inside a deadline, not a synchronisation point.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    check(out.status.code() == Some(130), || {
        format!(
            "exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    nothing_left(tmp.path())
}

/// Bad input exits 2 with one line, before any VM starts.
fn bad_input(args: &[&str], env: &[(&str, &str)], says: &str) -> Result<(), Failed> {
    let out = orphanage()
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(out.status.code() == Some(2), || {
        format!("exit {:?}: {stderr}", out.status)
    })?;
    check(
        stderr.trim().lines().count() == 1 && stderr.contains(says),
        || format!("expected one line with {says:?}, got {stderr:?}"),
    )
}

/// A kernel with one console: results travel between its log lines, framed,
/// and come back the same as on a second serial port. A guest that never
/// powers off (init told `stay-up`, as a kernel without ACPI or
/// isa-debug-exit) is stopped as soon as its last frame is in.
fn one_console_and_a_guest_that_stays_up(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    let suites = common::suite_of(&[
        (
            &repo().join("suites/memfd/seal_write_refuses_writes.yaml"),
            None,
        ),
        (
            &repo().join("suites/subreaper/nearest_ancestor_adopts.yaml"),
            None,
        ),
        (
            &repo().join("suites/zombie/zombie_stays_until_waited.yaml"),
            None,
        ),
    ]);
    let kernels = tmp.path().join("kernels.yaml");
    std::fs::write(
        &kernels,
        format!(
            "kernels:\n  - name: two-ports\n    path: {0}\n  - name: one-console\n    path: {0}\n    results: console\n    cmdline: -- stay-up\n",
            image.display()
        ),
    )
    .unwrap();
    let out = orphanage()
        .arg("--suites")
        .arg(suites.path())
        .arg("--kernels")
        .arg(&kernels)
        .args(["--accel", "tcg"])
        .env("TMPDIR", &vm_tmp)
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    check(out.status.code() == Some(0), || {
        format!("exit {:?}\n{all}", out.status)
    })?;
    for name in [
        "fixture::seal_write_refuses_writes",
        "fixture::nearest_ancestor_adopts",
        "fixture::zombie_stays_until_waited",
    ] {
        let cells: Vec<&str> = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .collect();
        check(cells == ["pass", "pass"], || {
            format!("{name}: {cells:?}\n{all}")
        })?;
    }
    // `one-console: 6.1... last result 4.2 s, whole cell 4.3 s ...`
    let figure = |line: &str, what: &str| -> Option<f64> {
        let at = line.find(what)? + what.len();
        line[at..].split_whitespace().next()?.parse().ok()
    };
    let line = all
        .lines()
        .find(|l| l.contains("one-console: ") && l.contains("whole cell"))
        .unwrap_or_default();
    let (last, whole) = (figure(line, "last result "), figure(line, "whole cell "));
    check(
        matches!((last, whole), (Some(l), Some(w)) if w - l < 3.0),
        || format!("the VM that stays up was not stopped at its last frame: {line:?}\n{all}"),
    )?;
    check(!all.contains("damaged"), || all.clone())?;
    nothing_left(&vm_tmp)
}

/// QEMU on PATH in front of the real one: records each command line it is
/// started with (one argument a line, each run after a `--- qemu` line),
/// then becomes the real QEMU.
fn recording_qemu(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let real = on_path("qemu-system-x86_64").expect("checked by prerequisites");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let argv = dir.join("qemu-argv");
    let wrapper = bin.join("qemu-system-x86_64");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho '--- qemu' >>'{0}'\nprintf '%s\\n' \"$@\" >>'{0}'\nexec '{1}' \"$@\"\n",
            argv.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, argv)
}

/// The kernel built from Debian's linux-source-6.1 without CONFIG_PID_NS
/// (fixtures/kernels.yaml's tiny-6.1), through its entry, `results: hvc0`:
/// QEMU gets the virtio console and no serial port at all, so every result
/// came through hvc0; clone(CLONE_NEWPID) really fails with EINVAL there, so
/// every fresh scenario runs under a subreaper root and says so in its
/// `mode`; nothing fails or breaks, and what is unsupported is only what
/// needs a pid namespace or a later Linux.
fn tiny_kernel_over_hvc0_without_pid_namespaces(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    let (bin, argv_file) = recording_qemu(tmp.path());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let report = tmp.path().join("report.json");
    let started = Instant::now();
    let out = orphanage()
        .args([
            "--kernels",
            "fixtures/kernels.yaml",
            "--only-kernel",
            TINY_KERNEL,
        ])
        .args(["--accel", "tcg", "--report"])
        .arg(&report)
        // The runtime areas have nothing to drive in a VM.
        .args(["--skip", "kill_race::", "--skip", "shim::"])
        .args(["--skip", "container_init::", "--skip", "init_program::"])
        .env("PATH", path)
        .env("TMPDIR", &vm_tmp)
        .current_dir(repo())
        .output()
        .unwrap();
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    check(out.status.code() == Some(0), || {
        format!("exit {:?}\n{all}", out.status)
    })?;
    // One QEMU, with the virtio console as its only character device.
    let recorded = std::fs::read_to_string(&argv_file).unwrap_or_default();
    let runs: Vec<Vec<&str>> = recorded
        .split("--- qemu\n")
        .filter(|r| !r.is_empty())
        .map(|r| r.lines().collect())
        .collect();
    check(runs.len() == 1, || {
        format!("{} QEMU runs:\n{recorded}", runs.len())
    })?;
    let argv = &runs[0];
    let values = |flag: &str| -> Vec<&str> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1])
            .collect()
    };
    // The cached build, as `kernels path` names it.
    check(values("-kernel") == [image.to_string_lossy()], || {
        format!("booted {:?}, not {}", values("-kernel"), image.display())
    })?;
    check(
        argv.contains(&"-nodefaults") && values("-serial").is_empty(),
        || format!("QEMU has a serial port: {argv:?}"),
    )?;
    check(
        values("-device")
            == [
                "virtio-serial-pci,max_ports=1",
                "virtconsole,chardev=console",
            ]
            && values("-chardev").len() == 1,
        || format!("devices: {argv:?}"),
    )?;
    let append = values("-append").join(" ");
    check(
        append.contains("console=hvc0")
            && append.contains("results=/dev/hvc0")
            && !append.contains("ttyS"),
        || format!("command line: {append}"),
    )?;
    check(!all.contains("damaged"), || all.to_string())?;
    // Everything came back, from a 6.1 without pid namespaces.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let cell = &report["cells"][0];
    check(
        cell["name"] == TINY_KERNEL
            && cell["kernel"]
                .as_str()
                .is_some_and(|k| k.starts_with("6.1.")),
        || format!("cell: {cell}"),
    )?;
    let results = report["results"].as_array().unwrap();
    let count = |field: &str, value: &str| results.iter().filter(|r| r[field] == value).count();
    let (pass, fail, unsupported, broken) = (
        count("outcome", "pass"),
        count("outcome", "fail"),
        count("outcome", "unsupported"),
        count("outcome", "broken"),
    );
    let whole_cell = all
        .lines()
        .find(|l| l.contains(&format!("{TINY_KERNEL}: ")) && l.contains("whole cell"))
        .unwrap_or_default();
    eprintln!(
        "{TINY_KERNEL} over hvc0: {} verdicts ({pass} pass, {fail} fail), {unsupported} unsupported, {broken} broken, of {}; {:.1} s for the run\n{whole_cell}",
        pass + fail,
        results.len(),
        wall.as_secs_f64()
    );
    check(fail == 0 && broken == 0, || {
        format!("{fail} fail, {broken} broken\n{all}")
    })?;
    // The goal for a kernel without pid namespaces (and without memfd).
    check(pass >= 35, || format!("only {pass} verdicts\n{all}"))?;
    // The kernel refused the namespace itself: nothing was forced, and
    // every fresh scenario ran under a subreaper root.
    check(count("mode", "pid_namespace") == 0, || {
        format!("a scenario ran in a pid namespace\n{report}")
    })?;
    check(count("mode", "subreaper_root") >= 40, || {
        format!("{} under a subreaper root", count("mode", "subreaper_root"))
    })?;
    for r in results.iter().filter(|r| r["outcome"] == "unsupported") {
        let reason = r["reason"].as_str().unwrap_or_default();
        check(
            reason.starts_with("clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL, and the scenario declares `requires: [pid_namespace]`")
                || reason.starts_with("unshare(CLONE_NEWPID) in a child: EINVAL")
                || reason.contains("(Linux 6.3)"),
            || format!("{}: unsupported for another reason: {reason}", r["name"]),
        )?;
    }
    nothing_left(&vm_tmp)
}

/// explore works on a booted kernel too: generated trees in one boot, every
/// event forwarded so the observed ones are compared with the model.
fn explore_in_a_vm(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    // As written, and without pid namespaces: then the VM's init puts each
    // tree under a subreaper root, and the trees still agree with the model.
    for (flags, roots) in [
        (&[][..], "tree roots ran as: 2 pid_namespace"),
        (
            &["--no-pid-namespace"][..],
            "tree roots ran as: 2 subreaper_root",
        ),
    ] {
        let out = orphanage()
            .arg("--kernel")
            .arg(image)
            .args(["--accel", "tcg"])
            .args(flags)
            .args(["explore", "--cases", "2", "--seed", "3"])
            .arg("--save-to")
            .arg(tmp.path())
            .env("TMPDIR", &vm_tmp)
            .current_dir(repo())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        check(out.status.code() == Some(0), || text.clone())?;
        check(
            text.contains("2 trees agree with the model") && text.contains(roots),
            || text.clone(),
        )?;
    }
    let left: Vec<_> = std::fs::read_dir(&vm_tmp).unwrap().flatten().collect();
    check(left.is_empty(), || format!("left in TMPDIR: {left:?}"))?;
    let qemus = processes_mentioning(&vm_tmp.to_string_lossy());
    check(qemus.is_empty(), || format!("still running: {qemus:?}"))
}

/// A disagreement found in a VM is shrunk there in a few boots, not one a
/// step: each boot runs every tree the next steps could reach, and the path
/// the outcomes choose is proptest's own, so the minimal scenario saved is
/// the one the host's shrinking finds from the same case.
fn explore_shrinks_in_a_vm_in_few_boots(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    let explore = [
        "explore",
        "--cases",
        "8",
        "--seed",
        "5",
        "--model-defect",
        "no-subreaper",
    ];
    let saved_by = |target: &[&std::ffi::OsStr], dir: &Path| -> Result<(String, String), Failed> {
        let out = orphanage()
            .args(target)
            .args(explore)
            .arg("--save-to")
            .arg(dir)
            .env("TMPDIR", &vm_tmp)
            .current_dir(repo())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        check(out.status.code() == Some(101), || {
            format!("{text}{}", String::from_utf8_lossy(&out.stderr))
        })?;
        let file = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}\n{text}", dir.display()))?
            .flatten()
            .next()
            .ok_or_else(|| format!("nothing saved\n{text}"))?;
        let yaml = std::fs::read_to_string(file.path()).unwrap();
        // The header names the target and kernel; the steps are the scenario.
        let steps = yaml
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        Ok((steps, text))
    };
    let (on_host, host_text) = saved_by(&[], &tmp.path().join("host"))?;
    let (in_vm, vm_text) = saved_by(
        &[
            "--kernel".as_ref(),
            image.as_os_str(),
            "--accel".as_ref(),
            "tcg".as_ref(),
        ],
        &tmp.path().join("vm"),
    )?;
    check(on_host == in_vm, || {
        format!("host:\n{on_host}\nvm:\n{in_vm}\n{host_text}{vm_text}")
    })?;
    // "shrinking ran T trees in B batches (...), where one tree a batch would have taken S"
    let line = vm_text
        .lines()
        .find(|l| l.starts_with("explore: shrinking ran "))
        .ok_or_else(|| vm_text.clone())?;
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (batches, steps) = (numbers[1], numbers[3]);
    check(steps > 6 && batches * 3 <= steps, || line.to_string())?;
    let left: Vec<_> = std::fs::read_dir(&vm_tmp).unwrap().flatten().collect();
    check(left.is_empty(), || format!("left in TMPDIR: {left:?}"))
}

/// CHECKS 3.3 as the machine's init (`namespace: global_init`): the VM's
/// init itself tries CLONE_PARENT and gets EINVAL, by clone and by clone3;
/// the same scenario expecting EPERM fails at its first step, naming both.
fn clone_parent_from_the_global_init(image: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let original = repo().join("suites/sibling/global_init_gets_einval.yaml");
    let text = std::fs::read_to_string(&original).unwrap();
    let wrong = text.replacen(
        "how: clone_parent, errno: EINVAL",
        "how: clone_parent, errno: EPERM",
        1,
    );
    assert_ne!(text, wrong);
    let suites = tmp.path().join("suites/fixture");
    std::fs::create_dir_all(&suites).unwrap();
    std::fs::write(suites.join("as_written.yaml"), &text).unwrap();
    std::fs::write(suites.join("expecting_eperm.yaml"), &wrong).unwrap();
    let report = tmp.path().join("report.json");
    let vm_tmp = tmp.path().join("tmp");
    std::fs::create_dir(&vm_tmp).unwrap();
    let out = orphanage()
        .arg("--kernel")
        .arg(image)
        .arg("--suites")
        .arg(tmp.path().join("suites"))
        .args(["--accel", "tcg", "--report"])
        .arg(&report)
        .env("TMPDIR", &vm_tmp)
        .current_dir(repo())
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).map_err(|e| {
            format!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })?)
        .unwrap();
    let results = report["results"].as_array().unwrap();
    let (o, reason) = outcome_in(results, "fixture::as_written");
    check(o == "pass", || format!("as written: {o}: {reason}"))?;
    let mode = results
        .iter()
        .find(|r| r["name"] == "fixture::as_written")
        .map(|r| r["mode"].clone());
    check(mode == Some(serde_json::json!("global_init")), || {
        format!("mode {mode:?}")
    })?;
    let (o, reason) = outcome_in(results, "fixture::expecting_eperm");
    check(
        o == "fail"
            && reason.contains("step 1 (spawn): ")
            && reason.contains("expected EPERM, observed EINVAL"),
        || format!("expecting EPERM: {o}: {reason}"),
    )?;
    check(out.status.code() == Some(101), || {
        format!("exit {:?}", out.status)
    })?;
    nothing_left(&vm_tmp)
}

fn main() {
    let args = Arguments::from_args();
    let dir = tempfile::tempdir().unwrap();
    let not_a_kernel = dir.path().join("vmlinuz");
    std::fs::write(&not_a_kernel, "#!/bin/sh\necho I am not a kernel\n").unwrap();
    let unknown_key = dir.path().join("kernels.yaml");
    std::fs::write(
        &unknown_key,
        "kernels:\n  - name: a\n    path: vmlinuz\n    colour: red\n",
    )
    .unwrap();
    // A boot-protocol header and nothing else: it passes the image check, so
    // the only thing left to refuse is the missing QEMU.
    let header_only = dir.path().join("bzImage");
    let mut header = vec![0u8; 4096];
    header[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    header[0x202..0x206].copy_from_slice(b"HdrS");
    std::fs::write(&header_only, header).unwrap();
    let header_only = header_only.to_string_lossy().into_owned();
    let (not_a_kernel, unknown_key) = (
        not_a_kernel.to_string_lossy().into_owned(),
        unknown_key.to_string_lossy().into_owned(),
    );
    let nk = not_a_kernel.clone();
    let uk = unknown_key.clone();
    let trials = vec![
        vm_trial(
            "vm::a_debian_kernel_runs_memfd_and_subreaper",
            single_kernel_run,
        ),
        vm_trial(
            "vm::matrix_shows_missing_pid_namespaces_a_panic_and_init_exiting",
            matrix_with_a_panicking_kernel,
        ),
        vm_trial(
            "vm::scenarios_side_by_side_keep_their_verdicts",
            scenarios_side_by_side,
        ),
        vm_trial(
            "vm::kernels_lacking_pid_namespaces_or_subreapers",
            kernels_lacking_pid_namespaces_or_subreapers,
        ),
        vm_trial("vm::ctrl_c_leaves_no_qemu", interrupt_kills_qemu),
        vm_trial(
            "vm::clone_parent_from_the_global_init_gets_einval",
            clone_parent_from_the_global_init,
        ),
        vm_trial(
            "vm::one_console_carries_results_and_a_guest_that_stays_up_is_stopped",
            one_console_and_a_guest_that_stays_up,
        ),
        vm_trial(
            "vm::explore_runs_generated_trees_in_one_boot",
            explore_in_a_vm,
        ),
        vm_trial(
            "vm::explore_shrinks_in_a_vm_in_few_boots",
            explore_shrinks_in_a_vm_in_few_boots,
        ),
        vm_trial_on(
            TINY_KERNEL,
            "vm::tiny_kernel_without_pid_namespaces_reports_over_hvc0_alone",
            tiny_kernel_over_hvc0_without_pid_namespaces,
        ),
        Trial::test("vm::bad_input::not_a_kernel_image", move || {
            bad_input(&["--kernel", &nk], &[], "not a kernel image")
        }),
        Trial::test("vm::bad_input::unknown_key_in_kernels_file", move || {
            bad_input(&["--kernels", &uk], &[], "unknown field `colour`")
        }),
        Trial::test("vm::bad_input::qemu_missing", move || {
            bad_input(
                &["--kernel", &header_only],
                &[("PATH", "/nonexistent")],
                "qemu-system-x86_64: not found on PATH",
            )
        }),
        Trial::test("vm::bad_input::kernel_build_tools_missing", move || {
            // An empty cache, so the build is needed, and no tool on PATH:
            // one line naming the packages, before anything is downloaded.
            let cache = tempfile::tempdir().unwrap();
            let cache_path = cache.path().to_string_lossy().into_owned();
            bad_input(
                &["kernels", "fetch", TINY_KERNEL],
                &[("PATH", "/nonexistent"), ("XDG_CACHE_HOME", &cache_path)],
                "kernel tiny-6.1 is built from source, which needs Debian packages this machine lacks: apt-get install make gcc flex bison bc xz-utils",
            )?;
            let left: Vec<_> = std::fs::read_dir(cache.path().join("orphanage"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            check(left.is_empty(), || format!("left in the cache: {left:?}"))
        }),
        Trial::test("vm::bad_input::unknown_kernel_name", || {
            bad_input(&["kernels", "path", "9.99"], &[], "no kernel named 9.99")
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}
