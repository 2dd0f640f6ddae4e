//! What a run writes and how it ends: the report cells, the reporters its
//! flags ask for (their files opened before anything runs), the expected
//! differences and the baseline it is judged against, and its exit code.

use super::*;
use crate::{
    baseline, cli, discover, executor, expected, filters, report_file, reporting, targets,
};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// `--fail-on-regression`: a regression against the baseline makes the run
/// fail (101), whatever else it did; otherwise the code stands.
pub fn with_regressions(
    cli: &cli::Cli,
    code: ExitCode,
    regressed: &reporting::Regressed,
) -> ExitCode {
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
pub fn load_baseline(
    path: &std::path::Path,
    loaded: &[discover::Loaded],
) -> anyhow::Result<report_file::ReportFile> {
    let mut read = report_file::read_all(&[path.to_path_buf()])?;
    let names: std::collections::HashSet<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    baseline::check_same_suite(path, &read, &names)?;
    Ok(read.remove(0))
}

/// The trials the filters select, run on `--test-threads` threads, their
/// results printed by the terminal reporter; with `--list`, only named.
pub fn run_trials(
    cli: &cli::Cli,
    filters: &filters::Filters,
    trials: Vec<executor::Trial>,
    reporters: &reporting::Reporters,
) -> reporting::Conclusion {
    if cli.test.list {
        executor::list(trials, filters, reporters);
        return reporting::Conclusion::default();
    }
    let threads = executor::threads(cli.test.test_threads);
    executor::execute(trials, filters, threads, reporters)
}

/// `--expected FILE`, validated against the suites' scenario names.
pub fn load_expected(
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
pub fn expected_contexts(
    targets: &[targets::Target],
    versions: &[String],
) -> Vec<expected::Context> {
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
                    targets::runtime_platform(&r.cli, &runsc_flags(&r.cli)),
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

/// cargo test's exit code, except that a run in which no scenario ran is
/// never a green one.
pub fn exit_code(
    cli: &cli::Cli,
    conclusion: &reporting::Conclusion,
    reporters: &reporting::Reporters,
) -> ExitCode {
    if !cli.test.list && reporters.finished_trials() == 0 {
        eprintln!("orphanage: no scenario ran");
        return ExitCode::from(2);
    }
    conclusion.exit_code()
}

/// One report cell per target, as far as it is known before the run. A VM's
/// kernel release is left empty rather than given the host's: a suite run
/// fills it in once the VM has booted, and explore's boots report only the
/// trees' events.
pub fn cells_of(targets: &[targets::Target], versions: &[String]) -> Vec<reporting::CellInfo> {
    let host_release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
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
            kernel: match t {
                targets::Target::Vm(_) => String::new(),
                targets::Target::Host(_) | targets::Target::Runtime(_) => host_release.clone(),
            },
            version: versions.get(i).cloned(),
            init: match t {
                targets::Target::Runtime(r) => r.init.as_ref().map(|i| i.name().to_string()),
                _ => None,
            },
            platform: match t {
                targets::Target::Runtime(r) => {
                    Some(targets::runtime_platform(&r.cli, &runsc_flags(&r.cli)))
                        .filter(|p| !p.is_empty())
                }
                _ => None,
            },
            summary: Default::default(),
        })
        .collect()
}

/// The files a run writes as it goes: `--report`, `--junit`, `--events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputFiles {
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub events: Option<PathBuf>,
}

impl OutputFiles {
    /// The ones given before any subcommand.
    pub fn of(cli: &cli::Cli) -> Self {
        OutputFiles {
            report: cli.report.clone(),
            junit: cli.junit.clone(),
            events: cli.events.clone(),
        }
    }
}

/// A reporter for each file, opened now: a path that cannot be written is
/// bad input, found before anything runs.
pub fn file_reporters(
    files: &OutputFiles,
    cells: Arc<Mutex<Vec<reporting::CellInfo>>>,
) -> anyhow::Result<Vec<Box<dyn reporting::Reporter>>> {
    let mut reporters: Vec<Box<dyn reporting::Reporter>> = Vec::new();
    let command_line: Vec<String> = std::env::args().collect();
    if let Some(p) = &files.report {
        let json = reporting::JsonReport::create(p.clone(), command_line, cells)?;
        reporters.push(Box::new(json));
    }
    if let Some(p) = &files.events {
        let log = reporting::EventLog::create(p.clone())?;
        reporters.push(Box::new(log));
    }
    if let Some(p) = &files.junit {
        let junit = reporting::JunitReport::create(p.clone())?;
        reporters.push(Box::new(junit));
    }
    Ok(reporters)
}

/// The reporters this command line asks for, their files opened already.
pub fn reporters_for(
    cli: &cli::Cli,
    targets: &[targets::Target],
    cells: Arc<Mutex<Vec<reporting::CellInfo>>>,
    ktap: bool,
    baseline: &mut BaselineRun,
) -> anyhow::Result<reporting::Reporters> {
    let mut reporters: Vec<Box<dyn reporting::Reporter>> = Vec::new();
    if ktap {
        // KTAP owns standard output; the terminal's lines and everything
        // else printed from here on go to standard error instead.
        let stdout = std::io::stdout().as_fd().try_clone_to_owned()?;
        // SAFETY: dup2 on two open descriptors; fd 1 is replaced atomically.
        if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
            anyhow::bail!(
                "cannot move the test lines to stderr: {}",
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
    // After KTAP's: a result's KTAP line is written before its terminal line.
    reporters.push(Box::new(reporting::TerminalReport::for_arguments(
        &cli.test,
    )?));
    reporters.extend(file_reporters(&OutputFiles::of(cli), cells.clone())?);
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
