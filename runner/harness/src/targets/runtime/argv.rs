//! Command lines for an OCI runtime's CLI (runc, crun and youki share it).
//! Every verb runs with `--root` pointing at orphanage's private state
//! directory, so a run never sees or touches the user's own containers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCli {
    pub program: PathBuf,
    /// The runtime's state directory (`--root`).
    pub root: PathBuf,
}

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

impl RuntimeCli {
    fn verb(&self, rest: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
        let mut argv = os(&[&"--root", &self.root]);
        argv.extend(os(rest));
        argv
    }

    /// `create`, passing fd 3 (the agent's event pipe) through to the container.
    pub fn create(&self, id: &str, bundle: &Path) -> Vec<OsString> {
        self.verb(&[
            &"create",
            &"--preserve-fds",
            &"1",
            &"--bundle",
            &bundle,
            &id,
        ])
    }

    pub fn start(&self, id: &str) -> Vec<OsString> {
        self.verb(&[&"start", &id])
    }

    pub fn state(&self, id: &str) -> Vec<OsString> {
        self.verb(&[&"state", &id])
    }

    /// `kill [--all] ID SIGNAL`, the signal by name without its SIG prefix, as runc's tests write it.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Vec<OsString> {
        let signal = signal.strip_prefix("SIG").unwrap_or(signal);
        if all {
            self.verb(&[&"kill", &"--all", &id, &signal])
        } else {
            self.verb(&[&"kill", &id, &signal])
        }
    }

    pub fn delete(&self, id: &str, force: bool) -> Vec<OsString> {
        if force {
            self.verb(&[&"delete", &"--force", &id])
        } else {
            self.verb(&[&"delete", &id])
        }
    }

    /// `--version` needs no state directory.
    pub fn version(&self) -> Vec<OsString> {
        os(&[&"--version"])
    }
}

/// Whether `state` of an unknown container answered as OCI runtimes do:
/// a non-zero exit whose message says the container does not exist.
pub fn answers_unknown_state(exit_ok: bool, stderr: &str) -> bool {
    let message = stderr.to_ascii_lowercase();
    !exit_ok
        && ["does not exist", "not exist", "not found", "no such"]
            .iter()
            .any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn cli() -> RuntimeCli {
        RuntimeCli {
            program: "/usr/sbin/runc".into(),
            root: "/tmp/o/state".into(),
        }
    }

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn create_preserves_the_event_fd() {
        assert_eq!(
            strs(cli().create("orphanage-1-2", Path::new("/tmp/o/b"))),
            [
                "--root",
                "/tmp/o/state",
                "create",
                "--preserve-fds",
                "1",
                "--bundle",
                "/tmp/o/b",
                "orphanage-1-2"
            ]
        );
    }

    #[rstest]
    #[case("SIGKILL", true, &["--root", "/tmp/o/state", "kill", "--all", "c", "KILL"])]
    #[case("SIGTERM", false, &["--root", "/tmp/o/state", "kill", "c", "TERM"])]
    fn kill_names_the_signal_without_prefix(
        #[case] signal: &str,
        #[case] all: bool,
        #[case] expected: &[&str],
    ) {
        assert_eq!(strs(cli().kill("c", signal, all)), expected);
    }

    #[rstest]
    #[case(true, &["--root", "/tmp/o/state", "delete", "--force", "c"])]
    #[case(false, &["--root", "/tmp/o/state", "delete", "c"])]
    fn delete_forces_only_when_asked(#[case] force: bool, #[case] expected: &[&str]) {
        assert_eq!(strs(cli().delete("c", force)), expected);
    }

    #[test]
    fn version_and_state() {
        assert_eq!(strs(cli().version()), ["--version"]);
        assert_eq!(
            strs(cli().state("c")),
            ["--root", "/tmp/o/state", "state", "c"]
        );
        assert_eq!(
            strs(cli().start("c")),
            ["--root", "/tmp/o/state", "start", "c"]
        );
    }

    #[rstest]
    #[case(
        false,
        "time=\"...\" level=error msg=\"container does not exist\"",
        true
    )]
    #[case(false, "Error: container `x` not found", true)]
    #[case(false, "cannot open: No such file or directory", true)]
    #[case(true, "container does not exist", false)]
    #[case(false, "Usage: foo [OPTIONS]", false)]
    fn unknown_state_answers(#[case] ok: bool, #[case] stderr: &str, #[case] expected: bool) {
        assert_eq!(answers_unknown_state(ok, stderr), expected);
    }
}
