//! Expected differences, as data (`--expected FILE`): the scenarios whose
//! verdict on a target is known to differ from Linux, each with the outcome,
//! why, and where that is recorded upstream. A run is then judged against
//! the file: a listed outcome is expected; any other fail, broken or
//! unsupported is not, and neither is a listed difference that no longer
//! happens (stale), so that a fix upstream gets noticed.

use crate::reporting::TrialRecord;
use orphanage_scenario::Outcome;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One entry, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// One scenario (`area::name`) ...
    #[serde(default)]
    scenario: Option<String>,
    /// ... or several sharing the outcome and reason.
    #[serde(default)]
    scenarios: Vec<String>,
    outcome: Outcome,
    reason: String,
    /// An upstream issue, commit or document.
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    when: Conditions,
}

/// Where an entry applies; every condition given must hold. Patterns are
/// globs where `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// The target's name (`runsc+tini`, `runc`, `host`): what keeps an
    /// entry to its runtime when one file judges a merge of many.
    #[serde(default)]
    pub target: Option<String>,
    /// The runtime's `--version` (its first line).
    #[serde(default)]
    pub runtime_version: Option<String>,
    /// The host kernel's release (`uname -r`).
    #[serde(default)]
    pub kernel: Option<String>,
    /// The runtime's platform (runsc's `--platform`, ptrace by default).
    #[serde(default)]
    pub platform: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    differences: Vec<Entry>,
}

/// A listed difference for one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub scenario: String,
    pub outcome: Outcome,
    pub reason: String,
    pub reference: Option<String>,
    pub when: Conditions,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpectedError {
    #[error("{}: {message}", .path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}:{line}:{column}: {message}", .path.display())]
    At {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Line and column (from 1) of the first `needle` in `text` from line
/// `from.0` on, else `from`.
fn locate_from(text: &str, from: (usize, usize), needle: &str) -> (usize, usize) {
    let start: usize = text
        .split_inclusive('\n')
        .take(from.0.saturating_sub(1))
        .map(str::len)
        .sum();
    let Some(at) = text[start..].find(needle).map(|i| start + i) else {
        return from;
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = at - before.rfind('\n').map_or(0, |n| n + 1) + 1;
    (line, column)
}

/// Parses and validates an expected-differences file against the names of
/// the scenarios in the suites (`area::name`).
pub fn parse(path: &Path, text: &str, known: &[&str]) -> Result<Vec<Difference>, ExpectedError> {
    let at = |(line, column): (usize, usize), message: String| ExpectedError::At {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    let syntax = |p: orphanage_scenario::YamlProblem| at(p.position.unwrap_or((1, 1)), p.message);
    orphanage_scenario::check_yaml_syntax(text).map_err(syntax)?;
    let file: File = yaml_serde::from_str(text)
        .map_err(|e| syntax(orphanage_scenario::explain_yaml_error(text, &e)))?;
    let mut differences: Vec<Difference> = Vec::new();
    for (index, entry) in file.differences.into_iter().enumerate() {
        let names: Vec<String> = entry
            .scenario
            .iter()
            .cloned()
            .chain(entry.scenarios.iter().cloned())
            .collect();
        // Where this entry starts, so that a name is found in it and not
        // in an earlier entry or a comment.
        let item = orphanage_scenario::list_item_position(text, "differences", index);
        let locate = |needle: &str| locate_from(text, item.unwrap_or((1, 1)), needle);
        let Some(first) = names.first() else {
            return Err(at(
                item.unwrap_or((1, 1)),
                format!("differences[{index}]: names no `scenario` (or `scenarios`)"),
            ));
        };
        if entry.reason.trim().is_empty() {
            return Err(at(
                locate(first),
                format!("differences[{index}] ({first}): the reason is empty: say why it differs"),
            ));
        }
        for name in &names {
            if !known.contains(&name.as_str()) {
                return Err(at(
                    locate(name),
                    format!("differences[{index}]: no scenario `{name}` in the suites"),
                ));
            }
            differences.push(Difference {
                scenario: name.clone(),
                outcome: entry.outcome,
                reason: entry.reason.clone(),
                reference: entry.reference.clone(),
                when: entry.when.clone(),
            });
        }
    }
    Ok(differences)
}

/// `*`-globs: `*` matches any run of characters, everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// What a target was when it ran: what the conditions are matched against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Trial-name prefix of the target (`runsc:`; empty for the host).
    pub prefix: String,
    /// The target's name (`runsc+tini`, `host`).
    pub target: String,
    pub runtime_version: String,
    pub kernel: String,
    pub platform: String,
}

impl Conditions {
    pub fn hold(&self, context: &Context) -> bool {
        let holds = |pattern: &Option<String>, value: &str| {
            pattern.as_deref().is_none_or(|p| glob(p, value))
        };
        holds(&self.target, &context.target)
            && holds(&self.runtime_version, &context.runtime_version)
            && holds(&self.kernel, &context.kernel)
            && holds(&self.platform, &context.platform)
    }
}

/// How one result compares with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Passed, and nothing was listed: as Linux does.
    AsLinux,
    /// The listed difference happened.
    Expected,
    /// A fail, broken or unsupported the file does not list (or lists with
    /// another outcome).
    Unexpected,
    /// Listed, but it passed: the difference is gone.
    Stale,
}

/// How one outcome of one scenario compares with the file, on a target
/// that was `context` when it ran, and the difference listed for it.
pub fn mark_of<'a>(
    differences: &'a [Difference],
    scenario: &str,
    outcome: Outcome,
    context: &Context,
) -> (Mark, Option<&'a Difference>) {
    let listed = differences
        .iter()
        .find(|d| d.scenario == scenario && d.when.hold(context));
    let mark = match (listed, outcome) {
        (None, Outcome::Pass) => Mark::AsLinux,
        (None, _) => Mark::Unexpected,
        (Some(_), Outcome::Pass) => Mark::Stale,
        (Some(d), o) if d.outcome == o => Mark::Expected,
        (Some(_), _) => Mark::Unexpected,
    };
    (mark, listed)
}

/// Each result with its mark and the difference listed for it, if any.
pub fn judge<'a>(
    differences: &'a [Difference],
    results: &[TrialRecord],
    contexts: &[Context],
) -> Vec<(String, Outcome, Mark, Option<&'a Difference>)> {
    results
        .iter()
        .map(|r| {
            // The longest matching prefix: the host's is empty.
            let context = contexts
                .iter()
                .filter(|c| r.name.starts_with(&c.prefix))
                .max_by_key(|c| c.prefix.len());
            let (mark, listed) = match context {
                Some(c) => mark_of(differences, &r.name[c.prefix.len()..], r.outcome, c),
                // No context: nothing listed can hold.
                None => mark_of(&[], &r.name, r.outcome, &Context::default()),
            };
            (r.name.clone(), r.outcome, mark, listed)
        })
        .collect()
}

/// The lines printed after a run judged against the file, and whether it
/// is to exit non-zero (an unexpected result, or a stale entry).
pub fn summary(
    path: &Path,
    judged: &[(String, Outcome, Mark, Option<&Difference>)],
) -> (String, bool) {
    let mut lines = vec![format!("expected differences ({}):", path.display())];
    let count = |m: Mark| judged.iter().filter(|j| j.2 == m).count();
    for (name, outcome, mark, listed) in judged {
        let line = match (mark, listed) {
            (Mark::Expected, Some(d)) => format!(
                "  expected    {name}: {} ({}{})",
                outcome.as_str(),
                d.reason,
                d.reference
                    .as_deref()
                    .map_or(String::new(), |r| format!("; {r}"))
            ),
            (Mark::Unexpected, Some(d)) => format!(
                "  UNEXPECTED  {name}: {}, listed as {} ({})",
                outcome.as_str(),
                d.outcome.as_str(),
                d.reason
            ),
            (Mark::Unexpected, None) => {
                format!("  UNEXPECTED  {name}: {}, not listed", outcome.as_str())
            }
            (Mark::Stale, Some(d)) => format!(
                "  STALE       {name}: passes now, listed as {} ({})",
                d.outcome.as_str(),
                d.reason
            ),
            _ => continue,
        };
        lines.push(line);
    }
    let (unexpected, stale) = (count(Mark::Unexpected), count(Mark::Stale));
    lines.push(format!(
        "{} as Linux, {} expected, {unexpected} unexpected, {stale} stale",
        count(Mark::AsLinux),
        count(Mark::Expected)
    ));
    (lines.join("\n"), unexpected + stale > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const KNOWN: &[&str] = &["memfd::a", "memfd::b", "sibling::c"];

    fn path() -> &'static Path {
        Path::new("fixtures/expected/runsc.yaml")
    }

    fn record(name: &str, outcome: Outcome) -> TrialRecord {
        TrialRecord {
            name: name.into(),
            area: String::new(),
            file: String::new(),
            target: String::new(),
            kind: None,
            mode: None,
            outcome,
            reason: String::new(),
            duration_ms: 0.0,
            steps_ms: 0.0,
            notes: vec![],
        }
    }

    #[test]
    fn entries_name_one_or_several_scenarios() {
        let text = "differences:\n  - scenario: memfd::a\n    outcome: fail\n    reason: not enforced\n    reference: gvisor#1\n  - scenarios: [memfd::b, sibling::c]\n    outcome: unsupported\n    reason: no clone3\n    when: {platform: ptrace}\n";
        let d = parse(path(), text, KNOWN).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].reference.as_deref(), Some("gvisor#1"));
        assert_eq!(d[2].scenario, "sibling::c");
        assert_eq!(d[2].when.platform.as_deref(), Some("ptrace"));
    }

    #[rstest]
    #[case(
        "differences:\n  - scenario: memfd::nope\n    outcome: fail\n    reason: x\n",
        "fixtures/expected/runsc.yaml:2:15: differences[0]: no scenario `memfd::nope` in the suites"
    )]
    #[case(
        "differences:\n  - scenario: memfd::a\n    outcome: fail\n",
        "missing field `reason`"
    )]
    #[case(
        "differences:\n  - scenario: memfd::a\n    outcome: fail\n    reason: \" \"\n",
        "fixtures/expected/runsc.yaml:2:15: differences[0] (memfd::a): the reason is empty"
    )]
    #[case(
        "differences:\n  - scenario: memfd::a\n    outcome: fail\n    reason: x\n    colour: red\n",
        "fixtures/expected/runsc.yaml:5:5: differences[0]: unknown field `colour`"
    )]
    #[case(
        "differences:\n  - scenario: memfd::a\n    outcome: failed\n    reason: x\n",
        "unknown variant `failed`"
    )]
    #[case::name_in_a_later_entry(
        "# memfd::nope was fixed\ndifferences:\n  - scenario: memfd::a\n    outcome: fail\n    reason: x\n  - scenarios: [sibling::c, memfd::nope]\n    outcome: fail\n    reason: x\n",
        "fixtures/expected/runsc.yaml:6:29: differences[1]: no scenario `memfd::nope` in the suites"
    )]
    #[case::no_name(
        "differences:\n  - scenario: memfd::a\n    outcome: fail\n    reason: x\n  - outcome: fail\n    reason: x\n",
        "fixtures/expected/runsc.yaml:5:3: differences[1]: names no `scenario`"
    )]
    #[case::duplicate_key(
        "differences:\n  - scenario: memfd::a\n    outcome: fail\n    reason: x\n    reason: y\n",
        "fixtures/expected/runsc.yaml:5:5: differences[0]: duplicate key `reason`"
    )]
    fn bad_files_say_where(#[case] text: &str, #[case] says: &str) {
        let e = parse(path(), text, KNOWN).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
        assert!(e.starts_with("fixtures/expected/runsc.yaml:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[rstest]
    #[case("*", "anything", true)]
    #[case("0.0~2022*", "runsc version 0.0~20221219.0", false)]
    #[case("*0.0~2022*", "runsc version 0.0~20221219.0", true)]
    #[case("6.*", "6.18.44-fc", true)]
    #[case("6.*", "5.10.0", false)]
    #[case("ptrace", "ptrace", true)]
    #[case("ptrace", "kvm", false)]
    #[case("a*b*c", "aXbYc", true)]
    #[case("a*b*c", "aXcYb", false)]
    fn globs(#[case] pattern: &str, #[case] text: &str, #[case] matches: bool) {
        assert_eq!(glob(pattern, text), matches);
    }

    #[test]
    fn each_result_is_marked_and_stale_entries_are_caught() {
        let text = "differences:\n  - scenario: memfd::a\n    outcome: fail\n    reason: not enforced\n  - scenario: memfd::b\n    outcome: fail\n    reason: fixed upstream\n  - scenario: sibling::c\n    outcome: fail\n    reason: only on kvm\n    when: {platform: kvm}\n";
        let d = parse(path(), text, KNOWN).unwrap();
        let context = Context {
            prefix: "runsc:".into(),
            target: "runsc".into(),
            runtime_version: "runsc version 0.0~20221219.0".into(),
            kernel: "6.18".into(),
            platform: "ptrace".into(),
        };
        let results = [
            record("runsc:memfd::a", Outcome::Fail),
            record("runsc:memfd::b", Outcome::Pass),
            record("runsc:sibling::c", Outcome::Fail),
            record("runsc:memfd::x", Outcome::Pass),
        ];
        let judged = judge(&d, &results, &[context]);
        let marks: Vec<&Mark> = judged.iter().map(|j| &j.2).collect();
        assert_eq!(
            marks,
            [
                &Mark::Expected,
                &Mark::Stale,
                // Listed only for the kvm platform: unexpected on ptrace.
                &Mark::Unexpected,
                &Mark::AsLinux
            ]
        );
        let (text, bad) = summary(path(), &judged);
        assert!(bad);
        assert!(text.contains("STALE       runsc:memfd::b"), "{text}");
        assert!(
            text.ends_with("1 as Linux, 1 expected, 1 unexpected, 1 stale"),
            "{text}"
        );
    }

    #[test]
    fn a_target_condition_keeps_an_entry_to_its_runtime() {
        let when = Conditions {
            target: Some("runsc*".into()),
            ..Default::default()
        };
        let on = |target: &str| Context {
            target: target.into(),
            ..Default::default()
        };
        assert!(when.hold(&on("runsc+tini")));
        assert!(!when.hold(&on("runc+tini")));
        assert!(!when.hold(&on("host")));
    }

    #[test]
    fn only_listed_differences_is_a_clean_run() {
        let text = "differences:\n  - scenario: memfd::a\n    outcome: unsupported\n    reason: no seals\n";
        let d = parse(path(), text, KNOWN).unwrap();
        let results = [
            record("memfd::a", Outcome::Unsupported),
            record("memfd::b", Outcome::Pass),
        ];
        let judged = judge(&d, &results, &[Context::default()]);
        assert!(!summary(path(), &judged).1);
    }
}
