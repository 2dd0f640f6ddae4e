//! The reporter interface, and the fan-out the executor talks to.

use super::event::RunEvent;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The source is chained (not repeated here): the CLI prints the chain.
    #[error("cannot write {what} {}", path.display())]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {what} {}", path.display())]
    Encode {
        what: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Creates a reporter's output file now, so a path that cannot be written is
/// bad input, found before anything runs.
pub fn create_file(
    what: &'static str,
    path: &std::path::Path,
) -> Result<std::fs::File, ReportError> {
    std::fs::File::create(path).map_err(|source| ReportError::Write {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Consumes the run's events. Reporters never see each other, and only the
/// ones that print may print.
pub trait Reporter: Send {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError>;
}

/// Every reporter of a run, fed in order from whichever trial thread has news.
#[derive(Default)]
pub struct Reporters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    reporters: Vec<Box<dyn Reporter>>,
    /// The first failure, kept for the end of the run: a report that cannot be
    /// written must not stop the scenarios (or their cleanup) half-way.
    error: Option<ReportError>,
    /// Trials that ran to a record: a run with none ran nothing.
    finished_trials: usize,
}

impl Reporters {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Self {
        Reporters {
            inner: Mutex::new(Inner {
                reporters,
                error: None,
                finished_trials: 0,
            }),
        }
    }

    /// One more reporter, before the run starts.
    pub fn add(&mut self, reporter: Box<dyn Reporter>) {
        self.inner
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .reporters
            .push(reporter);
    }

    pub fn emit(&self, event: &RunEvent<'_>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let RunEvent::TrialFinished { .. } = event {
            inner.finished_trials += 1;
        }
        let Inner {
            reporters, error, ..
        } = &mut *inner;
        for r in reporters.iter_mut() {
            if let Err(e) = r.report(event) {
                error.get_or_insert(e);
            }
        }
    }

    /// How many trials have finished so far.
    pub fn finished_trials(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finished_trials
    }

    /// Ends the run: every reporter writes, and the first error is returned.
    pub fn finish(&self) -> Result<(), ReportError> {
        self.emit(&RunEvent::RunFinished);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Counting(Arc<Mutex<Vec<String>>>, bool);

    impl Reporter for Counting {
        fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
            let name = match event {
                RunEvent::RunStarted { .. } => "started",
                RunEvent::RunFinished => "finished",
                _ => "other",
            };
            self.0.lock().unwrap().push(name.into());
            if self.1 && name == "finished" {
                return Err(ReportError::Write {
                    what: "report",
                    path: "x.json".into(),
                    source: std::io::Error::other("disk full"),
                });
            }
            Ok(())
        }
    }

    #[test]
    fn every_reporter_hears_every_event_and_the_first_error_is_kept() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reporters = Reporters::new(vec![
            Box::new(Counting(seen.clone(), true)),
            Box::new(Counting(seen.clone(), false)),
        ]);
        reporters.emit(&RunEvent::RunStarted { selected: 1 });
        let err = reporters.finish().unwrap_err();
        assert_eq!(err.to_string(), "cannot write report x.json");
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "cannot write report x.json: disk full"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            ["started", "started", "finished", "finished"]
        );
    }
}
