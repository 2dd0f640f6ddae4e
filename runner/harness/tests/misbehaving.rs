//! Misbehaving inits and runtimes for the runtime areas that tests/runtime.rs
//! leaves to this file: `init_program`, `container_init` and `shim`, and the
//! `kill_race` scenarios whose init must die alone (issue 16). Each defect
//! must be caught as a fail by exactly the scenarios that should catch it,
//! and the rest must pass.
//!
//! The inits are small C programs in fixtures/runtime/misbehaving/inits/,
//! built here with `gcc -static` (the container's rootfs holds no library),
//! each breaking one promise of the same skeleton (`init.h`); the skeleton
//! without a defect (`well-behaved`) is the control. The runtimes are shell
//! wrappers around runc in fixtures/runtime/misbehaving/.
//!
//! Without runc or gcc these are ignored, naming what is missing;
//! ORPHANAGE_REQUIRE_ALL=1 (as in CI) turns that into a failure.

mod common;

use common::{check, orphanage, processes_of, repo};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Trials take turns: each runs containers and scans every process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A trial of a misbehaving target: one at a time, for each counts what is
/// left on the machine.
fn needs(
    name: &str,
    programs: &[&'static str],
    body: impl Fn() -> Result<(), Failed> + Send + 'static,
) -> Trial {
    common::needs(name, programs, Some(&ONE_AT_A_TIME), body)
}

/// Builds fixtures/runtime/misbehaving/`source` statically as `dir/name`.
fn build(source: &str, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(repo().join("fixtures/runtime/misbehaving").join(source))
        .status()
        .unwrap();
    assert!(status.success(), "gcc {source}: {status}");
    out
}

/// One scenario's result: (name without the target's prefix, outcome, reason).
type Outcome = (String, String, String);

/// Runs orphanage with `args` (a runtime among them) with its own TMPDIR and
/// runtime state, and checks that it left nothing: no process in its
/// containers' cgroups, no container in runc's state, no temporary file.
fn run_isolated(args: &[&str], env: &[(&str, &Path)]) -> Result<Vec<Outcome>, Failed> {
    let dir = tempfile::tempdir().unwrap();
    let (tmp, state, report) = (
        dir.path().join("tmp"),
        dir.path().join("state"),
        dir.path().join("report.json"),
    );
    std::fs::create_dir(&tmp).unwrap();
    std::fs::create_dir(&state).unwrap();
    let mut command = orphanage();
    command
        .current_dir(repo())
        .env("TMPDIR", &tmp)
        .arg("--runtime-root")
        .arg(&state)
        .arg("--report")
        .arg(&report)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    let harness = child.id();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let left = processes_of(harness);
    check(left.is_empty(), || {
        format!("processes left behind: {left:#?}")
    })?;
    let containers = std::process::Command::new("runc")
        .arg("--root")
        .arg(state.join("state-0"))
        .args(["list", "--quiet"])
        .output()
        .unwrap();
    check(containers.stdout.is_empty(), || {
        format!(
            "containers left: {}",
            String::from_utf8_lossy(&containers.stdout)
        )
    })?;
    let temps: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    check(temps.is_empty(), || {
        format!("temporary files left: {temps:?}")
    })?;
    let report: serde_json::Value = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| format!("no report: {stderr}"))?;
    Ok(report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let name = r["name"].as_str().unwrap_or("");
            (
                name.split_once(':').map_or(name, |(_, n)| n).to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
                r["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

/// Each result is what `expected` says of it: fail (with `reason_has` in
/// its reason, when given), unsupported, or else pass.
fn assert_outcomes(
    results: &[Outcome],
    fails: &[(&str, &str)],
    unsupported: &[&str],
) -> Result<(), Failed> {
    check(!results.is_empty(), || "no result".into())?;
    for (name, outcome, reason) in results {
        let (expected, needle) = if let Some((_, needle)) = fails.iter().find(|(f, _)| f == name) {
            ("fail", *needle)
        } else if unsupported.contains(&name.as_str()) {
            ("unsupported", "")
        } else {
            ("pass", "")
        };
        check(outcome == expected && reason.contains(needle), || {
            format!("{name} was {outcome} ({reason}), expected {expected} naming `{needle}`")
        })?;
    }
    for (name, _) in fails {
        check(results.iter().any(|(n, ..)| n == name), || {
            format!("{name} did not run: {results:#?}")
        })?;
    }
    Ok(())
}

/// The init_program area with init `source` under test (named `name`: not
/// one whose modes orphanage knows, so only child mode runs).
fn init_is_caught(source: &str, fails: &[(&str, &str)]) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let name = source.trim_start_matches("inits/").trim_end_matches(".c");
    program_under_init_is_caught(&build(source, dir.path(), name), fails)
}

/// The init_program area with the program `init` under test.
fn program_under_init_is_caught(init: &Path, fails: &[(&str, &str)]) -> Result<(), Failed> {
    let results = run_isolated(
        &[
            "--runtime",
            "runc",
            "--init",
            init.to_str().unwrap(),
            "init_program::",
        ],
        &[],
    )?;
    assert_outcomes(
        &results,
        fails,
        // No known group or subreaper flag for an init of that name.
        &[
            "init_program::group_mode_forwards_every_signal",
            "init_program::group_mode_reaches_the_group_not_escaped_sessions",
            "init_program::subreaper_mode_adopts_orphans",
        ],
    )
}

/// `wrapper` (fixtures/runtime/misbehaving/) as the runtime, on `filters`.
fn runtime_is_caught(
    wrapper: &str,
    filters: &[&str],
    env: &[(&str, &Path)],
    fails: &[(&str, &str)],
) -> Result<(), Failed> {
    let path = repo().join("fixtures/runtime/misbehaving").join(wrapper);
    // One run per filter: orphanage takes one, as libtest does.
    let mut results = vec![];
    for filter in filters {
        results.extend(run_isolated(
            &["--runtime", path.to_str().unwrap(), filter],
            env,
        )?);
    }
    assert_outcomes(&results, fails, &[])
}

/// Scenario `file` of suites/ as it was before issue 16 (`edits` undo what
/// strengthened it) passes under `runtime_args`: the defect it now catches
/// went unseen.
fn as_it_was_passes(
    file: &str,
    edits: &[(&str, &str)],
    runtime_args: &[&str],
) -> Result<(), Failed> {
    let mut text = std::fs::read_to_string(repo().join("suites").join(file)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{file} has no `{from}`");
        text = text.replace(from, to);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("fixture")).unwrap();
    std::fs::write(dir.path().join("fixture/as_it_was.yaml"), text).unwrap();
    let mut args = vec!["--suites", dir.path().to_str().unwrap()];
    args.extend_from_slice(runtime_args);
    assert_outcomes(&run_isolated(&args, &[])?, &[], &[])
}

fn misbehaving(name: &str) -> String {
    repo()
        .join("fixtures/runtime/misbehaving")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Without `namespace: caller` and the detaches, the init's death ended
/// everything, so a `kill --all` that signals the init only passed.
fn escaped_group_as_it_was_passes_kill_ignoring_all() -> Result<(), Failed> {
    as_it_was_passes(
        "container_init/escaped_group_killed_by_kill_all.yaml",
        &[
            ("namespace: caller\n", ""),
            ("  - detach: {by: leader}\n", ""),
            ("  - detach: {by: member}\n", ""),
            ("  - detach: {by: escaped}\n", ""),
        ],
        &["--runtime", &misbehaving("kill-ignores-all")],
    )
}

const PARENT_MISSING: &str =
    "expected the init program under test to be the agent's parent, observed none: getppid() is 0";

/// What catches an init that only execs its child.
const EXEC_ONLY_CAUGHT_BY: [(&str, &str); 4] = [
    ("init_program::forwards_signals_to_child", PARENT_MISSING),
    ("init_program::exits_with_childs_exit_code", PARENT_MISSING),
    ("init_program::reaps_orphaned_zombies", PARENT_MISSING),
    // The agent, PID 1 itself, ignores SIGTERM without a handler.
    (
        "init_program::exits_128_plus_signal",
        "expected the container's init to exit within 5s",
    ),
];

/// What command-line.sh makes of `argv`: globals, verb, and the verb's own
/// arguments, each as the wrappers see it.
fn split(argv: &[&str]) -> (String, String, Vec<String>) {
    let script = repo().join("fixtures/runtime/misbehaving/command-line.sh");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#". "$0"; split_command_line "$@"; shift "$shift_by"; echo "$globals"; echo "$verb"; for a; do echo "$a"; done"#)
        .arg(script)
        .args(argv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let globals = lines.next().unwrap().trim().to_string();
    let verb = lines.next().unwrap();
    (globals, verb, lines.collect())
}

/// The wrappers find the verb after any global flags, as the harness passes
/// them with `--runtime-arg`.
fn the_wrappers_find_the_verb_after_any_global_flags() -> Result<(), Failed> {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        split(&["--root", "/tmp/s", "kill", "--all", "c", "KILL"]),
        (
            "--root /tmp/s".into(),
            "kill".into(),
            own(&["--all", "c", "KILL"])
        )
    );
    assert_eq!(
        split(&[
            "--root",
            "/tmp/s",
            "--network=none",
            "--debug-log",
            "/tmp/l",
            "--debug",
            "delete",
            "--force",
            "c"
        ]),
        (
            "--root /tmp/s --network=none --debug-log /tmp/l --debug".into(),
            "delete".into(),
            own(&["--force", "c"])
        )
    );
    // No verb at all: nothing to shift, and the wrappers pass it through.
    assert_eq!(
        split(&["--version"]),
        ("--version".into(), String::new(), own(&["--version"]))
    );
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test(
            "the_wrappers_find_the_verb_after_any_global_flags",
            the_wrappers_find_the_verb_after_any_global_flags,
        ),
        needs(
            "a_well_behaved_init_passes_every_child_mode_scenario",
            &["runc", "gcc"],
            || init_is_caught("inits/well-behaved.c", &[]),
        ),
        needs(
            "an_init_that_only_execs_its_child_is_caught",
            &["runc", "gcc"],
            || init_is_caught("inits/exec-only.c", &EXEC_ONLY_CAUGHT_BY),
        ),
        // The issue's own example: env(1) execs the agent, which becomes PID 1.
        needs("env_as_the_init_is_caught", &["runc", "env"], || {
            let env = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("env"))
                .find(|p| p.is_file())
                .unwrap();
            program_under_init_is_caught(&env, &EXEC_ONLY_CAUGHT_BY)?;
            // Without the parent check and `from: init`, env passed.
            as_it_was_passes(
                "init_program/forwards_signals_to_child.yaml",
                &[
                    ("  - expect_parent: {of: agent, is: init}\n", ""),
                    (", from: init", ""),
                ],
                &["--runtime", "runc", "--init", env.to_str().unwrap()],
            )
        }),
        needs(
            "an_init_that_forwards_nothing_is_caught",
            &["runc", "gcc"],
            || {
                init_is_caught(
                    "inits/forwards-nothing.c",
                    &[
                        (
                            "init_program::forwards_signals_to_child",
                            "step 4 (expect_signal): ",
                        ),
                        (
                            "init_program::exits_128_plus_signal",
                            "expected the container's init to exit within 5s",
                        ),
                    ],
                )
            },
        ),
        needs(
            "an_init_that_reaps_nothing_is_caught",
            &["runc", "gcc"],
            || {
                init_is_caught(
                    "inits/reaps-nothing.c",
                    &[(
                        "init_program::reaps_orphaned_zombies",
                        "orphan's state: expected gone",
                    )],
                )
            },
        ),
        needs(
            "an_init_that_exits_with_the_wrong_status_is_caught",
            &["runc", "gcc"],
            || {
                init_is_caught(
                    "inits/wrong-exit-status.c",
                    &[
                        ("init_program::exits_128_plus_signal", "observed exited 0"),
                        (
                            "init_program::exits_with_childs_exit_code",
                            "observed exited 0",
                        ),
                    ],
                )
            },
        ),
        needs(
            "a_runtime_that_signals_only_the_init_is_caught_by_container_init",
            &["runc"],
            || {
                runtime_is_caught(
                    "kill-ignores-all",
                    &["container_init::"],
                    &[],
                    &[(
                        "container_init::escaped_group_killed_by_kill_all",
                        "expected every process gone within 5s, observed still alive",
                    )],
                )?;
                escaped_group_as_it_was_passes_kill_ignoring_all()
            },
        ),
        needs(
            "a_runtime_that_sends_sigkill_for_any_signal_is_caught",
            &["runc"],
            || {
                runtime_is_caught(
                    "kill-sends-sigkill",
                    &["container_init::", "shim::"],
                    &[],
                    &[
                        (
                            "container_init::sigterm_delivered_with_handler",
                            "observed the container's init killed by SIGKILL",
                        ),
                        (
                            "container_init::sigterm_ignored_without_handler",
                            "observed the container's init killed by SIGKILL",
                        ),
                    ],
                )
            },
        ),
        needs(
            "a_runtime_whose_kill_is_kill_all_is_caught",
            &["runc"],
            || {
                let never_alone =
                    "(expect_alive): expected worker, daemon still alive, observed gone";
                let nothing_killed = "expected every process gone within 5s, observed still alive";
                runtime_is_caught(
                    "kill-is-all",
                    &["kill_race::"],
                    &[],
                    &[
                        (
                            "kill_race::init_already_dead_delete_force_cleans_up",
                            never_alone,
                        ),
                        (
                            "kill_race::init_already_dead_kill_all_cleans_up",
                            never_alone,
                        ),
                        ("kill_race::kill_all_gone_by_kill0_polling", nothing_killed),
                        (
                            "kill_race::kill_all_in_private_pid_namespace",
                            nothing_killed,
                        ),
                        (
                            "kill_race::kill_all_reaches_escaped_sessions",
                            nothing_killed,
                        ),
                    ],
                )?;
                // Without expect_alive, the init never dying alone went unseen.
                as_it_was_passes(
                    "kill_race/init_already_dead_kill_all_cleans_up.yaml",
                    &[("  - expect_alive: {of: [worker, daemon]}\n", "")],
                    &["--runtime", &misbehaving("kill-is-all")],
                )
            },
        ),
        needs(
            "a_shim_that_never_reaps_the_init_is_caught",
            &["runc", "gcc"],
            || {
                let dir = tempfile::tempdir().unwrap();
                let holder = build("holds-the-init.c", dir.path(), "holds-the-init");
                let not_ours = "not the harness";
                runtime_is_caught(
                    "shim-never-reaps",
                    &["shim::", "container_init::"],
                    &[("ORPHANAGE_INIT_HOLDER", &holder)],
                    &[
                        ("shim::harness_adopts_and_reaps_the_init", not_ours),
                        ("shim::harness_reaps_init_exit_code", not_ours),
                        ("container_init::sigkill_from_runtime_kills_init", not_ours),
                    ],
                )
            },
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
