//! Waiting for a foreground `run` to end after its container's init. It
//! learns of the init's exit from the kernel's SIGCHLD, and youki 0.7.0 loses
//! one that comes before it has blocked its signals: its `run` then waits
//! for good over a zombie (2 of 96 scenarios here, and bare runs of it
//! too). For a runtime known to, a `run` still there a grace after its init
//! has exited is sent SIGCHLD, the signal it missed, and again at each look
//! after; a runtime that did not lose the first one reaps nothing more.

use super::command::ExitOrInterval;
use std::os::fd::BorrowedFd;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How long after its init's exit a foreground `run` may take before it is
/// nudged: runc and crun take 1.5 to 2 ms here to delete the container and
/// exit, youki a few ms more.
pub const GRACE: Duration = Duration::from_millis(20);

/// Sends a foreground `run` that has not seen its init exit the SIGCHLD it
/// missed. Ticked at each look at the `run`, while it is our unreaped child.
pub struct SigchldNudge<'a> {
    run_pid: i32,
    /// The init's pidfd: it polls readable once the init has exited. None
    /// for a runtime that never needs nudging, or without a pidfd.
    init: Option<BorrowedFd<'a>>,
    init_gone_since: Option<Instant>,
    /// How many SIGCHLDs were sent.
    pub sent: u32,
}

impl<'a> SigchldNudge<'a> {
    /// `run` is the pid of our child, the foreground `run`.
    pub fn new(run: u32, init: Option<BorrowedFd<'a>>) -> Self {
        SigchldNudge {
            run_pid: run as i32,
            init,
            init_gone_since: None,
            sent: 0,
        }
    }

    /// One look: the init's exit is noted when first seen, and past the
    /// grace the `run` gets a SIGCHLD.
    pub fn tick(&mut self) {
        let Some(init) = self.init else { return };
        let since = match self.init_gone_since {
            Some(since) => since,
            None if orphanage_agent_io::pidfd_exited(init, 0) => {
                *self.init_gone_since.insert(Instant::now())
            }
            None => return,
        };
        if since.elapsed() >= GRACE {
            // SAFETY: our unreaped child (the caller's promise), so the pid is its.
            unsafe { libc::kill(self.run_pid, libc::SIGCHLD) };
            self.sent += 1;
        }
    }
}

/// The note a scenario's result carries when its `run` was nudged: the
/// runtime misbehaved, though not in what the scenario checks.
pub fn nudged_note(label: &str, sent: u32) -> Option<String> {
    (sent > 0).then(|| {
        format!(
            "`{label} run` was still running {GRACE:?} after the container's init had exited: \
             orphanage sent it SIGCHLD {sent} time(s) before it exited"
        )
    })
}

/// Waits up to `limit` for a foreground `run` to exit, nudging it as above,
/// without killing it. Its status if it exited.
pub fn exits_within(
    run: &mut Child,
    nudge: &mut SigchldNudge,
    limit: Duration,
) -> Option<ExitStatus> {
    let start = Instant::now();
    // Woken by the exit itself; the intervals only space the nudge's looks.
    let mut pause = ExitOrInterval::new(run, Duration::from_millis(1), Duration::from_millis(5));
    loop {
        if let Ok(Some(status)) = run.try_wait() {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        nudge.tick();
        pause.wait(limit.saturating_sub(start.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{AsFd, AsRawFd};
    use std::process::Command;

    /// A parent that waits for SIGCHLD with sigtimedwait, but had it
    /// unblocked and ignored (the default) when its child exited, as youki's
    /// `run` can: the signal is lost, it waits on over a zombie, and the
    /// nudge ends the wait. Forked by hand: a forked child has one thread,
    /// so no other thread of the test binary can take the signal.
    #[test]
    fn a_run_that_lost_its_sigchld_is_nudged_until_it_reaps_its_init() {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child makes only async-signal-safe calls and _exits.
        let run = unsafe { libc::fork() };
        assert!(run >= 0);
        if run == 0 {
            // SAFETY: as above; raw syscalls on our own pids and fds.
            unsafe {
                let init = libc::fork();
                if init == 0 {
                    libc::_exit(0);
                }
                let mut info: libc::siginfo_t = std::mem::zeroed();
                // Exited, and left a zombie: its SIGCHLD came and was dropped.
                libc::waitid(
                    libc::P_PID,
                    init as u32,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                );
                let mut chld: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut chld);
                libc::sigaddset(&mut chld, libc::SIGCHLD);
                libc::sigprocmask(libc::SIG_BLOCK, &chld, std::ptr::null_mut());
                let bytes = init.to_ne_bytes();
                libc::write(w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                let ten_s = libc::timespec {
                    tv_sec: 10,
                    tv_nsec: 0,
                };
                let got = libc::sigtimedwait(&chld, std::ptr::null_mut(), &ten_s);
                libc::waitpid(init, std::ptr::null_mut(), 0);
                libc::_exit(if got == libc::SIGCHLD { 0 } else { 1 });
            }
        }
        drop(w);
        let mut bytes = [0u8; 4];
        std::fs::File::from(r).read_exact(&mut bytes).unwrap();
        let init = i32::from_ne_bytes(bytes);
        let init_fd = orphanage_agent_io::pidfd_open(init).unwrap();
        let run_fd = orphanage_agent_io::pidfd_open(run).unwrap();
        // Unnudged, it waits on: the loss is real.
        assert!(
            !orphanage_agent_io::pidfd_exited(run_fd.as_fd(), 2 * GRACE.as_millis() as i32),
            "the parent saw its child's exit without a nudge"
        );
        let mut nudge = SigchldNudge::new(run as u32, Some(init_fd.as_fd()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !orphanage_agent_io::pidfd_exited(run_fd.as_fd(), 1) {
            assert!(Instant::now() < deadline, "nudged, and still waiting");
            nudge.tick();
        }
        let mut status = 0;
        // SAFETY: our child, exited.
        unsafe { libc::waitpid(run, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        assert!(nudge.sent >= 1);
        assert!(nudged_note("youki", nudge.sent).is_some_and(|s| s.contains("SIGCHLD")));
    }

    #[test]
    fn a_child_that_exits_is_seen_to_and_one_that_runs_is_not_killed() {
        let mut quick = Command::new("true").spawn().unwrap();
        assert!(exits_within(
            &mut quick,
            &mut SigchldNudge::new(0, None),
            Duration::from_secs(10)
        )
        .is_some_and(|s| s.success()));
        let mut slow = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(exits_within(
            &mut slow,
            &mut SigchldNudge::new(0, None),
            Duration::from_millis(20)
        )
        .is_none());
        // Still running: the wait killed nothing.
        assert!(slow.try_wait().unwrap().is_none());
        slow.kill().unwrap();
        slow.wait().unwrap();
    }

    #[test]
    fn a_run_whose_init_still_runs_is_never_nudged() {
        let mut run = Command::new("sleep").arg("30").spawn().unwrap();
        let init = Command::new("sleep").arg("30").spawn().unwrap();
        let init_fd = orphanage_agent_io::pidfd_open(init.id() as i32).unwrap();
        let mut nudge = SigchldNudge::new(run.id(), Some(init_fd.as_fd()));
        assert!(exits_within(&mut run, &mut nudge, Duration::from_millis(60)).is_none());
        assert_eq!(nudge.sent, 0);
        assert_eq!(nudged_note("youki", nudge.sent), None);
        for mut c in [run, init] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
