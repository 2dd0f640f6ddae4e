//! pidfds (Linux 5.3): a handle on exactly one process, whatever later
//! happens to its pid. libc has the syscall numbers but no wrappers, and nix
//! has none, so every pidfd of the agent and the harness is made and used here.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just gave us this fd, and nobody else holds it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(fd, signal, NULL, 0)`. With signal 0, Ok says the
/// process is not yet reaped (a zombie still counts).
pub fn pidfd_send_signal(fd: BorrowedFd, signal: i32) -> Result<(), Errno> {
    send_signal(fd, signal, 0)
}

/// `pidfd_send_signal(fd, signal, NULL, PIDFD_SIGNAL_PROCESS_GROUP)`
/// (Linux 6.9): the signal goes to the process group whose id is the pidfd's
/// process's, as `kill(-pid)` would, but bound to that process, not its
/// number: after it is reaped, its group's remaining members still get the
/// signal, and a group led by a new owner of the pid never does (ESRCH once
/// the group is empty). EINVAL before 6.9.
pub fn pidfd_send_signal_to_group(fd: BorrowedFd, signal: i32) -> Result<(), Errno> {
    const PIDFD_SIGNAL_PROCESS_GROUP: u32 = 1 << 2;
    send_signal(fd, signal, PIDFD_SIGNAL_PROCESS_GROUP)
}

fn send_signal(fd: BorrowedFd, signal: i32, flags: u32) -> Result<(), Errno> {
    // SAFETY: a pidfd the caller holds, a signal number, no siginfo, flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Whether the process has exited: its pidfd polls readable then (a zombie
/// has exited), waiting up to `timeout_ms` (0: just look).
pub fn pidfd_exited(fd: BorrowedFd, timeout_ms: i32) -> bool {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
    loop {
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut poll, 1, left) };
        if r >= 0 || Errno::last() != Errno::EINTR {
            return r > 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::process::Command;

    #[test]
    fn a_pidfd_follows_its_process_to_its_end() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let fd = pidfd_open(child.id() as i32).expect("pidfds (Linux 5.3)");
        assert!(!pidfd_exited(fd.as_fd(), 0), "alive");
        assert_eq!(pidfd_send_signal(fd.as_fd(), 0), Ok(()));
        pidfd_send_signal(fd.as_fd(), libc::SIGKILL).unwrap();
        assert!(pidfd_exited(fd.as_fd(), 10_000), "killed, so readable");
        // Exited but unreaped: still signalable, as a zombie is.
        assert_eq!(pidfd_send_signal(fd.as_fd(), 0), Ok(()));
        child.wait().unwrap();
        assert_eq!(pidfd_send_signal(fd.as_fd(), 0), Err(Errno::ESRCH));
    }

    /// The group outlives its leader: once the leader is reaped, its pidfd
    /// still reaches the member left in the group.
    #[test]
    fn a_group_signal_reaches_the_group_after_its_leader_is_reaped() {
        use std::os::unix::process::CommandExt;
        let mut leader = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut member = Command::new("sleep")
            .arg("30")
            .process_group(leader.id() as i32)
            .spawn()
            .unwrap();
        let fd = pidfd_open(leader.id() as i32).unwrap();
        leader.kill().unwrap();
        leader.wait().unwrap();
        let sent = pidfd_send_signal_to_group(fd.as_fd(), libc::SIGKILL);
        if sent == Err(Errno::EINVAL) {
            member.kill().unwrap();
            member.wait().unwrap();
            eprintln!("PIDFD_SIGNAL_PROCESS_GROUP refused with EINVAL: Linux 6.9 is needed");
            return;
        }
        assert_eq!(sent, Ok(()));
        let status = member.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the member was killed"
        );
        assert_eq!(
            pidfd_send_signal_to_group(fd.as_fd(), 0),
            Err(Errno::ESRCH),
            "an empty group"
        );
    }

    #[test]
    fn no_such_process_is_esrch() {
        // A pid no process has (pid_max is at most 2^22).
        assert_eq!(pidfd_open(i32::MAX).err(), Some(Errno::ESRCH));
    }
}
