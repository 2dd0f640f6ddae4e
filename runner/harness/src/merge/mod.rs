//! `orphanage merge`: one conformance matrix from the JSON reports of many
//! machines (HTML, Markdown, JUnit), judged against expected differences
//! and a baseline when given.

mod command;
mod html;
mod junit;
mod markdown;
mod matrix;

pub use command::{merge, render_one, MergeArgs};
