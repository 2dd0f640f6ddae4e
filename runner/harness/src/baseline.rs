//! Baselines (`--baseline FILE`, on a run or a merge): each cell against the
//! same cell of an earlier report, scenario by scenario. A regression is a
//! scenario that did what Linux promises (or lacked the feature) and now
//! does worse; a fix is one that passes now and did not. Scenarios new to
//! the suite, or gone from it, are listed as such and never refused: the
//! suite grows. Nothing to regress from, a new scenario is not a regression.

use crate::report_file::{scenario_of, ReportFile};
use crate::reporting::{CellInfo, TrialRecord};
use orphanage_scenario::Outcome;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// One cell's results, as compared: `label` is how lines name it.
#[derive(Debug, Clone)]
pub struct Side<'a> {
    pub label: String,
    pub cell: &'a CellInfo,
    pub results: Vec<&'a TrialRecord>,
}

impl<'a> Side<'a> {
    /// Every cell of a report, each labelled by its name.
    pub fn of_report(report: &'a ReportFile) -> Vec<Side<'a>> {
        report
            .cells
            .iter()
            .map(|cell| Side {
                label: cell.name.clone(),
                cell,
                results: report.results_of(cell).collect(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Movement {
    Regression,
    Fix,
    /// Another non-pass outcome (fail to broken, fail to unsupported...).
    Changed,
    New,
    Removed,
}

impl Movement {
    pub fn as_str(self) -> &'static str {
        match self {
            Movement::Regression => "REGRESSION",
            Movement::Fix => "fixed",
            Movement::Changed => "changed",
            Movement::New => "new",
            Movement::Removed => "removed",
        }
    }
}

/// What moved between `before` and `after`, if anything did.
pub fn movement(before: Outcome, after: Outcome) -> Option<Movement> {
    use Outcome::*;
    match (before, after) {
        (b, a) if b == a => None,
        (Pass, _) | (Unsupported, Fail | Broken) => Some(Movement::Regression),
        (_, Pass) => Some(Movement::Fix),
        _ => Some(Movement::Changed),
    }
}

/// One scenario of one cell that moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub cell: String,
    pub scenario: String,
    pub before: Option<Outcome>,
    pub after: Option<Outcome>,
    pub movement: Movement,
    /// The reason now (or, for a removed scenario, then).
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub moved: Vec<Moved>,
    /// Cells of this run that no baseline cell matches: not compared.
    pub new_cells: Vec<String>,
    /// Baseline cells that no cell of this run matches.
    pub removed_cells: Vec<String>,
}

impl Comparison {
    pub fn count(&self, m: Movement) -> usize {
        self.moved.iter().filter(|x| x.movement == m).count()
    }

    pub fn has_regression(&self) -> bool {
        self.count(Movement::Regression) > 0
    }

    /// The lines printed after a run or a merge.
    pub fn lines(&self, paths: &[PathBuf]) -> Vec<String> {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let mut out = vec![format!("against the baseline ({}):", names.join(", "))];
        let outcome = |o: Option<Outcome>| o.map_or("-", Outcome::as_str);
        for m in &self.moved {
            let line = match m.movement {
                Movement::New => format!("{}: {}", m.scenario, outcome(m.after)),
                Movement::Removed => format!("{}: was {}", m.scenario, outcome(m.before)),
                _ => format!(
                    "{}: {} -> {}",
                    m.scenario,
                    outcome(m.before),
                    outcome(m.after)
                ),
            };
            let reason = match m.reason.lines().next() {
                Some(r) if m.after != Some(Outcome::Pass) && !r.is_empty() => format!(" ({r})"),
                _ => String::new(),
            };
            out.push(format!(
                "  {:<11} {} {line}{reason}",
                m.movement.as_str(),
                m.cell
            ));
        }
        for c in &self.new_cells {
            out.push(format!(
                "  new cell    {c}: not in the baseline, not compared"
            ));
        }
        for c in &self.removed_cells {
            out.push(format!("  removed cell {c}: in the baseline only"));
        }
        out.push(format!(
            "{} regressions, {} fixed, {} changed, {} new, {} removed",
            self.count(Movement::Regression),
            self.count(Movement::Fix),
            self.count(Movement::Changed),
            self.count(Movement::New),
            self.count(Movement::Removed)
        ));
        out
    }
}

/// For each current cell, the baseline cell it is compared with. Cells match
/// by name and kernel release; failing that, by name alone when that name is
/// one cell on each side (a machine that upgraded its kernel). Versions are
/// not part of a cell's identity here: an upgrade is what a baseline judges.
pub fn pair_cells(current: &[&CellInfo], baseline: &[&CellInfo]) -> Vec<Option<usize>> {
    let mut used = vec![false; baseline.len()];
    let mut pairs = vec![None; current.len()];
    for (i, c) in current.iter().enumerate() {
        if let Some(j) = (0..baseline.len())
            .find(|&j| !used[j] && baseline[j].name == c.name && baseline[j].kernel == c.kernel)
        {
            used[j] = true;
            pairs[i] = Some(j);
        }
    }
    for (i, c) in current.iter().enumerate() {
        if pairs[i].is_some() {
            continue;
        }
        let here: Vec<usize> = (0..current.len())
            .filter(|&k| current[k].name == c.name)
            .collect();
        let there: Vec<usize> = (0..baseline.len())
            .filter(|&j| baseline[j].name == c.name)
            .collect();
        if let ([_], [j]) = (here.as_slice(), there.as_slice()) {
            if !used[*j] {
                used[*j] = true;
                pairs[i] = Some(*j);
            }
        }
    }
    pairs
}

pub fn compare(current: &[Side<'_>], baseline: &[Side<'_>]) -> Comparison {
    let pairs = pair_cells(
        &current.iter().map(|s| s.cell).collect::<Vec<_>>(),
        &baseline.iter().map(|s| s.cell).collect::<Vec<_>>(),
    );
    let mut comparison = Comparison::default();
    for (side, pair) in current.iter().zip(&pairs) {
        let Some(j) = pair else {
            comparison.new_cells.push(side.label.clone());
            continue;
        };
        let by_name = |results: &[&'_ TrialRecord]| -> BTreeMap<String, (Outcome, String)> {
            results
                .iter()
                .map(|r| (scenario_of(r).to_string(), (r.outcome, r.reason.clone())))
                .collect()
        };
        let now = by_name(&side.results);
        let then = by_name(&baseline[*j].results);
        for (scenario, (after, reason)) in &now {
            let (before, m) = match then.get(scenario) {
                None => (None, Some(Movement::New)),
                Some((before, _)) => (Some(*before), movement(*before, *after)),
            };
            if let Some(movement) = m {
                comparison.moved.push(Moved {
                    cell: side.label.clone(),
                    scenario: scenario.clone(),
                    before,
                    after: Some(*after),
                    movement,
                    reason: reason.clone(),
                });
            }
        }
        for (scenario, (before, reason)) in &then {
            if !now.contains_key(scenario) {
                comparison.moved.push(Moved {
                    cell: side.label.clone(),
                    scenario: scenario.clone(),
                    before: Some(*before),
                    after: None,
                    movement: Movement::Removed,
                    reason: reason.clone(),
                });
            }
        }
    }
    let used: HashSet<usize> = pairs.iter().flatten().copied().collect();
    comparison.removed_cells = (0..baseline.len())
        .filter(|j| !used.contains(j))
        .map(|j| {
            let c = baseline[j].cell;
            format!("{} on {}", c.name, c.kernel)
        })
        .collect();
    // Regressions first, then fixes, changes, new and removed; by cell and name within.
    comparison.moved.sort_by(|a, b| {
        (a.movement, &a.cell, &a.scenario).cmp(&(b.movement, &b.cell, &b.scenario))
    });
    comparison
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}: a baseline from another suite: none of its {count} scenarios ({example}, ...) is among the {current} compared with it", .path.display())]
pub struct OtherSuite {
    pub path: PathBuf,
    pub count: usize,
    pub example: String,
    pub current: usize,
}

/// A baseline that shares no scenario with what it is compared with is from
/// another suite (a grown or shrunk suite shares most of them).
pub fn check_same_suite(
    path: &Path,
    baseline: &[ReportFile],
    current: &HashSet<&str>,
) -> Result<(), OtherSuite> {
    let theirs: Vec<&str> = baseline
        .iter()
        .flat_map(|r| r.results.iter().map(scenario_of))
        .collect();
    if theirs.is_empty() || theirs.iter().any(|s| current.contains(s)) {
        return Ok(());
    }
    Err(OtherSuite {
        path: path.to_path_buf(),
        count: theirs.iter().collect::<HashSet<_>>().len(),
        example: theirs[0].to_string(),
        current: current.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use Outcome::*;

    fn cell(name: &str, kernel: &str) -> CellInfo {
        CellInfo {
            name: name.into(),
            kind: "host".into(),
            kernel: kernel.into(),
            version: None,
            init: None,
            platform: None,
            summary: Default::default(),
        }
    }

    fn result(target: &str, scenario: &str, outcome: Outcome) -> TrialRecord {
        serde_json::from_value(serde_json::json!({
            "name": format!("{target}:{scenario}"), "area": "a", "target": target,
            "outcome": outcome, "reason": format!("{outcome} because")
        }))
        .unwrap()
    }

    #[rstest]
    #[case(Pass, Pass, None)]
    #[case(Pass, Fail, Some(Movement::Regression))]
    #[case(Pass, Unsupported, Some(Movement::Regression))]
    #[case(Unsupported, Fail, Some(Movement::Regression))]
    #[case(Unsupported, Broken, Some(Movement::Regression))]
    #[case(Fail, Pass, Some(Movement::Fix))]
    #[case(Broken, Pass, Some(Movement::Fix))]
    #[case(Fail, Broken, Some(Movement::Changed))]
    #[case(Fail, Unsupported, Some(Movement::Changed))]
    fn what_counts_as_a_regression(
        #[case] before: Outcome,
        #[case] after: Outcome,
        #[case] m: Option<Movement>,
    ) {
        assert_eq!(movement(before, after), m);
    }

    #[test]
    fn cells_pair_by_name_and_kernel_then_by_a_unique_name() {
        let (a, b, c) = (
            cell("runc", "6.1"),
            cell("runc", "6.6"),
            cell("host", "6.1"),
        );
        let (d, e) = (cell("runc", "6.6"), cell("host", "6.12"));
        // runc on 6.6 matches exactly; host upgraded its kernel; runc on 6.1 has no partner.
        assert_eq!(
            pair_cells(&[&a, &b, &c], &[&d, &e]),
            [None, Some(0), Some(1)]
        );
        // One runc on each side: compared across the kernel upgrade.
        assert_eq!(pair_cells(&[&a], &[&d]), [Some(0)]);
    }

    #[test]
    fn regressions_fixes_new_and_removed_are_listed() {
        let now_cell = cell("runc", "6.1");
        let then_cell = cell("runc", "6.1");
        let other = cell("crun", "6.1");
        let now = [
            result("runc", "m::regressed", Fail),
            result("runc", "m::fixed", Pass),
            result("runc", "m::same", Fail),
            result("runc", "m::added", Fail),
        ];
        let then = [
            result("runc", "m::regressed", Pass),
            result("runc", "m::fixed", Fail),
            result("runc", "m::same", Fail),
            result("runc", "m::dropped", Pass),
        ];
        let current = [Side {
            label: "runc".into(),
            cell: &now_cell,
            results: now.iter().collect(),
        }];
        let baseline = [
            Side {
                label: "runc".into(),
                cell: &then_cell,
                results: then.iter().collect(),
            },
            Side {
                label: "crun".into(),
                cell: &other,
                results: vec![],
            },
        ];
        let c = compare(&current, &baseline);
        let moved: Vec<(Movement, &str)> = c
            .moved
            .iter()
            .map(|m| (m.movement, m.scenario.as_str()))
            .collect();
        assert_eq!(
            moved,
            [
                (Movement::Regression, "m::regressed"),
                (Movement::Fix, "m::fixed"),
                (Movement::New, "m::added"),
                (Movement::Removed, "m::dropped"),
            ]
        );
        assert!(c.has_regression());
        assert_eq!(c.removed_cells, ["crun on 6.1"]);
        let lines = c.lines(&["old.json".into()]);
        assert_eq!(lines[0], "against the baseline (old.json):");
        assert_eq!(
            lines[1],
            "  REGRESSION  runc m::regressed: pass -> fail (fail because)"
        );
        assert_eq!(lines[3], "  new         runc m::added: fail (fail because)");
        assert_eq!(
            lines.last().unwrap(),
            "1 regressions, 1 fixed, 0 changed, 1 new, 1 removed"
        );
    }

    #[test]
    fn a_baseline_sharing_no_scenario_is_from_another_suite() {
        let report = ReportFile {
            path: "old.json".into(),
            orphanage: "0.1.0".into(),
            started_at: String::new(),
            cells: vec![cell("host", "6.1")],
            results: vec![result("host", "other::x", Pass)],
        };
        let ours: HashSet<&str> = ["memfd::a"].into();
        let e = check_same_suite(Path::new("old.json"), std::slice::from_ref(&report), &ours)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "old.json: a baseline from another suite: none of its 1 scenarios (other::x, ...) is among the 1 compared with it"
        );
        let grown: HashSet<&str> = ["memfd::a", "other::x"].into();
        assert!(check_same_suite(Path::new("old.json"), &[report], &grown).is_ok());
    }
}
