//! The container's processes as the host sees them. Each is pinned when it is
//! reported, by a pidfd and its start time, so that no later check can be
//! fooled by a recycled pid.

use nix::errno::Errno;
use orphanage_scenario::{GoneProbe, ProcStat};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// A reported process that had exited (and been reaped) before the harness
/// could pin it: it is gone, which some checks take as an answer.
#[derive(Debug, thiserror::Error)]
#[error("{name} (host pid {pid}) was gone before the harness could watch it")]
pub struct GoneBeforePinned {
    pub name: String,
    pub pid: i32,
}

/// A container process, pinned.
pub struct Watched {
    pub name: String,
    /// Its pid in the host's pid namespace.
    pub pid: i32,
    pub start_time: u64,
    pidfd: Option<OwnedFd>,
}

/// NSpid from /proc/PID/status: the pid in each namespace, outermost first.
pub fn nspid(status: &str) -> Vec<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a /proc/PID/status says SIGKILL is pending, for the thread
/// (SigPnd) or the whole process (ShdPnd): its death has begun.
pub fn sigkill_pending(status: &str) -> bool {
    let kill_bit = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| {
        ["SigPnd:", "ShdPnd:"].iter().any(|field| {
            l.strip_prefix(field)
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .is_some_and(|mask| mask & kill_bit != 0)
        })
    })
}

/// PF_EXITING in /proc/PID/stat's flags: set by do_exit() as the exit begins.
const PF_EXITING: u64 = 0x4;

/// /proc/PID/stat, read now: None once the process is reaped.
pub fn stat(pid: i32) -> Option<ProcStat> {
    ProcStat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// How far below a foreground `run` its container's init may be: its child
/// for runc, crun, youki and runsc alike; a wrapper that runs the real
/// runtime as its child, not by exec, adds a generation, and a runtime that
/// re-executes itself another.
pub const UNDER_A_FOREGROUND_RUN: usize = 3;

/// How far below the harness the init may be after `run --detach`: the
/// harness's child, adopted, or a runtime helper's that has not exited yet
/// (crun's may lag), the helper adopted.
pub const UNDER_THE_HARNESS: usize = 2;

/// The start time of `pid` if `ancestor` is its parent, or its parent's,
/// up to `generations` up (`parent_of` gives a process's parent and start
/// time as /proc shows them now). With `ancestor` a process whose pid
/// cannot change meanwhile (our unreaped child, or ourselves), a process
/// found under it is one of its own, not one that took the pid after the
/// init was reaped, nor one the runtime merely named; its start time pins
/// it from here on.
pub fn start_under(
    pid: i32,
    ancestor: i32,
    generations: usize,
    parent_of: impl Fn(i32) -> Option<(i32, u64)>,
) -> Option<u64> {
    let (mut parent, start) = parent_of(pid)?;
    for _ in 0..generations {
        if parent == ancestor {
            return Some(start);
        }
        if parent <= 1 {
            return None;
        }
        parent = parent_of(parent)?.0;
    }
    None
}

/// The host pid of the process that has `inner` as its pid in the pid
/// namespace of `init` (a host pid): same cgroups as the init, and `inner` at
/// the init's depth in NSpid, so processes in namespaces nested inside the
/// container are found too. `members` are the pids of the init's cgroup
/// (its cgroup.procs, read after the process was reported): a process with
/// the init's cgroups is among them if it is alive at all, so only they are
/// looked at, a handful of files where every process on the host is
/// hundreds. All of /proc when they are unknown (None), or when they do not
/// list the init: then they were read from a hierarchy that is not the
/// init's (a hybrid host has several), or the init is gone, and a process
/// missing from them proves nothing.
pub fn host_pid(inner: i32, init: i32, members: Option<&[i32]>) -> Option<i32> {
    let cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).ok()?;
    let depth = nspid(&std::fs::read_to_string(format!("/proc/{init}/status")).ok()?).len();
    let is_it = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| depth > 0 && nspid(&s).get(depth - 1) == Some(&inner))
            && std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .ok()
                .as_ref()
                == Some(&cgroups)
    };
    match members {
        Some(members) if members.contains(&init) => members.iter().copied().find(|&pid| is_it(pid)),
        _ => std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|&pid| is_it(pid)),
    }
}

/// Whether `ancestor` is among the parents, grandparents and so on of
/// `pid`, as /proc says now. False once the chain ends (pid 1, the
/// namespace's edge, or a process gone meanwhile).
pub fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut at = pid;
    // A chain cannot be longer than the processes alive; this bound only
    // guards against a loop read across pid reuse.
    for _ in 0..4096 {
        match stat(at) {
            Some(s) if s.ppid == ancestor => return true,
            Some(s) if s.ppid > 1 => at = s.ppid,
            _ => return false,
        }
    }
    false
}

/// Whether a command line (/proc/PID/cmdline: arguments ending in NULs)
/// passes `bundle` as its `--bundle`, in any form Go's flag package reads
/// (`--bundle X`, `--bundle=X`, one dash or two): runsc's sandbox and gofer
/// do, with the path their `run` was given.
pub fn names_bundle(cmdline: &[u8], bundle: &[u8]) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.iter().enumerate().any(|(i, arg)| {
        let flag = arg.strip_prefix(b"--").or_else(|| arg.strip_prefix(b"-"));
        match flag {
            Some(b"bundle") => args.get(i + 1) == Some(&bundle),
            Some(f) => f.strip_prefix(b"bundle=") == Some(bundle),
            None => false,
        }
    })
}

/// `roots` and every process below them in `table` (pid and parent pid of
/// each process), each once, roots first.
pub fn with_descendants(table: &[(i32, i32)], roots: &[i32]) -> Vec<i32> {
    let mut found: Vec<i32> = roots.to_vec();
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        for &(pid, ppid) in table {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
            }
        }
        at += 1;
    }
    found
}

/// The host processes of a sandbox that has no cgroup of its own (a
/// rootless runsc makes none): those whose command line names its bundle,
/// and everything below them (the platform's stub processes), as /proc
/// shows them now.
pub fn naming_bundle(bundle: &std::path::Path) -> Vec<i32> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut table = Vec::new();
    let mut roots = Vec::new();
    for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        let Some(s) = stat(pid) else { continue };
        table.push((pid, s.ppid));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if names_bundle(&cmdline, bundle.as_os_str().as_bytes()) {
            roots.push(pid);
        }
    }
    with_descendants(&table, &roots)
}

/// The parent of `pid` (which started at `start_time`), once it is `me` or
/// `within` has passed: each parent that is not `me` is watched by a pidfd
/// until it exits, for a runtime's `run` may return a moment before its
/// helper, the init's parent until then, has exited (crun's does). None if
/// `pid` is gone, or is no longer the process that started then.
pub fn parent_once_adopted(pid: i32, start_time: u64, me: i32, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        let parent = stat(pid).filter(|s| s.start_time == start_time)?.ppid;
        if parent == me {
            return Some(parent);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let fd = match orphanage_agent_io::pidfd_open(parent) {
            Ok(fd) => fd,
            // Gone between the two looks: look again.
            Err(nix::errno::Errno::ESRCH) if !left.is_zero() => continue,
            // No pidfds (before 5.3), or none to spare: no waiting, the
            // parent as it is.
            Err(_) => return Some(parent),
        };
        // Still the parent, now that the pidfd pins it?
        match stat(pid).filter(|s| s.start_time == start_time) {
            Some(s) if s.ppid == parent => {}
            Some(_) => continue,
            None => return None,
        }
        if left.is_zero() || !orphanage_agent_io::pidfd_exited(fd.as_fd(), left.as_millis() as i32)
        {
            return Some(parent);
        }
    }
}

impl Watched {
    /// Pins `pid` if it is still the process that started at `start_time`.
    pub fn pin(name: &str, pid: i32, start_time: u64) -> Result<Watched, GoneBeforePinned> {
        let pidfd = orphanage_agent_io::pidfd_open(pid).ok();
        // Checked after the pidfd is taken: if the start time still matches,
        // the pidfd refers to the reported process.
        match stat(pid) {
            Some(s) if s.start_time == start_time => Ok(Watched {
                name: name.to_string(),
                pid,
                start_time,
                pidfd,
            }),
            _ => Err(GoneBeforePinned {
                name: name.to_string(),
                pid,
            }),
        }
    }

    pub fn has_pidfd(&self) -> bool {
        self.pidfd.is_some()
    }

    /// Still running, as the given probe sees it. A zombie has finished:
    /// it is dead, only not yet reaped.
    pub fn alive(&self, via: GoneProbe) -> bool {
        match (via, &self.pidfd) {
            (GoneProbe::Pidfd, Some(fd)) => !orphanage_agent_io::pidfd_exited(fd.as_fd(), 0),
            _ => {
                // SAFETY: signal 0 only checks existence.
                if unsafe { libc::kill(self.pid, 0) } != 0 && Errno::last() == Errno::ESRCH {
                    return false;
                }
                // kill -0 succeeds on a zombie and on whoever took the pid since.
                stat(self.pid).is_some_and(|s| {
                    s.start_time == self.start_time && s.state != 'Z' && s.state != 'X'
                })
            }
        }
    }

    /// Why it is not living on, if it is not: it has exited, or it is dying
    /// (a SIGKILL pending, which the kernel queues for a group exit by most
    /// fatal signals too; or, once that is taken, PF_EXITING set as its
    /// exit begins). A runtime's `kill` returns once the signal is queued,
    /// not once the process is dead: under load, a process killed a moment
    /// ago may not have run its exit yet, and is not alive all the same.
    pub fn not_living_on(&self) -> Option<&'static str> {
        // Read before the exit is looked for: if it has not exited then,
        // the pid was still its own when these were read.
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid));
        let exiting = stat(self.pid).is_some_and(|s| s.flags & PF_EXITING != 0);
        if !self.alive(GoneProbe::Pidfd) {
            return Some("exited");
        }
        match status {
            Ok(status) if sigkill_pending(&status) => Some("dying: SIGKILL pending"),
            _ if exiting => Some("dying: its exit has begun"),
            _ => None,
        }
    }

    /// Reaps it if it has exited and is our child (a sandbox's helper the
    /// harness inherited), without waiting; through its pidfd, so never
    /// another process. False otherwise (running, not ours, no pidfd).
    pub fn reap_if_exited_child(&self) -> bool {
        let Some(fd) = &self.pidfd else {
            return false;
        };
        // SAFETY: a zeroed siginfo is valid; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(P_PIDFD) on a pidfd we hold, not waiting.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::__WALL,
            )
        };
        // SAFETY: si_pid is set when waitid reaped a child.
        r == 0 && unsafe { info.si_pid() } != 0
    }

    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }
}

/// Waits until every watched process is gone, via `via`, or `within` passes.
/// With pidfds it blocks in poll(2) on them; with kill -0 it polls at an
/// interval that starts at 20 µs and doubles to 1 ms. Returns how long it
/// took, or the names still alive at the deadline.
pub fn until_gone(
    watched: &[&Watched],
    via: GoneProbe,
    within: Duration,
    extra_alive: &mut dyn FnMut() -> Vec<String>,
) -> Result<Duration, Vec<String>> {
    let start = Instant::now();
    let mut interval = Duration::from_micros(20);
    loop {
        let mut alive: Vec<String> = watched
            .iter()
            .filter(|w| w.alive(via))
            .map(|w| w.name.clone())
            .collect();
        if alive.is_empty() {
            alive = extra_alive();
        }
        if alive.is_empty() {
            return Ok(start.elapsed());
        }
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(alive);
        }
        let fds: Vec<libc::pollfd> = watched
            .iter()
            .filter(|w| via == GoneProbe::Pidfd && w.alive(via))
            .filter_map(|w| w.pidfd())
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if !fds.is_empty() && fds.len() == watched.iter().filter(|w| w.alive(via)).count() {
            let mut fds = fds;
            // SAFETY: valid pollfds; woken by the first exit, or at the deadline.
            unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    left.as_millis().clamp(1, i32::MAX as u128) as i32,
                )
            };
        } else {
            // A poll interval against the deadline, not a synchronisation point.
            std::thread::sleep(interval.min(left));
            interval = (interval * 2).min(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::parent_and_start;
    use rstest::rstest;
    use std::collections::HashMap;

    /// (parent, start time) by pid, as /proc would show them.
    fn tree(rows: &[(i32, i32, u64)]) -> impl Fn(i32) -> Option<(i32, u64)> {
        let by_pid: HashMap<i32, (i32, u64)> = rows
            .iter()
            .map(|&(pid, parent, start)| (pid, (parent, start)))
            .collect();
        move |pid| by_pid.get(&pid).copied()
    }

    #[rstest::rstest]
    // The init is the run's child (runc, crun, youki, runsc).
    #[case(&[(30, 20, 7), (20, 10, 5)], 30, 20, 1, Some(7))]
    // A wrapper ran the real runtime as its child.
    #[case(&[(30, 25, 7), (25, 20, 6), (20, 10, 5)], 30, 20, 2, Some(7))]
    // As many generations as allowed, and one more.
    #[case(&[(30, 27, 7), (27, 26, 6), (26, 20, 6)], 30, 20, 3, Some(7))]
    #[case(&[(30, 27, 7), (27, 26, 6), (26, 20, 6)], 30, 20, 2, None)]
    // The pid is someone else's now: its line of parents never meets the run.
    #[case(&[(30, 1, 9), (20, 10, 5)], 30, 20, 3, None)]
    #[case(&[(30, 40, 9), (40, 1, 8), (20, 10, 5)], 30, 20, 3, None)]
    // Gone, or a parent gone in between.
    #[case(&[(20, 10, 5)], 30, 20, 3, None)]
    #[case(&[(30, 25, 7), (20, 10, 5)], 30, 20, 3, None)]
    fn an_init_counts_only_under_its_run_or_the_harness(
        #[case] rows: &[(i32, i32, u64)],
        #[case] pid: i32,
        #[case] ancestor: i32,
        #[case] generations: usize,
        #[case] start: Option<u64>,
    ) {
        assert_eq!(start_under(pid, ancestor, generations, tree(rows)), start);
    }

    #[test]
    fn a_real_child_and_grandchild_are_under_their_ancestor_and_nobody_else_is() {
        use std::io::BufRead;
        // sh runs sh, which runs sleep: `sleep` is the outer sh's grandchild.
        let mut run = std::process::Command::new("sh")
            .args(["-c", "sh -c 'sleep 30 & echo $!; wait' & wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(run.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let init: i32 = line.trim().parse().unwrap();
        let outer = run.id() as i32;
        let inner = parent_and_start(init).map(|(parent, _)| parent);
        let found = start_under(init, outer, 2, parent_and_start);
        let one_too_few = start_under(init, outer, 1, parent_and_start);
        let by_inner = inner.and_then(|i| start_under(init, i, 1, parent_and_start));
        let started = stat(init).map(|s| s.start_time);
        let not_under_it = start_under(std::process::id() as i32, outer, 2, parent_and_start);
        // SAFETY: each is alive until signalled here (the inner `sh` waits
        // for `sleep`, which lives 30 s), so each pid is still its own: the
        // inner `sh` first, while `sleep` keeps it waiting; then `sleep`,
        // orphaned but alive; then our own child.
        if let Some(inner) = inner.filter(|&i| parent_and_start(i).map(|(p, _)| p) == Some(outer)) {
            unsafe { libc::kill(inner, libc::SIGKILL) };
        }
        unsafe { libc::kill(init, libc::SIGKILL) };
        run.kill().unwrap();
        run.wait().unwrap();
        assert!(found.is_some());
        assert_eq!(found, started);
        assert_eq!(by_inner, started);
        assert_eq!(one_too_few, None);
        assert_eq!(not_under_it, None);
    }

    #[test]
    fn nspid_reads_every_level() {
        let status = "Name:\tx\nNSpid:\t4242\t7\t1\nPPid:\t1\n";
        assert_eq!(nspid(status), [4242, 7, 1]);
        assert!(nspid("Name:\tx\n").is_empty());
    }

    #[test]
    fn host_pid_finds_a_process_among_the_members_or_else_in_proc() {
        // A child of this test, in the pid namespace this test is in, with
        // this test as the "init" whose cgroups and depth it shares.
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let inner = *nspid(&status).last().unwrap();
        assert_eq!(host_pid(inner, me, Some(&[me, pid])), Some(pid));
        // A list that holds the init is complete: not there, not alive.
        assert_eq!(host_pid(inner, me, Some(&[me])), None);
        // A list without the init proves nothing (another hierarchy's, or
        // read after the init died): all of /proc.
        assert_eq!(host_pid(inner, me, Some(&[1])), Some(pid));
        assert_eq!(host_pid(inner, me, None), Some(pid));
        assert_eq!(host_pid(-5, me, None), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[rstest::rstest]
    #[case("SigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n", false)]
    #[case("SigPnd:\t0000000000000100\nShdPnd:\t0000000000000000\n", true)]
    #[case("SigPnd:\t0000000000000000\nShdPnd:\t0000000000004100\n", true)]
    // SIGTERM (bit 15) pending is not yet a death.
    #[case("SigPnd:\t0000000000004000\nShdPnd:\t0000000000004000\n", false)]
    #[case("", false)]
    fn a_pending_sigkill_is_read_from_either_mask(#[case] status: &str, #[case] pending: bool) {
        assert_eq!(sigkill_pending(status), pending);
    }

    #[test]
    fn a_killed_process_is_not_living_on_from_the_moment_kill_returns() {
        use std::process::Command;
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let w = Watched::pin("sleep", pid, stat(pid).unwrap().start_time).unwrap();
        assert_eq!(w.not_living_on(), None);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        // Whether it has run its exit yet is the scheduler's business:
        // either way it is not alive, at once.
        let seen = w.not_living_on();
        assert!(
            matches!(seen, Some("exited") | Some("dying: SIGKILL pending")),
            "{seen:?}"
        );
        child.wait().unwrap();
        assert_eq!(w.not_living_on(), Some("exited"));
    }

    /// A shell, our child, that stays with its own child `sleep 30`: our
    /// grandchild, whose pid it prints.
    fn shell_with_a_grandchild() -> (std::process::Child, i32) {
        use std::process::{Command, Stdio};
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(shell.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        (shell, line.trim().parse().unwrap())
    }

    #[test]
    fn descent_is_followed_through_every_generation() {
        let me = std::process::id() as i32;
        let (mut sh, grandchild) = shell_with_a_grandchild();
        assert!(descends_from(sh.id() as i32, me));
        assert!(descends_from(grandchild, me));
        assert!(descends_from(grandchild, sh.id() as i32));
        assert!(!descends_from(me, grandchild));
        assert!(!descends_from(me, sh.id() as i32));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(grandchild),
            nix::sys::signal::SIGKILL,
        );
        sh.wait().unwrap();
    }

    #[test]
    fn a_child_is_adopted_once_its_parent_exits() {
        use std::process::Command;
        let me = std::process::id() as i32;
        // Our own child: its parent is us at once.
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let started = stat(pid).unwrap().start_time;
        assert_eq!(
            parent_once_adopted(pid, started, me, Duration::ZERO),
            Some(me)
        );
        child.kill().unwrap();
        child.wait().unwrap();
        // A grandchild whose parent (a shell) stays: not adopted in time.
        let (mut shell, grandchild) = shell_with_a_grandchild();
        let started = stat(grandchild).unwrap().start_time;
        let waited = Instant::now();
        assert_eq!(
            parent_once_adopted(grandchild, started, me, Duration::from_millis(50)),
            Some(shell.id() as i32)
        );
        // It waited for the parent (poll rounds its timeout to milliseconds).
        assert!(
            waited.elapsed() >= Duration::from_millis(40),
            "{:?}",
            waited.elapsed()
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(grandchild),
            nix::sys::signal::Signal::SIGKILL,
        );
        shell.wait().unwrap();
        assert_eq!(
            parent_once_adopted(grandchild, started, me, Duration::ZERO),
            None
        );
    }

    #[test]
    fn a_child_is_alive_then_gone_by_both_probes() {
        let mut child = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = stat(pid).unwrap().start_time;
        let w = Watched::pin("cat", pid, start).unwrap();
        assert!(w.alive(GoneProbe::Pidfd) && w.alive(GoneProbe::Kill0));
        drop(child.stdin.take()); // EOF: cat exits
        let took = until_gone(
            &[&w],
            GoneProbe::Pidfd,
            Duration::from_secs(5),
            &mut Vec::new,
        );
        assert!(took.is_ok());
        // A zombie now: gone by both.
        assert!(!w.alive(GoneProbe::Kill0));
        child.wait().unwrap();
        assert!(!w.alive(GoneProbe::Kill0) && !w.alive(GoneProbe::Pidfd));
    }

    #[test]
    fn a_recycled_pid_cannot_be_pinned() {
        let me = std::process::id() as i32;
        let start = stat(me).unwrap().start_time;
        assert!(Watched::pin("me", me, start + 1).is_err());
    }

    #[test]
    fn deadline_reports_the_living() {
        let me = std::process::id() as i32;
        let w = Watched::pin("me", me, stat(me).unwrap().start_time).unwrap();
        let r = until_gone(
            &[&w],
            GoneProbe::Kill0,
            Duration::from_millis(5),
            &mut Vec::new,
        );
        assert_eq!(r, Err(vec!["me".to_string()]));
    }
    #[rstest]
    #[case::gofer_two_dashes(b"runsc-gofer\0--root=/r\0gofer\0--bundle\0/b/c-1\0--spec-fd=3\0".as_slice(), true)]
    #[case::sandbox_equals(b"runsc-sandbox\0--rootless=true\0boot\0--bundle=/b/c-1\0".as_slice(), true)]
    #[case::one_dash(b"runsc\0-bundle\0/b/c-1\0".as_slice(), true)]
    #[case::one_dash_equals(b"runsc\0-bundle=/b/c-1\0".as_slice(), true)]
    #[case::another_bundle_with_this_prefix(b"runsc-gofer\0--bundle\0/b/c-10\0".as_slice(), false)]
    #[case::another_bundle_equals(b"runsc-sandbox\0--bundle=/b/c-10\0".as_slice(), false)]
    #[case::the_path_not_as_bundle(b"cat\0/b/c-1\0".as_slice(), false)]
    #[case::flag_last_without_value(b"runsc\0--bundle\0".as_slice(), false)]
    #[case::other_flag_ending_in_bundle(b"x\0--no-bundle\0/b/c-1\0".as_slice(), false)]
    #[case::zombie_has_no_cmdline(b"".as_slice(), false)]
    fn a_command_line_names_a_bundle_only_as_its_bundle_flag(
        #[case] cmdline: &[u8],
        #[case] names: bool,
    ) {
        assert_eq!(names_bundle(cmdline, b"/b/c-1"), names);
    }

    #[test]
    fn descendants_are_found_at_any_depth_and_only_below_the_roots() {
        // 10 the sandbox, 11 and 12 its stubs (12 below 11), 20 the gofer,
        // 30 and its child 31 someone else's.
        let table = [(31, 30), (12, 11), (11, 10), (10, 1), (20, 1), (30, 1)];
        assert_eq!(with_descendants(&table, &[10, 20]), vec![10, 20, 11, 12]);
        assert_eq!(with_descendants(&table, &[]), Vec::<i32>::new());
    }
}
