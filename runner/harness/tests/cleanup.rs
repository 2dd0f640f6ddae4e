//! Leave nothing behind: after a pass, a fail, a timeout, Ctrl-C or SIGTERM
//! there is no process, zombie, mount or temporary directory of ours left.
//! Each run is marked with a unique environment variable that every agent and
//! scenario process inherits; zombies (whose environment is gone) are found by
//! the agent's name. The tests take turns: each scans the whole process table.

mod common;

use common::{orphanage, repo, run_with_report, suite_of};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn marker() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_bits()
    )
}

fn rand_bits() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Our processes still alive (by marker) or still zombies (by name), excluding `except`.
fn leftovers(marker: &str, except: Option<i32>) -> Vec<String> {
    let needle = format!("ORPHANAGE_TEST_MARKER={marker}");
    let mut found = Vec::new();
    for p in procfs::process::all_processes().unwrap().flatten() {
        if Some(p.pid) == except || p.pid == std::process::id() as i32 {
            continue;
        }
        let Ok(stat) = p.stat() else { continue };
        let marked = p
            .environ()
            .map(|env| {
                env.iter().any(|(k, v)| {
                    format!("{}={}", k.to_string_lossy(), v.to_string_lossy()) == needle
                })
            })
            .unwrap_or(false);
        let zombie_agent = stat.state == 'Z' && stat.comm == "orphanage-agent";
        if marked || zombie_agent {
            found.push(format!("pid {} {} state {}", p.pid, stat.comm, stat.state));
        }
    }
    found
}

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

fn temp_dirs() -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("orphanage-"))
        .count()
}

fn assert_clean(marker: &str, mounts_before: &str, temps_before: usize) {
    let left = leftovers(marker, None);
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert_eq!(mounts(), mounts_before, "the mount table changed");
    assert_eq!(temp_dirs(), temps_before, "a temporary directory was left");
}

fn check_run_leaves_nothing(suites: &std::path::Path, extra: &[&str]) -> common::Run {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (m, before, temps) = (marker(), mounts(), temp_dirs());
    let run = run_with_report(suites, extra, &[("ORPHANAGE_TEST_MARKER", &m)]);
    assert_clean(&m, &before, temps);
    run
}

#[test]
fn a_passing_run_leaves_nothing_behind() {
    let run = check_run_leaves_nothing(&repo().join("suites"), &[]);
    assert_eq!(run.code(), Some(0), "{}", run.stdout());
}

#[test]
fn a_failing_run_leaves_nothing_behind() {
    let run = check_run_leaves_nothing(&repo().join("fixtures/wrong"), &[]);
    assert_eq!(run.code(), Some(101));
}

#[test]
fn a_crash_leaves_nothing_behind() {
    check_run_leaves_nothing(&repo().join("fixtures/crash"), &[]);
}

#[test]
fn timeouts_leave_nothing_behind_in_either_namespace() {
    let hang = repo().join("fixtures/hang/agent");
    let suite = suite_of(&[
        (
            &hang.join("forever.yaml"),
            Some(("deadline: 60s", "deadline: 1s")),
        ),
        (
            &hang.join("forever_in_caller_namespace.yaml"),
            Some(("deadline: 60s", "deadline: 1s")),
        ),
    ]);
    let run = check_run_leaves_nothing(suite.path(), &[]);
    for r in run.report["results"].as_array().unwrap() {
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("timeout after 1 s"),
            "{r}"
        );
    }
}

/// Starts orphanage on `suites`, waits until `ready` of our processes exist,
/// sends `signal`, and checks the exit status and that nothing is left.
fn interrupt_leaves_nothing(
    signal: libc::c_int,
    suites: &std::path::Path,
    extra: &[&str],
    ready: usize,
) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (m, before, temps) = (marker(), mounts(), temp_dirs());
    let mut child = orphanage()
        .arg("--suites")
        .arg(suites)
        .args(extra)
        .env("ORPHANAGE_TEST_MARKER", &m)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id() as i32;
    let start = Instant::now();
    while leftovers(&m, Some(harness)).len() < ready {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "trees never appeared: {:?}",
            leftovers(&m, Some(harness))
        );
        std::thread::sleep(Duration::from_millis(10)); // polling for an external process, within a deadline
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(harness, signal) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + signal), "exit status {status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("running scenario tree(s)"), "{stderr}");
    assert_clean(&m, &before, temps);
}

// Both hang trees fully built: 5 processes in the fresh namespace, 4 in ours.
#[test]
fn ctrl_c_kills_every_tree_and_leaves_nothing_behind() {
    interrupt_leaves_nothing(libc::SIGINT, &repo().join("fixtures/hang"), &[], 9);
}

#[test]
fn sigterm_kills_every_tree_and_leaves_nothing_behind() {
    interrupt_leaves_nothing(libc::SIGTERM, &repo().join("fixtures/hang"), &[], 9);
}

/// An interrupt while trees are still being started (many threads, many
/// scenarios) must not let one slip past the cleanup.
#[test]
fn an_interrupt_while_trees_are_starting_leaves_nothing_behind() {
    let hang = repo().join("fixtures/hang/agent");
    let fast = repo().join("fixtures/crash/agent/still_runs.yaml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("many")).unwrap();
    for i in 0..20 {
        for (src, name) in [
            (hang.join("forever.yaml"), "forever"),
            (hang.join("forever_in_caller_namespace.yaml"), "caller"),
            (fast.clone(), "fast"),
        ] {
            std::fs::copy(&src, dir.path().join(format!("many/{name}_{i}.yaml"))).unwrap();
        }
    }
    interrupt_leaves_nothing(libc::SIGTERM, dir.path(), &["--test-threads", "16"], 1);
}

/// Ctrl-C in the middle of an exploration: every tree is killed, nothing is
/// left, and the seed and case to resume from are printed.
#[test]
fn ctrl_c_during_explore_leaves_nothing_and_says_how_to_resume() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (m, before, temps) = (marker(), mounts(), temp_dirs());
    let save = tempfile::tempdir().unwrap();
    let mut child = orphanage()
        .args([
            "explore",
            "--cases",
            "100000000",
            "--seed",
            "0x9",
            "--save-to",
        ])
        .arg(save.path())
        .env("ORPHANAGE_TEST_MARKER", &m)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id() as i32;
    let start = Instant::now();
    while leftovers(&m, Some(harness)).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no tree ever appeared"
        );
        std::thread::sleep(Duration::from_millis(1)); // polling for an external process, within a deadline
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(harness, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit status {status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("resume with: orphanage explore --seed 0x9 --processes 8 --from-case "),
        "{stderr}"
    );
    assert_clean(&m, &before, temps);
}
