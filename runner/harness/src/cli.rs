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
    after_help = "Examples:\n  orphanage                          run the whole suite\n  orphanage subreaper::              run one area\n  orphanage --check                  validate every scenario file, run nothing\n  orphanage --report out.json        also write a JSON report\n  orphanage --list                   list scenario names\n  orphanage --runtime runc           run the suite in runc containers\n  orphanage --runtime runc --runtime ./youki --init tini\n                                     two runtimes side by side, tini under test\n  orphanage explore --cases 500      check 500 generated process trees against the reference model\n  orphanage --runtime runc explore   the same, each tree in a runc container\n  orphanage --kernel vmlinuz         boot that kernel in QEMU and run the suite inside it\n  orphanage kernels fetch            download the kernels of fixtures/kernels.yaml\n  orphanage --kernels fixtures/kernels.yaml   run the kernel matrix"
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

    /// Run the suite in containers made by this OCI runtime (a path, or a name
    /// on PATH). Repeat it to compare runtimes side by side. Without it, the
    /// RUNTIME environment variable is used if set; otherwise the host kernel.
    #[arg(long = "runtime", value_name = "RUNTIME")]
    pub runtimes: Vec<String>,

    /// Put this init program (tini, dumb-init, catatonit...) under test as the
    /// container's PID 1, for the `namespace: under_init` scenarios. Needs --runtime.
    #[arg(long, value_name = "PATH")]
    pub init: Option<String>,

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
    #[arg(long, value_name = "FILE", conflicts_with = "report")]
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

    /// Virtual CPUs per VM (init runs two scenarios per CPU at a time). Default: every core (at most 4) for a kernel run alone; in a matrix, the cores shared among the cells that run at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub vm_cpus: Option<u32>,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub test: libtest_mimic::Arguments,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Generate random process trees, run each on the target and compare what
    /// the kernel did with what a reference model of reparenting predicts. On
    /// a disagreement, shrink it to a minimal tree and save that as a scenario.
    Explore(crate::explore::ExploreArgs),
}

/// `orphanage kernels ...`: managing the matrix's kernels.
#[derive(Parser, Debug)]
#[command(
    name = "orphanage kernels",
    version,
    about = "Manage the kernels of the VM matrix."
)]
pub struct KernelsCli {
    #[command(subcommand)]
    pub command: KernelsCommand,
}

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
