//! `orphanage explore`: a bounded exploration finds no mismatch on this
//! kernel; a deliberately wrong model is caught, shrunk and saved as a
//! scenario that fails when run normally; the outputs of a suite run
//! (`--report`, `--events`, `--junit`) record every tree; bad input exits 2
//! before anything runs; the subcommand leaves the flat test-runner flags alone.

mod common;

use common::{orphanage, run_with_report};
use std::process::Output;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn explore(args: &[&str]) -> Output {
    orphanage().arg("explore").args(args).output().unwrap()
}

fn json_file(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The event log's lines, each parsed.
fn event_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The number before `word` in a line of explore's output.
fn count_before(stdout: &str, word: &str) -> u64 {
    let at = stdout
        .find(word)
        .unwrap_or_else(|| panic!("{word}: {stdout}"));
    stdout[..at]
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before {word}: {stdout}"))
}

#[test]
fn sixty_four_generated_trees_agree_with_the_model_on_this_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("regressions");
    // No --seed: every run explores new trees; the seed is in the output.
    let out = explore(&["--cases", "64", "--save-to", save.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("(random); cases 0..64"), "{stdout}");
    assert!(stdout.contains("64 trees agree with the model"), "{stdout}");
    assert!(stdout.contains("rerun with --seed 0x"), "{stdout}");
    assert!(!save.exists(), "nothing to save, not even the directory");
}

#[test]
fn a_wrong_model_is_caught_shrunk_and_saved_as_a_failing_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("regressions");
    let out = explore(&[
        "--cases",
        "64",
        "--seed",
        "5",
        "--model-defect",
        "no-subreaper",
        "--save-to",
        save.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(101),
        "{stdout}{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("the kernel and the model disagree"),
        "{stdout}"
    );
    // The diff names expected (the wrong model) against observed (the kernel).
    assert!(
        stdout.contains("parent: expected init, observed"),
        "{stdout}"
    );
    assert!(stdout.contains("explore: shrunk in"), "{stdout}");
    assert!(stdout.contains("run normally, it fails"), "{stdout}");
    let saved: Vec<_> = std::fs::read_dir(&save).unwrap().flatten().collect();
    assert_eq!(saved.len(), 1, "{stdout}");
    let name = saved[0].file_name().to_string_lossy().into_owned();
    assert!(stdout.contains(&format!("saved {}", saved[0].path().display())));
    let yaml = std::fs::read_to_string(saved[0].path()).unwrap();
    assert!(yaml.contains("set_subreaper"), "{yaml}");
    assert!(yaml.contains("--model-defect no-subreaper"), "{yaml}");

    // It is a scenario like any other: --check accepts it...
    let check = orphanage()
        .arg("--suites")
        .arg(dir.path())
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    // ...and run normally on this kernel, it fails (the model was wrong).
    let run = run_with_report(dir.path(), &[], &[]);
    let test_name = format!("regressions::{}", name.trim_end_matches(".yaml"));
    assert_eq!(
        run.result(&test_name)["outcome"],
        "fail",
        "{}",
        run.stdout()
    );
    assert_eq!(run.code(), Some(101));
}

#[test]
fn every_tree_is_a_result_in_the_report_and_its_events_are_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (report, events, junit) = (
        dir.path().join("r.json"),
        dir.path().join("e.jsonl"),
        dir.path().join("j.xml"),
    );
    let save = dir.path().join("regressions");
    // The suite run's flags, after `explore` (--junit before it, as for a suite).
    let out = orphanage()
        .arg("--junit")
        .arg(&junit)
        .arg("explore")
        .args(["--cases", "20", "--save-to", save.to_str().unwrap()])
        .arg("--report")
        .arg(&report)
        .arg("--events")
        .arg(&events)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let agreed = count_before(&stdout, "trees agree with the model");
    assert_eq!(agreed, 20, "{stdout}");

    let json = json_file(&report);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 20, "{json:#}");
    // The summary agrees with what explore printed, and each tree is its case.
    assert_eq!(json["summary"]["pass"], agreed, "{json:#}");
    assert_eq!(json["cells"][0]["summary"]["pass"], agreed, "{json:#}");
    let mut names: Vec<&str> = results
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_by_key(|n| {
        n.trim_start_matches("explore::case_")
            .parse::<u64>()
            .unwrap()
    });
    let expected: Vec<String> = (0..20).map(|i| format!("explore::case_{i}")).collect();
    assert_eq!(names, expected);
    for r in results {
        assert_eq!(r["outcome"], "pass", "{r}");
        assert_eq!(r["area"], "explore", "{r}");
        assert_eq!(r["target"], "host", "{r}");
    }

    // Each tree's events, as the agent saw them: its start, its processes'
    // observations (what the model was compared with) and its verdict.
    let lines = event_lines(&events);
    for name in &expected {
        let of_tree: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["trial"] == name.as_str())
            .collect();
        let kind = |e: &serde_json::Value| e["event"]["event"].as_str().unwrap().to_string();
        assert_eq!(kind(of_tree[0]), "trial_started", "{name}");
        assert!(of_tree.iter().any(|e| kind(e) == "spawned"), "{name}");
        assert!(of_tree.iter().any(|e| kind(e) == "observed"), "{name}");
        assert_eq!(kind(of_tree.last().unwrap()), "finished", "{name}");
    }

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"tests="20""#), "{xml}");
    assert!(xml.contains(r#"classname="host.explore""#), "{xml}");
}

#[test]
fn a_tree_that_disagrees_is_a_fail_in_the_report_with_its_first_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = orphanage()
        .arg("--report")
        .arg(&report)
        .arg("explore")
        .args([
            "--cases",
            "64",
            "--seed",
            "5",
            "--model-defect",
            "no-subreaper",
        ])
        .arg("--save-to")
        .arg(dir.path().join("regressions"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(101),
        "{stdout}{}",
        text(&out.stderr)
    );
    // The first difference explore printed for the case, before shrinking.
    let first = stdout
        .lines()
        .skip_while(|l| !l.contains("the kernel and the model disagree"))
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"))
        .trim();
    let json = json_file(&report);
    let results = json["results"].as_array().unwrap();
    let case_7 = results
        .iter()
        .find(|r| r["name"] == "explore::case_7")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(case_7["outcome"], "fail", "{json:#}");
    assert_eq!(
        case_7["reason"],
        format!("the kernel and the model disagree (expected is the model): {first}"),
        "{json:#}"
    );
    assert!(
        first.contains("parent: expected init, observed"),
        "{stdout}"
    );
    // Trees still running when case 7 disagreed finish, and may disagree too.
    let failed = results.iter().filter(|r| r["outcome"] == "fail").count();
    assert_eq!(json["summary"]["fail"], failed, "{json:#}");
    assert_eq!(
        json["summary"]["pass"],
        results.len() - failed,
        "the others agreed: {json:#}"
    );
    // The shrinking runs are not cases: they stay out of the report.
    assert!(results.len() <= 64, "{json:#}");
    assert!(results
        .iter()
        .all(|r| r["name"].as_str().unwrap().starts_with("explore::case_")));
}

#[test]
fn an_output_file_before_and_after_explore_is_bad_input() {
    let out = orphanage()
        .args(["--report", "/tmp/orphanage-never.json", "explore"])
        .args(["--report", "/tmp/orphanage-never-either.json"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--report is given both before and after `explore`: give it once"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(!std::path::Path::new("/tmp/orphanage-never.json").exists());
    assert!(!std::path::Path::new("/tmp/orphanage-never-either.json").exists());
}

#[test]
fn the_same_seed_draws_the_same_trees() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().to_str().unwrap();
    let args = [
        "--cases",
        "40",
        "--seed",
        "0x5",
        "--model-defect",
        "no-subreaper",
        "--save-to",
        save,
    ];
    let first = text(&explore(&args).stdout);
    std::fs::remove_dir_all(dir.path()).unwrap();
    let second = text(&explore(&args).stdout);
    let found = |s: &str| {
        s.lines()
            .find(|l| l.contains("disagree"))
            .map(str::to_string)
    };
    assert!(found(&first).is_some(), "{first}");
    assert_eq!(found(&first), found(&second));
}

#[test]
fn bad_input_is_one_line_and_exit_2_before_anything_runs() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let under_a_file = file.path().join("regressions");
    for (args, message) in [
        (vec!["--cases", "0"], "--cases 0: must be at least 1"),
        (vec!["--jobs", "65"], "--jobs 65: must be from 1 to 64"),
        (vec!["--seed", "0xnope"], "--seed `0xnope`: not a seed"),
        (vec!["--seed", "12abc"], "--seed `12abc`: not a seed"),
        (
            vec!["--save-to", under_a_file.to_str().unwrap()],
            "--save-to",
        ),
    ] {
        let out = explore(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} ran something");
    }
}

#[test]
fn the_subcommand_leaves_filters_and_list_as_they_were() {
    let list = orphanage()
        .args(["subreaper::nearest", "--list"])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0));
    assert_eq!(
        text(&list.stdout).trim(),
        "subreaper::nearest_ancestor_adopts: test"
    );
    let help = orphanage().args(["explore", "--help"]).output().unwrap();
    let help = text(&help.stdout);
    for flag in [
        "--cases",
        "--seed",
        "--save-to",
        "--processes",
        "--jobs",
        "--from-case",
        "--report",
        "--events",
        "--junit",
    ] {
        assert!(help.contains(flag), "{help}");
    }
    assert!(
        !help.contains("model-defect"),
        "the defect flag is for self-tests only"
    );
}
