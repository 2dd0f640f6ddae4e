//! Reporting benchmarks (not timed tests): `cargo bench -p orphanage --bench merge`.
//!
//! 1. `orphanage merge` of 50 reports of one cell each, 100 scenarios per
//!    cell (a realistic mix of outcomes and reasons), writing HTML, Markdown
//!    and JUnit: the goal is at most 1 s.
//! 2. What `--junit FILE` and `--format ktap` add to a host run: the host
//!    suite run plainly, with `--junit` and with `--format ktap`, the three
//!    interleaved so that load on the machine falls on each alike, compared
//!    run by run in wall time and in CPU time (orphanage's and its agents').
//!    Then the same on 92 trials that start no agent, where the reporters'
//!    cost is not lost in the scenarios' own spread. The goal is at most
//!    5 ms each.

use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const CELLS: usize = 50;
const SCENARIOS: usize = 100;
const MERGE_RUNS: usize = 5;
const HOST_RUNS: usize = 25;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn orphanage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orphanage"));
    c.env_remove("RUNTIME");
    c
}

/// One machine's report: cell `i`, every tenth scenario failing on some
/// cells, a few unsupported, one broken now and then.
fn report(i: usize) -> serde_json::Value {
    let kernel = format!("6.{}.{}-{}-amd64", i % 13, i % 7, i);
    let (name, kind) = match i % 3 {
        0 => ("host".to_string(), "host"),
        1 => ("runc+tini".to_string(), "runtime"),
        _ => (format!("runsc{i}"), "runtime"),
    };
    let results: Vec<_> = (0..SCENARIOS)
        .map(|s| {
            let scenario = format!("area{}::scenario_{s:03}", s % 10);
            let (outcome, reason) = match (s + i) % 23 {
                0 => ("fail", format!("step 6 (expect_parent): leaf's parent: expected sub (pid 2), observed init (pid 1) on cell {i}")),
                1 | 2 => ("unsupported", "memfd_create(MFD_CLOEXEC|MFD_NOEXEC_SEAL): EINVAL (needs MFD_NOEXEC_SEAL and MFD_EXEC (Linux 6.3))".to_string()),
                3 if i % 5 == 0 => ("broken", "agent killed by SIGSEGV (last step reached: step 3 store {...})".to_string()),
                _ => ("pass", String::new()),
            };
            json!({
                "name": if name == "host" { scenario.clone() } else { format!("{name}:{scenario}") },
                "area": format!("area{}", s % 10),
                "file": format!("suites/area{}/scenario_{s:03}.yaml", s % 10),
                "target": name, "outcome": outcome, "reason": reason, "mode": "pid_namespace",
                "duration_ms": 4.2, "steps_ms": 1.1, "notes": ["exit detected after 22 µs"]
            })
        })
        .collect();
    json!({
        "schema_version": 1, "orphanage": "0.1.0", "command_line": ["orphanage"],
        "started_at": "2026-12-01T12:00:00Z", "kernel": kernel, "target": name,
        "cells": [{"name": name, "kind": kind, "kernel": kernel,
                   "version": (kind == "runtime").then(|| format!("{name} version 1.{i}")),
                   "summary": {"pass": 0, "fail": 0, "unsupported": 0, "broken": 0}}],
        "results": results,
        "summary": {"pass": 0, "fail": 0, "unsupported": 0, "broken": 0}
    })
}

fn bench_merge() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in 0..CELLS {
        let p = dir.path().join(format!("cell{i:02}.json"));
        std::fs::write(&p, serde_json::to_string_pretty(&report(i)).unwrap()).unwrap();
        paths.push(p);
    }
    let out = dir.path();
    let mut walls = Vec::new();
    for _ in 0..MERGE_RUNS {
        let start = Instant::now();
        let o = orphanage()
            .arg("merge")
            .args(&paths)
            .arg("--html")
            .arg(out.join("m.html"))
            .arg("--markdown")
            .arg(out.join("m.md"))
            .arg("--junit")
            .arg(out.join("m.xml"))
            .arg("--baseline")
            .arg(&paths[0])
            .output()
            .expect("run orphanage merge");
        walls.push(start.elapsed().as_secs_f64());
        assert!(o.status.success(), "merge failed: {o:?}");
    }
    let size = |f: &str| std::fs::metadata(out.join(f)).map_or(0, |m| m.len()) / 1024;
    println!(
        "merge of {CELLS} cells x {SCENARIOS} scenarios (HTML {} KiB, Markdown {} KiB, JUnit {} KiB, and a baseline): median {:.3} s (min {:.3}, max {:.3}) over {MERGE_RUNS} runs",
        size("m.html"),
        size("m.md"),
        size("m.xml"),
        median(walls.clone()),
        walls.iter().cloned().fold(f64::MAX, f64::min),
        walls.iter().cloned().fold(0.0, f64::max),
    );
}

/// CPU time (user and system) of every child reaped so far, ours and theirs:
/// orphanage's own and that of the agents it reaped.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

/// `suites` as a run of the whole host suite, or as 92 trials that start no
/// agent (a runtime-only scenario, unsupported on the host at once, copied
/// under 92 names): there what the reporters cost is not lost in the
/// scenarios' own spread on a loaded machine.
fn bench_host_outputs(label: &str, suites: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("j.xml");
    let configs: [(&str, Vec<std::ffi::OsString>); 3] = [
        ("plain", vec![]),
        ("--junit", vec!["--junit".into(), junit.clone().into()]),
        ("--format ktap", vec!["--format".into(), "ktap".into()]),
    ];
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for _ in 0..HOST_RUNS {
        for (i, (label, extra)) in configs.iter().enumerate() {
            let cpu_before = children_cpu();
            let start = Instant::now();
            let o = orphanage()
                .arg("--suites")
                .arg(suites)
                .arg("-q")
                .args(extra)
                .output()
                .expect("run orphanage");
            walls[i].push(start.elapsed().as_secs_f64());
            cpus[i].push(children_cpu() - cpu_before);
            assert!(o.status.success(), "{label}: the run failed: {o:?}");
        }
    }
    println!(
        "{label}, {HOST_RUNS} interleaved runs of each, {} cores: plain median {:.1} ms wall, {:.1} ms CPU",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        median(walls[0].clone()) * 1000.0,
        median(cpus[0].clone()) * 1000.0
    );
    for (i, (flag, _)) in configs.iter().enumerate().skip(1) {
        // Differences run by run (each run beside the plain one just before
        // it): less of the machine's drift than a difference of medians.
        let paired = |v: &[Vec<f64>]| -> Vec<f64> {
            v[i].iter()
                .zip(&v[0])
                .map(|(a, b)| (a - b) * 1000.0)
                .collect()
        };
        let (w25, w50, w75) = quartiles(paired(&walls));
        let (c25, c50, c75) = quartiles(paired(&cpus));
        println!(
            "  {flag}: adds {w50:+.1} ms wall (quartiles {w25:+.1} .. {w75:+.1}), {c50:+.1} ms CPU (quartiles {c25:+.1} .. {c75:+.1})"
        );
    }
}

fn main() {
    // cargo bench passes --bench; nothing else to parse.
    bench_merge();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    bench_host_outputs("host suite", &repo.join("suites"));
    let no_agent = tempfile::tempdir().unwrap();
    std::fs::create_dir(no_agent.path().join("shim")).unwrap();
    for n in 0..92 {
        std::fs::copy(
            repo.join("suites/shim/harness_adopts_and_reaps_the_init.yaml"),
            no_agent.path().join(format!("shim/copy_{n:02}.yaml")),
        )
        .unwrap();
    }
    bench_host_outputs("92 trials that start no agent", no_agent.path());
}
