//! `orphanage merge`: one conformance matrix from the JSON reports of many
//! machines (HTML, Markdown, JUnit), judged against expected differences
//! and a baseline when given.

mod command;
mod html;
mod junit;
mod markdown;
mod matrix;

pub use command::{merge, MergeArgs};

use crate::report_file::ReportFile;

/// One run's matrix (`--kernels --matrix-report`) as Markdown and as the
/// page, the same as a merge of that run's report alone gives.
pub fn render_one(report: &ReportFile) -> (String, String) {
    let m = matrix::Matrix::new(std::slice::from_ref(report), None, None);
    (markdown::render(&m), html::render(&m))
}
