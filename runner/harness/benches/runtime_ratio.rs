//! Benchmark (not a timed test): for each runtime, the time orphanage spends
//! per scenario against that runtime's own `run` of a trivial static program
//! in a minimal bundle, measured in the same run, and their ratio.
//!
//! `cargo bench -p orphanage --bench runtime_ratio` (ci/bench-runtimes.sh).
//! Runtimes: $ORPHANAGE_BENCH_RUNTIMES (comma-separated names or paths),
//! else each of runc, crun, /opt/youki/bin/youki, runsc and the fetched
//! runsc-trixie that is there. Each runs the whole suite with `--init tini`,
//! every scenario in its own container with its own fresh init.
//!
//! orphanage's time per scenario is the suite's wall time times its test
//! threads over the scenarios (what one thread spends on one scenario): a
//! mean, so its slow tail counts. The median of the report's per-scenario
//! durations is printed beside it. The bare figures come from BARE_RUNS
//! sequential `RUNTIME run`s of a static `int main(void) { return 0; }`,
//! half before the suite and half after, so both see the same machine.
//! Bare runs have a slow tail too (a run now and then takes two or three
//! times the median, the machine's, not the runtime's), so the ratio is
//! given twice: against the bare mean, like with like, and against the bare
//! median, as earlier figures were. "Without steps" is the ratio to the mean
//! less the scenarios' own steps (the agent's `steps_ms`): what running a
//! scenario in a container costs beside what the scenario does. The floor
//! is the ratio to the mean a scenario would score if it cost a bare run
//! plus its own steps and nothing more: the best any harness could do with
//! these steps. ORPHANAGE_BENCH_THREADS sets the suite's --test-threads.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Enough that the mean of the bare runs, slow tail and all, holds still
/// from one bench to the next.
const BARE_RUNS: usize = 60;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn on_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn trixie_runsc() -> Option<PathBuf> {
    let out = Command::new(env!("CARGO_BIN_EXE_orphanage"))
        .args(["runtimes", "path", "runsc-trixie"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// The flags a bare run needs, as orphanage passes them (argv.rs).
fn global_flags(runtime: &Path) -> Vec<&'static str> {
    if runtime.file_name().is_some_and(|n| n == "runsc") {
        vec!["--network=none"]
    } else {
        vec![]
    }
}

/// A bundle whose init is a static program that exits 0 at once: the
/// runtime target's template, so namespaces and mounts are the suite's.
fn trivial_bundle(dir: &Path) -> PathBuf {
    let source = dir.join("true.c");
    std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    for sub in ["proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    let gcc = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(rootfs.join("true"))
        .arg(&source)
        .status()
        .expect("gcc");
    assert!(gcc.success(), "gcc failed");
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/runtime/config.json")).unwrap(),
    )
    .unwrap();
    config["process"]["args"] = serde_json::json!(["/true"]);
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    bundle
}

/// How long one bare run may take before it counts as hung: youki 0.7.0's
/// `run` sometimes never notices its container's exit (seen here: its init a
/// zombie, youki in sigtimedwait).
const BARE_DEADLINE: Duration = Duration::from_secs(10);

/// `RUNTIME run` of the bundle, `n` times: milliseconds of each that ended,
/// and how many hung (killed at the deadline, then deleted).
fn bare_runs(
    runtime: &Path,
    bundle: &Path,
    state: &Path,
    n: usize,
    tag: &str,
) -> (Vec<f64>, usize) {
    let mut times = vec![];
    let mut hung = 0;
    for i in 0..n {
        let id = format!("orphanage-bench-{}-{tag}-{i}", std::process::id());
        let started = Instant::now();
        let mut child = Command::new(runtime)
            .arg("--root")
            .arg(state)
            .args(global_flags(runtime))
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the runtime");
        let pid = child.id() as i32;
        // Waited for in a thread, so the time is the exit's, not a poll's.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait().expect("wait for the runtime");
            let _ = tx.send(Instant::now());
            status
        });
        match rx.recv_timeout(BARE_DEADLINE) {
            Ok(ended) => {
                let status = waiter.join().unwrap();
                assert!(
                    status.success(),
                    "{} run failed: {status:?}",
                    runtime.display()
                );
                times.push((ended - started).as_secs_f64() * 1e3);
            }
            Err(_) => {
                // SAFETY: our unreaped child, so the pid is still its own.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = waiter.join();
                hung += 1;
            }
        }
        // Untimed: `run` removes its container; this makes sure, and cleans
        // up after a hung one.
        let _ = Command::new(runtime)
            .arg("--root")
            .arg(state)
            .args(global_flags(runtime))
            .args(["delete", "--force", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    (times, hung)
}

struct Suite {
    scenarios: usize,
    wall_s: f64,
    threads: usize,
    median_ms: f64,
    /// The scenarios' own steps (the agent's `steps_ms`), summed: what they
    /// do on purpose (the latency and race scenarios wait), not overhead.
    steps_ms: f64,
}

fn suite(runtime: &Path, dir: &Path) -> Suite {
    let report = dir.join("report.json");
    // ORPHANAGE_BENCH_THREADS=1 runs the scenarios one at a time, as the
    // bare runs are: the ratio then leaves out what two at once cost.
    let threads = std::env::var("ORPHANAGE_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .filter(|&t: &usize| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orphanage"))
        .current_dir(repo())
        .env_remove("RUNTIME")
        .arg("--runtime")
        .arg(runtime)
        .args(["--init", "tini", "-q", "--test-threads"])
        .arg(threads.to_string())
        .arg("--report")
        .arg(&report)
        .output()
        .expect("run orphanage");
    let wall_s = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report).unwrap_or_default(),
    )
    .unwrap_or_else(|_| {
        panic!(
            "orphanage --runtime {} wrote no report:\n{}",
            runtime.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let results = report["results"].as_array().unwrap();
    let broken = results.iter().filter(|r| r["outcome"] == "broken").count();
    assert_eq!(broken, 0, "broken results under {}", runtime.display());
    let mut durations: Vec<f64> = results
        .iter()
        .filter_map(|r| r["duration_ms"].as_f64())
        .collect();
    Suite {
        scenarios: results.len(),
        wall_s,
        threads,
        median_ms: median(&mut durations),
        steps_ms: results.iter().filter_map(|r| r["steps_ms"].as_f64()).sum(),
    }
}

fn main() {
    // `cargo bench` passes --bench; a filter is not meaningful here.
    let wanted: Vec<String> = match std::env::var("ORPHANAGE_BENCH_RUNTIMES") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => ["runc", "crun", "/opt/youki/bin/youki", "runsc"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let mut runtimes: Vec<(String, PathBuf)> = vec![];
    for name in &wanted {
        match on_path(name) {
            Some(p) => {
                let label = p.file_name().unwrap().to_string_lossy().into_owned();
                runtimes.push((label, p))
            }
            None => eprintln!("skipped: {name} (not found)"),
        }
    }
    if std::env::var_os("ORPHANAGE_BENCH_RUNTIMES").is_none() {
        match trixie_runsc() {
            Some(p) => runtimes.push(("runsc-trixie".into(), p)),
            None => eprintln!("skipped: runsc-trixie (not fetched)"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = trivial_bundle(dir.path());
    println!(
        "{:<14} {:>9} {:>7} {:>8} {:>11} {:>9} {:>9} {:>11} {:>10} {:>12} {:>13} {:>7}",
        "runtime",
        "scenarios",
        "threads",
        "suite s",
        "ms/scenario",
        "median ms",
        "bare mean",
        "bare median",
        "ratio/mean",
        "ratio/median",
        "without steps",
        "floor"
    );
    for (i, (name, runtime)) in runtimes.iter().enumerate() {
        let state = dir.path().join(format!("state-{i}"));
        std::fs::create_dir_all(&state).unwrap();
        let (mut bare, mut hung) = bare_runs(runtime, &bundle, &state, BARE_RUNS / 2, "before");
        let work = dir.path().join(format!("suite-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let s = suite(runtime, &work);
        let (after, hung_after) = bare_runs(runtime, &bundle, &state, BARE_RUNS / 2, "after");
        bare.extend(after);
        hung += hung_after;
        if bare.is_empty() {
            println!("{name:<14} every bare run hung");
            continue;
        }
        let bare_mean = mean(&bare);
        let bare_median = median(&mut bare);
        let per_scenario = s.wall_s * 1e3 * s.threads as f64 / s.scenarios as f64;
        // Per scenario, less its own steps: what running it in a container
        // costs beside what it does.
        let steps_per_scenario = s.steps_ms / s.scenarios as f64;
        let overhead = per_scenario - steps_per_scenario;
        // The ratio if a scenario cost a bare run plus its own steps and
        // nothing else: the best any harness could score with these steps.
        let floor = (bare_mean + steps_per_scenario) / bare_mean;
        println!(
            "{name:<14} {:>9} {:>7} {:>8.1} {:>11.0} {:>9.0} {:>9.1} {:>11.1} {:>9.1}x {:>11.1}x {:>12.1}x {:>6.1}x",
            s.scenarios,
            s.threads,
            s.wall_s,
            per_scenario,
            s.median_ms,
            bare_mean,
            bare_median,
            per_scenario / bare_mean,
            per_scenario / bare_median,
            overhead / bare_mean,
            floor
        );
        if hung > 0 {
            println!(
                "{:<14} ({hung} of {BARE_RUNS} bare runs hung past {BARE_DEADLINE:?}: not counted)",
                ""
            );
        }
    }
}
