//! Every scenario tree that is running, so that a timeout, Ctrl-C or SIGTERM
//! can kill it. In a fresh pid namespace, SIGKILL to the agent (its init)
//! takes the whole namespace down; in the caller's namespace the agent's
//! session and every process it reported are killed, each checked against its
//! start time so a recycled pid is never hit.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The agent: our direct child, so its pid cannot be recycled until we reap it.
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
        crate::target::run_bounded(
            &self.delete.0,
            &self.delete.1,
            std::time::Duration::from_secs(30),
        )
        .is_ok_and(|r| r.ok)
    }
}

static LIVE: Mutex<BTreeMap<u64, Tree>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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
    nix::errno::Errno::result(r).map(|_| ())
}

fn live() -> std::sync::MutexGuard<'static, BTreeMap<u64, Tree>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the tree from the registry when dropped. A tree dropped before
/// `reaped()` (a panic in between, say) is killed and reaped then.
pub struct Registration {
    id: u64,
    reaped: std::cell::Cell<bool>,
}

/// Registers a tree, unless an interrupt came first: then the caller must kill
/// its agent itself. The registry lock orders this against the interrupt
/// thread's snapshot, so no tree can slip in after it.
pub fn register(tree: Tree) -> Option<Registration> {
    let mut live = live();
    if INTERRUPTED.load(Ordering::SeqCst) {
        return None;
    }
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    live.insert(id, tree);
    Some(Registration {
        id,
        reaped: std::cell::Cell::new(false),
    })
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
        if let Some(t) = live().get_mut(&self.id) {
            t.spawned.push((pid, start_time));
        }
    }

    pub fn kill(&self) {
        // Once reaped, the entry's agent is 0: its pid may belong to someone else.
        if let Some(t) = live().get(&self.id).cloned() {
            kill_tree(&t);
        }
    }

    /// The container's init is known (and is our child): from now on it is
    /// what a kill hits.
    pub fn set_agent(&self, pid: i32) {
        if let Some(t) = live().get_mut(&self.id) {
            t.agent = pid;
        }
    }

    /// The container has been deleted: nothing is left for the interrupt handler to delete.
    pub fn deleted(&self) {
        if let Some(t) = live().get_mut(&self.id) {
            t.container = None;
        }
    }

    /// After the agent is reaped: reap the tree's processes that were orphaned to us.
    pub fn reap_adopted(&self) {
        if let Some(t) = live().get(&self.id).cloned() {
            reap_adopted(&t);
        }
    }
}

impl Registration {
    /// The agent has been reaped: dropping this only unregisters.
    pub fn reaped(&self) {
        self.reaped.set(true);
        // Under the lock, so the interrupt thread never signals or waits for a reaped pid.
        if let Some(t) = live().get_mut(&self.id) {
            t.agent = 0;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let tree = live().remove(&self.id);
        if let (Some(t), false) = (tree, self.reaped.get()) {
            kill_tree(&t);
            if t.agent > 0 {
                let _ = nix::sys::wait::waitpid(
                    Pid::from_raw(t.agent),
                    Some(nix::sys::wait::WaitPidFlag::__WALL),
                );
            }
            reap_adopted(&t);
            if let Some(c) = &t.container {
                c.delete();
            }
        }
    }
}

/// (parent pid, start time) from /proc/PID/stat.
fn parent_and_start(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    orphanage_scenario::ProcStat::parse(&text).map(|s| (s.ppid, s.start_time))
}

fn start_time(pid: i32) -> Option<u64> {
    parent_and_start(pid).map(|(_, start)| start)
}

/// Reaps, by pid, each of the tree's processes that is now our child. Never
/// waitpid(-1): that would steal other trials' agents.
/// Everything was SIGKILLed first, so a process whose parent is still dying
/// becomes ours within moments: poll each one until it is gone or ours.
fn reap_adopted(t: &Tree) {
    let me = std::process::id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    for &(pid, started) in &t.spawned {
        let mut interval = std::time::Duration::from_micros(20);
        loop {
            match parent_and_start(pid) {
                Some((parent, start)) if start == started && parent == me => {
                    let _ = nix::sys::wait::waitpid(
                        Pid::from_raw(pid),
                        Some(nix::sys::wait::WaitPidFlag::__WALL),
                    );
                    break;
                }
                // Another process's now, or gone (or its pid reused): not ours to reap.
                Some((_, start)) if start == started && std::time::Instant::now() < deadline => {
                    // A poll interval inside a deadline, not a synchronisation point.
                    std::thread::sleep(interval);
                    interval = (interval * 2).min(std::time::Duration::from_millis(2));
                }
                _ => break,
            }
        }
    }
}

/// Kills a tree. `agent` 0 means it is already reaped: only the reported
/// processes, each checked against its start time, are killed then.
pub fn kill_tree(t: &Tree) {
    if t.agent > 0 {
        let _ = kill(Pid::from_raw(t.agent), Signal::SIGKILL);
    }
    if t.caller_namespace {
        // The agent leads its own session; its workers share its process group
        // unless a scenario moved them, and those were reported one by one.
        if t.agent > 0 {
            let _ = kill(Pid::from_raw(-t.agent), Signal::SIGKILL);
        }
        for &(pid, started) in &t.spawned {
            if start_time(pid) == Some(started) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// On the way out: kill and reap every child we still have, until none is
/// left. As a subreaper we inherit the orphans of dying trees one generation at
/// a time, including processes whose `Spawned` event was never read, so this
/// loops until a scan of /proc finds no child of ours.
pub fn sweep_children(deadline: std::time::Duration) {
    let me = std::process::id() as i32;
    let until = std::time::Instant::now() + deadline;
    let mut interval = std::time::Duration::from_micros(50);
    loop {
        let children: Vec<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| parent_and_start(pid).is_some_and(|(parent, _)| parent == me))
            .collect();
        if children.is_empty() || std::time::Instant::now() > until {
            return;
        }
        for &pid in &children {
            // Our children: their pids cannot be reused until we reap them.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        while let Ok(status) = nix::sys::wait::waitpid(
            None,
            Some(nix::sys::wait::WaitPidFlag::WNOHANG | nix::sys::wait::WaitPidFlag::__WALL),
        ) {
            if status == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
        }
        // A poll interval inside the deadline while the killed children die.
        std::thread::sleep(interval);
        interval = (interval * 2).min(std::time::Duration::from_millis(5));
    }
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

/// The directory is gone already (or about to be): forget it.
pub fn forget_on_interrupt(dir: &std::path::Path) {
    REMOVE_ON_EXIT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|d| d != dir);
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
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            let trees: Vec<Tree> = {
                let live = live();
                INTERRUPTED.store(true, Ordering::SeqCst);
                live.values().cloned().collect()
            };
            for t in &trees {
                kill_tree(t);
            }
            for t in &trees {
                // The trial thread may reap it first; ECHILD then is fine.
                if t.agent > 0 {
                    let _ = nix::sys::wait::waitpid(
                        Pid::from_raw(t.agent),
                        Some(nix::sys::wait::WaitPidFlag::__WALL),
                    );
                }
            }
            // Containers after their processes: delete removes state and cgroups.
            for c in trees.iter().filter_map(|t| t.container.as_ref()) {
                c.delete();
            }
            sweep_children(std::time::Duration::from_secs(5));
            for dir in REMOVE_ON_EXIT
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
            {
                let _ = std::fs::remove_dir_all(dir);
            }
            eprintln!(
                "\norphanage: {} received, killed {} running scenario tree(s)",
                signal.as_str(),
                trees.len()
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
