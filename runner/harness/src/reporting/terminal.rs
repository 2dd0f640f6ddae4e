//! The terminal's lines, as `cargo test` prints them: what libtest-mimic 0.8
//! printed when it ran the trials, byte for byte, so scripts and eyes that
//! read cargo test read orphanage. `running N tests`, then per trial a line
//! (pretty), a character (terse, `-q`) or a JSON object (`--format json`),
//! the failures with their messages, and the summary line; `--list` prints
//! `name: test` lines. Colours go through anstream as libtest-mimic's did:
//! kept on a terminal or with `--color always`, and otherwise stripped from
//! everything written, escapes inside a reason included.

use super::conclusion::Conclusion;
use super::event::{RunEvent, TrialInfo};
use super::record::TrialRecord;
use super::reporter::{create_file, ReportError, Reporter};
use anstream::AutoStream;
use anstyle::{AnsiColor, Color, Style};
use libtest_mimic::{Arguments, ColorSetting, FormatSetting};
use orphanage_scenario::Outcome;
use std::io::Write;
use std::path::PathBuf;

/// A trial's result in cargo test's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Ok,
    /// Unsupported, with the probe that said so.
    Ignored(String),
    /// Fail or broken (or a panic), with the message of the failures section.
    Failed(String),
}

impl Shown {
    /// Pass is ok, unsupported is ignored with its reason, fail and broken
    /// fail; a failure's message names the scenario's file.
    pub fn of(record: &TrialRecord) -> Self {
        match record.outcome {
            Outcome::Pass => Shown::Ok,
            Outcome::Unsupported => Shown::Ignored(format!("unsupported: {}", record.reason)),
            Outcome::Fail | Outcome::Broken => Shown::Failed(record.failure_message()),
        }
    }

    fn style(&self) -> Style {
        let color = match self {
            Shown::Ok => AnsiColor::Green,
            Shown::Ignored(_) => AnsiColor::Yellow,
            Shown::Failed(_) => AnsiColor::Red,
        };
        Style::new().fg_color(Some(Color::Ansi(color)))
    }

    /// `ok`, `FAILED` or `ignored (reason)`, coloured.
    fn word(&self) -> String {
        let style = self.style();
        match self {
            Shown::Ok => format!("{style}ok{style:#}"),
            Shown::Ignored(reason) => format!("{style}ignored ({reason}){style:#}"),
            Shown::Failed(_) => format!("{style}FAILED{style:#}"),
        }
    }
}

/// A JSON string's contents (RFC 8259 escapes, as libtest-mimic's escape8259).
fn json_text(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

/// The lines before the first result.
pub fn title(format: FormatSetting, count: usize) -> String {
    match format {
        FormatSetting::Pretty | FormatSetting::Terse => {
            let s = if count == 1 { "" } else { "s" };
            format!("\nrunning {count} test{s}\n")
        }
        FormatSetting::Json => {
            format!("{{ \"type\": \"suite\", \"event\": \"started\", \"test_count\": {count} }}\n")
        }
    }
}

/// What is printed of a trial before its result (`test name ... `, its name
/// padded to the longest selected one's): as it starts on one thread, just
/// before its result on several, whose results would interleave.
pub fn announcement(format: FormatSetting, name: &str, width: usize) -> String {
    match format {
        FormatSetting::Pretty => format!("test {name: <width$} ... "),
        FormatSetting::Terse => String::new(),
        FormatSetting::Json => format!(
            "{{ \"type\": \"test\", \"event\": \"started\", \"name\": \"{}\" }}\n",
            json_text(name)
        ),
    }
}

/// A trial's result, after its announcement.
pub fn result(format: FormatSetting, name: &str, shown: &Shown) -> String {
    match format {
        FormatSetting::Pretty => format!("{}\n", shown.word()),
        FormatSetting::Terse => {
            let style = shown.style();
            let c = match shown {
                Shown::Ok => '.',
                Shown::Ignored(_) => 'i',
                Shown::Failed(_) => 'F',
            };
            format!("{style}{c}{style:#}")
        }
        FormatSetting::Json => {
            // libtest's JSON has no field for a reason: an ignored trial is
            // a bare "ignored" (README says to read reasons from the reports).
            let (event, stdout) = match shown {
                Shown::Ok => ("ok", String::new()),
                Shown::Ignored(_) => ("ignored", String::new()),
                Shown::Failed(message) => (
                    "failed",
                    format!(", \"stdout\": \"Error: \\\"{}\\\"\\n\"", json_text(message)),
                ),
            };
            format!(
                "{{ \"type\": \"test\", \"name\": \"{}\", \"event\": \"{event}\"{stdout} }}\n",
                json_text(name)
            )
        }
    }
}

/// After the results, when any failed (pretty and terse only): each failure's
/// message under its name, then the names again, in the order they failed.
pub fn failures(failed: &[(String, String)]) -> String {
    let mut out = String::from("\nfailures:\n\n");
    for (name, message) in failed {
        out.push_str(&format!("---- {name} ----\n{message}\n\n"));
    }
    out.push_str("\nfailures:\n");
    for (name, _) in failed {
        out.push_str(&format!("    {name}\n"));
    }
    out
}

/// The last line: `test result: ok. 3 passed; 0 failed; ...`. Nothing here is
/// a benchmark, so nothing is measured.
pub fn summary(format: FormatSetting, conclusion: &Conclusion) -> String {
    let Conclusion {
        passed,
        failed,
        ignored,
        filtered_out,
        elapsed,
    } = conclusion;
    match format {
        FormatSetting::Pretty | FormatSetting::Terse => {
            let word = if conclusion.has_failed() {
                Shown::Failed(String::new())
            } else {
                Shown::Ok
            }
            .word();
            format!(
                "\ntest result: {word}. {passed} passed; {failed} failed; {ignored} ignored; \
                 0 measured; {filtered_out} filtered out; finished in {:.2}s\n\n",
                elapsed.as_secs_f64()
            )
        }
        FormatSetting::Json => format!(
            "{{ \"type\": \"suite\", \"event\": \"{}\", \"passed\": {passed}, \"failed\": {failed}, \
             \"ignored\": {ignored}, \"measured\": 0, \"filtered_out\": {filtered_out}, \
             \"exec_time\": {} }}\n",
            if conclusion.has_failed() { "failed" } else { "ok" },
            elapsed.as_secs_f64()
        ),
    }
}

/// `--list`, in every format: one `name: test` line per selected trial.
pub fn list(trials: &[TrialInfo]) -> String {
    trials
        .iter()
        .map(|t| format!("{}: test\n", t.name))
        .collect()
}

/// Prints the trials' results as cargo test does, on standard output (or
/// `--logfile`'s file).
pub struct TerminalReport {
    out: Box<dyn Write + Send>,
    /// Named in a write error.
    destination: PathBuf,
    format: FormatSetting,
    /// The longest selected name, in characters, that pretty names are padded to.
    width: usize,
    /// One: a trial is announced as it starts, its result follows on the line.
    threads: usize,
    /// Names and messages, in the order they failed.
    failed: Vec<(String, String)>,
    /// A write failed: the error is reported once, and nothing more is tried.
    broken: bool,
}

impl TerminalReport {
    pub fn new(out: Box<dyn Write + Send>, destination: PathBuf, format: FormatSetting) -> Self {
        TerminalReport {
            out,
            destination,
            format,
            width: 0,
            threads: 1,
            failed: Vec::new(),
            broken: false,
        }
    }

    /// Where and how libtest-mimic would print for these flags: `-q` is
    /// terse; `--logfile PATH` (created now) takes the lines instead of
    /// standard output, coloured only with `--color always`.
    pub fn for_arguments(args: &Arguments) -> Result<Self, ReportError> {
        let color = args.color.unwrap_or(ColorSetting::Auto);
        let (out, destination): (Box<dyn Write + Send>, PathBuf) = match &args.logfile {
            Some(path) => {
                let file = create_file("log file", std::path::Path::new(path))?;
                let stream = if color == ColorSetting::Always {
                    AutoStream::always(file)
                } else {
                    AutoStream::never(file)
                };
                (Box::new(stream), PathBuf::from(path))
            }
            None => {
                let choice = match color {
                    ColorSetting::Auto => anstream::ColorChoice::Auto,
                    ColorSetting::Always => anstream::ColorChoice::Always,
                    ColorSetting::Never => anstream::ColorChoice::Never,
                };
                let stream = AutoStream::new(std::io::stdout(), choice);
                (Box::new(stream), PathBuf::from("standard output"))
            }
        };
        let format = if args.quiet {
            FormatSetting::Terse
        } else {
            args.format.unwrap_or(FormatSetting::Pretty)
        };
        Ok(Self::new(out, destination, format))
    }

    fn finished(&mut self, trial: &TrialInfo, shown: Shown) -> String {
        let mut text = String::new();
        if self.threads != 1 {
            text.push_str(&announcement(self.format, &trial.name, self.width));
        }
        text.push_str(&result(self.format, &trial.name, &shown));
        if let Shown::Failed(message) = shown {
            self.failed.push((trial.name.clone(), message));
        }
        text
    }

    fn write(&mut self, text: &str, flush: bool) -> Result<(), ReportError> {
        let mut write = || -> std::io::Result<()> {
            self.out.write_all(text.as_bytes())?;
            if flush {
                self.out.flush()?;
            }
            Ok(())
        };
        match write() {
            Ok(()) => Ok(()),
            // The reader went away (`orphanage | head`): the run ends as a
            // process killed by SIGPIPE does, cleaned up and quiet.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::live::output_closed(),
            Err(source) => {
                self.broken = true;
                Err(ReportError::Write {
                    what: "the results to",
                    path: self.destination.clone(),
                    source,
                })
            }
        }
    }
}

impl Reporter for TerminalReport {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        if self.broken {
            return Ok(());
        }
        let (text, flush) = match event {
            RunEvent::TrialsListed { trials } => (list(trials), true),
            RunEvent::ExecutionStarted { trials, threads } => {
                self.width = trials
                    .iter()
                    .map(|t| t.name.chars().count())
                    .max()
                    .unwrap_or(0);
                self.threads = *threads;
                (title(self.format, trials.len()), false)
            }
            RunEvent::TrialStarted { trial } if self.threads == 1 => {
                // Shown before the trial runs, so a slow one is seen running.
                (announcement(self.format, &trial.name, self.width), true)
            }
            RunEvent::TrialFinished { trial, record } => {
                (self.finished(trial, Shown::of(record)), false)
            }
            RunEvent::TrialPanicked { trial, message } => (
                self.finished(trial, Shown::Failed(message.to_string())),
                false,
            ),
            RunEvent::ExecutionFinished { conclusion } => {
                let mut text = String::new();
                if !self.failed.is_empty() && self.format != FormatSetting::Json {
                    text.push_str(&failures(&self.failed));
                }
                text.push_str(&summary(self.format, conclusion));
                (text, true)
            }
            RunEvent::RunStarted { .. }
            | RunEvent::TrialStarted { .. }
            | RunEvent::Scenario { .. }
            | RunEvent::RunFinished => return Ok(()),
        };
        if text.is_empty() && !flush {
            return Ok(());
        }
        self.write(&text, flush)
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::{record, trial};
    use super::*;
    use orphanage_scenario::Verdict;
    use rstest::rstest;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const GREEN: &str = "\u{1b}[32m";
    const YELLOW: &str = "\u{1b}[33m";
    const RED: &str = "\u{1b}[31m";
    const RESET: &str = "\u{1b}[0m";
    use FormatSetting::{Json, Pretty, Terse};

    #[rstest]
    #[case::pass(Verdict::pass(), Shown::Ok)]
    #[case::unsupported(
        Verdict::unsupported("prctl(PR_SET_CHILD_SUBREAPER): EINVAL"),
        Shown::Ignored("unsupported: prctl(PR_SET_CHILD_SUBREAPER): EINVAL".into())
    )]
    #[case::fail(
        Verdict::fail("leaf's parent: expected sub (pid 3), observed init (pid 1)"),
        Shown::Failed("suites/a/b.yaml: leaf's parent: expected sub (pid 3), observed init (pid 1)".into())
    )]
    #[case::broken(
        Verdict::broken("agent killed by SIGSEGV"),
        Shown::Failed("suites/a/b.yaml: broken: agent killed by SIGSEGV".into())
    )]
    fn outcomes_show_in_cargo_tests_words(#[case] verdict: Verdict, #[case] shown: Shown) {
        assert_eq!(Shown::of(&record("a::b", verdict)), shown);
    }

    #[test]
    fn the_title_counts_the_selected_trials() {
        assert_eq!(title(Pretty, 1), "\nrunning 1 test\n");
        assert_eq!(title(Terse, 62), "\nrunning 62 tests\n");
        assert_eq!(
            title(Json, 19),
            "{ \"type\": \"suite\", \"event\": \"started\", \"test_count\": 19 }\n"
        );
    }

    #[rstest]
    #[case::ok(Pretty, Shown::Ok, format!("{GREEN}ok{RESET}\n"))]
    #[case::ignored(
        Pretty,
        Shown::Ignored("unsupported: clone3: ENOSYS".into()),
        format!("{YELLOW}ignored (unsupported: clone3: ENOSYS){RESET}\n")
    )]
    #[case::failed(Pretty, Shown::Failed("x.yaml: why".into()), format!("{RED}FAILED{RESET}\n"))]
    #[case::terse_ok(Terse, Shown::Ok, format!("{GREEN}.{RESET}"))]
    #[case::terse_ignored(Terse, Shown::Ignored("r".into()), format!("{YELLOW}i{RESET}"))]
    #[case::terse_failed(Terse, Shown::Failed("m".into()), format!("{RED}F{RESET}"))]
    #[case::json_ok(Json, Shown::Ok, "{ \"type\": \"test\", \"name\": \"zombie::a\", \"event\": \"ok\" }\n".into())]
    #[case::json_ignored(
        Json,
        Shown::Ignored("no reason in libtest's JSON".into()),
        "{ \"type\": \"test\", \"name\": \"zombie::a\", \"event\": \"ignored\" }\n".into()
    )]
    #[case::json_failed(
        Json,
        Shown::Failed("x.yaml: expected \"a\"\tgot\nb\\".into()),
        "{ \"type\": \"test\", \"name\": \"zombie::a\", \"event\": \"failed\", \"stdout\": \"Error: \\\"x.yaml: expected \\\"a\\\"\\tgot\\nb\\\\\\\"\\n\" }\n".into()
    )]
    fn a_result_prints_as_libtest_prints_it(
        #[case] format: FormatSetting,
        #[case] shown: Shown,
        #[case] text: String,
    ) {
        assert_eq!(result(format, "zombie::a", &shown), text);
    }

    #[test]
    fn pretty_names_are_padded_to_the_longest() {
        assert_eq!(
            announcement(Pretty, "kill::a", 12),
            "test kill::a      ... "
        );
        // Characters, not bytes, as libtest-mimic counts them.
        assert_eq!(announcement(Pretty, "µs::a", 6), "test µs::a  ... ");
        assert_eq!(
            announcement(Pretty, "longer_than_width", 3),
            "test longer_than_width ... "
        );
        assert_eq!(announcement(Terse, "kill::a", 12), "");
        assert_eq!(
            announcement(Json, "a\"b", 0),
            "{ \"type\": \"test\", \"event\": \"started\", \"name\": \"a\\\"b\" }\n"
        );
    }

    #[test]
    fn json_text_escapes_as_rfc_8259() {
        assert_eq!(
            json_text("a\u{0}\u{1f}\u{7f}é\"\\/"),
            "a\\u0000\\u001f\u{7f}é\\\"\\\\/"
        );
        assert_eq!(json_text("\u{8}\u{c}\r"), "\\b\\f\\r");
    }

    #[test]
    fn failures_list_messages_then_names() {
        let failed = [
            (
                "zombie::a".to_string(),
                "suites/zombie/a.yaml: why\nand more".to_string(),
            ),
            (
                "kill::b".to_string(),
                "suites/kill/b.yaml: broken: x".to_string(),
            ),
        ];
        assert_eq!(
            failures(&failed),
            "\nfailures:\n\n\
             ---- zombie::a ----\nsuites/zombie/a.yaml: why\nand more\n\n\
             ---- kill::b ----\nsuites/kill/b.yaml: broken: x\n\n\
             \nfailures:\n    zombie::a\n    kill::b\n"
        );
    }

    fn conclusion(failed: u64) -> Conclusion {
        Conclusion {
            passed: 19,
            failed,
            ignored: 1,
            filtered_out: 76,
            elapsed: Duration::from_millis(1234),
        }
    }

    #[test]
    fn the_summary_line_counts_and_times_the_run() {
        assert_eq!(
            summary(Pretty, &conclusion(0)),
            format!("\ntest result: {GREEN}ok{RESET}. 19 passed; 0 failed; 1 ignored; 0 measured; 76 filtered out; finished in 1.23s\n\n")
        );
        assert_eq!(
            summary(Terse, &conclusion(2)),
            format!("\ntest result: {RED}FAILED{RESET}. 19 passed; 2 failed; 1 ignored; 0 measured; 76 filtered out; finished in 1.23s\n\n")
        );
        assert_eq!(
            summary(Json, &conclusion(2)),
            "{ \"type\": \"suite\", \"event\": \"failed\", \"passed\": 19, \"failed\": 2, \"ignored\": 1, \"measured\": 0, \"filtered_out\": 76, \"exec_time\": 1.234 }\n"
        );
    }

    #[test]
    fn the_list_names_each_trial_a_test() {
        assert_eq!(
            list(&[trial("zombie::a"), trial("runc:kill::b")]),
            "zombie::a: test\nrunc:kill::b: test\n"
        );
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A whole run through the reporter, colours stripped as off a terminal.
    fn printed(format: FormatSetting, threads: usize) -> String {
        let captured = Captured::default();
        let out = Box::new(AutoStream::never(
            Box::new(captured.clone()) as Box<dyn Write + Send>
        ));
        let mut terminal = TerminalReport::new(out, "standard output".into(), format);
        let trials = [trial("zombie::a_long_name"), trial("kill::b")];
        let records = [
            record("zombie::a_long_name", Verdict::pass()),
            record("kill::b", Verdict::fail("why")),
        ];
        let mut events = vec![RunEvent::ExecutionStarted {
            trials: &trials,
            threads,
        }];
        for (t, r) in trials.iter().zip(&records) {
            events.push(RunEvent::TrialStarted { trial: t });
            events.push(RunEvent::TrialFinished {
                trial: t,
                record: r,
            });
        }
        let c = Conclusion {
            passed: 1,
            failed: 1,
            filtered_out: 3,
            ..Conclusion::default()
        };
        events.push(RunEvent::ExecutionFinished { conclusion: &c });
        for e in &events {
            terminal.report(e).unwrap();
        }
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[rstest]
    #[case::one_thread(1)]
    #[case::two_threads(2)]
    fn a_run_prints_as_cargo_test_does(#[case] threads: usize) {
        assert_eq!(
            printed(Pretty, threads),
            "\nrunning 2 tests\n\
             test zombie::a_long_name ... ok\n\
             test kill::b             ... FAILED\n\
             \nfailures:\n\n---- kill::b ----\nsuites/kill/b.yaml: why\n\n\
             \nfailures:\n    kill::b\n\
             \ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.00s\n\n"
        );
    }

    #[test]
    fn terse_prints_a_character_per_trial_and_json_no_failures_section() {
        assert_eq!(
            printed(Terse, 2),
            "\nrunning 2 tests\n.F\nfailures:\n\n---- kill::b ----\nsuites/kill/b.yaml: why\n\n\
             \nfailures:\n    kill::b\n\
             \ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.00s\n\n"
        );
        let json = printed(Json, 1);
        assert!(!json.contains("failures:"), "{json}");
        assert_eq!(json.lines().count(), 6, "{json}");
    }

    #[test]
    fn a_panicked_trial_fails_with_its_message() {
        let captured = Captured::default();
        let out = Box::new(AutoStream::never(
            Box::new(captured.clone()) as Box<dyn Write + Send>
        ));
        let mut terminal = TerminalReport::new(out, "standard output".into(), Pretty);
        let t = [trial("zombie::a")];
        for e in [
            RunEvent::ExecutionStarted {
                trials: &t,
                threads: 2,
            },
            RunEvent::TrialPanicked {
                trial: &t[0],
                message: "test panicked: boom",
            },
            RunEvent::ExecutionFinished {
                conclusion: &Conclusion {
                    failed: 1,
                    ..Conclusion::default()
                },
            },
        ] {
            terminal.report(&e).unwrap();
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("test zombie::a ... FAILED\n")
                && text.contains("---- zombie::a ----\ntest panicked: boom\n"),
            "{text}"
        );
    }
}
