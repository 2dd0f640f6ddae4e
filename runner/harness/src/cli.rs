//! Command-line flags. libtest-mimic's own (filters, --list, --exact, --skip,
//! --test-threads...) are flattened in, so they work as in `cargo test`.

use crate::targets::vm::AccelChoice;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "orphanage",
    version,
    // libtest-mimic's flattened arguments bring a template without the description.
    help_template = "{before-help}{name} {version}\n{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}{after-help}",
    about = "Checks that a kernel manages processes the way Linux promises: subreapers, zombies, kill races, memfd seals, sibling inits and PID 1.",
    long_about = "Checks that a kernel manages processes the way Linux promises.\n\n\
        Runs every scenario in the suites directory (suites/<area>/<name>.yaml) against the running kernel. \
        Each runs in a fresh pid namespace with orphanage's static agent as its init, unless it asks for the caller's namespace. \
        With --runtime, each runs in a container made by that OCI runtime instead, the agent as the container's init.\n\n\
        Outcomes: ok (pass), FAILED (fail, or broken when the harness or agent itself failed), \
        ignored (unsupported: a probed feature is missing; the reason names the probe and its errno).\n\n\
        Exit code: 0 when nothing failed or broke, 101 when something did, 2 for bad input (nothing runs), \
        3 when the runtime cannot run a container on this machine (one line says why).",
    after_help = "Examples:\n  orphanage                          run the whole suite\n  orphanage subreaper::              run one area\n  orphanage --check                  validate every scenario file, run nothing\n  orphanage --report out.json        also write a JSON report\n  orphanage --list                   list scenario names\n  orphanage --runtime runc           run the suite in runc containers\n  orphanage --runtime runc --runtime ./youki --init tini\n                                     two runtimes side by side, tini under test\n  orphanage --runtime runsc --runtime-arg=--platform=ptrace\n                                     the suite in gVisor, with a runsc flag\n  orphanage explore --cases 500      check 500 generated process trees against the reference model\n  orphanage --runtime runc explore   the same, each tree in a runc container\n  orphanage --kernel vmlinuz         boot that kernel in QEMU and run the suite inside it\n  orphanage kernels fetch            download the kernels of fixtures/kernels.yaml\n  orphanage runtimes fetch runsc-trixie\n                                     download gVisor's 2024-07 runsc, to run beside the system's\n  orphanage --kernels fixtures/kernels.yaml   run the kernel matrix\n  orphanage merge a.json b.json --html matrix.html --markdown matrix.md\n                                     one matrix from the reports of many machines\n  orphanage install --prefix ~/.local   install orphanage, its man page and shell completions"
)]
pub struct Cli {
    /// Validate every scenario file and exit, running nothing.
    #[arg(long)]
    pub check: bool,

    /// The directory of scenarios (<area>/<name>.yaml). Defaults to ./suites, else the one in the source tree.
    #[arg(long, value_name = "DIR")]
    pub suites: Option<PathBuf>,

    /// Write a JSON report: kernel, target, results and summary.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write JUnit XML (one testsuite per target; unsupported is skipped with its reason), as CI systems read it.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write every event of every trial as it happens, one JSON line each (what the agent saw: spawns, observations, steps).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Run the suite in containers made by this OCI runtime (a path, or a name
    /// on PATH). Repeat it to compare runtimes side by side. Without it, the
    /// RUNTIME environment variable is used if set; otherwise the host kernel.
    #[arg(long = "runtime", value_name = "RUNTIME")]
    pub runtimes: Vec<String>,

    /// A global flag for every runtime verb (repeatable), after the flags
    /// orphanage knows a runtime needs (runsc: --network=none). For example
    /// --runtime-arg=--platform=ptrace for runsc. Needs --runtime.
    #[arg(long = "runtime-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub runtime_args: Vec<String>,

    /// Put this init program (tini, dumb-init, catatonit...) under test as the
    /// container's PID 1, for the `namespace: under_init` scenarios. Needs --runtime.
    #[arg(long, value_name = "PATH")]
    pub init: Option<String>,

    /// Judge the run against this file of expected differences
    /// (fixtures/expected/runsc.yaml, say): exit non-zero only for a fail,
    /// broken or unsupported it does not list, or a listed one that no longer happens.
    #[arg(long, value_name = "FILE")]
    pub expected: Option<PathBuf>,

    /// Compare the run with this earlier JSON report (`--report`), cell by
    /// cell, and list regressions, fixes, and new and removed scenarios.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// With --baseline: exit 101 when a scenario regressed (passed, or was
    /// unsupported, in the baseline and does worse now).
    #[arg(long, requires = "baseline")]
    pub fail_on_regression: bool,

    /// Keep the runtimes' state (their --root) under this directory instead of
    /// a private temporary one, to inspect it with `RUNTIME --root DIR/state-N list`.
    #[arg(long, value_name = "DIR")]
    pub runtime_root: Option<PathBuf>,

    /// Run every `namespace: fresh` scenario without a pid namespace, under a
    /// root process that is a child subreaper in orphanage's own namespace, as
    /// happens by itself on a kernel that refuses CLONE_NEWPID. For tests and
    /// comparison; each result's `mode` says how it ran. Not with --runtime.
    #[arg(long)]
    pub no_pid_namespace: bool,

    /// Use this agent binary instead of the one built into orphanage.
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,

    /// Boot this kernel image (bzImage or PVH vmlinux) in QEMU with the agent as init, and run the suite inside it.
    #[arg(long, value_name = "PATH", conflicts_with = "kernels")]
    pub kernel: Option<PathBuf>,

    /// Run the suite in every kernel of this matrix file and print a matrix (scenarios x kernels).
    #[arg(long, value_name = "FILE")]
    pub kernels: Option<PathBuf>,

    /// With --kernels: only these kernels, by name (comma-separated or repeated).
    #[arg(long, value_name = "NAME", requires = "kernels", value_delimiter = ',')]
    pub only_kernel: Vec<String>,

    /// With --kernels: also write the matrix to DIR/matrix.md and DIR/matrix.html.
    #[arg(long, value_name = "DIR", requires = "kernels")]
    pub matrix_report: Option<PathBuf>,

    /// QEMU accelerator: KVM when a short probe shows it works (auto), or forced.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelChoice,

    /// In a VM: first boot each kernel with an init that only powers off, and report that floor next to the time to the first result.
    #[arg(long)]
    pub boot_floor: bool,

    /// With --kernel: where the guest sends results. `ttyS1`, a second serial port (the default), `console`, the one console (ttyS0), between the kernel's log lines (for kernels with a single console), or `hvc0`, the virtio console as the one console, with no serial port.
    #[arg(long, value_enum, value_name = "PORT")]
    pub vm_results: Option<crate::targets::vm::ResultsPort>,

    /// Virtual CPUs per VM (init runs two scenarios per CPU at a time). Default: every core (at most 4) for a kernel run alone; in a matrix, the cores shared among the cells that run at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub vm_cpus: Option<u32>,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub test: libtest_mimic::Arguments,

    /// Further filters, as cargo test takes them: a scenario runs when its
    /// name contains any FILTER (equals one, with --exact).
    #[arg(value_name = "FILTER")]
    pub more_filters: Vec<String>,

    /// Print the version. (libtest-mimic's flattened arguments turn clap's own flag off.)
    #[arg(short = 'V', long = "version", action = clap::ArgAction::Version)]
    version: (),
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Generate random process trees, run each on the target and compare what
    /// the kernel did with what a reference model of reparenting predicts. On
    /// a disagreement, shrink it to a minimal tree and save that as a scenario.
    Explore(crate::explore::ExploreArgs),
    /// Merge JSON reports from many machines into one conformance matrix
    /// (HTML, Markdown, JUnit): a column per cell, differences from Linux first.
    Merge(crate::merge::MergeArgs),
    /// Manage the kernels of the VM matrix: fetch them once, or print their paths.
    Kernels {
        #[command(subcommand)]
        command: KernelsCommand,
    },
    /// Print the completion script for a shell, generated from these flags
    /// (`orphanage completions bash > /etc/bash_completion.d/orphanage`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print orphanage(1), the man page, in roff (`orphanage man | man -l -`).
    Man,
    /// Install orphanage, its man page and its bash, zsh and fish completions
    /// under a prefix: PREFIX/bin, PREFIX/share/man/man1, and where each shell
    /// looks under PREFIX/share.
    Install {
        /// Where to install (~/.local for one user, /usr/local for everyone).
        #[arg(long, value_name = "DIR")]
        prefix: PathBuf,
    },
    /// Container runtimes that are not installed system-wide (a second gVisor
    /// release, runsc-trixie): fetch them once into the cache, or print their paths.
    Runtimes {
        #[command(subcommand)]
        command: RuntimesCommand,
    },
}

/// `orphanage runtimes ...`: runtimes kept in the cache.
#[derive(Subcommand, Debug)]
pub enum RuntimesCommand {
    /// Download them from their Debian suite once (apt-get with a private sources list and state), keeping the binary in the cache.
    Fetch {
        /// Only these runtimes, by name (runsc-trixie); all when none is given.
        names: Vec<String>,
    },
    /// Print each one's binary, for --runtime (exit 1 if one is not fetched yet).
    Path { names: Vec<String> },
}

/// `orphanage kernels ...`: managing the matrix's kernels.
#[derive(Subcommand, Debug)]
pub enum KernelsCommand {
    /// Download the matrix's Debian kernel packages once (apt-get with a private sources list and state), keeping each kernel image in the cache.
    Fetch {
        /// The matrix file. Defaults to ./fixtures/kernels.yaml, else the source tree's.
        #[arg(long, value_name = "FILE")]
        kernels: Option<PathBuf>,
        /// Only these kernels, by name; all when none is given.
        names: Vec<String>,
    },
    /// Print the image each kernel boots (exit 1 if one is not fetched yet).
    Path {
        #[arg(long, value_name = "FILE")]
        kernels: Option<PathBuf>,
        names: Vec<String>,
    },
}

/// The top-level flags given on the command line, as typed (`--runtime-arg`;
/// a positional by its value name, `FILTER`), leaving out those at their
/// defaults.
pub fn given_flags(matches: &clap::ArgMatches) -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_arguments()
        .filter(|arg| {
            matches.value_source(arg.get_id().as_str())
                == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|arg| match arg.get_long() {
            Some(long) => format!("--{long}"),
            None => arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| arg.get_id().to_string(), |name| name.to_string()),
        })
        .fold(Vec::new(), |mut flags, flag| {
            // libtest's filter and orphanage's further ones are both FILTER.
            if !flags.contains(&flag) {
                flags.push(flag);
            }
            flags
        })
}

/// Why the flags given before a subcommand cannot go with it, if they
/// cannot: they describe a suite run (its target, filters and outputs),
/// which `kernels`, `runtimes`, `completions`, `man`, `install` and `merge`
/// do not make, so each would be ignored without a word. `merge` reads the
/// scenarios' names from `--suites`; `explore`'s are checked with the run's.
pub fn flags_a_subcommand_ignores(command: &Command, given: &[String]) -> Option<String> {
    let (name, allowed): (&str, &[&str]) = match command {
        Command::Explore(_) => return None,
        Command::Merge(_) => ("merge", &["--suites"]),
        Command::Kernels { .. } => ("kernels", &[]),
        Command::Runtimes { .. } => ("runtimes", &[]),
        Command::Completions { .. } => ("completions", &[]),
        Command::Man => ("man", &[]),
        Command::Install { .. } => ("install", &[]),
    };
    let ignored: Vec<&str> = given
        .iter()
        .map(String::as_str)
        .filter(|flag| !allowed.contains(flag))
        .collect();
    if ignored.is_empty() {
        return None;
    }
    let outputs = ["--report", "--junit", "--baseline", "--expected"];
    if name == "merge" && ignored.iter().any(|flag| outputs.contains(flag)) {
        return Some("merge takes its own --junit, --baseline and --expected, after `merge`; it writes no JSON report".into());
    }
    let (them, would) = match ignored.as_slice() {
        [one] => (one.to_string(), "would be ignored"),
        many => (many.join(", "), "would all be ignored"),
    };
    Some(format!(
        "`{name}` runs no scenario, so {them} before it {would}: drop {}",
        if ignored.len() == 1 { "it" } else { "them" }
    ))
}

/// A clap error as one line, as README promises for bad input: clap's first
/// line without its `error: ` label (the usage and tips that follow are what
/// `--help` is for).
pub fn one_line_error(rendered: &str) -> String {
    let mut lines = rendered.lines().skip_while(|l| l.trim().is_empty());
    let first = lines.next().unwrap_or("");
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // "the following required arguments were not provided:" lists them on
    // the indented lines below: those belong to the one line.
    if line.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
            .map(str::trim)
            .collect();
        if !listed.is_empty() {
            line = format!("{line} {}", listed.join(", "));
        }
    }
    format!("{line} (see --help)")
}

/// `--format ktap` is orphanage's, not libtest's: takes it out of the
/// arguments before clap sees them (libtest-mimic knows only pretty, terse
/// and json) and says whether it was there.
pub fn take_format_ktap(args: Vec<std::ffi::OsString>) -> (Vec<std::ffi::OsString>, bool) {
    let mut out = Vec::with_capacity(args.len());
    let mut ktap = false;
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        if arg == "--format=ktap" {
            ktap = true;
        } else if arg == "--format" && iter.peek().is_some_and(|v| v == "ktap") {
            iter.next();
            ktap = true;
        } else if arg == "--" {
            // Everything after `--` is positional: leave it alone.
            out.push(arg);
            out.extend(iter.by_ref());
        } else {
            out.push(arg);
        }
    }
    (out, ktap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn clap_errors_become_one_line() {
        let err = Cli::try_parse_from(["orphanage", "--bogus"]).unwrap_err();
        let line = one_line_error(&err.render().to_string());
        assert_eq!(line, "unexpected argument '--bogus' found (see --help)");
        let err = Cli::try_parse_from(["orphanage", "--fail-on-regression"]).unwrap_err();
        assert_eq!(
            one_line_error(&err.render().to_string()),
            "the following required arguments were not provided: --baseline <FILE> (see --help)"
        );
        let err = Cli::try_parse_from(["orphanage", "--vm-cpus", "0"]).unwrap_err();
        let line = one_line_error(&err.render().to_string());
        assert!(!line.contains('\n') && line.contains("--vm-cpus"), "{line}");
    }

    #[test]
    fn version_and_the_kernels_command_parse() {
        let err = Cli::try_parse_from(["orphanage", "-V"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        let cli = Cli::try_parse_from(["orphanage", "kernels", "path", "6.1"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Kernels {
                command: KernelsCommand::Path { .. }
            })
        ));
    }

    fn parsed(args: &[&str]) -> (Cli, Vec<String>) {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        (
            Cli::from_arg_matches(&matches).unwrap(),
            given_flags(&matches),
        )
    }

    #[rstest]
    #[case(&["orphanage", "kernels", "path"], &[], None)]
    #[case(
        &["orphanage", "--runtime-arg=--platform=ptrace", "kernels", "path", "6.1"],
        &["--runtime-arg"],
        Some("`kernels` runs no scenario, so --runtime-arg before it would be ignored: drop it")
    )]
    #[case(
        &["orphanage", "--runtime", "runc", "--init", "tini", "runtimes", "fetch"],
        &["--runtime", "--init"],
        Some("`runtimes` runs no scenario, so --runtime, --init before it would all be ignored: drop them")
    )]
    #[case(&["orphanage", "--test-threads", "1", "man"], &["--test-threads"], Some("`man` runs no scenario, so --test-threads before it would be ignored: drop it"))]
    #[case(&["orphanage", "--accel", "tcg", "completions", "bash"], &["--accel"], Some("`completions` runs no scenario, so --accel before it would be ignored: drop it"))]
    #[case(&["orphanage", "--kernel", "vmlinuz", "install", "--prefix", "/p"], &["--kernel"], Some("`install` runs no scenario, so --kernel before it would be ignored: drop it"))]
    #[case(&["orphanage", "--suites", "s", "merge", "a.json"], &["--suites"], None)]
    #[case(
        &["orphanage", "--report", "r.json", "merge", "a.json"],
        &["--report"],
        Some("merge takes its own --junit, --baseline and --expected, after `merge`; it writes no JSON report")
    )]
    #[case(&["orphanage", "--runtime", "runc", "merge", "a.json"], &["--runtime"], Some("`merge` runs no scenario, so --runtime before it would be ignored: drop it"))]
    #[case(&["orphanage", "--runtime", "runc", "explore"], &["--runtime"], None)]
    fn flags_before_a_subcommand_that_ignores_them_are_named(
        #[case] args: &[&str],
        #[case] given: &[&str],
        #[case] refused: Option<&str>,
    ) {
        let (cli, flags) = parsed(args);
        assert_eq!(flags, given);
        let command = cli.command.expect("a subcommand");
        assert_eq!(
            flags_a_subcommand_ignores(&command, &flags).as_deref(),
            refused
        );
    }

    #[test]
    fn a_filter_is_named_by_its_value_name_and_defaults_are_not_given() {
        let (_, flags) = parsed(&["orphanage", "zombie::", "memfd::"]);
        assert_eq!(flags, ["FILTER"]);
        let (_, flags) = parsed(&["orphanage"]);
        assert!(flags.is_empty(), "{flags:?}");
    }

    #[rstest]
    #[case(&["orphanage", "--format", "ktap", "zombie::"], &["orphanage", "zombie::"], true)]
    #[case(&["orphanage", "--format=ktap"], &["orphanage"], true)]
    #[case(&["orphanage", "--format", "json"], &["orphanage", "--format", "json"], false)]
    #[case(&["orphanage", "--", "--format", "ktap"], &["orphanage", "--", "--format", "ktap"], false)]
    fn ktap_is_taken_out_before_clap(
        #[case] args: &[&str],
        #[case] left: &[&str],
        #[case] ktap: bool,
    ) {
        let (out, found) = take_format_ktap(args.iter().map(Into::into).collect());
        assert_eq!(
            out,
            left.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        );
        assert_eq!(found, ktap);
    }
}
