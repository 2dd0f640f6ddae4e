//! Results: one record per trial, folded from that trial's events, and the
//! JSON report (`--report`): kernel, target, results and summary.

use orphanage_scenario::{Event, Outcome, RootMode, Verdict};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct TrialRecord {
    pub name: String,
    pub area: String,
    pub outcome: Outcome,
    pub reason: String,
    /// How the scenario's root ran (`pid_namespace`, `subreaper_root`,
    /// `caller_namespace`, `under_init`), as the agent said; null when no
    /// agent started.
    pub mode: Option<RootMode>,
    pub duration_ms: f64,
    /// Time the scenario's own steps took, as the agent measured it.
    pub steps_ms: f64,
    /// Figures and observations the scenario reported (latencies, times taken).
    pub notes: Vec<String>,
}

impl TrialRecord {
    /// Folds a trial's events into its record. A stream without `Finished` is broken.
    pub fn from_events(name: &str, area: &str, events: &[Event], duration: Duration) -> Self {
        let mut verdict = Verdict::broken("no verdict was reported");
        let mut steps_ms = 0.0;
        let mut notes = Vec::new();
        let mut mode = None;
        for event in events {
            match event {
                Event::Note { text } => notes.push(text.clone()),
                Event::Started { mode: m, .. } => mode = Some(*m),
                Event::Finished {
                    verdict: v,
                    steps_ms: s,
                } => {
                    verdict = v.clone();
                    steps_ms = *s;
                }
                _ => {}
            }
        }
        TrialRecord {
            name: name.to_string(),
            area: area.to_string(),
            outcome: verdict.outcome,
            reason: verdict.reason,
            mode,
            duration_ms: duration.as_secs_f64() * 1000.0,
            steps_ms,
            notes,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub unsupported: usize,
    pub broken: usize,
}

impl Summary {
    pub fn of(records: &[TrialRecord]) -> Self {
        let mut s = Summary::default();
        for r in records {
            match r.outcome {
                Outcome::Pass => s.pass += 1,
                Outcome::Fail => s.fail += 1,
                Outcome::Unsupported => s.unsupported += 1,
                Outcome::Broken => s.broken += 1,
            }
        }
        s
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub kernel: String,
    pub target: String,
    pub results: Vec<TrialRecord>,
    pub summary: Summary,
}

impl Report {
    /// A report on the running kernel.
    pub fn new(target: &str, results: Vec<TrialRecord>) -> Self {
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::with_kernel(target, &kernel, results)
    }

    /// A report on another kernel (a VM's, as it reported its release).
    pub fn with_kernel(target: &str, kernel: &str, mut results: Vec<TrialRecord>) -> Self {
        results.sort_by(|a, b| a.name.cmp(&b.name));
        let kernel = kernel.to_string();
        let summary = Summary::of(&results);
        Report {
            kernel,
            target: target.to_string(),
            results,
            summary,
        }
    }
}

/// Runtimes side by side: one row per scenario, one column per target
/// label, each cell the outcome. Trial names are `<label>:<area>::<name>`.
pub fn side_by_side(records: &[TrialRecord], labels: &[&str]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut cell = std::collections::HashMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(verdict: Verdict) -> Event {
        Event::Finished {
            verdict,
            steps_ms: 1.5,
        }
    }

    #[test]
    fn a_record_takes_the_final_verdict_and_notes() {
        let events = [
            Event::Note {
                text: "took 3 µs".into(),
            },
            finished(Verdict::fail("expected a, observed b")),
        ];
        let r = TrialRecord::from_events("zombie::x", "zombie", &events, Duration::from_millis(4));
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.reason, "expected a, observed b");
        assert_eq!(r.notes, vec!["took 3 µs"]);
        assert_eq!(r.steps_ms, 1.5);
        assert_eq!(r.mode, None, "no agent said how it ran");
    }

    #[test]
    fn a_record_says_how_its_root_ran() {
        let events = [
            Event::Started {
                pid: 7,
                mode: RootMode::SubreaperRoot,
            },
            finished(Verdict::pass()),
        ];
        let r = TrialRecord::from_events("zombie::x", "zombie", &events, Duration::ZERO);
        assert_eq!(r.mode, Some(RootMode::SubreaperRoot));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["mode"], "subreaper_root");
    }

    #[test]
    fn a_stream_without_a_verdict_is_broken() {
        let r = TrialRecord::from_events(
            "a::b",
            "a",
            &[Event::Started {
                pid: 1,
                mode: RootMode::PidNamespace,
            }],
            Duration::ZERO,
        );
        assert_eq!(r.outcome, Outcome::Broken);
    }

    #[test]
    fn the_summary_counts_each_outcome() {
        let rec =
            |v: Verdict| TrialRecord::from_events("a::b", "a", &[finished(v)], Duration::ZERO);
        let records = [
            rec(Verdict::pass()),
            rec(Verdict::pass()),
            rec(Verdict::fail("x")),
            rec(Verdict::unsupported("y")),
            rec(Verdict::broken("z")),
        ];
        assert_eq!(
            Summary::of(&records),
            Summary {
                pass: 2,
                fail: 1,
                unsupported: 1,
                broken: 1
            }
        );
    }

    #[test]
    fn runtimes_sit_side_by_side() {
        let rec = |name: &str, v: Verdict| {
            TrialRecord::from_events(name, "kill", &[finished(v)], Duration::ZERO)
        };
        let table = side_by_side(
            &[
                rec("runc:kill::all_gone", Verdict::pass()),
                rec("crun:kill::all_gone", Verdict::fail("x")),
                rec("runc:pid1::term", Verdict::unsupported("y")),
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

    #[test]
    fn the_report_has_the_documented_fields() {
        let report = Report::new(
            "host",
            vec![TrialRecord::from_events(
                "a::b",
                "a",
                &[finished(Verdict::pass())],
                Duration::ZERO,
            )],
        );
        let json = serde_json::to_value(&report).unwrap();
        for key in ["kernel", "target", "results", "summary"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let result = &json["results"][0];
        for key in ["name", "area", "outcome", "reason", "mode", "duration_ms"] {
            assert!(result.get(key).is_some(), "{key}");
        }
        assert_eq!(result["outcome"], "pass");
        assert_eq!(json["summary"]["pass"], 1);
    }
}
