//! The merged matrix, before it is rendered: one column per cell of every
//! report, one row per scenario, rows grouped by area with the differences
//! from Linux first, and every non-pass reason given a numbered note (cells
//! with the same outcome and reason share one). HTML, Markdown and JUnit
//! render this same model.

use crate::baseline::{self, Comparison, Movement, Side};
use crate::expected::{self, Context, Difference, Mark};
use crate::report_file::{scenario_of, ReportFile};
use crate::reporting::{CellInfo, TrialRecord};
use orphanage_scenario::Outcome;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Per-column counts, missing cells included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub unsupported: usize,
    pub broken: usize,
    pub missing: usize,
}

impl Counts {
    fn add(&mut self, outcome: Option<Outcome>) {
        match outcome {
            Some(Outcome::Pass) => self.pass += 1,
            Some(Outcome::Fail) => self.fail += 1,
            Some(Outcome::Unsupported) => self.unsupported += 1,
            Some(Outcome::Broken) => self.broken += 1,
            None => self.missing += 1,
        }
    }

    pub fn plus(self, o: Counts) -> Counts {
        Counts {
            pass: self.pass + o.pass,
            fail: self.fail + o.fail,
            unsupported: self.unsupported + o.unsupported,
            broken: self.broken + o.broken,
            missing: self.missing + o.missing,
        }
    }
}

/// One cell of one report: a target on a kernel.
#[derive(Debug)]
pub struct Column<'a> {
    /// From 1, as the page shows it (`#3`).
    pub number: usize,
    /// Unique across the merge (`runc+tini on 6.1.0-18-amd64`, with `#N`
    /// added when two cells share kernel and target): JUnit names use it.
    pub label: String,
    pub source: &'a Path,
    pub cell: &'a CellInfo,
    /// The column with the same kernel, target and versions, if one came first.
    pub same_as: Option<usize>,
    pub counts: Counts,
    results: HashMap<&'a str, &'a TrialRecord>,
}

impl<'a> Column<'a> {
    pub fn result(&self, scenario: &str) -> Option<&'a TrialRecord> {
        self.results.get(scenario).copied()
    }

    pub fn results(&self) -> Vec<&'a TrialRecord> {
        let mut v: Vec<&TrialRecord> = self.results.values().copied().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// What the expected-differences file's conditions are matched against.
    pub fn context(&self) -> Context {
        Context {
            prefix: String::new(),
            target: self.cell.name.clone(),
            runtime_version: self.cell.version.clone().unwrap_or_default(),
            kernel: self.cell.kernel.clone(),
            platform: self.cell.platform.clone().unwrap_or_default(),
        }
    }
}

/// Where a row sits: differences from Linux first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowKind {
    /// A fail or broken cell.
    Fails,
    /// Cells disagree (some pass, or are missing, where others do not).
    Disagrees,
    /// The same non-pass outcome in every column (unsupported everywhere, say).
    Uniform,
    /// Passes in every column.
    AsLinux,
}

#[derive(Debug)]
pub struct Row {
    pub scenario: String,
    pub kind: RowKind,
    /// With `--expected`: a cell the file does not foresee (or a stale entry).
    pub unexpected: bool,
    pub regressed: bool,
    /// The scenario's file, from the first report that has it.
    pub file: String,
}

#[derive(Debug)]
pub struct Area {
    pub name: String,
    /// Differences first, then by name.
    pub rows: Vec<Row>,
}

/// A cell as shown: its result, and what the other inputs say of it.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    pub record: Option<&'a TrialRecord>,
    pub mark: Option<Mark>,
    pub movement: Option<Movement>,
    /// The number of the note that gives its reason.
    pub note: Option<usize>,
}

/// A reason, given once for every cell that has the same outcome and text.
#[derive(Debug)]
pub struct Note {
    pub number: usize,
    pub outcome: Outcome,
    pub reason: String,
    /// Which scenarios, in which columns (by number).
    pub cells: BTreeMap<String, Vec<usize>>,
}

#[derive(Debug)]
pub struct Matrix<'a> {
    pub reports: &'a [ReportFile],
    pub columns: Vec<Column<'a>>,
    pub areas: Vec<Area>,
    pub notes: Vec<Note>,
    pub expected: Option<(&'a Path, &'a [Difference])>,
    pub baseline: Option<Comparison>,
    marks: HashMap<(usize, String), Mark>,
    movements: HashMap<(usize, String), Movement>,
    note_of: HashMap<(usize, String), usize>,
}

/// Compares release strings as people read them: runs of digits by value
/// (`6.10` after `6.9`), everything else as text.
pub fn natural(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (x, y) = (chunks(a), chunks(b));
    for ((dx, cx), (dy, cy)) in x.iter().zip(&y) {
        let o = match (dx, dy) {
            (true, true) => {
                let (tx, ty) = (cx.trim_start_matches('0'), cy.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
            }
            _ => cx.cmp(cy),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

fn kind_rank(kind: &str) -> u8 {
    match kind {
        "host" => 0,
        "vm" => 1,
        "runtime" => 2,
        _ => 3,
    }
}

/// Whether two cells are the same target on the same kernel.
fn same_identity(a: &CellInfo, b: &CellInfo) -> bool {
    (
        &a.name,
        &a.kind,
        &a.kernel,
        &a.version,
        &a.init,
        &a.platform,
    ) == (
        &b.name,
        &b.kind,
        &b.kernel,
        &b.version,
        &b.init,
        &b.platform,
    )
}

fn row_kind(outcomes: &[Option<Outcome>]) -> RowKind {
    let all_pass = outcomes.iter().all(|o| *o == Some(Outcome::Pass));
    if all_pass {
        RowKind::AsLinux
    } else if outcomes
        .iter()
        .any(|o| matches!(o, Some(Outcome::Fail | Outcome::Broken)))
    {
        RowKind::Fails
    } else if outcomes.windows(2).any(|w| w[0] != w[1]) {
        RowKind::Disagrees
    } else {
        RowKind::Uniform
    }
}

impl<'a> Matrix<'a> {
    /// The matrix of `reports`, each cell judged against `expected` and
    /// compared with the cells of `baselines`, when given.
    pub fn new(
        reports: &'a [ReportFile],
        expected: Option<(&'a Path, &'a [Difference])>,
        baselines: Option<&[ReportFile]>,
    ) -> Matrix<'a> {
        // Columns: hosts, then VMs, then runtimes; by name, then kernel.
        let mut cells: Vec<(&'a ReportFile, &'a CellInfo, usize)> = Vec::new();
        for r in reports {
            for c in &r.cells {
                cells.push((r, c, cells.len()));
            }
        }
        cells.sort_by(|a, b| {
            kind_rank(&a.1.kind)
                .cmp(&kind_rank(&b.1.kind))
                .then_with(|| a.1.name.cmp(&b.1.name))
                .then_with(|| natural(&a.1.kernel, &b.1.kernel))
                .then(a.2.cmp(&b.2))
        });
        let mut columns: Vec<Column<'a>> = Vec::with_capacity(cells.len());
        for (i, (report, cell, _)) in cells.into_iter().enumerate() {
            let same_as = columns
                .iter()
                .find(|c| same_identity(c.cell, cell))
                .map(|c| c.number);
            let mut label = format!("{} on {}", cell.name, release_text(cell));
            if columns.iter().any(|c| c.label == label) {
                label = format!("{label} #{}", i + 1);
            }
            columns.push(Column {
                number: i + 1,
                label,
                source: &report.path,
                cell,
                same_as,
                counts: Counts::default(),
                results: report
                    .results_of(cell)
                    .map(|r| (scenario_of(r), r))
                    .collect(),
            });
        }
        let scenarios: BTreeSet<&str> = columns
            .iter()
            .flat_map(|c| c.results.keys().copied())
            .collect();

        let mut marks = HashMap::new();
        if let Some((_, differences)) = expected {
            for (ci, c) in columns.iter().enumerate() {
                let context = c.context();
                for (scenario, r) in &c.results {
                    let (mark, _) = expected::mark_of(differences, scenario, r.outcome, &context);
                    marks.insert((ci, scenario.to_string()), mark);
                }
            }
        }
        let baseline = baselines.map(|b| {
            let current: Vec<Side<'_>> = columns
                .iter()
                .map(|c| Side {
                    label: c.label.clone(),
                    cell: c.cell,
                    results: c.results(),
                })
                .collect();
            let earlier: Vec<Side<'_>> = b.iter().flat_map(Side::of_report).collect();
            baseline::compare(&current, &earlier)
        });
        let mut movements = HashMap::new();
        if let Some(comparison) = &baseline {
            for m in &comparison.moved {
                if let Some(ci) = columns.iter().position(|c| c.label == m.cell) {
                    movements.insert((ci, m.scenario.clone()), m.movement);
                }
            }
        }

        let mut by_area: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        let mut notes: Vec<Note> = Vec::new();
        let mut note_index: HashMap<(Outcome, &str), usize> = HashMap::new();
        let mut note_of = HashMap::new();
        for scenario in &scenarios {
            let outcomes: Vec<Option<Outcome>> = columns
                .iter()
                .map(|c| c.result(scenario).map(|r| r.outcome))
                .collect();
            for (c, o) in columns.iter_mut().zip(&outcomes) {
                c.counts.add(*o);
            }
            let first = columns.iter().find_map(|c| c.result(scenario));
            let area = first.map_or("", |r| r.area.as_str());
            let area = if area.is_empty() {
                scenario.split("::").next().unwrap_or("")
            } else {
                area
            };
            let unexpected = (0..columns.len()).any(|ci| {
                matches!(
                    marks.get(&(ci, scenario.to_string())),
                    Some(Mark::Unexpected | Mark::Stale)
                )
            });
            let regressed = (0..columns.len()).any(|ci| {
                movements.get(&(ci, scenario.to_string())) == Some(&Movement::Regression)
            });
            by_area.entry(area.to_string()).or_default().push(Row {
                scenario: scenario.to_string(),
                kind: row_kind(&outcomes),
                unexpected,
                regressed,
                file: first.map_or(String::new(), |r| r.file.clone()),
            });
        }
        let mut areas: Vec<Area> = by_area
            .into_iter()
            .map(|(name, mut rows)| {
                rows.sort_by(|a, b| {
                    (!a.regressed, !a.unexpected, a.kind, &a.scenario).cmp(&(
                        !b.regressed,
                        !b.unexpected,
                        b.kind,
                        &b.scenario,
                    ))
                });
                Area { name, rows }
            })
            .collect();
        areas.sort_by(|a, b| a.name.cmp(&b.name));
        // Notes are numbered in reading order: differences first, area by area.
        for area in &areas {
            for row in area.rows.iter().filter(|r| r.kind != RowKind::AsLinux) {
                for (ci, c) in columns.iter().enumerate() {
                    let Some(r) = c.result(&row.scenario) else {
                        continue;
                    };
                    if r.outcome == Outcome::Pass {
                        continue;
                    }
                    let n = *note_index
                        .entry((r.outcome, r.reason.as_str()))
                        .or_insert_with(|| {
                            notes.push(Note {
                                number: notes.len() + 1,
                                outcome: r.outcome,
                                reason: r.reason.clone(),
                                cells: BTreeMap::new(),
                            });
                            notes.len()
                        });
                    notes[n - 1]
                        .cells
                        .entry(row.scenario.clone())
                        .or_default()
                        .push(c.number);
                    note_of.insert((ci, row.scenario.clone()), n);
                }
            }
        }
        Matrix {
            reports,
            columns,
            areas,
            notes,
            expected,
            baseline,
            marks,
            movements,
            note_of,
        }
    }

    /// The cell of `scenario` in the column at `index` (from 0).
    pub fn shown(&self, index: usize, scenario: &str) -> Shown<'a> {
        let key = (index, scenario.to_string());
        Shown {
            record: self.columns[index].result(scenario),
            mark: self.marks.get(&key).cloned(),
            movement: self.movements.get(&key).copied(),
            note: self.note_of.get(&key).copied(),
        }
    }

    pub fn totals(&self) -> Counts {
        self.columns
            .iter()
            .fold(Counts::default(), |t, c| t.plus(c.counts))
    }

    pub fn rows(&self) -> impl Iterator<Item = (&Area, &Row)> {
        self.areas
            .iter()
            .flat_map(|a| a.rows.iter().map(move |r| (a, r)))
    }

    pub fn differing_rows(&self) -> usize {
        self.rows()
            .filter(|(_, r)| r.kind != RowKind::AsLinux)
            .count()
    }

    /// With `--expected`: (expected, unexpected, stale) cells.
    pub fn judgement(&self) -> Option<(usize, usize, usize)> {
        self.expected?;
        let count = |m: Mark| self.marks.values().filter(|x| **x == m).count();
        Some((
            count(Mark::Expected),
            count(Mark::Unexpected),
            count(Mark::Stale),
        ))
    }

    /// The kernel releases and targets, each counted once.
    pub fn kernels_and_targets(&self) -> (usize, usize) {
        let kernels: BTreeSet<&str> = self
            .columns
            .iter()
            .map(|c| c.cell.kernel.as_str())
            .collect();
        let targets: BTreeSet<&str> = self.columns.iter().map(|c| c.cell.name.as_str()).collect();
        (kernels.len(), targets.len())
    }
}

/// The kernel release as headers give it: a VM that never booted said none.
pub fn release_text(cell: &CellInfo) -> &str {
    if cell.kernel.is_empty() {
        "release unknown"
    } else {
        &cell.kernel
    }
}

/// The target as a column header gives it: the runtime's version line (or
/// host, vm), the init under test and the platform.
pub fn target_text(cell: &CellInfo) -> String {
    let mut out = match (&cell.version, cell.kind.as_str()) {
        (Some(v), _) => v.lines().next().unwrap_or_default().to_string(),
        (None, "runtime") => format!("{} (version unknown)", cell.name),
        (None, kind) => kind.to_string(),
    };
    if let Some(init) = &cell.init {
        out.push_str(&format!(", init {init}"));
    }
    if let Some(p) = &cell.platform {
        out.push_str(&format!(", platform {p}"));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rstest::rstest;

    pub fn report(
        path: &str,
        cells: &[(&str, &str, &str)],
        results: &[(&str, &str, Outcome, &str)],
    ) -> ReportFile {
        // cells: (name, kind, kernel); results: (target, scenario, outcome, reason)
        ReportFile {
            path: path.into(),
            orphanage: "0.1.0".into(),
            started_at: "2026-12-01T00:00:00Z".into(),
            cells: cells
                .iter()
                .map(|(name, kind, kernel)| CellInfo {
                    name: name.to_string(),
                    kind: kind.to_string(),
                    kernel: kernel.to_string(),
                    version: (*kind == "runtime").then(|| format!("{name} version 1.0")),
                    init: None,
                    platform: None,
                    summary: Default::default(),
                })
                .collect(),
            results: results
                .iter()
                .map(|(target, scenario, outcome, reason)| {
                    serde_json::from_value(serde_json::json!({
                        "name": if *target == "host" { scenario.to_string() } else { format!("{target}:{scenario}") },
                        "area": scenario.split("::").next().unwrap(),
                        "file": format!("suites/{}.yaml", scenario.replace("::", "/")),
                        "target": target, "outcome": outcome, "reason": reason,
                    }))
                    .unwrap()
                })
                .collect(),
        }
    }

    pub fn two_reports() -> Vec<ReportFile> {
        use Outcome::*;
        vec![
            report(
                "a.json",
                &[("host", "host", "6.10.0")],
                &[
                    ("host", "zombie::reaped", Pass, ""),
                    ("host", "memfd::sealed", Fail, "write succeeded"),
                    ("host", "shim::adopts", Unsupported, "needs an OCI runtime"),
                ],
            ),
            report(
                "b.json",
                &[("host", "host", "6.9.0"), ("runc", "runtime", "6.9.0")],
                &[
                    ("host", "zombie::reaped", Pass, ""),
                    ("host", "memfd::sealed", Pass, ""),
                    ("host", "shim::adopts", Unsupported, "needs an OCI runtime"),
                    ("runc", "zombie::reaped", Pass, ""),
                    ("runc", "shim::adopts", Pass, ""),
                ],
            ),
        ]
    }

    #[rstest]
    #[case("6.9.0", "6.10.0", Ordering::Less)]
    #[case("6.1.0-18-amd64", "6.1.0-9-amd64", Ordering::Greater)]
    #[case("5.10", "5.10.0", Ordering::Less)]
    #[case("abc", "abd", Ordering::Less)]
    #[case("6.01", "6.1", Ordering::Equal)]
    fn releases_sort_as_people_read_them(#[case] a: &str, #[case] b: &str, #[case] o: Ordering) {
        assert_eq!(natural(a, b), o);
    }

    #[rstest]
    #[case(&[Some(Outcome::Pass), Some(Outcome::Pass)], RowKind::AsLinux)]
    #[case(&[Some(Outcome::Pass), Some(Outcome::Broken)], RowKind::Fails)]
    #[case(&[Some(Outcome::Pass), None], RowKind::Disagrees)]
    #[case(&[Some(Outcome::Unsupported), Some(Outcome::Pass)], RowKind::Disagrees)]
    #[case(&[Some(Outcome::Unsupported), Some(Outcome::Unsupported)], RowKind::Uniform)]
    fn rows_are_classified(#[case] outcomes: &[Option<Outcome>], #[case] kind: RowKind) {
        assert_eq!(row_kind(outcomes), kind);
    }

    #[test]
    fn columns_rows_missing_cells_and_notes() {
        let reports = two_reports();
        let m = Matrix::new(&reports, None, None);
        let labels: Vec<&str> = m.columns.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["host on 6.9.0", "host on 6.10.0", "runc on 6.9.0"]);
        // runc has no memfd result: missing, never dropped.
        assert_eq!(
            m.columns[2].counts,
            Counts {
                pass: 2,
                missing: 1,
                ..Default::default()
            }
        );
        assert_eq!(m.columns[1].counts.fail, 1);
        let order: Vec<(&str, RowKind)> = m
            .rows()
            .map(|(_, r)| (r.scenario.as_str(), r.kind))
            .collect();
        assert_eq!(
            order,
            [
                ("memfd::sealed", RowKind::Fails),
                ("shim::adopts", RowKind::Disagrees),
                ("zombie::reaped", RowKind::AsLinux),
            ]
        );
        assert!(m.shown(2, "memfd::sealed").record.is_none());
        // One note per outcome and reason, shared by the two host columns.
        assert_eq!(m.notes.len(), 2);
        assert_eq!(m.notes[0].reason, "write succeeded");
        assert_eq!(m.notes[1].cells["shim::adopts"], [1, 2]);
        assert_eq!(m.shown(1, "memfd::sealed").note, Some(1));
        assert_eq!(m.differing_rows(), 2);
        assert_eq!(m.totals().missing, 1);
    }

    #[test]
    fn cells_with_one_identity_are_both_kept_and_told_apart() {
        let one = report(
            "a.json",
            &[("host", "host", "6.1")],
            &[("host", "a::b", Outcome::Pass, "")],
        );
        let two = report(
            "b.json",
            &[("host", "host", "6.1")],
            &[("host", "a::b", Outcome::Fail, "x")],
        );
        let reports = vec![one, two];
        let m = Matrix::new(&reports, None, None);
        assert_eq!(m.columns.len(), 2);
        assert_eq!(m.columns[0].label, "host on 6.1");
        assert_eq!(m.columns[1].label, "host on 6.1 #2");
        assert_eq!(m.columns[1].same_as, Some(1));
        assert_eq!(m.columns[1].source, Path::new("b.json"));
    }

    #[test]
    fn expected_differences_mark_each_cell() {
        let reports = two_reports();
        let text = "differences:\n  - scenario: memfd::sealed\n    outcome: fail\n    reason: known\n    when: {kernel: \"6.10*\"}\n";
        let d = expected::parse(Path::new("e.yaml"), text, &["memfd::sealed"]).unwrap();
        let m = Matrix::new(&reports, Some((Path::new("e.yaml"), &d)), None);
        assert_eq!(m.shown(1, "memfd::sealed").mark, Some(Mark::Expected));
        assert_eq!(m.shown(0, "memfd::sealed").mark, Some(Mark::AsLinux));
        assert_eq!(m.shown(0, "shim::adopts").mark, Some(Mark::Unexpected));
        assert_eq!(m.judgement(), Some((1, 2, 0)));
    }

    #[test]
    fn a_header_names_the_runtime_init_and_platform() {
        let mut c = report("a.json", &[("runsc+tini", "runtime", "6.1")], &[])
            .cells
            .remove(0);
        c.version = Some("runsc version 0.0~20221219.0\nspec: 1.1.0".into());
        c.init = Some("tini".into());
        c.platform = Some("ptrace".into());
        assert_eq!(
            target_text(&c),
            "runsc version 0.0~20221219.0, init tini, platform ptrace"
        );
        assert_eq!(release_text(&c), "6.1");
        c.kernel = String::new();
        assert_eq!(
            release_text(&c),
            "release unknown",
            "a VM that never booted"
        );
    }
}
