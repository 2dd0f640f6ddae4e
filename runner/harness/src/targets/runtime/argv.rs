//! Command lines for an OCI runtime's CLI (runc, crun, youki and runsc share
//! it). Every verb runs with `--root` pointing at orphanage's private state
//! directory, so a run never sees or touches the user's own containers, then
//! the runtime's global flags (the ones it needs here, and `--runtime-arg`s).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCli {
    pub program: PathBuf,
    /// The runtime's state directory (`--root`).
    pub root: PathBuf,
    /// Global flags given to every verb, after `--root`: `known_global_args`
    /// and then the user's `--runtime-arg`s.
    pub global: Vec<OsString>,
}

/// The global flags a known runtime needs on a typical host, as
/// `bundle::init_flags` knows each init program's. runsc (gVisor) refuses to
/// set up a network in the host's network namespace ("cannot run with
/// network enabled in root network namespace"), and orphanage's bundles
/// have no network namespace: `--network=none`, which every verb needs
/// (`start` sets the network up, not `create`). Run by a user other than
/// root, runsc cannot make its cgroups ("configuring cgroup: mkdir …:
/// permission denied") unless told `--rootless`. runc, crun and youki need
/// nothing.
pub fn known_global_args(program_name: &str, as_root: bool) -> Vec<&'static str> {
    match (program_name, as_root) {
        ("runsc", true) => vec!["--network=none"],
        ("runsc", false) => vec!["--network=none", "--rootless"],
        _ => vec![],
    }
}

/// Whether a runtime's foreground `run` can miss its init's exit, by the
/// first line of its `--version`. youki's (0.7.0 here) blocks its signals
/// only once the container has started: a SIGCHLD that comes before that is
/// lost, and its `run` waits for good with a zombie for an init (2 of 96
/// scenarios here, and bare runs of it too). Its foreground `run` is sent
/// the SIGCHLD it missed (`foreground::SigchldNudge`).
pub fn foreground_run_loses_sigchld(version: &str) -> bool {
    version.trim_start().starts_with("youki")
}

/// The global flags for a runtime: the known ones, then the user's (which
/// come last, so that one of them can override a known one, as Go's flag
/// package and runc's both let the last occurrence win).
pub fn global_args(program_name: &str, as_root: bool, user: &[String]) -> Vec<OsString> {
    known_global_args(program_name, as_root)
        .into_iter()
        .map(OsString::from)
        .chain(user.iter().map(OsString::from))
        .collect()
}

/// The platform a runtime runs its sandbox on: the last `--platform=X` among
/// its global flags; for runsc without one, its default as its own `runsc
/// flags` output (`runsc_flags`) states it, which changed between releases
/// (ptrace in 2022-12, systrap by 2024-07), and ptrace when it does not
/// say. Empty for a runtime that has no platforms.
pub fn platform(cli: &RuntimeCli, runsc_flags: &str) -> String {
    let given = cli
        .global
        .iter()
        .filter_map(|a| a.to_str()?.strip_prefix("--platform=").map(String::from))
        .next_back();
    let is_runsc = cli.program.file_name().is_some_and(|n| n == "runsc");
    given.unwrap_or_else(|| {
        if is_runsc {
            default_platform(runsc_flags).unwrap_or_else(|| "ptrace".into())
        } else {
            String::new()
        }
    })
}

/// The default in `runsc flags`' entry for `-platform` (Go's flag package:
/// `  -platform string` then its usage, ending `(default "ptrace")`).
pub fn default_platform(runsc_flags: &str) -> Option<String> {
    let mut lines = runsc_flags.lines();
    lines.find(|l| l.trim() == "-platform string")?;
    let usage = lines.next()?;
    let rest = &usage[usage.rfind("(default \"")? + "(default \"".len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// What to try when a runtime cannot create a container here and said why:
/// a flag orphanage cannot guess, or a fix of the machine. `v2_controllers`
/// is what the hybrid layout's cgroup v2 hierarchy holds (its
/// `cgroup.controllers`, at `v2_mount`). None for a cause it does not know.
pub fn hint_for(runtime_output: &str, v2_mount: &str, v2_controllers: &str) -> Option<String> {
    let said = runtime_output.to_ascii_lowercase();
    if said.contains("cannot run with network enabled in root network namespace") {
        Some("try `--runtime-arg=--network=none`".into())
    } else if said.contains("cgroups in hybrid mode not supported") {
        let controllers: Vec<&str> = v2_controllers.split_whitespace().collect();
        let names = if controllers.is_empty() {
            vec!["hugetlb"]
        } else {
            controllers
        };
        let fix: Vec<String> = names
            .iter()
            .map(|c| {
                format!("mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}")
            })
            .collect();
        Some(format!(
            "the cause: {} attached to the cgroup v2 hierarchy at {v2_mount}, which crun refuses \
             on a hybrid layout; the fix, as root and with no cgroup using it, attaches it to a v1 \
             hierarchy instead: `{}`",
            names.join(", "),
            fix.join(" && ")
        ))
    } else if said.contains("rootless")
        || (said.contains("configuring cgroup") && said.contains("permission denied"))
    {
        Some(
            "try `--runtime-arg=--rootless` (and `--runtime-arg=--ignore-cgroups` without cgroup delegation)"
                .into(),
        )
    } else if said.contains("/dev/kvm") {
        Some("try `--runtime-arg=--platform=ptrace`".into())
    } else {
        None
    }
}

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

impl RuntimeCli {
    fn verb(&self, rest: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
        let mut argv = os(&[&"--root", &self.root]);
        argv.extend(self.global.iter().cloned());
        argv.extend(os(rest));
        argv
    }

    /// `run --detach`: creates and starts the container in one start of the
    /// runtime, and returns once it runs. No `--preserve-fds` (runsc has
    /// none): the agent's events come on the container's stdout, which every
    /// runtime passes through. The init's pid goes to `pid_file` (runc, crun,
    /// youki and runsc all take `--pid-file`). The harness can still pin the
    /// container's processes before anything happens in it: the agent does
    /// nothing until the scenario comes on its stdin.
    pub fn run_detached(&self, id: &str, bundle: &Path, pid_file: &Path) -> Vec<OsString> {
        self.verb(&[
            &"run",
            &"--detach",
            &"--bundle",
            &bundle,
            &"--pid-file",
            &pid_file,
            &id,
        ])
    }

    /// `run` in the foreground: creates and starts the container like `run
    /// --detach`, then stays until the container's init exits, and deletes
    /// the container itself, as a bare `run` does. The init's pid goes to
    /// `pid_file` once the container is made (runc writes it once the
    /// container's program has started: the agent then waits on its stdin).
    pub fn run_foreground(&self, id: &str, bundle: &Path, pid_file: &Path) -> Vec<OsString> {
        self.verb(&[&"run", &"--bundle", &bundle, &"--pid-file", &pid_file, &id])
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

    /// `--version` needs no state directory, nor any other flag.
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
            global: vec![],
        }
    }

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn run_detached_passes_no_extra_fds_and_asks_for_the_pid() {
        assert_eq!(
            strs(cli().run_detached(
                "orphanage-1-2",
                Path::new("/tmp/o/b"),
                Path::new("/tmp/o/b/init.pid")
            )),
            [
                "--root",
                "/tmp/o/state",
                "run",
                "--detach",
                "--bundle",
                "/tmp/o/b",
                "--pid-file",
                "/tmp/o/b/init.pid",
                "orphanage-1-2"
            ]
        );
    }

    #[rstest]
    #[case("runc version 1.1.5+ds1", false)]
    #[case("crun version 1.8.1", false)]
    #[case("runsc version release-20221212.0", false)]
    #[case("youki version: 0.7.0", true)]
    fn youki_alone_is_nudged_in_a_foreground_run(#[case] version: &str, #[case] loses: bool) {
        assert_eq!(foreground_run_loses_sigchld(version), loses);
    }

    #[test]
    fn run_in_the_foreground_is_run_without_detach() {
        assert_eq!(
            strs(cli().run_foreground(
                "orphanage-1-2",
                Path::new("/tmp/o/b"),
                Path::new("/tmp/o/b/init.pid")
            )),
            [
                "--root",
                "/tmp/o/state",
                "run",
                "--bundle",
                "/tmp/o/b",
                "--pid-file",
                "/tmp/o/b/init.pid",
                "orphanage-1-2"
            ]
        );
    }

    #[rstest]
    #[case("runsc", true, &[], &["--network=none"])]
    #[case("runsc", false, &[], &["--network=none", "--rootless"])]
    #[case("runsc", true, &["--platform=ptrace"], &["--network=none", "--platform=ptrace"])]
    #[case("runc", true, &[], &[])]
    #[case("runc", false, &[], &[])]
    #[case("crun", true, &["--debug"], &["--debug"])]
    #[case("youki", true, &[], &[])]
    fn global_args_are_the_known_then_the_users(
        #[case] name: &str,
        #[case] as_root: bool,
        #[case] user: &[&str],
        #[case] expected: &[&str],
    ) {
        let user: Vec<String> = user.iter().map(|s| s.to_string()).collect();
        assert_eq!(strs(global_args(name, as_root, &user)), expected);
    }

    #[test]
    fn every_verb_carries_the_global_flags_after_the_root() {
        let cli = RuntimeCli {
            global: global_args("runsc", true, &["--platform=ptrace".into()]),
            ..cli()
        };
        let expected_head = [
            "--root",
            "/tmp/o/state",
            "--network=none",
            "--platform=ptrace",
        ];
        for argv in [
            cli.run_detached("c", Path::new("/b"), Path::new("/b/init.pid")),
            cli.run_foreground("c", Path::new("/b"), Path::new("/b/init.pid")),
            cli.state("c"),
            cli.kill("c", "SIGKILL", true),
            cli.delete("c", true),
        ] {
            let argv = strs(argv);
            assert_eq!(argv[..4], expected_head, "{argv:?}");
        }
        assert_eq!(strs(cli.version()), ["--version"]);
    }

    #[rstest]
    #[case(
        "starting container: setting up network: cannot run with network enabled in root network namespace",
        Some("--runtime-arg=--network=none")
    )]
    #[case(
        "cgroups in hybrid mode not supported, drop all controllers from cgroupv2",
        Some("mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb")
    )]
    #[case("open /dev/kvm: no such file or directory", Some("--platform=ptrace"))]
    #[case(
        "creating container: cannot set up cgroup for root: configuring cgroup: mkdir /sys/fs/cgroup/hugetlb/u1: permission denied",
        Some("--runtime-arg=--rootless")
    )]
    #[case("cgroup setup refused: permission denied (pretend)", None)]
    fn hints_name_the_flag_or_fix(#[case] said: &str, #[case] names: Option<&str>) {
        match (hint_for(said, "/sys/fs/cgroup/unified", "hugetlb\n"), names) {
            (Some(hint), Some(part)) => assert!(hint.contains(part), "{hint}"),
            (None, None) => {}
            (hint, _) => panic!("{said}: {hint:?}"),
        }
    }

    #[test]
    fn the_platform_is_the_last_given_or_runscs_default() {
        let runsc = |global: &[&str]| RuntimeCli {
            program: "/usr/bin/runsc".into(),
            root: "/r".into(),
            global: global.iter().map(OsString::from).collect(),
        };
        // Each release's own words.
        let flags_2022 = "  -pod-init-config string\n    \tpath to configuration file\n  -platform string\n    \tspecifies which platform to use: ptrace (default), kvm. (default \"ptrace\")\n  -profile\n";
        let flags_2024 = "  -platform string\n    \tspecifies which platform to use: systrap (default), ptrace, kvm. (default \"systrap\")\n  -platform_device_path string\n";
        assert_eq!(platform(&runsc(&["--network=none"]), flags_2022), "ptrace");
        assert_eq!(platform(&runsc(&["--network=none"]), flags_2024), "systrap");
        assert_eq!(platform(&runsc(&[]), ""), "ptrace");
        assert_eq!(
            platform(
                &runsc(&["--platform=kvm", "--platform=systrap"]),
                flags_2022
            ),
            "systrap"
        );
        assert_eq!(platform(&cli(), flags_2024), "");
        assert_eq!(
            default_platform("  -platform_device_path string\n\tx (default \"y\")\n"),
            None
        );
    }

    #[test]
    fn the_crun_hint_names_each_controller_on_the_v2_hierarchy() {
        let said = "cgroups in hybrid mode not supported, drop all controllers from cgroupv2";
        let hint = hint_for(said, "/sys/fs/cgroup/unified", "hugetlb misc").unwrap();
        assert!(
            hint.contains(
                "hugetlb, misc attached to the cgroup v2 hierarchy at /sys/fs/cgroup/unified"
            ),
            "{hint}"
        );
        assert!(
            hint.contains("mount -t cgroup -o misc cgroup /sys/fs/cgroup/misc"),
            "{hint}"
        );
        assert!(!hint.contains('\n'));
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
