//! A minimal failing tree, written as a scenario file in the format of
//! `suites/`, with a header saying where it came from and what differed.

use super::compare::Difference;
use orphanage_scenario::{to_yaml, Scenario, Verdict};
use std::path::{Path, PathBuf};

/// `explore_<seed>_<case>.yaml`: a valid test name, unique per seed and case.
pub fn file_name(seed: u64, case: u64) -> String {
    format!("explore_{seed:016x}_{case}.yaml")
}

pub struct Found<'a> {
    pub seed: u64,
    pub case: u64,
    pub processes: usize,
    /// Flags before `explore` that the trees depend on (`--no-pid-namespace`).
    pub tree_flags: &'a str,
    /// Further flags the run had (a model defect), to repeat it exactly.
    pub extra_flags: &'a str,
    pub kernel: &'a str,
    pub target: &'a str,
    pub differences: &'a [Difference],
    pub verdict: &'a Verdict,
}

/// The comment block on top of a saved regression.
pub fn header(f: &Found) -> String {
    let mut text = format!(
        "Found by `orphanage{} explore --seed {:#x} --processes {} --from-case {} --cases 1{}`\non kernel {} (target {}), then shrunk.\nExpected is the reference model (runner/scenario/src/model), observed is the kernel:\n",
        f.tree_flags, f.seed, f.processes, f.case, f.extra_flags, f.kernel, f.target
    );
    for d in f.differences {
        text.push_str(&format!("  {d}\n"));
    }
    if !f.verdict.reason.is_empty() {
        text.push_str(&format!(
            "  first failing expectation: {}\n",
            f.verdict.reason
        ));
    }
    text
}

/// Writes the scenario into `dir` and returns its path.
pub fn write(
    dir: &Path,
    name: &str,
    scenario: &Scenario,
    header: &str,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    std::fs::write(&path, to_yaml(scenario, header))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_test_names() {
        assert_eq!(file_name(0x2a, 7), "explore_000000000000002a_7.yaml");
        let stem = file_name(u64::MAX, 123);
        let stem = stem.trim_end_matches(".yaml");
        assert!(stem
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }

    #[test]
    fn the_header_says_how_to_find_it_again_and_what_differed() {
        let d = [Difference {
            step: 9,
            name: "p3".into(),
            what: "parent",
            expected: "p1".into(),
            observed: "init".into(),
        }];
        let v = Verdict::fail(
            "step 12 (expect_parent): p3's parent: expected p1 (pid 3), observed init (pid 1)",
        );
        let h = header(&Found {
            seed: 0x2a,
            case: 7,
            processes: 8,
            tree_flags: "",
            extra_flags: "",
            kernel: "6.18",
            target: "host",
            differences: &d,
            verdict: &v,
        });
        assert!(
            h.contains("--seed 0x2a --processes 8 --from-case 7 --cases 1"),
            "{h}"
        );
        assert!(
            h.contains("  p3: parent: expected p1, observed init (step 9)\n"),
            "{h}"
        );
        assert!(h.contains("first failing expectation: step 12"), "{h}");
    }
}
