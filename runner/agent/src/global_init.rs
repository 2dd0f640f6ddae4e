//! `namespace: global_init` on the VM target (CHECKS 3.3): the machine's own
//! init performs the scenario's steps itself. Each is a CLONE_PARENT spawn,
//! which Linux refuses from any init with EINVAL (kernel/fork.c
//! copy_process(): `current->signal->flags & SIGNAL_UNKILLABLE`), the global
//! one included: its sibling would have the idle task for a parent, and no
//! one to reap it.

use crate::spawn;
use crate::steps::expect_errno;
use orphanage_scenario::{Event, RootMode, Scenario, Step, Verdict};
use std::time::Instant;

/// Runs `scenario` here, in the machine's init; returns its events, the
/// verdict last, as an agent would have reported them.
pub fn run(scenario: &Scenario) -> Vec<Event> {
    let started = Instant::now();
    let mut events = vec![Event::Started {
        pid: nix::unistd::getpid().as_raw(),
        mode: RootMode::GlobalInit,
    }];
    let verdict = steps(scenario, &mut events)
        .err()
        .unwrap_or_else(Verdict::pass);
    events.push(Event::Finished {
        verdict,
        steps_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    events
}

fn steps(scenario: &Scenario, events: &mut Vec<Event>) -> Result<(), Verdict> {
    for (index, step) in scenario.steps.iter().enumerate() {
        events.push(Event::StepStarted {
            index,
            summary: step.keyword().to_string(),
        });
        // Parsing allows nothing else here.
        let Step::Spawn {
            name, how, errno, ..
        } = step
        else {
            return Err(Verdict::broken(format!(
                "step {} ({}): not the global init's to perform",
                index + 1,
                step.keyword()
            )));
        };
        let what = format!("{how:?} for `{name}`");
        // Every spawn here expects an errno (parsing sees to it), so a
        // success is a fail, whatever road it took.
        expect_errno("init", &what, spawn::sibling_of_global_init(*how), *errno).map_err(
            |mut v| {
                v.reason = format!("step {} (spawn): {}", index + 1, v.reason);
                v
            },
        )?;
    }
    Ok(())
}
