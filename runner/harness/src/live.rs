//! Every scenario tree that is running, so that a timeout, Ctrl-C or SIGTERM
//! can kill it. In a fresh pid namespace, SIGKILL to the agent (its init)
//! takes the whole namespace down; in the caller's namespace the agent's
//! session and every process it reported are killed, each checked against its
//! start time so a recycled pid is never hit.
//!
//! A tree's root (the agent, a container's init, a QEMU) is our child and may
//! be reaped by its trial thread while another thread (the interrupt thread,
//! a timeout) kills the tree. So the registry holds a pidfd of each root,
//! taken at registration, and signals and waits through it. The root's pid
//! itself (its process group, or any signal on a kernel without pidfds) is
//! used only under the registry lock while the root is unreaped, and every
//! reap of a root happens under that same lock, which marks it reaped: then
//! the pid cannot have been handed to another process.

use crate::targets::{foreground_run_exited_within, SigchldNudge};
use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;
use orphanage_scenario::WaitStatus;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A tree to register.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The root (the agent, a container's init, a QEMU): our direct child,
    /// unreaped, or a container's init whose parent is its foreground `run`.
    /// 0 while unknown (a container before its `run --detach` returns, or
    /// its pid file is written): see `set_agent`.
    pub agent: i32,
    pub caller_namespace: bool,
    /// (pid, start time) of every process the agent reported, for the caller's namespace.
    pub spawned: Vec<(i32, u64)>,
    /// On the runtime target, the container to delete (its init is `agent`).
    pub container: Option<Container>,
}

/// A container orphanage created, and the runtime command that deletes it.
#[derive(Debug, Clone)]
pub struct Container {
    /// `RUNTIME --root STATE delete --force ID`, ready to run.
    pub delete: (std::path::PathBuf, Vec<std::ffi::OsString>),
}

impl Container {
    /// Runs the runtime's forced delete, within a deadline: the container's
    /// processes, state and cgroups go. False if it failed or hung.
    pub fn delete(&self) -> bool {
        self.delete_while(&mut || {})
    }

    /// As `delete`, calling `tick` while the runtime works: on the way out
    /// after an interrupt, runsc's delete waits for its sandbox and gofer to
    /// vanish, and as our zombies they vanish only when reaped.
    pub fn delete_while(&self, tick: &mut dyn FnMut()) -> bool {
        crate::targets::run_bounded_ticking(
            &self.delete.0,
            &self.delete.1,
            std::time::Duration::from_secs(30),
            tick,
        )
        .is_ok_and(|r| r.ok)
    }
}

/// How a root ended, as the thread that reaped it saw.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: WaitStatus,
    /// CPU time it used, user plus system.
    pub cpu: Duration,
}

/// A registered tree's root.
#[derive(Debug)]
struct Root {
    pid: i32,
    /// None where pidfd_open(2) is missing (ENOSYS before Linux 5.3) or failed.
    pidfd: Option<Arc<OwnedFd>>,
    /// Reaped, or found not to be our child: its pid may be another process's now.
    reaped: bool,
}

impl Root {
    /// For our unreaped child, under the registry lock and before any
    /// interrupt (whose sweep reaps every child): so the pidfd is the
    /// child's. (A foreground container's init is pinned so too, and kept
    /// only if its start time is the one read before: see `set_agent`.)
    fn pin(pid: i32) -> Root {
        Root {
            pid,
            pidfd: pidfd_open(pid).map(Arc::new),
            reaped: false,
        }
    }

    /// SIGKILL to the root: through its pidfd, or by pid while it is
    /// unreaped. Under the registry lock.
    fn kill(&self) {
        match &self.pidfd {
            Some(fd) => {
                pidfd_signal(fd, libc::SIGKILL);
            }
            None if !self.reaped => {
                let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            }
            None => {}
        }
    }

    /// SIGKILL to the process group the root leads. Through the pidfd where
    /// the kernel can (Linux 6.9), so the group is the root's whoever has its
    /// pid now: a foreground container's init is not our child, and its
    /// `run` may reap it at any moment. Else (Linux 5.3 to 6.8, or no
    /// pidfd) by number, under the registry lock: a root of ours that is
    /// unreaped holds its pid, so the group of that number is its own, and a
    /// root without a pidfd is always our own child (`set_agent`). The
    /// pidfd (signal 0 fails once reaped) catches a reap that went around
    /// the registry; for a foreground init, reaped by its `run`, it narrows
    /// the race between that reap and the kill without closing it.
    fn kill_group(&self) {
        if let Some(fd) = &self.pidfd {
            match orphanage_agent_io::pidfd_send_signal_to_group(fd.as_fd(), libc::SIGKILL) {
                // ESRCH: the group has no one left.
                Ok(()) | Err(Errno::ESRCH) => return,
                Err(_) => {}
            }
        }
        if !self.reaped && self.pidfd.as_ref().is_none_or(|fd| pidfd_signal(fd, 0)) {
            let _ = kill(Pid::from_raw(-self.pid), Signal::SIGKILL);
        }
    }
}

struct Entry {
    root: Option<Root>,
    caller_namespace: bool,
    spawned: Vec<(i32, u64)>,
    container: Option<Container>,
    /// A pidfd of the runtime command that creates the container (`run
    /// --detach`) while it runs, or of a foreground `run` until it ends.
    /// (A foreground `run` ends as the kill of its init does.) A delete that overtakes it finds no
    /// container, and a creation killed halfway
    /// leaves state behind (runsc: its lock file), so the interrupt thread
    /// lets it finish first.
    creating: Option<Arc<OwnedFd>>,
    /// That command's pid while `creating` is set: our unreaped child
    /// until then, so the pid is surely its.
    creating_pid: Option<i32>,
    /// A foreground `run` that may lose its init's SIGCHLD (youki's): the
    /// init as (pid, start time), so that an interrupt's wait for the `run`
    /// sends that SIGCHLD again, as teardown's does.
    nudge_init: Option<(i32, u64)>,
}

impl Entry {
    /// Kills the root, and in the caller's namespace its process group (the
    /// agent leads its own session; its workers share its group unless a
    /// scenario moved them). Under the registry lock. Returns the reported
    /// processes to kill next, outside the lock (each pins itself).
    fn kill_root(&self) -> Vec<(i32, u64)> {
        if let Some(root) = &self.root {
            root.kill();
            if self.caller_namespace {
                root.kill_group();
            }
        }
        if self.caller_namespace {
            self.spawned.clone()
        } else {
            vec![]
        }
    }

    /// Its root was never reaped (or is not known yet).
    fn unfinished(&self) -> bool {
        self.root.as_ref().is_none_or(|r| !r.reaped)
    }
}

static LIVE: Mutex<BTreeMap<u64, Entry>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set once the interrupt thread is waiting for signals.
static HANDLER_INSTALLED: AtomicBool = AtomicBool::new(false);
/// The reader of our stdout went away: the interrupt thread cleans up as for
/// SIGTERM, but says nothing and exits as a process killed by SIGPIPE would.
static OUTPUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// stdout's reader is gone (`orphanage | head`): clean up everything running,
/// quietly, and exit 141 (128 + SIGPIPE). Called from the thread whose print
/// failed; it never returns.
pub fn output_closed() -> ! {
    OUTPUT_CLOSED.store(true, Ordering::SeqCst);
    if !HANDLER_INSTALLED.load(Ordering::SeqCst) {
        // Nothing was started yet, so nothing needs cleaning up.
        std::process::exit(128 + libc::SIGPIPE);
    }
    // SAFETY: a signal to ourselves; the interrupt thread takes it.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    stand_down()
}

/// Whether Ctrl-C or SIGTERM arrived. Then the interrupt thread owns the exit:
/// other threads must not print conclusions or pick exit codes.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Parks the calling thread for good; used once the interrupt thread is exiting the process.
pub fn stand_down() -> ! {
    loop {
        std::thread::park();
    }
}

/// Makes the harness the subreaper of everything it starts: a process orphaned
/// in the caller's namespace comes back to us to be reaped, instead of
/// lingering as a zombie under an init that may never reap it.
pub fn become_subreaper() -> nix::Result<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    nix::errno::Errno::result(r)?;
    SUBREAPER.store(true, Ordering::SeqCst);
    Ok(())
}

/// Whether `become_subreaper` succeeded: only then do orphans come to us.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

fn live() -> std::sync::MutexGuard<'static, BTreeMap<u64, Entry>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    orphanage_agent_io::pidfd_open(pid).ok()
}

/// True if sent; with signal 0, whether the process is not yet reaped.
fn pidfd_signal(fd: &OwnedFd, signal: i32) -> bool {
    orphanage_agent_io::pidfd_send_signal(fd.as_fd(), signal).is_ok()
}

fn cpu_time(usage: &libc::rusage) -> Duration {
    let secs = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Reaps the root if it has exited, without waiting: through its pidfd
/// (exactly that process, whatever happened to its pid), else by pid.
/// Ok(None): still running. Err: not our child (ECHILD).
fn reap_now(root: &Root) -> Result<Option<Exit>, Errno> {
    // SAFETY: zeroed siginfo and rusage are valid; the kernel fills them.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if let Some(fd) = &root.pidfd {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = loop {
            // SAFETY: waitid(P_PIDFD) on a pidfd we hold; the raw syscall
            // because only it also returns the rusage.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_waitid,
                    libc::P_PIDFD,
                    fd.as_raw_fd(),
                    &mut info as *mut libc::siginfo_t,
                    libc::WEXITED | libc::WNOHANG | libc::__WALL,
                    &mut usage as *mut libc::rusage,
                )
            };
            if r == 0 || Errno::last() != Errno::EINTR {
                break r;
            }
        };
        match (r, Errno::last()) {
            // SAFETY: waitid filled in a SIGCHLD siginfo (si_pid 0: not exited).
            (0, _) => {
                return Ok(unsafe { info.si_pid() != 0 }.then(|| Exit {
                    // A zeroed siginfo would not get here (si_pid 0), nor any
                    // code but a child's exit with WEXITED alone.
                    status: WaitStatus::from_siginfo(info.si_code, unsafe { info.si_status() })
                        .unwrap_or(WaitStatus::Exited(0)),
                    cpu: cpu_time(&usage),
                }));
            }
            // P_PIDFD came in 5.4, a release after pidfd_open: by pid then.
            (_, Errno::EINVAL) => {}
            (_, e) => return Err(e),
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child, which is unreaped (see `Root`).
        let r = unsafe {
            libc::wait4(
                root.pid,
                &mut status,
                libc::WNOHANG | libc::__WALL,
                &mut usage,
            )
        };
        if r == root.pid {
            return Ok(Some(Exit {
                status: WaitStatus::from_raw(status),
                cpu: cpu_time(&usage),
            }));
        }
        if r == 0 {
            return Ok(None);
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

enum Attempt {
    Reaped(Exit),
    Running(Option<Arc<OwnedFd>>),
    /// Reaped by another thread, not our child, or not registered.
    Gone,
}

/// One attempt to reap the root of entry `id`, under the registry lock, so
/// that a root is never reaped while another thread signals its pid.
fn try_reap_root(id: u64) -> Attempt {
    let mut live = live();
    let Some(root) = live.get_mut(&id).and_then(|e| e.root.as_mut()) else {
        return Attempt::Gone;
    };
    if root.reaped {
        return Attempt::Gone;
    }
    match reap_now(root) {
        Ok(Some(exit)) => {
            root.reaped = true;
            Attempt::Reaped(exit)
        }
        Ok(None) => Attempt::Running(root.pidfd.clone()),
        Err(_) => {
            root.reaped = true;
            Attempt::Gone
        }
    }
}

/// Waits up to `limit` (None: for good) for the root of entry `id` to exit,
/// then reaps it. The wait is outside the lock: on the pidfd, which turns
/// readable when the root exits, or polling without one.
fn reap_root(id: u64, limit: Option<Duration>) -> Option<Exit> {
    let started = Instant::now();
    let mut interval = Duration::from_micros(50);
    let mut pidfd_fired = false;
    loop {
        let pidfd = match try_reap_root(id) {
            Attempt::Reaped(exit) => return Some(exit),
            Attempt::Gone => return None,
            Attempt::Running(pidfd) => pidfd,
        };
        let left = limit.map(|l| l.saturating_sub(started.elapsed()));
        if left.is_some_and(|l| l.is_zero()) {
            return None;
        }
        match pidfd {
            Some(fd) if !pidfd_fired => pidfd_fired = poll_readable(&fd, left),
            // No pidfd, or it fired before the exit could be reaped: a poll
            // interval against the deadline, not a synchronisation point.
            _ => {
                std::thread::sleep(left.map_or(interval, |l| interval.min(l)));
                interval = (interval * 2).min(Duration::from_millis(5));
            }
        }
    }
}

fn poll_readable(fd: &OwnedFd, limit: Option<Duration>) -> bool {
    poll_in(
        fd,
        limit.map_or(-1, |l| l.as_millis().clamp(1, i32::MAX as u128) as i32),
    )
}

/// Whether a pidfd says its process has exited, without waiting.
fn readable_now(fd: &OwnedFd) -> bool {
    poll_in(fd, 0)
}

fn poll_in(fd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
}

/// Removes the tree from the registry when dropped. A tree dropped before
/// its root was reaped (a panic in between, say) is killed and reaped then.
pub struct Registration {
    id: u64,
}

/// Registers a tree, unless an interrupt came first: then the caller must kill
/// its agent itself. The registry lock orders this against the interrupt
/// thread, so no tree can slip in after it.
pub fn register(tree: Tree) -> Option<Registration> {
    let mut live = live();
    if INTERRUPTED.load(Ordering::SeqCst) {
        return None;
    }
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    live.insert(
        id,
        Entry {
            root: (tree.agent > 0).then(|| Root::pin(tree.agent)),
            caller_namespace: tree.caller_namespace,
            spawned: tree.spawned,
            container: tree.container,
            creating: None,
            creating_pid: None,
            nudge_init: None,
        },
    );
    Some(Registration { id })
}

/// Starts a tree's root with `start` (returning its pid) and registers it,
/// in one step under the registry lock: an interrupt comes either first
/// (then None, and nothing was started) or after, and then its thread sees
/// the root. A root started after the interrupt's sweep would outlive the
/// harness as an orphan. `start` must be quick (a vfork-style clone).
pub fn start_registered<E>(
    tree: Tree,
    start: impl FnOnce() -> Result<i32, E>,
) -> Option<Result<(i32, Registration), E>> {
    let mut live = live();
    if INTERRUPTED.load(Ordering::SeqCst) {
        return None;
    }
    let pid = match start() {
        Ok(pid) => pid,
        Err(e) => return Some(Err(e)),
    };
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    live.insert(
        id,
        Entry {
            root: Some(Root::pin(pid)),
            caller_namespace: tree.caller_namespace,
            spawned: tree.spawned,
            container: tree.container,
            creating: None,
            creating_pid: None,
            nudge_init: None,
        },
    );
    Some(Ok((pid, Registration { id })))
}

/// Registers a plain child (a QEMU): killed on timeout or interrupt. If an
/// interrupt came first, the child is killed and reaped here and None returned.
pub fn register_child(child: &mut std::process::Child) -> Option<Registration> {
    let registration = register(Tree {
        agent: child.id() as i32,
        caller_namespace: false,
        spawned: vec![],
        container: None,
    });
    if registration.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    registration
}

impl Registration {
    pub fn add_spawned(&self, pid: i32, start_time: u64) {
        if let Some(e) = live().get_mut(&self.id) {
            e.spawned.push((pid, start_time));
        }
    }

    pub fn kill(&self) {
        let spawned = match live().get(&self.id) {
            Some(e) => e.kill_root(),
            None => return,
        };
        for (pid, started) in spawned {
            kill_if_same(pid, started);
        }
    }

    /// The container's init is known (our child, or its foreground `run`'s,
    /// which reaps it: then only killed here, never reaped): from now on it is
    /// what a kill hits. `started` is its start time as the caller read it:
    /// a foreground init is not our child, so its pid could be another's by
    /// now, and a pidfd is kept only if the process it pins started then.
    /// Without pidfds (before Linux 5.3) only our own child is kept: a kill
    /// by number of a process another parent may reap could hit the pid's
    /// next owner. False after an interrupt, which may have come before the
    /// init was known and so could not kill it: the caller then gives up on
    /// the container (its `run` ends as the init reads no scenario), and
    /// the interrupt thread deletes it.
    #[must_use]
    pub fn set_agent(&self, pid: i32, started: u64) -> bool {
        let mut live = live();
        if INTERRUPTED.load(Ordering::SeqCst) {
            return false;
        }
        if let Some(e) = live.get_mut(&self.id) {
            let root = Root::pin(pid);
            let ours = || parent_and_start(pid) == Some((std::process::id() as i32, started));
            let keep = match root.pidfd {
                Some(_) => start_time(pid) == Some(started),
                None => ours(),
            };
            if keep {
                e.root = Some(root);
            }
        }
        true
    }

    /// Spawns the runtime command that creates the container (`run
    /// --detach`) and remembers it until `created`. Under
    /// the registry lock, so an interrupt either comes first (then None, and
    /// nothing was spawned) or sees the creation and waits for it.
    pub fn spawn_creating(
        &self,
        command: &mut std::process::Command,
    ) -> Option<std::io::Result<std::process::Child>> {
        let mut live = live();
        if INTERRUPTED.load(Ordering::SeqCst) {
            return None;
        }
        let spawned = command.spawn();
        if let (Ok(child), Some(e)) = (&spawned, live.get_mut(&self.id)) {
            // Our unreaped child: the pidfd is surely its.
            e.creating = pidfd_open(child.id() as i32).map(Arc::new);
            e.creating_pid = Some(child.id() as i32);
        }
        Some(spawned)
    }

    /// The container's foreground `run` may lose the SIGCHLD of its init
    /// `(pid, start time)`: an interrupt's wait for the `run` sends it again.
    pub fn nudge_on_interrupt(&self, init: (i32, u64)) {
        if let Some(e) = live().get_mut(&self.id) {
            e.nudge_init = Some(init);
        }
    }

    /// The runtime command that creates the container has ended (reaped by
    /// its caller).
    pub fn created(&self) {
        if let Some(e) = live().get_mut(&self.id) {
            e.creating = None;
            e.creating_pid = None;
        }
    }

    /// What `pid` is of another tree's, if anything: the runtime command
    /// creating its container (another scenario's `run`, a child of the
    /// harness in the harness's own cgroup, which no cgroup name tells
    /// apart), or its root (a container's init) while that still runs
    /// (pidfd not yet readable; unreaped, without one). Named after the
    /// container's id (the last word of its `delete --force ID`), or the
    /// tree's number.
    pub fn another_trees_process(&self, pid: i32) -> Option<String> {
        live().iter().find_map(|(&id, e)| {
            let root_running = e.root.as_ref().is_some_and(|r| {
                r.pid == pid && !r.reaped && r.pidfd.as_ref().is_none_or(|fd| !readable_now(fd))
            });
            let what = if e.creating_pid == Some(pid) {
                "the runtime command creating"
            } else if root_running && e.container.is_some() {
                "the init of"
            } else if root_running {
                "the root of"
            } else {
                return None;
            };
            let whose = e
                .container
                .as_ref()
                .and_then(|c| c.delete.1.last())
                .map_or(format!("tree {id}"), |name| {
                    name.to_string_lossy().into_owned()
                });
            (id != self.id).then(|| format!("{what} {whose}"))
        })
    }

    /// The container has been deleted: nothing is left for the interrupt handler to delete.
    pub fn deleted(&self) {
        if let Some(e) = live().get_mut(&self.id) {
            e.container = None;
        }
    }

    /// After the root is reaped: reap the tree's processes that were orphaned to us.
    pub fn reap_adopted(&self) {
        let spawned = live()
            .get(&self.id)
            .map(|e| e.spawned.clone())
            .unwrap_or_default();
        reap_adopted(&spawned);
    }

    /// Waits up to `limit` (None: for good) for the root to exit and reaps
    /// it; every reap of a root goes through here. None if it is still
    /// running at the limit, or was reaped elsewhere (by the interrupt
    /// handler), or is not our child.
    pub fn reap_root(&self, limit: Option<Duration>) -> Option<Exit> {
        reap_root(self.id, limit)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let unfinished = live().get(&self.id).is_some_and(Entry::unfinished);
        if unfinished {
            self.kill();
            self.reap_root(None);
            self.reap_adopted();
        }
        let entry = live().remove(&self.id);
        // After an interrupt its thread deletes every container it saw.
        if let (true, Some(c), false) = (unfinished, entry.and_then(|e| e.container), interrupted())
        {
            c.delete();
        }
    }
}

/// (parent pid, start time) from /proc/PID/stat, now.
pub fn parent_and_start(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    orphanage_scenario::ProcStat::parse(&text).map(|s| (s.ppid, s.start_time))
}

fn start_time(pid: i32) -> Option<u64> {
    parent_and_start(pid).map(|(_, start)| start)
}

/// SIGKILL to a reported process if it is still the one that started at
/// `started`. The pidfd is taken before the check, so if the check passes
/// the pidfd is that process, and the signal cannot hit a successor. Without
/// pidfds, checked and then killed by pid.
fn kill_if_same(pid: i32, started: u64) {
    let pidfd = pidfd_open(pid);
    if start_time(pid) != Some(started) {
        return;
    }
    match pidfd {
        Some(fd) => {
            pidfd_signal(&fd, libc::SIGKILL);
        }
        None => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Reaps our child `pid` if it is still the process that started at
/// `started`: through a pidfd taken before the check (as in `kill_if_same`),
/// so that another child given the pid since, maybe another tree's root, is
/// never reaped by mistake.
fn reap_if_same(pid: i32, started: u64) {
    let pidfd = pidfd_open(pid);
    if start_time(pid) != Some(started) {
        return;
    }
    if let Some(fd) = &pidfd {
        // SAFETY: a zeroed siginfo is valid; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(P_PIDFD) on a pidfd we hold.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::__WALL,
            )
        };
        // P_PIDFD came in 5.4, a release after pidfd_open: by pid then.
        if r == 0 || Errno::last() != Errno::EINVAL {
            return;
        }
    }
    let _ = nix::sys::wait::waitpid(
        Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::__WALL),
    );
}

/// Reaps, by pid, each of the tree's processes that is now our child. Never
/// waitpid(-1): that would steal other trials' agents.
/// Everything was SIGKILLed first, so a process whose parent is still dying
/// becomes ours within moments: poll each one until it is gone or ours.
fn reap_adopted(spawned: &[(i32, u64)]) {
    let me = std::process::id() as i32;
    // Not a subreaper (a kernel without them), no orphan ever becomes ours:
    // nothing to wait for, only our own children to reap.
    let wait = if SUBREAPER.load(Ordering::SeqCst) {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    let deadline = Instant::now() + wait;
    for &(pid, started) in spawned {
        let mut interval = Duration::from_micros(20);
        loop {
            match parent_and_start(pid) {
                Some((parent, start)) if start == started && parent == me => {
                    reap_if_same(pid, started);
                    break;
                }
                // Another process's now, or gone (or its pid reused): not ours to reap.
                Some((_, start)) if start == started && Instant::now() < deadline => {
                    // A poll interval inside a deadline, not a synchronisation point.
                    std::thread::sleep(interval);
                    interval = (interval * 2).min(Duration::from_millis(2));
                }
                _ => break,
            }
        }
    }
}

/// SIGKILL to `pid` if it is still our child. Another thread may reap it
/// (and the pid be reused) at any moment, so as in `kill_if_same` the pidfd
/// is taken before the check.
fn kill_if_our_child(pid: i32, me: i32) {
    let pidfd = pidfd_open(pid);
    if parent_and_start(pid).is_none_or(|(parent, _)| parent != me) {
        return;
    }
    match pidfd {
        Some(fd) => {
            pidfd_signal(&fd, libc::SIGKILL);
        }
        None => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Reaps every child that has exited, under the registry lock, marking any
/// registered root among them reaped, as `try_reap_root` does.
fn reap_exited_children() {
    let mut live = live();
    while let Ok(status) = nix::sys::wait::waitpid(
        None,
        Some(nix::sys::wait::WaitPidFlag::WNOHANG | nix::sys::wait::WaitPidFlag::__WALL),
    ) {
        let Some(pid) = status.pid() else { break };
        for root in live.values_mut().filter_map(|e| e.root.as_mut()) {
            if root.pid == pid.as_raw() {
                root.reaped = true;
            }
        }
    }
}

/// On the way out: kill and reap every child we still have, until none is
/// left. As a subreaper we inherit the orphans of dying trees one generation at
/// a time, including processes whose `Spawned` event was never read, so this
/// loops until a scan of /proc finds no child of ours.
pub fn sweep_children(deadline: Duration) {
    let me = std::process::id() as i32;
    let until = Instant::now() + deadline;
    let mut interval = Duration::from_micros(50);
    loop {
        let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| Some((pid, parent_and_start(pid)?.0)))
            .collect();
        let children: Vec<i32> = parents
            .iter()
            .filter(|(_, parent)| *parent == me)
            .map(|(pid, _)| *pid)
            .collect();
        // Done only when no descendant is left at all: the child of a
        // process that is still dying is not ours yet, but becomes ours (we
        // are its subreaper) once that exit completes, after a scan that
        // found no child would have ended the sweep.
        if descendants_of(me, &parents) == 0 || Instant::now() > until {
            return;
        }
        for &pid in &children {
            kill_if_our_child(pid, me);
        }
        reap_exited_children();
        // A poll interval inside the deadline while the killed children die.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(5));
    }
}

/// How many processes of `(pid, parent)` descend from `ancestor`.
fn descendants_of(ancestor: i32, parents: &[(i32, i32)]) -> usize {
    let mut found = vec![ancestor];
    let mut next = 0;
    while next < found.len() {
        let of = found[next];
        found.extend(
            parents
                .iter()
                .filter(|(pid, parent)| *parent == of && !found.contains(pid))
                .map(|(pid, _)| *pid)
                .collect::<Vec<_>>(),
        );
        next += 1;
    }
    found.len() - 1
}

type Say = Box<dyn Fn() -> String + Send>;

/// What the interrupt handler prints last (explore: the seed to resume from).
static SAY_ON_INTERRUPT: Mutex<Option<Say>> = Mutex::new(None);

/// Sets a line for the interrupt handler to print on its way out, computed then.
pub fn say_on_interrupt(say: impl Fn() -> String + Send + 'static) {
    *SAY_ON_INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(say));
}

/// Directories the interrupt handler removes on its way out (the agent's
/// copy, each VM's initramfs).
static REMOVE_ON_EXIT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub fn remove_on_interrupt(dir: PathBuf) {
    REMOVE_ON_EXIT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(dir);
}

/// Removes a directory named by `remove_on_interrupt` now, and forgets it.
/// Under the lock the interrupt thread holds while it removes them: so the
/// removal is either this one or the interrupt's, never cut short by the
/// interrupt's exit after the directory was forgotten.
pub fn remove_now(dir: &std::path::Path) {
    let mut dirs = REMOVE_ON_EXIT.lock().unwrap_or_else(|p| p.into_inner());
    let _ = std::fs::remove_dir_all(dir);
    dirs.retain(|d| d != dir);
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread started
/// after it) and starts the one thread that waits for them. On either, it
/// kills and reaps every live tree, removes the directory named by
/// `remove_on_interrupt`, and exits with 128 + the signal number. Installed
/// before anything is created, so no moment of a run is left unguarded.
pub fn install_interrupt_handler() -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    HANDLER_INSTALLED.store(true, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            let quiet = OUTPUT_CLOSED.load(Ordering::SeqCst);
            let (ids, spawned, containers) = {
                let live = live();
                INTERRUPTED.store(true, Ordering::SeqCst);
                let spawned: Vec<(i32, u64)> = live.values().flat_map(Entry::kill_root).collect();
                let ids: Vec<u64> = live.keys().copied().collect();
                // No create can start after this: spawn_creating checks INTERRUPTED.
                // (container, its creation still running, the init to nudge it for)
                let containers: Vec<_> = live
                    .values()
                    .filter_map(|e| Some((e.container.clone()?, e.creating.clone(), e.nudge_init)))
                    .collect();
                (ids, spawned, containers)
            };
            for (pid, started) in spawned {
                kill_if_same(pid, started);
            }
            // Each root is reaped here or by its own thread, whichever comes
            // first. One that SIGKILL does not end in time is left to the sweep.
            let until = Instant::now() + Duration::from_secs(10);
            for &id in &ids {
                reap_root(id, Some(until.saturating_duration_since(Instant::now())));
            }
            // Containers after their processes: delete removes state and
            // cgroups. Every root is reaped or left to the sweep by now, so
            // reaping whatever child has exited steals no one's status.
            // Every create still running is waited for first, all against
            // one 10 s budget (each is bounded by its scenario's deadline
            // too), and killed only past it; then the deletes. A create
            // killed so (a hung runtime) may still leave state behind. A
            // foreground `run` that lost its init's SIGCHLD is sent it again.
            let until = Instant::now() + Duration::from_secs(10);
            for (_, creating, nudge_init) in &containers {
                let Some(fd) = creating else { continue };
                let mut nudge = nudge_init
                    .and_then(|init| Some(SigchldNudge::from_pidfd(fd.try_clone().ok()?, init)))
                    .unwrap_or_else(SigchldNudge::none);
                let left = until.saturating_duration_since(Instant::now());
                if !foreground_run_exited_within(fd.as_fd(), &mut nudge, left) {
                    pidfd_signal(fd, libc::SIGKILL);
                }
            }
            for (c, _, _) in &containers {
                c.delete_while(&mut reap_exited_children);
            }
            sweep_children(Duration::from_secs(5));
            for dir in REMOVE_ON_EXIT
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
            {
                let _ = std::fs::remove_dir_all(dir);
            }
            if quiet {
                std::process::exit(128 + libc::SIGPIPE);
            }
            eprintln!(
                "\norphanage: {} received, killed {} running scenario tree(s)",
                signal.as_str(),
                ids.len()
            );
            if let Some(say) = SAY_ON_INTERRUPT
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                eprintln!("{}", say());
            }
            std::process::exit(128 + signal as i32);
        })
        .map(|_| ())
        .map_err(|_| nix::errno::Errno::EAGAIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    /// Set in the copy of this test binary that runs in its own pid namespace.
    const INSIDE: &str = "ORPHANAGE_LIVE_TEST_INSIDE";

    /// Runs test `name` of this binary again as the init of a new pid
    /// namespace with its own /proc, where writing ns_last_pid makes the next
    /// fork reuse a pid on demand without touching the machine's pids. True
    /// in that copy, which then runs the test's body.
    fn in_own_pid_namespace(name: &str) -> bool {
        if std::env::var_os(INSIDE).is_some() {
            return true;
        }
        let test = format!("{}::{name}", module_path!().split_once("::").unwrap().1);
        let mut unshare = Command::new("unshare");
        if !nix::unistd::geteuid().is_root() {
            unshare.args(["--user", "--map-root-user"]);
        }
        let out = unshare
            .args(["--pid", "--fork", "--mount-proc", "--"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--test-threads", "1", "--nocapture"])
            .env(INSIDE, "1")
            .output()
            .expect("cannot run unshare(1)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{test} in its own pid namespace: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        false
    }

    /// `sleep` leading its own process group, whose id is then its pid.
    fn sleeper() -> Child {
        Command::new("sleep")
            .arg("1000")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    /// The next process this pid namespace makes gets `pid` (which is free).
    fn next_pid_will_be(pid: u32) {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
    }

    /// Whether `pid` has been sent SIGKILL: dead, or SIGKILL pending. kill(2)
    /// has queued it by the time it returns, so this needs no waiting.
    fn got_sigkill(pid: u32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let pending = |name: &str| {
            u64::from_str_radix(&field(name), 16).unwrap_or(0) & (1 << (libc::SIGKILL - 1)) != 0
        };
        status.is_empty()
            || field("State:").starts_with(['Z', 'X'])
            || pending("SigPnd:")
            || pending("ShdPnd:")
    }

    fn end(mut child: Child) {
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A root reaped around the registry (as an interrupt's sweep may), its
    /// pid then given to another process: killing the tree must not touch
    /// that process. By pid it would; through the pidfd taken at
    /// registration the signal goes to the dead root.
    #[test]
    fn a_reused_root_pid_is_never_signalled() {
        if !in_own_pid_namespace("a_reused_root_pid_is_never_signalled") {
            return;
        }
        let mut root = sleeper();
        let registration = register_child(&mut root).unwrap();
        end(root);
        next_pid_will_be(registration_pid(&registration));
        let stranger = sleeper();
        assert_eq!(stranger.id(), registration_pid(&registration), "no reuse");
        registration.kill();
        let hit = got_sigkill(stranger.id());
        end(stranger);
        drop(registration);
        assert!(!hit, "the process that took the root's pid was killed");
    }

    /// The same in the caller's namespace, where the root's process group is
    /// killed too: a group led by the pid's new owner must be left alone.
    #[test]
    fn a_reused_root_pid_is_never_signalled_as_a_process_group() {
        if !in_own_pid_namespace("a_reused_root_pid_is_never_signalled_as_a_process_group") {
            return;
        }
        let root = sleeper();
        let registration = register_in_caller_namespace(&root);
        end(root);
        next_pid_will_be(registration_pid(&registration));
        let stranger = sleeper();
        assert_eq!(stranger.id(), registration_pid(&registration), "no reuse");
        let member = Command::new("sleep")
            .arg("1000")
            .process_group(stranger.id() as i32)
            .spawn()
            .unwrap();
        registration.kill();
        let hit = got_sigkill(member.id());
        end(member);
        end(stranger);
        drop(registration);
        assert!(
            !hit,
            "a process in the group of the pid's new owner was killed"
        );
    }

    /// A container's init in a foreground `run` is not our child: it may
    /// have exited, been reaped by its `run`, and its pid been given to
    /// another process by the time the harness pins it. The start time read
    /// before tells them apart, and the stranger is never signalled.
    #[test]
    fn a_foreground_init_whose_pid_was_reused_is_never_signalled() {
        if !in_own_pid_namespace("a_foreground_init_whose_pid_was_reused_is_never_signalled") {
            return;
        }
        let registration = register(Tree::default()).unwrap();
        let init = sleeper();
        let pid = init.id();
        let started = start_time(pid as i32).unwrap();
        end(init);
        // Start times count clock ticks: a stranger started in the init's
        // tick is made again until one starts in a later tick.
        let deadline = Instant::now() + Duration::from_secs(5);
        let stranger = loop {
            next_pid_will_be(pid);
            let stranger = sleeper();
            assert_eq!(stranger.id(), pid, "no reuse");
            if start_time(pid as i32) != Some(started) {
                break stranger;
            }
            assert!(Instant::now() < deadline, "the clock tick never moved on");
            end(stranger);
        };
        assert!(registration.set_agent(pid as i32, started));
        registration.kill();
        let hit = got_sigkill(stranger.id());
        drop(registration);
        assert!(!hit, "the process that took the init's pid was killed");
        // The stranger, named with its own start time, is what a kill hits.
        let registration = register(Tree::default()).unwrap();
        let own_start = start_time(pid as i32).unwrap();
        assert!(registration.set_agent(pid as i32, own_start));
        registration.kill();
        let hit = got_sigkill(stranger.id());
        end(stranger);
        drop(registration);
        assert!(hit, "an init named with its start time was not killed");
    }

    /// A root reaped around the registry leaves its group behind: the rest
    /// of the group is still killed, through the root's pidfd (Linux 6.9).
    #[test]
    fn the_group_of_a_root_reaped_elsewhere_is_still_killed() {
        let root = sleeper();
        let registration = register_in_caller_namespace(&root);
        let member = Command::new("sleep")
            .arg("1000")
            .process_group(root.id() as i32)
            .spawn()
            .unwrap();
        let fd = pidfd_open(root.id() as i32).unwrap();
        let probe = orphanage_agent_io::pidfd_send_signal_to_group(fd.as_fd(), 0);
        end(root);
        if probe == Err(Errno::EINVAL) {
            end(member);
            eprintln!("PIDFD_SIGNAL_PROCESS_GROUP refused with EINVAL: Linux 6.9 is needed");
            return;
        }
        registration.kill();
        let hit = got_sigkill(member.id());
        end(member);
        drop(registration);
        assert!(
            hit,
            "the member of the reaped root's group was left running"
        );
    }

    /// `root` registered as a tree in the caller's namespace, where killing
    /// it kills its process group too.
    fn register_in_caller_namespace(root: &Child) -> Registration {
        register(Tree {
            agent: root.id() as i32,
            caller_namespace: true,
            ..Tree::default()
        })
        .unwrap()
    }

    fn registration_pid(registration: &Registration) -> u32 {
        live()[&registration.id].root.as_ref().unwrap().pid as u32
    }

    /// Every reap of a root goes through `reap_root`, which marks it; then
    /// a kill by pid (as without pidfds) must not reach the pid's next owner.
    #[test]
    fn a_root_reaped_through_the_registry_is_not_signalled_by_pid() {
        if !in_own_pid_namespace("a_root_reaped_through_the_registry_is_not_signalled_by_pid") {
            return;
        }
        // Killed and reaped through the registry, which is what is tested.
        #[allow(clippy::zombie_processes)]
        let root = sleeper();
        let registration = register_in_caller_namespace(&root);
        // As on a kernel without pidfd_open.
        live()
            .get_mut(&registration.id)
            .unwrap()
            .root
            .as_mut()
            .unwrap()
            .pidfd = None;
        registration.kill();
        let exit = registration.reap_root(None).expect("reaped");
        assert_eq!(exit.status.to_string(), "killed by SIGKILL");
        next_pid_will_be(root.id());
        let stranger = sleeper();
        assert_eq!(stranger.id(), root.id(), "no reuse");
        registration.kill();
        let hit = got_sigkill(stranger.id());
        end(stranger);
        drop(registration);
        assert!(!hit, "the process that took the root's pid was killed");
    }

    /// Another scenario's `run` (while it creates) and its running init are
    /// told apart from this one's; neither is once it is over.
    #[test]
    fn another_trees_run_and_init_are_named_while_they_last() {
        let container = |id: &str| Container {
            delete: (
                "true".into(),
                vec!["delete".into(), "--force".into(), id.into()],
            ),
        };
        let with_container = |id: &str| Tree {
            container: Some(container(id)),
            ..Tree::default()
        };
        let this = register(with_container("c-1")).unwrap();
        let other = register(with_container("c-2")).unwrap();
        let mut creating = other
            .spawn_creating(Command::new("sleep").arg("30"))
            .unwrap()
            .unwrap();
        let run = creating.id() as i32;
        assert_eq!(
            this.another_trees_process(run).as_deref(),
            Some("the runtime command creating c-2")
        );
        assert_eq!(other.another_trees_process(run), None, "its own");
        creating.kill().unwrap();
        creating.wait().unwrap();
        other.created();
        assert_eq!(this.another_trees_process(run), None, "over");

        let mut init = sleeper();
        let pid = init.id() as i32;
        let third = register(Tree {
            agent: pid,
            ..with_container("c-3")
        })
        .unwrap();
        assert_eq!(
            this.another_trees_process(pid).as_deref(),
            Some("the init of c-3")
        );
        init.kill().unwrap();
        // Exited (its pidfd readable), though not reaped yet.
        let deadline = Instant::now() + Duration::from_secs(5);
        while this.another_trees_process(pid).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(this.another_trees_process(pid), None, "exited");
        third.reap_root(None).expect("reaped");
        drop(init);
    }

    #[test]
    fn descendants_are_counted_down_every_generation() {
        // 10 is us; 11 our child, 12 its child (ours once 11 has exited), 20 a stranger's.
        let parents = [(11, 10), (12, 11), (13, 12), (20, 1), (21, 20)];
        assert_eq!(descendants_of(10, &parents), 3);
        assert_eq!(descendants_of(12, &parents), 1);
        assert_eq!(descendants_of(13, &parents), 0);
        // A loop in a torn read of /proc must not loop here.
        assert_eq!(descendants_of(30, &[(31, 30), (30, 31)]), 1);
    }

    /// The status reaped through the pidfd reads as waitpid(2) would give it.
    #[test]
    fn reap_root_gives_the_wait_status() {
        for (script, expected) in [
            ("exit 3", WaitStatus::Exited(3)),
            (
                "kill -9 $$",
                WaitStatus::Killed {
                    signal: libc::SIGKILL,
                    core_dumped: false,
                },
            ),
        ] {
            let mut child = Command::new("sh").args(["-c", script]).spawn().unwrap();
            let registration = register_child(&mut child).unwrap();
            let status = registration.reap_root(None).expect("reaped").status;
            assert_eq!(status, expected, "{script}");
            assert!(registration.reap_root(None).is_none(), "reaped twice");
        }
    }
}
