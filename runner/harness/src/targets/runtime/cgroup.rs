//! Finding a container's `cgroup.procs` from the host, on cgroup v2, v1 or a
//! hybrid of both. A runtime's `kill --all` works by cgroup, so an empty
//! `cgroup.procs` is what "every process is gone" means to it; processes
//! the agent never reported still show up there.

use std::path::PathBuf;

/// Candidate `cgroup.procs` files for a container, given its init's
/// /proc/PID/cgroup, the harness's own /proc/self/cgroup and the host's
/// /proc/self/mounts, best first: the unified hierarchy, then the v1 pids,
/// freezer and name=systemd hierarchies. A hierarchy where the container sits
/// in the harness's own cgroup is one the runtime did not use (on a hybrid
/// host a v1-only runtime leaves the unified one alone): it is skipped, or
/// every process on the machine would count as the container's.
pub fn procs_files(proc_cgroup: &str, own_cgroup: &str, mounts: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let own = hierarchies(own_cgroup);
    let hierarchies: Vec<(String, String)> = hierarchies(proc_cgroup)
        .into_iter()
        .filter(|h| !own.contains(h))
        .collect();
    let hierarchies: Vec<(&str, &str)> = hierarchies
        .iter()
        .map(|(c, p)| (c.as_str(), p.as_str()))
        .collect();
    let mount_points = |wanted: &dyn Fn(&str, &str) -> bool| -> Vec<String> {
        mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 4 && wanted(f[2], f[3])).then(|| f[1].to_string())
            })
            .collect()
    };
    let mut add = |point: &str, path: &str| {
        found.push(PathBuf::from(format!(
            "{}{}/cgroup.procs",
            point.trim_end_matches('/'),
            path.trim_end_matches('/')
        )));
    };
    if let Some((_, path)) = hierarchies.iter().find(|(c, _)| c.is_empty()) {
        for point in mount_points(&|fstype, _| fstype == "cgroup2") {
            add(&point, path);
        }
    }
    for controller in ["pids", "freezer", "name=systemd"] {
        if let Some((_, path)) = hierarchies
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == controller))
        {
            for point in mount_points(&|fstype, options| {
                fstype == "cgroup" && options.split(',').any(|o| o == controller)
            }) {
                add(&point, path);
            }
        }
    }
    found
}

/// A /proc/PID/cgroup's lines as (controllers, path); the unified
/// hierarchy's controllers are empty.
fn hierarchies(proc_cgroup: &str) -> Vec<(String, String)> {
    proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// Which container other than `own_id` a process's cgroups name, by an id
/// of this harness's (`id_prefix` and a number: `orphanage-PID-N`). All four
/// runtimes put a container in cgroups named after its id (runc and crun
/// `/ID`, youki `/:youki:ID`, runsc its sandbox in `/ID`); where the process
/// shares the harness's own cgroup, or the runtime names cgroups some other
/// way, this cannot tell, and says nothing. Where a path lies below the
/// harness's own cgroup (runc's and crun's do, relative to it), only the
/// part below counts, so a harness that itself runs inside another's
/// container is not misled by the outer id; a path elsewhere (runsc's
/// absolute `/ID`) is read whole.
pub fn another_container(
    proc_cgroup: &str,
    own_cgroup: &str,
    own_id: &str,
    id_prefix: &str,
) -> Option<String> {
    let own = hierarchies(own_cgroup);
    hierarchies(proc_cgroup)
        .into_iter()
        .filter(|h| !own.contains(h))
        .find_map(|(controllers, path)| {
            let below = own
                .iter()
                .find(|(c, _)| *c == controllers)
                .and_then(|(_, p)| below_path(&path, p))
                .unwrap_or(&path);
            // An id is a whole word: `xorphanage-1-2` and `orphanage-1-2a`
            // are not orphanage-1-2, `crun-orphanage-1-2.scope` is.
            let part_of_a_word = |c: Option<char>| {
                c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            };
            below.match_indices(id_prefix).find_map(|(at, _)| {
                let rest = &below[at + id_prefix.len()..];
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let id = &below[at..at + id_prefix.len() + digits];
                let before = below[..at].chars().next_back();
                let after = rest[digits..].chars().next();
                let whole = !(before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    || part_of_a_word(after));
                (digits > 0 && whole && id != own_id).then(|| id.to_string())
            })
        })
}

/// The part of cgroup `path` below `ancestor`, by whole components (`/c10`
/// is not below `/c1`): empty for `ancestor` itself, else from its `/`.
fn below_path<'a>(path: &'a str, ancestor: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(ancestor.trim_end_matches('/'))?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The pids listed in a `cgroup.procs` file.
pub fn parse_procs(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const HYBRID_CGROUP: &str =
        "9:name=systemd:/c1\n8:pids:/c1\n6:freezer:/c1\n4:memory:/x/c1\n0::/c1\n";
    const HYBRID_MOUNTS: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    const PREFIX: &str = "orphanage-77-";

    #[rstest]
    #[case::runc_and_crun("10:hugetlb:/orphanage-77-3\n8:pids:/orphanage-77-3\n0::/\n")]
    #[case::youki("8:pids:/:youki:orphanage-77-3\n9:name=systemd:/\n")]
    #[case::a_systemd_scope("0::/system.slice/crun-orphanage-77-3.scope\n")]
    #[case::only_one_hierarchy_names_it("8:pids:/\n6:freezer:/orphanage-77-3\n")]
    fn a_process_in_another_containers_cgroup_is_told_apart(#[case] cgroup: &str) {
        assert_eq!(
            another_container(cgroup, "8:pids:/\n0::/\n", "orphanage-77-4", PREFIX),
            Some("orphanage-77-3".to_string())
        );
    }

    #[rstest]
    #[case::its_own("8:pids:/orphanage-77-4\n0::/\n")]
    #[case::youkis_own("8:pids:/:youki:orphanage-77-4\n")]
    #[case::the_harnesss_own_cgroup("8:pids:/\n0::/\n")]
    #[case::another_harnesss_container("8:pids:/orphanage-78-3\n")]
    #[case::a_prefix_without_a_number("8:pids:/orphanage-77-x\n")]
    #[case::a_cgroup_named_otherwise("0::/machine.slice/abc\n")]
    #[case::nothing_readable("")]
    #[case::inside_a_longer_word("8:pids:/xorphanage-77-3\n")]
    #[case::followed_by_more_of_a_word("8:pids:/orphanage-77-3a\n")]
    #[case::followed_by_more_of_an_id("8:pids:/orphanage-77-3-x\n")]
    fn anything_else_is_not(#[case] cgroup: &str) {
        assert_eq!(
            another_container(cgroup, "8:pids:/\n0::/\n", "orphanage-77-4", PREFIX),
            None
        );
    }

    #[test]
    fn a_longer_number_is_another_container() {
        // orphanage-77-4 is a prefix of orphanage-77-40, which is not it.
        assert_eq!(
            another_container("8:pids:/orphanage-77-40\n", "", "orphanage-77-4", PREFIX),
            Some("orphanage-77-40".to_string())
        );
    }

    #[test]
    fn the_harnesss_own_cgroup_path_is_not_read() {
        // A harness inside an outer one's container orphanage-77-9, its own
        // containers below that.
        let own = "8:pids:/orphanage-77-9\n";
        assert_eq!(
            another_container(
                "8:pids:/orphanage-77-9/orphanage-77-4\n",
                own,
                "orphanage-77-4",
                PREFIX
            ),
            None
        );
        assert_eq!(
            another_container(
                "8:pids:/orphanage-77-9/orphanage-77-2\n",
                own,
                "orphanage-77-4",
                PREFIX
            ),
            Some("orphanage-77-2".to_string())
        );
    }

    #[test]
    fn below_the_harnesss_own_path_is_by_whole_components() {
        assert_eq!(
            below_path("/c1/orphanage-77-2", "/c1"),
            Some("/orphanage-77-2")
        );
        assert_eq!(below_path("/c1", "/c1/"), Some(""));
        assert_eq!(below_path("/x", "/"), Some("/x"));
        assert_eq!(below_path("/c10/orphanage-77-2", "/c1"), None);
        // So an outer id in a sibling of the harness's own cgroup is read.
        assert_eq!(
            another_container(
                "8:pids:/orphanage-77-90\n",
                "8:pids:/orphanage-77-9\n",
                "orphanage-77-4",
                PREFIX
            ),
            Some("orphanage-77-90".to_string())
        );
    }

    #[test]
    fn hybrid_prefers_unified_then_pids() {
        let files = procs_files(HYBRID_CGROUP, "", HYBRID_MOUNTS);
        assert_eq!(
            files,
            [
                "/sys/fs/cgroup/unified/c1/cgroup.procs",
                "/sys/fs/cgroup/pids/c1/cgroup.procs",
                "/sys/fs/cgroup/freezer/c1/cgroup.procs",
                "/sys/fs/cgroup/systemd/c1/cgroup.procs",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn pure_v2() {
        let files = procs_files(
            "0::/system.slice/c2\n",
            "0::/user.slice\n",
            "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n",
        );
        assert_eq!(
            files,
            [PathBuf::from("/sys/fs/cgroup/system.slice/c2/cgroup.procs")]
        );
    }

    #[test]
    fn root_cgroup_and_combined_controllers() {
        let files = procs_files(
            "3:cpu,pids:/\n",
            "",
            "cgroup /sys/fs/cgroup/cpu,pids cgroup rw,cpu,pids 0 0\n",
        );
        assert_eq!(
            files,
            [PathBuf::from("/sys/fs/cgroup/cpu,pids/cgroup.procs")]
        );
    }

    #[test]
    fn a_hierarchy_the_runtime_left_alone_is_skipped() {
        // A v1-only runtime: the unified hierarchy still shows the harness's own cgroup.
        let container = "8:pids:/c1\n0::/\n";
        let own = "8:pids:/\n0::/\n";
        assert_eq!(
            procs_files(container, own, HYBRID_MOUNTS),
            [PathBuf::from("/sys/fs/cgroup/pids/c1/cgroup.procs")]
        );
    }

    #[test]
    fn procs_parse() {
        assert_eq!(parse_procs("12\n345\n\n"), [12, 345]);
        assert!(parse_procs("").is_empty());
    }
}
