//! `orphanage explore`: a bounded exploration finds no mismatch on this
//! kernel; a deliberately wrong model is caught, shrunk and saved as a
//! scenario that fails when run normally; bad input exits 2 before anything
//! runs; the subcommand leaves the flat test-runner flags alone.

mod common;

use common::{orphanage, run_with_report};
use std::process::Output;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn explore(args: &[&str]) -> Output {
    orphanage().arg("explore").args(args).output().unwrap()
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
    ] {
        assert!(help.contains(flag), "{help}");
    }
    assert!(
        !help.contains("model-defect"),
        "the defect flag is for self-tests only"
    );
}
