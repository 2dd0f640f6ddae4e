//! The steps of a scenario: actions (verbs, performed `by` a process) and
//! expectations (`expect_*`, observed `of` a process). An action that names an
//! `errno` must fail with exactly that errno; one that names none must succeed.

use crate::deadline::Deadline;
use crate::kernel_names::{ErrnoName, MfdFlag, Seal, SignalName, WaitFlag};
use crate::names::{check_actor_ref, ActorRef, HandleRef, NewHandle, NewName};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    // ---- the process tree ----
    /// `by` creates process (or thread) `name`.
    Spawn {
        name: NewName,
        #[serde(default)]
        by: Option<ActorRef>,
        #[serde(default)]
        how: SpawnHow,
        /// The signal the parent gets when it exits (clone's low flag byte); SIGCHLD if unset.
        #[serde(default)]
        exit_signal: Option<SignalName>,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// `by` exits with `code` (a process: exit_group; a thread: that thread only).
    /// The step ends once the exit is complete, reparenting included.
    Exit {
        by: ActorRef,
        #[serde(default)]
        code: u8,
    },
    /// `by` re-executes the agent, from its own file or from a memfd (execveat AT_EMPTY_PATH).
    Exec {
        by: ActorRef,
        #[serde(default)]
        memfd: Option<HandleRef>,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// `by` calls setsid(): it leaves its session and process group, like a daemon.
    Setsid { by: ActorRef },
    /// `by` stops depending on the agent: when the agent dies, it lives on
    /// until something kills it, as a real daemon would. (Otherwise a worker
    /// ends when the agent does, so nothing outlives a scenario.)
    Detach { by: ActorRef },

    // ---- prctl ----
    /// prctl(PR_SET_CHILD_SUBREAPER, value). Any nonzero value sets the flag; 0 clears it.
    SetSubreaper {
        #[serde(default)]
        by: Option<ActorRef>,
        #[serde(default = "one")]
        value: u64,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// prctl(PR_GET_CHILD_SUBREAPER) reads `is`; with `bad_pointer` it must fail with `errno`.
    ExpectSubreaper {
        #[serde(default)]
        of: Option<ActorRef>,
        #[serde(default)]
        is: Option<u64>,
        #[serde(default)]
        bad_pointer: bool,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// prctl(PR_SET_PDEATHSIG, signal).
    SetPdeathsig {
        #[serde(default)]
        by: Option<ActorRef>,
        signal: SignalName,
    },
    /// prctl(PR_GET_PDEATHSIG) reads `is` (`none` for 0).
    ExpectPdeathsig {
        #[serde(default)]
        of: Option<ActorRef>,
        is: MaybeSignal,
    },

    // ---- signals ----
    /// `by` installs a handler that records each of `signals` with its sender
    /// (SA_SIGINFO | SA_RESTART, plus SA_NOCLDWAIT when `nocldwait`).
    Catch {
        #[serde(default)]
        by: Option<ActorRef>,
        signals: Vec<SignalName>,
        #[serde(default)]
        nocldwait: bool,
    },
    /// `by` sets `signal` to SIG_IGN; with `every: true`, every signal that
    /// can be ignored (all but SIGKILL and SIGSTOP), so that only SIGKILL can
    /// end it. Exactly one of the two.
    Ignore {
        #[serde(default)]
        by: Option<ActorRef>,
        #[serde(default)]
        signal: Option<SignalName>,
        #[serde(default)]
        every: bool,
    },
    /// `by` reaps every child as SIGCHLD arrives, the way an init program does.
    AutoReap {
        #[serde(default)]
        by: Option<ActorRef>,
    },
    /// `by` sends `signal` to `target` (to its process group with `group`),
    /// using the pid `target` has in `by`'s pid namespace.
    Kill {
        #[serde(default)]
        by: Option<ActorRef>,
        target: ActorRef,
        signal: SignalName,
        #[serde(default)]
        group: bool,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// `of` has caught `signal` (from `from`, when named). With `count: 0` it
    /// must not have, from anyone (so `from` is refused there: a signal from a
    /// wrong sender must not pass); otherwise it must catch `count` (default 1)
    /// within `within` (default 2s), and by then no more than `at_most`.
    /// A `from` that has no pid in `of`'s pid namespace (it lives in an
    /// ancestor namespace) must appear as sender pid 0, as pid_namespaces(7)
    /// promises.
    ExpectSignal {
        #[serde(default)]
        of: Option<ActorRef>,
        signal: SignalName,
        #[serde(default)]
        from: Option<ActorRef>,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        at_most: Option<u32>,
        #[serde(default)]
        within: Option<Deadline>,
    },

    // ---- waiting ----
    /// `by` waits for `for` (a process, or `any`) and must see `status` or fail with `errno`.
    Wait {
        #[serde(default)]
        by: Option<ActorRef>,
        #[serde(rename = "for")]
        target: WaitTarget,
        #[serde(default)]
        api: WaitApi,
        #[serde(default)]
        flags: Vec<WaitFlag>,
        #[serde(default)]
        status: Option<ExpectedStatus>,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// `by` opens a pidfd for `target` (pidfd_open(2)).
    PidfdOpen {
        #[serde(default)]
        by: Option<ActorRef>,
        target: ActorRef,
        handle: NewHandle,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// poll(2) on a pidfd held by `of` says readable (the process has exited) or not.
    ExpectPidfd {
        #[serde(default)]
        of: Option<ActorRef>,
        handle: HandleRef,
        readable: bool,
    },

    // ---- observations ----
    /// `of`'s parent is `is`, by `getppid()` in `of` and by PPid in /proc/PID/status
    /// (a process that has exited cannot answer: for a zombie, by PPid alone).
    ExpectParent {
        of: ActorRef,
        is: ActorRef,
        #[serde(default)]
        within: Option<Deadline>,
    },
    /// `of` is `alive`, a `zombie` (state Z in /proc/PID/stat) or `gone` (no /proc/PID).
    ExpectState {
        of: ActorRef,
        is: ProcState,
        #[serde(default)]
        within: Option<Deadline>,
    },
    /// Reports, for each of `of`, its pid, state, parent (by PPid in
    /// /proc/PID/status and by getppid()) and how many SIGCHLDs its handler
    /// caught, as `observed` events. Never fails: it records what happened so
    /// that exploration can compare every process with the reference model.
    Observe { of: Vec<ActorRef> },
    /// readlink(/proc/self/exe) in `of` names a memfd (`memfd: true`) or a file.
    ExpectExe { of: ActorRef, memfd: bool },
    /// `by` stores `value` in a global variable of its own.
    SetGlobal { by: ActorRef, value: u64 },
    /// `of`'s global variable holds `is`.
    ExpectGlobal { of: ActorRef, is: u64 },
    /// `by` writes a pid-namespaced sysctl (only vm.memfd_noexec; fresh namespace only).
    Sysctl {
        #[serde(default)]
        by: Option<ActorRef>,
        name: String,
        value: String,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },

    // ---- memfd and seals ----
    /// memfd_create(2) with `flags`, then fill it with `content`.
    MemfdCreate {
        #[serde(default)]
        by: Option<ActorRef>,
        handle: NewHandle,
        #[serde(default)]
        flags: Vec<MfdFlag>,
        #[serde(default)]
        content: Content,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// pipe2(2): two file handles, `read` and `write` (O_CLOEXEC, as runc's sync pipes).
    Pipe {
        #[serde(default)]
        by: Option<ActorRef>,
        read: NewHandle,
        write: NewHandle,
    },
    /// pwrite(2) of `len` bytes at `offset` (write(2) on a pipe).
    Write {
        #[serde(default)]
        by: Option<ActorRef>,
        handle: HandleRef,
        #[serde(default)]
        offset: u64,
        len: u64,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// ftruncate(2) to `len`.
    Truncate {
        #[serde(default)]
        by: Option<ActorRef>,
        handle: HandleRef,
        len: u64,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// fcntl(F_ADD_SEALS).
    AddSeals {
        #[serde(default)]
        by: Option<ActorRef>,
        handle: HandleRef,
        seals: Vec<Seal>,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// fcntl(F_GET_SEALS) returns exactly `is`.
    ExpectSeals {
        #[serde(default)]
        of: Option<ActorRef>,
        handle: HandleRef,
        is: Vec<Seal>,
    },
    /// mmap(2) `len` bytes (default one page) of a file handle as a new mapping handle.
    Mmap {
        #[serde(default)]
        by: Option<ActorRef>,
        handle: HandleRef,
        map: NewHandle,
        shared: bool,
        writable: bool,
        #[serde(default)]
        len: Option<u64>,
        #[serde(default)]
        errno: Option<ErrnoName>,
    },
    /// Store `byte` at `offset` through a mapping. A refused store kills `by` with SIGSEGV/SIGBUS.
    Store {
        #[serde(default)]
        by: Option<ActorRef>,
        map: HandleRef,
        #[serde(default)]
        offset: u64,
        byte: u8,
    },
    /// The byte at `offset` is `is`, read with pread(2) for a file, a load for
    /// a mapping, and read(2) for a pipe (waiting up to 2s for it to arrive).
    ExpectByte {
        #[serde(default)]
        of: Option<ActorRef>,
        handle: HandleRef,
        #[serde(default)]
        offset: u64,
        is: u8,
    },
    /// fstat(2) on a memfd says its size is `is` bytes.
    ExpectSize {
        #[serde(default)]
        of: Option<ActorRef>,
        handle: HandleRef,
        is: u64,
    },
    /// fcntl(F_GETFD) on a file handle says FD_CLOEXEC is set (`is: true`) or not.
    ExpectCloexec {
        #[serde(default)]
        of: Option<ActorRef>,
        handle: HandleRef,
        is: bool,
    },
    /// close(2) a file handle or munmap(2) a mapping.
    Close {
        #[serde(default)]
        by: Option<ActorRef>,
        handle: HandleRef,
    },

    // ---- measurements ----
    /// Exit `samples` children one at a time and measure, from each one's last
    /// instruction to the moment `by` knows, how long `method` takes to notice.
    /// Each child must be seen alive before it is let go, and no exit may be
    /// noticed before the child's last instruction or later than `within`
    /// (default 1s) after it.
    MeasureExitDetection {
        #[serde(default)]
        by: Option<ActorRef>,
        method: MeasureMethod,
        #[serde(default = "default_samples")]
        samples: u32,
        #[serde(default)]
        within: Option<Deadline>,
    },

    // ---- the container runtime (runtime target only; the harness performs these) ----
    /// The harness runs `RUNTIME kill [--all] ID SIGNAL`. A note records how
    /// many of the container's processes `kill(pid, 0)` still saw the moment it
    /// returned: the race of CHECKS 5.4, reported as a figure.
    RuntimeKill {
        signal: SignalName,
        #[serde(default)]
        all: bool,
    },
    /// The harness runs `RUNTIME delete [--force] ID`.
    RuntimeDelete {
        #[serde(default)]
        force: bool,
    },
    /// Every process in `of` (all the container's processes, its init
    /// included, when empty) is gone, as the host sees it: a pidfd polls
    /// readable, or `kill(pid, 0)` fails with ESRCH and no pid reuse can fool
    /// it. Checked at once, or polled until `within`; the time is noted.
    ExpectGone {
        #[serde(default)]
        of: Vec<ActorRef>,
        #[serde(default)]
        via: GoneProbe,
        #[serde(default)]
        within: Option<Deadline>,
    },
    /// Every process in `of` is still alive at this point, as the host sees
    /// it (its pidfd does not poll readable; a zombie counts as dead). For
    /// the processes a scenario means to leave behind: that the init died
    /// alone, say, before the runtime is asked to clean up after it.
    ExpectAlive { of: Vec<ActorRef> },
    /// The container's init, adopted by the harness (a subreaper, like a
    /// shim) once the runtime's create process exited, is reaped by the
    /// harness with this status.
    ExpectContainerExit {
        status: ExpectedStatus,
        #[serde(default)]
        within: Option<Deadline>,
    },
}

/// The signals an `ignore` step sets to SIG_IGN: `signal`, or with `every`
/// each standard signal but SIGKILL and SIGSTOP, which cannot be ignored.
/// (The agent also ignores the real-time signals, which have no names here.)
pub fn ignored_signals(signal: Option<SignalName>, every: bool) -> Vec<SignalName> {
    use nix::sys::signal::Signal;
    let mut list: Vec<SignalName> = signal.into_iter().collect();
    if every {
        list.extend(
            Signal::iterator()
                .filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP))
                .map(SignalName),
        );
    }
    list
}

fn one() -> u64 {
    1
}

fn default_samples() -> u32 {
    32
}

/// How `spawn` creates the new process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpawnHow {
    /// fork(2).
    #[default]
    Fork,
    /// clone(2) without CLONE_VM, the child going on in the same image (no
    /// exec), as runc's nsexec does: a fork by another road.
    Clone,
    /// clone(2) with CLONE_PARENT: the new process is the caller's sibling.
    CloneParent,
    /// clone3(2) with CLONE_PARENT (the scenario requires clone3).
    Clone3Parent,
    /// clone3(2) with CLONE_PARENT, and clone(2) with CLONE_PARENT where
    /// clone3 answers ENOSYS, as youki's fork.rs does: runs on any kernel,
    /// and notes the fallback when it is taken.
    Clone3ParentOrClone,
    /// clone(2) with CLONE_NEWPID: the new process is the init of a new pid namespace.
    PidNamespace,
    /// A new thread in the caller's thread group.
    Thread,
}

impl SpawnHow {
    /// Whether this way of spawning takes an exit signal in its flags.
    pub fn takes_exit_signal(self) -> bool {
        matches!(
            self,
            SpawnHow::Clone
                | SpawnHow::CloneParent
                | SpawnHow::Clone3Parent
                | SpawnHow::Clone3ParentOrClone
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitTarget {
    Any,
    Actor(ActorRef),
}

impl<'de> Deserialize<'de> for WaitTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name == "any" {
            return Ok(WaitTarget::Any);
        }
        check_actor_ref(&name).map_err(de::Error::custom)?;
        Ok(WaitTarget::Actor(ActorRef(name)))
    }
}

impl Serialize for WaitTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WaitTarget::Any => s.serialize_str("any"),
            WaitTarget::Actor(a) => s.serialize_str(a.as_str()),
        }
    }
}

/// Which wait call `wait` makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitApi {
    #[default]
    Waitpid,
    /// waitid(P_PID or P_ALL, ...); needs WEXITED in flags (added when absent).
    Waitid,
    /// waitid(P_PIDFD, pidfd_open(pid)) (Linux 5.4).
    Pidfd,
}

/// What a wait must report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStatus {
    /// WIFEXITED with this WEXITSTATUS.
    Exited(i32),
    /// WIFSIGNALED with this WTERMSIG and no core dump.
    Signaled(SignalName),
    /// WIFSIGNALED with this WTERMSIG and WCOREDUMP.
    Dumped(SignalName),
    /// WNOHANG found a child but nothing to report yet.
    Running,
}

/// How the harness sees, from the host, that a process is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneProbe {
    /// poll(2) on a pidfd taken while the process was known alive (Linux 5.3).
    #[default]
    Pidfd,
    /// kill(pid, 0) until ESRCH, with the start time in /proc/PID/stat
    /// compared whenever it succeeds, so a recycled pid is not mistaken for it.
    Kill0,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcState {
    Alive,
    Zombie,
    Gone,
}

/// What a new memfd holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    #[default]
    Empty,
    /// This many bytes of a known pattern.
    Bytes(u64),
    /// A copy of the agent's own executable, ready for `exec`.
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureMethod {
    /// poll(2) on a pidfd.
    Pidfd,
    /// kill(pid, 0) until ESRCH, polling with an adaptive interval.
    Kill0,
}

/// A signal, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeSignal(pub Option<SignalName>);

impl<'de> Deserialize<'de> for MaybeSignal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "none" {
            return Ok(MaybeSignal(None));
        }
        text.parse()
            .map(|s| MaybeSignal(Some(s)))
            .map_err(de::Error::custom)
    }
}

impl Serialize for MaybeSignal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_str("none"),
            Some(sig) => s.collect_str(&sig),
        }
    }
}

impl Step {
    /// The step's keyword, as written in files.
    pub fn keyword(&self) -> &'static str {
        macro_rules! kw {
            ($($variant:ident => $text:literal),+ $(,)?) => {
                match self { $(Step::$variant { .. } => $text),+ }
            };
        }
        kw!(
            Spawn => "spawn", Exit => "exit", Exec => "exec", Setsid => "setsid", Detach => "detach",
            SetSubreaper => "set_subreaper", ExpectSubreaper => "expect_subreaper",
            SetPdeathsig => "set_pdeathsig", ExpectPdeathsig => "expect_pdeathsig",
            Catch => "catch", Ignore => "ignore", AutoReap => "auto_reap", Kill => "kill",
            ExpectSignal => "expect_signal", Wait => "wait", PidfdOpen => "pidfd_open",
            ExpectPidfd => "expect_pidfd", ExpectParent => "expect_parent",
            ExpectState => "expect_state", Observe => "observe", ExpectExe => "expect_exe", SetGlobal => "set_global",
            ExpectGlobal => "expect_global", Sysctl => "sysctl", MemfdCreate => "memfd_create",
            Pipe => "pipe", Write => "write", Truncate => "truncate", AddSeals => "add_seals",
            ExpectSeals => "expect_seals", Mmap => "mmap", Store => "store",
            ExpectByte => "expect_byte", ExpectSize => "expect_size", ExpectCloexec => "expect_cloexec", Close => "close",
            MeasureExitDetection => "measure_exit_detection", RuntimeKill => "runtime_kill",
            RuntimeDelete => "runtime_delete", ExpectGone => "expect_gone",
            ExpectAlive => "expect_alive",
            ExpectContainerExit => "expect_container_exit",
        )
    }

    /// Whether the harness performs this step (it drives the runtime or looks
    /// from the host) rather than the agent.
    pub fn runs_in_harness(&self) -> bool {
        matches!(
            self,
            Step::RuntimeKill { .. }
                | Step::RuntimeDelete { .. }
                | Step::ExpectGone { .. }
                | Step::ExpectAlive { .. }
                | Step::ExpectContainerExit { .. }
        )
    }

    /// The process that performs (`by`) or is observed (`of`); `None` means the agent's root.
    pub fn performer(&self) -> Option<&ActorRef> {
        if let Step::Observe { .. } = self {
            return None; // the root observes from outside
        }
        self.actor_refs()
            .into_iter()
            .find(|(field, _)| *field == "by" || *field == "of")
            .map(|(_, a)| a)
    }

    /// Every process this step names, as (field, name), for checks that need them all.
    pub fn actor_refs(&self) -> Vec<(&'static str, &ActorRef)> {
        fn add<'a>(
            refs: &mut Vec<(&'static str, &'a ActorRef)>,
            field: &'static str,
            r: &'a Option<ActorRef>,
        ) {
            if let Some(r) = r {
                refs.push((field, r));
            }
        }
        let mut refs: Vec<(&'static str, &ActorRef)> = Vec::new();
        match self {
            Step::Spawn { by, .. }
            | Step::SetSubreaper { by, .. }
            | Step::SetPdeathsig { by, .. }
            | Step::Catch { by, .. }
            | Step::Ignore { by, .. }
            | Step::AutoReap { by }
            | Step::PidfdOpen { by, .. }
            | Step::Sysctl { by, .. }
            | Step::MemfdCreate { by, .. }
            | Step::Pipe { by, .. }
            | Step::Write { by, .. }
            | Step::Truncate { by, .. }
            | Step::AddSeals { by, .. }
            | Step::Mmap { by, .. }
            | Step::Store { by, .. }
            | Step::Close { by, .. }
            | Step::MeasureExitDetection { by, .. } => add(&mut refs, "by", by),
            Step::Kill { by, .. } => add(&mut refs, "by", by),
            Step::Wait { by, .. } => add(&mut refs, "by", by),
            Step::ExpectSubreaper { of, .. }
            | Step::ExpectPdeathsig { of, .. }
            | Step::ExpectPidfd { of, .. }
            | Step::ExpectSeals { of, .. }
            | Step::ExpectByte { of, .. }
            | Step::ExpectSize { of, .. }
            | Step::ExpectCloexec { of, .. } => add(&mut refs, "of", of),
            Step::ExpectSignal { of, from, .. } => {
                add(&mut refs, "of", of);
                add(&mut refs, "from", from);
            }
            Step::ExpectGone { of, .. } | Step::ExpectAlive { of } => {
                for a in of {
                    refs.push(("of", a));
                }
            }
            Step::RuntimeKill { .. }
            | Step::RuntimeDelete { .. }
            | Step::ExpectContainerExit { .. } => {}
            Step::Exit { .. }
            | Step::Exec { .. }
            | Step::Setsid { .. }
            | Step::Detach { .. }
            | Step::Observe { .. }
            | Step::ExpectParent { .. }
            | Step::ExpectState { .. }
            | Step::ExpectExe { .. }
            | Step::SetGlobal { .. }
            | Step::ExpectGlobal { .. } => {}
        }
        match self {
            Step::Exit { by, .. }
            | Step::Exec { by, .. }
            | Step::Setsid { by }
            | Step::Detach { by }
            | Step::SetGlobal { by, .. } => refs.push(("by", by)),
            Step::ExpectParent { of, is, .. } => {
                refs.push(("of", of));
                refs.push(("is", is));
            }
            Step::ExpectState { of, .. }
            | Step::ExpectExe { of, .. }
            | Step::ExpectGlobal { of, .. } => refs.push(("of", of)),
            Step::Observe { of } => refs.extend(of.iter().map(|a| ("of", a))),
            Step::Kill { target, .. } | Step::PidfdOpen { target, .. } => {
                refs.push(("target", target))
            }
            Step::Wait {
                target: WaitTarget::Actor(a),
                ..
            } => refs.push(("for", a)),
            _ => {}
        }
        refs
    }
}
