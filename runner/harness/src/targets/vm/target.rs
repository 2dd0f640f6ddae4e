//! The VM as a target: a kernel to boot with the agent as its init, and a
//! batch of scenarios run in one boot, each scenario's events handed on as
//! they cross the result port.

use super::machine::{run as run_vm, Batch, Progress};
use super::qemu_args::{Accel, ResultsPort};
use orphanage_scenario::{Event, Scenario, VmScenario};
use std::path::PathBuf;
use std::sync::Arc;

/// A kernel to boot for each batch of scenarios, with the agent as its init.
#[derive(Debug, Clone)]
pub struct VmTarget {
    pub label: String,
    pub kernel: PathBuf,
    pub agent: Arc<Vec<u8>>,
    pub accel: Accel,
    /// Virtual CPUs for a boot that runs many scenarios.
    pub cpus: u32,
    pub results: ResultsPort,
    /// `--no-pid-namespace`: init runs fresh scenarios under subreaper roots.
    pub force_subreaper_root: bool,
}

impl VmTarget {
    /// Boots once for all of `scenarios`, which init runs side by side; each
    /// event comes with the index of its scenario, and each scenario's last
    /// event is `Finished`.
    pub fn run_batch(&self, scenarios: &[Scenario], on_event: &mut dyn FnMut(usize, &Event)) {
        let batch = Batch {
            kernel: self.kernel.clone(),
            // The knob tells the VM's init what the flag tells the host target.
            cmdline: if self.force_subreaper_root {
                "-- subreaper-root".into()
            } else {
                String::new()
            },
            qemu_args: vec![],
            scenarios: scenarios
                .iter()
                .enumerate()
                .map(|(i, s)| VmScenario {
                    name: batch_name(i),
                    scenario: s.clone(),
                })
                .collect(),
            // One scenario: a second CPU would only slow the boot.
            cpus: if scenarios.len() == 1 { 1 } else { self.cpus },
            results: self.results,
        };
        // Each event as it crosses the port, so a caller sees a long batch
        // progress; what never came (the VM died first) is made up after.
        let mut finished = vec![false; scenarios.len()];
        let run = run_vm(&batch, &self.agent, self.accel, &[], &mut |p| {
            if let Progress::Event { scenario, event } = p {
                if let Some(i) = batch_index(scenario).filter(|&i| i < finished.len()) {
                    finished[i] |= matches!(event, Event::Finished { .. });
                    on_event(i, event);
                }
            }
        });
        for (i, _) in finished.iter().enumerate().filter(|(_, done)| !**done) {
            if let Some(last) = run.events_of(&batch_name(i)).last() {
                on_event(i, last);
            }
        }
    }
}

/// The name of a batch's `i`th scenario inside the VM.
fn batch_name(i: usize) -> String {
    format!("batch::case_{i}")
}

/// The index a batch's scenario name carries: `batch_name`'s inverse.
fn batch_index(name: &str) -> Option<usize> {
    name.strip_prefix("batch::case_")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_names_carry_their_index() {
        for i in [0, 7, 999] {
            assert_eq!(batch_index(&batch_name(i)), Some(i));
        }
        assert_eq!(batch_index("zombie::reaped"), None);
        assert_eq!(batch_index("batch::case_x"), None);
    }
}
