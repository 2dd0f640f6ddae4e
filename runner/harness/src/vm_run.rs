//! The CLI edge of the VM target: `--kernel` (one kernel, reported like the
//! host suite), `--kernels` (the matrix) and `orphanage kernels fetch|path`.
//! Everything a run needs is checked here first, so bad input exits 2
//! before any VM starts.

use crate::cli::{Cli, KernelsCommand};
use crate::discover::Loaded;
use crate::kernels::{self, FetchError, Kernel};
use crate::reporting::{
    self, CellInfo, Column, Figures, MatrixReport, Reporters, RunEvent, TrialRecord,
};
use crate::targets::vm::{self, Batch, Chosen, Progress, VmRun};
use crate::{live, trials};
use anyhow::{bail, Context};
use orphanage_scenario::{Outcome, VmScenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
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

fn agent_bytes(cli: &Cli) -> anyhow::Result<Arc<Vec<u8>>> {
    Ok(Arc::new(match &cli.agent {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("{}: cannot read the agent", p.display()))?
        }
        None => crate::agent_binary::embedded().to_vec(),
    }))
}

fn vm_scenarios(loaded: &[Loaded]) -> Vec<VmScenario> {
    loaded
        .iter()
        .map(|l| VmScenario {
            name: l.name.clone(),
            scenario: l.scenario.clone(),
        })
        .collect()
}

fn selected(cli: &Cli, loaded: &[Loaded]) -> Vec<Loaded> {
    loaded
        .iter()
        .filter(|l| {
            !cli.test
                .is_filtered_out(&libtest_mimic::Trial::test(&l.name, || Ok(())))
        })
        .cloned()
        .collect()
}

/// Boots the kernel with an init that only powers off: the floor any run pays.
/// The same kernel, accelerator and CPUs as the run it is the floor of.
fn boot_floor(
    kernel: &Kernel,
    image: &Path,
    agent: &[u8],
    chosen: &Chosen,
    cpus: u32,
) -> Option<Duration> {
    let batch = Batch {
        kernel: image.to_path_buf(),
        cmdline: kernel.cmdline.clone(),
        qemu_args: kernel.qemu_args.clone(),
        scenarios: vec![],
        cpus,
        results: kernel.results,
    };
    let run = vm::run_vm(
        &batch,
        agent,
        chosen.accel,
        &["poweroff".to_string()],
        &mut |_| {},
    );
    run.broken.is_none().then_some(run.wall)
}

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
                boot_floor(
                    &self.kernel,
                    &self.image,
                    &self.agent,
                    &chosen,
                    self.batch.cpus,
                )
            } else {
                None
            };
            let run = vm::run_vm(&self.batch, &self.agent, chosen.accel, &[], &mut |p| {
                if let Progress::Booted { release, after } = p {
                    eprintln!(
                        "orphanage: {release} started init after {:.1} s",
                        after.as_secs_f64()
                    );
                }
            });
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

fn column(
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

/// `--kernels FILE`: every kernel in parallel (up to the number of cores),
/// then the matrix.
pub fn matrix(cli: &Cli, file: &Path, selected: &[Loaded]) -> anyhow::Result<ExitCode> {
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
                summary: Default::default(),
            })
            .collect(),
    ));
    let shared_columns = Arc::new(Mutex::new(
        kernels.iter().map(|k| Column::waiting(&k.name)).collect(),
    ));
    let mut reporters = crate::reporters_for(cli, &[], cells.clone(), false)?;
    reporters.add(Box::new(MatrixReport::new(
        selected.iter().map(|l| l.name.clone()).collect(),
        shared_columns.clone(),
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

/// The matrix's progress while kernels boot. On a terminal, a bar per cell
/// (indicatif): its kernel, the time since it started, scenarios done out of
/// the total, and its state; lines that matter are printed above the bars.
/// Otherwise no bars, one line per step.
struct Board {
    tty: bool,
    multi: indicatif::MultiProgress,
    bars: Vec<(String, indicatif::ProgressBar)>,
}

impl Board {
    fn new(names: impl Iterator<Item = String>, scenarios: usize) -> Self {
        use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template(
            "{prefix:>12} {elapsed:>4} [{bar:24}] {pos:>3}/{len:3} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let bars = names
            .map(|name| {
                let bar = multi.add(ProgressBar::new(scenarios as u64));
                bar.set_style(style.clone());
                bar.set_prefix(name.clone());
                bar.set_message("waiting");
                (name, bar)
            })
            .collect();
        Board { tty, multi, bars }
    }

    /// A cell's state changed; `every_time` says whether a log line is worth
    /// it too where there are no bars.
    fn set(&self, i: usize, state: String, every_time: bool) {
        let (name, bar) = &self.bars[i];
        if !self.tty && every_time {
            eprintln!("[{name}] {state}");
        }
        bar.set_message(state);
    }

    /// Scenarios done in a cell.
    fn done(&self, i: usize, done: usize, total: usize) {
        let bar = &self.bars[i].1;
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message("running");
        if !self.tty && (done == total || done % 20 == 0) {
            eprintln!("[{}] {done}/{total}", self.bars[i].0);
        }
    }

    /// A line that stays: printed above the bars.
    fn say(&self, i: usize, line: &str) {
        let line = format!("[{}] {line}", self.bars[i].0);
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// A cell is over: its bar stays, with how it ended.
    fn end(&self, i: usize, state: String) {
        self.bars[i].1.finish_with_message(state);
    }
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
    let floor = if with_floor {
        board.set(i, "measuring the boot floor".into(), true);
        boot_floor(k, image, agent, chosen, cpus)
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
        kernel: image.to_path_buf(),
        cmdline: k.cmdline.clone(),
        qemu_args: k.qemu_args.clone(),
        scenarios: scenarios.to_vec(),
        cpus,
        results: k.results,
    };
    let run = vm::run_vm(&batch, agent, chosen.accel, &[], &mut |p| match p {
        Progress::Booted { release, after } => board.say(
            i,
            &format!("{release} started init after {:.1} s", after.as_secs_f64()),
        ),
        Progress::Finished { done, total } => board.done(i, done, total),
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

/// `orphanage kernels fetch|path`.
pub fn kernels_command(command: KernelsCommand) -> anyhow::Result<ExitCode> {
    let (file, names, fetch) = match command {
        KernelsCommand::Fetch { kernels, names } => (kernels, names, true),
        KernelsCommand::Path { kernels, names } => (kernels, names, false),
    };
    let file = file.unwrap_or_else(crate::default_kernels_file);
    let all = kernels::load(&file)?;
    let kernels = kernels::select(&file, all, &names)?;
    let cache = kernels::cache_dir();
    if !fetch {
        let mut missing = false;
        for k in &kernels {
            match k.image(&cache) {
                Some(p) => println!("{}\t{}", k.name, p.display()),
                None if k.source == kernels::Source::Host => {
                    println!("{}\t(the running kernel)", k.name)
                }
                None => {
                    eprintln!("orphanage: kernel {} is not fetched yet", k.name);
                    missing = true;
                }
            }
        }
        return Ok(if missing {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    match kernels::fetch(&kernels, &cache, |m| eprintln!("orphanage: {m}")) {
        Ok(images) => {
            for (name, image) in images {
                println!("{name}\t{}", image.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(FetchError::BadInput(m)) => bail!("{m}"),
        Err(FetchError::Failed(m)) => {
            eprintln!("orphanage: {m}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn host_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
