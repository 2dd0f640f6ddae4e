//! One record per trial, folded from that trial's events as they stream past.

use super::event::TrialInfo;
use orphanage_scenario::{Event, FailKind, Outcome, RootMode, Verdict};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Written into the JSON report, and read back from one (merge, baselines):
/// what a report from an older orphanage may lack has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialRecord {
    pub name: String,
    pub area: String,
    /// The scenario file (`suites/area/name.yaml`), so a failure can be opened.
    #[serde(default)]
    pub file: String,
    /// The target's label (`host`, `runc`, ...).
    pub target: String,
    pub outcome: Outcome,
    /// `timeout` or `leak` for those fails; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailKind>,
    #[serde(default)]
    pub reason: String,
    /// How the scenario's root ran (`pid_namespace`, `subreaper_root`,
    /// `caller_namespace`, `under_init`), as the agent said; null when no
    /// agent started.
    #[serde(default)]
    pub mode: Option<RootMode>,
    #[serde(default)]
    pub duration_ms: f64,
    /// Time the scenario's own steps took, as the agent measured it.
    #[serde(default)]
    pub steps_ms: f64,
    /// Figures and observations the scenario reported (latencies, times taken).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A trial's events folded as they arrive: notes are kept, the last verdict
/// wins, and a stream that never finished is broken.
#[derive(Debug)]
pub struct RecordFold {
    verdict: Verdict,
    steps_ms: f64,
    notes: Vec<String>,
    mode: Option<RootMode>,
}

impl Default for RecordFold {
    fn default() -> Self {
        RecordFold {
            verdict: Verdict::broken("no verdict was reported"),
            steps_ms: 0.0,
            notes: Vec::new(),
            mode: None,
        }
    }
}

impl RecordFold {
    pub fn take(&mut self, event: &Event) {
        match event {
            Event::Note { text } => self.notes.push(text.clone()),
            Event::Started { mode, .. } => self.mode = Some(*mode),
            Event::Finished { verdict, steps_ms } => {
                self.verdict = verdict.clone();
                self.steps_ms = *steps_ms;
            }
            _ => {}
        }
    }

    /// Another judge's verdict on the same events, in place of the agent's:
    /// explore's comparison with the model, which the agent knows nothing of.
    pub fn judged(&mut self, verdict: Verdict) {
        self.verdict = verdict;
    }

    /// The time the steps took, as the agent measured it.
    pub fn steps(&self) -> Duration {
        Duration::from_secs_f64(self.steps_ms.max(0.0) / 1000.0)
    }

    pub fn finish(self, trial: &TrialInfo, duration: Duration) -> TrialRecord {
        TrialRecord {
            name: trial.name.clone(),
            area: trial.area.clone(),
            file: trial.file.display().to_string(),
            target: trial.target.clone(),
            outcome: self.verdict.outcome,
            kind: self.verdict.kind,
            reason: self.verdict.reason,
            mode: self.mode,
            duration_ms: duration.as_secs_f64() * 1000.0,
            steps_ms: self.steps_ms,
            notes: self.notes,
        }
    }
}

impl TrialRecord {
    /// Folds a whole recorded stream at once (the matrix, which gets a VM's
    /// events only when the VM is done).
    pub fn from_events(trial: &TrialInfo, events: &[Event], duration: Duration) -> Self {
        let mut fold = RecordFold::default();
        for e in events {
            fold.take(e);
        }
        fold.finish(trial, duration)
    }

    /// The line a failure prints: where the scenario lives, then why.
    pub fn failure_message(&self) -> String {
        let reason = match self.outcome {
            Outcome::Broken => format!("broken: {}", self.reason),
            _ => self.reason.clone(),
        };
        if self.file.is_empty() {
            reason
        } else {
            format!("{}: {reason}", self.file)
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub unsupported: usize,
    pub broken: usize,
}

impl Summary {
    pub fn of<'a>(records: impl IntoIterator<Item = &'a TrialRecord>) -> Self {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn trial(name: &str) -> TrialInfo {
        // `runc:area::name` has a target prefix; `area::name` has none.
        let (target, scenario) = match name.find(':') {
            Some(i) if !name[i + 1..].starts_with(':') => (&name[..i], &name[i + 1..]),
            _ => ("host", name),
        };
        let area = scenario.split("::").next().unwrap_or("").to_string();
        TrialInfo {
            name: name.into(),
            file: format!(
                "suites/{area}/{}.yaml",
                scenario.rsplit("::").next().unwrap()
            )
            .into(),
            area,
            target: target.into(),
        }
    }

    pub fn finished(verdict: Verdict) -> Event {
        Event::Finished {
            verdict,
            steps_ms: 1.5,
        }
    }

    pub fn record(name: &str, v: Verdict) -> TrialRecord {
        TrialRecord::from_events(&trial(name), &[finished(v)], Duration::ZERO)
    }

    #[test]
    fn a_record_takes_the_final_verdict_and_notes() {
        let events = [
            Event::Note {
                text: "took 3 µs".into(),
            },
            finished(Verdict::fail("expected a, observed b")),
        ];
        let r = TrialRecord::from_events(&trial("zombie::x"), &events, Duration::from_millis(4));
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.reason, "expected a, observed b");
        assert_eq!(r.notes, vec!["took 3 µs"]);
        assert_eq!(r.steps_ms, 1.5);
        assert_eq!(r.file, "suites/zombie/x.yaml");
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
        let r = TrialRecord::from_events(&trial("zombie::x"), &events, Duration::ZERO);
        assert_eq!(r.mode, Some(RootMode::SubreaperRoot));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["mode"], "subreaper_root");
    }

    #[test]
    fn a_stream_without_a_verdict_is_broken() {
        let r = TrialRecord::from_events(
            &trial("a::b"),
            &[Event::Started {
                pid: 1,
                mode: RootMode::PidNamespace,
            }],
            Duration::ZERO,
        );
        assert_eq!(r.outcome, Outcome::Broken);
    }

    #[test]
    fn a_timeout_keeps_its_kind() {
        let r = record("a::b", Verdict::timeout("timeout after 1 s"));
        assert_eq!(
            (r.outcome, r.kind),
            (Outcome::Fail, Some(FailKind::Timeout))
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "timeout");
        assert!(serde_json::to_value(record("a::b", Verdict::fail("x")))
            .unwrap()
            .get("kind")
            .is_none());
    }

    #[test]
    fn a_failure_names_the_scenario_file() {
        assert_eq!(
            record(
                "subreaper::nearest",
                Verdict::fail("expected a, observed b")
            )
            .failure_message(),
            "suites/subreaper/nearest.yaml: expected a, observed b"
        );
        assert_eq!(
            record("a::b", Verdict::broken("agent killed by SIGSEGV")).failure_message(),
            "suites/a/b.yaml: broken: agent killed by SIGSEGV"
        );
    }

    #[test]
    fn the_summary_counts_each_outcome() {
        let records = [
            record("a::b", Verdict::pass()),
            record("a::b", Verdict::pass()),
            record("a::b", Verdict::fail("x")),
            record("a::b", Verdict::unsupported("y")),
            record("a::b", Verdict::broken("z")),
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
}
