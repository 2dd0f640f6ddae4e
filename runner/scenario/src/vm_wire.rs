//! What crosses a VM's result port: the agent, running as the VM's global
//! init, sends every event with the scenario it belongs to, each in a frame
//! of its own (`console_frames`). The harness reads them back into `Event`s.

use crate::event::Event;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};

/// Where the harness puts the scenarios inside the initramfs.
pub const VM_SCENARIOS_PATH: &str = "/scenarios.json";

/// One scenario to run inside a VM, as the initramfs carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmScenario {
    /// `area::name`, as the harness names it.
    pub name: String,
    pub scenario: Scenario,
}

/// One frame on the result port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum VmFrame {
    /// The agent is up as init; `release` is what uname(2) says inside the VM.
    Booted { release: String, scenarios: usize },
    /// An event of one scenario.
    Event { scenario: String, event: Event },
    /// Processes ("pid (comm)") init found alive when no scenario was
    /// running: they escaped the killing of their scenario's group and
    /// reported processes. Init killed them then; sent before `Done`.
    LeftBehind { processes: Vec<String> },
    /// Every scenario has finished; the VM powers off next.
    Done,
}

/// How an agent that never reported `Finished` ended, as its parent saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentEnd {
    TimedOut,
    /// How it ended, as its parent reaped it.
    Status(crate::WaitStatus),
    /// Reaped by someone else (an interrupt), so its status is unknown.
    Unknown,
}

/// The verdict for an agent that ended without a verdict of its own. Shared by
/// the host target and the VM's init, so both words are the same.
pub fn verdict_without_finish(
    end: AgentEnd,
    deadline_secs: f64,
    reached: &str,
    agent: &str,
    stderr_tail: &str,
) -> crate::Verdict {
    use crate::Verdict;
    let tail = if stderr_tail.is_empty() {
        String::new()
    } else {
        format!("; agent stderr: {stderr_tail}")
    };
    match end {
        AgentEnd::TimedOut => Verdict::timeout(format!(
            "timeout after {deadline_secs} s (last step reached: {reached})"
        )),
        // 127: the shell's and posix_spawn's code for a program that could not run.
        AgentEnd::Status(crate::WaitStatus::Exited(127)) => {
            Verdict::broken(format!("could not execute the agent {agent}{tail}"))
        }
        AgentEnd::Status(crate::WaitStatus::Exited(code)) => Verdict::broken(format!(
            "agent exited {code} without a verdict (last step reached: {reached}){tail}"
        )),
        AgentEnd::Status(status) => Verdict::broken(format!(
            "agent {status} (last step reached: {reached}){tail}"
        )),
        AgentEnd::Unknown => Verdict::broken("interrupted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;
    use rstest::rstest;

    #[rstest]
    #[case(
        AgentEnd::TimedOut,
        Outcome::Fail,
        "timeout after 10 s (last step reached: step 2 x)"
    )]
    #[case(
        AgentEnd::Status(crate::WaitStatus::from_raw(9)),
        Outcome::Broken,
        "agent killed by SIGKILL"
    )]
    #[case(
        AgentEnd::Status(crate::WaitStatus::Exited(127)),
        Outcome::Broken,
        "could not execute the agent /init"
    )]
    #[case(
        AgentEnd::Status(crate::WaitStatus::Exited(1)),
        Outcome::Broken,
        "agent exited 1 without a verdict"
    )]
    #[case(AgentEnd::Unknown, Outcome::Broken, "interrupted")]
    fn agent_endings_have_one_wording(
        #[case] end: AgentEnd,
        #[case] outcome: Outcome,
        #[case] start: &str,
    ) {
        let v = verdict_without_finish(end, 10.0, "step 2 x", "/init", "");
        assert_eq!(v.outcome, outcome);
        assert!(v.reason.starts_with(start), "{}", v.reason);
    }
}
