//! Runtime benchmark (not a timed test): `cargo bench -p orphanage --bench runtime`,
//! with runc on PATH (or RUNTIME naming another).
//!
//! Prints the per-scenario overhead a runtime adds over the host target (the
//! same scenarios, median of per-scenario differences), and the kill
//! verification latency: from the moment `kill --all` returned (every signal
//! sent, so at or before the last death) until the harness saw every process
//! gone, with pidfd poll and with adaptive kill(pid, 0) polling. It also
//! counts how often a check made the moment `kill --all` returned still saw
//! a process alive (CHECKS 5.4).

use std::path::Path;
use std::process::Command;

const RUNS: usize = 3;
const KILL_RUNS: usize = 20;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn report(args: &[&str], path: &Path) -> serde_json::Value {
    let suites = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../suites");
    let out = Command::new(env!("CARGO_BIN_EXE_orphanage"))
        .env_remove("RUNTIME")
        .arg("--suites")
        .arg(&suites)
        .arg("--report")
        .arg(path)
        .arg("-q")
        .args(args)
        .output()
        .expect("run orphanage");
    assert!(
        out.status.success(),
        "orphanage {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Per scenario name (without the target prefix): duration in ms, passes only.
fn durations(report: &serde_json::Value) -> std::collections::HashMap<String, f64> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "pass")
        .map(|r| {
            let name = r["name"].as_str().unwrap();
            // `runc:area::name` -> `area::name`; a host name has no such prefix.
            let name = match name.find(':') {
                Some(i) if !name[i + 1..].starts_with(':') => &name[i + 1..],
                _ => name,
            };
            (name.to_string(), r["duration_ms"].as_f64().unwrap())
        })
        .collect()
}

/// The number in a note after `prefix` and before ` ms`.
fn figure(note: &str, marker: &str) -> Option<f64> {
    let rest = &note[note.find(marker)? + marker.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn main() {
    let runtime = std::env::var("RUNTIME").unwrap_or_else(|_| "runc".into());
    let dir = tempfile::tempdir().unwrap();
    let mut differences = Vec::new();
    for run in 0..RUNS {
        let host = durations(&report(&[], &dir.path().join(format!("host{run}.json"))));
        let rt = durations(&report(
            &["--runtime", &runtime],
            &dir.path().join(format!("rt{run}.json")),
        ));
        eprintln!(
            "run {run}: {} host and {} {runtime} scenarios passed",
            host.len(),
            rt.len()
        );
        for (name, ms) in &rt {
            if let Some(h) = host.get(name) {
                differences.push(ms - h);
            }
        }
    }
    let (mut pidfd, mut kill0) = (Vec::new(), Vec::new());
    let (mut checks, mut raced, mut listed) = (0, 0, 0);
    for run in 0..KILL_RUNS {
        let r = report(
            &["--runtime", &runtime, "kill_race::"],
            &dir.path().join(format!("kill{run}.json")),
        );
        for result in r["results"].as_array().unwrap() {
            let notes: Vec<&str> = result["notes"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|n| n.as_str())
                .collect();
            // Only where the previous step was `kill --all`: that is the race measured.
            for pair in notes.windows(2) {
                if !pair[0].contains("when `kill --all` returned") {
                    continue;
                }
                checks += 1;
                if !pair[0].starts_with("kill race: 0 of") {
                    raced += 1;
                }
                if !pair[0].contains(", 0 listed in cgroup.procs") {
                    listed += 1;
                }
                if let Some(ms) = figure(pair[1], "via pidfd after ") {
                    pidfd.push(ms);
                }
                if let Some(ms) = figure(pair[1], "via kill -0 after ") {
                    kill0.push(ms);
                }
            }
        }
    }
    println!(
        "runtime {runtime}: {} cores, {RUNS} runs of the suite on host and in containers, {KILL_RUNS} runs of kill_race",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "per-scenario overhead over the host target: median {:.1} ms (p90 {:.1} ms) over {} scenario runs",
        median(&mut differences.clone()),
        quantile(&mut differences, 0.9),
        differences.len() / RUNS
    );
    for (name, v) in [("pidfd poll", &mut pidfd), ("kill -0 polling", &mut kill0)] {
        if v.is_empty() {
            println!("{name}: no samples");
            continue;
        }
        println!(
            "kill verification, {name}: median {:.3} ms, p95 {:.3} ms, max {:.3} ms ({} samples)",
            median(v),
            quantile(v, 0.95),
            v.iter().cloned().fold(0.0, f64::max),
            v.len()
        );
    }
    println!(
        "race (CHECKS 5.4): of {checks} checks made the moment `kill --all` returned, {raced} still saw a process alive to kill -0 and {listed} still saw one in cgroup.procs"
    );
}
