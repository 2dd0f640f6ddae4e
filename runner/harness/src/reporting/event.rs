//! What reporters hear. A scenario's own events (`orphanage_scenario::Event`,
//! from the agent or from the harness on its behalf) travel inside, tagged with
//! the trial they belong to; the run's start and end frame them, and the
//! executor's start and end frame the trials.

use super::conclusion::Conclusion;
use super::record::TrialRecord;
use orphanage_scenario::Event;
use std::path::PathBuf;

/// Who a trial is: enough for any reporter to name it and find its file.
#[derive(Debug, Clone)]
pub struct TrialInfo {
    /// The trial's name as libtest prints it (`runc:area::name`).
    pub name: String,
    pub area: String,
    /// The scenario file, as a newcomer would open it (`suites/area/name.yaml`).
    pub file: PathBuf,
    /// The target's label (`host`, `runc`, `runc+tini`, a kernel's name).
    pub target: String,
}

#[derive(Debug)]
pub enum RunEvent<'a> {
    /// Trials are about to run; `selected` of them pass the filters. A suite
    /// run says so before its targets are smoke-tested (KTAP's plan is out
    /// even when they refuse); the executor's own start is `ExecutionStarted`.
    RunStarted {
        selected: usize,
    },
    /// `--list`: these trials pass the filters; none will run.
    TrialsListed {
        trials: &'a [TrialInfo],
    },
    /// The executor starts these trials, in this order, `threads` at a time
    /// (one: each starts only once the one before has finished).
    ExecutionStarted {
        trials: &'a [TrialInfo],
        threads: usize,
    },
    TrialStarted {
        trial: &'a TrialInfo,
    },
    /// One event of a running trial, as it happens.
    Scenario {
        trial: &'a TrialInfo,
        event: &'a Event,
    },
    /// The trial is over; its record is the fold of its events.
    TrialFinished {
        trial: &'a TrialInfo,
        record: &'a TrialRecord,
    },
    /// The harness panicked running the trial: it failed, with no record.
    TrialPanicked {
        trial: &'a TrialInfo,
        message: &'a str,
    },
    /// The executor's last trial is over.
    ExecutionFinished {
        conclusion: &'a Conclusion,
    },
    /// Every trial is over (or the run was stopped): reporters write now.
    RunFinished,
}
