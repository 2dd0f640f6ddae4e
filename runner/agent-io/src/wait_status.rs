/// The waitpid(2) status for a waitid(2) siginfo's code and status: both
/// ends reap through waitid (by pidfd, or peeking with WNOWAIT) and report
/// what waitpid would have said.
pub fn wait_status(code: i32, status: i32) -> i32 {
    match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_matches_waitpid() {
        assert_eq!(wait_status(libc::CLD_EXITED, 3), 3 << 8);
        assert_eq!(wait_status(libc::CLD_KILLED, libc::SIGKILL), libc::SIGKILL);
        let dumped = wait_status(libc::CLD_DUMPED, libc::SIGSEGV);
        assert!(libc::WIFSIGNALED(dumped) && libc::WCOREDUMP(dumped));
        assert_eq!(libc::WTERMSIG(dumped), libc::SIGSEGV);
    }
}
