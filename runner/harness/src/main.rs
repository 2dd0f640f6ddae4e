//! orphanage: does this kernel manage processes the way Linux promises?
//! The CLI edge: parse flags, load and validate every scenario, hand them to
//! libtest-mimic, write the report. Bad input exits 2 before anything runs.

mod agent_binary;
mod cli;
mod discover;
mod explore;
mod kernels;
mod live;
mod matrix;
mod report;
mod targets;
mod trials;
mod vm_run;

use agent_binary::AgentBinary;
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
    // `orphanage kernels ...` has its own flags; the suite's filters stay positional.
    let result = if std::env::args_os().nth(1).is_some_and(|a| a == "kernels") {
        vm_run::kernels_command(cli::KernelsCli::parse_from(std::env::args_os().skip(1)))
    } else {
        run()
    };
    if live::interrupted() {
        // The interrupt thread reports, cleans up and exits; whatever failed
        // here failed because of it.
        live::stand_down();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orphanage: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// ./fixtures/kernels.yaml when run from the repository, else the source tree's.
fn default_kernels_file() -> PathBuf {
    let here = PathBuf::from("fixtures/kernels.yaml");
    if here.is_file() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/kernels.yaml")
}

/// ./suites when run from the repository (or anywhere with one), else the source tree's.
fn default_suites() -> PathBuf {
    let here = PathBuf::from("suites");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../suites")
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = cli::Cli::parse();
    if let Some(why) = no_pid_namespace_conflict(&cli) {
        eprintln!("orphanage: {why}");
        return Ok(ExitCode::from(2));
    }
    if let Some(cli::Command::Explore(args)) = &cli.command {
        return explore_command(&cli, args);
    }
    let suites = cli.suites.clone().unwrap_or_else(default_suites);
    let loaded = match discover::load_all(&suites) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    if cli.check {
        println!(
            "{} scenarios in {} are valid",
            loaded.len(),
            suites.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // From here on things are created: guard them against Ctrl-C first.
    live::install_interrupt_handler().context("cannot set up the interrupt handler")?;
    let Chosen {
        targets,
        versions,
        work_dir,
    } = choose_targets(&cli)?;
    // A filter that selects nothing is a typo, not a green run.
    let filtered = cli.test.filter.is_some() || !cli.test.skip.is_empty();
    let selects_nothing = targets.iter().all(|t| {
        loaded.iter().all(|l| {
            cli.test.is_filtered_out(&libtest_mimic::Trial::test(
                format!("{}{}", t.prefix(), l.name),
                || Ok(()),
            ))
        })
    });
    if filtered && !cli.test.list && selects_nothing {
        anyhow::bail!("no scenario in {} matches the filters", suites.display());
    }
    if (cli.kernel.is_some() || cli.kernels.is_some())
        && targets
            .iter()
            .any(|t| matches!(t, targets::Target::Runtime(_)))
    {
        anyhow::bail!("--runtime and --kernel/--kernels pick different targets: give one");
    }
    if cli.vm_cpus.is_some() && cli.kernel.is_none() && cli.kernels.is_none() {
        anyhow::bail!("--vm-cpus sizes a VM: it needs --kernel or --kernels");
    }
    // Scenarios that drive a container runtime have nothing to drive in a VM.
    let in_vm: Vec<discover::Loaded> = loaded
        .iter()
        .filter(|l| !l.scenario.needs_runtime())
        .cloned()
        .collect();
    if let Some(file) = &cli.kernels {
        let selected: Vec<discover::Loaded> = in_vm
            .iter()
            .filter(|l| {
                !cli.test
                    .is_filtered_out(&libtest_mimic::Trial::test(&l.name, || Ok(())))
            })
            .cloned()
            .collect();
        if cli.test.list {
            for l in &selected {
                println!("{}: test", l.name);
            }
            return Ok(ExitCode::SUCCESS);
        }
        return vm_run::matrix(&cli, file, &selected);
    }
    let vm = match &cli.kernel {
        Some(kernel) => Some(vm_run::prepare_single(&cli, kernel, &in_vm)?),
        None => None,
    };
    // Open the report now: a bad path is bad input, found before anything runs.
    let report_file = match &cli.report {
        Some(p) => Some(
            std::fs::File::create(p)
                .with_context(|| format!("cannot write report {}", p.display()))?,
        ),
        None => None,
    };
    let records: trials::Records = Arc::new(Mutex::new(Vec::new()));
    if let Some(vm) = vm {
        let in_vm_runner = vm.runner();
        let runner: trials::Runner = Arc::new(move |l: &discover::Loaded| {
            if let Some(why) = targets::Target::Host(Default::default()).cannot_run(&l.scenario) {
                return vec![orphanage_scenario::Event::Finished {
                    verdict: orphanage_scenario::Verdict::unsupported(why),
                    steps_ms: 0.0,
                }];
            }
            in_vm_runner(l)
        });
        let trials = trials::build(&loaded, &[(String::new(), runner)], records.clone());
        let conclusion = libtest_mimic::run(&cli.test, trials);
        if live::interrupted() {
            live::stand_down();
        }
        vm.summarize();
        if let Some(file) = report_file {
            let results = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
            let report = report::Report::with_kernel("vm", &vm.release(), results);
            serde_json::to_writer_pretty(file, &report).context("cannot write the report")?;
        }
        return Ok(conclusion.exit_code());
    }
    let mut agent = agent_binary(&cli)?;
    if let Some(why) = subreaper_missing_for(&targets) {
        eprintln!("orphanage: {why}");
        agent.remove();
        return Ok(ExitCode::from(3));
    }
    if !cli.test.list {
        if let Some(why) = smoke_test_all(&targets, agent.path()) {
            eprintln!("orphanage: {why}");
            agent.remove();
            return Ok(ExitCode::from(3));
        }
    }

    let runners: Vec<(String, trials::Runner)> = targets
        .iter()
        .map(|t| {
            let prefix = t.prefix();
            let (t, agent) = (t.clone(), agent.path().to_path_buf());
            let runner: trials::Runner = Arc::new(move |l: &discover::Loaded| {
                let mut events = Vec::new();
                match t.cannot_run(&l.scenario) {
                    Some(why) => events.push(orphanage_scenario::Event::Finished {
                        verdict: orphanage_scenario::Verdict::unsupported(why),
                        steps_ms: 0.0,
                    }),
                    None => t.run(&agent, &l.scenario, &mut |e| events.push(e.clone())),
                }
                events
            });
            (prefix, runner)
        })
        .collect();
    let trials = trials::build(&loaded, &runners, records.clone());

    let conclusion = libtest_mimic::run(&cli.test, trials);
    if live::interrupted() {
        live::stand_down();
    }
    let results = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    if targets.len() > 1 && !results.is_empty() {
        let labels: Vec<&str> = targets.iter().map(|t| t.label()).collect();
        println!("{}", report::side_by_side(&results, &labels));
    }
    if let Some(file) = report_file {
        let target = if versions.is_empty() {
            "host".to_string()
        } else {
            targets
                .iter()
                .zip(&versions)
                .map(|(t, v)| format!("{} ({v})", t.label()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let report = report::Report::new(&target, results);
        serde_json::to_writer_pretty(file, &report).context("cannot write the report")?;
    }
    agent.remove();
    drop(work_dir);
    // As a subreaper we may hold orphans that died in the last moments (a
    // container's processes are ours once its init is gone): reap them all,
    // or they would outlive us as zombies.
    live::sweep_children(std::time::Duration::from_secs(5));
    Ok(conclusion.exit_code())
}

/// The agent for this run (`--agent`, or the embedded one written to a private directory).
fn agent_binary(cli: &cli::Cli) -> anyhow::Result<AgentBinary> {
    Ok(match &cli.agent {
        Some(p) if p.is_file() => AgentBinary::given(p),
        Some(p) => anyhow::bail!("{}: no such agent binary", p.display()),
        None => AgentBinary::materialize(|dir| live::remove_on_interrupt(dir.to_path_buf()))
            .context("cannot write the agent to a temporary directory")?,
    })
}

/// Makes the harness the subreaper of everything it starts, where the kernel
/// has subreapers. Only a runtime target cannot do without: it adopts each
/// container's init once the runtime's `create` exits. On the host, cleanup
/// rests on pid namespaces, process groups and pidfds, and scenarios that
/// need a subreaper say so themselves. Some(line) when a target cannot run.
fn subreaper_missing_for(targets: &[targets::Target]) -> Option<String> {
    let refused = live::become_subreaper().err()?;
    targets.iter().find_map(|t| match t {
        targets::Target::Runtime(r) => Some(format!(
            "{} needs the harness to be a child subreaper, to adopt each container's init: prctl(PR_SET_CHILD_SUBREAPER): {}",
            r.label,
            orphanage_scenario::ErrnoName(refused)
        )),
        targets::Target::Host(_) | targets::Target::Vm(_) => None,
    })
}

/// `--no-pid-namespace` runs on this kernel (or a VM's): containers bring
/// their own pid namespaces, and a matrix gives each kernel its own knobs.
fn no_pid_namespace_conflict(cli: &cli::Cli) -> Option<&'static str> {
    if !cli.no_pid_namespace {
        return None;
    }
    let runtime = !cli.runtimes.is_empty() || std::env::var("RUNTIME").is_ok_and(|r| !r.is_empty());
    if runtime {
        return Some("--no-pid-namespace runs scenarios under a subreaper root on this kernel; containers bring their own pid namespaces: drop --runtime (or $RUNTIME)");
    }
    if cli.kernels.is_some() {
        return Some("--no-pid-namespace with --kernels: give it to each kernel of the matrix file instead, as `cmdline: -- subreaper-root`");
    }
    if cli.kernel.is_some() && cli.command.is_some() {
        return Some("--no-pid-namespace with `explore --kernel`: not yet; `explore` runs under subreaper roots on the host, and `--kernel K --no-pid-namespace` runs the suite so");
    }
    None
}

/// The targets the command line asks for, checked before anything runs.
struct Chosen {
    targets: Vec<targets::Target>,
    /// Each runtime's `--version`, for the report.
    versions: Vec<String>,
    /// Bundles and runtime state; removed when dropped.
    work_dir: Option<tempfile::TempDir>,
}

/// `--runtime` (or $RUNTIME) and `--init`, each checked: the host when none is given.
fn choose_targets(cli: &cli::Cli) -> anyhow::Result<Chosen> {
    let runtime_args: Vec<String> = if cli.runtimes.is_empty() {
        // runtime-tools' and runc's tests name the runtime in $RUNTIME.
        std::env::var("RUNTIME")
            .ok()
            .filter(|r| !r.is_empty())
            .into_iter()
            .collect()
    } else {
        cli.runtimes.clone()
    };
    if cli.init.is_some() && runtime_args.is_empty() {
        anyhow::bail!("--init puts an init program in a container: it needs --runtime");
    }
    let init = cli.init.as_deref().map(targets::resolve_init).transpose()?;
    let runtimes: Vec<(String, std::path::PathBuf)> = runtime_args
        .iter()
        .map(|a| Ok((a.clone(), targets::resolve_runtime(a)?)))
        .collect::<anyhow::Result<_>>()?;
    // Bundles and the runtimes' state live here, removed at the end or on Ctrl-C.
    let work_dir = if runtimes.is_empty() {
        None
    } else {
        let dir = tempfile::Builder::new()
            .prefix("orphanage-runtime-")
            .tempdir()
            .context("cannot create a temporary directory for bundles")?;
        live::remove_on_interrupt(dir.path().to_path_buf());
        Some(dir)
    };
    let mut targets = Vec::new();
    let mut versions = Vec::new();
    for (i, (arg, program)) in runtimes.iter().enumerate() {
        let dir = work_dir.as_ref().expect("made above").path();
        let root = cli
            .runtime_root
            .as_deref()
            .unwrap_or(dir)
            .join(format!("state-{i}"));
        std::fs::create_dir_all(&root).context("cannot create the runtime state directory")?;
        let cli_ = targets::RuntimeCli {
            program: program.clone(),
            root,
        };
        versions.push(targets::check_runtime(&cli_, arg)?);
        let mut label = program
            .file_name()
            .map_or("runtime".into(), |n| n.to_string_lossy().into_owned());
        if runtimes[..i]
            .iter()
            .any(|(_, p)| p.file_name() == program.file_name())
        {
            label = format!("{label}{}", i + 1);
        }
        if let Some(init) = &init {
            label = format!("{label}+{}", init.name());
        }
        targets.push(targets::Target::Runtime(targets::RuntimeTarget {
            label,
            cli: cli_,
            work_dir: dir.to_path_buf(),
            init: init.clone(),
        }));
    }
    if targets.is_empty() {
        targets.push(targets::Target::Host(targets::HostTarget {
            force_subreaper_root: cli.no_pid_namespace,
        }));
    }
    Ok(Chosen {
        targets,
        versions,
        work_dir,
    })
}

/// One trivial container per runtime: the first that cannot run here says why, once.
fn smoke_test_all(targets: &[targets::Target], agent: &std::path::Path) -> Option<String> {
    targets.iter().find_map(|t| match t {
        targets::Target::Runtime(r) => targets::smoke_test(r, agent)
            .err()
            .map(|why| format!("{} cannot run a container on this machine: {why}", r.label)),
        targets::Target::Host(_) | targets::Target::Vm(_) => None,
    })
}

/// `orphanage explore`: every flag is checked before anything runs.
fn explore_command(cli: &cli::Cli, args: &explore::ExploreArgs) -> anyhow::Result<ExitCode> {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = match explore::Options::new(args, random, cpus) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("orphanage: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let save_dir = args.save_to.clone().unwrap_or_else(|| {
        cli.suites
            .clone()
            .unwrap_or_else(default_suites)
            .join("regressions")
    });
    if let Err(e) = explore::check_save_dir(&save_dir) {
        eprintln!("orphanage: {e}");
        return Ok(ExitCode::from(2));
    }
    live::install_interrupt_handler().context("cannot set up the interrupt handler")?;
    let Chosen {
        mut targets,
        work_dir,
        ..
    } = choose_targets(cli)?;
    if targets.len() > 1 {
        anyhow::bail!("explore runs on one target: give --runtime once");
    }
    if let Some(kernel) = &cli.kernel {
        if matches!(targets[0], targets::Target::Runtime(_)) {
            anyhow::bail!("--runtime and --kernel pick different targets: give one");
        }
        // One boot per tree: slow under TCG, but any kernel can be explored.
        targets = vec![vm_run::explore_target(cli, kernel)?];
    }
    let mut agent = agent_binary(cli)?;
    if let Some(why) = subreaper_missing_for(&targets) {
        eprintln!("orphanage: {why}");
        agent.remove();
        return Ok(ExitCode::from(3));
    }
    if let Some(why) = smoke_test_all(&targets, agent.path()) {
        eprintln!("orphanage: {why}");
        agent.remove();
        return Ok(ExitCode::from(3));
    }
    let target = targets::Bound {
        target: targets.remove(0),
        agent: agent.path().to_path_buf(),
    };
    let code = explore::explore(&target, &options, &save_dir);
    agent.remove();
    drop(work_dir);
    live::sweep_children(std::time::Duration::from_secs(5));
    Ok(ExitCode::from(code))
}
