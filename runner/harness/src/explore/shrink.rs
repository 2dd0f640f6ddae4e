//! Shrinking a disagreement to a minimal tree, as proptest shrinks: simplify
//! while the mismatch stays, complicate when it goes away.
//!
//! Each step depends on the last run's outcome, so one run is one step. On a
//! target that runs many trees at once (a VM runs a whole batch in one boot)
//! that would be a boot per step. Instead each round speculates: it runs, in
//! one batch, every tree the next `depth` steps could reach whichever way
//! their runs come out (at most 2^depth - 1), and then follows the path the
//! outcomes choose. The value tree cannot be copied, but the same case always
//! draws the same tree, so any point on a path is reached again by replaying
//! its outcomes on a freshly drawn one. With `depth` 1 this is plain
//! proptest shrinking, one run per batch, as on the host.

use proptest::strategy::ValueTree;

/// The tree to run after the outcomes `outcomes` (true: that run still
/// disagreed), as shrinking moves on from a fresh value tree: None when
/// shrinking ends there.
pub fn candidate_after<VT: ValueTree>(
    fresh: &impl Fn() -> VT,
    outcomes: &[bool],
) -> Option<VT::Value> {
    let mut vt = fresh();
    if !vt.simplify() {
        return None;
    }
    for &failed in outcomes {
        let moved = if failed {
            vt.simplify()
        } else {
            // proptest stops when it cannot complicate; trying further
            // simplifications costs only runs, and only a failing run ever
            // replaces the best case.
            vt.complicate() || vt.simplify()
        };
        if !moved {
            return None;
        }
    }
    Some(vt.current())
}

/// Every outcome sequence shorter than `depth`, shortest first.
fn suffixes(depth: usize) -> Vec<Vec<bool>> {
    let mut all = vec![vec![]];
    let mut level = vec![vec![]];
    for _ in 1..depth {
        level = level
            .iter()
            .flat_map(|s: &Vec<bool>| {
                [false, true].map(|o| {
                    let mut next = s.clone();
                    next.push(o);
                    next
                })
            })
            .collect();
        all.extend(level.iter().cloned());
    }
    all
}

/// The distinct trees that the next `depth` steps after `history` may run.
pub fn round<VT: ValueTree>(
    fresh: &impl Fn() -> VT,
    history: &[bool],
    depth: usize,
) -> Vec<VT::Value>
where
    VT::Value: PartialEq,
{
    let mut candidates: Vec<VT::Value> = Vec::new();
    for suffix in suffixes(depth.max(1)) {
        let outcomes: Vec<bool> = history.iter().copied().chain(suffix).collect();
        if let Some(tree) = candidate_after(fresh, &outcomes) {
            if !candidates.contains(&tree) {
                candidates.push(tree);
            }
        }
    }
    candidates
}

/// How a shrink went.
#[derive(Debug, PartialEq)]
pub struct Shrunk<R> {
    /// The last run that still failed: the smallest case found.
    pub best: Option<R>,
    /// Runs on the path shrinking took (what sequential shrinking would run).
    pub steps: usize,
    /// Trees run, speculation included, and in how many batches.
    pub trees_run: usize,
    pub batches: usize,
}

/// Shrinks from a fresh value tree: each round runs `round`'s trees with
/// `run_batch` (one result per tree, in order) and follows the outcomes
/// (`failed`) for up to `depth` steps, while `go_on(steps so far)` says so.
pub fn shrink<VT, R: Clone>(
    fresh: impl Fn() -> VT,
    depth: usize,
    mut run_batch: impl FnMut(&[VT::Value]) -> Vec<R>,
    failed: impl Fn(&R) -> bool,
    mut go_on: impl FnMut(usize) -> bool,
) -> Shrunk<R>
where
    VT: ValueTree,
    VT::Value: PartialEq,
{
    let depth = depth.max(1);
    let mut shrunk = Shrunk {
        best: None,
        steps: 0,
        trees_run: 0,
        batches: 0,
    };
    let mut history: Vec<bool> = Vec::new();
    while go_on(shrunk.steps) {
        let trees = round(&fresh, &history, depth);
        if trees.is_empty() {
            break;
        }
        let results = run_batch(&trees);
        shrunk.trees_run += trees.len();
        shrunk.batches += 1;
        for _ in 0..depth {
            let Some(tree) = candidate_after(&fresh, &history) else {
                return shrunk;
            };
            let Some(at) = trees.iter().position(|t| *t == tree) else {
                // Not speculated on (cannot happen: every path shorter than
                // depth was); the next round runs it.
                break;
            };
            let Some(result) = results.get(at) else {
                return shrunk;
            };
            let still_fails = failed(result);
            if still_fails {
                shrunk.best = Some(result.clone());
            }
            history.push(still_fails);
            shrunk.steps += 1;
            if !go_on(shrunk.steps) {
                return shrunk;
            }
        }
    }
    shrunk
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use rstest::rstest;

    /// The same draw every time, as a case of a seed is.
    fn fresh() -> impl ValueTree<Value = (u32, u32)> {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
        );
        (0u32..100_000, 0u32..100_000)
            .new_tree(&mut runner)
            .unwrap()
    }

    /// A "kernel" that disagrees with the model when both are large enough.
    fn fails(v: &(u32, u32)) -> bool {
        v.0 >= 137 && v.1 >= 20
    }

    fn run(depth: usize) -> (Shrunk<(u32, u32)>, Vec<usize>) {
        assert!(
            fails(&fresh().current()),
            "the draw must fail to begin with"
        );
        let mut sizes = vec![];
        let shrunk = shrink(
            fresh,
            depth,
            |trees: &[(u32, u32)]| {
                sizes.push(trees.len());
                trees.to_vec()
            },
            fails,
            |steps| steps < 10_000,
        );
        (shrunk, sizes)
    }

    #[test]
    fn depth_one_is_proptest_shrinking_one_run_a_batch() {
        let (shrunk, sizes) = run(1);
        assert_eq!(shrunk.best, Some((137, 20)));
        assert!(sizes.iter().all(|&n| n == 1));
        assert_eq!(shrunk.batches, shrunk.steps);
    }

    #[rstest]
    #[case(2)]
    #[case(4)]
    #[case(6)]
    fn speculation_finds_the_same_minimum_by_the_same_path_in_fewer_batches(#[case] depth: usize) {
        let (sequential, _) = run(1);
        let (speculative, sizes) = run(depth);
        assert_eq!(speculative.best, sequential.best);
        assert_eq!(speculative.steps, sequential.steps);
        assert!(sizes.iter().all(|&n| n < 1 << depth), "{sizes:?}");
        assert!(
            speculative.batches * depth >= speculative.steps
                && speculative.batches <= sequential.steps.div_ceil(depth) + 1,
            "{} batches for {} steps",
            speculative.batches,
            speculative.steps
        );
    }

    #[test]
    fn go_on_stops_after_as_many_steps() {
        let shrunk = shrink(fresh, 4, |t: &[(u32, u32)]| t.to_vec(), fails, |s| s < 5);
        assert_eq!(shrunk.steps, 5);
    }

    #[test]
    fn every_path_shorter_than_the_depth_is_speculated_on() {
        assert_eq!(suffixes(1), vec![Vec::<bool>::new()]);
        assert_eq!(suffixes(3).len(), 7);
        assert!(suffixes(3).contains(&vec![true, false]));
    }
}
