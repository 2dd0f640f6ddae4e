use orphanage_scenario::{ErrnoName, Verdict};

/// The verdict for an agent's root whose clone(2) with `flags` failed with
/// `errno`. The errnos of a kernel that lacks or refuses the namespaces asked
/// for (Asterinas, for one, has no pid namespaces and says EINVAL) make it
/// unsupported, saying what it `needs`; any other is the starter's own failure.
pub fn clone_failed(flags: libc::c_ulong, errno: ErrnoName, needs: &str) -> Verdict {
    let what = format!("clone({}): {errno}", clone_flag_names(flags));
    match errno.0 as i32 {
        libc::EINVAL | libc::EPERM | libc::ENOSPC | libc::EUSERS => {
            Verdict::unsupported(format!("{what} (needs {needs})"))
        }
        _ => Verdict::broken(what),
    }
}

/// The namespace flags of a clone(2) call by name, for error messages;
/// "SIGCHLD" when there are none.
pub fn clone_flag_names(flags: libc::c_ulong) -> String {
    let names: Vec<&str> = [
        (libc::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (libc::CLONE_NEWPID, "CLONE_NEWPID"),
        (libc::CLONE_NEWNS, "CLONE_NEWNS"),
    ]
    .into_iter()
    .filter(|&(bit, _)| flags & bit as libc::c_ulong != 0)
    .map(|(_, name)| name)
    .collect();
    if names.is_empty() {
        "SIGCHLD".into()
    } else {
        names.join("|")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_flags_are_named_in_order() {
        let all = (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUSER) as libc::c_ulong;
        assert_eq!(
            clone_flag_names(all),
            "CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS"
        );
        assert_eq!(clone_flag_names(libc::SIGCHLD as libc::c_ulong), "SIGCHLD");
    }

    #[test]
    fn missing_namespaces_are_unsupported_and_other_failures_broken() {
        let flags = (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as libc::c_ulong;
        let errno = |name: &str| name.parse::<ErrnoName>().unwrap();
        let v = clone_failed(flags, errno("EINVAL"), "pid namespaces");
        assert_eq!(v.outcome, orphanage_scenario::Outcome::Unsupported);
        assert_eq!(
            v.reason,
            "clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL (needs pid namespaces)"
        );
        let v = clone_failed(flags, errno("EAGAIN"), "pid namespaces");
        assert_eq!(v.outcome, orphanage_scenario::Outcome::Broken);
        assert_eq!(v.reason, "clone(CLONE_NEWPID|CLONE_NEWNS): EAGAIN");
    }
}
