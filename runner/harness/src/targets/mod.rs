//! Where scenarios run. Each target turns a scenario into a stream of events.

mod host;
mod kind;
mod runtime;
pub mod vm;

pub use host::HostTarget;
pub use kind::{Bound, Target};
pub use runtime::{
    check_runtime, foreground_run_exited_within, foreground_run_loses_sigchld, resolve_init,
    resolve_runtime, run_bounded_ticking, runtime_global_args, runtime_platform, smoke_test,
    RuntimeCli, RuntimeTarget, SigchldNudge,
};
pub use vm::VmTarget;
