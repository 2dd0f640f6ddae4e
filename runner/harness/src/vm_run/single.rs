//! One kernel as the target: `--kernel` (the suite in one boot, reported
//! like the host suite) and `explore --kernel` (a boot per batch of trees).

use super::board::Board;
use super::inputs::*;
use crate::cli::Cli;
use crate::discover::Loaded;
use crate::reporting::{self, CellInfo};
use crate::targets::vm::{self, BootProgress, Progress, SharedBoot};
use crate::targets::{Target, VmTarget};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// What the board and the figures call a kernel: its image's file name.
fn kernel_name(image: &Path) -> String {
    image
        .file_name()
        .map_or("kernel".into(), |n| n.to_string_lossy().into_owned())
}

/// `explore --kernel`: a target that boots the kernel once per batch of trees.
pub fn explore_target(cli: &Cli, image: &Path) -> anyhow::Result<Target> {
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
    Ok(Target::Vm(VmTarget {
        label: kernel_name(image),
        kernel: image.to_path_buf(),
        agent: agent_bytes(cli)?,
        accel: cli.accel,
        cpus: cli.vm_cpus.unwrap_or(vm::cpus_each(host_cores(), 1)),
        results: cli.vm_results.unwrap_or_default(),
        force_subreaper_root: cli.no_pid_namespace,
        shared: None,
    }))
}

/// `--kernel`: a target that boots the kernel once, when the first trial
/// needs a result, for every `selected` scenario; its report cell is `vm`.
pub fn suite_target(cli: &Cli, image: &Path, selected: &[Loaded]) -> anyhow::Result<Target> {
    // The user's input first: a file that is not a kernel is bad input
    // whether or not QEMU is installed.
    vm::check_kernel_file(image)?;
    check_qemu()?;
    let watch = BoardWatch {
        image: image.to_path_buf(),
        board: OnceLock::new(),
    };
    let shared = SharedBoot::new(
        vm_scenarios(selected),
        cli.boot_floor,
        Box::new(move |p| watch.show(p)),
    );
    Ok(Target::Vm(VmTarget {
        label: "vm".into(),
        kernel: image.to_path_buf(),
        agent: agent_bytes(cli)?,
        accel: cli.accel,
        cpus: cli.vm_cpus.unwrap_or(vm::cpus_each(host_cores(), 1)),
        results: cli.vm_results.unwrap_or_default(),
        force_subreaper_root: cli.no_pid_namespace,
        shared: Some(Arc::new(shared)),
    }))
}

/// The shared boot's progress on stderr: a line once the accelerator is
/// chosen, then a bar while the trials wait for the VM (a line per step
/// without a terminal), gone before the terminal reporter prints their results.
struct BoardWatch {
    image: std::path::PathBuf,
    /// Made when the boot that runs the scenarios begins, after any floor.
    board: OnceLock<Board>,
}

impl BoardWatch {
    fn show(&self, progress: BootProgress<'_>) {
        match progress {
            BootProgress::Chosen { chosen, scenarios } => eprintln!(
                "orphanage: booting {} in QEMU ({}: {}) to run {scenarios} scenarios",
                self.image.display(),
                chosen.accel.as_str(),
                chosen.why,
            ),
            BootProgress::Booting { cpus, scenarios } => {
                let board = self.board.get_or_init(|| {
                    Board::new(std::iter::once(kernel_name(&self.image)), scenarios)
                });
                board.set(0, format!("booting with {cpus} CPU(s)"), false);
            }
            BootProgress::Machine(p) => match (p, self.board.get()) {
                (Progress::Booted { release, after }, Some(board)) => board.say(
                    0,
                    &format!("{release} started init after {:.1} s", after.as_secs_f64()),
                ),
                (Progress::Finished { done, total }, Some(board)) => board.done(0, done, total),
                _ => {}
            },
            BootProgress::Ended(run) => {
                if let Some(board) = self.board.get() {
                    let state = if run.broken.is_some() {
                        "broken"
                    } else {
                        "done"
                    };
                    board.end(0, state.into());
                    board.clear();
                }
            }
        }
    }
}

/// Once the trials are over, each VM that booted for them: its figures and,
/// when it failed, its console on stderr; its kernel's release in its cell.
pub fn summarize(targets: &[Target], cells: &mut [CellInfo]) {
    for (target, cell) in targets.iter().zip(cells) {
        let Target::Vm(v) = target else { continue };
        let Some(booted) = v.booted() else { continue };
        let col = column(
            &kernel_name(&v.kernel),
            &booted.chosen,
            booted.floor,
            &booted.run,
            vec![],
        );
        for line in reporting::figures_lines(std::slice::from_ref(&col))
            .into_iter()
            .chain(reporting::left_behind_line(&col))
        {
            eprintln!("orphanage: {line}");
        }
        if let Some(b) = &booted.run.broken {
            eprintln!("orphanage: the VM failed: {b}");
        }
        cell.kernel = booted.run.release.clone().unwrap_or_default();
    }
}
