//! The merged matrix as a browser shows it: headless Chromium (Debian's
//! `chromium`) loads the page, and the DOM it ends with is checked: the
//! table, the counts and a failing cell's reason are there, and the
//! `<script>` a hostile report carried in its kernel release, runtime
//! version and reason did not run (it would have renamed the page and
//! added an element). A screenshot is left in cargo's test temporary
//! directory for a human to look at.
//!
//! Without chromium the test is ignored, naming what is missing; with
//! ORPHANAGE_REQUIRE_ALL=1 (as CI sets) that is a failure.

#[path = "common/mod.rs"]
mod common;

use common::{check, orphanage, repo, require_all};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a hostile machine writes where the kernel release, the runtime's
/// version and a reason go: markup, a script, a quote, a newline, ANSI.
const HOSTILE: &str = "<script>document.title='pwned';document.body.insertAdjacentHTML('beforeend','<p id=\"pwned\">pwned</p>')</script>\"quoted\"\nsecond line \u{1b}[31mred\u{1b}[0m<img src=x onerror=\"document.title='img'\">";

fn browser() -> Result<PathBuf, String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| "chromium is not installed (apt-get install chromium)".to_string())
}

fn report(kernel: &str, version: &str, results: &[(&str, &str, &str)]) -> serde_json::Value {
    json!({
        "schema_version": 1, "orphanage": "0.1.0", "command_line": [],
        "started_at": "2026-12-01T12:00:00Z", "kernel": kernel, "target": "runc",
        "cells": [{"name": "runc", "kind": "runtime", "kernel": kernel, "version": version}],
        "results": results.iter().map(|(scenario, outcome, reason)| json!({
            "name": format!("runc:{scenario}"), "area": scenario.split("::").next().unwrap(),
            "file": format!("suites/{}.yaml", scenario.replace("::", "/")),
            "target": "runc", "outcome": outcome, "reason": reason
        })).collect::<Vec<_>>(),
        "summary": {"pass": 0, "fail": 0, "unsupported": 0, "broken": 0}
    })
}

/// Runs the browser on `args`, killed after a minute: a page must never hang a test.
fn run_browser(program: &Path, profile: &Path, args: &[String]) -> Result<String, Failed> {
    let mut child = Command::new(program)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stdout }, &mut text);
        text
    });
    let start = Instant::now();
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the browser did not finish within 60 s".into());
        }
        // A poll interval against the 60 s deadline, not a synchronisation point.
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(reader.join().unwrap_or_default())
}

fn the_page_renders_and_the_hostile_script_does_not_run(program: &Path) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("hostile.json");
    let plain = dir.path().join("plain.json");
    std::fs::write(
        &hostile,
        report(
            HOSTILE,
            HOSTILE,
            &[
                ("memfd::seal_write_refuses_writes", "fail", HOSTILE),
                ("zombie::zombie_stays_until_waited", "pass", ""),
            ],
        )
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        &plain,
        report(
            "6.1.0-18-amd64",
            "runc version 1.1.5",
            &[
                (
                    "memfd::seal_write_refuses_writes",
                    "fail",
                    "write() after F_SEAL_WRITE succeeded: expected EPERM",
                ),
                ("zombie::zombie_stays_until_waited", "pass", ""),
                ("kill::only_here", "unsupported", "pidfd_open: ENOSYS"),
            ],
        )
        .to_string(),
    )
    .unwrap();
    let html = dir.path().join("matrix.html");
    let out = orphanage()
        .current_dir(repo())
        .arg("merge")
        .arg(&plain)
        .arg(&hostile)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    check(out.status.success(), || format!("merge failed: {out:?}"))?;
    let url = format!("file://{}", html.display());
    let profile = dir.path().join("profile");

    // The control: the same text pasted into a page unescaped does run, and
    // the checks below see it, so they can fail.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        format!("<!DOCTYPE html><html><head><title>orphanage conformance matrix</title></head><body>{HOSTILE}</body></html>"),
    )
    .unwrap();
    let ran = run_browser(
        program,
        &profile,
        &["--dump-dom".into(), format!("file://{}", control.display())],
    )?;
    check(
        ran.contains("<title>pwned</title>") || ran.contains("<title>img</title>"),
        || format!("the control page's script did not run, so this test could not see one:\n{ran}"),
    )?;
    check(ran.contains("<p id=\"pwned\">"), || {
        format!("no element from the control's script:\n{ran}")
    })?;

    let dom = run_browser(program, &profile, &["--dump-dom".into(), url.clone()])?;

    check(
        dom.contains("<title>orphanage conformance matrix</title>"),
        || format!("the title changed: a script ran?\n{dom}"),
    )?;
    // (The serializer writes quotes in text as they are: look for elements.)
    for element in ["<p id=\"pwned\"", "<script", "<img"] {
        check(!dom.contains(element), || {
            let at = dom.find(element).unwrap_or(0);
            let from = dom[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            format!(
                "the hostile text reached the DOM as {element}: ...{}",
                &dom[from..]
            )
        })?;
    }
    check(dom.contains("<table class=\"matrix\">"), || {
        format!("no matrix table:\n{dom}")
    })?;
    check(dom.contains("<b class=\"fail\">1 fail</b>"), || {
        format!("no counts:\n{dom}")
    })?;
    check(
        dom.contains("write() after F_SEAL_WRITE succeeded: expected EPERM"),
        || format!("the failing cell's reason is not on the page:\n{dom}"),
    )?;
    // The hostile text is there, as text, with its escapes gone.
    check(dom.contains("&lt;script&gt;document.title='pwned'"), || {
        format!("the hostile text is not shown as text:\n{dom}")
    })?;
    check(
        dom.contains("*missing*") || dom.contains("class=\"o missing\""),
        || format!("the hostile report has no kill::only_here: it must show as missing\n{dom}"),
    )?;
    check(!dom.contains('\u{1b}'), || {
        "an ANSI escape reached the page".into()
    })?;

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("merge-matrix.png");
    run_browser(
        program,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000".into(),
            url,
        ],
    )?;
    let png = std::fs::read(&shot).unwrap_or_default();
    check(png.starts_with(b"\x89PNG") && png.len() > 10_000, || {
        format!("no screenshot at {} ({} bytes)", shot.display(), png.len())
    })
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![Trial::ignorable_test(
        "the_page_renders_and_the_hostile_script_does_not_run",
        || match browser() {
            Ok(program) => the_page_renders_and_the_hostile_script_does_not_run(&program)
                .map(|_| Completion::Completed),
            Err(missing) if require_all() => {
                Err(format!("ORPHANAGE_REQUIRE_ALL=1 but {missing}").into())
            }
            Err(missing) => Ok(Completion::ignored_with(missing)),
        },
    )];
    libtest_mimic::run(&args, trials).exit();
}
