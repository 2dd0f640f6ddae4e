//! `orphanage merge` and `--baseline` end to end: reports from a real run and
//! hand-made ones (as other machines would send them) merged into HTML,
//! Markdown and JUnit; every kind of bad input refused in one line naming
//! the file; baselines and `--fail-on-regression`; a hostile report.

mod common;

use common::{orphanage, repo};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A schema-1 report: `cells` are (name, kind, kernel, version), `results`
/// are (cell, scenario, outcome, reason).
fn report(
    cells: &[(&str, &str, &str, Option<&str>)],
    results: &[(&str, &str, &str, &str)],
) -> Value {
    json!({
        "schema_version": 1,
        "orphanage": "0.1.0",
        "command_line": ["orphanage"],
        "started_at": "2026-12-01T12:00:00Z",
        "kernel": cells.first().map_or("", |c| c.2),
        "target": "x",
        "cells": cells.iter().map(|(name, kind, kernel, version)| json!({
            "name": name, "kind": kind, "kernel": kernel, "version": version,
            "summary": {"pass": 0, "fail": 0, "unsupported": 0, "broken": 0}
        })).collect::<Vec<_>>(),
        "results": results.iter().map(|(cell, scenario, outcome, reason)| json!({
            "name": if *cell == "host" { scenario.to_string() } else { format!("{cell}:{scenario}") },
            "area": scenario.split("::").next().unwrap(),
            "file": format!("suites/{}.yaml", scenario.replace("::", "/")),
            "target": cell, "outcome": outcome, "reason": reason,
            "mode": null, "duration_ms": 3.0, "steps_ms": 1.0, "notes": []
        })).collect::<Vec<_>>(),
        "summary": {"pass": 0, "fail": 0, "unsupported": 0, "broken": 0}
    })
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(value).unwrap()).unwrap();
    p
}

fn merge(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = orphanage();
    c.current_dir(repo()).arg("merge");
    for a in args {
        c.arg(a);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A runc cell on another machine, lacking one scenario the host ran.
fn runc_report() -> Value {
    report(
        &[(
            "runc+tini",
            "runtime",
            "6.1.0-18-amd64",
            Some("runc version 1.1.5"),
        )],
        &[
            ("runc+tini", "zombie::zombie_stays_until_waited", "pass", ""),
            (
                "runc+tini",
                "subreaper::reparent_to_wrong_process",
                "pass",
                "",
            ),
        ],
    )
}

#[test]
fn a_real_run_and_another_machines_report_make_one_matrix() {
    // A real host run: one scenario passes, one (a wrong fixture) fails.
    let suites = tempfile::tempdir().unwrap();
    for (area, name, from) in [
        ("subreaper", "reparent_to_wrong_process", "fixtures/wrong"),
        ("zombie", "zombie_stays_until_waited", "suites"),
        ("zombie", "exit_codes_reported_exactly", "suites"),
    ] {
        std::fs::create_dir_all(suites.path().join(area)).unwrap();
        std::fs::copy(
            repo().join(from).join(area).join(format!("{name}.yaml")),
            suites.path().join(area).join(format!("{name}.yaml")),
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host.json");
    let run = orphanage()
        .arg("--suites")
        .arg(suites.path())
        .arg("--report")
        .arg(&host)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(101), "{:?}", text(&run));
    let runc = write(dir.path(), "runc.json", &runc_report());
    let (html, md, xml) = (
        dir.path().join("m.html"),
        dir.path().join("m.md"),
        dir.path().join("m.xml"),
    );
    let out = merge(&[
        &host,
        &runc,
        &"--html",
        &html,
        &"--markdown",
        &md,
        &"--junit",
        &xml,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("#1 host on "), "{stdout}");
    assert!(
        stdout.contains(": 2 pass, 1 fail, 0 unsupported, 0 broken, 0 missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("#2 runc+tini on 6.1.0-18-amd64 (")
            && stdout.contains("2 pass, 0 fail, 0 unsupported, 0 broken, 1 missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 of 3 scenarios differ from Linux in at least one of 2 columns"),
        "{stdout}"
    );

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<table class=\"matrix\">"));
    assert!(
        page.contains("expected init (pid 1), observed sub (pid 2)"),
        "the failing reason"
    );
    assert!(
        page.contains("<td class=\"o missing\">missing</td>"),
        "missing shown"
    );
    assert!(page.contains("runc version 1.1.5"));
    assert!(page.contains("<b class=\"fail\">1 fail</b>"));

    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("*missing*"), "{markdown}");
    assert!(markdown.contains("**FAIL** [1](#note-1)"), "{markdown}");

    let junit = std::fs::read_to_string(&xml).unwrap();
    let mut names: Vec<&str> = junit
        .split("<testcase name=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert_eq!(
        names.len(),
        6,
        "3 scenarios in 2 cells, the missing one too: {junit}"
    );
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6, "unique across cells: {names:?}");
    assert!(junit.contains("type=\"missing\""), "{junit}");
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(d, "good.json", &runc_report());
    let mut two = runc_report();
    two["schema_version"] = json!(2);
    let schema2 = write(d, "schema2.json", &two);
    let corrupt = d.join("corrupt.json");
    std::fs::write(&corrupt, "{\"schema_version\": 1, \"cells\": [").unwrap();
    let other_suite = write(
        d,
        "other.json",
        &report(
            &[("host", "host", "6.1", None)],
            &[("host", "elsewhere::x", "pass", "")],
        ),
    );
    let unwritable = PathBuf::from("/no/such/dir/m.html");
    let bad_expected = d.join("expected.yaml");
    std::fs::write(
        &bad_expected,
        "differences:\n  - scenario: memfd::nope\n    outcome: fail\n    reason: x\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&dyn AsRef<std::ffi::OsStr>>, String)> = vec![
        (
            vec![&good, &schema2],
            format!(
                "{}: schema_version 2, but {} has 1",
                schema2.display(),
                good.display()
            ),
        ),
        (
            vec![&good, &corrupt],
            format!("{}:1:32: not valid JSON", corrupt.display()),
        ),
        (
            vec![&good, &"--baseline", &schema2],
            format!(
                "{}: schema_version 2, which this orphanage does not read",
                schema2.display()
            ),
        ),
        (
            vec![&good, &"--baseline", &other_suite],
            format!("{}: a baseline from another suite", other_suite.display()),
        ),
        (
            vec![&good, &"--html", &unwritable],
            "cannot write HTML matrix /no/such/dir/m.html: No such file or directory".into(),
        ),
        (
            vec![&good, &"--junit", &"/no/such/dir/j.xml"],
            "/no/such/dir/j.xml".into(),
        ),
        (
            vec![&good, &good],
            format!("{}: given twice", good.display()),
        ),
        (
            vec![&good, &"--fail-on-regression"],
            "--fail-on-regression judges against a baseline: it needs --baseline FILE".into(),
        ),
        (
            vec![&good, &"--html", &good],
            format!("{}: is an input of this merge", good.display()),
        ),
        (
            vec![&good, &"--expected", &bad_expected],
            format!(
                "{}:2:15: differences[0]: no scenario `memfd::nope` in the suites",
                bad_expected.display()
            ),
        ),
    ];
    for (args, says) in cases {
        let out = merge(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{says}: {stdout}{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&says), "wanted {says:?} in {stderr}");
        assert!(
            stdout.is_empty(),
            "nothing written before bad input is found: {stdout}"
        );
    }
    assert!(!d.join("m.html").exists());
}

#[test]
fn baselines_list_regressions_fixes_new_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kernel = "6.1.0-18-amd64";
    let then = write(
        d,
        "then.json",
        &report(
            &[("runsc", "runtime", kernel, Some("runsc 1"))],
            &[
                ("runsc", "memfd::a", "pass", ""),
                ("runsc", "memfd::b", "fail", "was broken"),
                ("runsc", "memfd::gone", "pass", ""),
            ],
        ),
    );
    let now = write(
        d,
        "now.json",
        &report(
            // A newer runsc on the same kernel: still the same cell.
            &[("runsc", "runtime", kernel, Some("runsc 2"))],
            &[
                ("runsc", "memfd::a", "fail", "write succeeded"),
                ("runsc", "memfd::b", "pass", ""),
                ("runsc", "memfd::added", "fail", "new check"),
            ],
        ),
    );
    let html = d.join("m.html");
    let listed = merge(&[&now, &"--baseline", &then, &"--html", &html]);
    let (stdout, stderr) = text(&listed);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "lists only: {stdout}{stderr}"
    );
    for line in [
        "  REGRESSION  runsc on 6.1.0-18-amd64 memfd::a: pass -> fail (write succeeded)",
        "  fixed       runsc on 6.1.0-18-amd64 memfd::b: fail -> pass",
        "  new         runsc on 6.1.0-18-amd64 memfd::added: fail (new check)",
        "  removed     runsc on 6.1.0-18-amd64 memfd::gone: was pass",
        "1 regressions, 1 fixed, 0 changed, 1 new, 1 removed",
    ] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<b>1 regression(s)</b>"), "{page}");
    assert!(page.contains("<span class=\"tag\">regressed</span>"));

    let failing = merge(&[&now, &"--baseline", &then, &"--fail-on-regression"]);
    assert_eq!(failing.status.code(), Some(101), "{:?}", text(&failing));
    // Against itself nothing regressed.
    let same = merge(&[&now, &"--baseline", &now, &"--fail-on-regression"]);
    assert_eq!(same.status.code(), Some(0), "{:?}", text(&same));
}

#[test]
fn a_run_compares_with_its_baseline_and_fails_on_a_regression_only_when_asked() {
    // Drives a runtime: unsupported on the host (exit 0), where the baseline
    // says it passed: a regression.
    let suites = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(suites.path().join("shim")).unwrap();
    std::fs::copy(
        repo().join("suites/shim/harness_adopts_and_reaps_the_init.yaml"),
        suites
            .path()
            .join("shim/harness_adopts_and_reaps_the_init.yaml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kernel = host_release();
    let passed = write(
        dir.path(),
        "then.json",
        &report(
            &[("host", "host", &kernel, None)],
            &[(
                "host",
                "shim::harness_adopts_and_reaps_the_init",
                "pass",
                "",
            )],
        ),
    );
    let run = |extra: &[&str], baseline: &Path| {
        orphanage()
            .arg("--suites")
            .arg(suites.path())
            .arg("--baseline")
            .arg(baseline)
            .args(extra)
            .output()
            .unwrap()
    };
    let line = "  REGRESSION  host shim::harness_adopts_and_reaps_the_init: pass -> unsupported (needs an OCI runtime";
    let listed = run(&[], &passed);
    let (stdout, stderr) = text(&listed);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "listed only: {stdout}{stderr}"
    );
    assert!(stdout.contains(line), "{stdout}");
    let failed = run(&["--fail-on-regression"], &passed);
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(101), "{stdout}{stderr}");
    assert!(stdout.contains(line), "{stdout}");

    // A baseline of another suite is refused before anything runs.
    let other = write(
        dir.path(),
        "other.json",
        &report(
            &[("host", "host", &kernel, None)],
            &[("host", "elsewhere::x", "pass", "")],
        ),
    );
    let refused = run(&[], &other);
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("other.json: a baseline from another suite"),
        "{stderr}"
    );
    assert!(!stdout.contains("running"), "nothing ran: {stdout}");
}

#[test]
fn a_kernel_matrix_compares_with_its_baseline_too() {
    // The running kernel as the matrix's one cell (no VM needed).
    let dir = tempfile::tempdir().unwrap();
    let kernels = dir.path().join("kernels.yaml");
    std::fs::write(&kernels, "kernels:\n  - name: host\n    host: true\n").unwrap();
    let suites = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(suites.path().join("subreaper")).unwrap();
    std::fs::copy(
        repo().join("fixtures/wrong/subreaper/reparent_to_wrong_process.yaml"),
        suites
            .path()
            .join("subreaper/reparent_to_wrong_process.yaml"),
    )
    .unwrap();
    let then = write(
        dir.path(),
        "then.json",
        &report(
            &[("host", "host", &host_release(), None)],
            &[("host", "subreaper::reparent_to_wrong_process", "pass", "")],
        ),
    );
    let out = orphanage()
        .arg("--suites")
        .arg(suites.path())
        .arg("--kernels")
        .arg(&kernels)
        .arg("--baseline")
        .arg(&then)
        .arg("--fail-on-regression")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(101), "{stdout}{stderr}");
    assert!(
        stdout.contains("  REGRESSION  host subreaper::reparent_to_wrong_process: pass -> fail"),
        "{stdout}"
    );
}

fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string()
}

/// What an untrusted machine could put in its report.
pub const HOSTILE: &str = "<script>document.title='pwned';document.body.insertAdjacentHTML('beforeend','<p id=pwned>pwned</p>')</script>\"quoted\"\nsecond line \u{1b}[31mred\u{1b}[0m | `tick` <img src=x onerror=\"document.title='img'\">";

#[test]
fn a_hostile_report_cannot_inject_into_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let nasty = write(
        d,
        "nasty.json",
        &report(
            &[("runc", "runtime", HOSTILE, Some(HOSTILE))],
            &[
                ("runc", "memfd::sealed", "fail", HOSTILE),
                ("runc", "memfd::ok", "pass", ""),
            ],
        ),
    );
    let (html, md, xml) = (d.join("m.html"), d.join("m.md"), d.join("m.xml"));
    let out = merge(&[
        &nasty,
        &"--html",
        &html,
        &"--markdown",
        &md,
        &"--junit",
        &xml,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains('\u{1b}'),
        "the terminal gets no escapes: {stdout}"
    );

    let page = std::fs::read_to_string(&html).unwrap();
    for raw in ["<script", "<img", "<p id=pwned", "\u{1b}", "onerror=\""] {
        assert!(!page.contains(raw), "{raw:?} reached the page");
    }
    assert!(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;"));
    assert!(page.contains("&quot;quoted&quot;\nsecond line red | `tick`"));

    let markdown = std::fs::read_to_string(&md).unwrap();
    for raw in ["<script", "<img", "\u{1b}", "`tick`"] {
        assert!(!markdown.contains(raw), "{raw:?} reached the Markdown");
    }
    // Table rows keep their cell count: no unescaped pipe, no raw newline.
    let row = markdown
        .lines()
        .find(|l| l.starts_with("| memfd::sealed"))
        .unwrap();
    let unescaped_pipes = row
        .char_indices()
        .filter(|(i, c)| *c == '|' && !row[..*i].ends_with('\\'))
        .count();
    assert_eq!(unescaped_pipes, 3, "{row}");

    let junit = std::fs::read_to_string(&xml).unwrap();
    assert!(
        !junit.contains("<script") && !junit.contains('\u{1b}'),
        "{junit}"
    );
    let mut reader = quick_xml::Reader::from_str(&junit);
    loop {
        match reader.read_event().expect("the JUnit is well-formed XML") {
            quick_xml::events::Event::Eof => break,
            _ => continue,
        }
    }
}

#[test]
fn expected_differences_judge_each_cell_of_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cells = write(
        d,
        "cells.json",
        &report(
            &[
                (
                    "runsc+tini",
                    "runtime",
                    "6.1.0",
                    Some("runsc version 0.0~20221219.0"),
                ),
                ("runc+tini", "runtime", "6.1.0", Some("runc version 1.1.5")),
            ],
            &[
                (
                    "runsc+tini",
                    "sibling::clone_parent_child_is_sibling",
                    "fail",
                    "caller is the parent",
                ),
                (
                    "runc+tini",
                    "sibling::clone_parent_child_is_sibling",
                    "pass",
                    "",
                ),
            ],
        ),
    );
    let expected = repo().join("fixtures/expected/runsc.yaml");
    let out = merge(&[&cells, &"--expected", &expected]);
    let (stdout, stderr) = text(&out);
    // runsc's listed fail is expected; runc, which the entry's runsc version
    // does not match, passes as Linux.
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("1 expected, 0 unexpected, 0 stale"),
        "{stdout}"
    );

    let newer = write(
        d,
        "newer.json",
        &report(
            &[(
                "runsc+tini",
                "runtime",
                "6.1.0",
                Some("runsc version 0.0~20250101.0"),
            )],
            &[(
                "runsc+tini",
                "sibling::clone_parent_child_is_sibling",
                "fail",
                "caller is the parent",
            )],
        ),
    );
    let out = merge(&[&newer, &"--expected", &expected]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(101),
        "another release: unexpected: {stdout}{stderr}"
    );
    assert!(
        stdout.contains("0 expected, 1 unexpected, 0 stale"),
        "{stdout}"
    );
}
