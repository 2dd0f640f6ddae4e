//! The merge as JUnit XML: one testsuite per column, named by the column's
//! unique label, and each testcase named `<label>:<scenario>`, so names stay
//! unique across every cell of every report (GitLab keeps only the first of
//! a name). A missing cell is a skipped testcase of type `missing`, not a
//! dropped one.

use super::matrix::Matrix;
use crate::reporting::{test_case, TrialRecord};
use quick_junit::{Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn render(m: &Matrix<'_>) -> Report {
    let mut report = Report::new("orphanage merge");
    for (i, column) in m.columns.iter().enumerate() {
        let mut suite = TestSuite::new(column.label.as_str());
        let mut secs = 0.0;
        for (area, row) in m.rows() {
            let case = match m.shown(i, &row.scenario).record {
                Some(r) => {
                    secs += r.duration_ms.max(0.0) / 1000.0;
                    let renamed = TrialRecord {
                        name: format!("{}:{}", column.label, row.scenario),
                        target: column.label.clone(),
                        ..r.clone()
                    };
                    test_case(&renamed)
                }
                None => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_type("missing");
                    status.set_message(format!(
                        "missing: {} has no result for this scenario in this cell",
                        column.source.display()
                    ));
                    let mut case =
                        TestCase::new(format!("{}:{}", column.label, row.scenario), status);
                    case.set_classname(format!("{}.{}", column.label, area.name));
                    case
                }
            };
            suite.add_test_case(case);
        }
        suite.set_time(Duration::from_secs_f64(secs));
        report.add_test_suite(suite);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::super::matrix::tests::{report, two_reports};
    use super::*;
    use orphanage_scenario::Outcome;

    #[test]
    fn every_cell_is_a_uniquely_named_testcase_and_missing_is_skipped() {
        let mut reports = two_reports();
        // The same cell twice: both kept, under different names.
        reports.push(report(
            "c.json",
            &[("host", "host", "6.9.0")],
            &[("host", "zombie::reaped", Outcome::Pass, "")],
        ));
        let m = Matrix::new(&reports, None, None);
        let xml = render(&m).to_string().unwrap();
        let names: Vec<&str> = xml
            .match_indices("<testcase name=\"")
            .map(|(i, p)| {
                let rest = &xml[i + p.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        assert_eq!(names.len(), 4 * 3, "every column has every row: {xml}");
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(
            names.contains(&"host on 6.9.0 #2:zombie::reaped"),
            "{names:?}"
        );
        assert!(xml.contains("<skipped message=\"missing: b.json has no result for this scenario in this cell\" type=\"missing\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"write succeeded\" type=\"fail\""),
            "{xml}"
        );
    }
}
