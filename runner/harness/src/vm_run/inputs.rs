//! What every VM run needs, checked or made before any VM starts: QEMU on
//! PATH, the agent's bytes, the scenarios as the VM carries them, and a
//! run's column for the matrix reporter.

use crate::cli::Cli;
use crate::discover::Loaded;
use crate::reporting::{Column, Figures, TrialRecord};
use crate::targets::vm::{self, Chosen, VmRun};
use anyhow::{bail, Context};
use orphanage_scenario::VmScenario;
use std::sync::Arc;
use std::time::Duration;

/// QEMU must be on PATH; its absence is bad input, found before anything runs.
pub fn check_qemu() -> anyhow::Result<()> {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(d.join(vm::QEMU))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    if !found {
        bail!(
            "{}: not found on PATH (Debian: apt-get install qemu-system-x86)",
            vm::QEMU
        );
    }
    Ok(())
}

pub fn agent_bytes(cli: &Cli) -> anyhow::Result<Arc<Vec<u8>>> {
    Ok(Arc::new(match &cli.agent {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("{}: cannot read the agent", p.display()))?
        }
        None => crate::agent_binary::embedded().to_vec(),
    }))
}

pub fn vm_scenarios(loaded: &[Loaded]) -> Vec<VmScenario> {
    loaded
        .iter()
        .map(|l| VmScenario {
            name: l.name.clone(),
            scenario: l.scenario.clone(),
        })
        .collect()
}

pub fn column(
    name: &str,
    chosen: &Chosen,
    floor: Option<Duration>,
    run: &VmRun,
    records: Vec<TrialRecord>,
) -> Column {
    Column {
        name: name.to_string(),
        release: run.release.clone(),
        accel: format!(
            "{}, {} CPU{}",
            chosen.accel.as_str(),
            run.cpus,
            if run.cpus == 1 { "" } else { "s" }
        ),
        records,
        broken_frames: run.broken_frames,
        broken: run.broken.clone(),
        left_behind: run.left_behind.clone(),
        figures: Figures {
            floor,
            booted: run.booted_after,
            first_result: run.first_result_after,
            last_result: run.last_result_after,
            wall: run.wall,
            qemu_cpu: run.qemu_cpu,
        },
    }
}

pub fn host_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
