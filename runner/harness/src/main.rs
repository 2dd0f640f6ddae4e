//! orphanage: does this kernel manage processes the way Linux promises?
//! The CLI edge: parse flags, load and validate every scenario, hand them to
//! libtest-mimic, write the report. Bad input exits 2 before anything runs.

mod agent_binary;
mod cli;
mod discover;
mod explore;
mod live;
mod report;
mod target;
mod trials;

use agent_binary::AgentBinary;
use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
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
    // A filter that selects nothing is a typo, not a green run.
    let filtered = cli.test.filter.is_some() || !cli.test.skip.is_empty();
    let selects_nothing = loaded.iter().all(|l| {
        cli.test
            .is_filtered_out(&libtest_mimic::Trial::test(&l.name, || Ok(())))
    });
    if filtered && !cli.test.list && selects_nothing {
        anyhow::bail!("no scenario in {} matches the filters", suites.display());
    }
    // Open the report now: a bad path is bad input, found before anything runs.
    let report_file = match &cli.report {
        Some(p) => Some(
            std::fs::File::create(p)
                .with_context(|| format!("cannot write report {}", p.display()))?,
        ),
        None => None,
    };
    let mut agent = match &cli.agent {
        Some(p) if p.is_file() => AgentBinary::given(p),
        Some(p) => anyhow::bail!("{}: no such agent binary", p.display()),
        None => AgentBinary::materialize(|dir| live::remove_on_interrupt(dir.to_path_buf()))
            .context("cannot write the agent to a temporary directory")?,
    };
    live::become_subreaper().context("cannot become a child subreaper")?;

    let records: trials::Records = Arc::new(Mutex::new(Vec::new()));
    let trials = trials::build(&loaded, agent.path().to_path_buf(), records.clone());

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
    let mut agent = match &cli.agent {
        Some(p) if p.is_file() => AgentBinary::given(p),
        Some(p) => anyhow::bail!("{}: no such agent binary", p.display()),
        None => AgentBinary::materialize(|dir| live::remove_on_interrupt(dir.to_path_buf()))
            .context("cannot write the agent to a temporary directory")?,
    };
    live::become_subreaper().context("cannot become a child subreaper")?;
    // The only target on this branch; others implement target::Target too.
    let target = target::Host {
        agent: agent.path().to_path_buf(),
    };
    let code = explore::explore(&target, &options, &save_dir);
    agent.remove();
    Ok(ExitCode::from(code))
}
