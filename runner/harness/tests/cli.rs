//! The command line never lies about what ran: every flag works or is refused
//! with one line and exit 2 before anything runs, --version and help answer,
//! and a closed stdout ends the run quietly. README's bad-input table lists
//! the same cases.

mod common;

use common::{orphanage, repo};
use rstest::rstest;
use std::io::Read;
use std::process::Stdio;

#[rstest]
#[case::test_threads_zero(&["--test-threads", "0"], "--test-threads must be at least 1")]
#[case::ignored(&["--ignored"], "--ignored runs only trials marked ignored")]
#[case::bench(&["--bench"], "--bench: the scenarios are tests")]
#[case::unknown_flag(&["--bogus"], "unexpected argument '--bogus' found (see --help)")]
#[case::bad_accel(&["--accel", "foo"], "invalid value 'foo' for '--accel <ACCEL>'")]
#[case::zero_vm_cpus(&["--vm-cpus", "0"], "invalid value '0' for '--vm-cpus <N>'")]
#[case::check_matching_nothing(&["--check", "nomatch"], "no scenario in")]
#[case::runtime_root_alone(&["--runtime-root", "/tmp"], "--runtime-root keeps a runtime's state: it needs --runtime")]
#[case::report_with_explore(&["--report", "/tmp/orphanage-never.json", "explore"], "explore writes no report")]
#[case::report_with_list(&["--list", "--report", "/tmp/orphanage-never.json"], "--list runs nothing")]
#[case::ktap_with_check(&["--check", "--format", "ktap"], "--format ktap reports scenario runs")]
#[case::unwritable_report(&["--report", "/no/such/dir/r.json"], "cannot write report /no/such/dir/r.json: No such file or directory (os error 2)")]
#[case::missing_kernels_file(&["--kernels", "/no/such/kernels.yaml"], "/no/such/kernels.yaml: No such file or directory (os error 2)")]
fn bad_flags_are_one_line_and_exit_2(#[case] args: &[&str], #[case] says: &str) {
    let out = orphanage()
        .args(args)
        .current_dir(repo())
        .env_remove("RUNTIME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
    assert_eq!(
        stderr.matches("os error").count(),
        says.matches("os error").count(),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!std::path::Path::new("/tmp/orphanage-never.json").exists());
}

#[rstest]
#[case(&["--version"])]
#[case(&["-V"])]
fn version_is_printed(#[case] args: &[&str]) {
    let out = orphanage().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("orphanage {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_names_the_kernels_command_and_explains_it() {
    let out = orphanage().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    // The column width follows the longest command name (`runtimes`).
    let names = |command: &str, what: &str| {
        help.lines().any(|l| {
            l.trim_start()
                .strip_prefix(command)
                .is_some_and(|rest| rest.starts_with(' ') && rest.trim_start().starts_with(what))
        })
    };
    assert!(names("kernels", "Manage the kernels"), "{help}");
    assert!(names("runtimes", "Container runtimes"), "{help}");
    let out = orphanage().args(["help", "kernels"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{help}");
    assert!(
        help.contains("Usage: orphanage kernels <COMMAND>"),
        "{help}"
    );
}

#[test]
fn check_with_a_filter_counts_what_it_selects_and_checks_every_file() {
    let out = orphanage()
        .args(["--check", "zombie::"])
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("filtered out; every file was checked"),
        "{stdout}"
    );
}

/// `orphanage | head -0`: the reader is gone before the first line.
/// orphanage stops, cleans up and exits as a process killed by SIGPIPE does,
/// without a panic. (The reader closes first so that the write surely fails:
/// the whole run's output would fit in a pipe's buffer.)
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let mut child = orphanage()
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
