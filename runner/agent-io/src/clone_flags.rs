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
}
