//! What reporters hear. A scenario's own events (`orphanage_scenario::Event`,
//! from the agent or from the harness on its behalf) travel inside, tagged with
//! the trial they belong to; the run's start and end frame them.

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
    /// Trials are about to run; `selected` of them pass the filters.
    RunStarted {
        selected: usize,
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
    /// Every trial is over (or the run was stopped): reporters write now.
    RunFinished,
}
