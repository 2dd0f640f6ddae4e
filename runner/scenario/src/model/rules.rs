//! The kernel's rules for who adopts an orphan, who hears of a child's death
//! and when a dead child is reaped without a wait, as small pure functions.
//! Each cites the source or man page it transcribes; `World` applies them.

use crate::step::SpawnHow;
use nix::libc;

/// What a process does with SIGCHLD (sigaction(2)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Disposition {
    /// SIG_DFL: the signal is discarded, the child stays a zombie until waited.
    #[default]
    Default,
    /// A handler; with SA_NOCLDWAIT children are also reaped automatically.
    Handler { nocldwait: bool },
    /// An init program's handler that reaps every child as SIGCHLD arrives.
    Reaper,
    /// SIG_IGN.
    Ignore,
}

/// A deliberately wrong rule, to prove that exploration notices one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Defect {
    #[default]
    None,
    /// Forget PR_SET_CHILD_SUBREAPER: orphans always go to the namespace's init.
    NoSubreaper,
    /// Forget the thread group: a thread's children go to a reaper when it exits.
    NoThreadGroup,
}

impl std::str::FromStr for Defect {
    type Err = crate::UnknownName;
    fn from_str(text: &str) -> Result<Self, crate::UnknownName> {
        match text {
            "none" => Ok(Defect::None),
            "no-subreaper" => Ok(Defect::NoSubreaper),
            "no-thread-group" => Ok(Defect::NoThreadGroup),
            _ => Err(crate::UnknownName::new(
                "model defect",
                text,
                "one of none, no-subreaper, no-thread-group",
            )),
        }
    }
}

/// One ancestor as `find_new_reaper` sees it while walking up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ancestor<'a> {
    pub name: &'a str,
    /// Depth of the pid namespace the ancestor's pid belongs to (`pid->level`).
    pub level: usize,
    pub is_child_subreaper: bool,
}

/// The new parent of an exiting process's children.
///
/// kernel/exit.c forget_original_parent() -> find_new_reaper(): "When we die,
/// we re-parent all our children, and try to: 1. give them to another thread
/// in our thread group, if such a member exists; 2. give it to the first
/// ancestor process which prctl'd itself as a child_subreaper for its
/// children (like a service manager); 3. give it to the init process (PID 1)
/// in our pid namespace." The walk stops where `pid->level` changes, so a
/// subreaper outside a child pid namespace never adopts from inside it
/// (pid_namespaces(7), prctl(2) PR_SET_CHILD_SUBREAPER).
///
/// `live_thread` is another live thread of the exiting one's group,
/// `ancestors` its ancestors nearest first (living ones only: a dead process
/// has no children left to be an ancestor through), `level` the exiting
/// process's own pid-namespace depth and `ns_init` that namespace's init
/// (kernel/exit.c find_child_reaper()).
pub fn find_new_reaper<'a>(
    live_thread: Option<&'a str>,
    ancestors: &[Ancestor<'a>],
    level: usize,
    ns_init: &'a str,
    defect: Defect,
) -> &'a str {
    if let Some(thread) = live_thread.filter(|_| defect != Defect::NoThreadGroup) {
        return thread;
    }
    if defect != Defect::NoSubreaper {
        for a in ancestors.iter().take_while(|a| a.level == level) {
            if a.is_child_subreaper {
                return a.name;
            }
        }
    }
    ns_init
}

/// What the parent learns when a child dies, and whether the child is reaped
/// at once instead of staying a zombie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The signal delivered to the parent's handler, if it has one for it.
    pub delivered: Option<i32>,
    /// Reaped by the kernel (or the parent's reaping handler) without a wait.
    pub autoreaped: bool,
}

/// kernel/signal.c do_notify_parent(): a child dying with exit signal SIGCHLD
/// whose parent sets SIGCHLD to SIG_IGN, or catches it with SA_NOCLDWAIT, is
/// reaped automatically; SIG_IGN also suppresses the signal, SA_NOCLDWAIT
/// does not ("Whether we send SIGCHLD or not for SA_NOCLDWAIT is
/// implementation-defined: we do"). wait(2) NOTES and sigaction(2)
/// SA_NOCLDWAIT say the same. Any other exit signal never autoreaps.
/// `caught` is whether the parent has a handler for `signal`.
pub fn notify_parent(signal: i32, sigchld: Disposition, caught: bool) -> Notification {
    let is_sigchld = signal == libc::SIGCHLD;
    let (autoreaped, suppressed) = match sigchld {
        Disposition::Ignore if is_sigchld => (true, true),
        Disposition::Handler { nocldwait: true } if is_sigchld => (true, false),
        // The init-program handler reaps on SIGCHLD with waitpid(-1, __WALL).
        Disposition::Reaper if is_sigchld => (true, true),
        _ => (false, false),
    };
    let delivered = (caught && !suppressed).then_some(signal);
    Notification {
        delivered,
        autoreaped,
    }
}

/// Whether `spawn` by a process succeeds, or the errno it fails with.
///
/// kernel/fork.c copy_process(): "Siblings of global init remain as zombies
/// on exit since they are not reaped by their parent (swapper). To solve
/// this and to avoid multi-rooted process trees, prevent global and
/// container-inits from creating siblings": CLONE_PARENT from an init gives
/// EINVAL (clone(2) ERRORS). clone3(2) also refuses CLONE_PARENT with a
/// nonzero exit_signal (kernel/fork.c clone3_args_valid()).
pub fn spawn_errno(how: SpawnHow, caller_is_init: bool, exit_signal_given: bool) -> Option<i32> {
    match how {
        SpawnHow::CloneParent | SpawnHow::Clone3Parent | SpawnHow::Clone3ParentOrClone
            if caller_is_init =>
        {
            Some(libc::EINVAL)
        }
        SpawnHow::Clone3Parent | SpawnHow::Clone3ParentOrClone if exit_signal_given => {
            Some(libc::EINVAL)
        }
        _ => None,
    }
}

/// The exit signal a new process gets. clone(2): CLONE_PARENT children take
/// the caller's own exit signal whatever the flags say (kernel/fork.c
/// copy_process(): `p->exit_signal = current->group_leader->exit_signal`);
/// fork(2) uses SIGCHLD.
pub fn exit_signal_of_new(how: SpawnHow, asked: Option<i32>, callers: i32) -> i32 {
    match how {
        SpawnHow::CloneParent | SpawnHow::Clone3Parent | SpawnHow::Clone3ParentOrClone => callers,
        SpawnHow::Clone => asked.unwrap_or(libc::SIGCHLD),
        _ => libc::SIGCHLD,
    }
}
