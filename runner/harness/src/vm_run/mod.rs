//! The CLI edge of the VM target: `--kernel` (one kernel, reported like the
//! host suite), `--kernels` (the matrix) and `orphanage kernels fetch|path`.
//! Everything a run needs is checked first, so bad input exits 2 before any
//! VM starts.

mod board;
mod inputs;
mod kernels_command;
mod matrix_run;
mod single;

pub use kernels_command::kernels_command;
pub use matrix_run::matrix;
pub use single::{explore_target, suite_target, summarize};
