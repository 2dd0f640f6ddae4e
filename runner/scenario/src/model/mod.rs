//! The reference model of reparenting and reaping, and the generated process
//! trees that exploration checks against it. Pure: no I/O.

mod authoring;
mod rules;
#[cfg(any(test, feature = "generate"))]
mod strategy;
#[cfg(test)]
mod tests;
mod tree;
mod world;

pub use authoring::authoring_mistake;
pub use rules::{find_new_reaper, notify_parent, Ancestor, Defect, Disposition, Notification};
#[cfg(any(test, feature = "generate"))]
pub use strategy::{
    tree as tree_strategy, tree_without_pid_namespaces as tree_strategy_without_pid_namespaces,
};
pub use tree::{Generated, Node, ParentChoice, RawNode, Sigchld, Tree, MAX_NS_DEPTH, REFS};
pub use world::{Applied, Death, NotModelled, Prediction, World};
