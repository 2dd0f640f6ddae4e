//! Host-suite benchmark (not a timed test): `cargo bench -p orphanage`.
//!
//! Prints the whole host suite's wall time and the median per-scenario
//! overhead: the harness's time for a scenario minus the time its steps took
//! inside the agent (namespace setup, exec, probes, teardown and reporting are
//! overhead; the scenario's own waiting is not). Then the same with
//! `--no-pid-namespace`: every fresh scenario under a subreaper root.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // cargo bench passes --bench; nothing else to parse.
    for (label, extra) in [
        ("host suite", &[][..]),
        (
            "host suite under subreaper roots (--no-pid-namespace)",
            &["--no-pid-namespace"][..],
        ),
    ] {
        bench(label, extra);
    }
}

fn bench(label: &str, extra: &[&str]) {
    let suites = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../suites");
    let dir = tempfile::tempdir().unwrap();
    let mut walls = Vec::new();
    let mut overheads = Vec::new();
    let mut scenarios = 0;
    for run in 0..RUNS {
        let report = dir.path().join(format!("run{run}.json"));
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_orphanage"))
            .arg("--suites")
            .arg(&suites)
            .arg("--report")
            .arg(&report)
            .args(extra)
            .arg("-q")
            .output()
            .expect("run orphanage");
        walls.push(start.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "the host suite failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let results = json["results"].as_array().unwrap();
        scenarios = results.len();
        // Runtime-only scenarios are reported unsupported on the host without running.
        for r in results.iter().filter(|r| r["outcome"] == "pass") {
            overheads.push(r["duration_ms"].as_f64().unwrap() - r["steps_ms"].as_f64().unwrap());
        }
    }
    println!(
        "{label}: {scenarios} scenarios, {RUNS} runs, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "whole suite wall time: median {:.3} s (min {:.3} s, max {:.3} s)",
        median(walls.clone()),
        walls.iter().cloned().fold(f64::MAX, f64::min),
        walls.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "per-scenario overhead (harness time minus the scenario's own steps): median {:.2} ms",
        median(overheads)
    );
}
