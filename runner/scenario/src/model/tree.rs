//! Generated process trees, and how one becomes an ordinary scenario: spawn
//! steps build the tree, prctl and sigaction steps set flags and
//! dispositions, exits run in the generated order, and the reference model's
//! prediction becomes `observe` steps and expectations. Running the scenario
//! reuses the normal machinery on any target, and a failing one is already a
//! regression file.

use super::rules::Defect;
use super::world::{Prediction, World};
use crate::deadline::{Deadline, MAX_DEADLINE};
use crate::kernel_names::SignalName;
use crate::names::{ActorRef, NewName};
use crate::scenario::{Namespace, Scenario};
use crate::step::{ProcState, SpawnHow, Step};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::time::Duration;

/// Nested pid namespaces are capped well below the kernel's 32 levels
/// (MAX_PID_NS_LEVEL), which the harness's own namespace may already use some of.
pub const MAX_NS_DEPTH: usize = 4;

/// What a node does with SIGCHLD, beyond what it inherits from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sigchld {
    /// A recording handler.
    Catch,
    /// A recording handler with SA_NOCLDWAIT.
    CatchNoCldWait,
    /// SIG_IGN.
    Ignore,
}

/// How a generated node's parent is chosen, before the tree is made valid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParentChoice {
    /// The agent's root.
    Root,
    /// The node just before: trees get deep.
    Previous,
    /// Any node before, as a fraction of their number: trees get wide.
    Any(f64),
}

/// A node as generated: any combination, made valid by `Tree::new`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawNode {
    pub parent: ParentChoice,
    pub how: SpawnHow,
    pub subreaper: bool,
    pub sigchld: Option<Sigchld>,
    /// None: never exits. Exits run by rank, then by position.
    pub exit_rank: Option<u8>,
}

/// A node of a valid tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// The actor that spawns it: 0 is the root, k is node k-1.
    pub by: usize,
    pub how: SpawnHow,
    pub subreaper: bool,
    pub sigchld: Option<Sigchld>,
    pub exit_rank: Option<u8>,
}

/// A generated tree, valid by construction: every spawn it asks for is one
/// the kernel allows and the agent can perform.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub root_sigchld: Option<Sigchld>,
    pub nodes: Vec<Node>,
}

/// A tree as a scenario, with what the model predicts each `observe` step
/// will see, by step index.
#[derive(Debug, Clone)]
pub struct Generated {
    pub scenario: Scenario,
    pub expected: BTreeMap<usize, Vec<(String, Prediction)>>,
    /// Where the expectation steps start. They repeat, as checks that fail
    /// a normal run, what the last `observe` step reports.
    pub expectations_from: usize,
}

impl Generated {
    /// The scenario without its closing expectations: the `observe` events
    /// carry every fact they check, so exploring needs only these steps.
    pub fn observing_only(&self) -> Scenario {
        let mut s = self.scenario.clone();
        s.steps.truncate(self.expectations_from);
        s
    }
}

/// The references every generated scenario rests on.
pub const REFS: &[&str] = &[
    "kernel/exit.c forget_original_parent(), find_new_reaper(), find_child_reaper(), reparent_leader()",
    "kernel/signal.c do_notify_parent()",
    "prctl(2) PR_SET_CHILD_SUBREAPER",
    "wait(2) NOTES (SIG_IGN, SA_NOCLDWAIT)",
    "pid_namespaces(7)",
    "clone(2) CLONE_PARENT",
];

impl Tree {
    /// Makes generated choices valid: a sibling (CLONE_PARENT) cannot be
    /// cloned by an init (clone(2) EINVAL); a process with threads only
    /// forks (the agent's raw clones would skip libc's fork handlers);
    /// threads are not put in the agent's root, which runs the scenario;
    /// pid namespaces nest at most MAX_NS_DEPTH deep.
    pub fn new(root_sigchld: Option<Sigchld>, raw: &[RawNode]) -> Tree {
        // Per actor (0 = root): its process, whether that is an init, and its depth.
        let mut process = vec![0usize];
        let mut is_init = vec![true];
        let mut depth = vec![0usize];
        let mut threaded = vec![false];
        let mut nodes = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let by = match r.parent {
                ParentChoice::Root => 0,
                ParentChoice::Previous => i,
                ParentChoice::Any(f) => ((f.clamp(0.0, 1.0) * (i + 1) as f64) as usize).min(i),
            };
            let p = process[by];
            let mut how = r.how;
            let fork_only = threaded[p];
            how = match how {
                SpawnHow::CloneParent if is_init[p] || fork_only => SpawnHow::Fork,
                SpawnHow::PidNamespace if fork_only || depth[p] >= MAX_NS_DEPTH => SpawnHow::Fork,
                SpawnHow::Thread if p == 0 => SpawnHow::Fork,
                SpawnHow::Fork
                | SpawnHow::Thread
                | SpawnHow::CloneParent
                | SpawnHow::PidNamespace => how,
                SpawnHow::Clone | SpawnHow::Clone3Parent | SpawnHow::Clone3ParentOrClone => {
                    SpawnHow::Fork
                }
            };
            let me = i + 1;
            let name = match how {
                SpawnHow::Thread => format!("t{me}"),
                SpawnHow::PidNamespace => format!("ns{me}"),
                _ => format!("p{me}"),
            };
            if how == SpawnHow::Thread {
                process.push(p);
                threaded[p] = true;
                is_init.push(false);
                depth.push(depth[p]);
            } else {
                process.push(me);
                is_init.push(how == SpawnHow::PidNamespace);
                depth.push(depth[p] + usize::from(how == SpawnHow::PidNamespace));
            }
            threaded.push(false);
            nodes.push(Node {
                name,
                by,
                how,
                subreaper: r.subreaper,
                sigchld: r.sigchld,
                exit_rank: r.exit_rank,
            });
        }
        Tree {
            root_sigchld,
            nodes,
        }
    }

    pub fn processes(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.how != SpawnHow::Thread)
            .count()
    }

    fn actor(&self, index: usize) -> ActorRef {
        match index {
            0 => ActorRef("init".into()),
            k => ActorRef(self.nodes[k - 1].name.clone()),
        }
    }

    /// The scenario that builds this tree, runs its exits and checks every
    /// process against `defect`'s model (Defect::None: the real rules).
    pub fn to_scenario(&self, checks: &str, defect: Defect) -> Generated {
        let mut world = World::new("init", defect);
        let mut steps: Vec<Step> = vec![];
        let mut expected = BTreeMap::new();
        let push = |world: &mut World, steps: &mut Vec<Step>, step: Step| {
            let applied = world
                .apply(&step)
                .expect("generated steps are inside the model");
            steps.push(step);
            applied
        };
        let disposition = |by: Option<ActorRef>, s: Sigchld| match s {
            Sigchld::Catch | Sigchld::CatchNoCldWait => Step::Catch {
                by,
                signals: vec![SignalName(Signal::SIGCHLD)],
                nocldwait: s == Sigchld::CatchNoCldWait,
            },
            Sigchld::Ignore => Step::Ignore {
                by,
                signal: Some(SignalName(Signal::SIGCHLD)),
                every: false,
            },
        };
        if let Some(s) = self.root_sigchld {
            push(&mut world, &mut steps, disposition(None, s));
        }
        for n in &self.nodes {
            let by = (n.by != 0).then(|| self.actor(n.by));
            let me = ActorRef(n.name.clone());
            let spawn = Step::Spawn {
                name: NewName(n.name.clone()),
                by,
                how: n.how,
                exit_signal: None,
                errno: None,
            };
            push(&mut world, &mut steps, spawn);
            if n.subreaper {
                let set = Step::SetSubreaper {
                    by: Some(me.clone()),
                    value: 1,
                    errno: None,
                };
                push(&mut world, &mut steps, set);
            }
            if let Some(s) = n.sigchld {
                push(&mut world, &mut steps, disposition(Some(me), s));
            }
        }
        let mut exits: Vec<(u8, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.exit_rank.map(|r| (r, i)))
            .collect();
        exits.sort();
        for (_, i) in exits {
            let name = &self.nodes[i].name;
            // Killed with its namespace, or with its thread group: nothing to exit.
            if world.state(name) != ProcState::Alive {
                continue;
            }
            let exit = Step::Exit {
                by: ActorRef(name.clone()),
                code: (i % 3) as u8,
            };
            let applied = push(&mut world, &mut steps, exit);
            if !applied.sigchld_to.is_empty() {
                // Have the handlers run (and be counted) before the next exit:
                // a second SIGCHLD sent while one is pending would be lost.
                let of: Vec<ActorRef> = applied
                    .sigchld_to
                    .iter()
                    .map(|n| ActorRef(n.clone()))
                    .collect();
                expected.insert(steps.len(), self.predictions(&world, &of));
                push(&mut world, &mut steps, Step::Observe { of });
            }
        }
        let mut everyone: Vec<ActorRef> = vec![];
        if world.predict("init").sigchld.is_some() {
            everyone.push(self.actor(0));
        }
        everyone.extend(self.nodes.iter().map(|n| ActorRef(n.name.clone())));
        if !everyone.is_empty() {
            expected.insert(steps.len(), self.predictions(&world, &everyone));
            push(
                &mut world,
                &mut steps,
                Step::Observe {
                    of: everyone.clone(),
                },
            );
        }
        let expectations_from = steps.len();
        for of in everyone {
            let p = world.predict(of.as_str());
            if of.as_str() != "init" {
                let state = Step::ExpectState {
                    of: of.clone(),
                    is: p.state,
                    within: None,
                };
                push(&mut world, &mut steps, state);
                if let (Some(parent), false) = (&p.parent, world.is_thread(of.as_str())) {
                    let parent = Step::ExpectParent {
                        of: of.clone(),
                        is: ActorRef(parent.clone()),
                        within: None,
                    };
                    push(&mut world, &mut steps, parent);
                }
            }
            // Several SIGCHLDs sent while one is pending merge into one, so
            // the model knows a range: at least one per exit step that sent
            // any, at most one per signal sent; none when none was sent.
            let range = match p.sigchld {
                Some((_, 0)) => Some((0, None)),
                Some((at_least, sent)) if at_least > 0 => Some((at_least, Some(sent))),
                _ => None,
            };
            if let Some((count, at_most)) = range {
                let signal = Step::ExpectSignal {
                    of: Some(of.clone()),
                    signal: SignalName(Signal::SIGCHLD),
                    from: None,
                    count: Some(count),
                    at_most,
                    within: None,
                };
                push(&mut world, &mut steps, signal);
            }
        }
        let per_node = Duration::from_millis(30) * self.nodes.len() as u32;
        let deadline = (Duration::from_secs(10) + per_node).min(MAX_DEADLINE);
        Generated {
            scenario: Scenario {
                checks: checks.to_string(),
                requires: vec![],
                refs: REFS.iter().map(|r| r.to_string()).collect(),
                deadline: Some(Deadline(deadline)),
                namespace: Namespace::Fresh,
                init_mode: None,
                steps,
            },
            expected,
            expectations_from,
        }
    }

    fn predictions(&self, world: &World, of: &[ActorRef]) -> Vec<(String, Prediction)> {
        of.iter()
            .map(|a| (a.to_string(), world.predict(a.as_str())))
            .collect()
    }
}
