//! `orphanage explore`: every flag is checked before anything runs, then
//! the generated trees run on the chosen target, their events streaming to
//! the comparison with the model and to the outputs the flags ask for.

use super::*;
use crate::default_suites;
use crate::{cli, explore, live, reporting, targets, vm_run};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// `orphanage explore`: every flag is checked before anything runs.
pub fn explore_command(cli: &cli::Cli, args: &explore::ExploreArgs) -> anyhow::Result<ExitCode> {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = match explore::Options::new(args, random, cpus) {
        Ok(o) => explore::Options {
            nested_pid_namespaces: !cli.no_pid_namespace,
            ..o
        },
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
    let files = output_files(OutputFiles::of(cli), explore_output_files(args))?;
    live::install_interrupt_handler().context("cannot set up the interrupt handler")?;
    let Chosen {
        mut targets,
        work_dir,
        versions,
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
    // Open the outputs now: a bad path is bad input, found before anything runs.
    let cells = Arc::new(Mutex::new(cells_of(&targets, &versions)));
    let mut reporters = reporting::Reporters::new(file_reporters(&files, cells)?);
    let comparison = explore::Comparison::default();
    reporters.add(comparison.reporter());
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
    let explored = explore::explore(&target, &options, &save_dir, &reporters, &comparison);
    agent.remove();
    drop(work_dir);
    live::sweep_children(std::time::Duration::from_secs(5));
    Ok(ExitCode::from(explored?))
}

/// The output files given after `explore`.
fn explore_output_files(args: &explore::ExploreArgs) -> OutputFiles {
    OutputFiles {
        report: args.report.clone(),
        junit: args.junit.clone(),
        events: args.events.clone(),
    }
}

/// explore's output files, given before `explore` (as for a suite run) or
/// after it; one given in both places would leave one of them unwritten.
fn output_files(before: OutputFiles, after: OutputFiles) -> anyhow::Result<OutputFiles> {
    fn one(
        flag: &str,
        before: Option<PathBuf>,
        after: Option<PathBuf>,
    ) -> anyhow::Result<Option<PathBuf>> {
        match (before, after) {
            (Some(_), Some(_)) => {
                anyhow::bail!("{flag} is given both before and after `explore`: give it once")
            }
            (before, after) => Ok(before.or(after)),
        }
    }
    Ok(OutputFiles {
        report: one("--report", before.report, after.report)?,
        junit: one("--junit", before.junit, after.junit)?,
        events: one("--events", before.events, after.events)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(path: &str) -> OutputFiles {
        OutputFiles {
            report: Some(path.into()),
            ..OutputFiles::default()
        }
    }

    #[test]
    fn output_files_come_from_either_side_of_explore() {
        let events = OutputFiles {
            events: Some("e.jsonl".into()),
            ..OutputFiles::default()
        };
        assert_eq!(
            output_files(report("r.json"), events.clone()).unwrap(),
            OutputFiles {
                report: Some("r.json".into()),
                events: Some("e.jsonl".into()),
                junit: None,
            }
        );
        assert_eq!(
            output_files(OutputFiles::default(), report("r.json")).unwrap(),
            report("r.json")
        );
        assert_eq!(
            output_files(OutputFiles::default(), OutputFiles::default()).unwrap(),
            OutputFiles::default()
        );
    }

    #[test]
    fn an_output_file_given_twice_is_refused() {
        let err = output_files(report("a.json"), report("b.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--report is given both before and after `explore`: give it once"
        );
    }
}
