//! Bad input and broken environments, found before any scenario runs: a
//! runtime that is not there or does not answer as OCI runtimes do is bad
//! input (exit 2); a runtime that answers but cannot run a container here
//! stops the run with one line naming the cause.

use super::argv::{answers_unknown_state, hint_for, RuntimeCli};
use super::bundle::{is_dynamic_elf, InitUnderTest};
use super::command::bounded;
use super::container::{run_in_runtime, RuntimeTarget};
use orphanage_scenario::{Event, Namespace, Outcome, Scenario};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeError {
    #[error("runtime `{0}`: no such file")]
    Missing(String),
    #[error("runtime `{0}`: not found on PATH")]
    NotOnPath(String),
    #[error("runtime `{0}` is not an executable file")]
    NotExecutable(String),
    #[error("runtime `{0}` does not answer `--version` as an OCI runtime does: {1}")]
    NoVersion(String, String),
    #[error(
        "runtime `{0}` does not answer `state` of an unknown container as an OCI runtime does: {1}"
    )]
    NoState(String, String),
    #[error("init `{0}`: no such executable file")]
    InitMissing(String),
}

/// Why a runtime that answers cannot run a trivial container here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CannotRunHere {
    /// What the container's verdict said, and a fix where one is known.
    #[error("{reason}{}", hint.as_ref().map_or(String::new(), |h| format!("; {h}")))]
    Refused {
        reason: String,
        hint: Option<String>,
    },
    #[error("the trivial container ended without a verdict")]
    NoVerdict,
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A path (with a slash) or a name looked up on PATH, as a shell would.
pub fn resolve_runtime(arg: &str) -> Result<PathBuf, RuntimeError> {
    if arg.contains('/') {
        let p = PathBuf::from(arg);
        if !p.exists() {
            return Err(RuntimeError::Missing(arg.into()));
        }
        if !executable(&p) {
            return Err(RuntimeError::NotExecutable(arg.into()));
        }
        return Ok(std::path::absolute(&p).unwrap_or(p));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(arg))
        .find(|p| executable(p))
        .ok_or_else(|| RuntimeError::NotOnPath(arg.into()))
}

/// Checks that the program answers `--version` and `state` as OCI runtimes
/// do; returns the first line of its version.
pub fn check_runtime(cli: &RuntimeCli, arg: &str) -> Result<String, RuntimeError> {
    let limit = Duration::from_secs(10);
    let version = match bounded(&cli.program, &cli.version(), limit) {
        Ok(r) if r.ok && !r.output.is_empty() => r.output.lines().next().unwrap_or("").to_string(),
        Ok(r) => return Err(RuntimeError::NoVersion(arg.into(), first_line(&r.output))),
        Err(e) => return Err(RuntimeError::NoVersion(arg.into(), e.to_string())),
    };
    match bounded(
        &cli.program,
        &cli.state("orphanage-no-such-container"),
        limit,
    ) {
        Ok(r) if answers_unknown_state(r.ok, &r.output) => Ok(version),
        Ok(r) => Err(RuntimeError::NoState(arg.into(), first_line(&r.output))),
        Err(e) => Err(RuntimeError::NoState(arg.into(), e.to_string())),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "it printed nothing".into()
    } else {
        format!("it said `{line}`")
    }
}

/// The init under test: its file, and for a dynamically linked one the
/// host's library directories (or their merged-/usr symlinks) to mount.
pub fn resolve_init(arg: &str) -> Result<InitUnderTest, RuntimeError> {
    let path = resolve_runtime(arg).map_err(|_| RuntimeError::InitMissing(arg.into()))?;
    let bytes = std::fs::read(&path).map_err(|_| RuntimeError::InitMissing(arg.into()))?;
    let (mut library_dirs, mut library_links) = (vec![], vec![]);
    if is_dynamic_elf(&bytes) {
        for dir in ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] {
            let p = Path::new(dir);
            match std::fs::read_link(p) {
                Ok(target) => library_links.push((p.to_path_buf(), target)),
                Err(_) if p.is_dir() => library_dirs.push(p.to_path_buf()),
                Err(_) => {}
            }
        }
    }
    Ok(InitUnderTest {
        path,
        library_dirs,
        library_links,
    })
}

/// One trivial container: if the runtime cannot run it here, nothing else
/// will run either, and the cause is said once.
pub fn smoke_test(target: &RuntimeTarget, agent: &Path) -> Result<(), CannotRunHere> {
    let scenario = Scenario {
        checks: "the runtime can run a container here".into(),
        requires: vec![],
        refs: vec![],
        deadline: None,
        namespace: Namespace::Fresh,
        init_mode: None,
        steps: vec![],
    };
    let mut verdict = None;
    run_in_runtime(target, agent, &scenario, &mut |e| {
        if let Event::Finished { verdict: v, .. } = e {
            verdict = Some(v.clone());
        }
    });
    match verdict {
        Some(v) if v.outcome == Outcome::Pass => Ok(()),
        Some(v) => Err(CannotRunHere::Refused {
            hint: hint_for(&v.reason, &v2_mount(), &v2_controllers()),
            reason: v.reason,
        }),
        None => Err(CannotRunHere::NoVerdict),
    }
}

/// Where a hybrid layout's cgroup v2 hierarchy is mounted (not at /sys/fs/cgroup itself).
fn v2_mount() -> String {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map_or_else(|| "/sys/fs/cgroup/unified".into(), |f| f[1].to_string())
}

fn v2_controllers() -> String {
    std::fs::read_to_string(format!("{}/cgroup.controllers", v2_mount())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_unexecutable_runtimes_are_named() {
        assert_eq!(
            resolve_runtime("./no/such/runc"),
            Err(RuntimeError::Missing("./no/such/runc".into()))
        );
        assert_eq!(
            resolve_runtime("no-such-runtime-xyz"),
            Err(RuntimeError::NotOnPath("no-such-runtime-xyz".into()))
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runc");
        std::fs::write(&f, "").unwrap();
        let arg = f.to_str().unwrap();
        assert_eq!(
            resolve_runtime(arg),
            Err(RuntimeError::NotExecutable(arg.into()))
        );
    }

    #[test]
    fn a_program_that_is_no_runtime_is_refused() {
        // `sh --version` (dash) fails.
        let cli = RuntimeCli {
            program: "/bin/sh".into(),
            root: "/nonexistent".into(),
            global: vec![],
        };
        assert!(matches!(
            check_runtime(&cli, "sh"),
            Err(RuntimeError::NoVersion(..))
        ));
        // `echo` answers --version but not `state`.
        let cli = RuntimeCli {
            program: resolve_runtime("echo").unwrap(),
            root: "/nonexistent".into(),
            global: vec![],
        };
        assert!(matches!(
            check_runtime(&cli, "echo"),
            Err(RuntimeError::NoState(..))
        ));
    }
}
