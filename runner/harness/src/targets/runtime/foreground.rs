//! Waiting for a foreground `run` to end after its container's init. It
//! learns of the init's exit from the kernel's SIGCHLD, and youki 0.7.0 loses
//! one that comes before it has blocked its signals: its `run` then waits
//! for good over a zombie (2 of 96 scenarios here, and bare runs of it
//! too). For a runtime known to, a `run` whose init has been a zombie for a
//! grace is sent SIGCHLD, the signal it missed, and again at each look
//! after; a runtime that did not lose the first one reaps nothing more.

use super::command::ExitOrInterval;
use super::watch::{stat, Watched};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How long a foreground `run` may leave its init an unreaped zombie before
/// it is nudged: longer than a runtime that got its SIGCHLD takes to reap
/// (well under a millisecond when it is waiting for it), with room for a
/// loaded machine.
pub const GRACE: Duration = Duration::from_millis(20);

/// Sends a foreground `run` that has not reaped its init the SIGCHLD it
/// missed. Ticked at each look at the `run`; one for all of teardown's
/// waits, so the grace runs from the first sight of the zombie.
pub struct SigchldNudge {
    /// The `run`'s pidfd, kept only if the `run` was still our unreaped
    /// child once it was open: a signal through it never reaches whoever
    /// has its pid later. Without pidfds (before Linux 5.3) there is no
    /// nudge.
    run: Option<OwnedFd>,
    /// The container's init, as (pid, start time). None for a runtime that
    /// never needs nudging.
    init: Option<(i32, u64)>,
    /// When the init was first seen a zombie.
    zombie_since: Option<Instant>,
    /// How many SIGCHLDs were sent.
    pub sent: u32,
}

impl SigchldNudge {
    /// For the foreground `run`, our child, and its container's init.
    pub fn new(run: &mut Child, init: Option<&Watched>) -> Self {
        let pidfd = init.and_then(|_| orphanage_agent_io::pidfd_open(run.id() as i32).ok());
        SigchldNudge {
            run: pidfd.filter(|_| matches!(run.try_wait(), Ok(None))),
            init: init.map(|w| (w.pid, w.start_time)),
            zombie_since: None,
            sent: 0,
        }
    }

    /// For a `run` known only by its pidfd (the interrupt thread's), and
    /// its container's init as (pid, start time).
    pub fn from_pidfd(run: OwnedFd, init: (i32, u64)) -> Self {
        SigchldNudge {
            run: Some(run),
            init: Some(init),
            zombie_since: None,
            sent: 0,
        }
    }

    /// One that never sends anything.
    pub fn none() -> Self {
        SigchldNudge {
            run: None,
            init: None,
            zombie_since: None,
            sent: 0,
        }
    }

    /// One look: past the grace of an init left a zombie (not one reaped
    /// and slow to be followed by the `run`'s exit: that is no lost
    /// signal), the `run` gets a SIGCHLD.
    pub fn tick(&mut self) {
        let (Some(run), Some((pid, started))) = (&self.run, self.init) else {
            return;
        };
        if !is_unreaped_zombie(pid, started) {
            self.zombie_since = None;
            return;
        }
        let since = *self.zombie_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= GRACE
            && orphanage_agent_io::pidfd_send_signal(run.as_fd(), libc::SIGCHLD).is_ok()
        {
            self.sent += 1;
        }
    }
}

/// `pid` has exited and its parent has not reaped it: a zombie that started
/// at `started` (so the pid is not yet anyone else's).
fn is_unreaped_zombie(pid: i32, started: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_time == started && s.state == 'Z')
}

/// The note a scenario's result carries when its `run` was nudged: the
/// runtime lost its init's SIGCHLD, or was that slow to reap, though not in
/// what the scenario checks.
pub fn nudged_note(label: &str, sent: u32) -> Option<String> {
    (sent > 0).then(|| {
        format!(
            "`{label} run` left the container's init a zombie for {GRACE:?} or more (as \
             orphanage saw it): orphanage sent it SIGCHLD {sent} time(s) before it reaped it"
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
        match run.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // Reaped elsewhere (an interrupt's sweep reaps every child).
            Err(_) => return None,
        }
        if start.elapsed() >= limit {
            return None;
        }
        nudge.tick();
        pause.wait(limit.saturating_sub(start.elapsed()));
    }
}

/// As `exits_within`, for a `run` known only by its pidfd (not reaped
/// here): whether it exited within `limit`.
pub fn exited_within(run: BorrowedFd, nudge: &mut SigchldNudge, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        // Woken by the exit itself; the slices only space the nudge's looks.
        let slice = left.min(Duration::from_millis(5)).as_millis() as i32;
        if orphanage_agent_io::pidfd_exited(run, slice) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        nudge.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{AsFd, AsRawFd};
    use std::process::Command;

    /// Our forked child, through its pidfd: killed and reaped when dropped,
    /// so a failed assertion leaves nothing behind, and never another
    /// process (the test binary's other children take pids all the time).
    struct Forked(OwnedFd);

    impl Forked {
        fn wait(&self) -> libc::c_int {
            // SAFETY: a zeroed siginfo is valid; waitid fills it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid(P_PIDFD) on a pidfd we hold.
            let r = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    self.0.as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED,
                )
            };
            // SAFETY: si_status is set when waitid reaped a child.
            if r == 0 {
                unsafe { info.si_status() }
            } else {
                -1
            }
        }
    }

    impl Drop for Forked {
        fn drop(&mut self) {
            let _ = orphanage_agent_io::pidfd_send_signal(self.0.as_fd(), libc::SIGKILL);
            self.wait();
        }
    }

    impl SigchldNudge {
        /// For a `run` forked by hand, our unreaped child.
        fn for_test(run: i32, init: Option<&Watched>) -> Self {
            SigchldNudge {
                run: orphanage_agent_io::pidfd_open(run).ok(),
                init: init.map(|w| (w.pid, w.start_time)),
                zombie_since: None,
                sent: 0,
            }
        }
    }

    /// A parent that waits for SIGCHLD with sigtimedwait, but had it
    /// unblocked and ignored (the default) when its child exited, as youki's
    /// `run` can: the signal is lost, and it waits on over a zombie (for
    /// 10 s, then exits 1; 0 if a SIGCHLD came). Forked by hand: a forked
    /// child has one thread, so no other thread of the test binary can take
    /// the signal. Returns it, its pid, and its zombie child as (pid, start).
    fn a_parent_that_lost_its_sigchld() -> (Forked, i32, (i32, u64)) {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child makes only raw syscalls (fork, waitid, signal
        // masks, write, close) and _exits; it never returns into Rust.
        let run = unsafe { libc::fork() };
        assert!(run >= 0);
        if run == 0 {
            // SAFETY: as above, on our own pids and fds.
            unsafe {
                // Only the pipe's write end, as fd 3: the other tests' fds
                // (a pipe whose reader waits for its end) are closed here.
                libc::dup2(w.as_raw_fd(), 3);
                libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
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
                libc::write(3, bytes.as_ptr().cast(), bytes.len());
                libc::close(3);
                let ten_s = libc::timespec {
                    tv_sec: 10,
                    tv_nsec: 0,
                };
                let got = libc::sigtimedwait(&chld, std::ptr::null_mut(), &ten_s);
                libc::waitpid(init, std::ptr::null_mut(), 0);
                libc::_exit(if got == libc::SIGCHLD { 0 } else { 1 });
            }
        }
        // Our unreaped child: the pidfd is surely its.
        let forked = Forked(orphanage_agent_io::pidfd_open(run).unwrap());
        drop(w);
        let mut bytes = [0u8; 4];
        std::fs::File::from(r).read_exact(&mut bytes).unwrap();
        let init_pid = i32::from_ne_bytes(bytes);
        let started = stat(init_pid).unwrap().start_time;
        assert!(is_unreaped_zombie(init_pid, started));
        // Unnudged, it waits on: the loss is real.
        assert!(
            !orphanage_agent_io::pidfd_exited(forked.0.as_fd(), 2 * GRACE.as_millis() as i32),
            "the parent saw its child's exit without a nudge"
        );
        (forked, run, (init_pid, started))
    }

    #[test]
    fn a_run_that_lost_its_sigchld_is_nudged_until_it_reaps_its_init() {
        let (forked, run, (init_pid, started)) = a_parent_that_lost_its_sigchld();
        let init = Watched::pin("init", init_pid, started).unwrap();
        let mut nudge = SigchldNudge::for_test(run, Some(&init));
        // Within the grace: nothing sent yet.
        nudge.tick();
        assert_eq!(nudge.sent, 0, "nudged before the grace was up");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !orphanage_agent_io::pidfd_exited(forked.0.as_fd(), 1) {
            assert!(Instant::now() < deadline, "nudged, and still waiting");
            nudge.tick();
        }
        assert_eq!(forked.wait(), 0, "the parent saw no SIGCHLD");
        assert!(nudge.sent >= 1);
        assert!(!is_unreaped_zombie(init_pid, started), "reaped");
        assert!(nudged_note("youki", nudge.sent).is_some_and(|s| s.contains("SIGCHLD")));
    }

    /// The interrupt thread's wait: through a pidfd of the `run` alone (it
    /// has no `Child`), the lost SIGCHLD is sent again, and without a nudge
    /// the wait ends at its limit.
    #[test]
    fn an_interrupts_wait_nudges_a_run_that_lost_its_sigchld() {
        let (forked, _, init) = a_parent_that_lost_its_sigchld();
        let mut none = SigchldNudge::none();
        assert!(!exited_within(forked.0.as_fd(), &mut none, 3 * GRACE));
        let mut nudge = SigchldNudge::from_pidfd(forked.0.try_clone().unwrap(), init);
        assert!(exited_within(
            forked.0.as_fd(),
            &mut nudge,
            Duration::from_secs(5)
        ));
        assert_eq!(forked.wait(), 0, "the parent saw no SIGCHLD");
        assert!(nudge.sent >= 1);
    }

    #[test]
    fn a_child_that_exits_is_seen_to_and_one_that_runs_is_not_killed() {
        let mut quick = Command::new("true").spawn().unwrap();
        assert!(exits_within(
            &mut quick,
            &mut SigchldNudge::none(),
            Duration::from_secs(10)
        )
        .is_some_and(|s| s.success()));
        let mut slow = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(exits_within(
            &mut slow,
            &mut SigchldNudge::none(),
            Duration::from_millis(20)
        )
        .is_none());
        // Still running: the wait killed nothing.
        assert!(slow.try_wait().unwrap().is_none());
        slow.kill().unwrap();
        slow.wait().unwrap();
    }

    /// An init that runs, and one that has exited and been reaped (a
    /// `run` merely slow to exit after): neither is a lost SIGCHLD.
    #[test]
    fn a_run_whose_init_runs_or_was_reaped_is_never_nudged() {
        let mut run = Command::new("sleep").arg("30").spawn().unwrap();
        let mut init = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = init.id() as i32;
        let started = stat(pid).unwrap().start_time;
        let watched = Watched::pin("init", pid, started).unwrap();
        let mut nudge = SigchldNudge::new(&mut run, Some(&watched));
        assert!(exits_within(&mut run, &mut nudge, 3 * GRACE).is_none());
        init.kill().unwrap();
        init.wait().unwrap();
        assert!(exits_within(&mut run, &mut nudge, 3 * GRACE).is_none());
        assert_eq!(nudge.sent, 0);
        assert_eq!(nudged_note("youki", nudge.sent), None);
        run.kill().unwrap();
        run.wait().unwrap();
    }
}
