//! Scenarios that can tell a broken kernel from a working one (issue 16).
//! A wrong fixture edits what a scenario expects; these tests edit what
//! happens instead, doing by hand what a kernel that broke the scenario's
//! `checks:` line would do, and assert that the scenario now fails at the step
//! that should catch it. Some also run the scenario as it was before it was
//! strengthened, to show that the old form passed the same misbehaviour.

mod common;

use common::{repo, run_with_report};

/// Runs suites/`scenario` with each (from, to) replacement applied, and
/// returns its outcome and reason.
fn run_edited(scenario: &str, edits: &[(&str, &str)]) -> (String, String) {
    let mut text = std::fs::read_to_string(repo().join("suites").join(scenario)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{scenario} has no `{from}`");
        text = text.replacen(from, to, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("fixture")).unwrap();
    std::fs::write(dir.path().join("fixture/edited.yaml"), text).unwrap();
    let run = run_with_report(dir.path(), &[], &[]);
    let r = run.result("fixture::edited");
    (
        r["outcome"].as_str().unwrap().to_string(),
        r["reason"].as_str().unwrap().to_string(),
    )
}

fn assert_fails_at(result: &(String, String), step: &str, needle: &str) {
    let (outcome, reason) = result;
    assert_eq!(outcome, "fail", "{reason}");
    assert!(reason.starts_with(step), "expected `{step}`: {reason}");
    assert!(reason.contains(needle), "expected `{needle}`: {reason}");
}

/// What waitid(P_ALL) answers where waitid(P_PIDFD) was asked: the answer of
/// a kernel that ignored the pidfd.
const PIDFD_WAIT_AS_P_ALL: (&str, &str) = (
    "wait: {for: child, api: pidfd, flags: [WNOHANG], status: running}",
    "wait: {for: any, api: waitid, flags: [WNOHANG], status: running}",
);

#[test]
fn waitid_pidfd_answered_as_p_all_fails_now_that_another_child_is_waitable() {
    let strengthened = run_edited("zombie/waitid_pidfd_reaps.yaml", &[PIDFD_WAIT_AS_P_ALL]);
    assert_fails_at(
        &strengthened,
        "step 5 (wait): ",
        "expected nothing to report yet, observed exited 4",
    );
    // Without the second waitable child (as the scenario was), P_ALL passed.
    let before = run_edited(
        "zombie/waitid_pidfd_reaps.yaml",
        &[
            PIDFD_WAIT_AS_P_ALL,
            ("  - spawn: {name: other}\n", ""),
            ("  - exit: {by: other, code: 4}\n", ""),
            ("  - expect_state: {of: other, is: zombie}\n", ""),
            ("  - wait: {for: other, status: {exited: 4}}\n", ""),
        ],
    );
    assert_eq!(before.0, "pass", "{}", before.1);
}

#[test]
fn waitid_pidfd_on_a_stranger_answered_as_p_all_fails_now_that_the_stranger_has_a_child() {
    let result = run_edited(
        "zombie/waitid_pidfd_non_child_echild.yaml",
        &[(
            "wait: {by: stranger, for: child, api: pidfd, errno: ECHILD}",
            "wait: {by: stranger, for: any, api: waitid, errno: ECHILD}",
        )],
    );
    assert_fails_at(
        &result,
        "step 7 (wait): ",
        "expected ECHILD, observed success",
    );
}

#[test]
fn a_wrong_exit_signal_from_another_sender_fails_count_0() {
    // The kernel's mistake, done by hand: SIGUSR1 reaches the shared parent,
    // but not from the sibling. With `from: sib` this passed.
    let result = run_edited(
        "sibling/exit_signal_is_the_callers.yaml",
        &[(
            "  - exit: {by: sib, code: 2}\n",
            "  - exit: {by: sib, code: 2}\n  - kill: {by: caller, target: shared, signal: SIGUSR1}\n",
        )],
    );
    assert_fails_at(
        &result,
        "step 8 (expect_signal): ",
        "expected no SIGUSR1, observed 1",
    );
    // With `from: sib`, as the scenario was, this SIGUSR1 would not have been
    // counted: caller sent it. `count: 0` with `from` is now refused before
    // anything runs (fixtures/malformed/count_0_narrowed_by_from.yaml).
}

#[test]
fn only_sigkill_can_end_the_namespace_members_of_ns_init_exit_kills_namespace() {
    // Every catchable signal a kernel might send instead of SIGKILL leaves
    // both processes alive, so the scenario's `gone` checks would fail.
    let result = run_edited(
        "zombie/ns_init_exit_kills_namespace.yaml",
        &[(
            "  - exit: {by: nsinit, code: 0}\n",
            "  - kill: {by: nsinit, target: grandchild, signal: SIGTERM}\n\
             \x20 - kill: {by: nsinit, target: grandchild, signal: SIGINT}\n\
             \x20 - kill: {by: nsinit, target: grandchild, signal: SIGQUIT}\n\
             \x20 - kill: {by: nsinit, target: grandchild, signal: SIGHUP}\n\
             \x20 - kill: {by: nsinit, target: grandchild, signal: SIGTERM, group: true}\n\
             \x20 - kill: {by: nsinit, target: child, signal: SIGTERM}\n\
             \x20 - kill: {by: nsinit, target: child, signal: SIGQUIT}\n\
             \x20 - expect_state: {of: child, is: gone, within: 200ms}\n",
        )],
    );
    assert_fails_at(
        &result,
        "step 14 (expect_state): ",
        "child's state: expected gone, observed alive",
    );
}

#[test]
fn a_subreaper_flag_in_the_clone_child_is_caught_by_the_adoption() {
    // As if clone had passed the flag on (the read-back alone was the old check).
    let result = run_edited(
        "subreaper/fork_does_not_inherit_flag.yaml",
        &[(
            "  - spawn: {name: middle2, by: cloned}\n",
            "  - set_subreaper: {by: cloned}\n  - spawn: {name: middle2, by: cloned}\n",
        )],
    );
    assert_fails_at(
        &result,
        "step 16 (expect_parent): ",
        "leaf2's parent: expected sub",
    );
}
