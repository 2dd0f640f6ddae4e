//! Where scenarios run. Each target turns a scenario into a stream of events.

mod host;

pub use host::run_on_host;

use orphanage_scenario::{Event, Scenario};
use std::path::PathBuf;

/// A place to run scenarios: every event goes to `on_event`, and the last
/// one is always `Finished`. `explore` takes one of these, so it works on any
/// target that implements it.
pub trait Target: Sync {
    /// The name the report uses (`host`, ...).
    fn name(&self) -> &str;
    fn run(&self, scenario: &Scenario, on_event: &mut dyn FnMut(&Event));
}

/// The running kernel, with the agent at `agent`.
pub struct Host {
    pub agent: PathBuf,
}

impl Target for Host {
    fn name(&self) -> &str {
        "host"
    }

    fn run(&self, scenario: &Scenario, on_event: &mut dyn FnMut(&Event)) {
        run_on_host(&self.agent, scenario, on_event)
    }
}
