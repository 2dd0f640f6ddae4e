//! File descriptor hygiene for forked workers: a child keeps only what its
//! scenario role needs, so a worker's death closes its socket and nothing of
//! the agent leaks into the processes under test.

use std::os::fd::RawFd;

/// Closes every fd from 3 up except those in `keep`.
pub fn close_all_except(keep: &[RawFd]) {
    let open: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        // No /proc (early in a VM, or an emulator): walk the whole range.
        Err(_) => (3..4096).collect(),
    };
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing fds this process owns; EBADF (the dir's own fd, already gone) is harmless.
            unsafe { libc::close(fd) };
        }
    }
}

/// Makes `fd` survive execve.
pub fn clear_cloexec(fd: RawFd) {
    // SAFETY: plain fcntl on an fd we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
}
