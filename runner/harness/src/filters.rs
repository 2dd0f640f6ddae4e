//! Which scenarios a command line selects, as cargo test selects tests: a name
//! is in when it contains any positional filter (equals one, with `--exact`),
//! or when there is none, and no `--skip` matches it.

use libtest_mimic::Arguments;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    include: Vec<String>,
    skip: Vec<String>,
    exact: bool,
}

impl Filters {
    /// libtest's own filter first, then the further positional ones.
    pub fn new(test: &Arguments, more: &[String]) -> Self {
        Filters {
            include: test.filter.iter().chain(more).cloned().collect(),
            skip: test.skip.clone(),
            exact: test.exact,
        }
    }

    fn matches(&self, name: &str, pattern: &str) -> bool {
        if self.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    }

    pub fn selects(&self, name: &str) -> bool {
        let included =
            self.include.is_empty() || self.include.iter().any(|p| self.matches(name, p));
        included && !self.skip.iter().any(|p| self.matches(name, p))
    }

    /// Whether any filter or `--skip` was given.
    pub fn narrows(&self) -> bool {
        !self.include.is_empty() || !self.skip.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const NAMES: &[&str] = &[
        "subreaper::nearest_ancestor_adopts",
        "zombie::wait",
        "zombie::wait_any",
        "memfd::seal_write",
    ];

    fn args(filter: Option<&str>, skip: &[&str], exact: bool) -> Arguments {
        Arguments {
            filter: filter.map(str::to_string),
            skip: skip.iter().map(|s| s.to_string()).collect(),
            exact,
            ..Arguments::default()
        }
    }

    fn selected(f: &Filters) -> Vec<&'static str> {
        NAMES.iter().copied().filter(|n| f.selects(n)).collect()
    }

    #[rstest]
    #[case::none(None, &[], &[], false, NAMES)]
    #[case::two_areas(Some("subreaper::"), &["zombie::"], &[], false, &["subreaper::nearest_ancestor_adopts", "zombie::wait", "zombie::wait_any"])]
    #[case::with_skip(Some("subreaper::"), &["zombie::"], &["_any"], false, &["subreaper::nearest_ancestor_adopts", "zombie::wait"])]
    #[case::exact(Some("zombie::wait"), &["memfd::seal_write"], &[], true, &["zombie::wait", "memfd::seal_write"])]
    #[case::exact_skip(None, &[], &["zombie::wait"], true, &["subreaper::nearest_ancestor_adopts", "zombie::wait_any", "memfd::seal_write"])]
    fn several_filters_select_as_cargo_test_does(
        #[case] filter: Option<&str>,
        #[case] more: &[&str],
        #[case] skip: &[&str],
        #[case] exact: bool,
        #[case] want: &[&str],
    ) {
        let more: Vec<String> = more.iter().map(|s| s.to_string()).collect();
        let f = Filters::new(&args(filter, skip, exact), &more);
        assert_eq!(selected(&f), want);
    }
}
