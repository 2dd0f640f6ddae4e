//! The targets a command line picks (the host, runtimes), the agent they
//! run, and what must hold of them before the first scenario: a subreaper,
//! a runtime that can run a container here.

use crate::agent_binary::AgentBinary;
use crate::{cli, live, targets};
use anyhow::Context;

/// What `runsc flags` prints, which states runsc's default platform; empty
/// for another runtime (or a runsc that does not answer).
pub fn runsc_flags(cli: &targets::RuntimeCli) -> String {
    if cli.program.file_name().is_none_or(|n| n != "runsc") {
        return String::new();
    }
    // Go's flag package prints its defaults on stderr.
    std::process::Command::new(&cli.program)
        .arg("flags")
        .stdin(std::process::Stdio::null())
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

/// The verdict of a scenario this target cannot run at all.
pub fn unsupported(why: String) -> orphanage_scenario::Event {
    orphanage_scenario::Event::Finished {
        verdict: orphanage_scenario::Verdict::unsupported(why),
        steps_ms: 0.0,
    }
}

/// The agent for this run (`--agent`, or the embedded one written to a private directory).
pub fn agent_binary(cli: &cli::Cli) -> anyhow::Result<AgentBinary> {
    Ok(match &cli.agent {
        Some(p) if p.is_file() => AgentBinary::given(p),
        Some(p) => anyhow::bail!("{}: no such agent binary", p.display()),
        None => AgentBinary::materialize(|dir| live::remove_on_interrupt(dir.to_path_buf()))
            .context("cannot write the agent to a temporary directory")?,
    })
}

/// Makes the harness the subreaper of everything it starts, where the kernel
/// has subreapers. Only a runtime target cannot do without: it adopts each
/// container's init once the runtime's `run --detach` exits. On the host, cleanup
/// rests on pid namespaces, process groups and pidfds, and scenarios that
/// need a subreaper say so themselves. Some(line) when a target cannot run.
pub fn subreaper_missing_for(targets: &[targets::Target]) -> Option<String> {
    let refused = live::become_subreaper().err()?;
    targets.iter().find_map(|t| match t {
        targets::Target::Runtime(r) => Some(format!(
            "{} needs the harness to be a child subreaper, to adopt each container's init: prctl(PR_SET_CHILD_SUBREAPER): {}",
            r.label,
            orphanage_scenario::ErrnoName(refused)
        )),
        targets::Target::Host(_) | targets::Target::Vm(_) => None,
    })
}

/// The targets the command line asks for, checked before anything runs.
pub struct Chosen {
    pub targets: Vec<targets::Target>,
    /// Each runtime's `--version`, for the report.
    pub versions: Vec<String>,
    /// Bundles and runtime state; removed when dropped.
    pub work_dir: Option<tempfile::TempDir>,
}

/// `--runtime` (or $RUNTIME) and `--init`, each checked: the host when none is given.
pub fn choose_targets(cli: &cli::Cli) -> anyhow::Result<Chosen> {
    let runtime_args: Vec<String> = if cli.runtimes.is_empty() {
        // runtime-tools' and runc's tests name the runtime in $RUNTIME.
        std::env::var("RUNTIME")
            .ok()
            .filter(|r| !r.is_empty())
            .into_iter()
            .collect()
    } else {
        cli.runtimes.clone()
    };
    let init = cli.init.as_deref().map(targets::resolve_init).transpose()?;
    let runtimes: Vec<(String, std::path::PathBuf)> = runtime_args
        .iter()
        .map(|a| Ok((a.clone(), targets::resolve_runtime(a)?)))
        .collect::<anyhow::Result<_>>()?;
    // Bundles and the runtimes' state live here, removed at the end or on Ctrl-C.
    let work_dir = if runtimes.is_empty() {
        None
    } else {
        let dir = tempfile::Builder::new()
            .prefix("orphanage-runtime-")
            .tempdir()
            .context("cannot create a temporary directory for bundles")?;
        live::remove_on_interrupt(dir.path().to_path_buf());
        Some(dir)
    };
    let mut targets = Vec::new();
    let mut versions = Vec::new();
    for (i, (arg, program)) in runtimes.iter().enumerate() {
        let dir = work_dir.as_ref().expect("made above").path();
        let root = cli
            .runtime_root
            .as_deref()
            .unwrap_or(dir)
            .join(format!("state-{i}"));
        std::fs::create_dir_all(&root).context("cannot create the runtime state directory")?;
        let name = program
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let cli_ = targets::RuntimeCli {
            program: program.clone(),
            root,
            global: targets::runtime_global_args(
                &name,
                nix::unistd::geteuid().is_root(),
                &cli.runtime_args,
            ),
        };
        let version = targets::check_runtime(&cli_, arg)?;
        let nudge_foreground_run = targets::foreground_run_loses_sigchld(&version);
        versions.push(version);
        let mut label = program
            .file_name()
            .map_or("runtime".into(), |n| n.to_string_lossy().into_owned());
        if runtimes[..i]
            .iter()
            .any(|(_, p)| p.file_name() == program.file_name())
        {
            label = format!("{label}{}", i + 1);
        }
        if let Some(init) = &init {
            label = format!("{label}+{}", init.name());
        }
        targets.push(targets::Target::Runtime(targets::RuntimeTarget {
            label,
            cli: cli_,
            work_dir: dir.to_path_buf(),
            init: init.clone(),
            nudge_foreground_run,
        }));
    }
    if targets.is_empty() {
        targets.push(targets::Target::Host(targets::HostTarget {
            force_subreaper_root: cli.no_pid_namespace,
        }));
    }
    Ok(Chosen {
        targets,
        versions,
        work_dir,
    })
}

/// One trivial container per runtime: the first that cannot run here says why, once.
pub fn smoke_test_all(targets: &[targets::Target], agent: &std::path::Path) -> Option<String> {
    targets.iter().find_map(|t| match t {
        targets::Target::Runtime(r) => targets::smoke_test(r, agent)
            .err()
            .map(|why| format!("{} cannot run a container on this machine: {why}", r.label)),
        targets::Target::Host(_) | targets::Target::Vm(_) => None,
    })
}
