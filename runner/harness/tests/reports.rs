//! The machine-readable outputs of a real run: KTAP on stdout, JUnit XML, the
//! JSON report and the event log, on a run that has passes, fails and an
//! unsupported result, with the exit code a CI reads.

mod common;

use common::{orphanage, repo};

/// A suites directory of three wrong scenarios (fails) and two good ones.
fn mixed_suites() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (area, name, from) in [
        ("subreaper", "reparent_to_wrong_process", "fixtures/wrong"),
        ("memfd", "write_succeeds_on_sealed_memfd", "fixtures/wrong"),
        ("zombie", "zombie_stays_until_waited", "suites"),
        ("zombie", "exit_codes_reported_exactly", "suites"),
    ] {
        std::fs::create_dir_all(dir.path().join(area)).unwrap();
        std::fs::copy(
            repo().join(from).join(area).join(format!("{name}.yaml")),
            dir.path().join(area).join(format!("{name}.yaml")),
        )
        .unwrap();
    }
    // Drives a runtime, so the host reports it unsupported with a reason.
    std::fs::create_dir_all(dir.path().join("shim")).unwrap();
    std::fs::copy(
        repo().join("suites/shim/harness_adopts_and_reaps_the_init.yaml"),
        dir.path()
            .join("shim/harness_adopts_and_reaps_the_init.yaml"),
    )
    .unwrap();
    dir
}

#[test]
fn ktap_junit_json_and_events_agree_on_one_run() {
    let suites = mixed_suites();
    let out_dir = tempfile::tempdir().unwrap();
    let (junit, report, events) = (
        out_dir.path().join("j.xml"),
        out_dir.path().join("r.json"),
        out_dir.path().join("e.jsonl"),
    );
    let output = orphanage()
        .arg("--suites")
        .arg(suites.path())
        .args(["--format", "ktap", "--junit"])
        .arg(&junit)
        .arg("--report")
        .arg(&report)
        .arg("--events")
        .arg(&events)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(101), "{stdout}\n{stderr}");

    // KTAP alone on stdout: libtest's lines went to stderr.
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("KTAP version 1"), "{stdout}");
    assert_eq!(lines.next(), Some("1..5"));
    let results: Vec<&str> = lines.filter(|l| !l.starts_with('#')).collect();
    assert_eq!(results.len(), 5, "{stdout}");
    for (i, l) in results.iter().enumerate() {
        let number = format!(" {} ", i + 1);
        assert!(
            (l.starts_with("ok ") || l.starts_with("not ok ")) && l.contains(&number),
            "{l}"
        );
    }
    assert_eq!(
        results.iter().filter(|l| l.starts_with("not ok")).count(),
        2
    );
    let skip = results.iter().find(|l| l.contains("# SKIP")).unwrap();
    assert!(
        skip.contains("shim::harness_adopts_and_reaps_the_init # SKIP needs an OCI runtime"),
        "{skip}"
    );
    assert!(
        stdout.contains("# fixtures/wrong")
            || stdout.contains("subreaper/reparent_to_wrong_process.yaml: fail"),
        "{stdout}"
    );
    assert!(
        stderr.contains("test result: FAILED. 2 passed; 2 failed; 1 ignored"),
        "{stderr}"
    );

    // JUnit: one suite, the right counts.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="host" tests="5" skipped="1" errors="0" failures="2""#),
        "{xml}"
    );
    assert!(
        xml.contains("expected init (pid 1), observed sub (pid 2)"),
        "{xml}"
    );

    // JSON: one cell, every result naming its file.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["cells"].as_array().unwrap().len(), 1);
    assert_eq!(json["cells"][0]["summary"]["fail"], 2);
    let failed = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "subreaper::reparent_to_wrong_process")
        .unwrap();
    assert!(failed["file"]
        .as_str()
        .unwrap()
        .ends_with("subreaper/reparent_to_wrong_process.yaml"));

    // The event log: every trial started, and the agent's own events are there.
    let log = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let started = lines
        .iter()
        .filter(|l| l["event"]["event"] == "trial_started")
        .count();
    assert_eq!(started, 5);
    for kind in ["spawned", "step_started", "finished"] {
        assert!(
            lines.iter().any(|l| l["event"]["event"] == kind),
            "no {kind} in {log}"
        );
    }
}

#[test]
fn a_passing_ktap_run_exits_0_and_a_report_path_that_cannot_be_written_exits_2() {
    let ok = orphanage()
        .arg("--suites")
        .arg(repo().join("suites"))
        .args([
            "--format",
            "ktap",
            "--exact",
            "zombie::zombie_stays_until_waited",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout,
        "KTAP version 1\n1..1\nok 1 zombie::zombie_stays_until_waited\n"
    );

    for flag in ["--junit", "--events"] {
        let bad = orphanage()
            .arg("--suites")
            .arg(repo().join("suites"))
            .args([flag, "/no/such/dir/out"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{flag}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("/no/such/dir/out"), "{stderr}");
    }
    let listed = orphanage()
        .args(["--list", "--junit", "/tmp/never-written.xml"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(2));
    assert!(!std::path::Path::new("/tmp/never-written.xml").exists());
}
