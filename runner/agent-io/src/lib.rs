//! The parent's side of an agent: the pipes it is started with, and reading
//! its events until it closes them or its deadline passes. The harness (host
//! target) and the agent as a VM's init both start agents, and must read and
//! word them the same way. Each reaps in its own way: the harness through its
//! registry of live trees (`live.rs`), init as every orphan's parent.

mod clone_flags;
mod countdown;
mod pidfd;
mod pipes;
mod readiness;
mod reading;
mod simulated_kernel;

pub use clone_flags::{clone_failed, clone_flag_names};
pub use countdown::Countdown;
pub use pidfd::{pidfd_exited, pidfd_open, pidfd_send_signal, pidfd_send_signal_to_group};
pub use pipes::{above_std_fds, pipe};
pub use readiness::wait_readable;
pub use reading::{read_events, read_events_until, readable_now, Flow, Reading, READS_IN_A_ROW};
pub use simulated_kernel::{install_filter, Lacks};
