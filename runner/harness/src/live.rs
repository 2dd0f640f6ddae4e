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

/// Removes the tree from the registry when dropped (after the agent is reaped).
pub struct Registration(u64);

pub fn register(tree: Tree) -> Registration {
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    live().insert(id, tree);
    Registration(id)
}

impl Registration {
    pub fn add_spawned(&self, pid: i32, start_time: u64) {
        if let Some(t) = live().get_mut(&self.0) {
            t.spawned.push((pid, start_time));
        }
    }

    pub fn kill(&self) {
        if let Some(t) = live().get(&self.0).cloned() {
            kill_tree(&t);
        }
    }

    /// After the agent is reaped: reap the tree's processes that were orphaned to us.
    pub fn reap_adopted(&self) {
        if let Some(t) = live().get(&self.0).cloned() {
            reap_adopted(&t);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        live().remove(&self.0);
    }
}

/// (parent pid, start time) from /proc/PID/stat.
fn parent_and_start(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
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

pub fn kill_tree(t: &Tree) {
    let _ = kill(Pid::from_raw(t.agent), Signal::SIGKILL);
    if t.caller_namespace {
        // The agent leads its own session; its workers share its process group
        // unless a scenario moved them, and those were reported one by one.
        let _ = kill(Pid::from_raw(-t.agent), Signal::SIGKILL);
        for &(pid, started) in &t.spawned {
            if start_time(pid) == Some(started) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread started
/// after it) and starts the one thread that waits for them. On either, it
/// kills and reaps every live tree, removes `remove_on_exit`, and exits with
/// 128 + the signal number.
pub fn install_interrupt_handler(remove_on_exit: Option<PathBuf>) -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            INTERRUPTED.store(true, Ordering::SeqCst);
            let trees: Vec<Tree> = live().values().cloned().collect();
            for t in &trees {
                kill_tree(t);
            }
            for t in &trees {
                // The trial thread may reap it first; ECHILD then is fine.
                let _ = nix::sys::wait::waitpid(
                    Pid::from_raw(t.agent),
                    Some(nix::sys::wait::WaitPidFlag::__WALL),
                );
            }
            if let Some(dir) = &remove_on_exit {
                let _ = std::fs::remove_dir_all(dir);
            }
            eprintln!(
                "\norphanage: {} received, killed {} running scenario tree(s)",
                signal.as_str(),
                trees.len()
            );
            std::process::exit(128 + signal as i32);
        })
        .map(|_| ())
        .map_err(|_| nix::errno::Errno::EAGAIN)
}
