//! Every fail orphanage reports under gVisor, proven outside orphanage.
//!
//! For each difference, fixtures/repro/ holds a small C program that shows
//! it alone. It is built static with gcc and run natively and in a runc
//! container, where it must see what Linux promises, and in a runsc
//! container of each gVisor release, where it must see what that release
//! does instead. A reproducer that agreed with Linux everywhere, or that
//! broke, fails here. Each program prints one line: `linux: ...` (exit 0),
//! `differs: ...` (exit 1), or `setup: ...` (exit 2) when it could not even
//! set itself up (a release that lacks the feature: the scenarios are
//! unsupported there, and the line names the probe).
//!
//! And each scenario fixtures/expected/runsc.yaml lists as a fail must pass
//! under runc on the same host kernel, and have a reproducer here.
//!
//! Without gcc (or runc, runsc, tini) the trials that need it are ignored,
//! naming what is missing; with ORPHANAGE_REQUIRE_ALL=1 (as in CI) that is a
//! failure instead.

mod common;

use common::{cannot_run, check, orphanage, repo};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One difference between gVisor and Linux, and the program that shows it.
struct Repro {
    /// fixtures/repro/NAME.c
    name: &'static str,
    /// The scenarios that fail under runsc because of it.
    scenarios: &'static [&'static str],
    /// The program's line where Linux's promise holds.
    linux: &'static str,
    /// Its line under Debian 12's gVisor (2022-12): what differs, or the
    /// `setup:` line naming what that release lacks (its scenarios are
    /// unsupported there, not failed).
    gvisor_2022: &'static str,
    /// Its line under Debian 13's gVisor (2024-07, `runsc-trixie`).
    gvisor_2024: &'static str,
}

const REPROS: &[Repro] = &[
    Repro {
        name: "sigterm_ns_init",
        scenarios: &["container_init::sigterm_ignored_without_handler"],
        linux: "linux: the namespace init ignored SIGTERM without a handler",
        gvisor_2022: "differs: SIGTERM killed the namespace init",
        gvisor_2024: "differs: SIGTERM killed the namespace init",
    },
    Repro {
        name: "seal_future_write",
        scenarios: &[
            "memfd::seal_future_write_keeps_existing_mapping",
            "memfd::seal_future_write_private_mapping_is_cow",
        ],
        linux: "linux: pwrite and a shared writable mmap were refused with EPERM",
        gvisor_2022: "differs: the seal was accepted, but pwrite succeeded and a shared writable mmap succeeded",
        gvisor_2024: "differs: the seal was accepted, but pwrite succeeded and a shared writable mmap succeeded",
    },
    Repro {
        name: "clone_parent",
        scenarios: &[
            "sibling::clone_parent_child_is_sibling",
            // In 2022-12 clone3 is ENOSYS, so the scenario's fallback is this
            // clone; in 2024-07 it is clone3, whose reproducer shows the same.
            "sibling::clone3_or_clone_makes_a_sibling",
            "sibling::exit_signal_is_the_callers",
            "sibling::exit_signal_follows_non_sigchld_caller",
            // Unsupported in 2022-12 for want of subreapers; fails in 2024-07.
            "sibling::youki_sibling_init_stays_with_manager",
        ],
        linux: "linux: the child's parent is the caller's parent, and the caller's waitpid gets ECHILD",
        gvisor_2022: "differs: the child's parent is the caller, and the caller's waitpid(WNOHANG) returned 0",
        gvisor_2024: "differs: the child's parent is the caller, and the caller's waitpid(WNOHANG) returned 0",
    },
    Repro {
        name: "clone3_parent",
        scenarios: &[
            "sibling::clone3_child_is_sibling",
            "sibling::clone3_rejects_exit_signal",
        ],
        linux: "linux: an exit signal with CLONE_PARENT is refused with EINVAL, and the child's parent is the caller's parent",
        gvisor_2022: "setup: clone3: ENOSYS",
        gvisor_2024: "differs: clone3(CLONE_PARENT) with exit signal SIGUSR1 succeeded, and the child's parent is the caller",
    },
    Repro {
        name: "pdeathsig_thread_exit",
        scenarios: &["subreaper::pdeathsig_on_creating_thread_exit"],
        linux: "linux: SIGUSR1 came with si_pid the process's pid and si_code SI_USER",
        gvisor_2022: "differs: si_pid is the exiting thread's id, not its process's pid",
        gvisor_2024: "differs: si_pid is the exiting thread's id, not its process's pid",
    },
    Repro {
        name: "cleared_subreaper",
        scenarios: &["subreaper::cleared_subreaper_is_skipped"],
        linux: "linux: the orphan went to the outer subreaper, past the one that cleared its flag",
        gvisor_2022: "setup: prctl(PR_SET_CHILD_SUBREAPER): EINVAL",
        gvisor_2024: "differs: the orphan went to init, not the outer subreaper",
    },
];

/// How long one run of a reproducer may take: each ends in milliseconds,
/// so this bound only stops a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// A reproducer's trial; they may run side by side (each its own container).
fn needs(
    name: String,
    programs: &[&str],
    body: impl FnOnce() -> Result<(), Failed> + Send + 'static,
) -> Trial {
    common::needs(name, programs, None, body)
}

/// gVisor's 2024-07 runsc, where `orphanage runtimes fetch runsc-trixie` put it.
fn trixie_runsc() -> Option<PathBuf> {
    let out = orphanage()
        .args(["runtimes", "path", "runsc-trixie"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// A trial that needs gcc and the fetched runsc-trixie: ignored when it is
/// not fetched, a failure then with ORPHANAGE_REQUIRE_ALL=1.
fn needs_trixie(
    name: String,
    body: impl FnOnce(PathBuf) -> Result<(), Failed> + Send + 'static,
) -> Trial {
    match trixie_runsc() {
        Some(runsc) => needs(name, &["gcc"], move || body(runsc)),
        None => cannot_run(
            name,
            "runsc-trixie is not fetched (`orphanage runtimes fetch runsc-trixie`)".into(),
            "runsc-trixie not fetched".into(),
        ),
    }
}

/// gcc's command line for a static reproducer.
fn gcc_argv(source: &Path, out: &Path) -> Vec<String> {
    [
        "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string(), source.display().to_string()])
    .collect()
}

/// Builds fixtures/repro/NAME.c into `dir`.
fn build(name: &str, dir: &Path) -> Result<PathBuf, Failed> {
    let source = repo().join("fixtures/repro").join(format!("{name}.c"));
    let out = dir.join(name);
    let gcc = Command::new("gcc")
        .args(gcc_argv(&source, &out))
        .output()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    check(gcc.status.success(), || {
        format!(
            "gcc failed on {}: {}",
            source.display(),
            String::from_utf8_lossy(&gcc.stderr)
        )
    })?;
    Ok(out)
}

/// The bundle's config.json: the runtime target's template
/// (fixtures/runtime/config.json) running only `program`, as its init.
fn repro_config(template: &Value, program: &str) -> Value {
    let mut config = template.clone();
    config["process"]["args"] = json!([program]);
    config
}

/// Where the program sits in the bundle's rootfs.
const IN_ROOTFS: &str = "/repro";

/// `RUNTIME --root STATE [flags it needs] run --bundle BUNDLE ID`: runsc
/// refuses to run with the network on in the host's network namespace.
fn run_argv(runtime_name: &str, state: &Path, bundle: &Path, id: &str) -> Vec<String> {
    let mut argv = vec!["--root".to_string(), state.display().to_string()];
    if runtime_name == "runsc" {
        argv.push("--network=none".into());
    }
    argv.extend([
        "run".into(),
        "--bundle".into(),
        bundle.display().to_string(),
        id.into(),
    ]);
    argv
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `command` to its end (or kills it at the deadline), its output in files.
fn run_bounded(mut command: Command, dir: &Path) -> Result<Ran, Failed> {
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let deadline = Instant::now() + DEADLINE;
    let mut interval = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{command:?} still running after {DEADLINE:?}").into());
        }
        // A poll interval against the deadline, not a synchronisation point.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(20));
    };
    Ok(Ran {
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    })
}

/// The program's verdict line, checked against the one wanted, with its exit code.
fn judge(ran: &Ran, want: &str, how: &str) -> Result<(), Failed> {
    let want_code = match want.split_once(':').map(|(verdict, _)| verdict) {
        Some("linux") => 0,
        Some("differs") => 1,
        _ => 2,
    };
    check(
        ran.stdout.trim_end() == want && ran.code == Some(want_code),
        || {
            format!(
                "{how}: wanted `{want}` (exit {want_code}), got exit {:?}:\n{}{}",
                ran.code, ran.stdout, ran.stderr
            )
        },
    )
}

fn native(repro: &'static Repro) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let program = build(repro.name, dir.path())?;
    let ran = run_bounded(Command::new(&program), dir.path())?;
    judge(&ran, repro.linux, "natively")
}

/// In a container of `runtime` (a name on PATH or a path), which must leave
/// nothing behind: no container in its state, no process naming the bundle.
fn in_container(repro: &'static Repro, runtime: &str, want: &str) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let program = build(repro.name, dir.path())?;
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    for sub in ["proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy(&program, rootfs.join(IN_ROOTFS.trim_start_matches('/'))).unwrap();
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/runtime/config.json")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&repro_config(&template, IN_ROOTFS)).unwrap(),
    )
    .unwrap();
    let state = dir.path().join("state");
    // Unique on the machine: runtimes name cgroups after the container.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let id = format!(
        "orphanage-repro-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let name = Path::new(runtime)
        .file_name()
        .map_or(runtime.to_string(), |n| n.to_string_lossy().into_owned());
    let family = if name.starts_with("runsc") {
        "runsc"
    } else {
        name.as_str()
    };
    let mut command = Command::new(runtime);
    command.args(run_argv(family, &state, &bundle, &id));
    let ran = run_bounded(command, dir.path());
    // Whatever happened: the container goes, and nothing of it may be left.
    let _ = Command::new(runtime)
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .output();
    let left = Command::new(runtime)
        .arg("--root")
        .arg(&state)
        .args(["list", "--quiet"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    check(left.is_empty(), || {
        format!("{runtime} left containers: {left}")
    })?;
    let marker = bundle.display().to_string();
    let processes: Vec<String> = procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter(|p| {
            p.cmdline()
                .is_ok_and(|c| c.iter().any(|a| a.contains(&marker)))
        })
        .map(|p| format!("pid {}", p.pid))
        .collect();
    check(processes.is_empty(), || {
        format!("{runtime} processes left: {processes:?}")
    })?;
    judge(&ran?, want, &format!("under {runtime}"))
}

/// The scenarios fixtures/expected/runsc.yaml lists with `outcome: fail`.
fn listed_fails() -> Vec<String> {
    let path = repo().join("fixtures/expected/runsc.yaml");
    let file: Value = yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut fails = vec![];
    for entry in file["differences"].as_array().into_iter().flatten() {
        if entry["outcome"] != "fail" {
            continue;
        }
        if let Some(one) = entry["scenario"].as_str() {
            fails.push(one.to_string());
        }
        for many in entry["scenarios"].as_array().into_iter().flatten() {
            fails.extend(many.as_str().map(str::to_string));
        }
    }
    fails.sort();
    fails
}

/// Each listed fail has a reproducer, and each reproducer a listed fail.
fn every_listed_fail_has_a_reproducer() -> Result<(), Failed> {
    let listed = listed_fails();
    check(!listed.is_empty(), || "runsc.yaml lists no fail".into())?;
    let mut covered: Vec<String> = REPROS
        .iter()
        .flat_map(|r| r.scenarios.iter().map(|s| s.to_string()))
        .collect();
    covered.sort();
    check(covered == listed, || {
        format!("runsc.yaml's fails: {listed:#?}\nreproduced here: {covered:#?}")
    })?;
    let on_disk: Vec<String> = std::fs::read_dir(repo().join("fixtures/repro"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".c")
                .map(str::to_string)
        })
        .collect();
    for file in &on_disk {
        check(REPROS.iter().any(|r| r.name == file), || {
            format!("fixtures/repro/{file}.c is run by no trial")
        })?;
    }
    // The directory's README tells a reader which program shows which
    // scenario's difference: its table must be the one run here.
    let readme = std::fs::read_to_string(repo().join("fixtures/repro/README.md")).unwrap();
    let table = readme_table(&readme);
    let run: Vec<(String, Vec<String>)> = REPROS
        .iter()
        .map(|r| {
            let scenarios = r.scenarios.iter().map(|s| s.to_string()).collect();
            (format!("{}.c", r.name), scenarios)
        })
        .collect();
    check(table == run, || {
        format!("fixtures/repro/README.md's table: {table:#?}\nrun here: {run:#?}")
    })
}

/// The rows of the `| program | scenarios |` table: each program's file name
/// and the scenarios listed beside it, backquotes dropped.
fn readme_table(readme: &str) -> Vec<(String, Vec<String>)> {
    let unquote = |cell: &str| cell.trim().trim_matches('`').to_string();
    readme
        .lines()
        .skip_while(|line| !line.starts_with("| program | scenarios |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            let (program, scenarios) = line.trim_matches('|').split_once('|')?;
            let scenarios = scenarios.split(',').map(unquote).collect();
            Some((unquote(program), scenarios))
        })
        .collect()
}

/// Each scenario that fails under runsc passes under runc on this host
/// kernel, with the same init (tini): the fail is gVisor's, not orphanage's.
fn listed_fails_pass_under_runc() -> Result<(), Failed> {
    let listed = listed_fails();
    let dir = tempfile::tempdir().unwrap();
    let suites = dir.path().join("suites");
    for scenario in &listed {
        let (area, name) = scenario.split_once("::").unwrap();
        std::fs::create_dir_all(suites.join(area)).unwrap();
        std::fs::copy(
            repo()
                .join("suites")
                .join(area)
                .join(format!("{name}.yaml")),
            suites.join(area).join(format!("{name}.yaml")),
        )
        .unwrap();
    }
    let report = dir.path().join("report.json");
    let out = orphanage()
        .current_dir(repo())
        .env("TMPDIR", dir.path())
        .arg("--suites")
        .arg(&suites)
        .args(["--runtime", "runc", "--init", "tini", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(Value::Null);
    let results: Vec<(String, String)> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for scenario in &listed {
        let name = format!("runc+tini:{scenario}");
        check(
            results.iter().any(|(n, o)| *n == name && o == "pass"),
            || {
                format!(
                    "{name} did not pass: {results:#?}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            },
        )?;
    }
    check(results.len() == listed.len(), || format!("{results:#?}"))?;
    check(out.status.code() == Some(0), || format!("{:?}", out.status))
}

fn pure_functions_build_what_they_say() -> Result<(), Failed> {
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/runtime/config.json")).unwrap(),
    )
    .unwrap();
    let config = repro_config(&template, "/repro");
    check(config["process"]["args"] == json!(["/repro"]), || {
        format!("{}", config["process"])
    })?;
    // Only the command changes: the namespaces (the pid namespace the
    // program is init of) and mounts are the runtime target's.
    let mut rest = config.clone();
    rest["process"]["args"] = template["process"]["args"].clone();
    check(rest == template, || "more than the args changed".into())?;
    let argv = run_argv("runsc", Path::new("/s"), Path::new("/b"), "id");
    check(
        argv == [
            "--root",
            "/s",
            "--network=none",
            "run",
            "--bundle",
            "/b",
            "id",
        ],
        || format!("{argv:?}"),
    )?;
    let argv = run_argv("runc", Path::new("/s"), Path::new("/b"), "id");
    check(!argv.iter().any(|a| a.starts_with("--network")), || {
        format!("{argv:?}")
    })?;
    let gcc = gcc_argv(Path::new("a.c"), Path::new("a"));
    check(
        gcc.first().map(String::as_str) == Some("-static")
            && gcc.ends_with(&["-o".to_string(), "a".to_string(), "a.c".to_string()]),
        || format!("{gcc:?}"),
    )
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test(
            "pure_functions_build_what_they_say",
            pure_functions_build_what_they_say,
        ),
        Trial::test(
            "every_listed_fail_has_a_reproducer",
            every_listed_fail_has_a_reproducer,
        ),
        needs(
            "listed_fails_pass_under_runc".into(),
            &["runc", "tini"],
            listed_fails_pass_under_runc,
        ),
    ];
    for repro in REPROS {
        trials.push(needs(format!("{}::native", repro.name), &["gcc"], || {
            native(repro)
        }));
        trials.push(needs(
            format!("{}::runc", repro.name),
            &["gcc", "runc"],
            || in_container(repro, "runc", repro.linux),
        ));
        trials.push(needs(
            format!("{}::runsc", repro.name),
            &["gcc", "runsc"],
            || in_container(repro, "runsc", repro.gvisor_2022),
        ));
        trials.push(needs_trixie(
            format!("{}::runsc_trixie", repro.name),
            |runsc| in_container(repro, runsc.to_str().unwrap(), repro.gvisor_2024),
        ));
    }
    libtest_mimic::run(&args, trials).exit();
}
