//! How the VM's init runs the scenarios: side by side, two per CPU (see
//! LANES_PER_CPU), as the harness runs several test threads on a host. Each runs
//! as on a host: the agent's root as init's child (in a fresh pid and mount
//! namespace unless the scenario asks for ours), the scenario on its stdin,
//! its events on fd 3, under the scenario's deadline. Being single-threaded,
//! init forks that root without exec.
//!
//! Init is every orphan's parent here, so it reaps whatever ends. When a
//! root ends, its process group and every process it reported are killed
//! (what the harness does on a host). Whenever no scenario is running,
//! whatever escaped both is noted as left behind and killed by kill(-1);
//! until then it lives on beside the scenarios that run.

use crate::poll;
use nix::errno::Errno;
use orphanage_agent_io::{
    above_std_fds, clone_failed, pipe, readable_now, Reading, READS_IN_A_ROW,
};
use orphanage_scenario::{Event, Namespace, Verdict, VmScenario, WaitStatus};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Scenarios at a time per CPU. Most of a scenario's time is spent waiting
/// (on pipes, pidfds, polls), so a second one per CPU fills that time. Under
/// TCG with 2 CPUs, cells took as long with 2 lanes as with 4 (6.4 to 8.0 s
/// against 6.3 to 8.8 s), but with 2, the two 200-exit latency measurements
/// that come first held both lanes, and the first verdict came 0.7 to 1.0 s
/// after init started, against 0.1 to 0.2 s.
pub const LANES_PER_CPU: usize = 2;

/// The agent inside the initramfs, named in the reasons of a silent agent.
const AGENT_PATH: &str = "/init";
/// How long an agent that closed its event pipe may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The flag /proc/PID/stat shows for a kernel thread (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;
/// Without a signalfd, how often ended children are looked for.
const REAP_INTERVAL: Duration = Duration::from_millis(10);

/// A scenario whose agent was started.
struct Running<'a> {
    scenario: &'a VmScenario,
    /// The agent's root: init's child, leading its own session.
    root: i32,
    events: OwnedFd,
    stderr: OwnedFd,
    started: Instant,
    reading: Reading,
    /// When the events pipe ended (every writer gone).
    events_ended: Option<Instant>,
    /// How the root ended, once reaped.
    status: Option<WaitStatus>,
    killed: bool,
    /// (pid, start time) of every process the agent reported, in our namespace.
    spawned: Vec<(i32, u64)>,
    /// The root runs in our pid namespace (`namespace: caller`, or a subreaper root).
    shares_our_namespace: bool,
}

/// Runs every scenario, at most `lanes` at a time; `report` gets each of
/// its events as it comes, the verdict last. Returns the
/// processes found left behind (see `clean_slate`).
pub fn run_all(
    scenarios: &[VmScenario],
    lanes: usize,
    force_subreaper_root: bool,
    report: &mut dyn FnMut(&VmScenario, &Event),
) -> Vec<String> {
    let child_signals = ChildSignals::new();
    let mut queue = scenarios.iter();
    let mut running: Vec<Running> = Vec::new();
    let mut left_behind = vec![];
    loop {
        while running.len() < lanes.max(1) {
            let Some(s) = queue.next() else { break };
            if s.scenario.namespace == Namespace::GlobalInit {
                // Not a root of its own: this init is the scenario's root.
                for event in crate::global_init::run(&s.scenario) {
                    report(s, &event);
                }
                continue;
            }
            match start(s, child_signals.mask(), force_subreaper_root) {
                Ok(r) => running.push(r),
                Err(verdict) => report(s, &finished(verdict, 0.0)),
            }
        }
        if running.is_empty() {
            return left_behind;
        }
        wait_for_news(&running, &child_signals);
        child_signals.clear();
        for r in running.iter_mut() {
            r.read(report);
        }
        reap(&mut running, report);
        for r in running.iter_mut() {
            r.enforce_deadlines();
        }
        let mut i = 0;
        while i < running.len() {
            if running[i].is_over() {
                let (s, verdict) = running.remove(i).conclude(report);
                report(s, &verdict);
            } else {
                i += 1;
            }
        }
        if running.is_empty() {
            left_behind.extend(clean_slate());
        }
    }
}

fn finished(verdict: Verdict, steps_ms: f64) -> Event {
    Event::Finished { verdict, steps_ms }
}

/// SIGCHLD as a readable fd, so one poll waits for events and for ended
/// children together. SIGCHLD stays blocked in init (never in the agents it
/// starts); where signalfd(2) is missing, init looks every REAP_INTERVAL.
struct ChildSignals {
    fd: Option<OwnedFd>,
    mask: libc::sigset_t,
}

impl ChildSignals {
    fn new() -> ChildSignals {
        // SAFETY: a zeroed sigset_t is filled by sigemptyset; the calls only
        // touch these locals and our own signal mask.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut mask);
            libc::sigaddset(&mut mask, libc::SIGCHLD);
            libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut());
            let fd = libc::signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                libc::sigprocmask(libc::SIG_UNBLOCK, &mask, std::ptr::null_mut());
                return ChildSignals { fd: None, mask };
            }
            ChildSignals {
                fd: Some(OwnedFd::from_raw_fd(fd)),
                mask,
            }
        }
    }

    /// The signals an agent's root must unblock: it inherits init's mask.
    fn mask(&self) -> libc::sigset_t {
        self.mask
    }

    fn clear(&self) {
        let Some(fd) = &self.fd else { return };
        let mut info = [0u8; 128];
        // SAFETY: reading signalfd records into a local buffer; non-blocking.
        while unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) } > 0 {}
    }
}

/// Starts one scenario's agent; Err is the verdict when it could not start.
fn start(
    s: &VmScenario,
    unblock: libc::sigset_t,
    force_subreaper_root: bool,
) -> Result<Running<'_>, Verdict> {
    let broken = |e: std::io::Error| Verdict::broken(format!("making the agent's pipes: {e}"));
    let (stdin_r, stdin_w) = pipe().map_err(broken)?;
    let (events_r, events_w) = pipe().map_err(broken)?;
    let (err_r, err_w) = pipe().map_err(broken)?;
    let high = |fd| above_std_fds(fd).map_err(broken);
    let (stdin_r, events_w, err_w) = (high(stdin_r)?, high(events_w)?, high(err_w)?);
    let fresh = s.scenario.namespace == Namespace::Fresh;
    let mut flags = libc::SIGCHLD as libc::c_ulong;
    if fresh && !force_subreaper_root {
        flags |= (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as libc::c_ulong;
    }
    let fds = (stdin_r.as_raw_fd(), events_w.as_raw_fd(), err_w.as_raw_fd());
    let mut subreaper_root =
        (fresh && force_subreaper_root).then(|| "forced by --no-pid-namespace".to_string());
    let mut pid = start_root(flags, fds, unblock, subreaper_root.as_deref());
    if pid < 0 && fresh && Errno::last() == Errno::EINVAL && subreaper_root.is_none() {
        // No pid namespaces here: a subreaper root stands in for the init.
        let errno = orphanage_scenario::ErrnoName(Errno::EINVAL);
        let why = format!(
            "clone({}): {errno}",
            orphanage_agent_io::clone_flag_names(flags)
        );
        flags = libc::SIGCHLD as libc::c_ulong;
        pid = start_root(flags, fds, unblock, Some(&why));
        subreaper_root = Some(why);
    }
    if pid < 0 {
        let errno = orphanage_scenario::ErrnoName(Errno::last());
        return Err(clone_failed(flags, errno, "pid namespaces"));
    }
    drop((stdin_r, events_w, err_w));
    let json = serde_json::to_vec(&s.scenario).expect("scenarios serialize");
    let mut stdin = std::fs::File::from(stdin_w);
    let _ = stdin.write_all(&json);
    drop(stdin);
    Ok(Running {
        scenario: s,
        root: pid,
        events: events_r,
        stderr: err_r,
        started: Instant::now(),
        reading: Reading::default(),
        events_ended: None,
        status: None,
        killed: false,
        spawned: vec![],
        shares_our_namespace: !fresh || subreaper_root.is_some(),
    })
}

/// Clones the agent's root with `flags` and returns its pid (-1 and errno
/// on failure). The child gets `fds` as its stdin, events and stderr and
/// runs the controller, under a subreaper root when `subreaper_root` says
/// why there is no pid namespace.
fn start_root(
    flags: libc::c_ulong,
    (fd_in, fd_ev, fd_err): (i32, i32, i32),
    unblock: libc::sigset_t,
    subreaper_root: Option<&str>,
) -> i32 {
    // SAFETY: init is single-threaded, so the child may go on in Rust without
    // exec: it becomes the agent's root directly. Under TCG that skips
    // loading and relocating the agent and re-translating its code for each
    // scenario. The child never returns here.
    let pid =
        unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) } as i32;
    if pid != 0 {
        return pid;
    }
    // SAFETY: plain fd and signal-mask calls on what was prepared above.
    unsafe {
        libc::sigprocmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
        libc::dup2(fd_in, 0);
        libc::dup2(fd_err, 1);
        libc::dup2(fd_err, 2);
        libc::dup2(fd_ev, 3);
        // Its own session and group, so everything it leaves in our
        // namespace can be killed as a group.
        libc::setsid();
    }
    // Nothing of init's (the results port, other agents' pipes, the
    // signalfd) stays open in the scenario.
    crate::fds::close_all_except(&[0, 1, 2, 3]);
    match subreaper_root {
        Some(why) => crate::subreaper_root::main(why),
        None => crate::controller::main(crate::controller::Start::as_written()),
    }
}

/// Waits until an agent wrote, a child ended or the nearest deadline came.
fn wait_for_news(running: &[Running], child_signals: &ChildSignals) {
    let mut fds = vec![];
    let mut limit = Duration::MAX;
    for r in running {
        if r.events_ended.is_none() {
            fds.push(r.events.as_raw_fd());
        }
        if !r.reading.stderr_closed() {
            fds.push(r.stderr.as_raw_fd());
        }
        limit = limit.min(r.next_due());
    }
    match &child_signals.fd {
        Some(fd) => fds.push(fd.as_raw_fd()),
        None => limit = limit.min(REAP_INTERVAL),
    }
    let fds: Vec<Option<RawFd>> = fds.into_iter().map(Some).collect();
    // EINTR or an error just ends this wait; at least a millisecond, so
    // that PID 1 never spins.
    let _ = orphanage_agent_io::wait_readable(&fds, limit.max(Duration::from_millis(1)));
}

/// Reaps every child that has ended. A root's last events are read and its
/// leftovers killed before it is reaped: until then its pid, and so its
/// process group, cannot be anyone else's.
fn reap(running: &mut [Running], report: &mut dyn FnMut(&VmScenario, &Event)) {
    let mut last = 0;
    loop {
        let mut seen = 0;
        let reaped = reap_next(&mut |pid, status| {
            seen = pid;
            if let Some(r) = running
                .iter_mut()
                .find(|r| r.root == pid && r.status.is_none())
            {
                r.read(report);
                r.kill_leftovers();
                r.status = Some(status);
            }
        });
        // The same child twice: a kernel that shows it ended but will not
        // let it go. Next wake-up, then, not a spin in PID 1.
        if !reaped || seen == last {
            return;
        }
        last = seen;
    }
}

/// Reaps the next child that has ended, and says whether there was one.
/// `on_ended` gets its pid and wait status first, while it is a zombie
/// (waitid with WNOWAIT); on a kernel where that waitid fails otherwise than
/// with ECHILD (no WNOWAIT, or no waitid), just after.
fn reap_next(on_ended: &mut dyn FnMut(i32, WaitStatus)) -> bool {
    // SAFETY: waitid fills a zeroed siginfo; WNOWAIT leaves the child as it is.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let peeked = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
        )
    };
    if peeked == 0 {
        // SAFETY: waitid filled these for an ended child (si_pid 0: none).
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        let Some(ended) = WaitStatus::from_siginfo(code, status).filter(|_| pid != 0) else {
            return false;
        };
        on_ended(pid, ended);
        // SAFETY: reaping the zombie just seen. ECHILD: a kernel that reaped
        // it despite WNOWAIT; it is gone either way.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
        return r == pid || (r < 0 && Errno::last() == Errno::ECHILD);
    }
    if Errno::last() == Errno::ECHILD {
        return false;
    }
    let mut status = 0;
    // SAFETY: reaping whatever child has ended, without waiting; again
    // without __WALL where that is refused.
    let mut pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
    if pid < 0 && Errno::last() == Errno::EINVAL {
        pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    }
    if pid <= 0 {
        return false;
    }
    on_ended(pid, WaitStatus::from_raw(status));
    true
}

impl<'a> Running<'a> {
    /// Reads what its pipes hold; every event but the verdict goes to
    /// `report` as it comes.
    fn read(&mut self, report: &mut dyn FnMut(&VmScenario, &Event)) {
        for _ in 0..READS_IN_A_ROW {
            if self.reading.stderr_closed() || !readable_now(self.stderr.as_raw_fd()) {
                break;
            }
            self.reading.take_stderr(self.stderr.as_raw_fd());
        }
        let (scenario, spawned) = (self.scenario, &mut self.spawned);
        // Reported pids are as the agent's root sees them: ours only when it
        // shares our namespace.
        let ours = self.shares_our_namespace;
        for _ in 0..READS_IN_A_ROW {
            if self.events_ended.is_some() || !readable_now(self.events.as_raw_fd()) {
                break;
            }
            let open = self
                .reading
                .take_events(self.events.as_raw_fd(), &mut |event| {
                    if let Event::Spawned {
                        pid, start_time, ..
                    } = event
                    {
                        if ours {
                            spawned.push((*pid, *start_time));
                        }
                    }
                    // Every event crosses the port, as on a host (explore
                    // compares the observed ones with its model); the
                    // verdict goes once the agent has ended (`conclude`).
                    if !matches!(event, Event::Finished { .. }) {
                        report(scenario, event);
                    }
                });
            if !open {
                self.events_ended = Some(Instant::now());
            }
        }
    }

    /// Kills the tree of an agent past its deadline, or of one that closed
    /// its events but did not exit within the grace.
    /// A root already reaped is not signalled (its pid may be another's
    /// now); its leftovers went when it was found ended.
    fn enforce_deadlines(&mut self) {
        if self.killed {
            return;
        }
        match self.events_ended {
            None if self.started.elapsed() >= self.scenario.scenario.deadline() => {
                self.reading.timed_out = true;
            }
            Some(at) if self.status.is_none() && at.elapsed() >= EXIT_GRACE => {}
            _ => return,
        }
        self.killed = true;
        if self.status.is_none() {
            // SAFETY: SIGKILL to our unreaped child and the group it leads.
            unsafe {
                libc::kill(self.root, libc::SIGKILL);
                libc::kill(-self.root, libc::SIGKILL);
            }
        }
    }

    /// How long until it must be looked at again without news.
    fn next_due(&self) -> Duration {
        match (self.events_ended, self.killed) {
            (_, true) => Duration::MAX,
            (None, false) => self
                .scenario
                .scenario
                .deadline()
                .saturating_sub(self.started.elapsed()),
            (Some(at), false) => EXIT_GRACE.saturating_sub(at.elapsed()),
        }
    }

    /// Its root is reaped, and its events ended or it timed out.
    fn is_over(&self) -> bool {
        self.status.is_some() && (self.events_ended.is_some() || self.reading.timed_out)
    }

    /// The root is an unreaped zombie here (just reaped where the kernel has
    /// no WNOWAIT): the group it led and the processes it reported go, each
    /// reported one only if /proc still shows the same start time.
    fn kill_leftovers(&self) {
        // SAFETY: SIGKILL to the group our unreaped child leads.
        unsafe { libc::kill(-self.root, libc::SIGKILL) };
        for &(pid, started) in &self.spawned {
            if crate::procfs::stat(pid).is_ok_and(|s| s.start_time == started) {
                // SAFETY: SIGKILL to a process just identified by its start time.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    fn conclude(mut self, report: &mut dyn FnMut(&VmScenario, &Event)) -> (&'a VmScenario, Event) {
        // What came since the last wake-up (a timeout does not wait for it).
        self.read(report);
        self.reading.drain_stderr(&self.stderr);
        let event = match self.reading.finished.take() {
            Some((verdict, steps_ms)) => finished(verdict, steps_ms),
            None => finished(
                self.reading.verdict_without_finish(
                    self.status,
                    self.scenario.scenario.deadline(),
                    AGENT_PATH,
                ),
                0.0,
            ),
        };
        (self.scenario, event)
    }
}

/// When no scenario runs, nothing but init (and the kernel's threads) may
/// live. What does is noted, "pid (comm)", unless it dies within
/// EXIT_GRACE (a process already killed may take a moment); then kill(-1)
/// reaches every process but init, and everything is reaped.
fn clean_slate() -> Vec<String> {
    let survivors = match poll::until(EXIT_GRACE, || {
        let alive = user_processes();
        alive.is_empty().then_some(())
    }) {
        Ok(_) => vec![],
        Err(_) => user_processes(),
    };
    // SAFETY: plain syscalls; as init we are exempt from kill(-1).
    unsafe { libc::kill(-1, libc::SIGKILL) };
    let _ = poll::until(EXIT_GRACE, || {
        loop {
            // SAFETY: reaping whatever child is ready.
            let r =
                unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
            if r > 0 {
                continue;
            }
            // ECHILD: nothing left. 0: some are still dying.
            return (r < 0).then_some(());
        }
    });
    survivors
}

/// Every live process but init and the kernel's threads (PF_KTHREAD), as
/// "pid (comm)". Empty without /proc.
fn user_processes() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid > 1)
        .filter_map(|pid| {
            let stat = crate::procfs::stat(pid).ok()?;
            let kernel_thread = stat.flags & PF_KTHREAD != 0;
            (!kernel_thread && stat.state != 'Z' && stat.state != 'X').then(|| {
                let comm = crate::procfs::read(&format!("/proc/{pid}/comm")).unwrap_or_default();
                format!("{pid} ({})", comm.trim())
            })
        })
        .collect()
}
