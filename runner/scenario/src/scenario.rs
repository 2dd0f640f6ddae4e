//! A scenario: one behaviour, checked by one file.

use crate::deadline::{Deadline, DEFAULT_DEADLINE};
use crate::feature::Feature;
use crate::names::{ROOT_IN_CALLER_NAMESPACE, ROOT_IN_FRESH_NAMESPACE};
use crate::root_mode::RootMode;
use crate::step::{SpawnHow, Step, WaitApi};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario checks, in one sentence.
    pub checks: String,
    /// Features the agent probes before running; a missing one makes the scenario unsupported.
    #[serde(default)]
    pub requires: Vec<Feature>,
    /// Man pages, kernel commits or upstream issues behind the expectation.
    pub refs: Vec<String>,
    /// How long the whole scenario may take (default 10s).
    #[serde(default)]
    pub deadline: Option<Deadline>,
    /// Where it runs: a fresh pid namespace with the agent as init, or the caller's.
    #[serde(default)]
    pub namespace: Namespace,
    /// With `namespace: under_init`: how the init under test is asked to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_mode: Option<InitMode>,
    #[serde(with = "yaml_serde::with::singleton_map_recursive")]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// A new pid namespace (and mount namespace, for its /proc) whose init is the agent.
    #[default]
    Fresh,
    /// The pid namespace the harness runs in; the agent is an ordinary process there.
    /// On the runtime target: a container that shares the host's pid namespace.
    Caller,
    /// Runtime target only: a container whose PID 1 is the init program under
    /// test (`--init`), with the agent as its child. The agent is `agent`;
    /// `init` names the init program.
    UnderInit,
    /// VM target only: the root is the machine's own init (pid 1 of the
    /// initial pid namespace), which performs the steps itself. Only spawns
    /// with CLONE_PARENT that must fail are allowed (CHECKS 3.3): a sibling
    /// of the global init would have no parent to reap it.
    GlobalInit,
}

/// How an init program under test is run (CHECKS 4.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitMode {
    /// PID 1 of the container, forwarding signals to its child.
    #[default]
    Child,
    /// PID 1, forwarding signals to its child's process group (tini -g).
    Group,
    /// Not PID 1 (the container shares the host's pid namespace), registered
    /// as a child subreaper (tini -s).
    Subreaper,
}

impl Scenario {
    pub fn deadline(&self) -> Duration {
        self.deadline.map_or(DEFAULT_DEADLINE, |d| d.0)
    }

    /// The name by which steps refer to the agent's own process.
    pub fn root_name(&self) -> &'static str {
        match self.namespace {
            Namespace::Fresh | Namespace::GlobalInit => ROOT_IN_FRESH_NAMESPACE,
            Namespace::Caller | Namespace::UnderInit => ROOT_IN_CALLER_NAMESPACE,
        }
    }

    /// How the root runs when the target gives the scenario what it asks for.
    pub fn root_mode(&self) -> RootMode {
        match self.namespace {
            Namespace::Fresh => RootMode::PidNamespace,
            Namespace::Caller => RootMode::CallerNamespace,
            Namespace::UnderInit => RootMode::UnderInit,
            Namespace::GlobalInit => RootMode::GlobalInit,
        }
    }

    /// Whether the scenario declared `requires: [pid_namespace]`: its subject
    /// is a pid-namespace init (the root's own, or one whose meaning changes
    /// when the root is a subreaper), so a subreaper root cannot stand in for
    /// it. A pid namespace only implied by a `pid_namespace` spawn is a
    /// nested one, which a subreaper root can create like any init.
    pub fn needs_pid_namespace_root(&self) -> bool {
        self.namespace == Namespace::Fresh && self.requires.contains(&Feature::PidNamespace)
    }

    /// Whether only the VM target can run this scenario: its root must be the
    /// machine's init.
    pub fn needs_vm(&self) -> bool {
        self.namespace == Namespace::GlobalInit
    }

    /// Whether only the runtime target can run this scenario: it drives the
    /// runtime, or needs an init program under test.
    pub fn needs_runtime(&self) -> bool {
        self.namespace == Namespace::UnderInit || self.steps.iter().any(Step::runs_in_harness)
    }

    /// The declared features plus those the steps imply, in a stable order,
    /// so an author cannot forget to gate a step on what it uses.
    pub fn required_features(&self) -> Vec<Feature> {
        let mut features = self.requires.clone();
        let mut need = |f: Feature| {
            if !features.contains(&f) {
                features.push(f);
            }
        };
        for step in &self.steps {
            match step {
                Step::Spawn {
                    how: SpawnHow::PidNamespace,
                    ..
                } => {
                    need(Feature::PidNamespace);
                    need(Feature::ProcNspid);
                }
                Step::Spawn {
                    how: SpawnHow::Clone3Parent,
                    ..
                } => need(Feature::Clone3),
                Step::SetSubreaper { .. } | Step::ExpectSubreaper { .. } => {
                    need(Feature::ChildSubreaper)
                }
                Step::SetPdeathsig { .. } | Step::ExpectPdeathsig { .. } => {
                    need(Feature::Pdeathsig)
                }
                Step::Wait {
                    api: WaitApi::Pidfd,
                    ..
                } => {
                    need(Feature::Pidfd);
                    need(Feature::PidfdWait);
                }
                Step::PidfdOpen { .. } | Step::ExpectPidfd { .. } => need(Feature::Pidfd),
                Step::MeasureExitDetection {
                    method: crate::step::MeasureMethod::Pidfd,
                    ..
                } => need(Feature::Pidfd),
                Step::MemfdCreate { .. } => need(Feature::Memfd),
                Step::Exec { memfd: Some(_), .. } => need(Feature::Execveat),
                Step::Sysctl { .. } => need(Feature::MemfdNoexecSysctl),
                _ => {}
            }
        }
        features
    }
}
