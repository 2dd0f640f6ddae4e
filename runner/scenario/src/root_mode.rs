//! How a scenario's root ran: which process stood where the scenario says
//! `init` (or `agent`). Carried by the agent's `Started` event and reported
//! with every result, so no verdict hides the way it was reached.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootMode {
    /// `namespace: fresh` as written: the root is the init of a new pid namespace.
    PidNamespace,
    /// `namespace: fresh` without a pid namespace (the kernel refused
    /// CLONE_NEWPID, or `--no-pid-namespace`): the root is a child subreaper
    /// in the caller's pid namespace, so orphans still come to it
    /// (kernel/exit.c find_new_reaper() walks to the nearest subreaper
    /// before it falls back to the namespace's init).
    SubreaperRoot,
    /// `namespace: caller`: the root is an ordinary process of the caller's namespace.
    CallerNamespace,
    /// `namespace: under_init` (runtime target): the root is the init program's child.
    UnderInit,
    /// `namespace: global_init` (VM target): the root is the machine's init.
    GlobalInit,
}

impl RootMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RootMode::PidNamespace => "pid_namespace",
            RootMode::SubreaperRoot => "subreaper_root",
            RootMode::CallerNamespace => "caller_namespace",
            RootMode::UnderInit => "under_init",
            RootMode::GlobalInit => "global_init",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_names_are_the_report_names() {
        for mode in [
            RootMode::PidNamespace,
            RootMode::SubreaperRoot,
            RootMode::CallerNamespace,
            RootMode::UnderInit,
            RootMode::GlobalInit,
        ] {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
            assert_eq!(serde_json::from_str::<RootMode>(&json).unwrap(), mode);
        }
    }
}
