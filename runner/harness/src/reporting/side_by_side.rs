//! Targets side by side, printed when a run had more than one: one row per
//! scenario, one column per target, each cell the outcome.

use super::event::RunEvent;
use super::record::TrialRecord;
use super::reporter::{ReportError, Reporter};
use std::collections::HashMap;

/// The table for these records. Trial names are `<label>:<area>::<name>`.
pub fn side_by_side(records: &[TrialRecord], labels: &[&str]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut cell = HashMap::new();
    for r in records {
        let Some((label, scenario)) = r.name.split_once(':').filter(|(l, _)| labels.contains(l))
        else {
            continue;
        };
        if !scenarios.contains(&scenario) {
            scenarios.push(scenario);
        }
        cell.insert((label, scenario), r.outcome.as_str());
    }
    scenarios.sort();
    let width = scenarios.iter().map(|s| s.len()).max().unwrap_or(8).max(8);
    let col = |l: &str| l.len().max(11);
    let mut out = format!("{:width$}", "scenario");
    for l in labels {
        out.push_str(&format!("  {:w$}", l, w = col(l)));
    }
    out = out.trim_end().to_string();
    out.push('\n');
    for s in scenarios {
        let mut line = format!("{s:width$}");
        for l in labels {
            let c = cell.get(&(*l, s)).copied().unwrap_or("-");
            line.push_str(&format!("  {:w$}", c, w = col(l)));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints the table on stdout once every trial is over.
pub struct SideBySide {
    labels: Vec<String>,
    records: Vec<TrialRecord>,
}

impl SideBySide {
    pub fn new(labels: Vec<String>) -> Self {
        SideBySide {
            labels,
            records: Vec::new(),
        }
    }
}

impl Reporter for SideBySide {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        match event {
            RunEvent::TrialFinished { record, .. } => self.records.push((*record).clone()),
            RunEvent::RunFinished if !self.records.is_empty() => {
                let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
                println!("{}", side_by_side(&self.records, &labels));
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::record;
    use super::*;
    use orphanage_scenario::Verdict;

    #[test]
    fn runtimes_sit_side_by_side() {
        let table = side_by_side(
            &[
                record("runc:kill::all_gone", Verdict::pass()),
                record("crun:kill::all_gone", Verdict::fail("x")),
                record("runc:pid1::term", Verdict::unsupported("y")),
            ],
            &["runc", "crun"],
        );
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("scenario")
                && lines[0].contains("runc")
                && lines[0].contains("crun")
        );
        assert!(
            lines[1].starts_with("kill::all_gone")
                && lines[1].contains("pass")
                && lines[1].contains("fail")
        );
        assert!(
            lines[2].starts_with("pid1::term")
                && lines[2].contains("unsupported")
                && lines[2].ends_with('-')
        );
    }
}
