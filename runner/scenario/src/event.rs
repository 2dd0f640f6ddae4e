//! The one event type that flows from execution to reporting. The agent writes
//! these as JSON lines; the harness adds its own (timeouts, crashes) and the
//! reporters consume them all.

use crate::root_mode::RootMode;
use crate::step::ProcState;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The agent's root is running, with this pid in its own pid namespace
    /// (the harness's, except for a pid-namespace init, which sees 1), and
    /// stands where the scenario says `init` or `agent` in this `mode`.
    Started { pid: i32, mode: RootMode },
    /// A scenario process exists. `pid` and `start_time` (field 22 of
    /// /proc/PID/stat) are as the agent's root sees them; in the caller's
    /// namespace they let the harness kill it safely against pid reuse.
    Spawned {
        name: String,
        pid: i32,
        start_time: u64,
    },
    /// What an `observe` step saw of one process or thread. `pid` is as the
    /// agent's root sees it; `parent` is named from PPid in /proc/PID/status,
    /// `getppid` from getppid() inside it (None when it cannot answer or its
    /// parent is outside its pid namespace); `sigchld` counts the SIGCHLDs its
    /// `catch` handler ran for (None when it cannot answer).
    Observed {
        name: String,
        pid: i32,
        state: ProcState,
        parent: Option<String>,
        getppid: Option<String>,
        sigchld: Option<u32>,
    },
    /// Step `index` (0-based) is starting.
    StepStarted { index: usize, summary: String },
    /// Step `index` is the harness's (runtime target): the agent waits until
    /// the harness, having performed it and the harness steps right after it,
    /// writes the index of the step to go on from to the agent's stdin.
    Handoff { index: usize },
    /// A measured figure or an observation worth keeping in the report.
    Note { text: String },
    /// The scenario is over. `steps_ms` is the time the steps themselves took.
    Finished { verdict: Verdict, steps_ms: f64 },
}

/// The four outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The kernel or runtime did what Linux promises.
    Pass,
    /// It did something else; the reason shows expected against observed.
    Fail,
    /// A probed feature is missing; the reason gives the probe, its errno and what is needed.
    Unsupported,
    /// The harness or the agent itself failed; the scenario says nothing about the target.
    Broken,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Unsupported => "unsupported",
            Outcome::Broken => "broken",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub reason: String,
    /// What kind of fail it is, when it is more than a wrong answer. Absent
    /// for an ordinary verdict, so older agents' lines still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailKind>,
}

/// Fails that reporters treat apart, as nextest does: a scenario that ran out
/// of time, and one that left processes behind. Both are fails of the target
/// (its processes did not end, or did not go), never of the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    /// The scenario passed its deadline and was killed with its whole tree.
    Timeout,
    /// Processes outlived the scenario (or its container) and had to be killed.
    Leak,
}

impl FailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailKind::Timeout => "timeout",
            FailKind::Leak => "leak",
        }
    }
}

impl Verdict {
    pub fn pass() -> Self {
        Verdict {
            outcome: Outcome::Pass,
            reason: String::new(),
            kind: None,
        }
    }
    pub fn fail(reason: impl Into<String>) -> Self {
        Verdict {
            outcome: Outcome::Fail,
            reason: reason.into(),
            kind: None,
        }
    }
    pub fn unsupported(reason: impl Into<String>) -> Self {
        Verdict {
            outcome: Outcome::Unsupported,
            reason: reason.into(),
            kind: None,
        }
    }
    /// The scenario ran past its deadline: a fail of kind timeout.
    pub fn timeout(reason: impl Into<String>) -> Self {
        Verdict {
            kind: Some(FailKind::Timeout),
            ..Verdict::fail(reason)
        }
    }
    /// Processes outlived the scenario: a fail of kind leak.
    pub fn leak(reason: impl Into<String>) -> Self {
        Verdict {
            kind: Some(FailKind::Leak),
            ..Verdict::fail(reason)
        }
    }
    pub fn broken(reason: impl Into<String>) -> Self {
        Verdict {
            outcome: Outcome::Broken,
            reason: reason.into(),
            kind: None,
        }
    }
}
