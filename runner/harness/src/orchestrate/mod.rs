//! Run orchestration between the CLI and the targets: which targets a command
//! line picks, what is refused before anything runs, and what a run writes
//! and exits with. `main.rs` parses and dispatches; this is what it calls.

mod explore_command;
mod flags;
mod outputs;
mod suite_run;
mod targets_chosen;

pub use explore_command::explore_command;
pub use flags::{check_flags, no_pid_namespace_conflict};
pub use outputs::{
    cells_of, exit_code, expected_contexts, file_reporters, load_baseline, load_expected,
    reporters_for, run_trials, with_regressions, BaselineRun, OutputFiles,
};
pub use suite_run::{run_suite, SuiteRun};
pub use targets_chosen::{
    agent_binary, choose_targets, runsc_flags, smoke_test_all, subreaper_missing_for, unsupported,
    Chosen,
};
