//! Writing a scenario back as a file in the format of `suites/`: a header of
//! comments, the top-level keys, and one flow-style line per step with the
//! fields that differ from their defaults. `parse` reads it back unchanged.

use crate::scenario::{Namespace, Scenario};
use yaml_serde::Value;

/// Fields left out when they hold their default, as hand-written files do.
const DEFAULTS: &[(&str, &str, &str)] = &[
    ("spawn", "how", "fork"),
    ("set_subreaper", "value", "1"),
    ("catch", "nocldwait", "false"),
    ("kill", "group", "false"),
    ("wait", "api", "waitpid"),
    ("wait", "flags", "[]"),
    ("expect_subreaper", "bad_pointer", "false"),
    ("memfd_create", "flags", "[]"),
    ("memfd_create", "content", "empty"),
    ("write", "offset", "0"),
    ("store", "offset", "0"),
    ("expect_byte", "offset", "0"),
    ("measure_exit_detection", "samples", "32"),
];

/// The scenario as YAML, with `comments` (may hold several lines) on top.
pub fn to_yaml(scenario: &Scenario, comments: &str) -> String {
    let mut out = String::new();
    for line in comments.lines() {
        out.push_str(format!("# {line}").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("checks: {}\n", scalar(&scenario.checks)));
    if !scenario.requires.is_empty() {
        let names: Vec<String> = scenario
            .requires
            .iter()
            .map(|f| flow(&yaml_serde::to_value(f).expect("features serialize")))
            .collect();
        out.push_str(&format!("requires: [{}]\n", names.join(", ")));
    }
    out.push_str("refs:\n");
    for r in &scenario.refs {
        out.push_str(&format!("  - {}\n", scalar(r)));
    }
    if let Some(d) = scenario.deadline {
        out.push_str(&format!("deadline: {}\n", scalar(&d.to_string())));
    }
    if scenario.namespace == Namespace::Caller {
        out.push_str("namespace: caller\n");
    }
    out.push_str("steps:\n");
    for step in &scenario.steps {
        // As a one-key map (keyword: fields), the way files spell steps, in field order.
        let value = yaml_serde::with::singleton_map_recursive::serialize(
            step,
            yaml_serde::value::Serializer,
        )
        .expect("steps serialize");
        let Some((keyword, fields)) = value.as_mapping().and_then(|m| m.iter().next()) else {
            continue;
        };
        let keyword = flow(keyword);
        let kept: Vec<String> = fields
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(k, v)| {
                let (k, v) = (flow(k), flow(v));
                v != "null"
                    && !DEFAULTS
                        .iter()
                        .any(|(kw, field, default)| *kw == keyword && *field == k && v == *default)
            })
            .map(|(k, v)| format!("{}: {}", flow(k), flow(v)))
            .collect();
        out.push_str(&format!("  - {keyword}: {{{}}}\n", kept.join(", ")));
    }
    out
}

fn flow(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", flow(k), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        // Steps are written with singleton maps, never tags.
        Value::Tagged(t) => format!(
            "{{{}: {}}}",
            t.tag.to_string().trim_start_matches('!'),
            flow(&t.value)
        ),
    }
}

/// A string as a plain YAML scalar where that reads back as the same string,
/// single-quoted otherwise.
fn scalar(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    #[test]
    fn a_suite_file_survives_the_round_trip() {
        let text = include_str!("../../../suites/sibling/clone_parent_child_is_sibling.yaml");
        let s = parse("x.yaml", text).unwrap();
        let written = to_yaml(&s, "a comment\nof two lines");
        assert!(written.starts_with("# a comment\n# of two lines\nchecks: '"));
        assert_eq!(parse("y.yaml", &written).unwrap(), s, "{written}");
        assert!(
            written.contains("  - spawn: {name: sib, by: caller, how: clone_parent}\n"),
            "{written}"
        );
        assert!(
            written.contains("  - wait: {by: shared, for: sib, status: {exited: 4}}\n"),
            "{written}"
        );
    }

    #[test]
    fn strings_that_yaml_would_read_otherwise_are_quoted() {
        assert_eq!(scalar("init"), "init");
        assert_eq!(scalar("no"), "'no'");
        assert_eq!(scalar("2s"), "'2s'");
        assert_eq!(scalar("it's: x"), "'it''s: x'");
    }
}
