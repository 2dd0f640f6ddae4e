//! How a process ended, as wait(2) and waitid(2) tell it. One type for every
//! status: the agent's `wait` steps, the harness reaping an agent or a
//! container's init, the VM's init reaping its agents. Worded one way.

use crate::{signal_name, ExpectedStatus};
use std::fmt;

/// A child's status, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    /// It called exit with this code (WIFEXITED, WEXITSTATUS).
    Exited(i32),
    /// A signal killed it (WIFSIGNALED, WTERMSIG, WCOREDUMP).
    Killed { signal: i32, core_dumped: bool },
    /// A signal stopped it (WIFSTOPPED, WSTOPSIG): only with WUNTRACED or WSTOPPED.
    Stopped(i32),
    /// SIGCONT resumed it (WIFCONTINUED): only with WCONTINUED.
    Continued,
}

// The status word's layout, as every Linux architecture has it (the kernel's
// wait_task_zombie and friends build it; glibc's W* macros take it apart).
const CORE_DUMPED: i32 = 0x80;
const STOPPED: i32 = 0x7f;
const CONTINUED: i32 = 0xffff;

impl WaitStatus {
    /// From waitpid(2)'s status word.
    pub fn from_raw(raw: i32) -> Self {
        let low = raw & 0x7f;
        if raw == CONTINUED {
            WaitStatus::Continued
        } else if low == 0 {
            WaitStatus::Exited((raw >> 8) & 0xff)
        } else if low == STOPPED {
            WaitStatus::Stopped((raw >> 8) & 0xff)
        } else {
            WaitStatus::Killed {
                signal: low,
                core_dumped: raw & CORE_DUMPED != 0,
            }
        }
    }

    /// From waitid(2)'s `si_code` and `si_status`; None for a code that is
    /// not a child's (a zeroed siginfo: nothing to report yet).
    pub fn from_siginfo(code: i32, status: i32) -> Option<Self> {
        Some(match code {
            libc::CLD_EXITED => WaitStatus::Exited(status & 0xff),
            libc::CLD_KILLED => WaitStatus::Killed {
                signal: status & 0x7f,
                core_dumped: false,
            },
            libc::CLD_DUMPED => WaitStatus::Killed {
                signal: status & 0x7f,
                core_dumped: true,
            },
            libc::CLD_STOPPED | libc::CLD_TRAPPED => WaitStatus::Stopped(status & 0xff),
            libc::CLD_CONTINUED => WaitStatus::Continued,
            _ => return None,
        })
    }

    /// waitpid(2)'s status word for it.
    pub fn raw(self) -> i32 {
        match self {
            WaitStatus::Exited(code) => (code & 0xff) << 8,
            WaitStatus::Killed {
                signal,
                core_dumped,
            } => (signal & 0x7f) | if core_dumped { CORE_DUMPED } else { 0 },
            WaitStatus::Stopped(signal) => ((signal & 0xff) << 8) | STOPPED,
            WaitStatus::Continued => CONTINUED,
        }
    }

    /// Whether it is what a scenario expects (`Running` never is: a status
    /// means something happened).
    pub fn matches(self, expected: ExpectedStatus) -> bool {
        match expected {
            ExpectedStatus::Exited(code) => self == WaitStatus::Exited(code),
            ExpectedStatus::Signaled(s) => {
                self == WaitStatus::Killed {
                    signal: s.0 as i32,
                    core_dumped: false,
                }
            }
            ExpectedStatus::Dumped(s) => {
                self == WaitStatus::Killed {
                    signal: s.0 as i32,
                    core_dumped: true,
                }
            }
            ExpectedStatus::Running => false,
        }
    }
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            WaitStatus::Exited(code) => write!(f, "exited {code}"),
            WaitStatus::Killed {
                signal,
                core_dumped,
            } => write!(
                f,
                "killed by {}{}",
                signal_name(signal),
                if core_dumped { " (core dumped)" } else { "" }
            ),
            WaitStatus::Stopped(signal) => write!(f, "stopped by {}", signal_name(signal)),
            WaitStatus::Continued => write!(f, "continued"),
        }
    }
}

/// What a scenario expects, worded as a `WaitStatus` is.
pub fn describe_expected_status(expected: ExpectedStatus) -> String {
    match expected {
        ExpectedStatus::Exited(c) => format!("exited {c}"),
        ExpectedStatus::Signaled(s) => format!("killed by {s}"),
        ExpectedStatus::Dumped(s) => format!("killed by {s} (core dumped)"),
        ExpectedStatus::Running => "nothing to report yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignalName;
    use nix::sys::signal::Signal;
    use rstest::rstest;

    /// The layout agrees with libc's macros, in both directions.
    #[rstest]
    #[case(WaitStatus::Exited(0))]
    #[case(WaitStatus::Exited(3))]
    #[case(WaitStatus::Exited(255))]
    #[case(WaitStatus::Killed { signal: libc::SIGKILL, core_dumped: false })]
    #[case(WaitStatus::Killed { signal: libc::SIGSEGV, core_dumped: true })]
    #[case(WaitStatus::Killed { signal: 40, core_dumped: false })]
    #[case(WaitStatus::Stopped(libc::SIGSTOP))]
    #[case(WaitStatus::Continued)]
    fn the_status_word_round_trips_as_libc_reads_it(#[case] status: WaitStatus) {
        let raw = status.raw();
        assert_eq!(WaitStatus::from_raw(raw), status);
        match status {
            WaitStatus::Exited(c) => {
                assert!(libc::WIFEXITED(raw));
                assert_eq!(libc::WEXITSTATUS(raw), c);
            }
            WaitStatus::Killed {
                signal,
                core_dumped,
            } => {
                assert!(libc::WIFSIGNALED(raw));
                assert_eq!(libc::WTERMSIG(raw), signal);
                assert_eq!(libc::WCOREDUMP(raw), core_dumped);
            }
            WaitStatus::Stopped(s) => {
                assert!(libc::WIFSTOPPED(raw));
                assert_eq!(libc::WSTOPSIG(raw), s);
            }
            WaitStatus::Continued => assert!(libc::WIFCONTINUED(raw)),
        }
    }

    #[test]
    fn waitid_codes_read_as_waitpid_would() {
        assert_eq!(
            WaitStatus::from_siginfo(libc::CLD_EXITED, 3),
            Some(WaitStatus::Exited(3))
        );
        assert_eq!(
            WaitStatus::from_siginfo(libc::CLD_DUMPED, libc::SIGSEGV).map(WaitStatus::raw),
            Some(WaitStatus::from_raw(libc::SIGSEGV | 0x80).raw())
        );
        assert_eq!(WaitStatus::from_siginfo(0, 0), None);
    }

    #[test]
    fn statuses_read_as_words_and_match_expectations() {
        let killed = WaitStatus::from_raw(libc::SIGTERM);
        assert_eq!(killed.to_string(), "killed by SIGTERM");
        assert_eq!(WaitStatus::from_raw(3 << 8).to_string(), "exited 3");
        assert_eq!(
            WaitStatus::from_raw(libc::SIGABRT | 0x80).to_string(),
            "killed by SIGABRT (core dumped)"
        );
        let term = SignalName(Signal::SIGTERM);
        assert!(killed.matches(ExpectedStatus::Signaled(term)));
        assert!(!killed.matches(ExpectedStatus::Dumped(term)));
        assert!(!killed.matches(ExpectedStatus::Exited(0)));
        assert!(!killed.matches(ExpectedStatus::Running));
        assert_eq!(
            describe_expected_status(ExpectedStatus::Signaled(term)),
            killed.to_string()
        );
    }
}
