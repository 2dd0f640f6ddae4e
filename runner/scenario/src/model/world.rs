//! The reference model as a state machine over scenario steps: it reads the
//! same `Step`s the agent performs and predicts, for every process and thread,
//! its parent, its state and the exit notifications it caught. The rules
//! themselves are in `rules.rs`; this file only keeps the books.

use super::rules::{self, Ancestor, Defect, Disposition};
use crate::step::{ExpectedStatus, ProcState, SpawnHow, Step, WaitApi, WaitTarget};
use crate::WaitFlag;
use nix::libc;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A step the model does not cover (memfd, pdeathsig, a wait that would block...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not modelled: {0}")]
pub struct NotModelled(pub String);

/// How a process died, as wait(2) would report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    Exited(i32),
    Killed(i32),
}

#[derive(Debug, Clone)]
struct Task {
    is_thread: bool,
    /// The process (thread-group leader) this task belongs to; itself for a process.
    process: String,
    /// For a process: the thread or process whose child it is (None for the root).
    real_parent: Option<String>,
    /// The pid-namespace inits from the root's namespace down to this task's
    /// own; its length is the task's pid level relative to the root.
    ns: Vec<String>,
    state: ProcState,
    // Per process (kept on the leader's entry):
    is_child_subreaper: bool,
    sigchld: Disposition,
    caught: BTreeSet<i32>,
    ignored: BTreeSet<i32>,
    exit_signal: i32,
    death: Option<Death>,
    /// (signal, sender process) of each exit notification its handler received.
    received: Vec<(i32, String)>,
    /// Steps in which at least one SIGCHLD reached its handler.
    sigchld_steps: u32,
}

/// What the model predicts for one process or thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub state: ProcState,
    /// The parent process, for a process or thread that is not gone.
    pub parent: Option<String>,
    /// For a living process with a SIGCHLD handler: how many SIGCHLDs its
    /// handler has run for, at least and at most. Standard signals do not
    /// queue (signal(7)), so several sent in one step may arrive as one.
    pub sigchld: Option<(u32, u32)>,
}

/// The outcome of applying one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Processes whose SIGCHLD handler ran because of this step.
    pub sigchld_to: Vec<String>,
    /// Where the step's own expectation (an `expect_*`, a wait's status, a
    /// spawn's errno) differs from the model: the model's view.
    pub disagreement: Option<String>,
}

#[derive(Debug, Clone)]
pub struct World {
    root: String,
    tasks: BTreeMap<String, Task>,
    order: Vec<String>,
    defect: Defect,
    /// Processes whose reaping handler (`auto_reap`) runs after this step.
    woken_reapers: Vec<String>,
}

fn new_task(process: &str, is_thread: bool) -> Task {
    Task {
        is_thread,
        process: process.to_string(),
        real_parent: None,
        ns: vec![],
        state: ProcState::Alive,
        is_child_subreaper: false,
        sigchld: Disposition::Default,
        caught: BTreeSet::new(),
        ignored: BTreeSet::new(),
        exit_signal: libc::SIGCHLD,
        death: None,
        received: vec![],
        sigchld_steps: 0,
    }
}

fn state_name(s: ProcState) -> &'static str {
    match s {
        ProcState::Alive => "alive",
        ProcState::Zombie => "a zombie",
        ProcState::Gone => "gone",
    }
}

impl fmt::Display for Death {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Death::Exited(c) => write!(f, "exited {c}"),
            Death::Killed(s) => write!(f, "killed by {}", crate::signal_name(*s)),
        }
    }
}

/// Signals whose default action is to ignore them (signal(7)).
fn ignored_by_default(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT
    )
}

impl World {
    /// A world holding only the root, the agent's own process (`init` in a fresh namespace).
    pub fn new(root: &str, defect: Defect) -> Self {
        let mut tasks = BTreeMap::new();
        tasks.insert(root.to_string(), new_task(root, false));
        World {
            root: root.to_string(),
            tasks,
            order: vec![],
            defect,
            woken_reapers: vec![],
        }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// Every process and thread spawned so far, in spawn order (not the root).
    pub fn spawned(&self) -> &[String] {
        &self.order
    }

    pub fn is_thread(&self, name: &str) -> bool {
        self.tasks.get(name).is_some_and(|t| t.is_thread)
    }

    /// Whether `name` is the init of a pid namespace (the root included).
    pub fn is_ns_init(&self, name: &str) -> bool {
        name == self.root || self.task(name).ns.last().map(String::as_str) == Some(name)
    }

    pub fn state(&self, name: &str) -> ProcState {
        self.task(name).state
    }

    /// The process `name` belongs to (itself for a process).
    pub fn process_of(&self, name: &str) -> &str {
        &self.task(name).process
    }

    /// Whether `name`'s process has threads that are still alive.
    pub fn has_live_threads(&self, name: &str) -> bool {
        let p = self.process_of(name);
        self.tasks
            .values()
            .any(|t| t.is_thread && t.process == p && t.state == ProcState::Alive)
    }

    /// Depth of `name`'s pid namespace below the root's.
    pub fn ns_depth(&self, name: &str) -> usize {
        self.task(name).ns.len()
    }

    fn task(&self, name: &str) -> &Task {
        self.tasks
            .get(name)
            .unwrap_or_else(|| panic!("model: unknown task `{name}`"))
    }

    fn task_mut(&mut self, name: &str) -> &mut Task {
        self.tasks
            .get_mut(name)
            .unwrap_or_else(|| panic!("model: unknown task `{name}`"))
    }

    fn proc_mut(&mut self, name: &str) -> &mut Task {
        let p = self.process_of(name).to_string();
        self.task_mut(&p)
    }

    /// The parent process of process `p`.
    fn parent_process(&self, p: &str) -> Option<&str> {
        let parent = self.task(p).real_parent.as_deref()?;
        Some(self.process_of(parent))
    }

    pub fn predict(&self, name: &str) -> Prediction {
        let t = self.task(name);
        let process = self.task(&t.process);
        let parent = (t.state != ProcState::Gone)
            .then(|| self.parent_process(&t.process).map(str::to_string))
            .flatten();
        let catches = matches!(process.sigchld, Disposition::Handler { .. })
            && process.caught.contains(&libc::SIGCHLD);
        let sigchld = (!t.is_thread && t.state == ProcState::Alive && catches).then(|| {
            let total = t
                .received
                .iter()
                .filter(|(s, _)| *s == libc::SIGCHLD)
                .count() as u32;
            (t.sigchld_steps, total)
        });
        Prediction {
            state: t.state,
            parent,
            sigchld,
        }
    }

    /// Applies one step. Observations change nothing; actions change the
    /// world; anything outside the model is refused, never guessed.
    pub fn apply(&mut self, step: &Step) -> Result<Applied, NotModelled> {
        let by = step
            .performer()
            .map_or(self.root.clone(), |a| a.to_string());
        let mut delivered: Vec<String> = vec![];
        let mut disagreement = None;
        match step {
            Step::Spawn {
                name,
                how,
                exit_signal,
                errno,
                ..
            } => {
                let caller = self.process_of(&by).to_string();
                let predicted =
                    rules::spawn_errno(*how, self.is_ns_init(&caller), exit_signal.is_some());
                let stated = errno.map(|e| e.0 as i32);
                if predicted != stated {
                    disagreement = Some(format!(
                        "spawn {name}: the model predicts {}",
                        predicted.map_or("success".to_string(), |e| {
                            format!("{:?}", nix::errno::Errno::from_raw(e))
                        })
                    ));
                }
                if predicted.is_none() {
                    self.spawn(name.as_str(), &by, *how, exit_signal.map(|s| s.0 as i32));
                }
            }
            Step::SetSubreaper {
                value, errno: None, ..
            } => {
                // prctl(2): "If arg2 is nonzero, set the child subreaper attribute;
                // if arg2 is zero, unset the attribute." Per process (signal_struct).
                self.proc_mut(&by).is_child_subreaper = *value != 0;
            }
            Step::ExpectSubreaper {
                is: Some(is),
                bad_pointer: false,
                ..
            } => {
                let actual = u64::from(self.task(self.process_of(&by)).is_child_subreaper);
                if actual != *is {
                    disagreement = Some(format!("{by}'s subreaper flag is {actual}"));
                }
            }
            Step::ExpectSubreaper { .. } | Step::Setsid { .. } | Step::Observe { .. } => {}
            Step::Catch {
                signals, nocldwait, ..
            } => {
                let p = self.proc_mut(&by);
                for s in signals {
                    let signo = s.0 as i32;
                    p.caught.insert(signo);
                    p.ignored.remove(&signo);
                    if signo == libc::SIGCHLD {
                        p.sigchld = Disposition::Handler {
                            nocldwait: *nocldwait,
                        };
                    }
                }
            }
            Step::Ignore { signal, every, .. } => {
                let p = self.proc_mut(&by);
                for signal in crate::step::ignored_signals(*signal, *every) {
                    let signo = signal.0 as i32;
                    p.caught.remove(&signo);
                    p.ignored.insert(signo);
                    if signo == libc::SIGCHLD {
                        // Linux does not reap zombies that exist when SIGCHLD
                        // becomes SIG_IGN (wait(2) NOTES leave it unspecified).
                        p.sigchld = Disposition::Ignore;
                    }
                }
            }
            Step::AutoReap { .. } => {
                let p = self.process_of(&by).to_string();
                let task = self.task_mut(&p);
                task.caught.remove(&libc::SIGCHLD);
                task.sigchld = Disposition::Reaper;
                // The handler also reaps the zombies already there.
                for c in self.children_of(&p) {
                    if self.task(&c).state == ProcState::Zombie {
                        self.task_mut(&c).state = ProcState::Gone;
                    }
                }
            }
            Step::Exit { code, .. } => {
                if self.is_thread(&by) {
                    self.thread_exit(&by, &mut delivered)?;
                } else {
                    let p = self.process_of(&by).to_string();
                    self.die(&p, Death::Exited(i32::from(*code)), &mut delivered)?;
                }
            }
            Step::Exec {
                memfd: _,
                errno: None,
                ..
            } if !self.is_thread(&by) => {
                // execve(2): other threads are destroyed, caught signals reset to
                // their default, ignored ones stay ignored; the subreaper flag stays.
                for t in self.tasks.values_mut() {
                    if t.is_thread && t.process == by {
                        t.state = ProcState::Gone;
                    }
                }
                let p = self.task_mut(&by);
                p.caught.clear();
                if matches!(p.sigchld, Disposition::Handler { .. } | Disposition::Reaper) {
                    p.sigchld = Disposition::Default;
                }
            }
            Step::Kill {
                target,
                signal,
                group: false,
                errno,
                ..
            } if signal.0 as i32 == libc::SIGKILL => {
                let victim = self.process_of(target.as_str()).to_string();
                let state = self.task(&victim).state;
                let predicted = (state == ProcState::Gone).then_some(libc::ESRCH);
                if predicted != errno.map(|e| e.0 as i32) {
                    disagreement = Some(format!("kill {victim}: the model predicts {predicted:?}"));
                }
                // pid_namespaces(7): the init of a namespace ignores SIGKILL sent
                // from inside it; from an ancestor namespace it dies.
                let from_inside = self.is_ns_init(&victim)
                    && (victim == self.root || self.task(&by).ns.contains(&victim));
                if state == ProcState::Alive && !from_inside {
                    self.die(&victim, Death::Killed(libc::SIGKILL), &mut delivered)?;
                }
            }
            Step::Wait {
                target,
                api,
                flags,
                status,
                errno,
                ..
            } => {
                let outcome = self.wait(&by, target, *api, flags)?;
                let stated = match (status, errno) {
                    (Some(s), None) => Ok(Some(*s)),
                    (None, Some(e)) => Err(e.0 as i32),
                    (None, None) => outcome,
                    (Some(_), Some(_)) => return Err(NotModelled("status and errno".into())),
                };
                let same = match (&outcome, &stated) {
                    (Ok(a), Ok(b)) => b.is_none() || a == b,
                    (Err(a), Err(b)) => a == b,
                    _ => false,
                };
                if !same {
                    disagreement = Some(format!("wait by {by}: the model predicts {outcome:?}"));
                }
            }
            Step::ExpectParent { of, is, .. } => {
                let p = self.predict(of.as_str());
                let want = self.process_of(is.as_str());
                if p.parent.as_deref() != Some(want) {
                    disagreement = Some(format!(
                        "{of}'s parent is {}",
                        p.parent.as_deref().unwrap_or("none (it is gone)")
                    ));
                }
            }
            Step::ExpectState { of, is, .. } => {
                let actual = self.state(of.as_str());
                if actual != *is {
                    disagreement = Some(format!("{of} is {}", state_name(actual)));
                }
            }
            Step::ExpectSignal {
                signal,
                from,
                count,
                at_most,
                ..
            } => {
                let signo = signal.0 as i32;
                let from = from
                    .as_ref()
                    .map(|f| self.process_of(f.as_str()).to_string());
                let n = self
                    .task(self.process_of(&by))
                    .received
                    .iter()
                    .filter(|(s, sender)| *s == signo && from.as_ref().is_none_or(|f| f == sender))
                    .count() as u32;
                let ok = match count {
                    Some(0) => n == 0,
                    other => n >= other.unwrap_or(1) && at_most.is_none_or(|most| n <= most),
                };
                if !ok {
                    disagreement = Some(format!("{by} caught {n} {signal}"));
                }
            }
            other => {
                return Err(NotModelled(format!(
                    "step {} is outside the model",
                    other.keyword()
                )))
            }
        }
        // An init program's handler reaps every zombie child, with __WALL,
        // whatever exit signal brought it there.
        for r in std::mem::take(&mut self.woken_reapers) {
            for c in self.children_of(&r) {
                if self.task(&c).state == ProcState::Zombie {
                    self.task_mut(&c).state = ProcState::Gone;
                }
            }
        }
        let mut sigchld_to: Vec<String> = vec![];
        for r in delivered {
            if !sigchld_to.contains(&r) {
                self.task_mut(&r).sigchld_steps += 1;
                sigchld_to.push(r);
            }
        }
        Ok(Applied {
            sigchld_to,
            disagreement,
        })
    }

    fn spawn(&mut self, name: &str, by: &str, how: SpawnHow, asked_signal: Option<i32>) {
        let caller = self.process_of(by).to_string();
        let c = self.task(&caller).clone();
        let mut t = new_task(name, how == SpawnHow::Thread);
        t.ns = c.ns.clone();
        if how == SpawnHow::Thread {
            t.process = caller;
        } else {
            t.real_parent = Some(match how {
                // clone(2) CLONE_PARENT: "the parent of the new child will be
                // the same as that of the calling process".
                SpawnHow::CloneParent | SpawnHow::Clone3Parent | SpawnHow::Clone3ParentOrClone => c
                    .real_parent
                    .clone()
                    .expect("an init cannot clone a sibling"),
                _ => by.to_string(),
            });
            if how == SpawnHow::PidNamespace {
                t.ns.push(name.to_string());
            }
            // fork(2): the child inherits the parent's signal dispositions;
            // prctl(2): the subreaper attribute is not inherited.
            t.sigchld = c.sigchld;
            t.caught = c.caught.clone();
            t.ignored = c.ignored.clone();
            t.exit_signal = rules::exit_signal_of_new(how, asked_signal, c.exit_signal);
        }
        self.tasks.insert(name.to_string(), t);
        self.order.push(name.to_string());
    }

    /// Processes whose real parent is process `p` or one of its threads, not gone.
    fn children_of(&self, p: &str) -> Vec<String> {
        self.order
            .iter()
            .filter(|c| {
                let t = self.task(c);
                !t.is_thread
                    && t.state != ProcState::Gone
                    && t.real_parent
                        .as_deref()
                        .is_some_and(|rp| self.process_of(rp) == p)
            })
            .cloned()
            .collect()
    }

    fn ancestors(&self, p: &str) -> Vec<Ancestor<'_>> {
        let mut out = vec![];
        let mut at = self.parent_process(p);
        while let Some(a) = at {
            let t = self.task(a);
            out.push(Ancestor {
                name: a,
                level: t.ns.len(),
                is_child_subreaper: t.is_child_subreaper,
            });
            at = self.parent_process(a);
        }
        out
    }

    fn ns_init_of(&self, p: &str) -> String {
        self.task(p).ns.last().cloned().unwrap_or(self.root.clone())
    }

    /// Only this thread ends (exit(2) of one thread): its children stay in the
    /// thread group (kernel/exit.c find_alive_thread()).
    fn thread_exit(
        &mut self,
        thread: &str,
        delivered: &mut Vec<String>,
    ) -> Result<(), NotModelled> {
        let p = self.process_of(thread).to_string();
        self.task_mut(thread).state = ProcState::Gone;
        let orphans: Vec<String> = self
            .order
            .iter()
            .filter(|c| {
                let t = self.task(c);
                !t.is_thread
                    && t.state != ProcState::Gone
                    && t.real_parent.as_deref() == Some(thread)
            })
            .cloned()
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        let ns_init = self.ns_init_of(&p);
        let reaper = rules::find_new_reaper(
            Some(&p),
            &self.ancestors(&p),
            self.ns_depth(&p),
            &ns_init,
            self.defect,
        )
        .to_string();
        self.hand_over(&p, &orphans, &reaper, delivered)
    }

    /// Gives `orphans` of process `father` to `reaper`. Outside the thread group,
    /// kernel/exit.c reparent_leader() resets each one's exit signal to SIGCHLD
    /// and, for a zombie, notifies the new parent as if it had just died.
    fn hand_over(
        &mut self,
        father: &str,
        orphans: &[String],
        reaper: &str,
        delivered: &mut Vec<String>,
    ) -> Result<(), NotModelled> {
        let same_group = self.process_of(reaper) == father;
        for c in orphans {
            self.task_mut(c).real_parent = Some(reaper.to_string());
            if same_group {
                continue;
            }
            self.task_mut(c).exit_signal = libc::SIGCHLD;
            if self.task(c).state == ProcState::Zombie {
                self.notify(c, delivered)?;
            }
        }
        Ok(())
    }

    /// Process `p` dies (exit_group(2) or a fatal signal).
    fn die(
        &mut self,
        p: &str,
        death: Death,
        delivered: &mut Vec<String>,
    ) -> Result<(), NotModelled> {
        for t in self.tasks.values_mut() {
            if t.is_thread && t.process == p {
                t.state = ProcState::Gone;
            }
        }
        if self.is_ns_init(p) {
            // pid_namespaces(7): "If the 'init' process of a PID namespace
            // terminates, the kernel terminates all of the processes in the
            // namespace via a SIGKILL signal" (kernel/exit.c find_child_reaper()
            // -> kernel/pid_namespace.c zap_pid_ns_processes(), which also reaps
            // them before the init's own exit completes).
            for t in self.tasks.values_mut() {
                if t.ns.iter().any(|n| n == p) && t.process != p {
                    t.state = ProcState::Gone;
                }
            }
        } else {
            let orphans = self.children_of(p);
            if !orphans.is_empty() {
                let ns_init = self.ns_init_of(p);
                let reaper = rules::find_new_reaper(
                    None,
                    &self.ancestors(p),
                    self.ns_depth(p),
                    &ns_init,
                    self.defect,
                )
                .to_string();
                self.hand_over(p, &orphans, &reaper, delivered)?;
            }
        }
        let t = self.task_mut(p);
        t.state = ProcState::Zombie;
        t.death = Some(death);
        // kernel/exit.c exit_notify(): the parent is told once the group is empty.
        self.notify(p, delivered)
    }

    /// Tells the parent of zombie `c` that it died (do_notify_parent()).
    fn notify(&mut self, c: &str, delivered: &mut Vec<String>) -> Result<(), NotModelled> {
        let Some(parent) = self.parent_process(c).map(str::to_string) else {
            return Ok(());
        };
        let signal = self.task(c).exit_signal;
        let pt = self.task(&parent);
        let (sigchld, caught, alive) = (
            pt.sigchld,
            pt.caught.contains(&signal),
            pt.state == ProcState::Alive,
        );
        if !caught && !pt.ignored.contains(&signal) && !ignored_by_default(signal) {
            return Err(NotModelled(format!(
                "exit signal {} would kill {parent}",
                crate::signal_name(signal)
            )));
        }
        let n = rules::notify_parent(signal, sigchld, caught);
        if signal == libc::SIGCHLD && sigchld == Disposition::Reaper {
            self.woken_reapers.push(parent.clone());
        }
        if let (Some(sig), true) = (n.delivered, alive) {
            self.task_mut(&parent).received.push((sig, c.to_string()));
            if sig == libc::SIGCHLD {
                delivered.push(parent.clone());
            }
        }
        if n.autoreaped {
            self.task_mut(c).state = ProcState::Gone;
        }
        Ok(())
    }

    /// wait(2): what a wait by `by` reports, reaping as it does.
    /// Ok(Some(status)), Ok(Some(Running)) for WNOHANG with nothing to report,
    /// or Err(errno).
    #[allow(clippy::type_complexity)]
    fn wait(
        &mut self,
        by: &str,
        target: &WaitTarget,
        api: WaitApi,
        flags: &[WaitFlag],
    ) -> Result<Result<Option<ExpectedStatus>, i32>, NotModelled> {
        let p = self.process_of(by).to_string();
        let all = flags.contains(&WaitFlag::All);
        let clone = flags.contains(&WaitFlag::Clone);
        let nohang = flags.contains(&WaitFlag::NoHang);
        let nowait = flags.contains(&WaitFlag::NoWait);
        // kernel/exit.c eligible_child(): without __WALL, __WCLONE selects the
        // children whose exit signal is not SIGCHLD, its absence the others.
        // Any thread may wait for the children of its whole group (wait(2)).
        let eligible: Vec<String> = self
            .children_of(&p)
            .into_iter()
            .filter(|c| all || ((self.task(c).exit_signal != libc::SIGCHLD) == clone))
            .collect();
        let chosen: Vec<String> = match target {
            WaitTarget::Actor(a) => {
                let c = self.process_of(a.as_str()).to_string();
                if api == WaitApi::Pidfd && self.task(&c).state == ProcState::Gone {
                    return Ok(Err(libc::ESRCH)); // pidfd_open(2) of a reaped process
                }
                eligible.into_iter().filter(|e| *e == c).collect()
            }
            WaitTarget::Any => eligible,
        };
        if chosen.is_empty() {
            return Ok(Err(libc::ECHILD));
        }
        let zombies: Vec<&String> = chosen
            .iter()
            .filter(|c| self.task(c).state == ProcState::Zombie)
            .collect();
        match zombies.as_slice() {
            [] if nohang => Ok(Ok(Some(ExpectedStatus::Running))),
            [] => Err(NotModelled(format!("a wait by {by} would block"))),
            [z] => {
                let z = (*z).clone();
                let status = match self.task(&z).death {
                    Some(Death::Exited(c)) => ExpectedStatus::Exited(c),
                    Some(Death::Killed(s)) => ExpectedStatus::Signaled(crate::SignalName(
                        nix::sys::signal::Signal::try_from(s).expect("a signal number"),
                    )),
                    None => unreachable!("a zombie has died"),
                };
                if !nowait {
                    self.task_mut(&z).state = ProcState::Gone;
                }
                Ok(Ok(Some(status)))
            }
            _ => Err(NotModelled(format!(
                "which of {by}'s zombies a wait reaps first"
            ))),
        }
    }
}
