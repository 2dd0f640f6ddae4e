//! The VM as a target: a kernel to boot with the agent as its init. A batch
//! of scenarios runs in one boot, each scenario's events handed on as they
//! cross the result port; a suite run's trials share one boot for all of them.

use super::accel::{choose as choose_accel, AccelChoice};
use super::machine::{run as run_vm, Batch, Progress};
use super::qemu_args::ResultsPort;
use super::shared_boot::{Booted, SharedBoot};
use orphanage_scenario::{Event, Scenario, VmScenario};
use std::path::PathBuf;
use std::sync::Arc;

/// A kernel to boot with the agent as its init.
#[derive(Debug, Clone)]
pub struct VmTarget {
    pub label: String,
    pub kernel: PathBuf,
    pub agent: Arc<Vec<u8>>,
    /// Chosen once per run, by the first boot that asks (`choose_accel`).
    pub accel: AccelChoice,
    /// Virtual CPUs for a boot that runs many scenarios.
    pub cpus: u32,
    pub results: ResultsPort,
    /// `--no-pid-namespace`: init runs fresh scenarios under subreaper roots.
    pub force_subreaper_root: bool,
    /// `--kernel`: the one boot every trial of the suite takes its events
    /// from. Without it (explore), each batch boots the kernel afresh.
    pub shared: Option<Arc<SharedBoot>>,
}

impl VmTarget {
    /// What one boot of this kernel runs: `scenarios` on `cpus` CPUs.
    pub(super) fn batch(&self, scenarios: Vec<VmScenario>, cpus: u32) -> Batch {
        Batch {
            kernel: self.kernel.clone(),
            // The knob tells the VM's init what the flag tells the host target.
            cmdline: if self.force_subreaper_root {
                "-- subreaper-root".into()
            } else {
                String::new()
            },
            qemu_args: vec![],
            scenarios,
            cpus,
            results: self.results,
        }
    }

    /// The suite's scenario `name`: its events, from the shared boot (booted
    /// now if this is the first trial to ask, else waited for), or, without
    /// one, from a boot of its own. The last event is always `Finished`.
    pub fn run_named(&self, name: &str, scenario: &Scenario, on_event: &mut dyn FnMut(&Event)) {
        match &self.shared {
            Some(shared) => {
                for event in shared.boot(self).run.events_of(name) {
                    on_event(&event);
                }
            }
            None => self.run_batch(std::slice::from_ref(scenario), &mut |_, e| on_event(e)),
        }
    }

    /// The shared boot, once a trial has made it.
    pub fn booted(&self) -> Option<&Booted> {
        self.shared.as_ref()?.booted()
    }

    /// Boots once for all of `scenarios`, which init runs side by side; each
    /// event comes with the index of its scenario, and each scenario's last
    /// event is `Finished`.
    pub fn run_batch(&self, scenarios: &[Scenario], on_event: &mut dyn FnMut(usize, &Event)) {
        let batch = self.batch(
            scenarios
                .iter()
                .enumerate()
                .map(|(i, s)| VmScenario {
                    name: batch_name(i),
                    scenario: s.clone(),
                })
                .collect(),
            // One scenario: a second CPU would only slow the boot.
            if scenarios.len() == 1 { 1 } else { self.cpus },
        );
        let accel = choose_accel(self.accel, &self.kernel).accel;
        // Each event as it crosses the port, so a caller sees a long batch
        // progress; what never came (the VM died first) is made up after.
        let mut finished = vec![false; scenarios.len()];
        let run = run_vm(&batch, &self.agent, accel, &[], &mut |p| {
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
