//! suites/CHECKS.md is the list of behaviours the scenarios cite as
//! `CHECKS n.m`. Every such reference must resolve to an entry there that
//! links the citing scenario back, and every link in the list must lead to a
//! file, so the list cannot drift from the suites.

mod common;

use common::repo;
use std::collections::BTreeMap;

/// Each entry of suites/CHECKS.md: its number and its text.
fn entries() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("suites/CHECKS.md")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("- **"))
        .filter_map(|l| l.split_once("** "))
        .map(|(number, rest)| (number.to_string(), rest.to_string()))
        .collect()
}

/// Every `CHECKS n.m` (or `CHECKS.md n.m`) in the text.
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("CHECKS") {
        let rest = text[at + "CHECKS".len()..]
            .strip_prefix(".md")
            .unwrap_or(&text[at + "CHECKS".len()..]);
        let Some(rest) = rest.strip_prefix(' ') else {
            continue;
        };
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if number.contains('.') {
            found.push(number.to_string());
        }
    }
    found
}

#[test]
fn every_checks_reference_in_suites_resolves_to_an_entry_that_links_back() {
    let entries = entries();
    assert!(entries.len() >= 40, "{entries:#?}");
    let mut problems = Vec::new();
    let mut seen = 0;
    for area in std::fs::read_dir(repo().join("suites")).unwrap().flatten() {
        if !area.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(area.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap();
            let scenario = format!(
                "{}/{}",
                area.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            for number in references(&text) {
                seen += 1;
                match entries.get(&number) {
                    None => problems.push(format!(
                        "suites/{scenario} cites CHECKS {number}, which suites/CHECKS.md lacks"
                    )),
                    Some(entry) if !entry.contains(&format!("]({scenario})")) => {
                        problems.push(format!(
                        "suites/CHECKS.md {number} does not link suites/{scenario}, which cites it"
                    ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        seen >= 70,
        "only {seen} references found: is the pattern right?"
    );
}

#[test]
fn every_link_in_the_checks_list_resolves() {
    let text = std::fs::read_to_string(repo().join("suites/CHECKS.md")).unwrap();
    let mut links = 0;
    for (at, _) in text.match_indices("](") {
        let target: String = text[at + 2..].chars().take_while(|c| *c != ')').collect();
        let path = repo().join("suites").join(&target);
        assert!(
            path.is_file(),
            "suites/CHECKS.md links {target}, which does not exist"
        );
        links += 1;
    }
    assert!(links >= 100, "{links}");
}

#[test]
fn every_host_entry_links_a_wrong_fixture() {
    // Runtime-only entries are proven by tests/runtime.rs's misbehaving
    // runtimes; 7.x by the probes and the VM tests (named in their text).
    for (number, entry) in entries() {
        let host = !entry.starts_with("Runtime target") && !number.starts_with("7.");
        if host && entry.contains("Scenarios: ") {
            assert!(
                entry.contains("](../fixtures/wrong/"),
                "suites/CHECKS.md {number} links no wrong fixture that shows its scenarios failing"
            );
        }
    }
}

#[test]
fn every_runtime_entry_links_a_misbehaving_init_or_runtime() {
    let mut runtime_entries = 0;
    for (number, entry) in entries() {
        if entry.starts_with("Runtime target") && entry.contains("Scenarios: ") {
            runtime_entries += 1;
            assert!(
                entry.contains("](../fixtures/runtime/misbehaving/"),
                "suites/CHECKS.md {number} links no misbehaving init or runtime that shows its scenarios failing"
            );
        }
    }
    assert!(runtime_entries >= 6, "{runtime_entries}");
}

#[test]
fn references_are_found_in_every_spelling_the_suites_use() {
    assert_eq!(
        references(
            "# CHECKS 1.2\n  - CHECKS 5.1 (x)\n# CHECKS 6.2 — y\n(CHECKS 6.3).\nCHECKS.md 2.1"
        ),
        ["1.2", "5.1", "6.2", "6.3", "2.1"]
    );
    assert!(references("CHECKS.md's list").is_empty());
}
