//! `--kernel` (one kernel, its scenarios as libtest trials, reported like
//! the host suite) and `explore --kernel`.

use super::board::Board;
use super::inputs::*;
use crate::cli::Cli;
use crate::discover::Loaded;
use crate::kernels::{self, Kernel};
use crate::reporting::{self};
use crate::targets::vm::{self, Batch, Chosen, Progress, VmRun};
use crate::{live, trials};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// `explore --kernel`: a target that boots the kernel once per generated tree.
pub fn explore_target(cli: &Cli, image: &Path) -> anyhow::Result<crate::targets::Target> {
    // The user's input first: a file that is not a kernel is bad input
    // whether or not QEMU is installed.
    vm::check_kernel_file(image)?;
    check_qemu()?;
    let chosen = vm::choose_accel(cli.accel, image);
    eprintln!(
        "orphanage: generated trees run in batches, one boot of {} in QEMU each ({}: {})",
        image.display(),
        chosen.accel.as_str(),
        chosen.why
    );
    Ok(crate::targets::Target::Vm(crate::targets::VmTarget {
        label: image
            .file_name()
            .map_or("kernel".into(), |n| n.to_string_lossy().into_owned()),
        kernel: image.to_path_buf(),
        agent: agent_bytes(cli)?,
        accel: chosen.accel,
        cpus: cli.vm_cpus.unwrap_or(vm::cpus_each(host_cores(), 1)),
        results: cli.vm_results.unwrap_or_default(),
        force_subreaper_root: cli.no_pid_namespace,
    }))
}

/// One kernel, run lazily by the first trial that needs a result.
pub struct SingleVm {
    kernel: Kernel,
    image: PathBuf,
    agent: Arc<Vec<u8>>,
    batch: Batch,
    accel: vm::AccelChoice,
    boot_floor: bool,
    done: OnceLock<(Chosen, Option<Duration>, VmRun)>,
}

pub fn prepare_single(cli: &Cli, image: &Path, loaded: &[Loaded]) -> anyhow::Result<Arc<SingleVm>> {
    // The user's input first: a file that is not a kernel is bad input
    // whether or not QEMU is installed.
    vm::check_kernel_file(image)?;
    check_qemu()?;
    let kernel = Kernel {
        name: image
            .file_name()
            .map_or("kernel".into(), |n| n.to_string_lossy().into_owned()),
        source: kernels::Source::Path(image.to_path_buf()),
        qemu_args: vec![],
        cmdline: String::new(),
        results: cli.vm_results.unwrap_or_default(),
    };
    Ok(Arc::new(SingleVm {
        batch: Batch {
            kernel: image.to_path_buf(),
            // The knob tells the VM's init what the flag tells the host target.
            cmdline: if cli.no_pid_namespace {
                "-- subreaper-root".into()
            } else {
                String::new()
            },
            qemu_args: vec![],
            scenarios: vm_scenarios(&selected(cli, loaded)),
            cpus: cli.vm_cpus.unwrap_or(vm::cpus_each(host_cores(), 1)),
            results: cli.vm_results.unwrap_or_default(),
        },
        image: image.to_path_buf(),
        kernel,
        agent: agent_bytes(cli)?,
        accel: cli.accel,
        boot_floor: cli.boot_floor,
        done: OnceLock::new(),
    }))
}

impl SingleVm {
    fn run(&self) -> &(Chosen, Option<Duration>, VmRun) {
        self.done.get_or_init(|| {
            let chosen = vm::choose_accel(self.accel, &self.image);
            eprintln!(
                "orphanage: booting {} in QEMU ({}: {}) to run {} scenarios",
                self.image.display(),
                chosen.accel.as_str(),
                chosen.why,
                self.batch.scenarios.len()
            );
            let floor = if self.boot_floor {
                let kernel = Batch {
                    kernel: self.image.clone(),
                    cmdline: self.kernel.cmdline.clone(),
                    qemu_args: self.kernel.qemu_args.clone(),
                    scenarios: vec![],
                    cpus: self.batch.cpus,
                    results: self.kernel.results,
                };
                vm::boot_floor(&kernel, &self.agent, chosen.accel)
            } else {
                None
            };
            // Progress while the trials wait for the VM: a bar on a terminal.
            let board = Board::new(
                std::iter::once(self.kernel.name.clone()),
                self.batch.scenarios.len(),
            );
            board.set(0, format!("booting with {} CPU(s)", self.batch.cpus), false);
            let run = vm::run_vm(
                &self.batch,
                &self.agent,
                chosen.accel,
                &[],
                &mut |p| match p {
                    Progress::Booted { release, after } => board.say(
                        0,
                        &format!("{release} started init after {:.1} s", after.as_secs_f64()),
                    ),
                    Progress::Finished { done, total } => board.done(0, done, total),
                    Progress::Event { .. } => {}
                },
            );
            board.end(
                0,
                if run.broken.is_some() {
                    "broken"
                } else {
                    "done"
                }
                .into(),
            );
            board.clear();
            if live::interrupted() {
                live::stand_down();
            }
            (chosen, floor, run)
        })
    }

    pub fn runner(self: &Arc<Self>) -> trials::Runner {
        let me = self.clone();
        Arc::new(move |l: &Loaded, on_event| {
            for e in me.run().2.events_of(&l.name) {
                on_event(&e);
            }
        })
    }

    pub fn release(&self) -> String {
        self.done
            .get()
            .and_then(|d| d.2.release.clone())
            .unwrap_or_default()
    }

    /// The VM's figures, and its console when it failed.
    pub fn summarize(&self) {
        let Some((chosen, floor, run)) = self.done.get() else {
            return;
        };
        let col = column(&self.kernel.name, chosen, *floor, run, vec![]);
        for line in reporting::figures_lines(std::slice::from_ref(&col))
            .into_iter()
            .chain(reporting::left_behind_line(&col))
        {
            eprintln!("orphanage: {line}");
        }
        if let Some(b) = &run.broken {
            eprintln!("orphanage: the VM failed: {b}");
        }
    }
}
