//! Reporting: the executor emits one stream of events and every output is a
//! reporter that consumes it (the terminal's lines, the JSON report, JUnit,
//! KTAP, the event log, the side-by-side table, the kernel matrix, the
//! expected-differences and baseline judgements).
//! A new output format is one new file here.

mod baseline_report;
mod conclusion;
mod event;
mod event_log;
mod expected_report;
mod json;
mod junit;
mod ktap;
mod matrix;
mod record;
mod reporter;
mod side_by_side;
mod terminal;
pub mod text;
mod time;

pub use baseline_report::{BaselineReport, Regressed};
pub use conclusion::Conclusion;
pub use event::{RunEvent, TrialInfo};
pub use event_log::EventLog;
pub use expected_report::{ExpectedReport, Judgement};
pub use json::{CellInfo, JsonReport, SCHEMA_VERSION};
pub use junit::{test_case, JunitReport};
pub use ktap::KtapReport;
pub use matrix::{figures_lines, left_behind_line, Column, Figures, MatrixReport};
pub use record::{RecordFold, TrialRecord};
pub use reporter::{create_file, ReportError, Reporter, Reporters};
pub use side_by_side::SideBySide;
pub use terminal::TerminalReport;
