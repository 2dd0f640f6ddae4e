//! The target a trial runs on: the running kernel, one OCI runtime, or a
//! kernel booted in QEMU.

use super::host::{run_on_host, HostTarget};
use super::runtime::{run_in_runtime, RuntimeTarget};
use super::vm::VmTarget;
use orphanage_scenario::{Event, Scenario};
use std::path::Path;

#[derive(Debug, Clone)]
pub enum Target {
    Host(HostTarget),
    Runtime(RuntimeTarget),
    /// A kernel booted in QEMU: once for all of a suite's scenarios
    /// (`--kernel`), or once per batch of generated trees (`explore --kernel`).
    Vm(VmTarget),
}

/// Why a `namespace: global_init` scenario runs nowhere but in a VM.
pub const GLOBAL_INIT_NEEDS_A_VM: &str =
    "needs the VM target (--kernel): its root must be the machine's own init";

/// Why a VM (or the host) cannot run the scenario, if it cannot: it needs a
/// container runtime.
fn cannot_run_in_a_vm(scenario: &Scenario) -> Option<String> {
    scenario.needs_runtime().then(|| {
        "needs an OCI runtime target (--runtime): it drives the runtime, or tests an init program in a container"
            .into()
    })
}

impl Target {
    /// The prefix of trial names (`runc:`), so runtimes sit side by side in
    /// one run. A VM, like the host, is its run's only target.
    pub fn prefix(&self) -> String {
        match self {
            Target::Host(_) | Target::Vm(_) => String::new(),
            Target::Runtime(r) => format!("{}:", r.label),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Target::Host(_) => "host",
            Target::Runtime(r) => &r.label,
            Target::Vm(v) => &v.label,
        }
    }

    /// Why this target cannot run the scenario at all, if it cannot.
    pub fn cannot_run(&self, scenario: &Scenario) -> Option<String> {
        match self {
            Target::Vm(_) => cannot_run_in_a_vm(scenario),
            Target::Host(_) if scenario.needs_runtime() => cannot_run_in_a_vm(scenario),
            Target::Host(_) | Target::Runtime(_) if scenario.needs_vm() => {
                Some(GLOBAL_INIT_NEEDS_A_VM.into())
            }
            _ => None,
        }
    }

    /// Runs one scenario now (a VM boots for it alone); the last event is
    /// always `Finished`.
    pub fn run(&self, agent: &Path, scenario: &Scenario, on_event: &mut dyn FnMut(&Event)) {
        match self {
            Target::Host(host) => run_on_host(*host, agent, scenario, on_event),
            Target::Runtime(r) => run_in_runtime(r, agent, scenario, on_event),
            Target::Vm(_) => self.run_batch(agent, std::slice::from_ref(scenario), &mut |_, e| {
                on_event(e)
            }),
        }
    }

    /// Runs the suite's scenario `name` (`zombie::reaped`); the last event
    /// is always `Finished`. A VM that boots once for the whole suite hands
    /// over what that boot reported under the name.
    pub fn run_named(
        &self,
        agent: &Path,
        name: &str,
        scenario: &Scenario,
        on_event: &mut dyn FnMut(&Event),
    ) {
        match self {
            Target::Vm(v) => v.run_named(name, scenario, on_event),
            Target::Host(_) | Target::Runtime(_) => self.run(agent, scenario, on_event),
        }
    }

    /// Whether a trial's duration comes from the agent's own clock (its
    /// steps' time): a VM's scenarios all wait for one boot, so their wall
    /// time says nothing about each.
    pub fn agent_clock(&self) -> bool {
        matches!(self, Target::Vm(_))
    }

    /// How many scenarios one `run_batch` call should carry: a VM boots once
    /// for all of them, so many at a time; elsewhere one is as good as many.
    pub fn batch_size(&self) -> usize {
        match self {
            Target::Vm(_) => VM_BATCH,
            Target::Host(_) | Target::Runtime(_) => 1,
        }
    }

    /// Runs several scenarios; each event comes with the index of its
    /// scenario, and each scenario's last event is `Finished`. A VM boots
    /// once and its init runs them side by side.
    pub fn run_batch(
        &self,
        agent: &Path,
        scenarios: &[Scenario],
        on_event: &mut dyn FnMut(usize, &Event),
    ) {
        let Target::Vm(v) = self else {
            for (i, s) in scenarios.iter().enumerate() {
                self.run(agent, s, &mut |e| on_event(i, e));
            }
            return;
        };
        v.run_batch(scenarios, on_event)
    }
}

/// Generated trees per boot in `explore --kernel`: enough that 1000 trees
/// (the figure README gives) take one boot, which costs 4 to 5 s under TCG.
/// Each tree's events stream as they come, so a kernel that dies loses only
/// the trees it was running; an interrupted run resumes from the boot's
/// first tree.
const VM_BATCH: usize = 1000;

/// A target together with the agent it runs: what `explore` drives, on
/// whichever target the command line chose.
pub struct Bound {
    pub target: Target,
    pub agent: std::path::PathBuf,
}

impl Bound {
    /// The name the report uses (`host`, `runc`, ...).
    pub fn name(&self) -> &str {
        self.target.label()
    }

    /// Runs one scenario; the last event is always `Finished`.
    pub fn run(&self, scenario: &Scenario, on_event: &mut dyn FnMut(&Event)) {
        self.target.run(&self.agent, scenario, on_event)
    }

    /// Runs several scenarios at once (see `Target::run_batch`).
    pub fn run_batch(&self, scenarios: &[Scenario], on_event: &mut dyn FnMut(usize, &Event)) {
        self.target.run_batch(&self.agent, scenarios, on_event)
    }
}
