//! proptest strategies for process trees. Depth, fan-out, subreaper flags,
//! threads, nested pid namespaces, exit order and SIGCHLD dispositions all
//! vary; `Tree::new` makes every combination valid, also while shrinking.

use super::tree::{ParentChoice, RawNode, Sigchld, Tree};
use crate::step::SpawnHow;
use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::TestRunner;

/// Trees of exactly `nodes` processes and threads (shrinking removes some).
pub fn tree(nodes: usize) -> impl Strategy<Value = Tree> {
    (sigchld(), Exactly { len: nodes.max(1) }).prop_map(|(root, raw)| Tree::new(root, &raw))
}

/// As `tree`, for a kernel without pid namespaces: a node that would have
/// been a pid namespace's init is a plain fork, so the same seed draws the
/// same shape of tree.
pub fn tree_without_pid_namespaces(nodes: usize) -> impl Strategy<Value = Tree> {
    (sigchld(), Exactly { len: nodes.max(1) }).prop_map(|(root, mut raw)| {
        for node in &mut raw {
            if node.how == SpawnHow::PidNamespace {
                node.how = SpawnHow::Fork;
            }
        }
        Tree::new(root, &raw)
    })
}

fn sigchld() -> impl Strategy<Value = Option<Sigchld>> {
    prop_oneof![
        6 => Just(None),
        2 => Just(Some(Sigchld::Catch)),
        1 => Just(Some(Sigchld::CatchNoCldWait)),
        1 => Just(Some(Sigchld::Ignore)),
    ]
}

fn raw_node() -> impl Strategy<Value = RawNode> {
    let parent = prop_oneof![
        1 => Just(ParentChoice::Root),
        3 => Just(ParentChoice::Previous),
        4 => (0.0..1.0f64).prop_map(ParentChoice::Any),
    ];
    let how = prop_oneof![
        6 => Just(SpawnHow::Fork),
        1 => Just(SpawnHow::Thread),
        1 => Just(SpawnHow::CloneParent),
        1 => Just(SpawnHow::PidNamespace),
    ];
    let exit_rank = prop_oneof![1 => Just(None), 3 => (0u8..16).prop_map(Some)];
    (parent, how, prop::bool::weighted(0.3), sigchld(), exit_rank).prop_map(
        |(parent, how, subreaper, sigchld, exit_rank)| RawNode {
            parent,
            how,
            subreaper,
            sigchld,
            exit_rank,
        },
    )
}

/// `len` nodes when generated; shrinking first drops nodes, then simplifies
/// the rest, like proptest's own vectors (whose size range would otherwise
/// make most generated trees smaller than asked for).
#[derive(Debug)]
struct Exactly {
    len: usize,
}

impl Strategy for Exactly {
    type Tree = NodesTree;
    type Value = Vec<RawNode>;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let node = raw_node();
        let elements = (0..self.len)
            .map(|_| {
                node.new_tree(runner)
                    .map(|t| Box::new(t) as Box<dyn ValueTree<Value = RawNode>>)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NodesTree {
            included: vec![true; elements.len()],
            elements,
            next_removal: 0,
            next_simplify: 0,
            last: None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Shrink {
    Removed(usize),
    Simplified(usize),
}

pub struct NodesTree {
    elements: Vec<Box<dyn ValueTree<Value = RawNode>>>,
    included: Vec<bool>,
    next_removal: usize,
    next_simplify: usize,
    last: Option<Shrink>,
}

impl std::fmt::Debug for NodesTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodesTree({:?})", self.current())
    }
}

impl ValueTree for NodesTree {
    type Value = Vec<RawNode>;

    fn current(&self) -> Vec<RawNode> {
        self.elements
            .iter()
            .zip(&self.included)
            .filter(|(_, &keep)| keep)
            .map(|(e, _)| e.current())
            .collect()
    }

    fn simplify(&mut self) -> bool {
        let kept = self.included.iter().filter(|&&k| k).count();
        while self.next_removal < self.elements.len() {
            let i = self.next_removal;
            self.next_removal += 1;
            if self.included[i] && kept > 1 {
                self.included[i] = false;
                self.last = Some(Shrink::Removed(i));
                return true;
            }
        }
        while self.next_simplify < self.elements.len() {
            let i = self.next_simplify;
            if self.included[i] && self.elements[i].simplify() {
                self.last = Some(Shrink::Simplified(i));
                return true;
            }
            self.next_simplify += 1;
        }
        false
    }

    fn complicate(&mut self) -> bool {
        match self.last.take() {
            Some(Shrink::Removed(i)) => {
                self.included[i] = true;
                true
            }
            Some(Shrink::Simplified(i)) if self.elements[i].complicate() => {
                self.last = Some(Shrink::Simplified(i));
                true
            }
            _ => false,
        }
    }
}
