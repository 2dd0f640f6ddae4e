//! `--kernels FILE`: the matrix, every kernel (or the host) a cell, run in
//! parallel up to the number of cores, every result streamed to the reporters.

use super::board::Board;
use super::inputs::*;
use crate::cli::Cli;
use crate::discover::Loaded;
use crate::kernels::{self, Kernel};
use crate::reporting::{CellInfo, Column, Figures, MatrixReport, Reporters, RunEvent, TrialRecord};
use crate::targets::vm::{self, Batch, Chosen, Progress};
use crate::{live, trials};
use anyhow::{bail, Context};
use orphanage_scenario::{Outcome, VmScenario};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `--kernels FILE`: every kernel in parallel (up to the number of cores),
/// then the matrix.
pub fn matrix(
    cli: &Cli,
    file: &Path,
    selected: &[Loaded],
    baseline: &mut crate::orchestrate::BaselineRun,
) -> anyhow::Result<ExitCode> {
    let all = kernels::load(file)?;
    let kernels = kernels::select(file, all, &cli.only_kernel)?;
    let cache = kernels::cache_dir();
    let mut images = Vec::new();
    for k in &kernels {
        if k.source == kernels::Source::Host {
            images.push(None);
            continue;
        }
        let Some(image) = k.image(&cache) else {
            bail!(
                "kernel {} is not fetched yet (run `orphanage kernels fetch --kernels {} {}`)",
                k.name,
                file.display(),
                k.name
            );
        };
        vm::check_kernel_file(&image)?;
        images.push(Some(image));
    }
    if selected.is_empty() {
        bail!("no scenario matches the filters");
    }
    let agent = agent_bytes(cli)?;
    // The host column runs the agent from a file, as `cargo run` does.
    let host_agent = if images.iter().any(Option::is_none) {
        let agent = match &cli.agent {
            Some(p) => crate::agent_binary::AgentBinary::given(p),
            None => crate::agent_binary::AgentBinary::materialize(|dir| {
                live::remove_on_interrupt(dir.to_path_buf())
            })
            .context("cannot write the agent to a temporary directory")?,
        };
        // The host column needs no subreaper: its cleanup rests on pid
        // namespaces, process groups and pidfds.
        let _ = live::become_subreaper();
        Some(agent)
    } else {
        None
    };
    let chosen = match images.iter().flatten().next() {
        Some(first) => {
            check_qemu()?;
            vm::choose_accel(cli.accel, first)
        }
        None => Chosen {
            accel: vm::Accel::Tcg,
            why: "no VM".into(),
        },
    };
    // The reports' files are opened now: a bad path is bad input, found
    // before any VM starts.
    let cells = Arc::new(Mutex::new(
        kernels
            .iter()
            .zip(&images)
            .map(|(k, image)| CellInfo {
                name: k.name.clone(),
                kind: if image.is_some() { "vm" } else { "host" }.into(),
                kernel: String::new(),
                version: None,
                init: None,
                platform: None,
                summary: Default::default(),
            })
            .collect(),
    ));
    let shared_columns = Arc::new(Mutex::new(
        kernels.iter().map(|k| Column::waiting(&k.name)).collect(),
    ));
    let mut reporters =
        crate::orchestrate::reporters_for(cli, &[], cells.clone(), false, baseline)?;
    reporters.add(Box::new(MatrixReport::new(
        selected.iter().map(|l| l.name.clone()).collect(),
        shared_columns.clone(),
        cells.clone(),
        cli.matrix_report.clone(),
    )?));
    let reporters = Arc::new(reporters);
    let scenarios = vm_scenarios(selected);
    let parallel = host_cores().min(kernels.len());
    eprintln!(
        "orphanage: {} scenarios in {} kernels, {parallel} at a time, under {} ({})",
        scenarios.len(),
        kernels.len(),
        chosen.accel.as_str(),
        chosen.why,
    );
    let next = Mutex::new(0usize);
    let bad = std::sync::atomic::AtomicBool::new(false);
    reporters.emit(&RunEvent::RunStarted {
        selected: kernels.len() * selected.len(),
    });
    let board = Board::new(kernels.iter().map(|k| k.name.clone()), selected.len());
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(k) = kernels.get(i) else { return };
                let vms = images.iter().flatten().count();
                let position = images[..i].iter().flatten().count();
                let cpus =
                    cli.vm_cpus
                        .unwrap_or(vm::cpus_for_cell(host_cores(), parallel, vms, position));
                let col = match (&images[i], &host_agent) {
                    (Some(image), _) => run_cell(
                        k,
                        image,
                        &agent,
                        (&chosen, cpus),
                        (&scenarios, selected),
                        cli.boot_floor,
                        (&board, i, &reporters),
                    ),
                    (None, Some(host)) => {
                        run_host_cell(k, host.path(), selected, (&board, i, &reporters))
                    }
                    (None, None) => unreachable!("the host agent exists when a column needs it"),
                };
                if live::interrupted() {
                    live::stand_down();
                }
                if col
                    .records
                    .iter()
                    .any(|r| matches!(r.outcome, Outcome::Fail | Outcome::Broken))
                {
                    bad.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                cells.lock().unwrap_or_else(|p| p.into_inner())[i].kernel =
                    col.release.clone().unwrap_or_default();
                // The reporter has the records from the events already.
                shared_columns.lock().unwrap_or_else(|p| p.into_inner())[i] = Column {
                    records: vec![],
                    ..col
                };
            });
        }
    });
    reporters.finish()?;
    if reporters.finished_trials() == 0 {
        eprintln!("orphanage: no scenario ran");
        return Ok(ExitCode::from(2));
    }
    Ok(if bad.into_inner() {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    })
}

/// Tells the reporters about one scenario of a cell: its trial, its events
/// and its record, which it returns.
fn report_trial(
    reporters: &Reporters,
    kernel: &str,
    l: &Loaded,
    events: &[orphanage_scenario::Event],
    duration: Duration,
) -> TrialRecord {
    // Prefixed like a runtime's trials, so names are unique across cells.
    let trial = trials::trial_info(&format!("{kernel}:"), kernel, l);
    reporters.emit(&RunEvent::TrialStarted { trial: &trial });
    for event in events {
        reporters.emit(&RunEvent::Scenario {
            trial: &trial,
            event,
        });
    }
    let record = TrialRecord::from_events(&trial, events, duration);
    reporters.emit(&RunEvent::TrialFinished {
        trial: &trial,
        record: &record,
    });
    record
}

fn run_cell(
    k: &Kernel,
    image: &Path,
    agent: &[u8],
    (chosen, cpus): (&Chosen, u32),
    (scenarios, selected): (&[VmScenario], &[Loaded]),
    with_floor: bool,
    (board, i, reporters): (&Board, usize, &Reporters),
) -> Column {
    let kernel = Batch {
        kernel: image.to_path_buf(),
        cmdline: k.cmdline.clone(),
        qemu_args: k.qemu_args.clone(),
        scenarios: vec![],
        cpus,
        results: k.results,
    };
    let floor = if with_floor {
        board.set(i, "measuring the boot floor".into(), true);
        vm::boot_floor(&kernel, agent, chosen.accel)
    } else {
        None
    };
    board.set(
        i,
        format!(
            "booting with {cpus} CPU{}",
            if cpus == 1 { "" } else { "s" }
        ),
        true,
    );
    let batch = Batch {
        scenarios: scenarios.to_vec(),
        ..kernel
    };
    let run = vm::run_vm(&batch, agent, chosen.accel, &[], &mut |p| match p {
        Progress::Booted { release, after } => board.say(
            i,
            &format!("{release} started init after {:.1} s", after.as_secs_f64()),
        ),
        Progress::Finished { done, total } => board.done(i, done, total),
        Progress::Event { .. } => {}
    });
    let records: Vec<TrialRecord> = selected
        .iter()
        .map(|l| {
            let events = run.events_of(&l.name);
            let steps_ms = events.iter().find_map(|e| match e {
                orphanage_scenario::Event::Finished { steps_ms, .. } => Some(*steps_ms),
                _ => None,
            });
            report_trial(
                reporters,
                &k.name,
                l,
                &events,
                Duration::from_secs_f64(steps_ms.unwrap_or(0.0) / 1000.0),
            )
        })
        .collect();
    match &run.broken {
        Some(b) => {
            board.say(
                i,
                &format!("the VM failed after {:.1} s: {b}", run.wall.as_secs_f64()),
            );
            board.end(i, "broken".into());
        }
        None => {
            board.say(i, &format!("done in {:.1} s", run.wall.as_secs_f64()));
            board.end(i, "done".into());
        }
    }
    column(&k.name, chosen, floor, &run, records)
}

/// The host column: the same scenarios on the running kernel, one at a time.
fn run_host_cell(
    k: &Kernel,
    agent: &Path,
    selected: &[Loaded],
    (board, i, reporters): (&Board, usize, &Reporters),
) -> Column {
    board.set(i, "running on the host".into(), true);
    let started = std::time::Instant::now();
    let records = selected
        .iter()
        .enumerate()
        .map(|(n, l)| {
            let begun = std::time::Instant::now();
            let mut events = Vec::new();
            crate::targets::Target::Host(Default::default())
                .run(agent, &l.scenario, &mut |e| events.push(e.clone()));
            let record = report_trial(reporters, &k.name, l, &events, begun.elapsed());
            board.done(i, n + 1, selected.len());
            record
        })
        .collect();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .ok();
    board.say(
        i,
        &format!("done in {:.1} s", started.elapsed().as_secs_f64()),
    );
    board.end(i, "done".into());
    Column {
        name: k.name.clone(),
        release,
        accel: "no VM".into(),
        records,
        broken_frames: 0,
        broken: None,
        left_behind: vec![],
        figures: Figures {
            wall: started.elapsed(),
            ..Figures::default()
        },
    }
}
