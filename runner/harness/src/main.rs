//! orphanage: does this kernel manage processes the way Linux promises?
//! The CLI edge: parse flags, load and validate every scenario, hand them to
//! libtest-mimic, write the report. Bad input exits 2 before anything runs.

mod agent_binary;
mod cli;
mod discover;
mod kernels;
mod live;
mod matrix;
mod report;
mod target;
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
    // A filter that selects nothing is a typo, not a green run.
    let filtered = cli.test.filter.is_some() || !cli.test.skip.is_empty();
    let selects_nothing = loaded.iter().all(|l| {
        cli.test
            .is_filtered_out(&libtest_mimic::Trial::test(&l.name, || Ok(())))
    });
    if filtered && !cli.test.list && selects_nothing {
        anyhow::bail!("no scenario in {} matches the filters", suites.display());
    }
    if let Some(file) = &cli.kernels {
        let selected: Vec<discover::Loaded> = loaded
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
        Some(kernel) => Some(vm_run::prepare_single(&cli, kernel, &loaded)?),
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
        let trials = trials::build(&loaded, vm.runner(), records.clone());
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
    let mut agent = match &cli.agent {
        Some(p) if p.is_file() => AgentBinary::given(p),
        Some(p) => anyhow::bail!("{}: no such agent binary", p.display()),
        None => AgentBinary::materialize(|dir| live::remove_on_interrupt(dir.to_path_buf()))
            .context("cannot write the agent to a temporary directory")?,
    };
    live::become_subreaper().context("cannot become a child subreaper")?;

    let agent_path = agent.path().to_path_buf();
    let runner: trials::Runner = Arc::new(move |l: &discover::Loaded| {
        let mut events = Vec::new();
        target::run_on_host(&agent_path, &l.scenario, &mut |e| events.push(e.clone()));
        events
    });
    let trials = trials::build(&loaded, runner, records.clone());

    let conclusion = libtest_mimic::run(&cli.test, trials);
    if live::interrupted() {
        live::stand_down();
    }

    if let Some(file) = report_file {
        let results = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
        let report = report::Report::new("host", results);
        serde_json::to_writer_pretty(file, &report).context("cannot write the report")?;
    }
    agent.remove();
    Ok(conclusion.exit_code())
}
