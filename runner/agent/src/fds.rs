//! File descriptor hygiene for forked workers: a child keeps only what its
//! scenario role needs, so a worker's death closes its socket and nothing of
//! the agent leaks into the processes under test.

use std::os::fd::RawFd;

/// Closes every fd from 3 up except those in `keep`: by close_range(2)
/// between the kept fds (Linux 5.9), else by listing /proc/self/fd.
pub fn close_all_except(keep: &[RawFd]) {
    if close_ranges_except(keep).is_err() {
        close_listed_except(keep);
    }
}

/// The ranges of fds from 3 up that leave out `keep`, inclusive at both ends.
pub fn ranges_except(keep: &[RawFd]) -> Vec<(u32, u32)> {
    let mut kept: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as u32)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut ranges = vec![];
    let mut from = 3u32;
    for fd in kept {
        if fd > from {
            ranges.push((from, fd - 1));
        }
        from = fd + 1;
    }
    ranges.push((from, u32::MAX));
    ranges
}

fn close_ranges_except(keep: &[RawFd]) -> Result<(), ()> {
    for (first, last) in ranges_except(keep) {
        // SAFETY: closes fds this process owns; kept fds lie outside every range.
        if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) } != 0 {
            // ENOSYS (before 5.9, or an emulator without it): the caller falls back.
            return Err(());
        }
    }
    Ok(())
}

fn close_listed_except(keep: &[RawFd]) {
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

#[cfg(test)]
mod tests {
    use super::ranges_except;

    #[test]
    fn ranges_leave_out_kept_fds_and_std_streams() {
        assert_eq!(ranges_except(&[]), vec![(3, u32::MAX)]);
        assert_eq!(ranges_except(&[1, 3]), vec![(4, u32::MAX)]);
        assert_eq!(
            ranges_except(&[7, 5, 5]),
            vec![(3, 4), (6, 6), (8, u32::MAX)]
        );
    }
}
