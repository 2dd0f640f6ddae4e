//! Flags that would be quietly ignored, or that pick targets that cannot go
//! together, are refused before anything runs (exit 2).

use crate::cli;

/// Flags that would be quietly ignored, or would run nothing, are refused
/// before anything runs.
pub fn check_flags(cli: &cli::Cli) -> anyhow::Result<()> {
    if cli.test.test_threads == Some(0) {
        anyhow::bail!("--test-threads must be at least 1");
    }
    if cli.test.ignored {
        anyhow::bail!("--ignored runs only trials marked ignored ahead of time, and orphanage marks none (unsupported is decided by probing at run time): nothing would run");
    }
    if cli.test.bench {
        anyhow::bail!("--bench: the scenarios are tests, not benchmarks (figures come from `cargo bench -p orphanage`): nothing would run");
    }
    if cli.vm_results.is_some() && cli.kernel.is_none() {
        anyhow::bail!("--vm-results says how a VM reports: it needs --kernel (a kernels file says it per kernel, with `results:`)");
    }
    // Flags for a container runtime mean nothing without one, --check included.
    let no_runtime =
        cli.runtimes.is_empty() && std::env::var_os("RUNTIME").is_none_or(|r| r.is_empty());
    if cli.runtime_root.is_some() && no_runtime {
        anyhow::bail!("--runtime-root keeps a runtime's state: it needs --runtime");
    }
    if cli.init.is_some() && no_runtime {
        anyhow::bail!("--init puts an init program in a container: it needs --runtime");
    }
    if !cli.runtime_args.is_empty() && no_runtime {
        anyhow::bail!("--runtime-arg passes a flag to a container runtime: it needs --runtime");
    }
    let explore = matches!(cli.command, Some(cli::Command::Explore(_)));
    if explore && cli.kernels.is_some() {
        // Else the matrix file is ignored and the trees run on this kernel.
        anyhow::bail!("explore checks its trees on one target: give one kernel with --kernel (a kernels file is a matrix of suite runs)");
    }
    if (cli.test.list || cli.check || explore) && cli.baseline.is_some() {
        anyhow::bail!("--baseline compares a suite run's results with an earlier one: --list, --check and explore give none to compare");
    }
    Ok(())
}

/// `--no-pid-namespace` runs on this kernel (or a VM's): containers bring
/// their own pid namespaces, and a matrix gives each kernel its own knobs.
pub fn no_pid_namespace_conflict(cli: &cli::Cli) -> Option<&'static str> {
    if !cli.no_pid_namespace {
        return None;
    }
    let runtime = !cli.runtimes.is_empty() || std::env::var("RUNTIME").is_ok_and(|r| !r.is_empty());
    if runtime {
        return Some("--no-pid-namespace runs scenarios under a subreaper root on this kernel; containers bring their own pid namespaces: drop --runtime (or $RUNTIME)");
    }
    if cli.kernels.is_some() {
        return Some("--no-pid-namespace with --kernels: give it to each kernel of the matrix file instead, as `cmdline: -- subreaper-root`");
    }
    None
}
