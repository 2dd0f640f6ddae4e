//! The parent's side of an agent: the pipes it is started with, reading its
//! events until it closes them or its deadline passes, and reaping it. The
//! harness (host target) and the agent as a VM's init both start agents, and
//! must read and word them the same way.

mod pipes;
mod reading;
mod reap;

pub use pipes::{above_std_fds, pipe};
pub use reading::{read_events, Reading};
pub use reap::reap_within;
