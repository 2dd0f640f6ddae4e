//! `--events FILE`: every event of every trial as it happens, one JSON line
//! each, tagged with its trial: what the agent saw (spawns, observations,
//! steps, notes) for a kernel developer to read after a surprising verdict.

use super::event::RunEvent;
use super::reporter::{create_file, ReportError, Reporter};
use std::io::Write;
use std::path::PathBuf;

pub struct EventLog<W: Write + Send> {
    path: PathBuf,
    out: W,
}

impl EventLog<std::io::BufWriter<std::fs::File>> {
    /// Opens the file now, so a bad path is refused before anything runs.
    pub fn create(path: PathBuf) -> Result<Self, ReportError> {
        let file = create_file("event log", &path)?;
        Ok(EventLog {
            path,
            out: std::io::BufWriter::new(file),
        })
    }
}

/// The line for one event, if it is one a log keeps.
fn line(event: &RunEvent<'_>) -> Option<serde_json::Value> {
    match event {
        RunEvent::TrialStarted { trial } => Some(serde_json::json!({
            "trial": trial.name,
            "target": trial.target,
            "file": trial.file,
            "event": {"event": "trial_started"},
        })),
        RunEvent::Scenario { trial, event } => Some(serde_json::json!({
            "trial": trial.name,
            "target": trial.target,
            "event": event,
        })),
        _ => None,
    }
}

impl<W: Write + Send> Reporter for EventLog<W> {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        let failed = |source| ReportError::Write {
            what: "event log",
            path: self.path.clone(),
            source,
        };
        if let Some(value) = line(event) {
            writeln!(self.out, "{value}").map_err(failed)?;
        }
        if let RunEvent::RunFinished = event {
            self.out.flush().map_err(failed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::trial;
    use super::*;
    use orphanage_scenario::Event;

    #[test]
    fn each_event_is_one_line_naming_its_trial() {
        let mut out = Vec::new();
        let info = trial("runc:zombie::a");
        {
            let mut log = EventLog {
                path: "x".into(),
                out: &mut out,
            };
            log.report(&RunEvent::TrialStarted { trial: &info })
                .unwrap();
            log.report(&RunEvent::Scenario {
                trial: &info,
                event: &Event::Spawned {
                    name: "leaf".into(),
                    pid: 4,
                    start_time: 99,
                },
            })
            .unwrap();
            log.report(&RunEvent::RunFinished).unwrap();
        }
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"]["event"], "trial_started");
        assert_eq!(lines[0]["file"], "suites/zombie/a.yaml");
        assert_eq!(lines[1]["trial"], "runc:zombie::a");
        assert_eq!(lines[1]["target"], "runc");
        assert_eq!(lines[1]["event"]["event"], "spawned");
        assert_eq!(lines[1]["event"]["name"], "leaf");
    }
}
