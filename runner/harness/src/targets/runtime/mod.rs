//! The OCI runtime target: each scenario runs in a container made by a
//! runtime's CLI (runc, crun, youki, runsc), with the agent as its init.

mod argv;
mod bundle;
mod cgroup;
mod command;
mod container;
mod foreground;
mod pid_file;
mod state_dir;
mod validate;
mod watch;

pub use argv::{
    foreground_run_loses_sigchld, global_args as runtime_global_args, platform as runtime_platform,
    RuntimeCli,
};
pub use command::bounded_ticking as run_bounded_ticking;
pub use container::{run_in_runtime, RuntimeTarget};
pub use foreground::{exited_within as foreground_run_exited_within, SigchldNudge};
pub use validate::{check_runtime, resolve_init, resolve_runtime, smoke_test};
