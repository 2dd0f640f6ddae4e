//! The target a trial runs on: the running kernel, or one OCI runtime.

use super::host::run_on_host;
use super::runtime::{run_in_runtime, RuntimeTarget};
use orphanage_scenario::{Event, Scenario};
use std::path::Path;

#[derive(Debug, Clone)]
pub enum Target {
    Host,
    Runtime(RuntimeTarget),
}

impl Target {
    /// The prefix of trial names (`runc:`), so runtimes sit side by side in one run.
    pub fn prefix(&self) -> String {
        match self {
            Target::Host => String::new(),
            Target::Runtime(r) => format!("{}:", r.label),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Target::Host => "host",
            Target::Runtime(r) => &r.label,
        }
    }

    /// Why this target cannot run the scenario at all, if it cannot.
    pub fn cannot_run(&self, scenario: &Scenario) -> Option<String> {
        match self {
            Target::Host if scenario.needs_runtime() => Some(
                "needs an OCI runtime target (--runtime); on the host it has nothing to drive"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Runs one scenario; the last event is always `Finished`.
    pub fn run(&self, agent: &Path, scenario: &Scenario, on_event: &mut dyn FnMut(&Event)) {
        match self {
            Target::Host => run_on_host(agent, scenario, on_event),
            Target::Runtime(r) => run_in_runtime(r, agent, scenario, on_event),
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
