//! `--format ktap`: KTAP version 1 on stdout, kselftest's convention, so any
//! TAP-reading CI can take a run. Results are numbered in the order they
//! finish; unsupported is `ok ... # SKIP reason`; a fail or broken result is
//! `not ok`, preceded by `#` diagnostic lines naming the file and the reason.

use super::event::RunEvent;
use super::reporter::{ReportError, Reporter};
use orphanage_scenario::Outcome;
use std::io::Write;
use std::path::PathBuf;

pub struct KtapReport<W: Write + Send> {
    out: W,
    next: usize,
    /// The reader went away (`| head`): the run goes on, quietly, as other
    /// Unix tools do.
    closed: bool,
}

impl<W: Write + Send> KtapReport<W> {
    pub fn new(out: W) -> Self {
        KtapReport {
            out,
            next: 1,
            closed: false,
        }
    }

    fn write_lines(&mut self, lines: &[String], flush: bool) -> Result<(), ReportError> {
        let mut write = || -> std::io::Result<()> {
            for line in lines {
                writeln!(self.out, "{line}")?;
            }
            if flush {
                self.out.flush()?;
            }
            Ok(())
        };
        match write() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(stdout_error),
        }
    }
}

/// A description is one line of text with no `#`, which would start a directive.
fn description(text: &str) -> String {
    one_line(text).replace('#', "")
}

/// Diagnostics may say anything, but on one line each and without control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The lines one finished trial adds.
fn result_lines(number: usize, event: &RunEvent<'_>) -> Vec<String> {
    let RunEvent::TrialFinished { trial, record } = event else {
        return vec![];
    };
    let name = description(&trial.name);
    match record.outcome {
        Outcome::Pass => vec![format!("ok {number} {name}")],
        Outcome::Unsupported => vec![format!(
            "ok {number} {name} # SKIP {}",
            one_line(&record.reason)
        )],
        Outcome::Fail | Outcome::Broken => {
            let mut lines = vec![format!("# {}: {}", trial.file.display(), record.outcome)];
            lines.extend(record.reason.lines().map(|l| format!("# {}", one_line(l))));
            lines.push(format!("not ok {number} {name}"));
            lines
        }
    }
}

impl<W: Write + Send> Reporter for KtapReport<W> {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        if self.closed {
            return Ok(());
        }
        match event {
            RunEvent::RunStarted { selected } => self.write_lines(
                &["KTAP version 1".to_string(), format!("1..{selected}")],
                false,
            ),
            RunEvent::TrialFinished { .. } => {
                self.next += 1;
                self.write_lines(&result_lines(self.next - 1, event), false)
            }
            RunEvent::RunFinished => self.write_lines(&[], true),
            RunEvent::TrialsListed { .. }
            | RunEvent::ExecutionStarted { .. }
            | RunEvent::TrialStarted { .. }
            | RunEvent::Scenario { .. }
            | RunEvent::TrialPanicked { .. }
            | RunEvent::ExecutionFinished { .. } => Ok(()),
        }
    }
}

fn stdout_error(source: std::io::Error) -> ReportError {
    ReportError::Write {
        what: "KTAP to",
        path: PathBuf::from("standard output"),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::{record, trial};
    use super::*;
    use orphanage_scenario::Verdict;

    /// One result line: ok or not, its number, description and directive.
    type Line = (bool, usize, String, Option<String>);

    /// A KTAP reader as small as the format: the version line, the plan, and
    /// each result's status, number, description and directive.
    fn parse(text: &str) -> (usize, Vec<Line>) {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("KTAP version 1"));
        let plan: usize = lines
            .next()
            .and_then(|l| l.strip_prefix("1.."))
            .expect("a plan")
            .parse()
            .unwrap();
        let mut results = Vec::new();
        for line in lines {
            if line.starts_with('#') {
                continue;
            }
            let (ok, rest) = match line.strip_prefix("not ok ") {
                Some(rest) => (false, rest),
                None => (true, line.strip_prefix("ok ").expect("a result line")),
            };
            let (number, rest) = rest.split_once(' ').unwrap();
            let (desc, directive) = match rest.split_once(" # ") {
                Some((d, dir)) => (d.to_string(), Some(dir.to_string())),
                None => (rest.to_string(), None),
            };
            results.push((ok, number.parse().unwrap(), desc, directive));
        }
        (plan, results)
    }

    fn run(records: &[(&str, Verdict)]) -> String {
        let mut out = Vec::new();
        {
            let mut ktap = KtapReport::new(&mut out);
            ktap.report(&RunEvent::RunStarted {
                selected: records.len(),
            })
            .unwrap();
            for (name, v) in records {
                let (info, rec) = (trial(name), record(name, v.clone()));
                ktap.report(&RunEvent::TrialFinished {
                    trial: &info,
                    record: &rec,
                })
                .unwrap();
            }
            ktap.report(&RunEvent::RunFinished).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ktap_numbers_results_and_skips_unsupported_with_the_reason() {
        let text = run(&[
            ("subreaper::a", Verdict::pass()),
            (
                "memfd::b",
                Verdict::unsupported("memfd_create(MFD_EXEC): EINVAL"),
            ),
            (
                "zombie::c",
                Verdict::fail("expected zombie,\nobserved gone"),
            ),
            ("pid1::d", Verdict::broken("agent killed by SIGSEGV")),
        ]);
        let (plan, results) = parse(&text);
        assert_eq!(plan, 4);
        assert_eq!(
            results,
            vec![
                (true, 1, "subreaper::a".into(), None),
                (
                    true,
                    2,
                    "memfd::b".into(),
                    Some("SKIP memfd_create(MFD_EXEC): EINVAL".into())
                ),
                (false, 3, "zombie::c".into(), None),
                (false, 4, "pid1::d".into(), None),
            ]
        );
        assert!(text.contains(
            "# suites/zombie/c.yaml: fail\n# expected zombie,\n# observed gone\nnot ok 3"
        ));
    }

    /// A writer whose reader has gone.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_output_quietly() {
        let mut ktap = KtapReport::new(ClosedPipe);
        assert!(ktap.report(&RunEvent::RunStarted { selected: 1 }).is_ok());
        assert!(ktap.report(&RunEvent::RunFinished).is_ok());
        assert!(ktap.closed);
    }

    #[test]
    fn untrusted_reasons_cannot_forge_results() {
        let text = run(&[(
            "a::b",
            Verdict::unsupported("x\nok 99 forged # SKIP\u{1b}[31m"),
        )]);
        let (_, results) = parse(&text);
        assert_eq!(results.len(), 1, "{text}");
    }
}
