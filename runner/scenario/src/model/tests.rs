//! The model pinned against the cases of seed 002 and CHECKS.md sections 1
//! to 3, against every modelled scenario in suites/, and generated trees
//! against the parser.

use super::*;
use crate::{parse, to_yaml, Scenario};
use proptest::prelude::*;
use rstest::rstest;

/// Runs the model over a scenario and returns every step where it disagrees
/// with the scenario's own expectations, or why it cannot model it.
fn disagreements(s: &Scenario, defect: Defect) -> Result<Vec<String>, NotModelled> {
    let mut world = World::new(s.root_name(), defect);
    let mut found = vec![];
    for (i, step) in s.steps.iter().enumerate() {
        if let Some(d) = world.apply(step)?.disagreement {
            found.push(format!("step {} ({}): {d}", i + 1, step.keyword()));
        }
    }
    Ok(found)
}

fn scenario(steps: &str) -> Scenario {
    let text = format!("checks: a model case\nrefs: [model]\nsteps:\n{steps}");
    parse("case.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

// Each case: the steps with their expectations, and whether the model with
// the subreaper rule removed must disagree (so the case can fail).
#[rstest]
// Seed 002: the double fork of a daemon under a PR_SET_CHILD_SUBREAPER
// process; the daemon is not re-parented to PID 1 (CHECKS 1.10).
#[case::seed002_double_fork_daemon_stays_with_subreaper(
    "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - spawn: {name: first, by: sub}\n  - spawn: {name: daemon, by: first}\n  - exit: {by: first}\n  - expect_parent: {of: daemon, is: sub}\n",
    true
)]
// Seed 002, find_new_reaper step 1: another thread of the group (CHECKS 1.8).
#[case::seed002_thread_group_first(
    "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - spawn: {name: p, by: sub}\n  - spawn: {name: t, by: p, how: thread}\n  - spawn: {name: c, by: t}\n  - exit: {by: t}\n  - expect_parent: {of: c, is: p}\n  - expect_state: {of: t, is: gone}\n",
    false
)]
// Seed 002, step 3: no subreaper, the namespace's init adopts (CHECKS 1.6).
#[case::seed002_no_subreaper_init_adopts(
    "  - spawn: {name: middle}\n  - spawn: {name: leaf, by: middle}\n  - exit: {by: middle}\n  - expect_parent: {of: leaf, is: init}\n",
    false
)]
// Seed 002, the pid->level check: a subreaper outside a child pid namespace
// never adopts from inside it (CHECKS 1.9).
#[case::seed002_subreaper_does_not_cross_pid_namespace(
    "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - spawn: {name: nsinit, by: sub, how: pid_namespace}\n  - spawn: {name: middle, by: nsinit}\n  - spawn: {name: leaf, by: middle}\n  - exit: {by: middle}\n  - expect_parent: {of: leaf, is: nsinit}\n",
    false
)]
// CHECKS 1.2: the nearest subreaper ancestor adopts.
#[case::nearest_subreaper_adopts(
    "  - spawn: {name: outer}\n  - set_subreaper: {by: outer}\n  - spawn: {name: inner, by: outer}\n  - set_subreaper: {by: inner}\n  - spawn: {name: middle, by: inner}\n  - spawn: {name: leaf, by: middle}\n  - exit: {by: middle}\n  - expect_parent: {of: leaf, is: inner}\n",
    true
)]
// CHECKS 1.3: when the nearest subreaper exits too, the next one out adopts.
#[case::nested_subreapers_hand_on(
    "  - spawn: {name: outer}\n  - set_subreaper: {by: outer}\n  - spawn: {name: inner, by: outer}\n  - set_subreaper: {by: inner}\n  - spawn: {name: middle, by: inner}\n  - spawn: {name: leaf, by: middle}\n  - exit: {by: middle}\n  - exit: {by: inner}\n  - expect_parent: {of: leaf, is: outer}\n  - expect_state: {of: inner, is: zombie}\n  - expect_parent: {of: inner, is: outer}\n",
    true
)]
// CHECKS 1.4: the adopter gets SIGCHLD and reaps with the exact status.
#[case::adopter_gets_sigchld_and_reaps(
    "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - catch: {by: sub, signals: [SIGCHLD]}\n  - spawn: {name: middle, by: sub}\n  - spawn: {name: leaf, by: middle}\n  - exit: {by: middle}\n  - exit: {by: leaf, code: 3}\n  - expect_signal: {of: sub, signal: SIGCHLD, from: leaf}\n  - wait: {by: sub, for: leaf, status: {exited: 3}}\n  - expect_state: {of: leaf, is: gone}\n",
    true
)]
// CHECKS 1.5: fork does not pass the flag on.
#[case::fork_does_not_inherit_the_flag(
    "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - spawn: {name: child, by: sub}\n  - expect_subreaper: {of: sub, is: 1}\n  - expect_subreaper: {of: child, is: 0}\n",
    false
)]
// CHECKS 1.7: a subreaper that clears its flag is skipped.
#[case::cleared_subreaper_is_skipped(
    "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - spawn: {name: middle, by: sub}\n  - spawn: {name: leaf, by: middle}\n  - set_subreaper: {by: sub, value: 0}\n  - exit: {by: middle}\n  - expect_parent: {of: leaf, is: init}\n",
    false
)]
// CHECKS 1.7: set after the descendants exist, it still adopts them.
#[case::set_after_descendants_exist(
    "  - spawn: {name: sub}\n  - spawn: {name: middle, by: sub}\n  - spawn: {name: leaf, by: middle}\n  - set_subreaper: {by: sub, value: 7}\n  - exit: {by: middle}\n  - expect_parent: {of: leaf, is: sub}\n",
    true
)]
// CHECKS 2.1: a zombie stays until waited, then is gone.
#[case::zombie_stays_until_waited(
    "  - spawn: {name: c}\n  - exit: {by: c, code: 5}\n  - expect_state: {of: c, is: zombie}\n  - wait: {for: c, status: {exited: 5}}\n  - expect_state: {of: c, is: gone}\n",
    false
)]
// CHECKS 2.2: SIG_IGN reaps automatically; wait gets ECHILD.
#[case::sig_ign_auto_reaps(
    "  - spawn: {name: p}\n  - ignore: {by: p, signal: SIGCHLD}\n  - spawn: {name: c, by: p}\n  - exit: {by: c}\n  - expect_state: {of: c, is: gone}\n  - wait: {by: p, for: any, flags: [WNOHANG], errno: ECHILD}\n",
    false
)]
// CHECKS 2.2: SA_NOCLDWAIT reaps automatically and still sends SIGCHLD.
#[case::sa_nocldwait_auto_reaps_and_signals(
    "  - spawn: {name: p}\n  - catch: {by: p, signals: [SIGCHLD], nocldwait: true}\n  - spawn: {name: c, by: p}\n  - exit: {by: c}\n  - expect_state: {of: c, is: gone}\n  - expect_signal: {of: p, signal: SIGCHLD, from: c}\n",
    false
)]
// CHECKS 2.2 (wait(2) NOTES): a zombie that exists before SIG_IGN stays.
#[case::zombie_outlives_late_sig_ign(
    "  - spawn: {name: c}\n  - exit: {by: c}\n  - ignore: {signal: SIGCHLD}\n  - expect_state: {of: c, is: zombie}\n",
    false
)]
// CHECKS 2.2 via reparent_leader(): a zombie handed to an ignoring adopter is reaped.
#[case::zombie_adopted_by_ignoring_subreaper_is_reaped(
    "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - ignore: {by: sub, signal: SIGCHLD}\n  - spawn: {name: middle, by: sub}\n  - catch: {by: middle, signals: [SIGCHLD]}\n  - spawn: {name: z, by: middle}\n  - exit: {by: z}\n  - expect_state: {of: z, is: zombie}\n  - exit: {by: middle}\n  - expect_state: {of: z, is: gone}\n",
    true
)]
// CHECKS 2.3: WNOWAIT leaves the child waitable.
#[case::wnowait_leaves_the_child_waitable(
    "  - spawn: {name: c}\n  - exit: {by: c, code: 2}\n  - wait: {for: c, api: waitid, flags: [WNOWAIT], status: {exited: 2}}\n  - expect_state: {of: c, is: zombie}\n  - wait: {for: c, api: waitid, status: {exited: 2}}\n  - expect_state: {of: c, is: gone}\n",
    false
)]
// CHECKS 2.6: the namespace init's exit kills the namespace.
#[case::ns_init_exit_kills_the_namespace(
    "  - spawn: {name: nsinit, how: pid_namespace}\n  - spawn: {name: child, by: nsinit}\n  - spawn: {name: grandchild, by: child}\n  - spawn: {name: inner, by: child, how: pid_namespace}\n  - exit: {by: nsinit}\n  - expect_state: {of: child, is: gone}\n  - expect_state: {of: grandchild, is: gone}\n  - expect_state: {of: inner, is: gone}\n  - expect_state: {of: nsinit, is: zombie}\n  - wait: {for: nsinit, status: {exited: 0}}\n",
    false
)]
// CHECKS 2.6, pid_namespaces(7): SIGKILL from inside does not kill the init; from outside it does.
#[case::ns_init_sigkill_only_from_outside(
    "  - spawn: {name: nsinit, how: pid_namespace}\n  - spawn: {name: child, by: nsinit}\n  - kill: {by: child, target: nsinit, signal: SIGKILL}\n  - expect_state: {of: nsinit, is: alive}\n  - kill: {target: nsinit, signal: SIGKILL}\n  - expect_state: {of: child, is: gone}\n  - wait: {for: nsinit, status: {signaled: SIGKILL}}\n",
    false
)]
// CHECKS 3.1: a CLONE_PARENT child is the caller's sibling.
#[case::clone_parent_makes_a_sibling(
    "  - spawn: {name: shared}\n  - spawn: {name: caller, by: shared}\n  - spawn: {name: sib, by: caller, how: clone_parent}\n  - expect_parent: {of: sib, is: shared}\n  - wait: {by: caller, for: sib, flags: [WNOHANG], errno: ECHILD}\n  - exit: {by: sib, code: 4}\n  - wait: {by: shared, for: sib, status: {exited: 4}}\n",
    false
)]
// CHECKS 3.2: the sibling's exit signal is the caller's, whatever clone was asked.
#[case::sibling_exit_signal_is_the_callers(
    "  - spawn: {name: shared}\n  - catch: {by: shared, signals: [SIGCHLD, SIGUSR1]}\n  - spawn: {name: caller, by: shared, how: clone, exit_signal: SIGUSR1}\n  - spawn: {name: sib, by: caller, how: clone_parent, exit_signal: SIGUSR2}\n  - exit: {by: sib}\n  - expect_signal: {of: shared, signal: SIGUSR1, from: sib}\n  - expect_signal: {of: shared, signal: SIGCHLD, count: 0}\n  - wait: {by: shared, for: sib, flags: [__WALL], status: {exited: 0}}\n",
    false
)]
// CHECKS 3.3: an init may not clone a sibling.
#[case::init_gets_einval_for_clone_parent(
    "  - spawn: {name: a, how: clone_parent, errno: EINVAL}\n  - spawn: {name: nsinit, how: pid_namespace}\n  - spawn: {name: b, by: nsinit, how: clone3_parent, errno: EINVAL}\n  - spawn: {name: c, by: nsinit, how: clone_parent, errno: EINVAL}\n",
    false
)]
// CHECKS 3.5: youki's manager, intermediate and sibling init.
#[case::youki_sibling_init_stays_with_the_manager(
    "  - spawn: {name: manager}\n  - set_subreaper: {by: manager}\n  - catch: {by: manager, signals: [SIGCHLD]}\n  - spawn: {name: intermediate, by: manager}\n  - spawn: {name: cinit, by: intermediate, how: clone_parent}\n  - exit: {by: intermediate}\n  - wait: {by: manager, for: intermediate, status: {exited: 0}}\n  - expect_parent: {of: cinit, is: manager}\n  - expect_state: {of: intermediate, is: gone}\n",
    false
)]
fn the_model_agrees_with_the_documented_cases(#[case] steps: &str, #[case] needs_subreaper: bool) {
    let s = scenario(steps);
    assert_eq!(disagreements(&s, Defect::None), Ok(vec![]));
    // The same case through a model without the subreaper rule: the cases
    // that rest on it must notice.
    let without = disagreements(&s, Defect::NoSubreaper).unwrap();
    assert_eq!(!without.is_empty(), needs_subreaper, "{without:?}");
}

#[rstest]
#[case::another_live_thread(Some("t"), true, "t")]
#[case::nearest_subreaper_in_the_namespace(None, true, "sub")]
#[case::not_across_the_namespace(None, false, "nsinit")]
fn find_new_reaper_walks_as_the_kernel_does(
    #[case] thread: Option<&str>,
    #[case] same_level: bool,
    #[case] reaper: &str,
) {
    let ancestors = [
        Ancestor {
            name: "plain",
            level: 1,
            is_child_subreaper: false,
        },
        Ancestor {
            name: "sub",
            level: if same_level { 1 } else { 0 },
            is_child_subreaper: true,
        },
    ];
    assert_eq!(
        find_new_reaper(thread, &ancestors, 1, "nsinit", Defect::None),
        reaper
    );
}

#[rstest]
#[case::default_keeps_the_zombie(Disposition::Default, false, None, false)]
#[case::handler_gets_it(Disposition::Handler { nocldwait: false }, true, Some(nix::libc::SIGCHLD), false)]
#[case::nocldwait_reaps_and_signals(Disposition::Handler { nocldwait: true }, true, Some(nix::libc::SIGCHLD), true)]
#[case::sig_ign_reaps_silently(Disposition::Ignore, false, None, true)]
fn do_notify_parent_decides_signal_and_reaping(
    #[case] d: Disposition,
    #[case] caught: bool,
    #[case] delivered: Option<i32>,
    #[case] autoreaped: bool,
) {
    assert_eq!(
        notify_parent(nix::libc::SIGCHLD, d, caught),
        Notification {
            delivered,
            autoreaped
        }
    );
}

/// Every scenario of the subreaper, zombie and sibling suites whose steps
/// the model covers: the model must agree with each expectation in it.
#[test]
fn the_model_agrees_with_the_suites() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../suites");
    let (mut modelled, mut wrong) = (vec![], vec![]);
    for area in ["subreaper", "zombie", "sibling"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(area))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let s = parse(&path.display().to_string(), &text).unwrap();
            match disagreements(&s, Defect::None) {
                Ok(d) if d.is_empty() => modelled.push(path.display().to_string()),
                Ok(d) => wrong.push(format!("{}: {d:?}", path.display())),
                Err(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(
        modelled.len() >= 20,
        "only {} modelled: {modelled:#?}",
        modelled.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A generated tree is a valid scenario: it passes the parser's checks,
    /// survives being written as a file, and agrees with its own model.
    #[test]
    fn generated_trees_are_valid_scenarios(tree in tree_strategy(8)) {
        let g = tree.to_scenario("a generated tree", Defect::None);
        let text = to_yaml(&g.scenario, "generated");
        let back = parse("generated.yaml", &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &g.scenario);
        prop_assert_eq!(disagreements(&back, Defect::None), Ok(vec![]));
        for n in &tree.nodes {
            prop_assert!(n.by <= tree.nodes.len());
        }
    }

    /// For a kernel without pid namespaces: no node is a namespace's init,
    /// and the tree is as valid as any other.
    #[test]
    fn trees_without_pid_namespaces_hold_none(tree in tree_strategy_without_pid_namespaces(8)) {
        prop_assert!(tree.nodes.iter().all(|n| n.how != crate::step::SpawnHow::PidNamespace));
        let g = tree.to_scenario("a generated tree", Defect::None);
        prop_assert_eq!(disagreements(&g.scenario, Defect::None), Ok(vec![]));
    }
}
