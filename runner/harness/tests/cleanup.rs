//! Leave nothing behind: after a pass, a fail, a timeout, Ctrl-C or SIGTERM
//! there is no process, zombie, mount or temporary directory of ours left.
//!
//! Only what these runs made is checked, so another orphanage running on the
//! machine cannot fail them. Each run gets a private TMPDIR, where the harness
//! puts everything temporary. This test process is a child subreaper, so
//! whatever a run leaves, running or a zombie, becomes a descendant of this
//! process once the harness is gone, instead of init's. And each run is marked
//! with a unique environment variable that every agent and scenario process
//! inherits, which finds a live process of ours wherever it ended up. The
//! tests take turns: each claims every descendant of this process.

mod common;

use common::{orphanage, repo, run_with_report, suite_of};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MARKER: &str = "ORPHANAGE_TEST_MARKER";

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

/// A process as /proc shows it.
struct Proc {
    pid: i32,
    ppid: i32,
    comm: String,
    state: char,
    marked: bool,
}

impl Proc {
    fn describe(&self) -> String {
        format!("pid {} {} state {}", self.pid, self.comm, self.state)
    }
}

/// Every process on the machine; `marked` when it carries `marker` (a
/// zombie has no environment left, and is never marked).
fn processes(marker: &str) -> Vec<Proc> {
    let needle = format!("{MARKER}={marker}");
    procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter_map(|p| {
            let stat = p.stat().ok()?;
            let marked = p.environ().is_ok_and(|env| {
                env.iter().any(|(k, v)| {
                    format!("{}={}", k.to_string_lossy(), v.to_string_lossy()) == needle
                })
            });
            Some(Proc {
                pid: stat.pid,
                ppid: stat.ppid,
                comm: stat.comm,
                state: stat.state,
                marked,
            })
        })
        .collect()
}

/// The processes below this one, by their parent links.
fn descendants(all: &[Proc]) -> Vec<&Proc> {
    let me = std::process::id() as i32;
    let parent: HashMap<i32, i32> = all.iter().map(|p| (p.pid, p.ppid)).collect();
    let below_me = |mut pid: i32| {
        // Bounded: a table read while it changes could hold a loop.
        for _ in 0..all.len() {
            match parent.get(&pid) {
                Some(&ppid) if ppid == me => return true,
                Some(&ppid) if ppid > 0 => pid = ppid,
                _ => return false,
            }
        }
        false
    };
    all.iter().filter(|p| below_me(p.pid)).collect()
}

/// Processes of this run still there, running or zombies.
fn leftovers(marker: &str) -> Vec<String> {
    let all = processes(marker);
    let mut left: Vec<&Proc> = descendants(&all);
    left.extend(all.iter().filter(|p| p.marked));
    left.sort_by_key(|p| p.pid);
    left.dedup_by_key(|p| p.pid);
    left.into_iter().map(Proc::describe).collect()
}

/// This run's processes, running, that carry its marker.
fn marked(marker: &str, except: i32) -> Vec<Proc> {
    processes(marker)
        .into_iter()
        .filter(|p| p.marked && p.pid != except)
        .collect()
}

/// Kills and reaps whatever a run left below us (after it is recorded), so
/// that one test's leak is not the next one's. Our children first: their
/// pids stay ours until reaped, and their children then come to us.
fn clear_descendants() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = processes("");
        let below = descendants(&all);
        if below.is_empty() || Instant::now() > deadline {
            return;
        }
        let me = std::process::id() as i32;
        for p in below.iter().filter(|p| p.ppid == me) {
            // SAFETY: signalling and reaping our own unreaped child.
            unsafe {
                libc::kill(p.pid, libc::SIGKILL);
                libc::waitpid(p.pid, std::ptr::null_mut(), libc::__WALL);
            }
        }
        // A poll interval within the deadline while grandchildren come to us.
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// One run's private TMPDIR and marker, and the mount table before it.
struct Isolated {
    tmp: tempfile::TempDir,
    marker: String,
    mounts_before: String,
}

impl Isolated {
    fn new() -> Self {
        // SAFETY: prctl with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
        Isolated {
            tmp: tempfile::tempdir().unwrap(),
            marker: marker(),
            mounts_before: mounts(),
        }
    }

    fn env(&self) -> [(&str, &str); 2] {
        [
            ("TMPDIR", self.tmp.path().to_str().unwrap()),
            (MARKER, &self.marker),
        ]
    }

    fn command(&self) -> std::process::Command {
        let mut c = orphanage();
        c.envs(self.env());
        c
    }

    /// Waits until `ready` of the run's processes exist, one of them an
    /// agent, and checks that the agents run from the private TMPDIR, where
    /// the emptiness check looks.
    fn wait_for(&self, harness: i32, ready: usize) {
        let start = Instant::now();
        loop {
            let found = marked(&self.marker, harness);
            // A clone of the harness that has not exec'd yet is no agent.
            let agents: Vec<PathBuf> = found
                .iter()
                .filter_map(|p| std::fs::read_link(format!("/proc/{}/exe", p.pid)).ok())
                .filter(|exe| exe.ends_with("orphanage-agent"))
                .collect();
            if found.len() >= ready && !agents.is_empty() {
                assert!(
                    agents.iter().all(|exe| exe.starts_with(self.tmp.path())),
                    "agents not run from the private TMPDIR {}: {agents:?}",
                    self.tmp.path().display()
                );
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "trees never appeared: {:?}",
                found.iter().map(Proc::describe).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(1)); // polling for an external process, within a deadline
        }
    }

    fn assert_clean(&self) {
        let left = leftovers(&self.marker);
        clear_descendants();
        assert!(left.is_empty(), "left behind: {left:#?}");
        assert_eq!(mounts(), self.mounts_before, "the mount table changed");
        let temps: Vec<PathBuf> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(temps.is_empty(), "temporary files left: {temps:?}");
    }
}

impl Drop for Isolated {
    /// A test that failed half-way (its harness still running, say) must
    /// not leave its processes to the next test's check.
    fn drop(&mut self) {
        clear_descendants();
    }
}

fn check_run_leaves_nothing(suites: &Path, extra: &[&str]) -> common::Run {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let iso = Isolated::new();
    let run = run_with_report(suites, extra, &iso.env());
    iso.assert_clean();
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

/// Under subreaper roots (`--no-pid-namespace`) no pid namespace's end
/// kills a tree: the holder above each root kills and reaps what is left,
/// and the harness kills the rest by process group and start time.
#[test]
fn runs_under_subreaper_roots_leave_nothing_behind() {
    let run = check_run_leaves_nothing(&repo().join("suites"), &["--no-pid-namespace"]);
    assert_eq!(run.code(), Some(0), "{}", run.stdout());
    let run = check_run_leaves_nothing(&repo().join("fixtures/wrong"), &["--no-pid-namespace"]);
    assert_eq!(run.code(), Some(101));
    let run = check_run_leaves_nothing(&repo().join("fixtures/crash"), &["--no-pid-namespace"]);
    let crashed = run.result("agent::store_to_readonly_mapping");
    assert_eq!(crashed["outcome"], "broken");
    assert!(
        crashed["reason"].as_str().unwrap().contains("SIGSEGV"),
        "the holder ends as its root did: {crashed}"
    );
}

/// Without subreapers (a seccomp filter on orphanage refuses
/// PR_SET_CHILD_SUBREAPER) the harness adopts nothing: cleanup rests on pid
/// namespaces, process groups and pidfds alone. This test process stays a
/// subreaper, so whatever escaped would still be found here. It stands in for
/// init, which on such a kernel inherits the killed orphans of a caller's
/// namespace scenario: those may wait here as zombies for it to reap, and
/// nothing else may be left, running or a zombie.
#[cfg(target_arch = "x86_64")]
#[test]
fn runs_without_subreapers_leave_nothing_behind() {
    use std::os::unix::process::CommandExt;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let hang = repo().join("fixtures/hang/agent");
    let timeouts = suite_of(&[
        (
            &hang.join("forever.yaml"),
            Some(("deadline: 60s", "deadline: 1s")),
        ),
        (
            &hang.join("forever_in_caller_namespace.yaml"),
            Some(("deadline: 60s", "deadline: 1s")),
        ),
        (
            &repo().join("fixtures/leftover/agent/detached_daemon_then_forever.yaml"),
            Some(("deadline: 60s", "deadline: 1s")),
        ),
    ]);
    for suites in [repo().join("suites"), timeouts.path().to_path_buf()] {
        let iso = Isolated::new();
        let program = orphanage_agent_io::Lacks {
            subreapers: true,
            ..Default::default()
        }
        .program();
        let mut cmd = iso.command();
        cmd.arg("--suites").arg(&suites).arg("-q");
        // SAFETY: only prctl and seccomp between fork and exec.
        unsafe { cmd.pre_exec(move || orphanage_agent_io::install_filter(&program)) };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let expected = if suites.ends_with("suites") { 0 } else { 101 };
        assert_eq!(out.status.code(), Some(expected), "{stdout}");
        let me = std::process::id() as i32;
        let all = processes(&iso.marker);
        let init_reaps = |p: &Proc| p.state == 'Z' && p.ppid == me;
        let handed_to_init = descendants(&all)
            .into_iter()
            .filter(|p| init_reaps(p))
            .count();
        let mut left: Vec<&Proc> = descendants(&all);
        left.extend(all.iter().filter(|p| p.marked));
        let left: Vec<String> = left
            .into_iter()
            .filter(|p| !init_reaps(p))
            .map(Proc::describe)
            .collect();
        assert!(left.is_empty(), "left behind: {left:#?}");
        // Reaps what init would have; the rest of the check (mounts, temporary files) follows.
        clear_descendants();
        iso.assert_clean();
        eprintln!(
            "{}: {handed_to_init} killed orphans were left to init to reap",
            suites.display()
        );
    }
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
        // A detached daemon outlives the agent: only its report gets it killed.
        (
            &repo().join("fixtures/leftover/agent/detached_daemon_then_forever.yaml"),
            Some(("deadline: 60s", "deadline: 1s")),
        ),
    ]);
    for extra in [&[][..], &["--no-pid-namespace"]] {
        let run = check_run_leaves_nothing(suite.path(), extra);
        for r in run.report["results"].as_array().unwrap() {
            assert!(
                r["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("timeout after 1 s"),
                "{extra:?}: {r}"
            );
        }
    }
}

/// Starts orphanage on `suites`, waits until `ready` of our processes exist,
/// sends `signal`, and checks the exit status and that nothing is left.
fn interrupt_leaves_nothing(signal: libc::c_int, suites: &Path, extra: &[&str], ready: usize) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let iso = Isolated::new();
    let mut child = iso
        .command()
        .arg("--suites")
        .arg(suites)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id() as i32;
    iso.wait_for(harness, ready);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(harness, signal) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + signal), "exit status {status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("running scenario tree(s)"), "{stderr}");
    iso.assert_clean();
}

// Both hang trees fully built: 5 processes in the fresh namespace, 4 in ours.
#[test]
fn ctrl_c_kills_every_tree_and_leaves_nothing_behind() {
    interrupt_leaves_nothing(libc::SIGINT, &repo().join("fixtures/hang"), &[], 9);
}

// Under a subreaper root the fresh tree has one more: the holder above its root.
#[test]
fn ctrl_c_kills_every_tree_under_subreaper_roots_and_leaves_nothing_behind() {
    interrupt_leaves_nothing(
        libc::SIGINT,
        &repo().join("fixtures/hang"),
        &["--no-pid-namespace"],
        10,
    );
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
    let iso = Isolated::new();
    let save = tempfile::tempdir().unwrap();
    let mut child = iso
        .command()
        .args([
            "explore",
            "--cases",
            "100000000",
            "--seed",
            "0x9",
            "--save-to",
        ])
        .arg(save.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id() as i32;
    iso.wait_for(harness, 1);
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
    iso.assert_clean();
}
