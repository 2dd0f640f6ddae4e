//! `orphanage explore`: generated process trees, run on a target and
//! compared with the reference model; a disagreement is shrunk to a minimal
//! tree and saved as a ready-to-run scenario.

mod compare;
mod comparison;
mod options;
mod run;
mod save;
mod shrink;

pub use comparison::Comparison;
pub use options::{check_save_dir, ExploreArgs, Options};
pub use run::explore;
