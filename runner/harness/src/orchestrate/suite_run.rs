//! A suite run, once its input is read and its flags are checked: the
//! reporters its flags ask for, then the scenarios as trials on the chosen
//! targets (the host, runtimes, or one VM for `--kernel`), and the exit code.

use super::*;
use crate::{cli, discover, expected, filters, live, reporting, targets, trials, vm_run};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// What a suite run is given.
pub struct SuiteRun<'a> {
    pub cli: &'a cli::Cli,
    pub loaded: &'a [discover::Loaded],
    pub filters: &'a filters::Filters,
    /// `--format ktap`: KTAP owns standard output.
    pub ktap: bool,
    pub targets: Vec<targets::Target>,
    pub versions: Vec<String>,
    /// Bundles and runtime state, removed at the end.
    pub work_dir: Option<tempfile::TempDir>,
    pub expected: Option<(PathBuf, Vec<expected::Difference>)>,
    pub baseline: BaselineRun,
}

pub fn run_suite(run: SuiteRun) -> anyhow::Result<ExitCode> {
    let SuiteRun {
        cli,
        loaded,
        filters,
        ktap,
        targets,
        versions,
        work_dir,
        expected,
        mut baseline,
    } = run;
    // Open the reports now: a bad path is bad input, found before anything runs.
    let cells = Arc::new(Mutex::new(cells_of(&targets, &versions)));
    let mut reporters = reporters_for(cli, &targets, cells.clone(), ktap, &mut baseline)?;
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
    let mut agent = agent_binary(cli)?;
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
                    None => target.run_named(&agent, &l.name, &l.scenario, on_event),
                });
            trials::TargetTrials {
                prefix: t.prefix(),
                label: t.label().to_string(),
                runner,
                agent_clock: t.agent_clock(),
            }
        })
        .collect();
    let trials = trials::build(loaded, &runners);

    let conclusion = run_trials(cli, filters, trials, &reporters);
    if live::interrupted() {
        live::stand_down();
    }
    vm_run::summarize(
        &targets,
        &mut cells.lock().unwrap_or_else(|p| p.into_inner()),
    );
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
        None => exit_code(cli, &conclusion, &reporters),
    };
    Ok(with_regressions(cli, code, &regressed))
}
