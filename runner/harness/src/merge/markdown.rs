//! The merged matrix as Markdown (a CI job summary, a pull request comment):
//! the same model and order as the page. Every string from a report goes
//! through `text::markdown`, so none can end a table cell, open a code span
//! or bring HTML in.

use super::matrix::{release_text, target_text, Counts, Matrix, RowKind, Shown};
use crate::baseline::Movement;
use crate::expected::Mark;
use crate::reporting::text::{clip, markdown as md};
use orphanage_scenario::Outcome;
use std::fmt::Write;

/// Markdown pages get read on small screens and in CI logs: shorter notes.
const REASON_CHARS: usize = 2000;

fn counts(c: &Counts) -> String {
    let mut out = format!(
        "{} pass, {} fail, {} unsupported, {} broken",
        c.pass, c.fail, c.unsupported, c.broken
    );
    if c.missing > 0 {
        let _ = write!(out, ", {} missing", c.missing);
    }
    out
}

fn cell(shown: &Shown<'_>) -> String {
    let Some(r) = shown.record else {
        return "*missing*".into();
    };
    let mut out = match r.outcome {
        Outcome::Pass => "pass".to_string(),
        Outcome::Fail => "**FAIL**".to_string(),
        Outcome::Unsupported => "unsupported".to_string(),
        Outcome::Broken => "**BROKEN**".to_string(),
    };
    if let Some(kind) = r.kind {
        let _ = write!(out, " ({})", kind.as_str());
    }
    if let Some(n) = shown.note {
        let _ = write!(out, " [{n}](#note-{n})");
    }
    match shown.mark {
        Some(Mark::Expected) => out.push_str(" (expected)"),
        Some(Mark::Unexpected) if r.outcome != Outcome::Pass => out.push_str(" (unexpected)"),
        Some(Mark::Stale) => out.push_str(" (stale entry)"),
        _ => {}
    }
    match shown.movement {
        Some(Movement::Regression) => out.push_str(" **regressed**"),
        Some(Movement::Fix) => out.push_str(" fixed"),
        Some(Movement::Changed) => out.push_str(" changed"),
        Some(Movement::New) => out.push_str(" new"),
        _ => {}
    }
    out
}

pub fn render(m: &Matrix<'_>) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let (kernels, targets) = m.kernels_and_targets();
    let scenarios = m.rows().count();
    let differing = m.differing_rows();
    let _ = writeln!(out, "# orphanage conformance matrix\n");
    let _ = writeln!(
        out,
        "{} column(s) ({kernels} kernel release(s), {targets} target(s)) from {} report(s); {scenarios} scenario(s) in {} area(s). {}\n",
        m.columns.len(),
        m.reports.len(),
        m.areas.len(),
        if differing == 0 {
            "Every scenario passes in every column.".to_string()
        } else {
            format!("**{differing} of {scenarios} scenarios differ from Linux** in at least one column.")
        }
    );
    let _ = writeln!(out, "Totals: {}.\n", counts(&m.totals()));
    if let (Some((path, _)), Some((expected, unexpected, stale))) = (m.expected, m.judgement()) {
        let _ = writeln!(
            out,
            "Against the expected differences of {}: {expected} expected, **{unexpected} unexpected**, {stale} stale.\n",
            md(&path.display().to_string())
        );
    }

    out.push_str(
        "## Columns\n\n| # | kernel release | target | counts | report |\n|---|---|---|---|---|\n",
    );
    for c in &m.columns {
        let same = c.same_as.map_or(String::new(), |n| {
            format!(" (same kernel and target as #{n}: both kept)")
        });
        let _ = writeln!(
            out,
            "| #{} | {} | {} · {} | {} | {}{same} |",
            c.number,
            md(release_text(c.cell)),
            md(&c.cell.name),
            md(&target_text(c.cell)),
            counts(&c.counts),
            md(&c.source.display().to_string())
        );
    }

    if let Some(c) = &m.baseline {
        out.push_str("\n## Against the baseline\n\n");
        let _ = writeln!(
            out,
            "**{} regression(s)**, {} fixed, {} changed, {} new, {} removed.\n",
            c.count(Movement::Regression),
            c.count(Movement::Fix),
            c.count(Movement::Changed),
            c.count(Movement::New),
            c.count(Movement::Removed)
        );
        if !c.moved.is_empty() {
            out.push_str("| what | column | scenario | before | now | reason now |\n|---|---|---|---|---|---|\n");
            let word = |o: Option<Outcome>| o.map_or("-", Outcome::as_str);
            for moved in &c.moved {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    moved.movement.as_str(),
                    md(&moved.cell),
                    md(&moved.scenario),
                    word(moved.before),
                    word(moved.after),
                    md(&clip(&moved.reason, REASON_CHARS))
                );
            }
        }
        for cell in &c.new_cells {
            let _ = writeln!(
                out,
                "\n- new column {}: not in the baseline, not compared",
                md(cell)
            );
        }
        for cell in &c.removed_cells {
            let _ = writeln!(out, "\n- removed column {}: in the baseline only", md(cell));
        }
    }

    let _ = writeln!(
        out,
        "\n## Differences from Linux ({differing} scenario(s))\n"
    );
    if differing == 0 {
        out.push_str("None: every scenario passes in every column.\n");
    } else {
        out.push_str("| scenario |");
        for c in &m.columns {
            let _ = write!(
                out,
                " #{} {} {} |",
                c.number,
                md(release_text(c.cell)),
                md(&c.cell.name)
            );
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(m.columns.len()));
        out.push('\n');
        for area in &m.areas {
            let rows: Vec<_> = area
                .rows
                .iter()
                .filter(|r| r.kind != RowKind::AsLinux)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "| **{}** ({} of {} differ) |{}",
                md(&area.name),
                rows.len(),
                area.rows.len(),
                " |".repeat(m.columns.len())
            );
            for row in rows {
                let _ = write!(out, "| {} |", md(&row.scenario));
                for i in 0..m.columns.len() {
                    let _ = write!(out, " {} |", cell(&m.shown(i, &row.scenario)));
                }
                out.push('\n');
            }
        }
        out.push_str("\n### Reasons\n\n");
        for note in &m.notes {
            let places: Vec<String> = note
                .cells
                .iter()
                .map(|(scenario, columns)| {
                    let cols: Vec<String> = columns.iter().map(|c| format!("#{c}")).collect();
                    format!("{} in {}", md(scenario), cols.join(", "))
                })
                .collect();
            let _ = writeln!(
                out,
                "{}. <a id=\"note-{}\"></a>**{}** ({}): {}\n",
                note.number,
                note.number,
                note.outcome.as_str(),
                places.join("; "),
                md(&clip(&note.reason, REASON_CHARS))
            );
        }
    }

    let same = m.rows().filter(|(_, r)| r.kind == RowKind::AsLinux).count();
    let _ = writeln!(out, "\n## As Linux in every column ({same} scenario(s))\n");
    for area in &m.areas {
        let names: Vec<String> = area
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::AsLinux)
            .map(|r| md(&r.scenario))
            .collect();
        if !names.is_empty() {
            let _ = writeln!(
                out,
                "- **{}** ({}): {}",
                md(&area.name),
                names.len(),
                names.join(", ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::matrix::tests::{report, two_reports};
    use super::*;

    /// The cells of a table row, split on the pipes Markdown would split on.
    fn cells(line: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    out.last_mut().unwrap().push(c);
                    if let Some(n) = chars.next() {
                        out.last_mut().unwrap().push(n);
                    }
                }
                '|' => out.push(String::new()),
                c => out.last_mut().unwrap().push(c),
            }
        }
        out
    }

    #[test]
    fn the_markdown_has_the_columns_differences_and_numbered_reasons() {
        let reports = two_reports();
        let text = render(&Matrix::new(&reports, None, None));
        assert!(
            text.contains("**2 of 3 scenarios differ from Linux**"),
            "{text}"
        );
        assert!(text.contains("| #3 | 6.9.0 | runc · runc version 1.0 | 2 pass, 0 fail, 0 unsupported, 0 broken, 1 missing | b.json |"), "{text}");
        assert!(
            text.contains("| memfd::sealed | pass | **FAIL** [1](#note-1) | *missing* |"),
            "{text}"
        );
        assert!(
            text.contains(
                "1. <a id=\"note-1\"></a>**fail** (memfd::sealed in #2): write succeeded"
            ),
            "{text}"
        );
        assert!(text.contains("- **zombie** (1): zombie::reaped"), "{text}");
    }

    #[test]
    fn a_hostile_report_cannot_break_the_table_or_bring_html() {
        let nasty = "a|b\n`x` <script>alert(1)</script> \u{1b}[31m";
        let mut r = report(
            "a.json",
            &[("host", "host", nasty)],
            &[("host", "z::y", Outcome::Fail, nasty)],
        );
        r.cells[0].version = Some(nasty.into());
        let reports = vec![r];
        let text = render(&Matrix::new(&reports, None, None));
        assert!(!text.contains("<script") && !text.contains('\u{1b}') && !text.contains("`x`"));
        // Every table row still has as many cells as its header.
        for line in text.lines().filter(|l| l.starts_with("| z")) {
            assert_eq!(cells(line).len(), 4, "{line}");
        }
        let columns_row = text.lines().find(|l| l.starts_with("| #1 ")).unwrap();
        assert_eq!(cells(columns_row).len(), 7, "{columns_row}");
    }
}
