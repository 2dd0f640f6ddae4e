//! Parsing and validation: text in, a checked `Scenario` or one positioned error out.

use crate::names::{with_scope, ROOT_IN_CALLER_NAMESPACE, ROOT_IN_FRESH_NAMESPACE};
use crate::scenario::{Namespace, Scenario};
use crate::step::{SpawnHow, Step};
use crate::yaml_errors::{
    check_syntax as check_yaml_syntax, explain as explain_yaml_error, list_item_position,
    top_level_key_position, YamlProblem,
};
use std::fmt;

/// A scenario file that cannot be run, with the position to blame where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub path: String,
    /// 1-based line and column.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Parses and validates one scenario. `path` is only used in messages.
/// The largest scenario file: past this it is a generator's runaway, not a
/// behaviour someone wrote down.
pub const MAX_SCENARIO_BYTES: usize = 1 << 20;
/// The most steps, and the most processes and threads (`spawn` steps), a
/// scenario may have.
pub const MAX_STEPS: usize = 10_000;
pub const MAX_PROCESSES: usize = 4_096;

pub fn parse(path: &str, text: &str) -> Result<Scenario, ParseError> {
    let whole = |message: String| ParseError {
        path: path.to_string(),
        position: None,
        message,
    };
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(whole(format!(
            "the file is {} bytes; a scenario may be at most 1 MiB",
            text.len()
        )));
    }
    // Editors on some systems begin UTF-8 files with a byte-order mark, which
    // YAML would otherwise read as part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Plain YAML first: a syntax error or a duplicate key is reported as
    // such, not as whatever the types would make of a half-read document.
    check_yaml_syntax(text).map_err(|p| ParseError {
        path: path.to_string(),
        position: p.position,
        message: p.message,
    })?;
    let scenario: Scenario = with_scope(|| yaml_serde::from_str(text)).map_err(|e| {
        let YamlProblem {
            mut position,
            message,
        } = explain_yaml_error(text, &e);
        // A bad value of a top-level key comes back blamed on the document's
        // start; such messages begin with the key, so point at its line instead.
        if let Some(key) = message
            .split(':')
            .next()
            .filter(|k| TOP_LEVEL_KEYS.contains(k))
        {
            position = top_level_key_position(text, key).or(position);
        }
        ParseError {
            path: path.to_string(),
            position,
            message,
        }
    })?;
    if scenario.steps.len() > MAX_STEPS {
        return Err(ParseError {
            path: path.to_string(),
            position: list_item_position(text, "steps", MAX_STEPS),
            message: format!(
                "{} steps; a scenario may have at most {MAX_STEPS}",
                scenario.steps.len()
            ),
        });
    }
    let spawns = scenario
        .steps
        .iter()
        .filter(|s| s.keyword() == "spawn")
        .count();
    if spawns > MAX_PROCESSES {
        return Err(whole(format!(
            "{spawns} processes and threads; a scenario may have at most {MAX_PROCESSES}"
        )));
    }
    validate(&scenario)
        .and_then(|()| match crate::model::authoring_mistake(&scenario) {
            Some((step, message)) => Err((Some(step), message)),
            None => Ok(()),
        })
        .map_err(|(step, message)| ParseError {
            path: path.to_string(),
            position: step.and_then(|i| list_item_position(text, "steps", i)),
            message: match step {
                Some(i) => format!("steps[{i}]: {message}"),
                None => message,
            },
        })?;
    Ok(scenario)
}

/// Whether the machine's init may perform `step` itself (`namespace:
/// global_init`): a spawn of a sibling that must fail, and nothing else.
fn global_init_may_run(step: &Step) -> bool {
    matches!(
        step,
        Step::Spawn {
            by: None,
            how: SpawnHow::CloneParent | SpawnHow::Clone3ParentOrClone,
            errno: Some(_),
            ..
        }
    )
}

/// Checks what the types cannot express. Returns the offending step's index, if any.
fn validate(s: &Scenario) -> Result<(), (Option<usize>, String)> {
    if s.checks.trim().is_empty() || s.checks.contains('\n') {
        return Err((
            None,
            "`checks` must say what the scenario checks in one line".into(),
        ));
    }
    if s.refs.is_empty() {
        return Err((
            None,
            "`refs` must name at least one man page, commit or issue".into(),
        ));
    }
    if s.steps.is_empty() {
        return Err((
            None,
            "`steps` is empty: a scenario must do something".into(),
        ));
    }
    if s.init_mode.is_some() && s.namespace != Namespace::UnderInit {
        return Err((
            None,
            "`init_mode` needs `namespace: under_init` (an init program under test)".into(),
        ));
    }
    let (root, other) = match s.namespace {
        Namespace::Fresh => (ROOT_IN_FRESH_NAMESPACE, ROOT_IN_CALLER_NAMESPACE),
        Namespace::Caller => (ROOT_IN_CALLER_NAMESPACE, ROOT_IN_FRESH_NAMESPACE),
        // `init` is the init program under test: the agent cannot act for it,
        // only observe it (checked below).
        Namespace::UnderInit => (ROOT_IN_CALLER_NAMESPACE, ""),
        Namespace::GlobalInit => (ROOT_IN_FRESH_NAMESPACE, ROOT_IN_CALLER_NAMESPACE),
    };
    // The process each thread belongs to, and the processes that have threads.
    let mut process_of: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut threaded: std::collections::HashSet<&str> = std::collections::HashSet::new();
    // What each handle is, for the steps that work on one kind only.
    let mut handle_kind: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (i, step) in s.steps.iter().enumerate() {
        let fail = |m: String| Err((Some(i), m));
        if s.namespace == Namespace::GlobalInit && !global_init_may_run(step) {
            return fail(
                "with `namespace: global_init` the machine's init performs the steps itself: \
                 only a spawn by `init` with how: clone_parent or clone3_parent_or_clone and an \
                 errno (a sibling of the global init would have no parent)"
                    .into(),
            );
        }
        for (field, name) in step.actor_refs() {
            if s.namespace == Namespace::UnderInit
                && name.as_str() == ROOT_IN_FRESH_NAMESPACE
                && !matches!(
                    (step.keyword(), field),
                    ("expect_parent", "is")
                        | ("kill", "target")
                        | ("expect_signal", "from")
                        | ("expect_gone", "of")
                        | ("expect_alive", "of")
                )
            {
                return fail(format!(
                    "`{field}: init`: the init under test is not the agent's; it can only be \
                     the `is` of expect_parent, the `target` of kill, the `from` of expect_signal \
                     or in expect_gone's or expect_alive's `of`"
                ));
            }
            if name.as_str() == other {
                return fail(format!(
                    "`{field}: {other}`: with `namespace: {}` the agent's own process is `{root}`",
                    match s.namespace {
                        Namespace::Fresh => "fresh",
                        Namespace::Caller => "caller",
                        Namespace::UnderInit => "under_init",
                        Namespace::GlobalInit => "global_init",
                    },
                ));
            }
        }
        match step {
            Step::Spawn {
                name,
                by,
                how,
                exit_signal,
                ..
            } => {
                if by.as_ref().is_some_and(|b| b.as_str() == name.as_str()) {
                    return fail(format!("`{name}` cannot spawn itself"));
                }
                if exit_signal.is_some() && !how.takes_exit_signal() {
                    return fail(
                        "`exit_signal` needs `how: clone`, `clone_parent` or `clone3_parent`"
                            .into(),
                    );
                }
                let parent = by.as_ref().map_or(root, |b| b.as_str());
                let process = *process_of.get(parent).unwrap_or(&parent);
                if *how == SpawnHow::Thread {
                    process_of.insert(name.as_str(), process);
                    threaded.insert(process);
                } else if *how != SpawnHow::Fork && threaded.contains(process) {
                    // A raw clone skips libc's fork handlers; with other threads
                    // holding libc locks, the child could deadlock.
                    return fail(format!(
                        "`{process}` has threads: spawn from it with `how: fork`, not {how:?}"
                    ));
                }
            }
            // The root may exit as its last step when only the harness's
            // steps follow (runtime target): its exit status is the
            // container's, for expect_container_exit to read.
            Step::Exit { by, .. }
                if by.as_str() == root
                    && i + 1 < s.steps.len()
                    && s.steps[i + 1..].iter().all(Step::runs_in_harness) => {}
            Step::Exit { by, .. } | Step::Exec { by, .. } if by.as_str() == root => {
                return fail(format!(
                    "`{root}` runs the scenario and cannot {} (it exits when the steps end; it may \
                     exit as its last step only when the harness's steps alone follow)",
                    step.keyword()
                ));
            }
            Step::ExpectSubreaper {
                is,
                bad_pointer,
                errno,
                ..
            } => {
                let reads = is.is_some() && !*bad_pointer && errno.is_none();
                let faults = is.is_none() && *bad_pointer && errno.is_some();
                if !reads && !faults {
                    return fail(
                        "expect_subreaper takes either `is`, or `bad_pointer: true` with `errno`"
                            .into(),
                    );
                }
            }
            Step::Wait {
                status: Some(_),
                errno: Some(_),
                ..
            } => {
                return fail("a wait expects a `status` or an `errno`, not both".into());
            }
            Step::ExpectSignal {
                count: Some(0),
                within: Some(_),
                ..
            } => {
                return fail(
                    "`count: 0` is checked at once; `within` makes no sense with it".into(),
                );
            }
            Step::ExpectSignal {
                count: Some(0),
                at_most: Some(_),
                ..
            } => {
                return fail(
                    "`count: 0` already means none; `at_most` makes no sense with it".into(),
                );
            }
            Step::ExpectSignal {
                count,
                at_most: Some(most),
                ..
            } if *most < count.unwrap_or(1) => {
                return fail(format!(
                    "`at_most: {most}` is below `count: {}`: no number of signals could pass",
                    count.unwrap_or(1)
                ));
            }
            Step::ExpectSignal {
                count: Some(0),
                from: Some(from),
                ..
            } => {
                return fail(format!(
                    "`count: 0` with `from: {from}` would let the same signal from any other \
                     sender pass: with `count: 0`, leave out `from`"
                ));
            }
            Step::Ignore { signal, every, .. } if signal.is_some() == *every => {
                return fail("ignore takes either `signal` or `every: true`".into());
            }
            Step::MemfdCreate { handle, .. } => {
                handle_kind.insert(handle.as_str(), "a memfd");
            }
            Step::Pipe { read, write, .. } => {
                handle_kind.insert(read.as_str(), "a pipe");
                handle_kind.insert(write.as_str(), "a pipe");
            }
            Step::Mmap { map, .. } => {
                handle_kind.insert(map.as_str(), "a mapping");
            }
            Step::PidfdOpen { handle, .. } => {
                handle_kind.insert(handle.as_str(), "a pidfd");
            }
            Step::ExpectSize { handle, .. } => {
                let kind = handle_kind.get(handle.as_str()).copied();
                if kind != Some("a memfd") {
                    return fail(format!(
                        "expect_size needs a memfd, and `{handle}` is {}",
                        kind.unwrap_or("not one")
                    ));
                }
            }
            Step::MeasureExitDetection {
                samples,
                within: Some(within),
                ..
            } if within.0 * (*samples).max(1) > s.deadline() => {
                return fail(format!(
                    "{samples} samples of up to {within} each could outlast the scenario's \
                     deadline ({}): lower `within` or `samples`, or raise `deadline`",
                    crate::deadline::Deadline(s.deadline())
                ));
            }
            Step::Observe { of } if of.is_empty() => {
                return fail("observe needs at least one process in `of`".into());
            }
            Step::Sysctl { name, .. } => {
                if name != "vm.memfd_noexec" {
                    return fail(format!(
                        "sysctl `{name}` is not pid-namespaced; only vm.memfd_noexec may be written"
                    ));
                }
                if s.namespace != Namespace::Fresh {
                    return fail(
                        "sysctl needs `namespace: fresh`, or it would change the caller's".into(),
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "checks",
    "requires",
    "refs",
    "deadline",
    "namespace",
    "init_mode",
    "steps",
];

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const HEAD: &str = "checks: something\nrefs: [prctl(2)]\n";

    fn with_steps(steps: &str) -> String {
        format!("{HEAD}steps:\n{steps}")
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_key() {
        let text = format!("\u{feff}{}", with_steps("  - spawn: {name: a}\n"));
        assert_eq!(parse("x.yaml", &text).unwrap().steps.len(), 1);
    }

    #[test]
    fn files_steps_and_processes_have_limits() {
        let big = format!(
            "{}# {}\n",
            with_steps("  - spawn: {name: a}\n"),
            "x".repeat(MAX_SCENARIO_BYTES)
        );
        let e = parse("x.yaml", &big).unwrap_err();
        assert!(e.to_string().contains("at most 1 MiB"), "{e}");
        let many: String = (0..=MAX_STEPS)
            .map(|_| "  - spawn: {name: a}\n")
            .take(1)
            .chain((0..MAX_STEPS).map(|_| "  - exit: {by: a, code: 0}\n"))
            .collect();
        let e = parse("x.yaml", &with_steps(&many)).unwrap_err();
        assert!(
            e.to_string()
                .contains("10001 steps; a scenario may have at most 10000"),
            "{e}"
        );
        assert_eq!(e.position.map(|p| p.0), Some(10_004), "{e}");
        let spawns: String = (0..=MAX_PROCESSES)
            .map(|i| format!("  - spawn: {{name: p{i}}}\n"))
            .collect();
        let e = parse("x.yaml", &with_steps(&spawns)).unwrap_err();
        assert!(
            e.to_string()
                .contains("4097 processes and threads; a scenario may have at most 4096"),
            "{e}"
        );
    }

    #[test]
    fn a_complete_scenario_parses() {
        let text = with_steps(
            "  - spawn: {name: sub}\n  - set_subreaper: {by: sub}\n  - spawn: {name: leaf, by: sub}\n  - expect_parent: {of: leaf, is: sub}\n",
        );
        let s = parse("x.yaml", &text).unwrap();
        assert_eq!(s.steps.len(), 4);
        assert_eq!(s.root_name(), "init");
        assert!(s
            .required_features()
            .contains(&crate::Feature::ChildSubreaper));
    }

    #[rstest]
    #[case::unknown_top_level_key("bogus: 1\n", 3, 1, "unknown field `bogus`")]
    #[case::unknown_step("  - frobnicate: {by: init}\n", 4, 5, "unknown variant `frobnicate`")]
    #[case::unknown_step_key(
        "  - spawn: {name: a, parrent: init}\n",
        4,
        22,
        "unknown field `parrent`"
    )]
    #[case::undefined_process(
        "  - spawn: {name: a}\n  - exit: {by: b}\n",
        5,
        11,
        "undefined process `b`"
    )]
    #[case::used_before_spawn(
        "  - exit: {by: a}\n  - spawn: {name: a}\n",
        4,
        11,
        "undefined process `a`"
    )]
    #[case::spawned_twice("  - spawn: {name: a}\n  - spawn: {name: a}\n", 5, 12, "spawned twice")]
    #[case::reserved_name("  - spawn: {name: init}\n", 4, 12, "reserved")]
    #[case::bad_signal(
        "  - spawn: {name: a}\n  - kill: {target: a, signal: SIGFOO}\n",
        5,
        11,
        "unknown signal"
    )]
    #[case::bad_errno("  - set_subreaper: {errno: EWHAT}\n", 4, 20, "unknown errno")]
    #[case::undefined_handle("  - write: {handle: m, len: 1}\n", 4, 12, "undefined handle `m`")]
    #[case::bad_wait_status(
        "  - spawn: {name: a}\n  - wait: {for: a, status: {exitted: 1}}\n",
        5,
        29,
        "unknown variant `exitted`"
    )]
    fn malformed_files_are_blamed_at_their_position(
        #[case] body: &str,
        #[case] line: usize,
        #[case] column: usize,
        #[case] message: &str,
    ) {
        let text = if body.starts_with("  ") {
            with_steps(body)
        } else {
            format!("{HEAD}{body}steps: []\n")
        };
        let err = parse("f.yaml", &text).unwrap_err();
        assert!(err.message.contains(message), "{err}");
        assert_eq!(err.position, Some((line, column)), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("f.yaml:{line}:{column}: ")),
            "{err}"
        );
    }

    #[rstest]
    #[case::negative_deadline("deadline: -1s\n", "positive")]
    #[case::absurd_deadline("deadline: 1000000s\n", "absurd")]
    #[case::unitless_deadline("deadline: 10\n", "")]
    #[case::unknown_feature("requires: [time_travel]\n", "unknown variant `time_travel`")]
    #[case::bad_namespace("namespace: host\n", "unknown variant `host`")]
    fn bad_header_values_are_rejected(#[case] line: &str, #[case] message: &str) {
        let text = format!("{HEAD}{line}steps:\n  - spawn: {{name: a}}\n");
        let err = parse("f.yaml", &text).unwrap_err();
        assert!(err.message.contains(message), "{err}");
        assert_eq!(err.position.map(|p| p.0), Some(3), "{err}");
    }

    #[test]
    fn under_an_init_program_init_is_observed_never_driven() {
        let with = |step: &str| {
            parse(
                "f.yaml",
                &format!("{HEAD}namespace: under_init\nsteps:\n  - {step}\n"),
            )
        };
        assert!(with("expect_signal: {signal: SIGTERM, from: init}").is_ok());
        assert!(with("expect_parent: {of: agent, is: init}").is_ok());
        assert!(with("expect_alive: {of: [init]}").is_ok());
        let err = with("catch: {by: init, signals: [SIGTERM]}").unwrap_err();
        assert!(
            err.message
                .contains("the init under test is not the agent's"),
            "{err}"
        );
    }

    #[test]
    fn the_global_init_performs_only_sibling_spawns_that_must_fail() {
        let with = |step: &str| {
            parse(
                "f.yaml",
                &format!("{HEAD}namespace: global_init\nsteps:\n  - {step}\n"),
            )
        };
        assert!(with("spawn: {name: s, how: clone_parent, errno: EINVAL}").is_ok());
        assert!(with("spawn: {name: s, how: clone3_parent_or_clone, errno: EINVAL}").is_ok());
        for refused in [
            "spawn: {name: s, how: clone_parent}",
            "spawn: {name: s, errno: EINVAL}",
            "set_subreaper: {}",
        ] {
            let err = with(refused).unwrap_err();
            assert!(err.message.contains("global_init"), "{refused}: {err}");
        }
    }

    #[test]
    fn the_root_may_exit_last_when_only_the_harness_follows() {
        let text = format!(
            "{HEAD}steps:\n  - exit: {{by: init, code: 3}}\n  - expect_container_exit: {{status: {{exited: 3}}}}\n"
        );
        assert!(parse("f.yaml", &text).is_ok());
    }

    #[rstest]
    #[case::exit_of_root("  - exit: {by: init}\n", 4, "cannot exit")]
    #[case::exit_of_root_before_its_own_steps(
        "  - exit: {by: init}\n  - expect_container_exit: {status: {exited: 0}}\n  - spawn: {name: a}\n",
        4,
        "cannot exit"
    )]
    #[case::self_spawn("  - spawn: {name: a, by: a}\n", 4, "cannot spawn itself")]
    #[case::exit_signal_with_fork(
        "  - spawn: {name: a}\n  - spawn: {name: b, by: a, exit_signal: SIGUSR1}\n",
        5,
        "exit_signal"
    )]
    #[case::wrong_root_name(
        "  - spawn: {name: a, by: agent}\n",
        4,
        "the agent's own process is `init`"
    )]
    #[case::global_sysctl(
        "  - sysctl: {name: kernel.pid_max, value: '1'}\n",
        4,
        "not pid-namespaced"
    )]
    #[case::subreaper_neither("  - expect_subreaper: {}\n", 4, "either `is`")]
    #[case::clone_from_threaded_process("  - spawn: {name: p}\n  - spawn: {name: t, by: p, how: thread}\n  - spawn: {name: c, by: t, how: clone}\n", 6, "has threads")]
    #[case::wait_both(
        "  - spawn: {name: a}\n  - wait: {for: a, status: running, errno: ECHILD}\n",
        5,
        "not both"
    )]
    #[case::at_most_with_none(
        "  - expect_signal: {signal: SIGCHLD, count: 0, at_most: 1}\n",
        4,
        "already means none"
    )]
    #[case::at_most_below_count(
        "  - expect_signal: {signal: SIGCHLD, count: 3, at_most: 2}\n",
        4,
        "below `count: 3`"
    )]
    #[case::at_most_below_default_count(
        "  - expect_signal: {signal: SIGCHLD, at_most: 0}\n",
        4,
        "below `count: 1`"
    )]
    #[case::count_0_from(
        "  - spawn: {name: a}\n  - expect_signal: {signal: SIGUSR1, from: a, count: 0}\n",
        5,
        "leave out `from`"
    )]
    #[case::ignore_both(
        "  - ignore: {signal: SIGTERM, every: true}\n",
        4,
        "either `signal` or `every: true`"
    )]
    #[case::ignore_neither("  - ignore: {}\n", 4, "either `signal` or `every: true`")]
    #[case::size_of_a_pipe(
        "  - pipe: {read: r, write: w}\n  - expect_size: {handle: r, is: 0}\n",
        5,
        "`r` is a pipe"
    )]
    #[case::measure_outlasting_deadline(
        "  - measure_exit_detection: {method: pidfd, samples: 100, within: 1s}\n",
        4,
        "outlast the scenario's deadline (10s)"
    )]
    fn semantic_errors_name_the_step(
        #[case] body: &str,
        #[case] line: usize,
        #[case] message: &str,
    ) {
        let err = parse("f.yaml", &with_steps(body)).unwrap_err();
        assert!(err.message.contains(message), "{err}");
        assert_eq!(err.position.map(|p| p.0), Some(line), "{err}");
    }

    #[rstest]
    #[case::no_refs("checks: x\nrefs: []\nsteps:\n  - spawn: {name: a}\n", "refs")]
    #[case::no_steps("checks: x\nrefs: [a]\nsteps: []\n", "empty")]
    #[case::no_checks("refs: [a]\nsteps: []\n", "missing field `checks`")]
    #[case::not_yaml("checks: [x\n", "")]
    fn incomplete_files_are_rejected(#[case] text: &str, #[case] message: &str) {
        let err = parse("f.yaml", text).unwrap_err();
        assert!(err.message.contains(message), "{err}");
    }

    #[test]
    fn header_errors_point_at_their_key_even_after_comments() {
        let text =
            "# a comment\nchecks: x\nrefs: [y]\ndeadline: 0s\nsteps:\n  - spawn: {name: a}\n";
        assert_eq!(parse("f.yaml", text).unwrap_err().position, Some((4, 1)));
    }

    #[test]
    fn caller_namespace_uses_agent_as_root() {
        let text = format!("{HEAD}namespace: caller\nsteps:\n  - spawn: {{name: a, by: agent}}\n");
        assert_eq!(parse("f.yaml", &text).unwrap().root_name(), "agent");
        let text = format!("{HEAD}namespace: caller\nsteps:\n  - spawn: {{name: a, by: init}}\n");
        assert!(parse("f.yaml", &text).is_err());
    }

    #[test]
    fn scenarios_survive_the_trip_to_the_agent() {
        let text = with_steps(
            "  - spawn: {name: a, how: clone_parent, exit_signal: SIGUSR1}\n  - wait: {for: a, flags: [__WALL], status: {signaled: SIGKILL}}\n  - expect_pdeathsig: {of: a, is: none}\n",
        );
        let s = parse("f.yaml", &text).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: Scenario = serde_json::from_str(&json).unwrap();
        assert_eq!(s, back);
    }
}
