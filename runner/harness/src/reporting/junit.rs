//! `--junit FILE`: JUnit XML as GitHub, GitLab and Jenkins read it. One
//! testsuite per target; unsupported is `skipped` with its reason, fail is
//! `failure` and broken is `error`. Test names carry the target's prefix, so
//! they stay unique across cells (GitLab keeps only the first of a name).

use super::event::RunEvent;
use super::record::TrialRecord;
use super::reporter::{create_file, ReportError, Reporter};
use orphanage_scenario::Outcome;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::PathBuf;
use std::time::Duration;

pub struct JunitReport {
    path: PathBuf,
    file: Option<std::fs::File>,
    records: Vec<TrialRecord>,
}

impl JunitReport {
    /// Opens the file now, so a bad path is refused before anything runs.
    pub fn create(path: PathBuf) -> Result<Self, ReportError> {
        let file = create_file("JUnit report", &path)?;
        Ok(JunitReport {
            path,
            file: Some(file),
            records: Vec::new(),
        })
    }
}

/// The whole document for these records, grouped into one suite per target.
pub fn junit_xml(records: &[TrialRecord]) -> Report {
    let mut records: Vec<&TrialRecord> = records.iter().collect();
    records.sort_by(|a, b| (&a.target, &a.name).cmp(&(&b.target, &b.name)));
    let mut report = Report::new("orphanage");
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in records {
        if suites.last().is_none_or(|s| s.name.as_str() != r.target) {
            suites.push(TestSuite::new(r.target.as_str()));
        }
        let suite = suites.last_mut().expect("pushed above");
        suite.add_test_case(test_case(r));
    }
    for s in &mut suites {
        let secs: f64 = s
            .test_cases
            .iter()
            .filter_map(|c| c.time)
            .map(|t| t.as_secs_f64())
            .sum();
        s.set_time(Duration::from_secs_f64(secs));
    }
    report.add_test_suites(suites);
    report
}

/// One result as a testcase: its status, message, classname and time.
pub fn test_case(r: &TrialRecord) -> TestCase {
    let mut status = match r.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Unsupported => TestCaseStatus::skipped(),
        Outcome::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Outcome::Broken => TestCaseStatus::non_success(NonSuccessKind::Error),
    };
    if r.outcome != Outcome::Pass {
        // An attribute's newlines become spaces in any XML reader: say so
        // here, and keep the lines in the description (a text node).
        status.set_message(clean(&r.reason).replace(['\n', '\r'], " "));
        status.set_type(match (r.outcome, r.kind) {
            (_, Some(kind)) => kind.as_str(),
            (o, None) => o.as_str(),
        });
        status.set_description(clean(&format!("{}\n{}", r.file, r.reason)));
    }
    let mut case = TestCase::new(r.name.as_str(), status);
    // Reporters group by classname: the area, under the target's name.
    case.set_classname(format!("{}.{}", r.target, r.area));
    case.set_time(Duration::from_secs_f64(r.duration_ms.max(0.0) / 1000.0));
    if !r.notes.is_empty() {
        case.set_system_out(clean(&r.notes.join("\n")));
    }
    case
}

/// XML 1.0 cannot carry most control characters even escaped, and a runtime's
/// output may hold ANSI colours: escapes are removed and other control
/// characters become U+FFFD; the serializer escapes the rest (`<`, `&`, quotes).
fn clean(text: &str) -> String {
    super::text::neutralise(text)
}

impl Reporter for JunitReport {
    fn report(&mut self, event: &RunEvent<'_>) -> Result<(), ReportError> {
        match event {
            RunEvent::TrialFinished { record, .. } => self.records.push((*record).clone()),
            RunEvent::RunFinished => {
                let Some(file) = self.file.take() else {
                    return Ok(());
                };
                junit_xml(&self.records)
                    .serialize(std::io::BufWriter::new(file))
                    .map_err(|e| ReportError::Write {
                        what: "JUnit report",
                        path: self.path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
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
    use quick_xml::events::Event as Xml;
    use quick_xml::XmlVersion;
    use std::collections::HashMap;

    /// Every element with its attributes, read by a plain XML parser
    /// (not quick-junit's own), as a CI's JUnit reader would.
    fn elements(xml: &str) -> Vec<(String, HashMap<String, String>)> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            let (e, opens) = match reader.read_event().expect("well-formed XML") {
                Xml::Start(e) => (e, true),
                Xml::Empty(e) => (e, false),
                Xml::End(_) => {
                    open.pop();
                    continue;
                }
                Xml::Eof => break,
                _ => continue,
            };
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        a.decoded_and_normalized_value(XmlVersion::Implicit1_0, reader.decoder())
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect();
            out.push((name, attrs));
            if opens {
                open.push(out.len() - 1);
            }
        }
        out
    }

    #[test]
    fn junit_carries_what_ci_reporters_read() {
        let mut timeout = record("runc:kill::hang", Verdict::timeout("timeout after 1 s"));
        timeout.duration_ms = 1000.0;
        let records = vec![
            record("subreaper::a", Verdict::pass()),
            record("memfd::b", Verdict::unsupported("memfd_create: ENOSYS")),
            record("zombie::c", Verdict::fail("expected zombie, observed gone")),
            record("pid1::d", Verdict::broken("agent killed by SIGSEGV")),
            record("runc:subreaper::a", Verdict::pass()),
            timeout,
        ];
        let xml = junit_xml(&records).to_string().unwrap();
        let els = elements(&xml);
        let suites: Vec<&str> = els
            .iter()
            .filter(|e| e.0 == "testsuite")
            .map(|e| e.1["name"].as_str())
            .collect();
        assert_eq!(suites, ["host", "runc"]);
        let cases: Vec<_> = els.iter().filter(|e| e.0 == "testcase").collect();
        assert_eq!(cases.len(), 6);
        let mut names: Vec<&str> = cases.iter().map(|c| c.1["name"].as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 6, "names unique across cells: {names:?}");
        for c in &cases {
            assert!(
                c.1.contains_key("classname") && c.1.contains_key("time"),
                "{c:?}"
            );
        }
        let hang = cases
            .iter()
            .find(|c| c.1["name"] == "runc:kill::hang")
            .unwrap();
        assert_eq!(hang.1["classname"], "runc.kill");
        assert_eq!(hang.1["time"], "1.000");
        let of = |kind: &str| {
            els.iter()
                .filter(|e| e.0 == kind)
                .map(|e| e.1.get("message").cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(of("skipped"), ["memfd_create: ENOSYS"]);
        assert_eq!(
            of("failure"),
            ["expected zombie, observed gone", "timeout after 1 s"]
        );
        assert_eq!(of("error"), ["agent killed by SIGSEGV"]);
        let failure = els
            .iter()
            .find(|e| e.0 == "failure" && e.1["message"].starts_with("timeout"))
            .unwrap();
        assert_eq!(failure.1["type"], "timeout");
    }

    #[test]
    fn untrusted_text_cannot_break_the_xml() {
        let nasty = "<script>alert(\"x\")</script>\n\u{1b}[31mred\u{1b}[0m & 'q'";
        let xml = junit_xml(&[record("a::b", Verdict::fail(nasty))])
            .to_string()
            .unwrap();
        assert!(!xml.contains("<script>"));
        let els = elements(&xml);
        let failure = els.iter().find(|e| e.0 == "failure").unwrap();
        assert_eq!(
            failure.1["message"],
            "<script>alert(\"x\")</script> red & 'q'"
        );
    }
}
