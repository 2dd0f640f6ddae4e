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
    let parse = |text: &'_ str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _id = parts.next()?;
                Some((parts.next()?.to_string(), parts.next()?.to_string()))
            })
            .collect()
    };
    let own = parse(own_cgroup);
    let hierarchies: Vec<(String, String)> = parse(proc_cgroup)
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

/// The pids listed in a `cgroup.procs` file.
pub fn parse_procs(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
