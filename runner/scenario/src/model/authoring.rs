//! Authoring mistakes, found before anything runs: a step whose premise the
//! scenario itself has made false. A process that exits twice, or acts after
//! it died, would come out broken; a wait for a process the waiter can never
//! be the parent of, or for the agent's own root, would come out as a fail
//! about the kernel. Neither says anything about the kernel.
//!
//! Who is alive comes from the reference model (`World`), followed only as
//! long as the scenario agrees with it: from the first step the model does
//! not cover, or whose expectation differs from its prediction (a question
//! for the kernel, or a wrong fixture on purpose), nothing more is judged
//! from it. Waits are judged by the spawn tree alone: no process here is the
//! parent of the root, of itself, or of a process that created it. A wait
//! for a process in another branch (a stranger's child) is left to the run:
//! whether the kernel refuses it is a question orphanage asks (with `errno:
//! ECHILD`), and a wrong fixture asks it the wrong way round on purpose. A
//! step that names an `errno` expects its failure on purpose and is never a
//! mistake.

use super::rules::Defect;
use super::world::World;
use crate::scenario::{Namespace, Scenario};
use crate::step::{ProcState, SpawnHow, Step, WaitTarget};
use std::collections::{BTreeSet, HashMap};

/// The first mistake: the index of its step and what is wrong. (A mistake
/// that makes the model stop following the scenario hides later ones; the
/// author fixes one and runs --check again, as with any other error.)
pub fn authoring_mistake(s: &Scenario) -> Option<(usize, String)> {
    let mut books = Books::new(s);
    for (i, step) in s.steps.iter().enumerate() {
        if let Some(mistake) = books.judge(step) {
            return Some((i, mistake));
        }
        books.record(i, step);
    }
    None
}

struct Books<'a> {
    root: &'a str,
    /// The reference model, while the scenario stays within it.
    world: Option<World>,
    /// Each thread's process (a process is its own).
    process_of: HashMap<String, String>,
    /// Each process's threads.
    threads: HashMap<String, Vec<String>>,
    /// Each process's creator process (the root has none).
    creator: HashMap<String, String>,
    /// Where each spawn that was expected to fail failed.
    failed_spawn: HashMap<String, usize>,
    /// Tasks the model still has alive, and the step each other one died at.
    alive: BTreeSet<String>,
    /// (step, its keyword, whether the task's own process performed it).
    died_at: HashMap<String, (usize, &'static str, bool)>,
    /// The handles each process holds, and why one it lacks is gone.
    handles: HashMap<String, BTreeSet<String>>,
    opened: HashMap<String, (String, usize)>,
    dropped: HashMap<(String, String), String>,
}

impl<'a> Books<'a> {
    fn new(s: &'a Scenario) -> Self {
        let root = s.root_name();
        // Under an init program the agent's parent is a program the model
        // knows nothing of: who is alive there is for the run to see.
        let world = (s.namespace != Namespace::UnderInit).then(|| World::new(root, Defect::None));
        Books {
            root,
            world,
            process_of: HashMap::from([(root.to_string(), root.to_string())]),
            threads: HashMap::new(),
            creator: HashMap::new(),
            failed_spawn: HashMap::new(),
            alive: BTreeSet::from([root.to_string()]),
            died_at: HashMap::new(),
            handles: HashMap::from([(root.to_string(), BTreeSet::new())]),
            opened: HashMap::new(),
            dropped: HashMap::new(),
        }
    }

    fn process<'n>(&'n self, name: &'n str) -> &'n str {
        self.process_of.get(name).map_or(name, String::as_str)
    }

    /// The performer of `step`: its `by` or `of`, else the root.
    fn performer<'s>(&'s self, step: &'s Step) -> &'s str {
        step.performer().map_or(self.root, |a| a.as_str())
    }

    /// Whether `ancestor` created `p`, or created its creator, and so on:
    /// only such a process can ever be `p`'s parent.
    fn created(&self, ancestor: &str, p: &str) -> bool {
        let mut at = self.creator.get(p);
        while let Some(c) = at {
            if c == ancestor {
                return true;
            }
            at = self.creator.get(c);
        }
        false
    }

    /// What is wrong with `step`, given the steps before it.
    fn judge(&self, step: &Step) -> Option<String> {
        for (_, name) in step.actor_refs() {
            if let Some(at) = self.failed_spawn.get(name.as_str()) {
                return Some(format!(
                    "`{name}` does not exist: its spawn at steps[{at}] expects to fail"
                ));
            }
        }
        let by = self.performer(step);
        if acts(step) && self.world.is_some() && !self.alive.contains(by) {
            if let Some(&(at, how, own)) = self.died_at.get(by) {
                if matches!(step, Step::Exit { .. }) && how == "exit" && own {
                    return Some(format!(
                        "`{by}` already exited at steps[{at}]: a process exits once"
                    ));
                }
                let reaped = match self.world.as_ref().map(|w| w.state(by)) {
                    Some(ProcState::Gone) => ", and is gone",
                    _ => "",
                };
                return Some(format!(
                    "`{by}` cannot {}: it died at steps[{at}] ({how}){reaped}",
                    step.keyword()
                ));
            }
        }
        if let Step::Wait {
            target,
            errno: None,
            ..
        } = step
        {
            let waiter = self.process(by);
            let echild = "a wait that must fail names `errno: ECHILD`";
            if let WaitTarget::Actor(t) = target {
                let target = self.process(t.as_str());
                if target == self.root {
                    return Some(format!(
                        "`{by}` waits for `{t}`, the agent's own process, which is no process's child here; {echild}"
                    ));
                }
                if target == waiter {
                    return Some(format!(
                        "`{by}` waits for `{t}`, its own process, which is never its own child; {echild}"
                    ));
                }
                if self.created(target, waiter) {
                    return Some(format!(
                        "`{by}` waits for `{t}`, which created it: a process is never the child of its own descendant; {echild}"
                    ));
                }
            }
        }
        for handle in step_handles(step) {
            let holder = self.process(by);
            if !self.handles.get(holder).is_some_and(|h| h.contains(handle)) {
                let why = match self.dropped.get(&(holder.to_string(), handle.to_string())) {
                    Some(why) => why.clone(),
                    None => match self.opened.get(handle) {
                        Some((opener, at)) => format!(
                            "`{opener}` opened it at steps[{at}], and only it and the processes it forks afterwards hold it"
                        ),
                        None => "its opening step expects to fail".to_string(),
                    },
                };
                return Some(format!("`{holder}` holds no handle `{handle}`: {why}"));
            }
        }
        None
    }

    /// Keeps the books after `step`, as the agent and the model would.
    fn record(&mut self, i: usize, step: &Step) {
        let by = self.performer(step).to_string();
        let holder = self.process(&by).to_string();
        match step {
            Step::Spawn {
                name,
                errno: Some(_),
                ..
            } => {
                self.failed_spawn.insert(name.to_string(), i);
            }
            Step::Spawn { name, how, .. } => {
                let name = name.to_string();
                if *how == SpawnHow::Thread {
                    self.process_of.insert(name.clone(), holder.clone());
                    self.threads
                        .entry(holder.clone())
                        .or_default()
                        .push(name.clone());
                } else {
                    self.process_of.insert(name.clone(), name.clone());
                    self.creator.insert(name.clone(), holder.clone());
                    // A fork child inherits a copy of its parent's handles.
                    let inherited = self.handles.get(&holder).cloned().unwrap_or_default();
                    self.handles.insert(name.clone(), inherited);
                }
                self.alive.insert(name);
            }
            Step::Exec { errno: None, .. } => {
                // The new image starts with an empty handle table.
                for h in std::mem::take(self.handles.entry(holder.clone()).or_default()) {
                    self.dropped.insert(
                        (holder.clone(), h),
                        format!("its exec at steps[{i}] started a new image, which holds none"),
                    );
                }
            }
            Step::Close { handle, .. } => {
                if let Some(held) = self.handles.get_mut(&holder) {
                    held.remove(handle.as_str());
                }
                self.dropped.insert(
                    (holder.clone(), handle.to_string()),
                    format!("it closed it at steps[{i}]"),
                );
            }
            _ => {}
        }
        for handle in opened_handles(step) {
            self.handles
                .entry(holder.clone())
                .or_default()
                .insert(handle.to_string());
            self.opened.insert(handle.to_string(), (holder.clone(), i));
        }
        self.follow_the_model(i, step);
    }

    /// Applies `step` to the model, or stops following it where the
    /// scenario leaves it.
    fn follow_the_model(&mut self, i: usize, step: &Step) {
        let Some(world) = self.world.as_mut() else {
            return;
        };
        if leaves_the_tree_alone(step) {
            return;
        }
        // A name the books know is one the model spawned too (the model
        // stopped being followed where the two could part).
        let process_of = &self.process_of;
        if step
            .actor_refs()
            .iter()
            .any(|(_, a)| !process_of.contains_key(a.as_str()))
        {
            self.world = None;
            return;
        }
        match world.apply(step) {
            Ok(applied) if applied.disagreement.is_none() => {
                // Only these steps end a life: the performer's or target's
                // process, its threads, and with a namespace's init its
                // whole namespace (looked at only then, as it costs a walk
                // over everyone).
                let victim = match step {
                    Step::Exit { by, .. } | Step::Exec { by, .. } => Some(by.as_str()),
                    Step::Kill { target, .. } => Some(target.as_str()),
                    _ => None,
                };
                let Some(victim) = victim else { return };
                let process = world.process_of(victim).to_string();
                let candidates: Vec<String> = if world.is_ns_init(&process) {
                    self.alive.iter().cloned().collect()
                } else {
                    let mut c = vec![victim.to_string(), process.clone()];
                    c.extend(self.threads.get(&process).into_iter().flatten().cloned());
                    c
                };
                let died: Vec<String> = candidates
                    .into_iter()
                    .filter(|t| self.alive.contains(t) && world.state(t) != ProcState::Alive)
                    .collect();
                let performer = step.performer().map_or(world.root(), |a| a.as_str());
                let performer = world.process_of(performer).to_string();
                for t in died {
                    let own = world.process_of(&t) == performer;
                    self.alive.remove(&t);
                    self.died_at.insert(t, (i, step.keyword(), own));
                }
            }
            // The scenario expects what the model does not predict, or does
            // what it does not cover: the run will tell.
            _ => self.world = None,
        }
    }
}

/// Whether the step runs code in its performer, which must then be alive.
/// Observations from outside (a parent's PPid, a state in /proc, the host's
/// checks) can be made of the dead.
fn acts(step: &Step) -> bool {
    !matches!(
        step,
        Step::Observe { .. }
            | Step::ExpectParent { .. }
            | Step::ExpectState { .. }
            | Step::ExpectGone { .. }
            | Step::ExpectContainerExit { .. }
            | Step::RuntimeKill { .. }
            | Step::RuntimeDelete { .. }
    )
}

/// Steps the model does not cover that change no process's life or parent.
fn leaves_the_tree_alone(step: &Step) -> bool {
    matches!(
        step,
        Step::MemfdCreate { .. }
            | Step::Pipe { .. }
            | Step::Write { .. }
            | Step::Truncate { .. }
            | Step::AddSeals { .. }
            | Step::ExpectSeals { .. }
            | Step::Mmap { .. }
            | Step::ExpectByte { .. }
            | Step::ExpectSize { .. }
            | Step::ExpectCloexec { .. }
            | Step::Close { .. }
            | Step::PidfdOpen { .. }
            | Step::ExpectPidfd { .. }
            | Step::ExpectExe { .. }
            | Step::SetGlobal { .. }
            | Step::ExpectGlobal { .. }
            | Step::Sysctl { .. }
            | Step::Detach { .. }
            | Step::ExpectPdeathsig { .. }
            | Step::MeasureExitDetection { .. }
            | Step::Exec { errno: Some(_), .. }
    )
}

/// The handles a step uses, which its performer must hold.
fn step_handles(step: &Step) -> Vec<&str> {
    match step {
        Step::Write { handle, .. }
        | Step::Truncate { handle, .. }
        | Step::AddSeals { handle, .. }
        | Step::ExpectSeals { handle, .. }
        | Step::Mmap { handle, .. }
        | Step::ExpectByte { handle, .. }
        | Step::ExpectSize { handle, .. }
        | Step::ExpectCloexec { handle, .. }
        | Step::Close { handle, .. }
        | Step::ExpectPidfd { handle, .. } => vec![handle.as_str()],
        Step::Store { map, .. } => vec![map.as_str()],
        Step::Exec { memfd: Some(m), .. } => vec![m.as_str()],
        _ => vec![],
    }
}

/// The handles a step opens, when it succeeds.
fn opened_handles(step: &Step) -> Vec<&str> {
    match step {
        Step::MemfdCreate {
            handle,
            errno: None,
            ..
        }
        | Step::PidfdOpen {
            handle,
            errno: None,
            ..
        } => vec![handle.as_str()],
        Step::Mmap {
            map, errno: None, ..
        } => vec![map.as_str()],
        Step::Pipe { read, write, .. } => vec![read.as_str(), write.as_str()],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use crate::parse;
    use rstest::rstest;

    fn check(steps: &str) -> Result<(), String> {
        let text = format!("checks: x\nrefs: [y]\nsteps:\n{steps}");
        parse("f.yaml", &text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[rstest]
    #[case::exit_twice(
        "  - spawn: {name: a}\n  - exit: {by: a}\n  - exit: {by: a}\n",
        "f.yaml:6:3: steps[2]: `a` already exited at steps[1]: a process exits once"
    )]
    #[case::thread_of_a_dead_process("  - spawn: {name: p}\n  - spawn: {name: t, by: p, how: thread}\n  - exit: {by: p}\n  - catch: {by: t, signals: [SIGCHLD]}\n", "f.yaml:7:3: steps[3]: `t` cannot catch: it died at steps[2] (exit), and is gone")]
    #[case::killed("  - spawn: {name: a}\n  - kill: {target: a, signal: SIGKILL}\n  - set_global: {by: a, value: 1}\n", "f.yaml:6:3: steps[2]: `a` cannot set_global: it died at steps[1] (kill)")]
    #[case::orphan_of_a_dead_namespace("  - spawn: {name: ns, how: pid_namespace}\n  - spawn: {name: inner, by: ns}\n  - exit: {by: ns}\n  - exit: {by: inner}\n", "f.yaml:7:3: steps[3]: `inner` cannot exit: it died at steps[2] (exit), and is gone")]
    #[case::wait_for_root("  - wait: {for: init}\n", "f.yaml:4:3: steps[0]: `init` waits for `init`, the agent's own process, which is no process's child here; a wait that must fail names `errno: ECHILD`")]
    #[case::wait_for_itself("  - spawn: {name: a}\n  - wait: {by: a, for: a, status: running, flags: [WNOHANG]}\n", "f.yaml:5:3: steps[1]: `a` waits for `a`, its own process, which is never its own child; a wait that must fail names `errno: ECHILD`")]
    #[case::pidfd_never_opened_here("  - spawn: {name: a}\n  - spawn: {name: b}\n  - pidfd_open: {by: a, target: b, handle: fd}\n  - expect_pidfd: {of: b, handle: fd, readable: false}\n", "f.yaml:7:3: steps[3]: `b` holds no handle `fd`: `a` opened it at steps[2], and only it and the processes it forks afterwards hold it")]
    #[case::mapping_after_exec("  - spawn: {name: a}\n  - memfd_create: {by: a, handle: m, content: {bytes: 8}}\n  - exec: {by: a}\n  - expect_byte: {of: a, handle: m, is: 0}\n", "f.yaml:7:3: steps[3]: `a` holds no handle `m`: its exec at steps[2] started a new image, which holds none")]
    fn mistakes_are_refused_with_their_step(#[case] steps: &str, #[case] line: &str) {
        assert_eq!(check(steps).unwrap_err(), line);
    }

    #[rstest]
    #[case::echild_on_purpose(
        "  - spawn: {name: a}\n  - wait: {by: a, for: init, errno: ECHILD}\n"
    )]
    #[case::wait_on_a_stranger_is_for_the_kernel("  - spawn: {name: p}\n  - spawn: {name: c, by: p}\n  - spawn: {name: s}\n  - exit: {by: c}\n  - wait: {by: s, for: c, status: {exited: 0}}\n")]
    #[case::inherited_handle("  - memfd_create: {handle: m}\n  - spawn: {name: a}\n  - write: {by: a, handle: m, len: 1}\n")]
    #[case::thread_shares_handles("  - spawn: {name: p}\n  - spawn: {name: t, by: p, how: thread}\n  - memfd_create: {by: t, handle: m}\n  - write: {by: p, handle: m, len: 1}\n")]
    #[case::zombie_observed("  - spawn: {name: a}\n  - exit: {by: a}\n  - expect_state: {of: a, is: zombie}\n  - expect_parent: {of: a, is: init}\n")]
    #[case::adopted_orphan_reaped("  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - spawn: {name: mid, by: sub}\n  - spawn: {name: leaf, by: mid}\n  - exit: {by: mid}\n  - wait: {by: sub, for: mid}\n  - exit: {by: leaf}\n  - wait: {by: sub, for: leaf}\n")]
    // After a step the model does not cover (SIGTERM's fate depends on
    // handlers), liveness is the run's to see.
    #[case::beyond_the_model(
        "  - spawn: {name: a}\n  - kill: {target: a, signal: SIGTERM}\n  - exit: {by: a}\n"
    )]
    fn what_is_meant_stays_valid(#[case] steps: &str) {
        assert_eq!(check(steps), Ok(()));
    }
}
