//! The target a trial runs on: the running kernel, or one OCI runtime.

use super::host::{run_on_host, HostTarget};
use super::runtime::{run_in_runtime, RuntimeTarget};
use orphanage_scenario::{Event, Scenario};
use std::path::Path;

#[derive(Debug, Clone)]
pub enum Target {
    Host(HostTarget),
    Runtime(RuntimeTarget),
    /// One scenario per boot: what `explore --kernel` uses (the suite itself
    /// boots a kernel once for all its scenarios, see vm_run.rs).
    Vm(VmTarget),
}

/// A kernel to boot for each scenario, with the agent as its init.
#[derive(Debug, Clone)]
pub struct VmTarget {
    pub label: String,
    pub kernel: std::path::PathBuf,
    pub agent: std::sync::Arc<Vec<u8>>,
    pub accel: super::vm::Accel,
}

impl Target {
    /// The prefix of trial names (`runc:`), so runtimes sit side by side in one run.
    pub fn prefix(&self) -> String {
        match self {
            Target::Host(_) => String::new(),
            Target::Runtime(r) => format!("{}:", r.label),
            Target::Vm(v) => format!("{}:", v.label),
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
            Target::Host(_) | Target::Vm(_) if scenario.needs_runtime() => Some(
                "needs an OCI runtime target (--runtime): it drives the runtime, or tests an init program in a container"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Runs one scenario; the last event is always `Finished`.
    pub fn run(&self, agent: &Path, scenario: &Scenario, on_event: &mut dyn FnMut(&Event)) {
        match self {
            Target::Host(host) => run_on_host(*host, agent, scenario, on_event),
            Target::Runtime(r) => run_in_runtime(r, agent, scenario, on_event),
            Target::Vm(v) => {
                let batch = super::vm::Batch {
                    kernel: v.kernel.clone(),
                    cmdline: String::new(),
                    qemu_args: vec![],
                    scenarios: vec![orphanage_scenario::VmScenario {
                        name: "scenario".into(),
                        scenario: scenario.clone(),
                    }],
                    // One scenario: a second CPU would only slow the boot.
                    cpus: 1,
                };
                let run = super::vm::run_vm(&batch, &v.agent, v.accel, &[], &mut |_| {});
                for e in run.events_of("scenario") {
                    on_event(&e);
                }
            }
        }
    }
}

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
}
