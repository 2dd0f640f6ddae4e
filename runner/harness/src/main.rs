//! orphanage: does this kernel manage processes the way Linux promises?
//! The CLI edge: parse flags, load and validate every scenario, hand them to
//! the executor, write the report. Bad input exits 2 before anything runs.

mod agent_binary;
mod baseline;
mod cli;
mod discover;
mod executor;
mod expected;
mod explore;
mod filters;
mod install;
mod kernel_build;
mod kernels;
mod live;
mod merge;
mod orchestrate;
mod report_file;
mod reporting;
mod runtimes;
mod targets;
mod trials;
mod vm_run;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use orchestrate::*;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// Whether a panic is a print to a closed stdout: std's `println!` failing
/// (the terminal reporter ends the run itself when its write fails). Any
/// other broken pipe (to an agent, say) is a real failure and must show.
fn is_broken_pipe(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    text.starts_with("failed printing to stdout") && text.contains("Broken pipe")
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
    let matches = match cli::Cli::command().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) if e.use_stderr() => anyhow::bail!(cli::one_line_error(&e.render().to_string())),
        Err(e) => {
            // --help and --version.
            e.print()?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let cli = cli::Cli::from_arg_matches(&matches)
        .map_err(|e| anyhow::anyhow!(cli::one_line_error(&e.render().to_string())))?;
    if let Some(command) = &cli.command {
        let mut given = cli::given_flags(&matches);
        if ktap {
            given.push("--format ktap".into());
        }
        if let Some(why) = cli::flags_a_subcommand_ignores(command, &given) {
            anyhow::bail!(why);
        }
    }
    if let Some(cli::Command::Kernels { command }) = cli.command {
        return vm_run::kernels_command(command);
    }
    if let Some(cli::Command::Runtimes { command }) = cli.command {
        return runtimes::command(command);
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
        Some(
            cli::Command::Explore(_)
            | cli::Command::Kernels { .. }
            | cli::Command::Merge(_)
            | cli::Command::Runtimes { .. },
        )
        | None => {}
    }
    if let Some(cli::Command::Merge(args)) = &cli.command {
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
    // What a VM boots with: the selected scenarios, except those that drive
    // a container runtime (a VM has none to drive).
    let selected_in_vm: Vec<discover::Loaded> = loaded
        .iter()
        .filter(|l| !l.scenario.needs_runtime() && filters.selects(&l.name))
        .cloned()
        .collect();
    if let Some(file) = &cli.kernels {
        if cli.test.list {
            for l in &selected_in_vm {
                println!("{}: test", l.name);
            }
            return Ok(ExitCode::SUCCESS);
        }
        let code = vm_run::matrix(&cli, file, &selected_in_vm, &mut baseline)?;
        return Ok(with_regressions(&cli, code, &baseline.regressed));
    }
    // --kernel: the suite runs in one VM instead of on this kernel (the host
    // target chosen above), checked only now that every refusal is past.
    let targets = match &cli.kernel {
        Some(image) => vec![vm_run::suite_target(&cli, image, &selected_in_vm)?],
        None => targets,
    };
    run_suite(SuiteRun {
        cli: &cli,
        loaded: &loaded,
        filters: &filters,
        ktap,
        targets,
        versions,
        work_dir,
        expected,
        baseline,
    })
}
