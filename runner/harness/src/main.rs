//! orphanage: does this kernel manage processes the way Linux promises?
//! The CLI edge: parse flags, load and validate every scenario, hand them to
//! libtest-mimic, write the report. Bad input exits 2 before anything runs.

mod agent_binary;
mod baseline;
mod cli;
mod discover;
mod expected;
mod explore;
mod filters;
mod install;
mod kernels;
mod live;
mod merge;
mod report_file;
mod reporting;
mod targets;
mod trials;
mod vm_run;

use agent_binary::AgentBinary;
use anyhow::Context;
use clap::Parser;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
    // A closed stdout (`orphanage | head`) ends the run quietly, cleaned up,
    // as other Unix tools end, instead of as a panic that reads like a failure.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_broken_pipe(info) {
            live::output_closed();
        }
        default_hook(info)
    }));
    let result = run();
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

/// Whether a panic is a print to a closed stdout: std's `println!` failing,
/// or libtest-mimic unwrapping a write of its own. Any other broken pipe (to
/// an agent, say) is a real failure and must show.
fn is_broken_pipe(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    let in_libtest = info
        .location()
        .is_some_and(|l| l.file().contains("libtest-mimic"));
    (text.starts_with("failed printing to stdout") && text.contains("Broken pipe"))
        || (in_libtest && text.contains("kind: BrokenPipe"))
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
    let (args, ktap) = cli::take_format_ktap(std::env::args_os().collect());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => anyhow::bail!(cli::one_line_error(&e.render().to_string())),
        Err(e) => {
            // --help and --version.
            e.print()?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    if let Some(cli::Command::Kernels { command }) = cli.command {
        return vm_run::kernels_command(command);
    }
    match &cli.command {
        Some(cli::Command::Completions { shell }) => {
            print!("{}", install::completion(*shell));
            return Ok(ExitCode::SUCCESS);
        }
        Some(cli::Command::Man) => {
            print!("{}", install::man_page());
            return Ok(ExitCode::SUCCESS);
        }
        Some(cli::Command::Install { prefix }) => {
            for path in install::install(prefix)? {
                println!("installed {}", path.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(cli::Command::Explore(_) | cli::Command::Kernels { .. } | cli::Command::Merge(_))
        | None => {}
    }
    if let Some(cli::Command::Merge(args)) = &cli.command {
        if cli.report.is_some()
            || cli.junit.is_some()
            || cli.baseline.is_some()
            || cli.expected.is_some()
        {
            anyhow::bail!("merge takes its own --junit, --baseline and --expected, after `merge`; it writes no JSON report");
        }
        return merge::merge(
            args,
            Some(&cli.suites.clone().unwrap_or_else(default_suites)),
        );
    }
    check_flags(&cli)?;
    if ktap && (cli.command.is_some() || cli.kernels.is_some() || cli.check || cli.test.list) {
        anyhow::bail!("--format ktap reports scenario runs: it cannot be used with explore, --kernels, --check or --list");
    }
    if let Some(why) = no_pid_namespace_conflict(&cli) {
        anyhow::bail!(why);
    }
    if let Some(cli::Command::Explore(args)) = &cli.command {
        return explore_command(&cli, args);
    }
    let filters = filters::Filters::new(&cli.test, &cli.more_filters);
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
    // The expected file is input too: --check validates it with the rest.
    let expected = match &cli.expected {
        Some(path) => match load_expected(path, &loaded) {
            Ok(d) => Some((path.clone(), d)),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    if cli.check {
        // Every file was parsed and validated; a filter narrows what is
        // counted, and one that matches nothing is a typo as in a run.
        let selected = loaded.iter().filter(|l| filters.selects(&l.name)).count();
        if selected == 0 {
            anyhow::bail!("no scenario in {} matches the filters", suites.display());
        }
        println!(
            "{selected} scenarios in {} are valid{}",
            suites.display(),
            if selected < loaded.len() {
                format!(
                    " ({} filtered out; every file was checked)",
                    loaded.len() - selected
                )
            } else {
                String::new()
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut baseline = BaselineRun {
        file: match &cli.baseline {
            Some(path) => Some((path.clone(), load_baseline(path, &loaded)?)),
            None => None,
        },
        regressed: reporting::Regressed::default(),
    };
    // From here on things are created: guard them against Ctrl-C first.
    live::install_interrupt_handler().context("cannot set up the interrupt handler")?;
    let Chosen {
        targets,
        versions,
        work_dir,
    } = choose_targets(&cli)?;
    // A filter that selects nothing is a typo, not a green run.
    let selects_nothing = targets.iter().all(|t| {
        loaded
            .iter()
            .all(|l| !filters.selects(&format!("{}{}", t.prefix(), l.name)))
    });
    if filters.narrows() && !cli.test.list && selects_nothing {
        anyhow::bail!("no scenario in {} matches the filters", suites.display());
    }
    if (cli.kernel.is_some() || cli.kernels.is_some())
        && targets
            .iter()
            .any(|t| matches!(t, targets::Target::Runtime(_)))
    {
        anyhow::bail!("--runtime and --kernel/--kernels pick different targets: give one");
    }
    if cli.expected.is_some() && (cli.kernel.is_some() || cli.kernels.is_some()) {
        anyhow::bail!("--expected judges a host or runtime run, not --kernel or --kernels");
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
            .filter(|l| filters.selects(&l.name))
            .cloned()
            .collect();
        if cli.test.list {
            for l in &selected {
                println!("{}: test", l.name);
            }
            return Ok(ExitCode::SUCCESS);
        }
        let code = vm_run::matrix(&cli, file, &selected, &mut baseline)?;
        return Ok(with_regressions(&cli, code, &baseline.regressed));
    }
    let vm = match &cli.kernel {
        Some(kernel) => Some(vm_run::prepare_single(&cli, kernel, &in_vm)?),
        None => None,
    };
    // Open the reports now: a bad path is bad input, found before anything runs.
    let cells = Arc::new(Mutex::new(cells_of(&targets, &versions, vm.is_some())));
    let mut reporters = reporters_for(&cli, &targets, cells.clone(), ktap, &mut baseline)?;
    let judgement = reporting::Judgement::default();
    if let Some((path, differences)) = expected {
        reporters.add(Box::new(reporting::ExpectedReport::new(
            path,
            differences,
            expected_contexts(&targets, &versions),
            judgement.clone(),
        )));
    }
    let regressed = baseline.regressed.clone();
    let reporters = Arc::new(reporters);
    let selected = targets
        .iter()
        .flat_map(|t| {
            loaded
                .iter()
                .map(move |l| format!("{}{}", t.prefix(), l.name))
        })
        .filter(|name| filters.selects(name))
        .count();
    reporters.emit(&reporting::RunEvent::RunStarted { selected });
    if let Some(vm) = vm {
        let in_vm_runner = vm.runner();
        let runner: trials::Runner = Arc::new(move |l, on_event| {
            if let Some(why) = targets::cannot_run_in_a_vm(&l.scenario) {
                return on_event(&unsupported(why));
            }
            in_vm_runner(l, on_event)
        });
        let vm_trials = trials::TargetTrials {
            prefix: String::new(),
            label: "vm".into(),
            runner,
            agent_clock: true,
        };
        let trials = trials::build(&loaded, &[vm_trials], reporters.clone());
        let conclusion = run_trials(&cli, &filters, trials);
        if live::interrupted() {
            live::stand_down();
        }
        vm.summarize();
        for cell in cells.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
            cell.kernel = vm.release();
        }
        reporters.finish()?;
        let code = exit_code(&cli, &conclusion, &reporters);
        return Ok(with_regressions(&cli, code, &regressed));
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

    let runners: Vec<trials::TargetTrials> = targets
        .iter()
        .map(|t| {
            let (target, agent) = (t.clone(), agent.path().to_path_buf());
            let runner: trials::Runner =
                Arc::new(move |l, on_event| match target.cannot_run(&l.scenario) {
                    Some(why) => on_event(&unsupported(why)),
                    None => target.run(&agent, &l.scenario, on_event),
                });
            trials::TargetTrials {
                prefix: t.prefix(),
                label: t.label().to_string(),
                runner,
                agent_clock: false,
            }
        })
        .collect();
    let trials = trials::build(&loaded, &runners, reporters.clone());

    let conclusion = run_trials(&cli, &filters, trials);
    if live::interrupted() {
        live::stand_down();
    }
    let written = reporters.finish();
    agent.remove();
    drop(work_dir);
    // As a subreaper we may hold orphans that died in the last moments (a
    // container's processes are ours once its init is gone): reap them all,
    // or they would outlive us as zombies.
    live::sweep_children(std::time::Duration::from_secs(5));
    written?;
    let judged_bad = *judgement.lock().unwrap_or_else(|p| p.into_inner());
    let code = match judged_bad {
        // With --expected, only what the file does not foresee fails the run.
        Some(true) => ExitCode::from(101),
        Some(false) => ExitCode::SUCCESS,
        None => exit_code(&cli, &conclusion, &reporters),
    };
    Ok(with_regressions(&cli, code, &regressed))
}

/// `--fail-on-regression`: a regression against the baseline makes the run
/// fail (101), whatever else it did; otherwise the code stands.
fn with_regressions(cli: &cli::Cli, code: ExitCode, regressed: &reporting::Regressed) -> ExitCode {
    let regressed = *regressed.lock().unwrap_or_else(|p| p.into_inner());
    if cli.fail_on_regression && regressed == Some(true) {
        ExitCode::from(101)
    } else {
        code
    }
}

/// `--baseline FILE`, read and checked before anything runs, and (once the
/// run is over) whether a scenario regressed against it.
pub struct BaselineRun {
    pub file: Option<(PathBuf, report_file::ReportFile)>,
    pub regressed: reporting::Regressed,
}

/// `--baseline FILE`: an orphanage report of this schema, sharing scenarios
/// with these suites (a grown or shrunk suite does; another suite does not).
fn load_baseline(
    path: &std::path::Path,
    loaded: &[discover::Loaded],
) -> anyhow::Result<report_file::ReportFile> {
    let mut read = report_file::read_all(&[path.to_path_buf()])?;
    let names: std::collections::HashSet<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    baseline::check_same_suite(path, &read, &names)?;
    Ok(read.remove(0))
}

/// libtest-mimic runs the trials the filters select (it takes one filter
/// itself, so they are handed to it as exact skips).
fn run_trials(
    cli: &cli::Cli,
    filters: &filters::Filters,
    trials: Vec<libtest_mimic::Trial>,
) -> libtest_mimic::Conclusion {
    let args = filters.libtest_arguments(&cli.test, trials.iter().map(|t| t.name()));
    libtest_mimic::run(&args, trials)
}

/// `--expected FILE`, validated against the suites' scenario names.
fn load_expected(
    path: &std::path::Path,
    loaded: &[discover::Loaded],
) -> Result<Vec<expected::Difference>, expected::ExpectedError> {
    let text = std::fs::read_to_string(path).map_err(|e| expected::ExpectedError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let names: Vec<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    expected::parse(path, &text, &names)
}

/// What each target was, for the expected file's conditions.
fn expected_contexts(targets: &[targets::Target], versions: &[String]) -> Vec<expected::Context> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut versions = versions.iter();
    targets
        .iter()
        .map(|t| {
            let (runtime_version, platform) = match t {
                targets::Target::Runtime(r) => (
                    versions.next().cloned().unwrap_or_default(),
                    targets::runtime_platform(&r.cli),
                ),
                _ => (String::new(), String::new()),
            };
            expected::Context {
                prefix: t.prefix(),
                target: t.label().to_string(),
                runtime_version,
                kernel: kernel.clone(),
                platform,
            }
        })
        .collect()
}

/// libtest's exit code, except that a run in which no scenario ran is never
/// a green one.
fn exit_code(
    cli: &cli::Cli,
    conclusion: &libtest_mimic::Conclusion,
    reporters: &reporting::Reporters,
) -> ExitCode {
    if !cli.test.list && reporters.finished_trials() == 0 {
        eprintln!("orphanage: no scenario ran");
        return ExitCode::from(2);
    }
    conclusion.exit_code()
}

/// Flags that would be quietly ignored, or would run nothing, are refused
/// before anything runs.
fn check_flags(cli: &cli::Cli) -> anyhow::Result<()> {
    if cli.test.test_threads == Some(0) {
        anyhow::bail!("--test-threads must be at least 1");
    }
    if cli.test.ignored {
        anyhow::bail!("--ignored runs only trials marked ignored ahead of time, and orphanage marks none (unsupported is decided by probing at run time): nothing would run");
    }
    if cli.test.bench {
        anyhow::bail!("--bench: the scenarios are tests, not benchmarks (figures come from `cargo bench -p orphanage`): nothing would run");
    }
    if cli.vm_results.is_some() && cli.kernel.is_none() {
        anyhow::bail!("--vm-results says how a VM reports: it needs --kernel (a kernels file says it per kernel, with `results:`)");
    }
    // Flags for a container runtime mean nothing without one, --check included.
    let no_runtime =
        cli.runtimes.is_empty() && std::env::var_os("RUNTIME").is_none_or(|r| r.is_empty());
    if cli.runtime_root.is_some() && no_runtime {
        anyhow::bail!("--runtime-root keeps a runtime's state: it needs --runtime");
    }
    if cli.init.is_some() && no_runtime {
        anyhow::bail!("--init puts an init program in a container: it needs --runtime");
    }
    if !cli.runtime_args.is_empty() && no_runtime {
        anyhow::bail!("--runtime-arg passes a flag to a container runtime: it needs --runtime");
    }
    if (cli.test.list || cli.check || matches!(cli.command, Some(cli::Command::Explore(_))))
        && cli.baseline.is_some()
    {
        anyhow::bail!("--baseline compares a run's results: --list, --check and explore give none");
    }
    if matches!(cli.command, Some(cli::Command::Explore(_)))
        && (cli.report.is_some() || cli.junit.is_some() || cli.events.is_some())
    {
        anyhow::bail!("explore writes no report: it prints its comparison and saves each disagreement as a scenario (--save-to)");
    }
    Ok(())
}

/// The verdict of a scenario this target cannot run at all.
fn unsupported(why: String) -> orphanage_scenario::Event {
    orphanage_scenario::Event::Finished {
        verdict: orphanage_scenario::Verdict::unsupported(why),
        steps_ms: 0.0,
    }
}

/// One report cell per target, as far as it is known before the run (a VM's
/// kernel release is filled in once it has booted).
fn cells_of(
    targets: &[targets::Target],
    versions: &[String],
    in_vm: bool,
) -> Vec<reporting::CellInfo> {
    let host_release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if in_vm {
        return vec![reporting::CellInfo {
            name: "vm".into(),
            kind: "vm".into(),
            kernel: String::new(),
            version: None,
            init: None,
            platform: None,
            summary: Default::default(),
        }];
    }
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| reporting::CellInfo {
            name: t.label().to_string(),
            kind: match t {
                targets::Target::Host(_) => "host",
                targets::Target::Runtime(_) => "runtime",
                targets::Target::Vm(_) => "vm",
            }
            .into(),
            kernel: host_release.clone(),
            version: versions.get(i).cloned(),
            init: match t {
                targets::Target::Runtime(r) => r.init.as_ref().map(|i| i.name().to_string()),
                _ => None,
            },
            platform: match t {
                targets::Target::Runtime(r) => {
                    Some(targets::runtime_platform(&r.cli)).filter(|p| !p.is_empty())
                }
                _ => None,
            },
            summary: Default::default(),
        })
        .collect()
}

/// The reporters this command line asks for, their files opened already.
fn reporters_for(
    cli: &cli::Cli,
    targets: &[targets::Target],
    cells: Arc<Mutex<Vec<reporting::CellInfo>>>,
    ktap: bool,
    baseline: &mut BaselineRun,
) -> anyhow::Result<reporting::Reporters> {
    let mut reporters: Vec<Box<dyn reporting::Reporter>> = Vec::new();
    if ktap {
        // KTAP owns standard output; libtest's lines and everything else
        // printed from here on go to standard error instead.
        let stdout = std::io::stdout().as_fd().try_clone_to_owned()?;
        // SAFETY: dup2 on two open descriptors; fd 1 is replaced atomically.
        if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
            anyhow::bail!(
                "cannot move libtest's output to stderr: {}",
                std::io::Error::last_os_error()
            );
        }
        reporters.push(Box::new(reporting::KtapReport::new(
            std::io::LineWriter::new(std::fs::File::from(stdout)),
        )));
    }
    if cli.test.list && (cli.report.is_some() || cli.junit.is_some() || cli.events.is_some()) {
        anyhow::bail!(
            "--list runs nothing, so a report would be empty: drop --report, --junit and --events"
        );
    }
    {
        let command_line: Vec<String> = std::env::args().collect();
        if let Some(p) = &cli.report {
            let json = reporting::JsonReport::create(p.clone(), command_line, cells.clone())?;
            reporters.push(Box::new(json));
        }
        if let Some(p) = &cli.events {
            let log = reporting::EventLog::create(p.clone())?;
            reporters.push(Box::new(log));
        }
        if let Some(p) = &cli.junit {
            let junit = reporting::JunitReport::create(p.clone())?;
            reporters.push(Box::new(junit));
        }
    }
    if let Some((path, report)) = baseline.file.take() {
        reporters.push(Box::new(reporting::BaselineReport::new(
            path,
            report,
            cells,
            baseline.regressed.clone(),
        )));
    }
    if targets.len() > 1 {
        let labels = targets.iter().map(|t| t.label().to_string()).collect();
        reporters.push(Box::new(reporting::SideBySide::new(labels)));
    }
    Ok(reporting::Reporters::new(reporters))
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
        let name = program
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let cli_ = targets::RuntimeCli {
            program: program.clone(),
            root,
            global: targets::runtime_global_args(
                &name,
                nix::unistd::geteuid().is_root(),
                &cli.runtime_args,
            ),
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
