//! `--kernel`'s one boot: every selected scenario in one VM, booted when the
//! first trial needs a result. The other trials wait for that boot and each
//! takes its own scenario's events from it: a boot costs 5 to 10 s under
//! TCG, one per trial would cost a suite minutes.

use super::accel::{choose as choose_accel, Chosen};
use super::machine::{boot_floor, run as run_vm, Batch, Progress, VmRun};
use super::target::VmTarget;
use crate::live;
use orphanage_scenario::VmScenario;
use std::sync::OnceLock;
use std::time::Duration;

/// What the boot tells whoever shows its progress, in this order.
pub enum BootProgress<'a> {
    /// The accelerator is chosen; the boot floor, if asked for, comes next.
    Chosen {
        chosen: &'a Chosen,
        scenarios: usize,
    },
    /// The boot that runs the scenarios begins.
    Booting {
        cpus: u32,
        scenarios: usize,
    },
    Machine(Progress<'a>),
    /// QEMU is gone, and the boot is over.
    Ended(&'a VmRun),
}

/// Shows a boot's progress (the CLI's board); the boot itself prints nothing.
pub type BootWatch = Box<dyn Fn(BootProgress<'_>) + Send + Sync>;

/// One boot for every scenario a suite run's trials ask for.
pub struct SharedBoot {
    /// The scenarios the trials will ask for, by name: the run's selection.
    scenarios: Vec<VmScenario>,
    /// `--boot-floor`: first boot the kernel with an init that only powers off.
    measure_floor: bool,
    watch: BootWatch,
    booted: OnceLock<Booted>,
}

/// What the boot gave: the accelerator it ran under, the boot floor if it
/// was measured, and everything QEMU reported.
#[derive(Debug)]
pub struct Booted {
    pub chosen: Chosen,
    pub floor: Option<Duration>,
    pub run: VmRun,
}

impl std::fmt::Debug for SharedBoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBoot")
            .field("scenarios", &self.scenarios.len())
            .field("measure_floor", &self.measure_floor)
            .field("booted", &self.booted)
            .finish_non_exhaustive()
    }
}

impl SharedBoot {
    pub fn new(scenarios: Vec<VmScenario>, measure_floor: bool, watch: BootWatch) -> Self {
        SharedBoot {
            scenarios,
            measure_floor,
            watch,
            booted: OnceLock::new(),
        }
    }

    /// The boot, once a trial has made it.
    pub fn booted(&self) -> Option<&Booted> {
        self.booted.get()
    }

    /// The boot of `vm`: made by the first caller, waited for by the others.
    pub(super) fn boot(&self, vm: &VmTarget) -> &Booted {
        self.booted.get_or_init(|| {
            let chosen = choose_accel(vm.accel, &vm.kernel);
            let scenarios = self.scenarios.len();
            (self.watch)(BootProgress::Chosen {
                chosen: &chosen,
                scenarios,
            });
            // Without the run's knobs: the floor's init only powers off.
            let floor = if self.measure_floor {
                let kernel = Batch {
                    cmdline: String::new(),
                    ..vm.batch(vec![], vm.cpus)
                };
                boot_floor(&kernel, &vm.agent, chosen.accel)
            } else {
                None
            };
            (self.watch)(BootProgress::Booting {
                cpus: vm.cpus,
                scenarios,
            });
            let run = run_vm(
                &vm.batch(self.scenarios.clone(), vm.cpus),
                &vm.agent,
                chosen.accel,
                &[],
                &mut |p| (self.watch)(BootProgress::Machine(p)),
            );
            (self.watch)(BootProgress::Ended(&run));
            if live::interrupted() {
                live::stand_down();
            }
            Booted { chosen, floor, run }
        })
    }
}
