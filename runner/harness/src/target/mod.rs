//! Where scenarios run. Each target turns a scenario into a stream of events.

mod host;
pub mod vm;

pub use host::run_on_host;
