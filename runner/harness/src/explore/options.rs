//! The explore subcommand's flags, and their validation before anything runs.
//! Values are taken as text and checked here, so bad input gets one line.

use orphanage_scenario::model::Defect;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct ExploreArgs {
    /// How many trees to generate and check.
    #[arg(long, value_name = "N", default_value = "256")]
    pub cases: String,

    /// The seed (decimal, or hex with 0x). A run with the same seed and flags
    /// checks the same trees. Random when absent; always printed.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<String>,

    /// Where a minimal failing scenario is written. Defaults to the suites
    /// directory's `regressions/`.
    #[arg(long, value_name = "DIR")]
    pub save_to: Option<PathBuf>,

    /// Processes and threads in each generated tree.
    #[arg(long, value_name = "N", default_value = "8")]
    pub processes: String,

    /// Trees checked at the same time. Defaults to two per CPU: a job spends
    /// part of each tree waiting (namespace setup and teardown, round trips).
    #[arg(long, value_name = "N")]
    pub jobs: Option<String>,

    /// The first case to check: resumes an interrupted run with the same seed.
    #[arg(long, value_name = "N", default_value = "0")]
    pub from_case: String,

    /// Write a JSON report: one result per tree (pass when it agrees with the
    /// model, fail with the first mismatch). As before `explore`.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write JUnit XML, one testcase per tree. As before `explore`.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write every event of every tree as it happens, one JSON line each
    /// (what the agent saw: spawns, observations, steps). As before `explore`.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// A deliberately wrong model, to prove that a mismatch is noticed.
    #[arg(long, value_name = "DEFECT", default_value = "none", hide = true)]
    pub model_defect: String,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub cases: u64,
    pub seed: u64,
    pub seed_given: bool,
    pub processes: usize,
    pub jobs: usize,
    pub from_case: u64,
    pub defect: Defect,
    /// Trees may hold pid namespaces of their own. Not with
    /// `--no-pid-namespace`, which stands for a kernel that has none: there
    /// every such tree would come back unsupported.
    pub nested_pid_namespaces: bool,
}

/// The most processes and threads a tree may have: each is a worker with a
/// socket and a pidfd in the agent's root.
pub const MAX_PROCESSES: usize = 5000;

/// A flag of explore's that cannot be taken: bad input, one line, exit 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadExploreFlag {
    #[error("--{flag} `{text}`: not a whole number")]
    NotANumber { flag: &'static str, text: String },
    /// No bound is spelled as a type's limit (u64::MAX reads as noise).
    #[error("--{flag} {value}: must be at least {min}")]
    BelowMinimum {
        flag: &'static str,
        value: u64,
        min: u64,
    },
    #[error("--{flag} {value}: must be from {min} to {max}")]
    OutOfRange {
        flag: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("--seed `{0}`: not a seed (a number up to 2^64-1, decimal or 0x-prefixed hex)")]
    NotASeed(String),
    #[error(transparent)]
    UnknownDefect(#[from] orphanage_scenario::UnknownName),
}

fn count(flag: &'static str, text: &str, min: u64, max: u64) -> Result<u64, BadExploreFlag> {
    let value: u64 = text.parse().map_err(|_| BadExploreFlag::NotANumber {
        flag,
        text: text.to_string(),
    })?;
    if value < min || value > max {
        return Err(if max == u64::MAX {
            BadExploreFlag::BelowMinimum { flag, value, min }
        } else {
            BadExploreFlag::OutOfRange {
                flag,
                value,
                min,
                max,
            }
        });
    }
    Ok(value)
}

pub fn parse_seed(text: &str) -> Result<u64, BadExploreFlag> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| BadExploreFlag::NotASeed(text.to_string()))
}

impl Options {
    /// `random` supplies the seed when none is given, `cpus` the default jobs.
    pub fn new(args: &ExploreArgs, random: u64, cpus: usize) -> Result<Options, BadExploreFlag> {
        let cases = count("cases", &args.cases, 1, u64::MAX)?;
        let (seed, seed_given) = match &args.seed {
            Some(s) => (parse_seed(s)?, true),
            None => (random, false),
        };
        Ok(Options {
            cases,
            seed,
            seed_given,
            processes: count("processes", &args.processes, 1, MAX_PROCESSES as u64)? as usize,
            jobs: match &args.jobs {
                Some(j) => count("jobs", j, 1, 64)? as usize,
                None => (2 * cpus).clamp(1, 64),
            },
            from_case: count("from-case", &args.from_case, 0, u64::MAX)?,
            defect: args.model_defect.parse()?,
            nested_pid_namespaces: true,
        })
    }
}

/// Why a save directory cannot take a minimal failing scenario.
#[derive(Debug, thiserror::Error)]
pub enum SaveDirUnusable {
    #[error("--save-to {}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    // The cause is part of the message, not a chained source: the CLI prints
    // this one line as it is.
    #[error("--save-to {}: cannot create it ({error})", dir.display())]
    CannotCreate { dir: PathBuf, error: std::io::Error },
    #[error("--save-to {}: cannot write there ({error})", dir.display())]
    CannotWrite { dir: PathBuf, error: std::io::Error },
}

/// A save directory must be writable before anything runs. A missing one is
/// created to prove it can be, then removed again (down to the first
/// directory that was missing), so a run that finds nothing leaves nothing.
pub fn check_save_dir(dir: &Path) -> Result<(), SaveDirUnusable> {
    if dir.exists() && !dir.is_dir() {
        return Err(SaveDirUnusable::NotADirectory(dir.to_path_buf()));
    }
    let first_missing = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .last()
        .map(Path::to_path_buf);
    if let Err(error) = std::fs::create_dir_all(dir) {
        return Err(SaveDirUnusable::CannotCreate {
            dir: dir.to_path_buf(),
            error,
        });
    }
    let probe = tempfile::NamedTempFile::new_in(dir).map(drop);
    if let Some(created) = first_missing {
        let _ = std::fs::remove_dir_all(created);
    }
    probe.map_err(|error| SaveDirUnusable::CannotWrite {
        dir: dir.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn args(cases: &str, seed: Option<&str>) -> ExploreArgs {
        ExploreArgs {
            cases: cases.into(),
            seed: seed.map(str::to_string),
            save_to: None,
            processes: "8".into(),
            jobs: None,
            from_case: "0".into(),
            report: None,
            junit: None,
            events: None,
            model_defect: "none".into(),
        }
    }

    #[rstest]
    #[case::decimal("42", 42)]
    #[case::hex("0x2a", 42)]
    #[case::largest("18446744073709551615", u64::MAX)]
    fn seeds_parse(#[case] text: &str, #[case] seed: u64) {
        let o = Options::new(&args("1", Some(text)), 7, 2).unwrap();
        assert_eq!((o.seed, o.seed_given), (seed, true));
    }

    #[test]
    fn without_a_seed_the_random_one_is_used() {
        let o = Options::new(&args("1", None), 7, 2).unwrap();
        assert_eq!((o.seed, o.seed_given), (7, false));
        assert_eq!(o.jobs, 4, "two jobs per CPU");
    }

    #[rstest]
    #[case::zero_cases("0", None, "--cases 0: must be at least 1")]
    #[case::words_for_cases("many", None, "--cases `many`: not a whole number")]
    #[case::malformed_seed("1", Some("0xZZ"), "--seed `0xZZ`: not a seed")]
    #[case::negative_seed("1", Some("-3"), "--seed `-3`: not a seed")]
    #[case::too_large_seed("1", Some("18446744073709551616"), "not a seed")]
    fn bad_values_are_one_clear_line(
        #[case] cases: &str,
        #[case] seed: Option<&str>,
        #[case] message: &str,
    ) {
        let err = Options::new(&args(cases, seed), 7, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn each_bad_flag_says_which_and_why() {
        let mut a = args("1", None);
        a.jobs = Some("65".into());
        let err = Options::new(&a, 7, 2).unwrap_err();
        assert_eq!(
            err,
            BadExploreFlag::OutOfRange {
                flag: "jobs",
                value: 65,
                min: 1,
                max: 64
            }
        );
        assert_eq!(err.to_string(), "--jobs 65: must be from 1 to 64");
        let mut a = args("1", None);
        a.model_defect = "no-such".into();
        let err = Options::new(&a, 7, 2).unwrap_err();
        assert!(matches!(err, BadExploreFlag::UnknownDefect(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "no-such".parse::<Defect>().unwrap_err().to_string()
        );
    }

    #[test]
    fn an_unwritable_save_dir_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = check_save_dir(&file.path().join("sub")).unwrap_err();
        assert!(matches!(err, SaveDirUnusable::CannotCreate { .. }), "{err}");
        assert!(err.to_string().contains("cannot create it"), "{err}");
        let err = check_save_dir(file.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("--save-to {}: not a directory", file.path().display())
        );
        let dir = tempfile::tempdir().unwrap();
        check_save_dir(dir.path()).unwrap();
        check_save_dir(&dir.path().join("new/deeper")).unwrap();
        assert!(!dir.path().join("new").exists(), "a probe leaves nothing");
    }
}
