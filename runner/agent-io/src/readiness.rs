//! Waiting for pipes to have something to read: the one poll(2) loop step
//! behind every reader of an agent's words (the host's and a container's
//! events, the VM init's agents, QEMU's console and results port).

use nix::errno::Errno;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits up to `timeout` until one of `fds` is readable or hung up,
/// skipping the `None`s (a zero timeout only looks; any other is rounded up
/// to a whole millisecond, so that a loop against a deadline never spins). Says which are ready; a
/// signal (EINTR) ends the wait with none ready, so that the caller looks at
/// its deadline again.
pub fn wait_readable(fds: &[Option<RawFd>], timeout: Duration) -> Result<Vec<bool>, Errno> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            // poll(2) ignores a negative fd.
            fd: fd.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: a valid array of pollfds, its length beside it.
    let r = unsafe {
        libc::poll(
            polled.as_mut_ptr(),
            polled.len() as libc::nfds_t,
            timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        )
    };
    match r {
        r if r >= 0 => Ok(polled.iter().map(|p| p.revents != 0).collect()),
        _ if Errno::last() == Errno::EINTR => Ok(vec![false; fds.len()]),
        _ => Err(Errno::last()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn only_the_pipe_with_something_to_read_is_ready() {
        let (quiet_r, _quiet_w) = crate::pipe().unwrap();
        let (busy_r, busy_w) = crate::pipe().unwrap();
        std::fs::File::from(busy_w).write_all(b"x").unwrap();
        let ready = wait_readable(
            &[Some(quiet_r.as_raw_fd()), None, Some(busy_r.as_raw_fd())],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(ready, [false, false, true]);
    }

    #[test]
    fn nothing_to_read_waits_out_the_timeout() {
        let (quiet_r, _quiet_w) = crate::pipe().unwrap();
        let started = std::time::Instant::now();
        let ready = wait_readable(&[Some(quiet_r.as_raw_fd())], Duration::from_millis(20)).unwrap();
        assert_eq!(ready, [false]);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
