//! Every check can fail (issue 16). Each file in fixtures/wrong/ is a passing
//! scenario of suites/ (named on its first line, `# wrong-of: suites/...`)
//! with one step edited. It must come out as fail, naming expected and
//! observed, at exactly that step: failing earlier would prove nothing about
//! the edited expectation.
//!
//! The vocabulary test reads the step kinds and their fields from serde's
//! own derive of `Step` (runner/scenario/src/step.rs), not from a list kept
//! here, so a new kind of expectation, a new field of one, or a new errno on
//! an action fails `cargo test` until a wrong fixture shows it failing. The
//! README's table of forms and fixtures is checked against the same list.

mod common;

use common::{repo, run_with_report};
use orphanage_scenario::{ExpectedStatus, MeasureMethod, ProcState, Step, WaitApi, WaitTarget};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

struct WrongFixture {
    /// `area::name`, as the harness reports it.
    name: String,
    path: PathBuf,
    original: PathBuf,
    /// The 0-based index of the one step that differs from the original.
    changed: usize,
    steps: Vec<Step>,
    /// The keys the file writes in the changed step.
    written: Vec<String>,
}

fn wrong_fixtures() -> Vec<WrongFixture> {
    let root = repo().join("fixtures/wrong");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|area| std::fs::read_dir(area.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files.iter().map(|p| read_fixture(p)).collect()
}

fn read_fixture(path: &Path) -> WrongFixture {
    let text = std::fs::read_to_string(path).unwrap();
    let original = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# wrong-of: "))
        .unwrap_or_else(|| {
            panic!(
                "{}: the first line must name the passing original: `# wrong-of: suites/AREA/NAME.yaml`",
                path.display()
            )
        });
    assert!(original.starts_with("suites/"), "{}", path.display());
    let original = repo().join(original);
    let parsed = |p: &Path, t: &str| {
        orphanage_scenario::parse(&p.display().to_string(), t)
            .unwrap_or_else(|e| panic!("{e}"))
            .steps
    };
    let steps = parsed(path, &text);
    let before = parsed(&original, &std::fs::read_to_string(&original).unwrap());
    let changed = steps
        .iter()
        .zip(&before)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| {
            panic!(
                "{}: no step differs from {}",
                path.display(),
                original.display()
            )
        });
    let after = &steps[changed + 1..];
    assert!(
        after.is_empty() || after == &before[changed + 1..],
        "{}: only step {} may differ from {} (the steps after it may be left out)",
        path.display(),
        changed + 1,
        original.display()
    );
    // The keys either version writes: a fixture that drops an `errno` tests it too.
    let written_in = |t: &str| -> Vec<String> {
        let yaml: yaml_serde::Value = yaml_serde::from_str(t).unwrap();
        yaml["steps"][changed]
            .as_mapping()
            .and_then(|m| m.values().next())
            .and_then(|fields| fields.as_mapping())
            .map(|fields| {
                fields
                    .keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut written = written_in(&text);
    for key in written_in(&std::fs::read_to_string(&original).unwrap()) {
        if !written.contains(&key) {
            written.push(key);
        }
    }
    let area = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    let stem = path.file_stem().unwrap().to_string_lossy();
    WrongFixture {
        name: format!("{area}::{stem}"),
        path: path.to_path_buf(),
        original,
        changed,
        steps,
        written,
    }
}

#[test]
fn every_wrong_fixture_fails_at_its_changed_step_naming_expected_and_observed() {
    let fixtures = wrong_fixtures();
    let run = run_with_report(&repo().join("fixtures/wrong"), &[], &[]);
    let results = run.report["results"].as_array().unwrap();
    assert_eq!(results.len(), fixtures.len(), "{}", run.stdout());
    let mut problems = Vec::new();
    for f in &fixtures {
        let r = run.result(&f.name);
        let reason = r["reason"].as_str().unwrap();
        let step = &f.steps[f.changed];
        let at = format!("step {} ({}): ", f.changed + 1, step.keyword());
        if r["outcome"] != "fail"
            || !reason.starts_with(&at)
            || !reason.contains("expected")
            || !reason.contains("observed")
        {
            problems.push(format!(
                "{} (from {}): must fail at `{at}` naming expected and observed, came out {}: {reason}",
                f.path.display(),
                f.original.display(),
                r["outcome"]
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(run.code(), Some(101));
}

// ---- the vocabulary, as serde's derive sees it ----

/// What a probing deserializer learns before it gives up.
#[derive(Debug)]
enum Probed {
    Variants(&'static [&'static str]),
    Fields(&'static [&'static str]),
    Other(String),
}

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probed::Variants(v) => write!(f, "variants {v:?}"),
            Probed::Fields(v) => write!(f, "fields {v:?}"),
            Probed::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Probed::Other(msg.to_string())
    }
}

/// Without a variant: reports the enum's variant names. With one: opens that
/// variant and reports its field names.
struct EnumProbe(Option<&'static str>);

impl<'de> Deserializer<'de> for EnumProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed::Other("not an enum".into()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Probed> {
        match self.0 {
            None => Err(Probed::Variants(variants)),
            Some(variant) => visitor.visit_enum(OneVariant(variant)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct OneVariant(&'static str);

impl<'de> de::EnumAccess<'de> for OneVariant {
    type Error = Probed;
    type Variant = Self;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), Probed> {
        let tag = seed.deserialize(IntoDeserializer::<Probed>::into_deserializer(self.0))?;
        Ok((tag, self))
    }
}

impl<'de> de::VariantAccess<'de> for OneVariant {
    type Error = Probed;

    fn unit_variant(self) -> Result<(), Probed> {
        Ok(())
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, Probed> {
        Err(Probed::Fields(&[]))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Probed> {
        Err(Probed::Fields(&[]))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed::Fields(fields))
    }
}

fn variants<T: DeserializeOwned>() -> Vec<&'static str> {
    match T::deserialize(EnumProbe(None)) {
        Err(Probed::Variants(v)) => v.to_vec(),
        Ok(_) => panic!("an enum deserialized from nothing"),
        Err(e) => panic!("not an enum: {e}"),
    }
}

fn fields<T: DeserializeOwned>(variant: &'static str) -> Vec<&'static str> {
    match T::deserialize(EnumProbe(Some(variant))) {
        Err(Probed::Fields(f)) => f.to_vec(),
        Ok(_) => vec![],
        Err(e) => panic!("{variant}: {e}"),
    }
}

/// Steps that check something, and so need wrong fixtures for each field.
/// Actions need one only for their `errno`. (`observe` never fails.)
fn is_expectation(kind: &str) -> bool {
    kind.starts_with("expect_") || kind == "wait" || kind == "measure_exit_detection"
}

/// Fields whose every value is a form of its own, with the values serde knows.
fn valued_fields() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        ("wait", "api", variants::<WaitApi>()),
        ("wait", "status", variants::<ExpectedStatus>()),
        ("expect_state", "is", variants::<ProcState>()),
        (
            "measure_exit_detection",
            "method",
            variants::<MeasureMethod>(),
        ),
    ]
}

/// Forms that no field's name or value shows, each produced by `forms_of`.
const SPECIAL_FORMS: &[&str] = &[
    "expect_signal count: 0",
    "expect_parent of: a zombie",
    "wait for: any",
];

/// Expectations only the runtime target can run: their wrong fixtures belong
/// with tests/runtime.rs. Each must really be a harness step (checked).
const RUNTIME_ONLY: &[(&str, &str)] = &[
    ("expect_gone", r#"{"expect_gone": {}}"#),
    // Shown failing by tests/misbehaving.rs (a runtime whose kill is kill --all).
    ("expect_alive", r#"{"expect_alive": {"of": []}}"#),
    (
        "expect_container_exit",
        r#"{"expect_container_exit": {"status": "running"}}"#,
    ),
];

/// Every form of every step that needs a wrong fixture.
fn vocabulary() -> BTreeSet<String> {
    for (kind, json) in RUNTIME_ONLY {
        let step: Step = serde_json::from_str(json).unwrap();
        assert!(
            step.runs_in_harness() && step.keyword() == *kind,
            "{kind} is exempt as runtime-only but runs in the agent"
        );
    }
    let mut forms = BTreeSet::new();
    for kind in variants::<Step>() {
        if RUNTIME_ONLY.iter().any(|(k, _)| *k == kind) {
            continue;
        }
        let fields = fields::<Step>(kind);
        if is_expectation(kind) {
            forms.insert(kind.to_string());
            for field in fields.iter().filter(|f| !matches!(**f, "of" | "by")) {
                forms.insert(format!("{kind} {field}"));
            }
        } else if fields.contains(&"errno") {
            forms.insert(format!("{kind} errno"));
        }
    }
    for (kind, field, values) in valued_fields() {
        for value in values {
            forms.insert(format!("{kind} {field}: {value}"));
        }
    }
    forms.extend(SPECIAL_FORMS.iter().map(|s| s.to_string()));
    forms
}

/// The forms a wrong fixture's changed step exercises.
fn forms_of(f: &WrongFixture) -> BTreeSet<String> {
    let step = &f.steps[f.changed];
    let kind = step.keyword();
    let mut forms = BTreeSet::new();
    if is_expectation(kind) {
        forms.insert(kind.to_string());
        for field in f
            .written
            .iter()
            .filter(|w| !matches!(w.as_str(), "of" | "by"))
        {
            forms.insert(format!("{kind} {field}"));
        }
    } else if f.written.iter().any(|w| w == "errno") {
        forms.insert(format!("{kind} errno"));
    }
    let value = serde_json::to_value(step).unwrap();
    for (k, field, _) in valued_fields().into_iter().filter(|(k, ..)| *k == kind) {
        let v = &value[k][field];
        let name = v
            .as_str()
            .map(str::to_string)
            .or_else(|| v.as_object().and_then(|o| o.keys().next().cloned()));
        if let Some(name) = name {
            forms.insert(format!("{kind} {field}: {name}"));
        }
    }
    match step {
        Step::ExpectSignal { count: Some(0), .. } => {
            forms.insert("expect_signal count: 0".into());
        }
        Step::Wait {
            target: WaitTarget::Any,
            ..
        } => {
            forms.insert("wait for: any".into());
        }
        Step::ExpectParent { of, .. } => {
            let exited = f.steps[..f.changed]
                .iter()
                .any(|s| matches!(s, Step::Exit { by, .. } if by == of));
            if exited {
                forms.insert("expect_parent of: a zombie".into());
            }
        }
        _ => {}
    }
    forms
}

/// Which wrong fixtures exercise each form.
fn coverage() -> BTreeMap<String, Vec<String>> {
    let mut covered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in wrong_fixtures() {
        for form in forms_of(&f) {
            covered.entry(form).or_default().push(f.name.clone());
        }
    }
    covered
}

#[test]
fn every_form_of_every_expectation_has_a_wrong_fixture() {
    let covered = coverage();
    let missing: Vec<String> = vocabulary()
        .into_iter()
        .filter(|form| !covered.contains_key(form))
        .collect();
    assert!(
        missing.is_empty(),
        "no wrong fixture in fixtures/wrong/ shows these forms failing; add one \
         (a passing scenario with that step edited, `# wrong-of:` on its first line): {missing:#?}"
    );
}

/// The README row of a form, naming the first fixture that shows it failing
/// and how many do: `| `FORM` | [area::name](fixtures/wrong/area/name.yaml) | N |`.
fn readme_row(form: &str, fixtures: &[String]) -> String {
    let first = fixtures.first().map_or_else(String::new, |n| {
        let (area, name) = n.split_once("::").unwrap();
        format!("[{n}](fixtures/wrong/{area}/{name}.yaml)")
    });
    format!("| `{form}` | {first} | {} |", fixtures.len())
}

#[test]
fn the_readme_table_of_forms_matches_the_wrong_fixtures() {
    let covered = coverage();
    let table: Vec<String> = vocabulary()
        .iter()
        .map(|form| readme_row(form, covered.get(form).map_or(&[][..], |v| v)))
        .collect();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let rows: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains("](fixtures/wrong/"))
        .collect();
    assert_eq!(
        rows,
        table.iter().map(String::as_str).collect::<Vec<_>>(),
        "README's table of forms is out of date; it should read:\n{}",
        table.join("\n")
    );
}

#[test]
fn the_vocabulary_is_read_from_the_code() {
    // Guards the probe itself: a probe that found nothing would pass everything above.
    let forms = vocabulary();
    for form in [
        "expect_signal from",
        "wait status: dumped",
        "wait api: pidfd",
        "spawn errno",
        "expect_size",
        "measure_exit_detection within",
    ] {
        assert!(forms.contains(form), "{form} missing from {forms:#?}");
    }
    assert!(!forms.iter().any(|f| f.starts_with("expect_gone")));
    assert!(fields::<Step>("wait").contains(&"for"));
}
