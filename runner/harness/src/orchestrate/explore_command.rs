//! `orphanage explore`: every flag is checked before anything runs, then
//! the generated trees run on the chosen target.

use super::*;
use crate::default_suites;
use crate::{cli, explore, live, targets, vm_run};
use anyhow::Context;
use std::process::ExitCode;

/// `orphanage explore`: every flag is checked before anything runs.
pub fn explore_command(cli: &cli::Cli, args: &explore::ExploreArgs) -> anyhow::Result<ExitCode> {
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
