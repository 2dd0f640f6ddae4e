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
#[case::ktap_with_explore(&["--format", "ktap", "explore"], "--format ktap reports scenario runs: it cannot be used with explore")]
#[case::unwritable_explore_report(&["--report", "/no/such/dir/r.json", "explore"], "cannot write report /no/such/dir/r.json: No such file or directory (os error 2)")]
#[case::report_with_list(&["--list", "--report", "/tmp/orphanage-never.json"], "--list runs nothing")]
#[case::ktap_with_check(&["--check", "--format", "ktap"], "--format ktap reports scenario runs")]
#[case::unwritable_report(&["--report", "/no/such/dir/r.json"], "cannot write report /no/such/dir/r.json: No such file or directory (os error 2)")]
#[case::unknown_shell(&["completions", "nosuch"], "invalid value 'nosuch' for '<SHELL>' (see --help)")]
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
    for (command, says) in [
        ("kernels", "Manage the kernels"),
        ("completions", "Print the completion script"),
        ("man", "Print orphanage(1)"),
        ("install", "Install orphanage, its man page"),
        ("runtimes", "Container runtimes"),
    ] {
        assert!(
            help.lines().any(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(command) && l.contains(says)
            }),
            "{help}"
        );
    }
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

/// Several positional filters select what any of them selects, as in cargo
/// test, with --list, --check, --exact and --skip alike.
#[rstest]
#[case::list(&["--list", "subreaper::", "zombie::"], &["subreaper::", "zombie::"])]
#[case::list_skip(&["--list", "subreaper::", "zombie::", "--skip", "zombie::zombie_"], &["subreaper::", "zombie::"])]
#[case::list_exact(&["--list", "--exact", "zombie::zombie_stays_until_waited", "subreaper::nearest_ancestor_adopts"], &["zombie::zombie_stays_until_waited", "subreaper::nearest_ancestor_adopts"])]
fn several_filters_select_what_any_selects(#[case] args: &[&str], #[case] areas: &[&str]) {
    let listed = |args: &[&str]| -> Vec<String> {
        let out = orphanage()
            .args(args)
            .current_dir(repo())
            .env_remove("RUNTIME")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_string)
            .collect()
    };
    let all = listed(&["--list"]);
    let skip = args
        .iter()
        .position(|a| *a == "--skip")
        .map(|i| args[i + 1]);
    let exact = args.contains(&"--exact");
    let want: Vec<String> = all
        .iter()
        .filter(|n| {
            areas
                .iter()
                .any(|a| if exact { *n == a } else { n.contains(a) })
        })
        .filter(|n| skip.is_none_or(|s| !n.contains(s)))
        .cloned()
        .collect();
    assert!(
        want.len() >= 2 && want.len() < all.len(),
        "{args:?}: {want:?}"
    );
    assert_eq!(listed(args), want, "{args:?}");
}

#[test]
fn several_filters_count_at_check_and_run_both() {
    let out = orphanage()
        .args(["--check", "subreaper::", "zombie::"])
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let count = |area: &str| {
        std::fs::read_dir(repo().join("suites").join(area))
            .unwrap()
            .count()
    };
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{} scenarios in suites are valid",
            count("subreaper") + count("zombie")
        )),
        "{stdout}"
    );
    let out = orphanage()
        .args([
            "--exact",
            "zombie::zombie_stays_until_waited",
            "subreaper::nearest_ancestor_adopts",
        ])
        .current_dir(repo())
        .env_remove("RUNTIME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for name in [
        "zombie::zombie_stays_until_waited",
        "subreaper::nearest_ancestor_adopts",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("test {name} ")) && l.ends_with("... ok")),
            "{stdout}"
        );
    }
    let total: usize = std::fs::read_dir(repo().join("suites"))
        .unwrap()
        .flatten()
        .filter(|a| a.path().is_dir())
        .map(|a| std::fs::read_dir(a.path()).unwrap().count())
        .sum();
    assert!(
        stdout.contains(&format!(
            "2 passed; 0 failed; 0 ignored; 0 measured; {} filtered out",
            total - 2
        )),
        "{stdout}"
    );
}

/// One command installs orphanage, its man page and its completions, each
/// where its reader looks; the installed copy runs on its own.
#[test]
fn install_puts_orphanage_its_man_page_and_completions_under_the_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let out = orphanage()
        .args(["install", "--prefix"])
        .arg(prefix.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let man = std::fs::read_to_string(prefix.path().join("share/man/man1/orphanage.1")).unwrap();
    assert!(man.contains(".SH SYNOPSIS"), "{man}");
    let bash = std::fs::read_to_string(
        prefix
            .path()
            .join("share/bash-completion/completions/orphanage"),
    )
    .unwrap();
    assert!(bash.contains("--runtime-arg"), "{bash}");
    for shell in [
        "share/zsh/site-functions/_orphanage",
        "share/fish/vendor_completions.d/orphanage.fish",
    ] {
        assert!(prefix.path().join(shell).is_file(), "{shell}");
    }
    let installed = std::process::Command::new(prefix.path().join("bin/orphanage"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&installed.stdout).trim(),
        format!("orphanage {}", env!("CARGO_PKG_VERSION"))
    );
    // What `completions` and `man` print is what was installed.
    let printed = orphanage().args(["completions", "bash"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&printed.stdout), bash);
    let printed = orphanage().arg("man").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&printed.stdout), man);
}

/// The code in a README table cell: `x`, or `` x `with` ticks ``.
fn code_of(cell: &str) -> Option<&str> {
    let cell = cell.trim();
    cell.strip_prefix("`` ")
        .and_then(|c| c.strip_suffix(" ``"))
        .or_else(|| cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')))
}

/// The rows of the README table after `marker`, as their cells' code.
fn readme_rows(marker: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let rows: Vec<Vec<String>> = readme
        .lines()
        .skip_while(|l| !l.starts_with(marker))
        .skip(3) // the marker, the header, the rule
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| code_of(c).unwrap_or(c.trim()).to_string())
                .collect()
        })
        .collect();
    assert!(rows.len() >= 10, "README lost its table after {marker}");
    rows
}

/// README's bad-input table is true: each command line exits 2 with one line
/// that says what its row says, and runs nothing.
#[test]
fn every_row_of_readmes_bad_input_table_is_true() {
    for row in readme_rows("<!-- bad-input table") {
        let (args, says) = (&row[0], &row[1]);
        let out = orphanage()
            .args(args.split_whitespace())
            .current_dir(repo())
            .env_remove("RUNTIME")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args}: {stderr}");
        assert!(
            stderr.contains(says.as_str()),
            "{args}: {stderr}\nREADME says: {says}"
        );
        assert!(out.stdout.is_empty(), "{args}: ran something");
    }
    assert!(!std::path::Path::new("/tmp/orphanage-never.json").exists());
}

/// README's table of bad files quotes each fixture's own line.
#[test]
fn every_row_of_readmes_bad_file_table_quotes_its_fixture() {
    for row in readme_rows("<!-- bad-file table") {
        let (file, says) = (&row[1], &row[2]);
        let text = std::fs::read_to_string(repo().join("fixtures/malformed").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let expect = text.lines().next().unwrap();
        let (_, message) = expect
            .strip_prefix("# expect: ")
            .and_then(|e| e.split_once(' '))
            .unwrap_or_else(|| panic!("{file}: {expect}"));
        assert!(
            message.starts_with(says.as_str()),
            "{file}: {message}\nREADME says: {says}"
        );
    }
}
