//! Features a scenario can require. The agent probes each one in the target
//! before any step runs; a missing one makes the scenario unsupported with the
//! probe's errno. Never the kernel version: emulators report versions they do
//! not implement.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    ChildSubreaper,
    Pdeathsig,
    PidNamespace,
    Clone3,
    Pidfd,
    PidfdWait,
    Memfd,
    MemfdHugetlb,
    MemfdNoexecSeal,
    SealFutureWrite,
    MemfdNoexecSysctl,
    MemfdExecutable,
    MemfdExecAllowed,
    Execveat,
    CoreDumps,
    ProcNspid,
}

impl Feature {
    /// What the kernel needs to provide, for the unsupported message.
    pub fn needs(self) -> &'static str {
        match self {
            Feature::ChildSubreaper => "PR_SET_CHILD_SUBREAPER (Linux 3.4)",
            Feature::Pdeathsig => "PR_SET_PDEATHSIG",
            Feature::PidNamespace => "pid namespaces (CLONE_NEWPID, CONFIG_PID_NS)",
            Feature::Clone3 => "clone3(2) (Linux 5.3)",
            Feature::Pidfd => "pidfd_open(2) (Linux 5.3)",
            Feature::PidfdWait => "waitid(P_PIDFD) (Linux 5.4)",
            Feature::Memfd => "memfd_create(2) (Linux 3.17)",
            Feature::MemfdHugetlb => "MFD_HUGETLB (Linux 4.14, CONFIG_HUGETLBFS)",
            Feature::MemfdNoexecSeal => "MFD_NOEXEC_SEAL and MFD_EXEC (Linux 6.3)",
            Feature::SealFutureWrite => "F_SEAL_FUTURE_WRITE (Linux 5.1)",
            Feature::MemfdNoexecSysctl => {
                "the vm.memfd_noexec sysctl (Linux 6.3), writable in the scenario's pid namespace"
            }
            Feature::MemfdExecAllowed => {
                "memfd_create(MFD_EXEC) to be allowed (Linux 6.3, vm.memfd_noexec below 2)"
            }
            Feature::MemfdExecutable => {
                "memfds created without flags to be executable (vm.memfd_noexec = 0)"
            }
            Feature::Execveat => "execveat(2) with AT_EMPTY_PATH (Linux 3.19)",
            Feature::CoreDumps => {
                "core dumps to a file (core_pattern not a pipe, RLIMIT_CORE raisable)"
            }
            Feature::ProcNspid => "NSpid in /proc/PID/status (Linux 4.1)",
        }
    }
}
