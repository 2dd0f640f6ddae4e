//! Which scenarios a command line selects, as cargo test selects tests: a name
//! is in when it contains any positional filter (equals one, with `--exact`),
//! or when there is none, and no `--skip` matches it. libtest-mimic takes one
//! filter only, so the selection is made here and handed to it in a form it
//! applies exactly, counting what it drops as filtered out.

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

    /// The arguments to give libtest-mimic for trials named `names`: no
    /// filter, and every trial these filters drop skipped by its exact name,
    /// so that libtest drops the same trials and its summary counts them.
    pub fn libtest_arguments<'a>(
        &self,
        base: &Arguments,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Arguments {
        let mut args = base.clone();
        if !self.narrows() {
            return args;
        }
        args.filter = None;
        args.exact = true;
        args.skip = names
            .into_iter()
            .filter(|n| !self.selects(n))
            .map(str::to_string)
            .collect();
        // An empty skip list would run everything: keep one name no trial has.
        if args.skip.is_empty() {
            args.skip.push(String::new());
        }
        args
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

    /// What libtest-mimic then drops is exactly what the filters drop.
    #[rstest]
    #[case(Some("subreaper::"), &["zombie::"], &[], false)]
    #[case(Some("zombie::wait"), &[], &[], true)]
    #[case(Some("zombie::"), &["memfd::"], &["_any"], false)]
    #[case(Some("nomatch"), &[], &[], false)]
    #[case(Some("::"), &[], &[], false)]
    fn libtest_drops_what_the_filters_drop(
        #[case] filter: Option<&str>,
        #[case] more: &[&str],
        #[case] skip: &[&str],
        #[case] exact: bool,
    ) {
        let more: Vec<String> = more.iter().map(|s| s.to_string()).collect();
        let base = args(filter, skip, exact);
        let f = Filters::new(&base, &more);
        let given = f.libtest_arguments(&base, NAMES.iter().copied());
        for name in NAMES {
            let trial = libtest_mimic::Trial::test(*name, || Ok(()));
            assert_eq!(!given.is_filtered_out(&trial), f.selects(name), "{name}");
        }
    }

    #[test]
    fn without_filters_libtest_gets_the_arguments_as_they_were() {
        let base = args(None, &[], false);
        let f = Filters::new(&base, &[]);
        assert!(!f.narrows());
        let given = f.libtest_arguments(&base, NAMES.iter().copied());
        assert!(given.filter.is_none() && given.skip.is_empty() && !given.exact);
    }
}
