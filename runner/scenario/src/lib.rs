//! The scenario model: what a scenario file says, how it is parsed and
//! validated, and the events an agent reports. Nothing here does I/O.

mod console_frames;
mod deadline;
mod emit;
mod event;
mod feature;
mod kernel_names;
pub mod model;
mod names;
mod parse;
mod proc_stat;
mod root_mode;
mod scenario;
mod step;
mod vm_wire;
mod wait_status;
mod yaml_errors;

pub use console_frames::{encode_frame, FramePiece, FrameReader};
pub use deadline::{Deadline, DEFAULT_DEADLINE, MAX_DEADLINE};
pub use emit::to_yaml;
pub use event::{Event, FailKind, Outcome, Verdict};
pub use feature::Feature;
pub use kernel_names::{signal_name, ErrnoName, MfdFlag, Seal, SignalName, UnknownName, WaitFlag};
pub use names::{ActorRef, HandleRef, NameError, NewHandle, NewName};
pub use parse::{parse, ParseError};
pub use proc_stat::ProcStat;
pub use root_mode::RootMode;
pub use scenario::{InitMode, Namespace, Scenario};
pub use step::{
    ignored_signals, Content, ExpectedStatus, GoneProbe, MeasureMethod, ProcState, SpawnHow, Step,
    WaitApi, WaitTarget,
};
pub use vm_wire::{verdict_without_finish, AgentEnd, VmFrame, VmScenario, VM_SCENARIOS_PATH};
pub use wait_status::{describe_expected_status, WaitStatus};
pub use yaml_errors::{
    check_syntax as check_yaml_syntax, explain as explain_yaml_error, key_position,
    list_item_field_position, list_item_position, top_level_key_position, YamlProblem,
};
